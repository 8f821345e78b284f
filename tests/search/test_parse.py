"""search.parse: the grammar → SearchQuery, and every name checked against the registry."""

from __future__ import annotations

import pytest

from ketnoi.fhir.outcome import FhirError
from ketnoi.search.extract import default_extractor
from ketnoi.search.parse import parse
from ketnoi.search.query import Chain, Composite, Filter, Has, Include, SearchQuery, SortKey


def _parse(types: tuple[str, ...], *params: tuple[str, str], strict: bool = True) -> SearchQuery:
    return parse(types, list(params), default_extractor().params_for, strict=strict)


def test_chain_groups_targets_by_criterion() -> None:
    q = _parse(("Observation",), ("subject.name", "an"))
    (chain,) = q.filters
    assert isinstance(chain, Chain) and chain.param == "subject"
    ((targets, inner),) = chain.branches
    assert set(targets) == {"Patient", "Location"}  # Group and Device have no "name"
    assert inner == Filter("name", "string", None, ("an",))


def test_chain_type_modifier_and_depth() -> None:
    (chain,) = _parse(("Observation",), ("subject:Patient.general-practitioner:Practitioner.family", "le")).filters
    assert isinstance(chain, Chain)
    ((targets, inner),) = chain.branches
    assert targets == ("Patient",)
    assert isinstance(inner, Chain) and inner.branches[0][0] == ("Practitioner",)
    with pytest.raises(FhirError):
        _parse(("Observation",), ("patient.organization" + ".partof" * 5 + ".name", "x"))


def test_has_nested() -> None:
    (has,) = _parse(("Patient",), ("_has:Encounter:subject:_has:Observation:encounter:code", "1")).filters
    assert isinstance(has, Has) and has.source_type == "Encounter" and has.param == "subject"
    assert isinstance(has.inner, Has) and has.inner.source_type == "Observation"
    assert has.inner.inner == Filter("code", "token", None, ("1",))


def test_include_values() -> None:
    q = _parse(
        ("Observation",),
        ("_include", "Observation:subject:Patient"),
        ("_include:iterate", "Patient:organization"),
        ("_revinclude", "Provenance:target"),
    )
    assert q.includes == [
        Include("Observation", ("subject",), "Patient", False, False),
        Include("Patient", ("organization",), None, True, False),
        Include("Provenance", ("target",), None, False, True),
    ]
    (star,) = _parse(("Observation",), ("_include", "*")).includes
    assert "subject" in star.params and "encounter" in star.params


def test_sort_keys() -> None:
    q = _parse(("Patient",), ("_sort", "-birthdate,family,_id"))
    assert q.sort == [
        SortKey("birthdate", "date", True),
        SortKey("family", "string", False),
        SortKey("_id", "id", False),
    ]
    for bad in ("name", "address", "bogus", "_text", "-"):
        with pytest.raises(FhirError):
            _parse(("Patient",), ("_sort", bad))


def test_composite_values() -> None:
    (c,) = _parse(("Observation",), ("code-value-quantity", "http://loinc.org|8480-6$gt100,x$1")).filters
    assert isinstance(c, Composite)
    assert c.components == (("code", "token"), ("value-quantity", "quantity"))
    assert c.values == (("http://loinc.org|8480-6", "gt100"), ("x", "1"))


@pytest.mark.parametrize("modifier", ["in", "not-in", "above", "below"])
def test_terminology_modifiers_are_kept_for_the_terminology_rewrite(modifier: str) -> None:
    q = _parse(("Observation",), (f"code:{modifier}", "x"), strict=False)
    assert q.filters == [Filter("code", "token", modifier, ("x",))] and q.ignored == []
    with pytest.raises(FhirError) as err:  # token parameters only
        _parse(("Observation",), (f"date:{modifier}", "x"), strict=False)
    assert f":{modifier}" in str(err.value.outcome())


def test_unknown_names_never_reach_the_query() -> None:
    for key in ("bogus", "subject.bogus", "_has:Observation:patient:bogus", "_has:Observation:bogus:code"):
        q = _parse(("Patient", "Observation"), (key, "x"), strict=False)
        assert q.filters == [] and q.ignored == [key]
    for key in ("name:bogus", "general-practitioner:Nope.name", "_has:Nope:patient:code", "_has:Observation"):
        with pytest.raises(FhirError):
            _parse(("Patient",), (key, "x"), strict=False)
