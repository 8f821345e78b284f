"""Residence codes of the claims XML (MATINH/MAHUYEN/MAXA_CU_TRU) read against the units ketnoi ships.

A claim may carry the codes in force since 01/07/2025 (34 provinces, communes, no districts) or the codes
before the merger (63 provinces, districts, communes). Old codes are carried to today's units through the
ConceptMap ``vn-admin-unit-legacy-to-2025``; a district, which no longer exists, through its old province.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from ketnoi.terminology.vn import ADMIN_2025_URL, ADMIN_LEGACY_URL, ADMIN_MAP_URL, vn_resources


@dataclass(frozen=True, slots=True)
class Unit:
    code: str
    display: str
    parent: str  # the province's code; "" for a province


@dataclass(frozen=True, slots=True)
class _Tables:
    today: dict[str, Unit]
    legacy: dict[str, Unit]
    mapped: dict[str, str]  # legacy code -> today's code (first target)


def _units(system: dict[str, Any]) -> dict[str, Unit]:
    found: dict[str, Unit] = {}

    def walk(concepts: list[dict[str, Any]], province: str) -> None:
        for concept in concepts:
            code = concept["code"]
            found[code] = Unit(code, concept.get("display", code), province)
            walk(concept.get("concept", []), province or code)

    walk(system.get("concept", []), "")
    return found


@cache
def _tables() -> _Tables:
    by_url = {r.get("url"): r for r in vn_resources()}
    mapped: dict[str, str] = {}
    for group in by_url[ADMIN_MAP_URL].get("group", []):
        for element in group.get("element", []):
            targets = element.get("target", [])
            if targets:
                mapped[element["code"]] = targets[0]["code"]
    return _Tables(_units(by_url[ADMIN_2025_URL]), _units(by_url[ADMIN_LEGACY_URL]), mapped)


def province(code: str | None) -> Unit | None:
    """Today's province for a province code of either era (two digits; the XML allows three)."""
    if not code:
        return None
    code = code.strip()[-2:]
    t = _tables()
    legacy = t.legacy.get(code)
    if legacy is not None and not legacy.parent and code in t.mapped:
        return t.today.get(t.mapped[code])
    unit = t.today.get(code)
    return unit if unit is not None and not unit.parent else None


def commune(code: str | None) -> Unit | None:
    """Today's commune for a commune code: itself if it is one of today's, else the old one's successor."""
    if not code:
        return None
    t = _tables()
    unit = t.today.get(code)
    if unit is not None and unit.parent:
        return unit
    target = t.mapped.get(code)
    return t.today.get(target) if target else None


def district(code: str | None, province_code: str | None) -> Unit | None:
    """An old district (abolished on 01/07/2025) by its three-digit code, checked against the province."""
    if not code or code.strip("0") == "":
        return None
    unit = _tables().legacy.get(code)
    if unit is None or len(code) != 3:
        return None
    today = province(unit.parent)
    wanted = province(province_code)
    return unit if wanted is None or today is None or today.code == wanted.code else None


def legacy_province_of(district_code: str) -> Unit | None:
    unit = _tables().legacy.get(district_code)
    return province(unit.parent) if unit is not None else None
