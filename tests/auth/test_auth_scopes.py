"""SMART App Launch 2.x scope grammar, permission checks and narrowing (ketnoi.auth.scopes)."""

from __future__ import annotations

import dataclasses

import pytest

from ketnoi.auth.scopes import (
    INTERACTION_PERMISSION,
    MAX_CHARS,
    MAX_SCOPES,
    ClinicalScope,
    ScopeSet,
    parse_clinical_scope,
    parse_scopes,
)

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def scope(text: str) -> ClinicalScope:
    parsed = parse_clinical_scope(text)
    assert parsed is not None, text
    return parsed


# --- grammar ---------------------------------------------------------------------------------------------


def test_empty_string_grants_nothing() -> None:
    assert parse_scopes("") == ScopeSet((), frozenset(), ())
    assert parse_scopes("  \n\t ").text() == ""
    assert not parse_scopes("").allows(None, "Patient", "r")


@pytest.mark.parametrize(
    ("text", "context", "resource_type", "letters"),
    [
        ("patient/*.read", "patient", "*", "rs"),
        ("user/Patient.write", "user", "Patient", "cud"),
        ("system/*.*", "system", "*", "cruds"),
        ("system/*.cruds", "system", "*", "cruds"),
        ("patient/Observation.c", "patient", "Observation", "c"),
        ("user/Encounter.rs", "user", "Encounter", "rs"),
        ("patient/Condition.cud", "patient", "Condition", "cud"),
        ("user/Patient.ds", "user", "Patient", "ds"),
    ],
)
def test_clinical_scope_v1_and_v2(text: str, context: str, resource_type: str, letters: str) -> None:
    assert scope(text) == ClinicalScope(context, resource_type, frozenset(letters), (), text)


@pytest.mark.parametrize(
    "text",
    [
        "patient/Observation.dus",  # out of order: not widened to "uds"
        "patient/Observation.sr",
        "patient/Observation.rx",  # unknown letter
        "patient/Observation.rr",  # repeated letter
        "patient/Observation.",
        "patient/Observation",
        "patient/observation.rs",  # lower-case type
        "patient/O.rs",  # a type is at least two letters
        "patient/Obs?x.rs",
        "patient/Observation2.rs",
        "foo/Patient.r",
        "Patient/Observation.rs",
        "patient/Observation.READ",
        "patient/Observation.reads",
        "patient/Observation.rs?",  # empty query
        "patient/Observation.rs?category",  # no "="
        "patient/Observation.rs?=laboratory",  # no name
        "patient/Observation.rs?category=",  # blank value would be dropped, widening the scope
        "patient/Observation.rs?category=a&&code=b",
        "patient/Observation.rs?code:text=x",  # modifier
        "patient/Observation.rs?code%3Atext=x",  # modifier, %-encoded
        "patient/Observation.rs?subject.name=x",  # chain
        "patient/Observation.rs?_count=1",  # result parameter restricts nothing
        "patient/Observation.rs?category=%FF",  # not UTF-8
        "patient/Observation.read?category=laboratory",  # filters are v2 only
        "patient/*.*?category=laboratory",
        "patient/Observation.rs#x",
    ],
)
def test_invalid_clinical_scope_grants_nothing(text: str) -> None:
    assert parse_clinical_scope(text) is None
    parsed = parse_scopes(text)
    assert parsed.clinical == ()
    assert parsed.invalid == (text,)
    assert not parsed.allows(None, "Observation", "r")
    assert parsed.text() == ""


def test_granular_filter_is_parsed_and_url_decoded() -> None:
    parsed = scope(
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category%7Claboratory"
    )
    assert parsed.filters == (("category", LAB),)
    assert parsed.canonical() == f"patient/Observation.rs?category={LAB}"


def test_granular_filter_keeps_order_and_repeats() -> None:
    parsed = scope("user/Observation.rs?category=laboratory&code=8480-6&category=vital-signs&_tag=a")
    assert parsed.filters == (
        ("category", "laboratory"),
        ("code", "8480-6"),
        ("category", "vital-signs"),
        ("_tag", "a"),
    )


def test_canonical_text_parses_back_to_the_same_filters() -> None:
    parsed = scope("user/Observation.rs?code=a%26b%3Dc%2Bd%25+e")
    assert parsed.filters == (("code", "a&b=c+d% e"),)
    assert scope(parsed.canonical()).filters == parsed.filters


def test_known_types() -> None:
    known = frozenset({"Patient", "Observation"})
    parsed = parse_scopes("patient/Observation.rs patient/Foo.rs patient/*.r", known_types=known)
    assert [s.text for s in parsed.clinical] == ["patient/Observation.rs", "patient/*.r"]
    assert parsed.invalid == ("patient/Foo.rs",)
    assert parse_scopes("patient/Foo.rs").invalid == ()


