"""The audit recorder: an AuditEvent for every FHIR interaction, in the hash-chained audit log (ADR 0015).

Called from the one path every request takes: ``interactions.router.handle`` (every REST call and
operation) and, per entry, ``interactions.bundle`` (batch and transaction entries, plus one event
for the Bundle itself), so no route can skip it. It is installed on ``Services`` by the composition
root (``Settings.audit``, on by default) and does nothing when absent. What an event says is
``interactions.audit_events`` (BALP); this module decides when it is durable:

- **Writes** (create, update, patch, delete, their conditional forms, transaction entries): the
  events are appended in the write's own transaction as its last statement, so the write and its
  record commit together or not at all (PostgreSQL holds the log's head lock until the commit;
  appending last keeps that short). A rolled-back write leaves no event of a write; the failed
  request is then recorded as a failure, like any refused one.
- **Everything else** (reads, searches, history, read-only operations, refusals and errors): the
  events are written to the audit journal on local disk (``ketnoi.store.audit_spool``, ADR 0018)
  before the answer, and moved into the log in batches by the journal's own thread. Without a
  journal (``KETNOI_AUDIT_SPOOL=off``, ``:memory:``, or ``KETNOI_AUDIT_READS_FSYNC``, which wants
  a disk flush per group) they go through :class:`GroupCommit`, which appends those of concurrent
  requests in one write transaction; each request waits until its events are committed. Either
  way a request whose events cannot be kept answers 503 ("audit unavailable"): never an
  unaudited answer.
- **Bulk writes** (``ketnoi load``, ``$import``): one event per transaction batch, with the
  counts by type and the job or request id (:func:`record_bulk`), appended in that batch.

``GET /metadata`` is not recorded: it is public and carries no one's data.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ketnoi.config import ConfigError, Settings
from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions import audit_events as ae
from ketnoi.interactions import reach
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.policy import compartment_params
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.services import Services
from ketnoi.search.index import IndexRows
from ketnoi.store.audit_spool import Drain, Forget, Mark, Spool, SpoolError, default_directory
from ketnoi.store.auditlog import AuditEntry
from ketnoi.store.base import Store, StoredVersion

log = logging.getLogger("ketnoi.audit")
KEY = "audit"  # Services.extras key of the installed Recorder
# Events committed at a time by a request that holds many (a download naming every patient of an
# export file): memory stays at one batch of built AuditEvents however many patients a file has.
BATCH = 2000
_NOT_DATA = frozenset({"OperationOutcome", "Parameters"})  # answers that carry no stored resource


class AuditUnavailable(Exception):
    """The events of a request could not be made durable in time: it must not be answered."""


def install(services: Services) -> None:
    """Record AuditEvents for ``services`` unless ``Settings.audit`` is "off"."""
    mode = services.settings.audit
    if mode not in ("on", "off"):
        raise ConfigError(f"KETNOI_AUDIT must be 'on' or 'off', not {mode!r}")
    if mode == "on":
        services.extras[KEY] = Recorder(services)


def flush(services: Services) -> bool:
    """Wait until the events this process recorded so far are in the log, so that a reader of the
    log sees them; False if that took longer than ``Settings.audit_wait_s`` (they stay in the
    journal, on their way)."""
    recorder = recorder_of(services)
    if recorder is None or recorder.spool is None:
        return True
    return recorder.spool.flush(services.settings.audit_wait_s)


def close(services: Services) -> None:
    """At shutdown: the journal drained into the log and its files deleted."""
    recorder = recorder_of(services)
    if recorder is not None and recorder.spool is not None:
        recorder.spool.close()


def recorder_of(services: Services) -> Recorder | None:
    recorder: Recorder | None = services.extras.get(KEY)
    return recorder


def trail(services: Services, request: FhirRequest) -> Trail:
    """The trail of one request (a no-op one when auditing is off, or for ``GET /metadata``)."""
    recorder = recorder_of(services)
    if recorder is None or (request.path.strip("/") == "metadata" and request.method in ("GET", "HEAD")):
        return NO_TRAIL
    return Trail(recorder)


def unavailable() -> FhirResponse:
    """503 instead of an answer whose AuditEvent could not be made durable."""
    error = FhirError.of(
        503,
        "transient",
        "The audit trail is unavailable, so the request was not answered; try again",
        "Nhật ký kiểm toán không khả dụng nên yêu cầu chưa được trả lời; hãy thử lại",
    )
    return FhirResponse(503, resource=error.outcome(), headers={"Retry-After": "1"})


class GroupCommit:
    """Appends the events of concurrent requests in one write transaction (group commit).

    No thread of its own: the first waiting request with nothing in flight becomes the leader,
    takes every queued batch and appends them in one transaction; requests arriving meanwhile
    queue for the next leader. Alone, a request pays one transaction; under load, one transaction
    (and one fsync) serves many. A request whose events were not taken before its deadline is
    withdrawn and fails; one whose events were taken waits for that transaction's end (an event
    may then be durable for a request answered 503: recorded, never lost)."""

    def __init__(self, append: Callable[[list[AuditEntry]], None], wait_s: float) -> None:
        self._append = append
        self._wait_s = wait_s
        self._cond = threading.Condition()
        self._queue: list[_Ticket] = []
        self._leading = False

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Return once ``entries`` are committed; AuditUnavailable if they were not in time or failed."""
        ticket = _Ticket(list(entries))
        deadline = time.monotonic() + self._wait_s
        with self._cond:
            self._queue.append(ticket)
            while not ticket.done and self._leading:
                remaining = deadline - time.monotonic()
                if remaining <= 0 and ticket in self._queue:
                    self._queue.remove(ticket)
                    raise AuditUnavailable("timed out waiting for the audit log")
                self._cond.wait(max(remaining, 0.05))
            if not ticket.done:  # nobody is writing: lead, with everything queued so far
                self._leading = True
                batch, self._queue = self._queue, []
        if not ticket.done:
            self._lead(batch)
        if ticket.error is not None:
            raise AuditUnavailable("the audit log could not be written") from ticket.error

    def _lead(self, batch: list[_Ticket]) -> None:
        error: BaseException | None = None
        try:
            self._append([e for t in batch for e in t.entries])
        except Exception as exc:  # every request of the batch answers 503
            log.exception("appending %d audit batches failed", len(batch))
            error = exc
        finally:
            with self._cond:
                for t in batch:
                    t.done, t.error = True, error
                self._leading = False
                self._cond.notify_all()


