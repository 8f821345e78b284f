"""``CodeSystem/$lookup`` (http://hl7.org/fhir/R4/codesystem-operation-lookup.html), GET and POST.

The code is ``system`` + ``code`` (+ ``version``) or a ``coding``. The answer is a Parameters with
``name``, ``version``, ``display`` (in ``displayLanguage`` when a designation in it exists),
``designation`` and ``property``: the concept's own properties plus ``parent`` and ``child`` from
the hierarchy (nested concepts and parent/child properties, as ``ketnoi.terminology.expand`` reads
it). ``property`` (repeatable) keeps only the properties named. An unknown system, or a code that
is not in it, is a 404 not-found naming it.
"""

from __future__ import annotations

from typing import Any

from ketnoi.fhir.outcome import not_found
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.operations.terminology_common import Params, code_system_or_404, coding_parts, pick_display
from ketnoi.terminology.expand import Hierarchy

_ALLOWED = frozenset({"system", "code", "version", "coding", "displayLanguage", "property", "date"})


def _part(name: str, value: Any) -> dict[str, Any]:
    """A ``part`` holding ``value`` under the right value[x]."""
    if isinstance(value, bool):
        return {"name": name, "valueBoolean": value}
    if isinstance(value, int):
        return {"name": name, "valueInteger": value}
    if isinstance(value, dict):
        return {"name": name, "valueCoding": value}
    return {"name": name, "valueString": str(value)}


def _properties(concept: dict[str, Any], tree: Hierarchy, code: str) -> list[tuple[str, dict[str, Any]]]:
    """(property code, its value part) for each property of the concept, parents and children included."""
    out: list[tuple[str, dict[str, Any]]] = []
    for prop in concept.get("property") or ():
        if not isinstance(prop, dict) or prop.get("code") in ("parent", "child"):
            continue  # the hierarchy below gives these, once, whatever form they were written in
        for key, value in prop.items():
            if key.startswith("value"):
                out.append((str(prop.get("code")), {"name": "value", key: value}))
    for parent in sorted(tree.parents.get(code, ())):
        out.append(("parent", {"name": "value", "valueCode": parent}))
    for child in sorted(tree.children.get(code, ())):
        out.append(("child", {"name": "value", "valueCode": child}))
    return out


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    params = Params(request, "lookup", _ALLOWED)
    c_system, c_code, _ = coding_parts(params.structure("coding"))
    system, code = params.text("system") or c_system, params.text("code") or c_code
    params.require("system", system)
    params.require("code", code)
    system, code = str(system), str(code)
    version = params.text("version")
    cs = code_system_or_404(repo.terminology(), system, version)
    tree = Hierarchy(cs)
    concept = tree.concepts.get(code)
    if concept is None:
        raise not_found(
            f"The code '{code[:100]}' is not in the CodeSystem '{system[:200]}'",
            f"Mã '{code[:100]}' không có trong CodeSystem '{system[:200]}'",
        )
    wanted = set(params.texts("property"))
    out: list[dict[str, Any]] = [{"name": "name", "valueString": str(cs.get("title") or cs.get("name") or system)}]
    if isinstance(cs.get("version"), str):
        out.append({"name": "version", "valueString": cs["version"]})
    display = pick_display(concept, params.text("displayLanguage"))
    if display is not None:
        out.append({"name": "display", "valueString": display})
    for d in concept.get("designation") or ():
        if isinstance(d, dict) and isinstance(d.get("value"), str):
            parts = [{"name": "language", "valueCode": d["language"]}] if isinstance(d.get("language"), str) else []
            if isinstance(d.get("use"), dict):
                parts.append(_part("use", d["use"]))
            parts.append({"name": "value", "valueString": d["value"]})
            out.append({"name": "designation", "part": parts})
    if isinstance(concept.get("definition"), str) and (not wanted or "definition" in wanted):
        out.append({"name": "property", "part": [{"name": "code", "valueCode": "definition"},
                                                 {"name": "value", "valueString": concept["definition"]}]})  # fmt: skip
    for name, value in _properties(concept, tree, code):
        if not wanted or name in wanted:
            out.append({"name": "property", "part": [{"name": "code", "valueCode": name}, value]})
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": out})


OPERATION = Operation(
    name="lookup",
    handler=handle,
    levels=frozenset({"type"}),
    types=frozenset({"CodeSystem"}),
    methods=frozenset({"GET", "POST"}),
    write=False,
    access="read",  # a code's meaning is shared reference data, open to any caller
    definition={"name": "lookup", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"},
)