def test_non_clinical_scopes_are_kept() -> None:
    text = "openid fhirUser profile launch launch/patient launch/encounter offline_access online_access"
    parsed = parse_scopes(text)
    assert parsed.other == frozenset(text.split())
    assert parsed.clinical == ()
    assert parsed.invalid == ()


def test_unknown_scopes_are_invalid_in_order_without_duplicates() -> None:
    parsed = parse_scopes("launch/other OpenID openid x launch/other patient/Observation.dus x")
    assert parsed.invalid == ("launch/other", "OpenID", "x", "patient/Observation.dus")
    assert parsed.other == frozenset({"openid"})


def test_mixed_v1_v2_whitespace_and_duplicates() -> None:
    parsed = parse_scopes(
        " openid\n\npatient/*.read   patient/*.rs\tuser/Observation.rs?category=laboratory openid\r\n"
    )
    assert parsed.other == frozenset({"openid"})
    assert parsed.clinical == (
        ClinicalScope("patient", "*", frozenset("rs"), (), "patient/*.read"),  # first spelling kept
        ClinicalScope(
            "user",
            "Observation",
            frozenset("rs"),
            (("category", "laboratory"),),
            "user/Observation.rs?category=laboratory",
        ),
    )
    assert parsed.invalid == ()


def test_text_is_canonical_and_sorted() -> None:
    parsed = parse_scopes("user/Patient.write patient/*.read launch/patient openid patient/*.rs")
    assert parsed.text() == "launch/patient openid patient/*.rs user/Patient.cud"
    assert parse_scopes(parsed.text()).text() == parsed.text()
    assert parse_scopes("openid launch/patient user/Patient.cud patient/*.rs").text() == parsed.text()


# --- caps ------------------------------------------------------------------------------------------------


def test_at_most_max_scopes_are_processed() -> None:
    tokens = [f"patient/T{chr(97 + i // 26)}{chr(97 + i % 26)}.r" for i in range(MAX_SCOPES + 5)]
    parsed = parse_scopes(" ".join(tokens))
    assert len(parsed.clinical) == MAX_SCOPES
    assert parsed.invalid == (" ".join(tokens[MAX_SCOPES:]),)
    assert not parsed.allows("patient", tokens[MAX_SCOPES][8:11], "r")


def test_duplicates_count_towards_the_scope_cap() -> None:
    parsed = parse_scopes("openid " * MAX_SCOPES + "patient/*.r")
    assert parsed.other == frozenset({"openid"})
    assert parsed.clinical == ()
    assert parsed.invalid == ("patient/*.r",)


def test_at_most_max_chars_are_processed_and_a_cut_token_is_not_used() -> None:
    long_scope = "patient/Observation.rs?code=" + "x" * (MAX_CHARS - 50)
    cut = "patient/Observation.cruds"  # straddles MAX_CHARS
    text = f"openid {long_scope} {cut} patient/Patient.r"
    assert text.index(cut) < MAX_CHARS < text.index(cut) + len(cut)
    parsed = parse_scopes(text)
    assert parsed.other == frozenset({"openid"})
    assert [s.text for s in parsed.clinical] == [long_scope]
    assert parsed.invalid == (f"{cut} patient/Patient.r",)


def test_a_token_ending_exactly_at_max_chars_is_used() -> None:
    last = "patient/Patient.r"
    text = " " * (MAX_CHARS - len(last)) + last + "\n" + "x" * 10_000
    parsed = parse_scopes(text)
    assert [s.text for s in parsed.clinical] == [last]
    assert parsed.invalid == ("x" * 10_000,)


# --- permission checks -----------------------------------------------------------------------------------


def test_interaction_permission_table() -> None:
    assert dict(INTERACTION_PERMISSION) == {
        "create": "c",
        "read": "r",
        "vread": "r",
        "history-instance": "r",
        "update": "u",
        "patch": "u",
        "delete": "d",
        "search-type": "s",
        "search-system": "s",
        "history-type": "s",
        "history-system": "s",
    }
    with pytest.raises(TypeError):
        INTERACTION_PERMISSION["operation"] = "r"  # type: ignore[index]


def test_create_only_does_not_allow_read() -> None:
    parsed = parse_scopes("patient/Observation.c")
    assert parsed.allows("patient", "Observation", "c")
    assert not parsed.allows("patient", "Observation", "r")
    assert not parsed.allows("patient", "Observation", "s")


@pytest.mark.parametrize(
    ("context", "resource_type", "permission", "expected"),
    [
        ("patient", "Observation", "r", True),
        ("patient", "Condition", "s", True),
        (None, "Observation", "r", True),
        ("patient", "Observation", "c", False),
        ("user", "Observation", "r", False),
        ("patient", "*", "r", True),  # a system-wide search is covered only by a "*" scope
        ("patient", "Observation", "rs", False),  # one letter at a time
        ("patient", "Observation", "read", False),
        ("patient", "Observation", "", False),
        ("other", "Observation", "r", False),
    ],
)
def test_wildcard_type(context: str | None, resource_type: str, permission: str, expected: bool) -> None:
    assert parse_scopes("patient/*.read").allows(context, resource_type, permission) is expected


