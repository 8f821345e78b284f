"""``_summary`` and ``_elements`` (http://hl7.org/fhir/R4/search.html#summary): subsets of a resource.

Which top-level elements are "summary" comes from ``isSummary`` in the base StructureDefinitions.
A subsetted resource is tagged SUBSETTED so nobody mistakes it for the whole (and writes it back).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ketnoi.fhir.definitions import structure_definitions

_SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


@cache
def _top_level(rtype: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary element names, mandatory element names) of a type; choice names end with [x]."""
    sd = structure_definitions().get(rtype, {})
    summary: set[str] = set()
    mandatory: set[str] = set()
    for element in sd.get("snapshot", {}).get("element", []):
        path: str = element["path"]
        if path.count(".") != 1:
            continue
        name = path.split(".", 1)[1]
        if element.get("isSummary"):
            summary.add(name)
        if element.get("min", 0) > 0:
            mandatory.add(name)
    return frozenset(summary), frozenset(mandatory)


def _keep(key: str, names: frozenset[str] | set[str]) -> bool:
    base = key[1:] if key.startswith("_") else key
    if base in names:
        return True
    return any(n.endswith("[x]") and base.startswith(n[:-3]) and base[len(n) - 3 : len(n) - 2].isupper() for n in names)


def subset(resource: dict[str, Any], summary: str | None, elements: tuple[str, ...]) -> dict[str, Any]:
    """The resource reduced per ``_summary`` (true/text/data) or ``_elements``."""
    rtype = str(resource.get("resourceType"))
    summary_names, mandatory = _top_level(rtype)
    if summary == "data":
        out = {k: v for k, v in resource.items() if k != "text"}
    elif summary == "text":
        out = {k: v for k, v in resource.items() if k in _ALWAYS or k == "text" or _keep(k, mandatory)}
    elif summary == "true":
        out = {k: v for k, v in resource.items() if k in _ALWAYS or _keep(k, summary_names)}
    elif elements:
        wanted = {e.split(".", 1)[-1] if e.startswith(rtype + ".") else e for e in elements}
        out = {k: v for k, v in resource.items() if k in _ALWAYS or _keep(k, wanted) or _keep(k, mandatory)}
    else:
        return resource
    if out != resource:
        meta = dict(out.get("meta") or {})
        meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
        out["meta"] = meta
    return out
