"""ValueSet expansion and CodeSystem subsumption over an in-memory source, plus the packaged R4 sets."""

from __future__ import annotations

from typing import Any

import pytest

from ketnoi.fhir.outcome import FhirError
from ketnoi.terminology.expand import Hierarchy, expand, subsumption
from ketnoi.terminology.lookup import Terminology, packaged

CS = "http://example.org/cs"
OTHER = "http://example.org/other"


def _cs(url: str = CS) -> dict[str, Any]:
    # a → b → c, a → d; e alone; f is a child of e through the "parent" property
    return {
        "resourceType": "CodeSystem",
        "url": url,
        "content": "complete",
        "concept": [
            {"code": "a", "concept": [{"code": "b", "concept": [{"code": "c"}]}, {"code": "d"}]},
            {"code": "e", "property": [{"code": "status", "valueCode": "retired"}]},
            {"code": "f", "property": [{"code": "parent", "valueCode": "e"}]},
        ],
    }


class Source:
    def __init__(self, *resources: dict[str, Any]) -> None:
        self.resources = {(r["resourceType"], r["url"]): r for r in resources}

    def value_set(self, canonical: str) -> dict[str, Any] | None:
        return self.resources.get(("ValueSet", canonical))

    def code_system(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        return self.resources.get(("CodeSystem", url))


def _vs(url: str, include: list[dict[str, Any]], exclude: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    compose: dict[str, Any] = {"include": include}
    if exclude:
        compose["exclude"] = exclude
    return {"resourceType": "ValueSet", "url": url, "compose": compose}


def _codes(*codes: str, system: str = CS) -> frozenset[tuple[str, str]]:
    return frozenset((system, c) for c in codes)


def test_explicit_concepts_need_no_code_system() -> None:
    vs = _vs("urn:vs", [{"system": OTHER, "concept": [{"code": "x"}, {"code": "y"}]}])
    assert expand(Source(vs), "urn:vs") == _codes("x", "y", system=OTHER)


def test_whole_system_includes_nested_concepts_and_excludes() -> None:
    vs = _vs("urn:vs", [{"system": CS}], [{"system": CS, "concept": [{"code": "d"}, {"code": "e"}]}])
    assert expand(Source(_cs(), vs), "urn:vs") == _codes("a", "b", "c", "f")


def test_filters() -> None:
    def run(prop: str, op: str, value: str) -> frozenset[tuple[str, str]]:
        vs = _vs("urn:vs", [{"system": CS, "filter": [{"property": prop, "op": op, "value": value}]}])
        return expand(Source(_cs(), vs), "urn:vs")

    assert run("concept", "is-a", "a") == _codes("a", "b", "c", "d")
    assert run("concept", "is-a", "e") == _codes("e", "f")  # "parent" property link
    assert run("concept", "descendent-of", "a") == _codes("b", "c", "d")
    assert run("concept", "is-not-a", "a") == _codes("e", "f")
    assert run("concept", "=", "c") == _codes("c")
    assert run("concept", "in", "c,d,zz") == _codes("c", "d")
    assert run("status", "=", "retired") == _codes("e")
    assert run("status", "exists", "false") == _codes("a", "b", "c", "d", "f")
    assert run("concept", "is-a", "nope") == frozenset()
    with pytest.raises(FhirError) as err:
        run("code", "regex", "a.*")
    assert err.value.status == 400 and "regex" in str(err.value.outcome())


def test_two_filters_intersect() -> None:
    filters = [
        {"property": "concept", "op": "is-a", "value": "a"},
        {"property": "concept", "op": "is-not-a", "value": "b"},
    ]
    vs = _vs("urn:vs", [{"system": CS, "filter": filters}])
    assert expand(Source(_cs(), vs), "urn:vs") == _codes("a", "d")


def test_imports_are_expanded_and_intersected() -> None:
    part1 = _vs("urn:p1", [{"system": CS, "concept": [{"code": "a"}, {"code": "b"}]}])
    part2 = _vs("urn:p2", [{"system": CS, "concept": [{"code": "b"}, {"code": "c"}]}])
    union = _vs(
        "urn:u", [{"valueSet": ["urn:p1"]}, {"valueSet": ["urn:p2"]}], [{"system": CS, "concept": [{"code": "a"}]}]
    )
    both = _vs("urn:both", [{"valueSet": ["urn:p1", "urn:p2"]}])
    with_system = _vs(
        "urn:ws",
        [{"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "b"}], "valueSet": ["urn:p1"]}],
    )
    source = Source(_cs(), part1, part2, union, both, with_system)
    assert expand(source, "urn:u") == _codes("b", "c")
    assert expand(source, "urn:both") == _codes("b")
    assert expand(source, "urn:ws") == _codes("b")


def test_import_cycle_is_an_error() -> None:
    one = _vs("urn:one", [{"valueSet": ["urn:two"]}])
    two = _vs("urn:two", [{"valueSet": ["urn:one"]}])
    with pytest.raises(FhirError) as err:
        expand(Source(one, two), "urn:one")
    assert err.value.status == 400 and "cycle" in str(err.value.outcome())


def test_unknown_and_unexpandable() -> None:
    for source, canonical, text in [
        (Source(), "urn:nope", "Unknown ValueSet"),
        (Source(_vs("urn:vs", [{"system": "urn:missing"}])), "urn:vs", "Unknown CodeSystem"),
        (Source({"resourceType": "ValueSet", "url": "urn:vs"}), "urn:vs", "neither an expansion"),
        (Source(_vs("urn:vs", [{"valueSet": ["urn:gone"]}])), "urn:vs", "Unknown ValueSet 'urn:gone'"),
    ]:
        with pytest.raises(FhirError) as err:
            expand(source, canonical)
        outcome = str(err.value.outcome())
        assert err.value.status == 400 and text in outcome, outcome


def test_expansion_contains_wins_over_compose() -> None:
    vs = _vs("urn:vs", [{"system": CS}])
    vs["expansion"] = {
        "contains": [{"system": OTHER, "code": "x", "contains": [{"system": OTHER, "code": "y"}]}, {"abstract": True}]
    }
    assert expand(Source(vs), "urn:vs") == _codes("x", "y", system=OTHER)


def test_too_costly() -> None:
    big = {
        "resourceType": "CodeSystem",
        "url": CS,
        "content": "complete",
        "concept": [{"code": str(i)} for i in range(30)],
    }
    vs = _vs("urn:vs", [{"system": CS}])
    assert len(expand(Source(big, vs), "urn:vs", limit=30)) == 30
    with pytest.raises(FhirError) as err:
        expand(Source(big, vs), "urn:vs", limit=29)
    assert "too-costly" in str(err.value.outcome())


def test_subsumption() -> None:
    source = Source(_cs())
    assert subsumption(source, CS, "a", "below") == _codes("a", "b", "c", "d")
    assert subsumption(source, CS, "c", "above") == _codes("a", "b", "c")
    assert subsumption(source, CS, "f", "above") == _codes("e", "f")
    assert subsumption(source, CS, "zz", "below") == _codes("zz")
    with pytest.raises(FhirError):
        subsumption(source, OTHER, "a", "below")


def test_hierarchy_survives_loops() -> None:
    cs = {
        "url": CS,
        "concept": [
            {"code": "a", "property": [{"code": "parent", "valueCode": "b"}]},
            {"code": "b", "property": [{"code": "parent", "valueCode": "a"}]},
        ],
    }
    assert Hierarchy(cs).descendants("a") == {"a", "b"}


def test_packaged_r4_terminology() -> None:
    terminology = Terminology()
    gender = expand(terminology, "http://hl7.org/fhir/ValueSet/administrative-gender")
    assert gender == _codes("male", "female", "other", "unknown", system="http://hl7.org/fhir/administrative-gender")
    assert packaged("CodeSystem", "http://hl7.org/fhir/administrative-gender") is not None
    assert expand(terminology, "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1") == gender
    with pytest.raises(FhirError):
        expand(terminology, "http://hl7.org/fhir/ValueSet/administrative-gender|0.0.0")
