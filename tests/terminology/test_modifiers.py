"""The rewrite of :in / :not-in / :above / :below into plain token criteria (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from ketnoi.fhir.outcome import FhirError
from ketnoi.search.extract import default_extractor
from ketnoi.search.parse import parse
from ketnoi.search.query import Chain, Criterion, Filter, Has
from ketnoi.terminology.expand import MAX_CODES
from ketnoi.terminology.lookup import Terminology
from ketnoi.terminology.modifiers import resolve_modifiers

GENDER = "http://hl7.org/fhir/administrative-gender"
CS = "http://example.org/cs"


class Source(Terminology):
    """The packaged R4 terminology plus one CodeSystem of ``size`` codes and its whole-system ValueSet."""

    def __init__(self, size: int) -> None:
        super().__init__()
        children = [{"code": f"c{i}"} for i in range(1, size)]  # c0 is the parent of all others
        self.cs = {"url": CS, "concept": [{"code": "c0", "concept": children}] if size else []}

    def value_set(self, canonical: str) -> dict[str, Any] | None:
        if canonical == "urn:big":
            return {"url": "urn:big", "compose": {"include": [{"system": CS}]}}
        return super().value_set(canonical)

    def code_system(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        return self.cs if url == CS else super().code_system(url, version)


def _rewrite(types: tuple[str, ...], key: str, value: str, size: int = 3) -> list[Criterion]:
    params_for = default_extractor().params_for
    query = parse(types, [(key, value)], params_for, strict=True)
    return resolve_modifiers(query.filters, types, Source(size), params_for)


def test_primitive_code_elements_match_on_the_code_alone() -> None:
    (f,) = _rewrite(("Patient",), "gender:in", "http://hl7.org/fhir/ValueSet/administrative-gender")
    assert f == Filter("gender", "token", None, ("|female", "|male", "|other", "|unknown"))


def test_codings_match_on_system_and_code() -> None:
    (f,) = _rewrite(("Observation",), "code:in", "urn:big")
    assert f == Filter("code", "token", None, (f"{CS}|c0", f"{CS}|c1", f"{CS}|c2"))
    (f,) = _rewrite(("Observation",), "code:not-in", "urn:big")
    assert f == Filter("code", "token", "not", (f"{CS}|c0", f"{CS}|c1", f"{CS}|c2"))
    (f,) = _rewrite(("Observation",), "code:below", f"{GENDER}|female")
    assert f == Filter("code", "token", None, (f"{GENDER}|female",))


def test_long_lists_stay_one_criterion_until_the_expansion_cap() -> None:
    (f,) = _rewrite(("Observation",), "code:not-in", "urn:big", size=5_000)
    assert isinstance(f, Filter) and f.modifier == "not" and len(f.values) == 5_000
    for key in ("code:in", "code:not-in", "code:below"):
        value = "urn:big" if key != "code:below" else "http://example.org/cs|c0"
        with pytest.raises(FhirError) as err:
            _rewrite(("Observation",), key, value, size=MAX_CODES + 1)
        assert "too-costly" in str(err.value.outcome())


def test_empty_expansion_matches_nothing() -> None:
    (f,) = _rewrite(("Observation",), "code:in", "urn:big", size=0)
    assert isinstance(f, Filter) and f.modifier is None and len(f.values) == 1


def test_nested_in_chains_and_has() -> None:
    (chain,) = _rewrite(
        ("Observation",), "subject:Patient.gender:in", "http://hl7.org/fhir/ValueSet/administrative-gender"
    )
    assert isinstance(chain, Chain)
    ((_, inner),) = chain.branches
    assert isinstance(inner, Filter) and inner.modifier is None and "|male" in inner.values
    (has,) = _rewrite(("Patient",), "_has:Observation:patient:code:not-in", "urn:big")
    assert isinstance(has, Has) and isinstance(has.inner, Filter) and has.inner.modifier == "not"


def test_value_errors() -> None:
    for key, value in [("code:below", "no-system"), ("code:above", "|x"), ("code:in", "urn:nope")]:
        with pytest.raises(FhirError) as err:
            _rewrite(("Observation",), key, value)
        assert err.value.status == 400


def test_parse_accepts_them_on_tokens_only() -> None:
    params_for = default_extractor().params_for
    for key in ("code:in", "code:not-in", "code:above", "code:below"):
        (f,) = parse(("Observation",), [(key, "x")], params_for, strict=True).filters
        assert isinstance(f, Filter) and f.modifier == key.split(":")[1]
    for key in ("date:in", "subject:below", "value-quantity:not-in", "_id:in", "_lastUpdated:above"):
        with pytest.raises(FhirError):
            parse(("Observation",), [(key, "x")], params_for, strict=False)
