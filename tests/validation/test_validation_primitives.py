"""Lexical rules of each R4 primitive type, exercised through Extension.value[x] on a Patient."""

from __future__ import annotations

import pytest

from ketnoi.fhir.outcome import Issue
from ketnoi.validation import validate

VALID: list[tuple[str, object]] = [
    ("boolean", True),
    ("boolean", False),
    ("integer", 0),
    ("integer", -2147483648),
    ("integer", 2147483647),
    ("positiveInt", 1),
    ("unsignedInt", 0),
    ("decimal", 1.5),
    ("decimal", -3),
    ("decimal", 1e-7),
    ("date", "2024"),
    ("date", "2024-02"),
    ("date", "2024-02-29"),
    ("dateTime", "2024-02-29"),
    ("dateTime", "2024-02-29T23:59:60.123+14:00"),
    ("dateTime", "2024-02-29T08:00:00Z"),
    ("instant", "2024-02-29T08:00:00.000-05:00"),
    ("time", "08:30:00"),
    ("time", "23:59:59.5"),
    ("id", "a-B.9"),
    ("id", "x" * 64),
    ("code", "final"),
    ("code", "two words"),
    ("string", " padded but fine "),
    ("string", "Xin chào\nthế giới"),
    ("markdown", "**bold**"),
    ("uri", "http://example.org/a?b=c"),
    ("url", "https://example.org"),
    ("canonical", "http://hl7.org/fhir/StructureDefinition/Patient|4.0.1"),
    ("oid", "urn:oid:2.16.840.1.113883"),
    ("uuid", "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7"),
    ("base64Binary", "SGVsbG8="),
    ("base64Binary", "SGVs bG8="),
]

INVALID: list[tuple[str, object, str]] = [
    ("integer", 2147483648, "value"),
    ("integer", -2147483649, "value"),
    ("integer", 1.0, "value"),
    ("positiveInt", 0, "value"),
    ("unsignedInt", -1, "value"),
    ("decimal", "1.5", "structure"),
    ("boolean", "true", "structure"),
    ("boolean", 1, "structure"),
    ("date", "2024-13", "value"),
    ("date", "2024-02-30T00:00:00Z", "value"),
    ("date", "24-02-01", "value"),
    ("date", "0000", "value"),
    ("dateTime", "2024-02-01T10:00:00", "value"),  # a time needs a timezone
    ("dateTime", "2024-02-01T10:00Z", "value"),  # seconds are required
    ("dateTime", "2024-02-01 10:00:00Z", "value"),
    ("instant", "2024-02-01", "value"),
    ("instant", "2024-02-01T10:00:00", "value"),
    ("time", "8:30", "value"),
    ("time", "24:00:00", "value"),
    ("id", "x" * 65, "value"),
    ("id", "a_b", "value"),
    ("id", "a b", "value"),
    ("code", " final", "value"),
    ("code", "final ", "value"),
    ("code", "two  spaces", "value"),
    ("string", "   ", "value"),
    ("string", "", "value"),
    ("string", 5, "structure"),
    ("markdown", "\n\t", "value"),
    ("uri", "http://example.org/a b", "value"),
    ("oid", "urn:oid:3.1", "value"),
    ("oid", "1.2.3", "value"),
    ("uuid", "urn:uuid:53FEFA32-FCBB-4FF8-8A92-55EE120877B7", "value"),
    ("uuid", "53fefa32-fcbb-4ff8-8a92-55ee120877b7", "value"),
    ("base64Binary", "SGVsbG8", "value"),
    ("base64Binary", "SGV$bG8=", "value"),
]


def _patient(type_code: str, value: object) -> dict[str, object]:
    key = "value" + type_code[0].upper() + type_code[1:]
    return {"resourceType": "Patient", "extension": [{"url": "http://example.org/x", key: value}]}


@pytest.mark.parametrize(("type_code", "value"), VALID)
def test_valid_value(type_code: str, value: object) -> None:
    assert validate(_patient(type_code, value)) == []


@pytest.mark.parametrize(("type_code", "value", "code"), INVALID)
def test_invalid_value(type_code: str, value: object, code: str) -> None:
    issues = validate(_patient(type_code, value))
    key = "value" + type_code[0].upper() + type_code[1:]
    assert [(i.severity, i.code, i.expression) for i in issues] == [("error", code, (f"Patient.extension[0].{key}",))]
    assert issues[0].vi and issues[0].vi != issues[0].en


def test_message_quotes_the_value_and_the_expected_form() -> None:
    (issue,) = validate({"resourceType": "Patient", "birthDate": "03/02/1990"})
    assert issue == Issue(
        "error",
        "value",
        "Invalid date '03/02/1990': expected YYYY, YYYY-MM or YYYY-MM-DD at Patient.birthDate",
        "Giá trị date '03/02/1990' không hợp lệ: cần có dạng YYYY, YYYY-MM hoặc YYYY-MM-DD tại Patient.birthDate",
        ("Patient.birthDate",),
    )


def test_string_over_one_megabyte() -> None:
    big = "ệ" * (400 * 1024)  # 3 UTF-8 bytes each: 1.2 MB in fewer than 1M characters
    (issue,) = validate(_patient("string", big))
    assert issue.code == "value" and "1 MB" in issue.en
    assert validate(_patient("string", "a" * (1024 * 1024))) == []


def test_control_characters_are_a_warning() -> None:
    (issue,) = validate(_patient("string", "bell\x07"))
    assert issue.severity == "warning"


def test_narrative_must_be_a_div() -> None:
    text = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Hi</div>'}
    assert validate({"resourceType": "Patient", "text": text}) == []
    (issue,) = validate({"resourceType": "Patient", "text": {**text, "div": "<p>Hi</p>"}})
    assert issue.expression == ("Patient.text.div",) and "<div" in issue.en
    (issue,) = validate({"resourceType": "Patient", "text": {"status": "generated"}})
    assert issue.code == "required" and "'div'" in issue.en


def test_nul_character_is_an_error() -> None:
    (issue,) = validate(_patient("string", "a\x00b"))
    assert issue.severity == "error"
    assert "NUL" in issue.en