class _Ticket:
    __slots__ = ("done", "entries", "error")

    def __init__(self, entries: list[AuditEntry]) -> None:
        self.entries = entries
        self.done = False
        self.error: BaseException | None = None


Extract = Callable[[dict[str, Any]], IndexRows]


class Recorder:
    """Builds the AuditEvents of interactions and makes them durable (installed per ``Services``)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.group = GroupCommit(self._append, services.settings.audit_wait_s)
        self.spool = open_spool(services.store, services.settings)
        self._extract: dict[str, Extract | None] = {}
        self._extractor: object = None  # the extractor the cached plans come from

    def _append(self, entries: list[AuditEntry]) -> None:
        # Events of reads and refusals: the answer waits for this commit, which survives a crash
        # of the server at once and power loss at the database's next sync, unless
        # audit_reads_fsync asks for a disk flush per group (ADR 0016). Writes' events are in the
        # write's own, fully durable, transaction.
        # The store's own append (one round trip on PostgreSQL): these are the server's records,
        # not a caller's data, so no policy applies and no hook runs.
        self.services.store.audit_append_alone(entries, durable=self.services.settings.audit_reads_fsync)

    def commit(self, entries: list[AuditEntry]) -> None:
        """Return once ``entries`` would survive a crash of the server; AuditUnavailable if not."""
        if self.spool is None:
            self.group.append(entries)
            return
        try:
            self.spool.append(entries)
        except SpoolError as exc:
            log.error("audit journal: %s", exc)
            raise AuditUnavailable(str(exc)) from exc

    # ---- what an interaction did -------------------------------------------------------------
    def events(
        self, repo: Repository | None, request: FhirRequest, response: FhirResponse, written: Sequence[StoredVersion]
    ) -> list[AuditEntry]:
        """The events of one interaction: one per version written, else one per patient whose data
        the answer carries, else one."""
        return list(self.lazy_events(repo, request, response, written))

    def lazy_events(
        self, repo: Repository | None, request: FhirRequest, response: FhirResponse, written: Sequence[StoredVersion]
    ) -> Iterator[AuditEntry]:
        """:meth:`events`, each built when taken: the targets are found now (while ``repo`` is open),
        the AuditEvents as they are committed, so a download naming a million patients never holds
        a million events (:data:`BATCH` at a time, :meth:`Trail.finish`)."""
        interaction = ae.interaction_of(request)
        outcome = _outcome(response)
        recorded = res.now()
        context, base = request.context, request.base_url
        targets = self._targets(repo, interaction, response, written)
        return (
            ae.entry(ae.build(context, interaction, t, outcome, recorded=recorded, base_url=base), context, t, recorded)
            for t in targets
        )

    def _targets(
        self,
        repo: Repository | None,
        it: ae.Interaction,
        response: FhirResponse,
        written: Sequence[StoredVersion],
    ) -> list[ae.Target]:
        if written:
            return [t for v in written for t in self._written(repo, v)]
        named = _named(it)
        if response.status >= 400:
            return [ae.Target(named, it.patient)]
        if response.seen is not None:  # search, history: the stored resources, not the trimmed entries
            patients = ae.patients_in((res.loads(c) for c in response.seen), self.extractor_for)
            what = named if it.id is not None else None  # history-instance names its resource
            return [ae.Target(what, p) for p in patients] or [ae.Target(what, it.patient)]
        body = res.loads(response.raw) if response.raw is not None else response.resource
        if isinstance(body, dict) and body.get("resourceType") not in _NOT_DATA and "id" in body:
            # One resource: a read, or a write that wrote nothing and returned what exists.
            action = "R" if it.action in ("C", "U", "D") else None
            what = _version_ref(body) or named
            patients = self._patients(repo, response.raw, body)
            return [ae.Target(what, p, action) for p in patients] or [ae.Target(what, it.patient, action)]
        return [ae.Target(named, it.patient)]

    def _patients(self, repo: Repository | None, raw: bytes | None, body: dict[str, Any]) -> list[str]:
        """The Patients of the one resource answered: those the access policy already found in the
        same bytes (a facility's read, ``reach.patients_found``), else extracted here."""
        known = reach.patients_found(repo, raw) if repo is not None and raw is not None else None
        if known is None or body.get("resourceType") == "Patient":
            return ae.patients_of(body, self.extractor_for)
        return sorted(p for p in known if res.is_valid_id(p))

    def _written(self, repo: Repository | None, v: StoredVersion) -> list[ae.Target]:
        what = f"{v.resource_type}/{v.id}/_history/{v.version}"
        action = "D" if v.deleted else ("C" if v.version == 1 or v.method == "POST" else "U")
        body = res.loads(v.content) if v.content is not None else _before(repo, v)
        patients = ae.patients_of(body, self.extractor_for)
        return [ae.Target(what, p, action) for p in patients] or [ae.Target(what, None, action)]

    def extractor_for(self, rtype: str) -> Extract | None:
        """Index extraction limited to the parameters that decide ``rtype``'s Patient compartment
        (a few accessors instead of every search parameter), cached per type."""
        extractor = self.services.extractor
        if extractor is not self._extractor:  # custom SearchParameters swapped it: plans anew
            self._extract, self._extractor = {}, extractor
        if rtype not in self._extract:
            self._extract[rtype] = _compartment_extractor(extractor, rtype)
        return self._extract[rtype]


def open_spool(store: Store, settings: Settings) -> Spool | None:
    """The audit journal of this process (ADR 0018), after draining what stopped processes left
    in it; None when read events are committed one group at a time instead."""
    directory = journal_directory(store, settings)
    if directory is None:
        return None
    spool = Spool(directory, *journal_log(store))
    try:
        spool.recover()
    except Exception:  # the server still starts; the job runner's idle task tries again
        log.exception("draining the audit journal left in %s failed", directory)
    return None if settings.audit_reads_fsync else spool


def recover_journal(store: Store, settings: Settings) -> int:
    """Drain into the log what stopped processes left in the journal (``ketnoi audit verify``
    does it first); the records moved."""
    directory = journal_directory(store, settings)
    if directory is None:
        return 0
    spool = Spool(directory, *journal_log(store))
    try:
        return spool.recover()
    finally:
        spool.close()


def journal_directory(store: Store, settings: Settings) -> Path | None:
    if settings.audit_spool == "off":
        return None
    return Path(settings.audit_spool) if settings.audit_spool else default_directory(store.dialect, store.location)


def journal_log(store: Store) -> tuple[Drain, Mark, Forget]:
    """How the journal reaches the log: a batch and its segment's mark in one transaction."""

    def drain(entries: Sequence[AuditEntry], segment: str, offset: int) -> None:
        # Read events: kept through a server crash at once, through power loss at the
        # database's next sync (ADR 0016); they were on disk in the journal meanwhile.
        store.audit_append_alone(entries, durable=False, mark=(segment, offset))

    def mark(segment: str) -> int | None:
        with store.session(write=False) as session:
            return session.spool_mark(segment)

    def forget(segment: str) -> None:
        with store.session(write=True, durable=False) as session:
            session.forget_spool_mark(segment)

    return drain, mark, forget


def _compartment_extractor(extractor: Any, rtype: str) -> Extract | None:
    params = frozenset(compartment_params(rtype) or ())
    if not params:
        return None

    def run(resource: dict[str, Any]) -> IndexRows:
        rows: IndexRows = extractor.extract_some(resource, params)
        return rows

    return run


def _before(repo: Repository | None, deletion: StoredVersion) -> dict[str, Any] | None:
    """The content a deletion removed (whose patient it was): the version before it."""
    if repo is None or deletion.version < 2:
        return None
    try:
        previous = repo.privileged("audit").vread(deletion.resource_type, deletion.id, str(deletion.version - 1))
    except FhirError:
        return None
    body: dict[str, Any] | None = res.loads(previous.content) if previous.content is not None else None
    return body


def _named(it: ae.Interaction) -> str | None:
    """The resource (version) the URL names, if it names one."""
    if it.resource_type is None or it.id is None:
        return None
    return f"{it.resource_type}/{it.id}" + (f"/_history/{it.version}" if it.version else "")


def _version_ref(body: dict[str, Any]) -> str | None:
    rtype, id = body.get("resourceType"), body.get("id")
    if not isinstance(rtype, str) or not isinstance(id, str):
        return None
    version = (body.get("meta") or {}).get("versionId") if isinstance(body.get("meta"), dict) else None
    return f"{rtype}/{id}/_history/{version}" if isinstance(version, str) else f"{rtype}/{id}"


def _outcome(response: FhirResponse) -> ae.Outcome:
    if response.status < 400:
        return ae.Outcome(response.status)
    issues = (response.resource or {}).get("issue") if isinstance(response.resource, dict) else None
    texts = [str(i.get("diagnostics")) for i in issues or () if isinstance(i, dict) and i.get("diagnostics")]
    return ae.Outcome(response.status, "; ".join(texts) or f"HTTP {response.status}")


class Trail:
    """The events of one request, until they are durable.

    Write paths append theirs in their transaction (:meth:`record` with ``write=True``) and call
    :meth:`settle` once it committed; other paths leave theirs pending. :meth:`finish` makes the
    pending ones durable (group commit) before the answer goes out, and records the request as a
    failure when nothing was recorded (an error, or a write whose transaction rolled back)."""

    __slots__ = ("_pending", "_recorder", "_settled")

    def __init__(self, recorder: Recorder | None) -> None:
        self._recorder = recorder
        self._pending: list[Iterator[AuditEntry]] = []
        self._settled = False

    def events(
        self, repo: Repository | None, request: FhirRequest, response: FhirResponse, written: Sequence[StoredVersion]
    ) -> list[AuditEntry]:
        """The events of one interaction, for the caller to place (a transaction's entries)."""
        if self._recorder is None:
            return []
        return self._recorder.events(repo, request, response, written)

    def record(self, repo: Repository, request: FhirRequest, response: FhirResponse, *, write: bool) -> None:
        """Record an interaction that ran in ``repo``'s transaction: in it, if it is a write
        transaction (called last, before the commit), else pending for :meth:`finish`."""
        if self._recorder is None:
            return
        if write:
            append(repo, self.events(repo, request, response, repo.written))
        else:
            self._pending.append(self._recorder.lazy_events(repo, request, response, repo.written))

    def later(self, request: FhirRequest, response: FhirResponse) -> None:
        """Record, with the pending events, an interaction that wrote nothing (a failed one too)."""
        if self._recorder is not None:
            self._pending.append(self._recorder.lazy_events(None, request, response, ()))

    def settle(self) -> None:
        """The transaction holding this request's events committed: they are durable."""
        self._settled = True

    def finish(self, request: FhirRequest, response: FhirResponse) -> FhirResponse:
        """``response`` once every event of the request is durable; 503 if they cannot be."""
        if self._recorder is None:
            return response
        if not self._settled and not self._pending:
            self.later(request, response)
        pending, self._pending = self._pending, []
        entries = itertools.chain.from_iterable(pending)
        try:
            while batch := list(itertools.islice(entries, BATCH)):
                self._recorder.commit(batch)
        except AuditUnavailable:
            return unavailable()
        return response


NO_TRAIL = Trail(None)  # auditing off: records nothing, answers unchanged


def append(repo: Repository, entries: Sequence[AuditEntry]) -> None:
    """Append events in ``repo``'s write transaction (its last statement: see the module docstring)."""
    if entries:
        repo.audit_append(entries)


def record_export(repo: Repository, counts: dict[str, int], job: int) -> None:
    """One AuditEvent for a bulk export step (DICOM 110106 "Export"), appended in its transaction: the
    counts read out by type and the job."""
    if recorder_of(repo.services) is None or not counts:
        return
    recorded = res.now()
    event = ae.bulk(
        repo.context,
        "$export",
        counts,
        job,
        recorded=recorded,
        base_url=repo.services.settings.public_base(),
        export=True,
    )
    append(repo, [ae.entry(event, repo.context, ae.Target(), recorded)])


def notification_entry(
    services: Services, owner: RequestContext, subscription: str, counts: dict[str, int]
) -> AuditEntry | None:
    """The AuditEvent of a subscription notification that went out (DICOM 110106 "Export"), with the
    subscription's owner as the agent and the counts sent by type; the relay appends a round's
    entries together in its transaction (:func:`append`). None when auditing is off."""
    if recorder_of(services) is None or not counts:
        return None
    recorded = res.now()
    base = services.settings.public_base()
    what = f"Subscription/{subscription} notification"
    event = ae.bulk(owner, what, counts, None, recorded=recorded, base_url=base, export=True)
    return ae.entry(event, owner, ae.Target(f"Subscription/{subscription}"), recorded)


def record_bulk(repo: Repository, what: str, job: int | None = None) -> None:
    """One AuditEvent for a bulk write batch (``ketnoi load``, an ``$import`` step), appended in its
    transaction: the counts written by type, the job and the request id. Nothing if none was written."""
    if recorder_of(repo.services) is None or not repo.written:
        return
    counts = Counter(v.resource_type for v in repo.written)
    recorded = res.now()
    event = ae.bulk(repo.context, what, counts, job, recorded=recorded, base_url=repo.services.settings.public_base())
    append(repo, [ae.entry(event, repo.context, ae.Target(), recorded)])
