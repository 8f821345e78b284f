"""The one path every read and write takes, whatever the route (REST, Bundle entry, conditional
operation, bulk load, background job): checks, versioning, validation, indexing, write hooks, and
every read of stored data (read, vread, history, search pages, counts, includes, job status) happen
here and nowhere else, so no caller can skip them, and access policy applies at one place.

A Repository is bound to one database transaction and to the ``RequestContext`` of the caller.
:func:`unit_of_work` opens both and runs the after-commit hooks once the transaction is durable.

http://hl7.org/fhir/R4/http.html — versioning rules; http://hl7.org/fhir/R4/resource.html#Meta.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import FhirError, Issue, bad_request, not_found
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.ownership import check_owner
from ketnoi.interactions.policy import (
    Access,
    insufficient_scope,
)
from ketnoi.interactions.services import Services, Validator, WriteHook
from ketnoi.interactions.visibility import Row, Visibility
from ketnoi.search import includes
from ketnoi.search.compile import Position, compile_search
from ketnoi.search.extract_mpi import PARAM as MPI_PARAM
from ketnoi.search.extract_mpi import VIEW_PARAM as MPI_VIEW_PARAM
from ketnoi.search.index import IndexRows
from ketnoi.search.query import Include, SearchQuery
from ketnoi.search.reach import ORG_PREFIX, patient_facts, patient_facts_call
from ketnoi.sql import SqlQuery
from ketnoi.store.auditlog import AgentMatch, AuditEntry, AuditRow
from ketnoi.store.base import JobRecord, Session, StoredVersion, VersionConflict
from ketnoi.terminology.lookup import Terminology

log = logging.getLogger("ketnoi")
GLASS_KIND = "glass:"  # security_record kind of break-the-glass openings: "glass:<user>", key a Patient id


def check_type(resource_type: str) -> None:
    if resource_type not in resource_types():
        raise FhirError.of(
            404,
            "not-supported",
            f"Unknown resource type '{resource_type}' (not an R4 resource type)",
            f"Loại tài nguyên '{resource_type}' không tồn tại trong FHIR R4",
        )


def check_id(id: str) -> None:
    if not res.is_valid_id(id):
        raise bad_request(
            f"Invalid id '{id[:80]}': 1-64 characters A-Z a-z 0-9 - .",
            f"Id '{id[:80]}' không hợp lệ: 1-64 ký tự A-Z a-z 0-9 - .",
        )


@contextmanager
def unit_of_work(
    services: Services, context: RequestContext, *, write: bool, durable: bool = True
) -> Iterator[Repository]:
    """A Repository in its own transaction; after the commit, the after-commit hooks get what it
    wrote (never on a rollback: an exception leaves here before them). ``durable``: see
    ``Store.session`` (only the read-audit group commit passes False)."""
    with services.store.session(write=write, durable=durable) as session:
        repo = Repository(services, session, context)
        yield repo
    if repo.written:
        for hook in services.after_commit:
            try:
                hook(context, list(repo.written))
            except Exception:  # the write is durable and acknowledged; a hook cannot undo it
                log.exception("after-commit hook %r failed", hook)


class Repository(Visibility):
    """FHIR persistence semantics over one store Session (one database transaction), for one caller."""

    def __init__(self, services: Services, session: Session, context: RequestContext) -> None:
        self.services = services
        self.session = session
        self.context = context
        self.access = Access(context)
        # The warnings of the last resource validated for a write (KETNOI_VALIDATION=lenient turns
        # invariant and profile errors into warnings): the write's answer carries them.
        self.last_warnings: list[Issue] = []
        self.written: list[StoredVersion] = []  # in this transaction, for the after-commit hooks
        self.extras: dict[str, object] = {}  # facts read once per request (interactions.reach)
        self._hooks_running: set[int] = set()  # a hook's own writes do not call it again

    # ---- reads -------------------------------------------------------------------------------
    def read(self, resource_type: str, id: str) -> StoredVersion:
        """The current version; 404 if it never existed, 410 if deleted."""
        check_type(resource_type)
        current = self._read_current(resource_type, id) if res.is_valid_id(id) else None
        if current is None or not self._visible(current, "r", current=True):
            raise not_found(f"{resource_type}/{id} not found", f"Không tìm thấy {resource_type}/{id}")
        if current.deleted:
            raise FhirError.of(410, "deleted", f"{resource_type}/{id} was deleted", f"{resource_type}/{id} đã bị xoá")
        return current

    def _read_current(self, resource_type: str, id: str) -> StoredVersion | None:
        """The current version for :meth:`read`; on PostgreSQL, for a caller whose reach depends
        on the resource's patients, their policy facts in the same statement (``interactions.reach``)."""
        from ketnoi.interactions import reach

        pg = self.services.store.dialect == "postgresql"
        query = reach.read_with_facts_query(self, resource_type, id) if pg else None
        if query is None:
            return self.session.current(resource_type, id)
        current, facts = self.session.current_with(resource_type, id, query)
        reach.remember_facts(self, facts)
        return current

    def vread(self, resource_type: str, id: str, version: str) -> StoredVersion:
        check_type(resource_type)
        if not version.isdigit():
            raise not_found(f"Version '{version}' does not exist", f"Phiên bản '{version}' không tồn tại")
        found = self.session.version(resource_type, id, int(version)) if res.is_valid_id(id) else None
        if found is None or not self._visible(found, "r"):
            raise not_found(
                f"{resource_type}/{id}/_history/{version} not found",
                f"Không tìm thấy {resource_type}/{id}/_history/{version}",
            )
        if found.deleted:
            raise FhirError.of(
                410,
                "deleted",
                f"Version {version} of {resource_type}/{id} is a deletion",
                f"Phiên bản {version} của {resource_type}/{id} là một lần xoá",
            )
        return found

    def read_many(self, resource_type: str, ids: Sequence[str]) -> list[StoredVersion]:
        """The current versions of those of ``ids`` that :meth:`read` would answer, in their order,
        read in one query per 400 (candidates to compare; nothing is kept for a later write)."""
        check_type(resource_type)
        keys = [(resource_type, i) for i in ids if res.is_valid_id(i)]
        found = self.session.current_many(keys)
        versions = (found.get(key) for key in dict.fromkeys(keys))
        return [v for v in versions if v is not None and not v.deleted and self._visible(v, "r", current=True)]

    def exists(self, resource_type: str, id: str) -> bool:
        """Whether ``resource_type/id`` was ever written (deleted or not): instance history."""
        current = self.session.current(resource_type, id) if res.is_valid_id(id) else None
        return current is not None and self._visible(current, "r", current=True)

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        *,
        since: float | None,
        at: tuple[float, float] | None,
        before_seq: int | None,
        limit: int,
    ) -> list[StoredVersion]:
        """Versions at instance, type or system level, newest first. A caller confined to a patient
        sees the versions of that patient's resources only, and no type or system history."""
        if self.access.level != "open" and id is None:
            raise FhirError.of(
                403,
                "forbidden",
                "Type and system history are open to national administrators only; read the history of "
                "one resource instead",
                "Lịch sử theo loại và toàn hệ thống chỉ dành cho quản trị viên quốc gia; hãy xem lịch sử "
                "của từng tài nguyên",
            )
        if self.access.limited and id is None:
            for rtype in (resource_type,) if resource_type else ("*",):
                if self.access.require(rtype, "s").patient is not None or (rtype == "*" and _confined(self.access)):
                    raise insufficient_scope("type or system history", rtype)
        versions = self.session.history(resource_type, id, since=since, at=at, before_seq=before_seq, limit=limit)
        return [v for v in versions if self._visible(v, "r")] if id is not None else versions

    def search_page(self, query: SearchQuery, base_url: str, position: Position | None = None) -> list[Row]:
        """One page of matches plus one row beyond it: ``(type, id, content, sort keys...)``."""
        return self._page(self._narrow(query), base_url, position)

    def search_count(self, query: SearchQuery, base_url: str) -> int:
        _, count = compile_search(self._narrow(query), base_url, dialect=self.services.store.dialect)
        return int(self.session.query(count)[0][0])

    def included(self, wanted: Sequence[Include], matches: Sequence[tuple[str, str]]) -> tuple[list[Row], bool]:
        """``_include``/``_revinclude`` rows for the matches, and whether the cap cut them short."""
        if not self.access.limited:
            rows, capped = includes.resolve(self.session.query, wanted, matches)
            return list(rows), capped

        # Out of bounds is left out, silently (no 403 that would tell), at every level: an
        # ``:iterate`` that walked on from a hidden resource would show what that resource refers to
        # (another patient's Observation's performer), so hidden rows never join the frontier.
        def visible(level: SqlQuery) -> list[Row]:
            return [r for r in self.session.query(level) if self._row_visible(r)]

        rows, capped = includes.resolve(visible, wanted, matches)
        return list(rows), capped

    def terminology(self) -> Terminology:
        """ValueSets and CodeSystems for the search modifiers (stored ones first, then R4's)."""
        return Terminology(self.session.query)

    def job(self, id: int) -> JobRecord | None:
        """A background job's record (status of ``$import``, ``$reindex``)."""
        return self.session.job(id)

    def dangling_references(self, since: float, limit: int) -> list[tuple[str, str, str, str]]:
        """References written since ``since`` to local resources that do not exist (bulk load check)."""
        return self.session.dangling_references(since, limit)

    def current_page(
        self, types: Sequence[str] | None, after: tuple[str, str] | None, limit: int
    ) -> list[StoredVersion]:
        """Current versions in (type, id) order after ``after``: the walk of ``$reindex``."""
        return self.session.current_page(types, after, limit)

    def latest_seq(self, resource_type: str) -> int:
        """A stamp that moves on every write of the type (caches of server-wide directory data,
        such as the Organization hierarchy, compare it to notice other processes' writes)."""
        return self.session.latest_seq(resource_type)

    def grant_glass(self, user: str, patient: str, value: str, until: float) -> None:
        """Record a break-the-glass opening of ``patient``'s record for ``user`` (ketnoi.operations.break_glass)."""
        self.session.security_put(GLASS_KIND + user, patient, value, until, res.now())
        self.extras.clear()  # what this request learnt of its reach no longer holds

    def glass_patients(self, user: str) -> tuple[str, ...]:
        """The patients ``user`` opened by break-the-glass whose opening has not run out."""
        return tuple(key for key, _ in self.session.security_list(GLASS_KIND + user, res.now()))

    def patient_facts(self, org: str, patient: str, cutoff: float) -> list[tuple[str, str, str, str]]:
        """What decides whether ``patient``'s record is open to ``org`` for this caller, in one
        round trip (``search.reach.patient_facts``; decided by ``interactions.reach``)."""
        from ketnoi.interactions.reach import fact_row

        compile_facts = patient_facts_call if self.services.store.dialect == "postgresql" else patient_facts
        query = compile_facts(patient, org.removeprefix(ORG_PREFIX), cutoff, self.glass_kind(), res.now())
        return [fact_row(*row) for row in self.session.query(SqlQuery(query.text, query.params))]

    def glass_kind(self) -> str | None:
        """The ``security_record`` kind of the caller's break-the-glass openings (None: no user)."""
        user = self.context.user
        return GLASS_KIND + user if user else None

    def organization_links(self) -> list[tuple[str, str]]:
        """(child id, parent id) of every current Organization with a relative ``partOf``
        (``interactions.organizations``: the organizations within a province)."""
        rows = self.session.query(
            SqlQuery(
                "SELECT resource_id, target_id FROM idx_reference WHERE resource_type = 'Organization' "
                "AND param = 'partof' AND target_type = 'Organization'",
                (),
            )
        )
        return [(str(child), str(parent)) for child, parent in rows]

    def mpi_candidates(self, keys: Sequence[tuple[str, str]], limit: int) -> list[tuple[str, str | None]]:
        """The current Patients sharing a blocking key with ``keys`` (``ketnoi.search.extract_mpi``), one
        index range per key, whatever the caller may read (``Patient/$match`` decides what to show): their
        ids, each with its ``~mpi-view`` row's text (None where the row is missing: indexed before it was)."""
        if not keys:
            return []
        one = (
            "SELECT resource_id FROM idx_token "
            "WHERE resource_type = 'Patient' AND param = ? AND code = ? AND system = ?"
        )
        # No ORDER BY: SQLite would walk the owner index in id order to avoid a sort, scanning every
        # Patient's rows (200 ms at 2,000 patients) instead of one lookup-index range per key. The view is
        # found by the owner index (SQLite would take the lookup index: every view row has the same param).
        views = "idx_token v INDEXED BY idx_token_owner" if self.services.store.dialect == "sqlite" else "idx_token v"
        sql = (
            f"SELECT c.resource_id, v.text FROM ({' UNION '.join([one] * len(keys))} LIMIT ?) c LEFT JOIN {views} "
            "ON v.resource_type = 'Patient' AND v.resource_id = c.resource_id AND v.param = ?"
        )
        params = [value for kind, code in keys for value in (MPI_PARAM, code, kind)]
        rows = self.session.query(SqlQuery(sql, (*params, limit, MPI_VIEW_PARAM)))
        return [(str(pid), None if text is None else str(text)) for pid, text in rows]

    def referring(
        self, target: tuple[str, str], *, resource_type: str | None = None, param: str | None = None
    ) -> list[tuple[str, str]]:
        """(type, id) of the current resources whose references point at ``target`` (type, id), the most
        recently written first, whatever the caller may read: the patient index and ``$merge`` read each
        through the policy afterwards."""
        sql = (
            "SELECT DISTINCT r.resource_type, r.resource_id, p.seq FROM idx_reference r JOIN resource p "
            "ON p.resource_type = r.resource_type AND p.id = r.resource_id "
            "WHERE r.target_type = ? AND r.target_id = ?"
        )
        params: list[Any] = [*target]
        for column, value in (("r.resource_type", resource_type), ("r.param", param)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        rows = self.session.query(SqlQuery(sql + " ORDER BY p.seq DESC", tuple(params)))
        return [(str(rtype), str(rid)) for rtype, rid, _ in rows]

    def ids_with_token(self, resource_type: str, param: str, system: str, code: str, limit: int) -> list[str]:
        """Ids of the current resources of a type with this token (an identifier, say), whatever the caller
        may read (the caller reads each through the policy)."""
        rows = self.session.query(
            SqlQuery(
                "SELECT DISTINCT resource_id FROM idx_token WHERE resource_type = ? AND param = ? AND system = ? "
                "AND code = ? LIMIT ?",
                (resource_type, param, system, code, limit),
            )
        )
        return [str(row[0]) for row in rows]

    def patient_count(self) -> int:
        """How many Patients are stored and not deleted (the patient index's prior depends on it)."""
        rows = self.session.query(
            SqlQuery("SELECT count(*) FROM resource WHERE resource_type = 'Patient' AND deleted = ?", (False,))
        )
        return int(rows[0][0]) if rows else 0

    def replace_indexes(self, entries: Sequence[tuple[StoredVersion, IndexRows]]) -> list[bool]:
        """New index rows for current versions (``$reindex``); per entry False if it moved on."""
        return self.session.replace_indexes(entries)

    def analyze(self) -> None:
        """Refresh the planner's statistics now (after a bulk load; ketnoi.store.statistics)."""
        self.session.analyze()

    def prefetch(self, keys: list[tuple[str, str]], *, for_update: bool = True) -> None:
        """Read (and lock, unless only to read them) the current versions of many resources at once."""
        self.session.prefetch(keys, for_update=for_update)

    def lock(self, key: str) -> None:
        """Serialise with other transactions taking the same key until this one ends."""
        self.session.lock(key)

    # ---- the audit log (ADR 0013, 0015): written by the server's recorder only ----------------
    def audit_append(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Append AuditEvents to the hash-chained log in this transaction (``interactions.audit``):
        they commit or roll back with it. On PostgreSQL the log's head stays locked until the
        commit, so a write transaction appends last, and its buffered writes go out first: a wait
        on another transaction's rows (or a conflict) then happens before the lock, never under it."""
        self.session.flush()
        return self.session.audit_append(entries)

    def audit_records(
        self,
        *,
        patient: str | None,
        after_seq: int | None,
        before_seq: int | None,
        since: float | None,
        until: float | None,
        limit: int,
        newest_first: bool,
        agents: Sequence[Sequence[AgentMatch]] = (),
    ) -> list[AuditRow]:
        """Audit records for the AuditEvent API; who may see which is ``interactions.audit_api``'s
        rule (administrators, and a patient their own), applied before it calls this."""
        return self.session.audit_search(
            patient=patient,
            after_seq=after_seq,
            before_seq=before_seq,
            since=since,
            until=until,
            agents=agents,
            limit=limit,
            newest_first=newest_first,
        )

    # ---- writes ------------------------------------------------------------------------------
    def create(self, resource: dict[str, Any], *, id: str | None = None) -> StoredVersion:
        """Store a new resource under a server-assigned id (or ``id`` for a Bundle's PUT-as-create)."""
        rtype = self._check_body(resource)
        new_id = id or str(uuid.uuid4())
        return self._store(rtype, new_id, 1, resource, "POST")

    def update(
        self, resource_type: str, id: str, resource: dict[str, Any], *, if_match: str | None = None
    ) -> tuple[StoredVersion, bool]:
        """Replace (or create at a client id); returns (version, created)."""
        check_type(resource_type)
        check_id(id)
        rtype = self._check_body(resource)
        if rtype != resource_type:
            raise bad_request(
                f"Body resourceType '{rtype}' does not match '{resource_type}' in the URL",
                f"resourceType '{rtype}' trong nội dung khác với '{resource_type}' trên URL",
            )
        body_id = resource.get("id")
        if body_id != id:
            raise bad_request(
                f"Body id '{body_id}' does not match the id '{id}' in the URL"
                if body_id is not None
                else f"The resource must carry id '{id}' to be updated at that URL",
                f"Id '{body_id}' trong nội dung khác với id '{id}' trên URL"
                if body_id is not None
                else f"Tài nguyên phải có id '{id}' để cập nhật tại URL này",
            )
        current = self.session.current(resource_type, id, for_update=True)
        self.check_if_match(current, if_match, resource_type, id)
        version = current.version + 1 if current else 1
        created = current is None or current.deleted
        return self._store(resource_type, id, version, resource, "PUT", current=current), created

    def upsert(self, resource: Any, prepared: IndexRows | None = None) -> bool:
        """Bulk-load write: update-as-create at the resource's id, skipped (False) when the stored
        current version already has the same content, so a re-run load adds no versions.

        ``prepared``: index rows already extracted, by ``prepare`` in a worker process, from this
        exact resource after it passed validation there (the bulk loader's parallel path)."""
        rtype = self._check_body(resource)
        id = resource.get("id")
        if not isinstance(id, str):
            raise bad_request(
                "A bulk-loaded resource must carry its id", "Tài nguyên nạp hàng loạt phải có id", code="required"
            )
        check_id(id)
        current = self.session.current(rtype, id, for_update=True)
        if current is not None and not current.deleted and _same_content(current.content, resource):
            return False
        version = current.version + 1 if current else 1
        self._store(rtype, id, version, resource, "PUT", prepared, current=current)
        return True

    def delete(self, resource_type: str, id: str, *, if_match: str | None = None) -> StoredVersion | None:
        """Logical delete; None when there was nothing to delete (idempotent, still 200/204)."""
        check_type(resource_type)
        check_id(id)
        current = self.session.current(resource_type, id, for_update=True)
        if self.access.limited:
            self._check_write(resource_type, id, None, "d")
        if current is not None and not current.deleted:  # deleting a deletion changes nothing
            check_owner(self, current)  # after the scope and visibility checks: 404 stays 404
        self.check_if_match(current, if_match, resource_type, id)
        if current is None or current.deleted:
            return None
        # The deletion records who deleted (the caller's organization), like any version.
        org = self.context.organization
        record = StoredVersion(resource_type, id, current.version + 1, res.now(), True, None, "DELETE", org=org)
        return self._write(record, None)

    def replace_with(self, current: StoredVersion, resource: dict[str, Any], method: str) -> StoredVersion:
        """Write a new version of ``current`` (used by patch after the patch is applied)."""
        resource["id"] = current.id
        return self._store(current.resource_type, current.id, current.version + 1, resource, method, current=current)

    # ---- internals ---------------------------------------------------------------------------
    def _check_body(self, resource: Any) -> str:
        if not isinstance(resource, dict):
            raise bad_request(
                "The body must be a FHIR resource (a JSON object)",
                "Nội dung phải là một tài nguyên FHIR (đối tượng JSON)",
                code="structure",
            )
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            raise bad_request("The resource has no resourceType", "Tài nguyên thiếu resourceType", code="structure")
        if rtype not in resource_types():
            raise bad_request(
                f"Unknown resource type '{rtype}'", f"Loại tài nguyên '{rtype}' không tồn tại", code="structure"
            )
        return rtype

    def check_if_match(self, current: StoredVersion | None, if_match: str | None, resource_type: str, id: str) -> None:
        """412 unless ``If-Match`` (when given) names the current version."""
        if if_match is None:
            return
        wanted = res.parse_etag(if_match)
        if current is None or current.deleted or str(current.version) != wanted:
            have = "none" if current is None or current.deleted else str(current.version)
            raise FhirError.of(
                412,
                "conflict",
                f"If-Match version {wanted} does not match the current version ({have}) of {resource_type}/{id}",
                f"Phiên bản If-Match {wanted} khác phiên bản hiện tại ({have}) của {resource_type}/{id}",
            )

    def _store(
        self,
        rtype: str,
        id: str,
        version: int,
        resource: dict[str, Any],
        method: str,
        prepared: IndexRows | None = None,
        *,
        current: StoredVersion | None = None,
    ) -> StoredVersion:
        """Write ``resource`` as ``version``; ``current``: the version it replaces (None for a create)."""
        if prepared is None:
            self.validate(resource)
        ts = res.now()
        body = dict(resource)
        body["id"] = id
        meta = dict(body.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = res.instant(ts)
        body["meta"] = meta
        # Server-set meta (versionId, lastUpdated) feeds no search parameter, so rows extracted
        # before it was set (prepared) are the same as rows extracted now.
        index = prepared if prepared is not None else self.services.extractor.extract(body)
        if self.access.limited:
            self._check_write(rtype, id, body, "c" if method == "POST" else "u", index)
        if current is not None:
            check_owner(self, current)  # another facility's resource: 403 (ownership.py)
        # The owner is the caller's organization, never anything the body says (meta included).
        org = self.context.organization
        record = StoredVersion(rtype, id, version, ts, False, res.dumps(body), method, org=org)
        return self._write(record, body, index)

    def _write(self, record: StoredVersion, body: dict[str, Any] | None, index: Any = None) -> StoredVersion:
        if record.resource_type == "AuditEvent":
            # AuditEvents live in the audit log only, appended by the server (whatever the route:
            # REST, a transaction's POST entry, a bulk load); never a version in the resource tables.
            raise audit_write_refused()
        try:
            stored = self.session.write(record, index)
        except VersionConflict as exc:
            raise conflict(exc) from exc
        self.written.append(stored)
        for index_hook in self.services.after_index:
            index_hook(self, stored, index if isinstance(index, IndexRows) else None)
        for hook in self.services.after_write:
            self._run_hook(hook, stored, body)
        return stored

    def privileged(self, task: str) -> Repository:
        """This transaction with the server's own rights, for a hook that must record what the
        caller may not write (an AuditEvent of a patient's change, a Provenance). It shares the
        written list and the running hooks, so its writes commit or roll back with the caller's,
        reach the after-commit hooks, and do not call the running hook again."""
        return self.acting_for(replace(RequestContext.internal(task), request_id=self.context.request_id))

    def acting_for(self, context: RequestContext) -> Repository:
        """This transaction for another caller, sharing what :meth:`privileged` shares: a bulk load
        writes each resource for the organization its owners file names (``ketnoi load --owners``)
        and still commits a whole batch at once."""
        twin = Repository(self.services, self.session, context)
        twin.written = self.written
        twin._hooks_running = self._hooks_running
        return twin

    def _run_hook(self, hook: WriteHook, stored: StoredVersion, body: dict[str, Any] | None) -> None:
        """Call a write hook inside the transaction; what the hook writes through this Repository
        (an AuditEvent, a Provenance) reaches every other hook but not the same one again."""
        key = id(hook)
        if key in self._hooks_running:
            return
        self._hooks_running.add(key)
        try:
            hook(self, stored, body)
        finally:
            self._hooks_running.discard(key)

    def validate(self, resource: dict[str, Any]) -> list[Issue]:
        """Reject a structurally invalid resource (400); return its warnings (kept in
        :attr:`last_warnings` for the write's answer)."""
        self.last_warnings = check_valid(self.services.validator, resource, self.services.settings.strict)
        return self.last_warnings


def check_valid(validator: Validator | None, resource: dict[str, Any], strict: bool) -> list[Issue]:
    """Run the validator: 400 with the errors if there are any, else the warnings."""
    if validator is None:
        return []
    issues = validator(resource, strict)
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    if errors:
        raise FhirError(400, errors)
    return issues


def audit_write_refused() -> FhirError:
    """405 for any write of an AuditEvent: the audit trail is written by the server only."""
    return FhirError.of(
        405,
        "not-supported",
        "AuditEvent cannot be created, changed or deleted: the audit trail is written by the server only",
        "Không thể tạo, sửa hoặc xoá AuditEvent: nhật ký kiểm toán chỉ do máy chủ ghi",
    )


def conflict(exc: VersionConflict) -> FhirError:
    """409 for a version written concurrently by someone else (detected at write or at commit)."""
    return FhirError.of(
        409,
        "conflict",
        f"{exc} — changed by someone else at the same time; nothing was saved, retry",
        f"{exc} — vừa bị người khác thay đổi cùng lúc; chưa lưu gì, hãy thử lại",
    )


def _same_content(stored: bytes | None, resource: dict[str, Any]) -> bool:
    if stored is None:
        return False
    return res.without_version_meta(res.loads(stored)) == res.without_version_meta(resource)


def _confined(access: Access) -> bool:
    """Whether any type the caller may search is confined to a patient (system-level history)."""
    scopes = access.context.scopes
    return scopes is not None and any(s.context == "patient" for s in scopes.clinical)
