"""Displays of the claims code lists ketnoi ships (``vn-claims-tables``), and the field bag.

A field with no natural FHIR home (a reserved field, a settlement month, tender details) is not dropped:
it is kept verbatim in the ``xml130-field`` extension, so that nothing a hospital sent is lost and the
export writes it back as it came (docs/xml130.md, the mapping table, says which fields go there).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, coding, money
from ketnoi.claims.row import Row
from ketnoi.terminology.vn import vn_resources

FIELD_URL = s.EXT + "xml130-field"


@cache
def _displays() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for resource in vn_resources():
        if resource.get("resourceType") == "CodeSystem" and "/xml130-" in str(resource.get("url")):
            for concept in resource.get("concept", []):
                found[(resource["url"], concept["code"])] = concept.get("display", "")
    return found


def coded(system: str, code: str | None) -> Json | None:
    """A CodeableConcept of a shipped claims code list, with its Vietnamese display."""
    if not code:
        return None
    return {"coding": [coding(system, code, _displays().get((system, code)))]}


def field_bag(row: Row, names: tuple[str, ...]) -> list[Json]:
    """The ``xml130-field`` extensions of the named fields that have a value, text as written."""
    found = []
    for name in names:
        text = row.text(name)
        if text is not None:
            found.append(
                {
                    "url": FIELD_URL,
                    "extension": [{"url": "name", "valueString": name}, {"url": "value", "valueString": text}],
                }
            )
    return found


def kept_if_lost(row: Row, name: str, shown: str | None) -> list[Json]:
    """The field in the bag when the element made of it would not give its text back: ``shown`` is what the
    export writes from the element alone (the first of several doctors, a code without a trainee's brackets,
    an instant that could have been another field's)."""
    text = row.text(name)
    return field_bag(row, (name,)) if text is not None and text != shown else []


def amounts(row: Row, names: tuple[str, ...]) -> list[Json]:
    """The ``xml130-amount`` extensions (kind + Money) of the named amount fields that have a value."""
    found = []
    for name in names:
        value = row.decimal(name)
        if value is not None:
            found.append(amount(name, value))
    return found


def amount(name: str, value: Decimal) -> Json:
    return {
        "url": s.AMOUNT_URL,
        "extension": [
            {"url": "kind", "valueCoding": coding(s.AMOUNT_KIND, name)},
            {"url": "amount", "valueMoney": money(value)},
        ],
    }


def bag_of(resource: dict[str, Any]) -> dict[str, str]:
    """The fields kept in a resource's (or element's) ``xml130-field`` extensions: name -> text."""
    found: dict[str, str] = {}
    for ext in resource.get("extension", []):
        if ext.get("url") == FIELD_URL:
            parts = {p.get("url"): p.get("valueString") for p in ext.get("extension", [])}
            if isinstance(parts.get("name"), str) and isinstance(parts.get("value"), str):
                found[str(parts["name"])] = str(parts["value"])
    return found
