"""``ValueSet/$expand`` (http://hl7.org/fhir/R4/valueset-operation-expand.html), GET and POST.

The ValueSet is ``url`` (+ ``valueSetVersion``; ``<CodeSystem url>?vs`` is a CodeSystem's implicit
"all codes" value set), a ``valueSet`` resource in a POSTed Parameters, or the instance
``ValueSet/[id]/$expand``. The codes come from ``ketnoi.terminology.expand`` (the same expansion as
the ``:in`` search modifier); this module adds displays, the type-ahead ``filter`` and paging.

- ``filter``: every word of the filter must be the start of a word of one text of the concept (its
  display, one of its designations, or its code), compared after ``fold``: "thanh xu", "Thanh Xuân"
  and "thanh xuan" all find "Phường Thanh Xuân";
- ``count`` / ``offset``: a page; ``expansion.total`` is the number of matches, always given;
- ``displayLanguage``: the designation in that language is the display where there is one;
- ``includeDesignations``, ``activeOnly`` (drops concepts marked inactive, retired or deprecated).

Without ``filter`` or ``count``, an expansion of more than ``MAX_CODES`` codes is refused (400
too-costly, saying to add one); with either, up to ``_SCAN_LIMIT`` codes are scanned.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.operations.terminology_common import Params, pick_display, stored
from ketnoi.search.normalize import fold
from ketnoi.terminology.expand import MAX_CODES, Code, Hierarchy, Source, expand, too_costly

_SCAN_LIMIT = 100_000  # enough for the former administrative units (10,794) and ICD-10 (~12,000)
_ALLOWED = frozenset(
    {"url", "valueSetVersion", "valueSet", "filter", "count", "offset", "displayLanguage",
     "includeDesignations", "activeOnly", "context", "date"}
)  # fmt: skip
_INLINE = "urn:ketnoi:expand:inline"  # the canonical the posted or stored ValueSet is expanded under
_INACTIVE = {("status", "retired"), ("status", "inactive"), ("inactive", "true"), ("deprecated", "true")}


class WithInline:
    """A Source that also answers one given ValueSet under :data:`_INLINE` (a posted resource or an
    instance has no canonical URL of its own, or one that may differ from its stored version)."""

    def __init__(self, source: Source, value_set: dict[str, Any]) -> None:
        self.source, self.inline = source, value_set

    def value_set(self, canonical: str) -> dict[str, Any] | None:
        return self.inline if canonical == _INLINE else self.source.value_set(canonical)

    def code_system(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        return self.source.code_system(url, version)


def value_set_source(repo: Repository, params: Params, id: str | None) -> tuple[Source, str]:
    """(source, canonical) of the ValueSet a call names: the instance, a posted one, or ``url``."""
    terminology: Source = repo.terminology()
    posted = params.structure("valueSet")
    if id is not None:
        return WithInline(terminology, stored(repo, "ValueSet", id)), _INLINE
    if posted is not None:
        return WithInline(terminology, posted), _INLINE
    url = params.text("url")
    params.require("url", url)
    version = params.text("valueSetVersion")
    return terminology, f"{url}|{version}" if version else str(url)


def _concepts(source: Source, codes: frozenset[Code]) -> list[tuple[Code, dict[str, Any]]]:
    """Each code with its concept (from its CodeSystem when known), in the CodeSystem's order."""
    trees: dict[str, Hierarchy | None] = {}
    order: dict[str, dict[str, int]] = {}
    for system in {system for system, _ in codes}:
        cs = source.code_system(system)
        tree = Hierarchy(cs) if cs is not None else None
        trees[system] = tree
        order[system] = {c: i for i, c in enumerate(tree.concepts)} if tree is not None else {}
    out: list[tuple[Code, dict[str, Any]]] = []
    for system, code in sorted(codes, key=lambda p: (p[0], order[p[0]].get(p[1], -1), p[1])):
        tree = trees[system]
        concept = tree.concepts.get(code) if tree is not None else None
        out.append(((system, code), concept or {"code": code}))
    return out


def matches(words: list[str], code: str, concept: dict[str, Any]) -> bool:
    """Every filter word starts a word of one text of the concept (display, designation or code)."""
    texts = [code, concept.get("display")]
    texts += [d.get("value") for d in concept.get("designation") or () if isinstance(d, dict)]
    for text in texts:
        if isinstance(text, str):
            have = fold(text).replace("-", " ").split()
            if all(any(w.startswith(word) for w in have) for word in words):
                return True
    return False


def _active(concept: dict[str, Any]) -> bool:
    for prop in concept.get("property") or ():
        if not isinstance(prop, dict):
            continue
        for key, value in prop.items():
            if key.startswith("value"):
                text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                if (prop.get("code"), text) in _INACTIVE:
                    return False
    return True


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    params = Params(request, "expand", _ALLOWED)
    source, canonical = value_set_source(repo, params, id)
    text_filter = params.text("filter") or ""
    count, offset = params.integer("count"), params.integer("offset") or 0
    language = params.text("displayLanguage")
    designations, active_only = params.boolean("includeDesignations"), params.boolean("activeOnly")
    bounded = bool(text_filter.strip()) or count is not None
    try:
        codes = expand(source, canonical, _SCAN_LIMIT if bounded else MAX_CODES)
    except FhirError as exc:
        if exc.issues[0].code != "too-costly" or bounded:
            raise
        raise FhirError.of(
            400,
            "too-costly",
            f"{exc.issues[0].en}. Add a filter or a count (and offset) to the $expand",
            f"{exc.issues[0].vi}. Hãy thêm filter hoặc count (và offset) vào $expand",
        ) from exc
    words = fold(text_filter).replace("-", " ").split()
    found = [
        (pair, concept)
        for pair, concept in _concepts(source, codes)
        if (not words or matches(words, pair[1], concept)) and (not active_only or _active(concept))
    ]
    if not bounded and len(found) > MAX_CODES:
        raise too_costly("$expand", len(found))
    page = found[offset : offset + count] if count is not None else found[offset:]
    contains = []
    for (system, code), concept in page:
        entry: dict[str, Any] = {"system": system, "code": code}
        display = pick_display(concept, language)
        if display is not None:
            entry["display"] = display
        if designations and concept.get("designation"):
            entry["designation"] = concept["designation"]
        contains.append(entry)
    used: list[dict[str, Any]] = []
    if text_filter:
        used.append({"name": "filter", "valueString": text_filter})
    if count is not None:
        used.append({"name": "count", "valueInteger": count})
    used.append({"name": "offset", "valueInteger": offset})
    if language:
        used.append({"name": "displayLanguage", "valueCode": language})
    if designations:
        used.append({"name": "includeDesignations", "valueBoolean": True})
    if active_only:
        used.append({"name": "activeOnly", "valueBoolean": True})
    vs = source.value_set(canonical) or {}
    answer: dict[str, Any] = {"resourceType": "ValueSet"}
    answer.update({k: vs[k] for k in ("id", "url", "version", "name", "title", "status") if k in vs})
    answer.setdefault("status", "active")
    answer["expansion"] = {
        "identifier": f"urn:uuid:{uuid.uuid4()}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "total": len(found),
        "offset": offset,
        "parameter": used,
        "contains": contains,
    }
    return FhirResponse(200, resource=answer)


OPERATION = Operation(
    name="expand",
    handler=handle,
    levels=frozenset({"type", "instance"}),
    types=frozenset({"ValueSet"}),
    methods=frozenset({"GET", "POST"}),
    write=False,
    access="read",  # terminology is shared reference data; an instance needs read permission on it
    definition={"name": "expand", "definition": "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"},
)
