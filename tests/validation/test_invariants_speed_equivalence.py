"""The invariant walk's shortcuts change nothing: ``check_invariants`` against a naive walk.

``check_invariants`` skips values that cannot hold a constraint, renders locations only for
failures and tests ``Invariant.unless`` before a check (ketnoi.validation.invariants). The naive
walk below does none of that: it enters every complex value, builds every path and runs every
constraint through ``_passes``; both must report the same issues, in the same order.
"""

from __future__ import annotations

import contextlib
import copy
import random
from typing import Any

import orjson
import pytest
from fhirpathpy.parser import parse

from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import Issue
from ketnoi.validation import invariant_rules as rules
from ketnoi.validation import invariants as inv
from ketnoi.validation.tables import Kind, Table, type_table
from tests.support.fhir_examples import EXAMPLES, FILES

_SKIPPED = (Kind.PRIMITIVE, Kind.PRIMITIVE_EXT, Kind.RESOURCE_TYPE)


def _own(table: Table, name: str) -> tuple[inv.Invariant, ...]:
    elem = table.elements[name]
    base = name[: len(name) - len(elem.type_code)] + "[x]" if elem.choice else name
    return tuple(inv._index().get(f"{table.path}.{base}", ()))


class _Naive:
    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def resource(self, value: dict[str, Any], path: str, root: dict[str, Any]) -> None:
        rtype = value.get("resourceType")
        if type(rtype) is str and rtype in resource_types():
            self.members(value, type_table(rtype), inv._type_invariants(rtype), path, value, root)

    def members(
        self,
        obj: dict[str, Any],
        table: Table,
        invariants: tuple[inv.Invariant, ...],
        path: str,
        res: dict[str, Any],
        root: dict[str, Any],
    ) -> None:
        self.issues.extend(inv._issue(i, path) for i in invariants if not inv._passes(i, obj, res, root))
        for key, value in obj.items():
            elem = table.elements.get(key)
            if elem is None or elem.kind in _SKIPPED:
                continue
            items = enumerate(value) if type(value) is list else [(-1, value)]
            for index, item in items:
                where = f"{path}.{key}" if index < 0 else f"{path}.{key}[{index}]"
                if type(item) is not dict:
                    continue
                if elem.kind is Kind.RESOURCE:
                    self.resource(item, where, root if key == "contained" else item)
                elif elem.kind is Kind.BACKBONE:
                    assert elem.table is not None
                    self.members(item, elem.table, inv._type_invariants(elem.table.path), where, res, root)
                else:
                    own = inv._type_invariants(elem.type_code)
                    own += tuple(i for i in _own(table, key) if all(i.key != j.key for j in own))
                    self.members(item, elem.table or type_table(elem.type_code), own, where, res, root)


def naive(resource: dict[str, Any]) -> list[Issue]:
    walker = _Naive()
    with contextlib.suppress(Exception):  # like check_invariants: what was found so far
        walker.resource(resource, resource.get("resourceType", ""), resource)
    return walker.issues


def _objects(value: Any, out: list[dict[str, Any]]) -> None:
    if type(value) is dict:
        out.append(value)
        for item in value.values():
            _objects(item, out)
    elif type(value) is list:
        for item in value:
            _objects(item, out)


