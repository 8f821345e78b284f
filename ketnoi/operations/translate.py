"""``ConceptMap/$translate`` (http://hl7.org/fhir/R4/conceptmap-operation-translate.html), GET and POST.

The map is ``url`` (+ ``conceptMapVersion``; stored first, then the packaged ones such as
``https://fhir.ketnoi.vn/ConceptMap/vn-admin-unit-legacy-to-2025``) or the instance
``ConceptMap/[id]/$translate``; this server does not guess a map from ``source`` / ``target`` alone
(400: name the map), but when given they must match the map's source / target value sets, since a
caller naming them expects that map. The code is ``system`` + ``code``, a ``coding`` or a
``codeableConcept``; ``targetsystem`` keeps the groups into that system; ``reverse`` reads the map
from target to source.

The answer: ``result`` (true when one match is neither ``unmatched`` nor ``disjoint``), a ``message``
when there is no match (English, Vietnamese as the translation extension, as ``$validate-code``),
and one ``match`` per target: ``equivalence``, ``concept`` (a Coding), ``source`` (the map's url).
A former commune split between new communes has several matches (``narrower``).
"""

from __future__ import annotations

from typing import Any

from ketnoi.fhir.outcome import bad_request, not_found
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.operations.terminology_common import Params, coding_parts, stored, translated

_ALLOWED = frozenset(
    {"url", "conceptMap", "conceptMapVersion", "code", "system", "version", "source", "coding", "codeableConcept",
     "target", "targetsystem", "reverse", "dependency"}
)  # fmt: skip
_NO_MATCH = ("unmatched", "disjoint")


def _concept_map(repo: Repository, params: Params, id: str | None) -> dict[str, Any]:
    if id is not None:
        return stored(repo, "ConceptMap", id)
    posted = params.structure("conceptMap")
    if posted is not None:
        return posted
    url = params.text("url")
    if not url:
        raise bad_request(
            "$translate needs the ConceptMap: url, or ConceptMap/[id]/$translate",
            "$translate cần ConceptMap: url, hoặc ConceptMap/[id]/$translate",
            code="required",
        )
    found = repo.terminology().concept_map(url, params.text("conceptMapVersion"))
    if found is None:
        raise not_found(
            f"ConceptMap '{url[:200]}' is not known to this server", f"Máy chủ này không biết ConceptMap '{url[:200]}'"
        )
    return found


def _check_scope(params: Params, cmap: dict[str, Any], reverse: bool) -> None:
    """``source`` / ``target`` (value sets), when given, must be the map's (swapped for reverse)."""
    sides = {"source": _scope(cmap, "source"), "target": _scope(cmap, "target")}
    if reverse:
        sides = {"source": sides["target"], "target": sides["source"]}
    for name, have in sides.items():
        given = params.text(name)
        if given and have and given != have:
            raise bad_request(
                f"$translate: {name} '{given[:200]}' is not this ConceptMap's ({have[:200]})",
                f"$translate: {name} '{given[:200]}' không phải của ConceptMap này ({have[:200]})",
            )


def _scope(cmap: dict[str, Any], side: str) -> str | None:
    for key in (f"{side}Uri", f"{side}Canonical"):
        if isinstance(cmap.get(key), str):
            return str(cmap[key])
    return None


def _codings(params: Params) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    code = params.text("code")
    if code:
        out.append((params.text("system"), code))
    coding, concept = params.structure("coding"), params.structure("codeableConcept")
    for c in [coding] if coding else (concept or {}).get("coding") or ():
        system, c_code, _ = coding_parts(c if isinstance(c, dict) else None)
        if c_code:
            out.append((system, c_code))
    if not out:
        raise bad_request(
            "$translate needs a code (with its system), a coding or a codeableConcept",
            "$translate cần code (cùng system), coding hoặc codeableConcept",
            code="required",
        )
    return out


def translate(
    cmap: dict[str, Any], codings: list[tuple[str | None, str]], reverse: bool, target: str | None
) -> list[dict[str, Any]]:
    """The matches of ``codings`` in ``cmap``, in map order."""
    url = str(cmap.get("url", ""))
    matches: list[dict[str, Any]] = []
    for group in cmap.get("group") or ():
        if not isinstance(group, dict):
            continue
        src, dst = group.get("source"), group.get("target")
        if reverse:
            src, dst = dst, src
        if target is not None and dst != target:
            continue
        for system, code in codings:
            if system is not None and src is not None and system != src:
                continue
            for element in group.get("element") or ():
                for t in element.get("target") or () if isinstance(element, dict) else ():
                    if not isinstance(t, dict):
                        continue
                    here, there = (t, element) if reverse else (element, t)
                    if here.get("code") != code:
                        continue
                    concept = {
                        k: v
                        for k, v in (("system", dst), ("code", there.get("code")), ("display", there.get("display")))
                        if isinstance(v, str)
                    }
                    match: dict[str, Any] = {"name": "match", "part": [
                        {"name": "equivalence", "valueCode": str(t.get("equivalence", "equivalent"))},
                        {"name": "concept", "valueCoding": concept},
                        {"name": "source", "valueUri": url},
                    ]}  # fmt: skip
                    matches.append(match)
    return matches


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    params = Params(request, "translate", _ALLOWED)
    cmap = _concept_map(repo, params, id)
    reverse = params.boolean("reverse")
    _check_scope(params, cmap, reverse)
    codings = _codings(params)
    matches = translate(cmap, codings, reverse, params.text("targetsystem"))
    result = any(m["part"][0]["valueCode"] not in _NO_MATCH for m in matches)
    out: list[dict[str, Any]] = [{"name": "result", "valueBoolean": result}]
    if not result:
        what = ", ".join(f"{s or ''}|{c}" for s, c in codings)[:200]
        out.append(translated(
            "message",
            f"No mapping for '{what}' in the ConceptMap '{str(cmap.get('url', ''))[:200]}'",
            f"Không có ánh xạ cho '{what}' trong ConceptMap '{str(cmap.get('url', ''))[:200]}'",
        ))  # fmt: skip
    out.extend(matches)
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": out})


OPERATION = Operation(
    name="translate",
    handler=handle,
    levels=frozenset({"type", "instance"}),
    types=frozenset({"ConceptMap"}),
    methods=frozenset({"GET", "POST"}),
    write=False,
    access="read",  # maps codes with shared reference data; an instance needs read permission
    definition={"name": "translate", "definition": "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate"},
)
