"""The Repository's policy half: what the caller may see and change, applied to every query and
every write the Repository runs (ADR 0010, 0014, 0017).

:class:`Visibility` is a base class of ``Repository``, kept apart only for size: the same object,
the same transaction. Every limit is a search criterion added to the query (the patient's
compartment, granular scope criteria, the organization's reach from ``interactions.reach``), or,
for one resource, the same criteria asked of its row, so reads, searches, includes, chains,
``_has``, totals, history and writes agree.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import not_found
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.policy import (
    REGISTRY_TYPES,
    Access,
    Grant,
    compartment_params,
    in_compartment,
    insufficient_scope,
)
from ketnoi.search.compile import Position, compile_search
from ketnoi.search.index import IndexRows
from ketnoi.search.parse import parse
from ketnoi.search.query import AllOf, Chain, Compartment, Criterion, Filter, Has, SearchQuery
from ketnoi.store.base import Session, StoredVersion

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ketnoi.interactions.repository import Repository
    from ketnoi.interactions.services import Services

Row = tuple[Any, ...]


class Visibility:
    """Limits of one caller over one transaction (mixed into ``Repository``)."""

    services: Services
    session: Session
    context: RequestContext
    access: Access
    extras: dict[str, object]

    def _page(self, query: SearchQuery, base_url: str, position: Position | None = None) -> list[Row]:
        page, _ = compile_search(query, base_url, position, dialect=self.services.store.dialect)
        return self.session.query(page)

    def narrows(self, query: SearchQuery) -> bool:
        """Whether the access policy adds anything to ``query`` (a caller it does not limit: never).
        Bulk export reads in storage order only the types it does not narrow (ADR 0024, decision 12)."""
        return self._narrow(query) is not query

    def _narrow(self, query: SearchQuery) -> SearchQuery:
        """The query limited to what the caller may search: the patient's compartment, granular
        criteria, the organization's reach (a search of every type, ``GET [base]?…``, then sees
        only what the organization owns; several named types at once are refused)."""
        if not self.access.limited:
            return query
        types = query.resource_types or ("*",)
        count_only = query.summary == "count"
        grants = [self.access.require(t, "s") for t in types]
        extra = [c for t, g in zip(types, grants, strict=True) for c in self._criteria(t, g, count_only, query.filters)]
        if len(types) != 1 and (extra or self.access.level != "open"):
            raise insufficient_scope("a search over several types", "this token (search one type at a time)")
        filters = [self._confine(c, count_only) for c in query.filters]
        if not extra and filters == query.filters:
            return query
        return replace(query, filters=[*filters, *extra])

    def _confine(self, crit: Criterion, count_only: bool = False) -> Criterion:
        """``crit`` with every chain target and ``_has`` source limited to what the caller may search.

        Chains and ``_has`` test *other* resources than the matches: unlimited, they would answer
        questions about hidden data (``Observation?has-member.code=X`` through A's panel into B's
        Observation, ``Practitioner?_has:Observation:performer:code=X`` over every patient's
        Observations: THREATS.md AZ-04, HAPI #6065, Medplum #9973). A chain target type the caller
        may not search matches nothing (403 if no target is left); a ``_has`` source type likewise
        needs ``s``. Both depend on the scopes only, never on data."""
        if isinstance(crit, Chain):
            branches: list[tuple[tuple[str, ...], Criterion]] = []
            for targets, inner in crit.branches:
                confined = self._confine(inner, count_only)
                free: list[str] = []  # targets searchable without limits keep one branch
                for target in targets:
                    grant = self.access.grant(target, "s")
                    if grant is None:
                        continue
                    limits = self._criteria(target, grant, count_only)
                    if limits:
                        branches.append(((target,), AllOf((confined, *limits))))
                    else:
                        free.append(target)
                if free:
                    branches.append((tuple(free), confined))
            if not branches:
                names = ", ".join(sorted({t for targets, _ in crit.branches for t in targets}))
                raise insufficient_scope(f"a chained search through {crit.param}", names)
            return Chain(crit.param, tuple(branches))
        if isinstance(crit, Has):
            grant = self.access.require(crit.source_type, "s")
            confined = self._confine(crit.inner, count_only)
            limits = self._criteria(crit.source_type, grant, count_only)
            return Has(crit.source_type, crit.param, AllOf((confined, *limits)) if limits else confined)
        return crit

    def _criteria(
        self, rtype: str, grant: Grant, count_only: bool = False, filters: Sequence[Criterion] = ()
    ) -> list[Criterion]:
        """The criteria that limit a query on ``rtype`` to what the caller may see: the patient's
        compartment, granular scope criteria, and the organization's reach (interactions.reach)."""
        from ketnoi.interactions import reach  # reach → organizations → repository → this module

        out: list[Criterion] = reach.criteria(cast("Repository", self), rtype, count_only=count_only, filters=filters)
        if grant.patient is not None:
            params = compartment_params(rtype)
            if rtype == "Patient" or params is None:
                out.append(Filter("_id", "token", None, (grant.patient if rtype == "Patient" else "-",)))
            else:
                out.append(Compartment(params, "Patient", grant.patient))
        if grant.filters:
            params_for = self.services.extractor.params_for
            out.extend(parse((rtype,), list(grant.filters), params_for, strict=True).filters)
        return out

    def _visible(self, stored: StoredVersion, letter: str, *, current: bool = False) -> bool:
        """Whether the caller may see (``r``) or change (``u``/``d``) this version of a resource;
        ``current``: it is the current version, as the store returned it."""
        if not self.access.limited:
            return True
        grant = self.access.grant(stored.resource_type, letter)
        if grant is None or not self._in_reach(stored, current):
            return False
        if grant.patient is not None:
            body = self._body_of(stored)
            extract = self.services.extractor.extract
            if not in_compartment(stored.resource_type, stored.id, body, grant.patient, extract):
                return False
        return not grant.filters or self._matches(stored.resource_type, stored.id, grant)

    def _in_reach(self, stored: StoredVersion, is_current: bool = False) -> bool:
        """Whether the resource is in the reach of the caller's organization (``interactions.reach``),
        judged on its current version; an older version also must not belong to a patient its
        current version does not (a resource moved from B's record into A's keeps B's versions
        from whoever may see A: THREATS.md AZ-05)."""
        from ketnoi.interactions import reach

        if self.access.level == "open":
            return True
        current = stored if is_current else self.session.current(stored.resource_type, stored.id)
        if current is None or not reach.in_reach(cast("Repository", self), current):
            return False
        return is_current or self._same_patients(stored, current)

    def _same_patients(self, stored: StoredVersion, current: StoredVersion) -> bool:
        """Whether the older version ``stored`` belongs to no patient its current version does not."""
        if current.version == stored.version or stored.content is None:
            return True
        latest = current
        if current.content is None:  # a deletion: compare with the last version that had content
            latest = self.session.version(stored.resource_type, stored.id, current.version - 1) or current
            if latest.version == stored.version or latest.content is None:
                return True
        return self._patients(stored) <= self._patients(latest)

    def _patients(self, stored: StoredVersion) -> set[str]:
        params = frozenset(compartment_params(stored.resource_type) or ())
        rows = self.services.extractor.extract_some(res.loads(stored.content or b"{}"), params).reference
        return {r.target_id for r in rows if r.param in params and r.target_type == "Patient" and r.target_id}

    def _body_of(self, stored: StoredVersion) -> dict[str, Any] | None:
        """The content that decides membership: a deletion is judged by the version before it."""
        if stored.content is not None:
            body: dict[str, Any] = res.loads(stored.content)
            return body
        before = self.session.version(stored.resource_type, stored.id, stored.version - 1)
        return res.loads(before.content) if before is not None and before.content is not None else None

    def _matches(self, rtype: str, id: str, grant: Grant) -> bool:
        """A granular scope's criteria hold for this resource (the same search, on its id)."""
        params = self.services.extractor.params_for
        return bool(self._page(parse((rtype,), [("_id", id), *grant.filters], params, strict=True), ""))

    def _row_visible(self, row: Row) -> bool:
        stored = StoredVersion(row[0], row[1], 0, 0.0, False, row[2])
        return self._visible(stored, "r") or self._visible(stored, "s")

    def _check_write(
        self, rtype: str, id: str, body: dict[str, Any] | None, letter: str, index: IndexRows | None = None
    ) -> None:
        """A confined caller may change only its patient's resources, and only into its compartment."""
        grant = self.access.require(rtype, letter)
        if self.access.level == "region" and rtype not in REGISTRY_TYPES:
            raise insufficient_scope("writing clinical data (provincial managers keep the registries)", rtype)
        current = self.session.current(rtype, id)
        if current is not None and not current.deleted and not self._visible(current, letter, current=True):
            raise not_found(f"{rtype}/{id} not found", f"Không tìm thấy {rtype}/{id}")
        if grant.patient is not None and body is not None:
            extract = self.services.extractor.extract if index is None else (lambda _: index)
            if not in_compartment(rtype, id, body, grant.patient, extract):
                raise insufficient_scope("writing outside the patient's compartment", rtype)