def _mutant(resource: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy with one property dropped or grafted from elsewhere: the failures a guard or a
    skipped value would hide."""
    copied = copy.deepcopy(resource)
    objects: list[dict[str, Any]] = []
    _objects(copied, objects)
    target, source = rng.choice(objects), rng.choice(objects)
    keys = [k for k in source if k != "resourceType"]
    if keys:
        key = rng.choice(keys)
        if rng.random() < 0.5:
            target[key] = copy.deepcopy(source[key])
        else:
            del source[key]
    return copied


@pytest.mark.parametrize("name", FILES)
def test_official_example_and_its_mutants(name: str) -> None:
    resource = orjson.loads((EXAMPLES / name).read_bytes())
    for variant in (resource, _mutant(resource, random.Random(name))):
        assert inv.check_invariants(variant) == naive(variant)


def test_locations_are_rendered_like_the_naive_walk() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "managingOrganization": {"reference": "#x"}}},
            {
                "resource": {
                    "resourceType": "Encounter",
                    "contained": [{"resourceType": "Organization", "id": "o"}],
                    "participant": [{}, {"period": {"start": "2024-02-02", "end": "2024-02-01"}}],
                    "diagnosis": [{"condition": {"reference": "#nope", "extension": [{"url": "u"}]}}],
                }
            },
        ],
    }
    found = inv.check_invariants(bundle)
    assert found == naive(bundle)
    assert ("ref-1", "Bundle.entry[0].resource.managingOrganization") in _keys(found)
    assert ("per-1", "Bundle.entry[1].resource.participant[1].period") in _keys(found)
    assert ("ext-1", "Bundle.entry[1].resource.diagnosis[0].condition.extension[0]") in _keys(found)
    assert ("dom-3", "Bundle.entry[1].resource") in _keys(found)


def _keys(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.en.split(":")[1].strip(), i.expression[0]) for i in issues]


def test_an_extension_deep_in_a_plain_coding_is_still_checked() -> None:
    """A Coding has no constraint of its own: only its extension makes the walk enter it."""
    coding = {"system": "http://loinc.org", "code": "1", "extension": [{"url": "u"}]}
    obs = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"code": "2"}, coding]}}
    assert ("ext-1", "Observation.code.coding[1].extension[0]") in _keys(inv.check_invariants(obs))


@pytest.mark.parametrize(
    ("expression", "without", "with_"),
    [
        ("code.empty() or system.exists()", {"code", "_code"}, {"system"}),
        ("system.exists() or code.empty()", {"code", "_code"}, {"system"}),
        ("code.exists() implies system.exists()", {"code", "_code"}, {"system"}),
        ("(code.hasValue()) implies system.exists()", {"code", "_code"}, {"system"}),
        ("system.exists() implies code.empty()", {"system", "_system"}, set()),
        ("system.count() > 1 implies code.empty()", {"code", "_code"}, set()),
        ("code.exists() and system.exists()", set(), set()),
        ("code.exists() xor system.exists()", set(), set()),
        ("code.exists() or system.exists()", set(), {"code"}),
        ("unknownName.empty() or system.exists()", set(), set()),
        # The right operand only counts after a left one that cannot raise: a test on one member.
        ("code.extension.exists() or system.empty()", set(), set()),
        ("unit.exists() or system.exists()", set(), {"unit"}),
    ],
)
def test_passes_without_and_with(expression: str, without: set[str], with_: set[str]) -> None:
    tree = parse(expression)  # type: ignore[no-untyped-call]
    assert set(rules.passes_without(tree, type_table("Quantity"))) == without
    assert set(rules.passes_with(tree, type_table("Quantity"))) == with_


def test_the_right_operand_is_not_used_after_a_nested_resource() -> None:
    """``_navigate`` looks up a nested resource's table, which raises for an unknown type."""
    tree = parse("resource.exists() or search.empty()")  # type: ignore[no-untyped-call]
    entry = inv._table_for("Bundle.entry")
    assert rules.passes_without(tree, entry) == ()
    assert rules.passes_with(tree, entry) == ()


def test_every_guard_holds() -> None:
    """``unless`` may only name properties whose absence makes the constraint pass, ``holds_with``
    properties whose presence does."""
    for invariant in inv.all_invariants():
        inv._prepare(invariant)
        if invariant.unless:
            assert inv._passes(invariant, {"id": "x"}, {}, {}), invariant.key
        for name in invariant.holds_with:
            assert inv._passes(invariant, {name: "x"}, {}, {}), invariant.key


_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
# A focus each guarded hand-written check fails on: it must hold one of the guard's names.
_FAILING: dict[str, dict[str, Any]] = {
    "dom-2": {"contained": [{"resourceType": "Patient", "contained": [{"resourceType": "Patient"}]}]},
    "dom-3": {"contained": [{"resourceType": "Patient", "id": "a"}]},
    "dom-4": {"contained": [{"resourceType": "Patient", "meta": {"versionId": "1"}}]},
    "dom-5": {"contained": [{"resourceType": "Patient", "meta": {"security": [{"code": "x"}]}}]},
    "con-5": {"verificationStatus": {"coding": [{"system": _VER, "code": "entered-in-error"}]}, "clinicalStatus": {}},
    "que-7": {"operator": "exists", "answerString": "x"},
    "tim-4": {"duration": -1},
    "tim-5": {"period": -1},
    "tim-9": {"offset": 1, "when": ["C"]},
}


def test_guards_of_hand_written_checks_name_what_they_read() -> None:
    assert set(_FAILING) == set(rules.PASSES_WITHOUT)
    for key, focus in _FAILING.items():
        assert not rules.PYTHON_CHECKS[key](focus, focus, focus), key
        assert not focus.keys().isdisjoint(rules.PASSES_WITHOUT[key]), key


@pytest.mark.parametrize(
    "contained",
    [
        [{"resourceType": "Organization", "id": "a"}],
        [{"resourceType": "Organization", "id": "a"}, {"resourceType": "Organization", "id": "b"}],
        [{"resourceType": "Organization", "id": "a", "partOf": {"reference": "#"}}],
        [{"resourceType": "Organization"}, "not an object"],
    ],
)
@pytest.mark.parametrize("where", ["before", "after", "narrative", "nowhere"])
def test_dom_3_stops_early_only_when_every_target_is_found(contained: list[Any], where: str) -> None:
    patient: dict[str, Any] = {"resourceType": "Patient", "contained": contained}
    refs = [{"reference": "#a"}]
    if where == "before":
        patient = {"resourceType": "Patient", "generalPractitioner": refs, "contained": contained}
    elif where == "after":
        patient["generalPractitioner"] = refs
    elif where == "narrative":
        patient["text"] = {"status": "generated", "div": '<div><a href="#b">b</a><img src="#a"/></div>'}
    ids = {c.get("id") for c in contained if type(c) is dict and "partOf" not in c}
    referenced = {"before": {"a"}, "after": {"a"}, "narrative": {"a", "b"}, "nowhere": set()}[where]
    assert rules._dom_3(patient, patient, patient) == (ids <= referenced)
    assert inv.check_invariants(patient) == naive(patient)
