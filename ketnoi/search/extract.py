"""Search-index extraction: a resource → the :class:`IndexRows` of every search parameter of its type.

Responsibility: decide, per (resource type, parameter), how the parameter's FHIRPath expression is
evaluated (:mod:`ketnoi.search.extract_paths`: compiled Python fast path or cached fhirpathpy) and how
its values become rows (:mod:`ketnoi.search.extract_values`); build those plans once per type, then
run them for every resource. Extraction never raises on a valid resource: a part that fails is
skipped (and logged), unless the extractor was built with ``strict=True`` (used by the tests).

What is not extracted, by design:

- ``_id`` and ``_lastUpdated``: the resource table holds them (status ``resource-column``).
- ``composite`` parameters keep status ``composite`` in the plans; their rows (pairs of component
  values taken from one element) come from :mod:`ketnoi.search.composite`.
- ``_text`` and ``_content`` have no expression: they are supported (status ``supported``, no parts)
  and their one full-text row each comes from :mod:`ketnoi.search.extract_text`.
- ``special`` (``near``) and the expression-less ``_query``: not supported (status ``unsupported``,
  with the reason in :attr:`ParamPlan.reason`).

``_tag`` / ``_security`` are tokens from ``meta.tag`` / ``meta.security``; ``_source`` is a uri.
``_profile`` is declared ``uri`` in R4 and is indexed as :class:`~ketnoi.search.index.UriRow`
(row kind always equals the declared parameter type, so the query compiler maps parameter → table
without exceptions); a versioned ``url|1.0`` profile also gets the bare-url row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from ketnoi.fhir import definitions
from ketnoi.search.composite import CompositeExtractor, KeysMemo, components
from ketnoi.search.extract_consent import consent_rows
from ketnoi.search.extract_model import TypeModel, r4_model
from ketnoi.search.extract_mpi import mpi_rows
from ketnoi.search.extract_paths import ANY_TYPE, Accessor, compile_part, part_root, split_union
from ketnoi.search.extract_text import TEXT_SOURCES
from ketnoi.search.extract_values import WRITERS, Writer
from ketnoi.search.index import IndexRows, TextRow

__all__ = ["Extractor", "ParamPlan", "default_extractor"]

log = logging.getLogger(__name__)

Status = Literal["supported", "resource-column", "composite", "unsupported"]

RESOURCE_COLUMNS = frozenset({"_id", "_lastUpdated"})
_UNSUPPORTED_REASONS = {
    "_query": "named queries are operations, not indexed values",
}
_TEXT_REASONS = {
    "_text": "full text of the narrative (idx_text, ketnoi.search.extract_text)",
    "_content": "full text of every string value (idx_text, ketnoi.search.extract_text)",
}


@dataclass(slots=True)
class ParamPlan:
    """How one parameter is extracted for one resource type."""

    code: str
    type: str
    status: Status
    reason: str = ""
    parts: list[tuple[str, Accessor]] = field(default_factory=list)  # (expression part, accessor)
    fast_parts: int = 0  # how many parts run on the compiled fast path
    writer: Writer | None = None


class Extractor:
    """Extracts index rows; built from SearchParameter resources (official and custom)."""

    def __init__(self, search_parameters: Iterable[dict[str, Any]], *, strict: bool = False) -> None:
        self._model: TypeModel = r4_model()
        self._strict = strict
        self._by_base: dict[str, dict[str, dict[str, Any]]] = {}
        for sp in search_parameters:
            for base in sp.get("base", ()):
                # A later definition of the same (base, code) replaces the earlier one (custom overrides).
                self._by_base.setdefault(base, {})[sp["code"]] = sp
        self._params: dict[str, dict[str, dict[str, Any]]] = {}
        self._plans: dict[str, list[ParamPlan]] = {}
        self._runnable: dict[str, tuple[tuple[str, tuple[Accessor, ...], Writer], ...]] = {}
        self._some: dict[tuple[str, frozenset[str]], tuple[tuple[str, tuple[Accessor, ...], Writer], ...]] = {}
        self._composites: dict[str, tuple[CompositeExtractor, ...]] = {}
        self._text_codes: dict[str, tuple[str, ...]] = {}

    # ---------------------------------------------------------------------------------- public API

    def search_parameters(self) -> list[dict[str, Any]]:
        """What this extractor runs, as single-base SearchParameters (one per (base, code), the
        winner of any override), so that ``Extractor(x.search_parameters())`` is identical to
        ``x`` whatever the order (used to build one in a worker process)."""
        return [{**sp, "base": [base]} for base, by_code in self._by_base.items() for sp in by_code.values()]

    def params_for(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """code → SearchParameter of everything searchable on ``resource_type``."""
        params = self._params.get(resource_type)
        if params is None:
            params = {}
            for base in self._bases(resource_type):
                params.update(self._by_base.get(base, {}))
            self._params[resource_type] = params
        return params

    def extract(self, resource: dict[str, Any]) -> IndexRows:
        """Index rows of every extracted parameter of ``resource``'s type."""
        rows = IndexRows()
        resource_type = resource.get("resourceType")
        if type(resource_type) is not str:
            return rows
        runnable = self._runnable.get(resource_type)
        if runnable is None:
            runnable = self._build_runnable(resource_type)
        self._run(resource, runnable, rows)
        composites = self._composites.get(resource_type)
        if composites is None:
            composites = self._build_composites(resource_type)
        keys_memo: KeysMemo = {}
        for composite in composites:
            try:
                composite.extract(resource, rows, keys_memo)
            except Exception:
                if self._strict:
                    raise
                log.warning("search extraction of %s.%s failed", resource_type, composite.code, exc_info=True)
        text_codes = self._text_codes.get(resource_type)
        if text_codes is None:
            text_codes = self._build_text_codes(resource_type)
        for code in text_codes:
            try:
                body = TEXT_SOURCES[code](resource)
            except Exception:
                if self._strict:
                    raise
                log.warning("search extraction of %s.%s failed", resource_type, code, exc_info=True)
                continue
            if body:
                rows.text.append(TextRow(code, body))
        if resource_type == "Consent":
            consent_rows(resource, rows)  # the rules the access policy reads (ADR 0017)
        elif resource_type == "Patient":
            mpi_rows(resource, rows)  # the patient index's blocking keys (ADR 0023)
        return rows

    def extract_some(self, resource: dict[str, Any], codes: frozenset[str]) -> IndexRows:
        """Index rows of the parameters ``codes`` only (no composite or text rows): the few that
        the access policy and the audit trail read of a resource (its patients, codes, labels),
        a handful of accessors instead of every parameter of the type."""
        rows = IndexRows()
        resource_type = resource.get("resourceType")
        if type(resource_type) is not str:
            return rows
        key = (resource_type, codes)
        runnable = self._some.get(key)
        if runnable is None:
            every = self._runnable.get(resource_type) or self._build_runnable(resource_type)
            runnable = self._some[key] = tuple(r for r in every if r[0] in codes)
        self._run(resource, runnable, rows)
        return rows

    def _run(
        self, resource: dict[str, Any], runnable: tuple[tuple[str, tuple[Accessor, ...], Writer], ...], rows: IndexRows
    ) -> None:
        for code, accessors, writer in runnable:
            for access in accessors:
                try:
                    for value, fhir_type in access(resource):
                        writer(code, value, fhir_type, rows)
                except Exception:
                    if self._strict:
                        raise
                    log.warning("search extraction of %s.%s failed", resource["resourceType"], code, exc_info=True)

    def plans(self, resource_type: str) -> list[ParamPlan]:
        """The plan of every parameter of ``resource_type`` (for reports and tests)."""
        plans = self._plans.get(resource_type)
        if plans is None:
            plans = [self._plan(resource_type, sp) for sp in self.params_for(resource_type).values()]
            self._plans[resource_type] = plans
        return plans

    # ---------------------------------------------------------------------------------- internals

    def _bases(self, resource_type: str) -> list[str]:
        bases = ["Resource"]
        if resource_type not in ("Bundle", "Binary", "Parameters"):  # the non-DomainResource types
            bases.append("DomainResource")
        bases.append(resource_type)
        return bases

    def _build_runnable(self, resource_type: str) -> tuple[tuple[str, tuple[Accessor, ...], Writer], ...]:
        runnable = tuple(
            (plan.code, tuple(access for _, access in plan.parts), plan.writer)
            for plan in self.plans(resource_type)
            if plan.status == "supported" and plan.writer is not None and plan.parts
        )
        self._runnable[resource_type] = runnable
        return runnable

    def _build_composites(self, resource_type: str) -> tuple[CompositeExtractor, ...]:
        """Composite parameters keep the plan status ``composite``; their rows come from here
        (see :mod:`ketnoi.search.composite`)."""
        built: list[CompositeExtractor] = []
        for code, sp in self.params_for(resource_type).items():
            if sp.get("type") == "composite" and components(sp) is not None:
                try:
                    built.append(CompositeExtractor(code, sp, resource_type, self._model))
                except Exception:
                    if self._strict:
                        raise
                    log.warning("cannot compile composite %s.%s", resource_type, code, exc_info=True)
        self._composites[resource_type] = tuple(built)
        return self._composites[resource_type]

    def _build_text_codes(self, resource_type: str) -> tuple[str, ...]:
        codes = tuple(
            plan.code
            for plan in self.plans(resource_type)
            if plan.code in TEXT_SOURCES and plan.status == "supported" and not plan.parts
        )
        self._text_codes[resource_type] = codes
        return codes

    def _plan(self, resource_type: str, sp: dict[str, Any]) -> ParamPlan:
        code, sp_type = sp["code"], sp.get("type", "")
        plan = ParamPlan(code, sp_type, "supported")
        expression = sp.get("expression")
        if code in RESOURCE_COLUMNS:
            plan.status, plan.reason = "resource-column", "stored on the resource table"
        elif sp_type == "composite" and components(sp) is not None:
            plan.status, plan.reason = "composite", "rows pair the first component's code with the second's value"
        elif sp_type == "composite":
            plan.status = "unsupported"
            plan.reason = "composite with other than two components, or whose first component is not a token"
        elif sp_type == "special":
            plan.status, plan.reason = "unsupported", "special parameter (geographic 'near' search)"
        elif not expression and code in _TEXT_REASONS:
            plan.reason = _TEXT_REASONS[code]  # status stays "supported": rows from extract_text
        elif not expression:
            plan.status = "unsupported"
            plan.reason = _UNSUPPORTED_REASONS.get(code, "no FHIRPath expression")
        elif sp_type not in WRITERS:
            plan.status, plan.reason = "unsupported", f"unknown search parameter type {sp_type!r}"
        else:
            plan.writer = WRITERS[sp_type]
            self._compile_parts(plan, resource_type, expression)
        return plan

    def _compile_parts(self, plan: ParamPlan, resource_type: str, expression: str) -> None:
        for part in split_union(expression):
            if part_root(part, self._model) not in (ANY_TYPE, resource_type):
                continue  # another type's branch of a shared parameter
            try:
                access, fast = compile_part(part, self._model, resource_type)
            except Exception:
                if self._strict:
                    raise
                log.warning("cannot compile search expression %r", part, exc_info=True)
                continue
            plan.parts.append((part, access))
            plan.fast_parts += fast


@cache
def default_extractor() -> Extractor:
    """The extractor of the official R4 search parameters (built once per process)."""
    return Extractor(definitions.search_parameters())
