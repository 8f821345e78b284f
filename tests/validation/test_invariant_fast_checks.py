"""The Python forms of the commonest invariants (``invariant_rules.PYTHON_CHECKS``: obs-7, con-3..5,
drt-1, tim-4, tim-5, tim-9) decide exactly what fhirpathpy decides from the R4 expression, on
passing, failing and edge inputs (absent elements, three-valued logic, several codings)."""

from __future__ import annotations

from typing import Any

import fhirpathpy
import pytest
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from ketnoi.validation.invariant_rules import PYTHON_CHECKS
from ketnoi.validation.invariants import _FHIRPATH_OPTIONS, all_invariants

LOINC = "http://loinc.org"
HR = {"system": LOINC, "code": "8867-4"}
BP = {"system": LOINC, "code": "85354-9"}
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _cc(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


OBS: list[dict[str, Any]] = [
    {"resourceType": "Observation", "code": {"coding": [HR]}},
    {"resourceType": "Observation", "code": {"coding": [HR]}, "valueQuantity": {"value": 1}},
    {
        "resourceType": "Observation",
        "code": {"coding": [BP]},
        "valueString": "x",
        "component": [{"code": {"coding": [HR]}}],
    },
    {
        "resourceType": "Observation",
        "code": {"coding": [HR]},
        "valueString": "x",
        "component": [{"code": {"coding": [HR]}}],
    },
    {
        "resourceType": "Observation",
        "code": {"coding": [BP, HR]},
        "valueBoolean": True,
        "component": [{"code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "x"}]}}],
    },
    {"resourceType": "Observation", "code": {"coding": [BP]}, "component": [{"code": {"coding": [BP]}}]},
]
CONDITIONS: list[dict[str, Any]] = [
    {"resourceType": "Condition"},
    {"resourceType": "Condition", "category": [_cc("x", "problem-list-item")]},
    {"resourceType": "Condition", "clinicalStatus": _cc(CLIN, "active")},
    {"resourceType": "Condition", "verificationStatus": _cc(VER, "entered-in-error"), "category": [_cc("x", "y")]},
    {
        "resourceType": "Condition",
        "verificationStatus": _cc(VER, "entered-in-error"),
        "clinicalStatus": _cc(CLIN, "active"),
    },
    {"resourceType": "Condition", "abatementDateTime": "2020", "clinicalStatus": _cc(CLIN, "active")},
    {"resourceType": "Condition", "abatementDateTime": "2020", "clinicalStatus": _cc(CLIN, "resolved")},
    {"resourceType": "Condition", "abatementString": "x", "clinicalStatus": _cc("other", "resolved")},
    {"resourceType": "Condition", "abatementAge": {"value": 3}},
]
DURATIONS: list[dict[str, Any]] = [
    {},
    {"value": 1},
    {"code": "d", "value": 1, "system": "http://unitsofmeasure.org"},
    {"code": "d", "value": 1},
    {"code": "d"},
    {"code": "d", "system": "http://unitsofmeasure.org"},
    {"code": "d", "value": 1, "system": "other"},
]
REPEATS: list[dict[str, Any]] = [
    {},
    {"duration": 0, "period": 1},
    {"duration": -1},
    {"period": -0.5},
    {"offset": 30},
    {"offset": 30, "when": ["ACM"]},
    {"offset": 30, "when": ["CM"]},
    {"offset": 30, "when": ["ACM", "PCM"]},
    {"when": ["CM"]},
]
CASES = [
    ("obs-7", "Observation", OBS),
    ("con-3", "Condition", CONDITIONS),
    ("con-4", "Condition", CONDITIONS),
    ("con-5", "Condition", CONDITIONS),
    ("drt-1", "Duration", DURATIONS),
    ("tim-4", "Timing.repeat", REPEATS),
    ("tim-5", "Timing.repeat", REPEATS),
    ("tim-9", "Timing.repeat", REPEATS),
]


def _expression(key: str) -> str:
    return next(i.expression for i in all_invariants() if i.key == key)


def _fhirpath(key: str, path: str, focus: dict[str, Any], resource: dict[str, Any]) -> bool | None:
    """fhirpathpy's verdict: True/False, or None when it cannot evaluate (an error)."""
    evaluate = fhirpathpy.compile(_expression(key), models["r4"], _FHIRPATH_OPTIONS)
    env = {"resource": ResourceNode.create_node(resource, resource.get("resourceType"))}
    try:
        result = evaluate(ResourceNode.create_node(focus, path), env)
    except Exception:
        return None
    return result != [False]


@pytest.mark.parametrize(("key", "path", "inputs"), CASES, ids=[c[0] for c in CASES])
def test_the_python_check_agrees_with_fhirpath(key: str, path: str, inputs: list[dict[str, Any]]) -> None:
    check = PYTHON_CHECKS[key]
    decided = []
    for focus in inputs:
        resource = focus if "resourceType" in focus else {"resourceType": "Basic"}
        expected = _fhirpath(key, path, focus, resource)
        ours = check(focus, resource, resource)
        if expected is not None:  # fhirpathpy errors (several ``when`` with ``in``): ours is documented
            assert ours == expected, (key, focus)
        decided.append(ours)
    assert True in decided and False in decided, f"{key}: the inputs must pass and fail"
