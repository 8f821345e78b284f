"""Python forms of the FHIRPath constraints of ketnoi's own package (``ketnoi.fhir.vn``).

fhirpathpy takes 1-2 ms for an expression like ``ketnoi-bhyt-1`` (two ``where`` filters and a
``substring``), which would be most of the cost of validating a Coverage on every write. The
package and this module live in the same repository, and tests/validation/test_ketnoi_constraints.py
checks each function against fhirpathpy on the package's own expression (demo data and mutations),
so the two cannot drift apart. Only keys of ketnoi's namespace (``ketnoi-``) are looked up here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ketnoi.vn.identifiers import BHYT_SYSTEM

_COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _is_benefit_level(item: dict[str, Any]) -> bool:
    codings = _dicts((item.get("type") or {}).get("coding"))
    return any(c.get("system") == _COVERAGE_CLASS and c.get("code") == "class" for c in codings)


def bhyt_level_matches(coverage: Any) -> bool:
    """ketnoi-bhyt-1: character 3 of the BHYT card number is the benefit-level class value (when
    both are present). FHIRPath ``=`` between collections: equal when same length and items equal."""
    if not isinstance(coverage, dict):
        return True
    cards = [i["value"] for i in _dicts(coverage.get("identifier")) if i.get("system") == BHYT_SYSTEM and "value" in i]
    levels = [c["value"] for c in _dicts(coverage.get("class")) if _is_benefit_level(c) and "value" in c]
    if not cards or not levels:
        return True
    return [str(card)[2:3] for card in cards] == levels


PYTHON_CONSTRAINTS: dict[str, Callable[[Any], bool]] = {"ketnoi-bhyt-1": bhyt_level_matches}
