"""Required bindings to closed core value sets are checked on every write (issue 8, part 2)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ketnoi.fhir.definitions import structure_definitions
from ketnoi.validation import validate
from ketnoi.validation.bindings import element_binding, required_binding

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _codes(resource: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(i.severity, i.code, i.expression) for i in validate(resource)]


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ({"resourceType": "Patient", "gender": "invalid-gender"}, "Patient.gender"),
        ({"resourceType": "Patient", "gender": "Female"}, "Patient.gender"),  # codes are case-sensitive
        ({"resourceType": "Observation", "status": "invalid-status", "code": {"text": "x"}}, "Observation.status"),
        ({"resourceType": "Bundle", "type": "nonsense"}, "Bundle.type"),
        ({"resourceType": "Patient", "contact": [{"gender": "x"}]}, "Patient.contact[0].gender"),
        ({"resourceType": "SearchParameter", "base": ["Patient", "NotAType"]}, "SearchParameter.base[1]"),
    ],
)
def test_code_outside_a_required_value_set_is_an_error(resource: dict[str, Any], path: str) -> None:
    found = [i for i in validate(resource) if i.expression == (path,)]
    assert len(found) == 1, validate(resource)
    issue = found[0]
    assert (issue.severity, issue.code) == ("error", "code-invalid")
    assert "required value set" in issue.en and "tập giá trị bắt buộc" in issue.vi


def test_message_lists_the_allowed_codes() -> None:
    (issue,) = validate({"resourceType": "Patient", "gender": "M"})
    assert "(allowed: female, male, other, unknown)" in issue.en
    assert "(được phép: female, male, other, unknown)" in issue.vi


@pytest.mark.parametrize("gender", ["female", "male", "other", "unknown"])
def test_every_allowed_code_passes(gender: str) -> None:
    assert validate({"resourceType": "Patient", "gender": gender}) == []


def _condition(clinical: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": "Patient/1"}, "clinicalStatus": clinical}


@pytest.mark.parametrize(
    "clinical",
    [
        {"coding": [{"system": CLINICAL, "code": "bogus"}]},
        {"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]},  # right meaning, wrong system
        {"coding": [{"code": "active"}]},  # a code without its system
        {"text": "active"},  # text alone cannot satisfy a required binding
    ],
)
def test_codeable_concept_needs_a_coding_from_the_value_set(clinical: dict[str, Any]) -> None:
    assert _codes(_condition(clinical)) == [("error", "code-invalid", ("Condition.clinicalStatus",))]


def test_codeable_concept_with_one_allowed_coding_passes() -> None:
    other = {"system": "http://snomed.info/sct", "code": "55561003"}
    assert validate(_condition({"coding": [other, {"system": CLINICAL, "code": "active"}]})) == []


def test_open_value_sets_are_not_checked_here() -> None:
    """MIME types, languages and UCUM are external: left to terminology validation, never guessed."""
    attachment = {"contentType": "application/x-made-up", "language": "xx-YY"}
    doc = {"resourceType": "DocumentReference", "status": "current", "content": [{"attachment": attachment}]}
    assert validate(doc) == []
    assert required_binding("http://hl7.org/fhir/ValueSet/mimetypes|4.0.1") is None


def test_every_closed_required_binding_of_the_core_is_compiled() -> None:
    """339 ``code`` elements and 10 Coding/CodeableConcept elements of R4 are bound to closed sets."""
    kinds: dict[str, int] = {}
    for sd in structure_definitions().values():
        for element in sd["snapshot"]["element"]:
            if element_binding(element) is not None:
                code = element["type"][0]["code"]
                kinds[code] = kinds.get(code, 0) + 1
    assert kinds == {"code": 339, "CodeableConcept": 10}


def test_required_code_refused_over_http(client: httpx.Client) -> None:
    for resource in (
        {"resourceType": "Patient", "gender": "invalid-gender"},
        {"resourceType": "Observation", "status": "invalid-status", "code": {"text": "x"}},
    ):
        r = client.post(f"/{resource['resourceType']}", json=resource)
        assert r.status_code == 400, r.text
        assert r.json()["issue"][0]["code"] == "code-invalid"
    r = client.post("/Bundle", json={"resourceType": "Bundle", "type": "nonsense"})
    assert r.status_code == 400
    before = client.get("/Patient", params={"gender": "invalid-gender", "_summary": "count"}).json()
    assert before["total"] == 0
