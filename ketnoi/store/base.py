"""The storage interface every backend implements, and the records it speaks in.

The FHIR rules (versioning, conditional logic, bundles) live in ``ketnoi.interactions``; a store
only persists versions and index rows atomically and runs compiled searches. A ``Session`` is one
database transaction: everything written through it commits together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ketnoi.search.index import IndexRows
from ketnoi.sql import SqlQuery
from ketnoi.store.auditlog import AgentMatch, AuditCheckpoint, AuditEntry, AuditRow


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version of one resource as stored. ``content`` is the JSON text (None when deleted)."""

    resource_type: str
    id: str
    version: int
    last_updated: float  # epoch seconds, UTC
    deleted: bool
    content: bytes | None
    method: str = "PUT"  # the interaction that produced it: POST, PUT, PATCH or DELETE
    seq: int = 0  # global, increasing order of writes (system history)
    # The organization ("Organization/ID") on whose behalf this version was written, from the
    # caller's context (never from the resource); None: no organization (national level, operator,
    # the server itself) or written before the store recorded it (migration 9).
    org: str | None = None


class VersionConflict(Exception):
    """Another writer created the same version first (a concurrent update)."""


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of the ``job`` table (``ketnoi.jobs`` gives it meaning; params/progress are JSON text)."""

    id: int
    kind: str
    params: str
    state: str  # queued | running | done | failed | cancelled
    progress: str
    error: str | None
    worker: str | None
    lease_until: float | None
    created: float
    updated: float


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """One row of ``subscription_state`` (``ketnoi.subscriptions`` gives ``spec``/``owner`` meaning)."""

    subscription: str
    spec: str  # JSON: what the matcher and the relay need of the Subscription
    owner: str  # JSON: the RequestContext whose rights the subscription runs with
    events: int  # the last event number given (events since the subscription started)
    failures: int  # consecutive failed deliveries
    next_at: float  # no delivery before this (back-off)
    worker: str | None
    lease_until: float | None
    last_sent: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class SubscriptionEvent:
    """One row of the outbox ``subscription_event``: a change a subscription matched."""

    seq: int
    subscription: str
    number: int | None  # given by the relay; None until then
    recorded: float
    focus_type: str
    focus_id: str
    focus_version: int
    state: str  # pending | sent | dead
    attempts: int
    error: str | None


class Session(Protocol):
    """One database transaction. Reads see the transaction's own writes."""

    def current(self, resource_type: str, id: str, *, for_update: bool = False) -> StoredVersion | None:
        """The latest version (possibly a deletion), or None if the id never existed."""

    def current_with(self, resource_type: str, id: str, query: SqlQuery) -> tuple[StoredVersion | None, Any]:
        """:meth:`current` as ``query`` reads it (one round trip): at most one row, the history's
        columns (as :meth:`current` selects them) and one more, whose value comes back beside the
        version. The value is None when the resource does not exist, and when the transaction
        already knows the version (its own write, or prefetched): then ``query`` does not run."""

    def version(self, resource_type: str, id: str, version: int) -> StoredVersion | None: ...

    def write(self, record: StoredVersion, index: IndexRows | None) -> StoredVersion:
        """Append a version and replace the resource's index rows. Writes may be buffered until
        the next read or the commit; VersionConflict (that version already exists) is raised
        then at the latest, and the whole transaction fails."""

    def prefetch(self, keys: list[tuple[str, str]], *, for_update: bool = True) -> None:
        """Load (and lock) the current versions of many resources at once, for ``current``."""

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredVersion | None]:
        """The current versions of many resources at once, to read only: unlike :meth:`prefetch`
        nothing is kept for a later ``current`` (which may be for update and must then lock and
        read again)."""

    def flush(self) -> None:
        """Send buffered writes now (reads and the commit do it themselves)."""

    def analyze(self, tables: Sequence[str] | None = None) -> None:
        """Refresh the query planner's statistics of ``tables`` (default: all; ketnoi.store.statistics)."""

    def dangling_references(self, since: float, limit: int) -> list[tuple[str, str, str, str]]:
        """(type, id, target type, target id) of references from versions written since ``since``
        to local resources that do not exist (the check after a bulk load)."""

    # ---- security records (ketnoi.security): (kind, key) → JSON text, with an optional expiry ----
    def security_get(self, kind: str, key: str, now: float, *, for_update: bool = False) -> str | None:
        """The value, or None if absent or expired; ``for_update`` locks it until the transaction ends."""

    def security_put(self, kind: str, key: str, value: str, expires: float | None, now: float) -> None:
        """Insert or replace."""

    def security_add(self, kind: str, key: str, value: str, expires: float | None, now: float) -> bool:
        """Insert only if no unexpired record has this key: False when one has (a replayed ``jti``,
        a username taken), atomically, even against a concurrent transaction."""

    def security_take(self, kind: str, key: str, now: float) -> str | None:
        """Delete and return the unexpired value: a single-use record (an authorization code) can be
        taken once, whoever else tries at the same time."""

    def security_delete(self, kind: str, key: str) -> bool: ...

    def security_list(self, kind: str, now: float) -> list[tuple[str, str]]:
        """(key, value) of every unexpired record of ``kind``, by key."""

    def security_purge(self, now: float) -> int:
        """Delete every expired record; how many."""

    def statistics_due(self, min_age_s: float = 0.0) -> list[str]:
        """The tables whose statistics the data has outgrown, not analysed in the last ``min_age_s``
        seconds (ketnoi.store.statistics)."""

    def query(self, query: SqlQuery) -> list[tuple[Any, ...]]:
        """Run a compiled (read-only) query; rows as tuples."""

    # ---- bulk export in storage order (ketnoi.store.export_sql, ADR 0024 decision 12) ----
    def export_mark(self) -> tuple[int, list[str] | None]:
        """The highest ``seq`` handed out, and (PostgreSQL) the transactions to wait for."""

    def export_settled(self, running: Sequence[str] | None) -> bool:
        """Whether every transaction of ``running`` (from :meth:`export_mark`) has ended."""

    def export_scan(
        self, types: Sequence[str], after: int, upto: int, mark: int, since: float | None
    ) -> list[tuple[int, str, str, bytes]]:
        """``(seq, type, id, content)`` in ``seq`` order, ``seq`` in ``(after, upto]``: the resources
        of ``types`` whose latest version at or below ``mark`` is that one and not a deletion."""

    def export_late(self, mark: int, before: float) -> float | None:
        """The earliest ``lastUpdated`` below ``before`` among versions with a ``seq`` above ``mark``:
        writes stamped before the export's kick-off that took their ``seq`` after its mark."""

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
        """Versions newest first (by ``seq``), optionally bounded; ``before_seq`` pages backwards."""

    def lock(self, key: str) -> None:
        """Serialise writers on a key until the transaction ends (conditional create/update races)."""

    # ---- reindexing: current versions in pages, index rows rewritten in place -----------------
    def current_page(
        self, resource_types: Sequence[str] | None, after: tuple[str, str] | None, limit: int
    ) -> list[StoredVersion]:
        """Current, non-deleted versions of ``resource_types`` (None: all) ordered by (type, id),
        starting after the key ``after``; at most ``limit``."""

    def replace_indexes(self, entries: Sequence[tuple[StoredVersion, IndexRows]]) -> list[bool]:
        """Rewrite the index rows of many current versions without writing versions, in a few
        statements for all of them; per entry False (and nothing changed for it) when its version
        is no longer the current, non-deleted one."""

    def latest_seq(self, resource_type: str) -> int:
        """The highest ``seq`` among the current pointers of a type (0 if none): changes on any write."""

    # ---- the job table (ketnoi.jobs) ----------------------------------------------------------
    def add_job(self, kind: str, params: str, progress: str, now: float) -> JobRecord: ...

    def job(self, id: int) -> JobRecord | None: ...

    def jobs(self, kind: str, states: Sequence[str]) -> list[JobRecord]:
        """Jobs of a kind in the given states, oldest first."""

    def recent_jobs(self, before_id: int | None, limit: int) -> list[JobRecord]:
        """Jobs of every kind, newest first (by id), those before ``before_id`` when given: the
        operators' list pages backwards with it."""

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each state (states with none are absent)."""

    def claim_job(
        self, kinds: Sequence[str], worker: str, now: float, lease_until: float, *, job_id: int | None = None
    ) -> JobRecord | None:
        """Take the oldest queued job (or running one whose lease expired) of ``kinds`` for ``worker``:
        state running, leased until ``lease_until``. Concurrent claimers never get the same job."""

    def update_job(
        self,
        id: int,
        worker: str | None,
        *,
        state: str,
        progress: str,
        error: str | None,
        lease_until: float | None,
        now: float,
    ) -> bool:
        """Save a job's state and progress; with ``worker``, only while that worker still holds it
        (running, same worker): False when it lost the job (cancelled, or the lease was taken over)."""

    # ---- the audit log: an append-only hash chain (ketnoi.store.auditlog, ADR 0013) -------------
    def audit_append(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Append records, chained onto the head, in this transaction (they commit or roll back with
        the writes they record); their ``seq`` values. Appenders are serialised until their
        transactions end, so the committed records are always 1..n, contiguous and chained.
        ValueError for an entry the chain cannot hold (``auditlog.check_entry``)."""

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the last record; (0, ``auditlog.GENESIS``) when the log is empty."""

    def audit_rows(self, after_seq: int, limit: int) -> list[AuditRow]:
        """Records after ``after_seq``, by ``seq``, at most ``limit`` (the verifier pages with it)."""

    def audit_for_patient(self, patient: str, after_seq: int, limit: int) -> list[AuditRow]:
        """Records concerning a Patient id (bare id, no "Patient/"), by ``seq``, after ``after_seq``."""

    def audit_search(
        self,
        *,
        patient: str | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        since: float | None = None,
        until: float | None = None,
        agents: Sequence[Sequence[AgentMatch]] = (),
        limit: int,
        newest_first: bool = False,
    ) -> list[AuditRow]:
        """Records by ``seq`` (oldest first, or newest first), at most ``limit``: those of one Patient
        id, strictly between the seq bounds, and ``since <= recorded < until``, for each bound given,
        and with, for each group of ``agents``, an agent that matches one of the group (the AuditEvent
        API, ``ketnoi.interactions.audit_api``)."""

    def checkpoint_add(self, seq: int, hash: str, recorded: float, signature: str) -> bool:
        """Keep a signed checkpoint of the head; False (nothing written) if one of ``seq`` exists."""

    def checkpoints(self, after_seq: int = 0, limit: int = 1000) -> list[AuditCheckpoint]:
        """Stored checkpoints after ``after_seq``, by ``seq``."""

    def last_checkpoint(self) -> AuditCheckpoint | None: ...

    # ---- subscriptions (ketnoi.subscriptions, ADR 0025): mixin ketnoi.store.subscription_sql ----------
    def subscription_put(self, subscription: str, spec: str, owner: str, now: float) -> None:
        """Create or replace a subscription's spec and owner, keeping its counters."""

    def subscription_drop(self, subscription: str) -> None:
        """Forget a deleted subscription: its state and its events."""

    def subscription_states(self) -> list[SubscriptionState]: ...

    def subscription_state(self, subscription: str) -> SubscriptionState | None: ...

    def subscription_enqueue(self, events: Sequence[tuple[str, float, str, str, int]]) -> None:
        """Outbox rows (subscription, recorded, focus type, focus id, focus version), in this transaction."""

    def subscription_due(self, now: float, limit: int) -> list[str]:
        """Subscriptions with pending events whose back-off is over and that no relay holds."""

    def subscription_lease(self, subscription: str, worker: str, now: float, until: float) -> SubscriptionState | None:
        """Hold a subscription for ``worker`` until ``until`` unless another relay holds it or its
        back-off runs past ``now``; its state as leased (None: not leased)."""

    def subscription_release(self, subscription: str, worker: str) -> None: ...

    def subscription_number(self, subscription: str, last: int | None = None) -> int:
        """Give the pending events not yet numbered the next numbers, in the order they were
        recorded; return the last number (the lease holder alone calls this). ``last``: the
        subscription's last number when the caller has just read it (one query fewer)."""

    def subscription_head(self, subscription: str, limit: int) -> list[SubscriptionEvent]:
        """The oldest numbered pending events, in number order."""

    def subscription_sent(self, subscription: str, numbers: Sequence[int], now: float) -> None:
        """Those events were delivered: mark them sent, clear the failures."""

    def subscription_failed(
        self, subscription: str, numbers: Sequence[int], error: str, next_at: float, *, dead: bool, now: float
    ) -> None:
        """A delivery failed: count it, wait until ``next_at``; ``dead``: the events go to the dead letters."""

    def subscription_touch(self, subscription: str, now: float) -> None:
        """A notification without events (handshake, heartbeat) was delivered."""

    def subscription_events(self, subscription: str, first: int, last: int, limit: int) -> list[SubscriptionEvent]:
        """Numbered events ``first``..``last`` of a subscription ($events), in number order."""

    def subscription_purge(self, before: float) -> int:
        """Delete events delivered (or dead) before ``before``; return how many."""

    # ---- the audit journal (ketnoi.store.audit_spool, ADR 0018) -----------------------------------
    def spool_mark(self, segment: str) -> int | None:
        """The offset in a journal segment up to which its records are in the log (None: none are)."""

    def set_spool_mark(self, segment: str, offset: int) -> None:
        """Record, in this transaction (the one appending those records), how far a segment is in the log."""

    def forget_spool_mark(self, segment: str) -> None:
        """The segment's file is deleted: its mark is no longer needed."""


class Store(Protocol):
    """A database holding resources: opens sessions and manages its schema."""

    dialect: str  # "sqlite" or "postgresql"
    location: str  # where the data lives: the SQLite file (or ":memory:"); PostgreSQL's URL without credentials

    def session(self, *, write: bool, durable: bool = True) -> AbstractContextManager[Session]:
        """One transaction. ``durable=False`` (a write session only): its commit survives a crash
        of this process at once, and power loss once the database next syncs (SQLite: the next
        durable commit or checkpoint; PostgreSQL: the WAL writer, within about 0.6 s) — for
        records whose cost of a disk flush each would exceed their value (read audit events,
        ADR 0016)."""

    def audit_append_alone(
        self, entries: Sequence[AuditEntry], *, durable: bool, mark: tuple[str, int] | None = None
    ) -> list[int]:
        """Append audit records in a transaction of their own (the read-audit group commit,
        ADR 0016; the audit journal's drain, ADR 0018, with ``mark``: the journal segment's offset
        after them, stored in the same transaction), as cheaply as the backend allows; ``durable``
        as for :meth:`session`."""

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""

    def schema_version(self) -> int: ...

    def close(self) -> None: ...


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
