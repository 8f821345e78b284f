"""Find ValueSets, CodeSystems and ConceptMaps by canonical URL: the server's database first, then the package.

A stored resource is found with the ordinary search machinery (``url`` is a uri parameter, ``version``
a token parameter of both types); when several versions share a URL and none is asked for, the most
recently updated one wins. The packaged ones are the CodeSystems and ValueSets of the R4 specification
(``ketnoi.fhir.definitions.terminology_resources``) and the Vietnamese CodeSystems and ConceptMap
shipped in ``ketnoi/terminology/data`` (``ketnoi.terminology.vn``). Lookups are cached for the life
of one :class:`Terminology` (one request).

Implicit value sets: ``<CodeSystem url>?vs`` is the value set of every code of that CodeSystem
(R4 CodeSystem.valueSet), answered for any known CodeSystem when no ValueSet with that URL exists.
This is why the Vietnamese code systems need no ValueSet of their own: ``…/vn-admin-unit-2025?vs``
works for ``$expand``, ``$validate-code`` and ``:in`` alike, and one fewer copy of each code list is
kept in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from ketnoi.fhir import definitions, packages
from ketnoi.fhir import resource as res
from ketnoi.search.compile import compile_search
from ketnoi.search.query import Criterion, Filter, SearchQuery, SortKey
from ketnoi.sql import SqlQuery
from ketnoi.terminology.vn import vn_resources

Query = Callable[[SqlQuery], list[tuple[Any, ...]]]
IMPLICIT_SUFFIX = "?vs"


def implicit_value_set(url: str, code_system: dict[str, Any] | None) -> dict[str, Any] | None:
    """The implicit "all codes" ValueSet ``url`` (``<CodeSystem url>?vs``) of ``code_system``."""
    if code_system is None:
        return None
    include: dict[str, Any] = {"system": code_system.get("url")}
    if isinstance(code_system.get("version"), str):
        include["version"] = code_system["version"]
    vs: dict[str, Any] = {"resourceType": "ValueSet", "url": url, "status": code_system.get("status", "active")}
    vs.update({k: code_system[k] for k in ("name", "title") if isinstance(code_system.get(k), str)})
    vs["compose"] = {"include": [include]}
    return vs


class Terminology:
    """A :class:`ketnoi.terminology.expand.Source` over a store session (``query``) and the package."""

    def __init__(self, query: Query | None = None) -> None:
        self._query = query
        self._cache: dict[tuple[str, str, str | None], dict[str, Any] | None] = {}

    def value_set(self, canonical: str) -> dict[str, Any] | None:
        """By ``url``, ``url|version`` or a local reference ``ValueSet/[id]``."""
        if canonical.startswith("ValueSet/") and canonical.count("/") == 1:
            key = ("ValueSet", canonical, None)
            if key not in self._cache:
                self._cache[key] = self._stored("ValueSet", [Filter("_id", "token", None, (canonical[9:],))])
            return self._cache[key]
        url, _, version = canonical.partition("|")
        found = self._find("ValueSet", url, version or None)
        if found is None and url.endswith(IMPLICIT_SUFFIX) and not version:
            found = implicit_value_set(url, self.code_system(url[: -len(IMPLICIT_SUFFIX)]))
        return found

    def code_system(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        return self._find("CodeSystem", url, version)

    def concept_map(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        return self._find("ConceptMap", url, version)

    def _find(self, rtype: str, url: str, version: str | None) -> dict[str, Any] | None:
        key = (rtype, url, version)
        if key not in self._cache:
            self._cache[key] = self.stored_canonical(rtype, url, version) or packaged(rtype, url, version)
        return self._cache[key]

    def stored_canonical(self, rtype: str, url: str, version: str | None = None) -> dict[str, Any] | None:
        """The stored ``rtype`` with canonical ``url`` (and ``version``), the most recently updated
        when several share it; the database only (also used for StructureDefinitions)."""
        filters: list[Criterion] = [Filter("url", "uri", None, (url,))]
        if version is not None:
            filters.append(Filter("version", "token", None, (version.replace("|", "\\|"),)))
        return self._stored(rtype, filters)

    def _stored(self, rtype: str, filters: list[Criterion]) -> dict[str, Any] | None:
        if self._query is None:
            return None
        query = SearchQuery((rtype,), filters=filters, sort=[SortKey("_lastUpdated", "lastUpdated", True)], count=1)
        page, _ = compile_search(query, "")
        rows = self._query(page)
        if not rows:
            return None
        found = res.loads(rows[0][2])
        return found if isinstance(found, dict) else None


def packaged(rtype: str, url: str, version: str | None = None) -> dict[str, Any] | None:
    """A CodeSystem, ValueSet or ConceptMap of the R4 specification, of ketnoi's Vietnamese code
    systems, or of an IG package ketnoi ships (VN Core: ``ketnoi.fhir.packages``)."""
    candidates = _packaged_index().get((rtype, url), [])
    for candidate in candidates:
        if version is None or candidate.get("version") == version:
            return candidate
    return None


@cache
def _packaged_index() -> dict[tuple[str, str], list[dict[str, Any]]]:
    index: dict[tuple[str, str], list[dict[str, Any]]] = {}
    # The Vietnamese ones (about 60 MB once loaded) are read on the first packaged lookup only.
    for resource in [*definitions.terminology_resources(), *vn_resources(), *packages.terminology_resources()]:
        url = resource.get("url")
        if isinstance(url, str):
            index.setdefault((str(resource.get("resourceType")), url), []).append(resource)
    return index
