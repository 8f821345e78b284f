"""The Python forms of ketnoi's own package constraints agree with fhirpathpy on the package's
expressions (ketnoi.validation.ketnoi_constraints)."""

from __future__ import annotations

import copy
from typing import Any

import fhirpathpy
import pytest
from fhirpathpy.models import models

from ketnoi.demo.generate import iter_blocks
from ketnoi.fhir import packages
from ketnoi.validation.ketnoi_constraints import PYTHON_CONSTRAINTS


def _package_constraints() -> dict[str, str]:
    found: dict[str, str] = {}
    for resource in packages.shipped_resources():
        if resource.get("resourceType") != "StructureDefinition" or "ketnoi.vn" not in resource.get("url", ""):
            continue
        for element in resource.get("differential", {}).get("element", []):
            for constraint in element.get("constraint", []):
                found[constraint["key"]] = constraint["expression"]
    return found


def _coverages() -> list[dict[str, Any]]:
    found = [r for block, _ in iter_blocks(40, 1, 0.0) for r in block if r["resourceType"] == "Coverage"]
    assert len(found) >= 10
    variants: list[dict[str, Any]] = []
    for coverage in found[:10]:
        wrong = copy.deepcopy(coverage)
        for item in wrong["class"]:
            if item["type"]["coding"][0]["code"] == "class":
                item["value"] = "9"
        no_card = copy.deepcopy(coverage)
        no_card["identifier"] = [{"system": "urn:oid:1.2.3", "value": "x"}]
        no_class = copy.deepcopy(coverage)
        del no_class["class"]
        variants += [wrong, no_card, no_class]
    return found + variants


def test_every_ketnoi_constraint_has_a_python_form() -> None:
    assert set(_package_constraints()) == set(PYTHON_CONSTRAINTS)


@pytest.mark.parametrize("key", sorted(PYTHON_CONSTRAINTS))
def test_python_form_agrees_with_fhirpath(key: str) -> None:
    evaluate = fhirpathpy.compile(_package_constraints()[key], models["r4"])
    outcomes = []
    for coverage in _coverages():
        expected = evaluate(coverage) != [False]
        assert PYTHON_CONSTRAINTS[key](coverage) is expected, coverage
        outcomes.append(expected)
    assert True in outcomes and False in outcomes  # both answers were exercised