def test_a_specific_type_does_not_cover_all_types() -> None:
    parsed = parse_scopes("patient/Observation.rs")
    assert not parsed.allows("patient", "*", "s")
    assert not parsed.allows("patient", "Patient", "r")


def test_system_cruds_allows_everything_in_system_context_only() -> None:
    parsed = parse_scopes("system/*.cruds")
    assert all(parsed.allows("system", "Patient", p) for p in "cruds")
    assert not parsed.allows("user", "Patient", "r")
    assert parsed.contexts() == frozenset({"system"})


def test_grants_returns_filtered_scopes_for_the_caller_to_apply() -> None:
    parsed = parse_scopes("user/Observation.rs?category=laboratory user/Patient.r")
    assert parsed.grants("user", "Observation", "s") == [scope("user/Observation.rs?category=laboratory")]
    assert parsed.allows("user", "Observation", "r")
    assert not parsed.unfiltered("user", "Observation", "r")
    assert parsed.unfiltered("user", "Patient", "r")
    assert parsed.grants("user", "Observation", "c") == []


def test_unfiltered_when_any_granting_scope_has_no_filter() -> None:
    parsed = parse_scopes("user/Observation.rs?category=laboratory user/*.r")
    assert [s.text for s in parsed.grants(None, "Observation", "r")] == [
        "user/Observation.rs?category=laboratory",
        "user/*.r",
    ]
    assert parsed.unfiltered("user", "Observation", "r")
    assert not parsed.unfiltered("user", "Observation", "s")


def test_contexts() -> None:
    assert parse_scopes("openid patient/*.r user/Patient.r patient/Observation.s").contexts() == frozenset(
        {"patient", "user"}
    )
    assert parse_scopes("openid").contexts() == frozenset()


def test_scopes_are_immutable() -> None:
    parsed = parse_scopes("patient/*.r")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.clinical[0].permissions = frozenset("cruds")  # type: ignore[misc]


# --- narrowing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "allowed", "expected"),
    [
        ("patient/*.cruds", "patient/Observation.rs", "patient/Observation.rs"),
        ("user/Patient.rs", "user/*.r", "user/Patient.r"),
        ("patient/Observation.rs", f"patient/Observation.rs?category={LAB}", f"patient/Observation.rs?category={LAB}"),
        ("patient/*.rs", "patient/*.rs?category=laboratory", "patient/*.rs?category=laboratory"),
        ("patient/Observation.rs?category=laboratory", "patient/*.rs", "patient/Observation.rs?category=laboratory"),
        (
            "patient/Observation.rs?code=a",
            "patient/Observation.r?category=b",
            "patient/Observation.r?code=a&category=b",
        ),
        ("patient/Observation.rs?code=a", "patient/Observation.rs?code=a", "patient/Observation.rs?code=a"),
        ("patient/*.read", "patient/*.write", ""),  # no common letter
        ("patient/Observation.rs", "user/Observation.rs", ""),  # another context
        ("patient/Observation.rs", "patient/Patient.rs", ""),  # another type
        ("user/Patient.rs", "user/*.r user/Patient.s", "user/Patient.rs"),  # parts merge
        ("patient/*.rs", "patient/Observation.r patient/Patient.s", "patient/Observation.r patient/Patient.s"),
        ("openid launch/patient offline_access", "openid launch/patient", "launch/patient openid"),
        ("openid patient/*.r", "", ""),
    ],
)
def test_narrow(requested: str, allowed: str, expected: str) -> None:
    assert parse_scopes(requested).narrow(parse_scopes(allowed)).text() == expected


def test_narrow_keeps_the_requested_invalid_scopes_and_canonical_text() -> None:
    narrowed = parse_scopes("patient/*.cruds bogus").narrow(parse_scopes("patient/Observation.read"))
    assert narrowed.clinical == (
        ClinicalScope("patient", "Observation", frozenset("rs"), (), "patient/Observation.rs"),
    )
    assert narrowed.invalid == ("bogus",)


def test_narrow_is_never_wider_than_allowed() -> None:
    allowed = parse_scopes("patient/Observation.rs?category=laboratory patient/Patient.r user/*.s")
    narrowed = parse_scopes("patient/*.cruds user/*.cruds system/*.cruds").narrow(allowed)
    for context in ("patient", "user", "system"):
        for resource_type in ("Observation", "Patient", "Condition", "*"):
            for permission in "cruds":
                if narrowed.unfiltered(context, resource_type, permission):
                    assert allowed.unfiltered(context, resource_type, permission)
                if narrowed.allows(context, resource_type, permission):
                    assert allowed.allows(context, resource_type, permission)
    assert narrowed.grants("patient", "Observation", "r")[0].filters == (("category", "laboratory"),)
