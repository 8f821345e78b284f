"""The ``$export`` job (ADR 0024): pages of the owner's own search appended to NDJSON files per type.

A step writes up to :data:`STEP_PAGES` pages (:data:`PAGE` resources each) to the types' files, syncs
them, and saves each file's length and the last page's key in the same transaction; a step that dies is
redone after cutting the files back to the saved lengths, so every resource is in the output exactly
once however the job is interrupted. Memory holds one page. A type's output is split into parts of at
most ``export_part_resources`` resources (``Observation.ndjson``, ``Observation-2.ndjson``...).

The job's parameters (set at kick-off by :mod:`ketnoi.operations.bulk_export`): ``level`` (system,
patient, group), ``types``, ``since``, ``filters`` (type -> the ``_typeFilter`` queries of that type),
``members`` and ``limited`` (the patients a Patient- or Group-level export is confined to),
``group``, ``elements``, ``lenient`` and ``base_url``.
"""

from __future__ import annotations

import contextvars
import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.elements import subset
from ketnoi.interactions.policy import compartment_params
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.search import parse_type_query
from ketnoi.interactions.services import Services
from ketnoi.interactions.visibility import Row
from ketnoi.jobs import Job, JobStep
from ketnoi.operations import bulk_export_scan as scan
from ketnoi.search.compile import Position
from ketnoi.search.query import Compartment, SearchQuery
from ketnoi.store.base import Session

KIND = "export"
PAGE = 2500
# Pages per step, within STEP_S: one transaction, one commit and one sync per file for up to 10,000
# resources (a commit and an fsync per 1,000 were a fifth of a million-resource export: bench/export.py).
STEP_PAGES = 4
STEP_S = 2.0
WAIT_S = 0.05  # a step that waits for the scan's mark to settle (PostgreSQL) sleeps this long


def export_dir(services: Services, job_id: int) -> Path:
    return Path(services.settings.export_dir) / str(job_id)


def export_step(services: Services, page: int = PAGE, pages: int = STEP_PAGES) -> JobStep:
    """One step: up to ``pages`` pages of ``page`` resources (at most :data:`STEP_S` seconds), appended
    to their files, which are synced once before the step's transaction records their lengths.

    The next page is read while the current one is written: the page query runs in a reader thread
    (the database works, and the driver waits without the GIL) as this thread appends to the file. The
    two never use the session at once: this thread touches it again only after the last read."""

    def step(session: Session, job: Job) -> bool:
        repo = Repository(services, session, RequestContext.of_job(job.owner))
        if "scan" not in job.progress:
            _plan(repo, job)
        touched: set[Path] = set()
        counts: dict[str, int] = {}
        started = time.monotonic()
        read = functools.partial(_read, repo, job.params, page)
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="export-read") as reader:
                ahead = reader.submit(contextvars.copy_context().run, read, _cursor(job.progress))
                for n in range(pages):
                    got = ahead.result()
                    more = n + 1 < pages and not got.finished and not got.waiting
                    more = more and time.monotonic() - started <= STEP_S
                    if more:
                        ahead = reader.submit(contextvars.copy_context().run, read, got.after)
                    _write(services, job, got, touched, counts)
                    if not more:
                        break
            if got.waiting:
                time.sleep(WAIT_S)
        finally:
            for path in touched:  # durable before the commit says how long it is
                _sync(path)
        if job.progress.get("finished"):
            kicked_off = job.created
            job.progress["transaction_time"] = scan.transaction_time(session, job.progress.get("scan"), kicked_off)
        audit.record_export(repo, counts, job.id)  # one AuditEvent per step, in its transaction
        return bool(job.progress.get("finished"))

    return step


# The index of the type in params["types"] and the last key written (the keyset search), and the
# storage-order scan's state (bulk_export_scan; None for a job queued before there was one).
Cursor = tuple[int, list[Any] | None, scan.Scan | None]


@dataclass(frozen=True, slots=True)
class Page:
    """One page read: the rows kept by type (one type for a keyset page, several for a page of the
    scan) and where the next page starts; ``waiting``: nothing read, the scan's mark is not settled."""

    kept: dict[str, list[Row]]
    after: Cursor
    finished: bool
    waiting: bool = False


def _cursor(progress: dict[str, Any]) -> Cursor:
    return int(progress["index"]), progress.get("after"), progress.get("scan")


def _plan(repo: Repository, job: Job) -> None:
    """At the job's first step, whether the export reads in storage order (ADR 0024, decision 12): a
    system-level export of every type (no ``_type``) reads its exact types (:func:`_exact`) that way,
    then the others by keyset search. Not with ``_type``: each range of the history would be filtered
    by type in the database, a walk of the type's whole index per range for a small type. None for a
    job that had started before (its keyset cursor goes on)."""
    progress, params = job.progress, job.params
    started = progress["index"] or progress.get("after") is not None or progress["files"]
    every = params["level"] == "system" and set(params["types"]) == set(resource_types())
    exact = [] if started or not every else [t for t in params["types"] if _exact(repo, params, t)]
    progress["scan"] = scan.mark(repo.session, exact, params.get("mark"))
    for rtype in exact:  # the manifest lists the types in the order asked, not in the order met
        progress["files"].setdefault(rtype, {"count": 0, "bytes": 0})


def _exact(repo: Repository, params: dict[str, Any], rtype: str) -> bool:
    """Whether the scan gives what the keyset search would: no ``_typeFilter``, and a search of the
    type that the access policy does not narrow (``_since`` is applied by the scan itself)."""
    if _filters(params, rtype):
        return False
    return not repo.narrows(_parse(repo, params, rtype, ""))


def _read(repo: Repository, params: dict[str, Any], page: int, cursor: Cursor) -> Page:
    """The page of the export at ``cursor``: the scan's while it lasts, then the keyset search's."""
    index, after, state = cursor
    if state is not None and scan.active(state):
        ready = scan.settle(repo.session, state)
        if ready is None:
            return Page({}, cursor, False, waiting=True)
        if ready["types"]:
            kept, moved = scan.read(repo.session, ready, params.get("since"), page)
            return Page(kept, (index, after, moved), False)
        cursor = (index, after, ready)  # waited too long: every type the keyset way
    return _read_keyset(repo, params, page, cursor)


def _read_keyset(repo: Repository, params: dict[str, Any], page: int, cursor: Cursor) -> Page:
    """The keyset page at ``cursor``: its rows (after ``_typeFilter``s) and the next cursor. The types
    the scan read are passed over."""
    index, after, state = cursor
    types: list[str] = params["types"]
    scanned = set(state["types"]) if state is not None else set()
    while index < len(types) and types[index] in scanned:
        index, after = index + 1, None
    if index >= len(types) or _members(params) == []:
        return Page({}, (index, after, state), True)
    rtype = types[index]
    query = _page_query(repo, params, rtype, page)
    position = Position(tuple(after[2:]), after[0], after[1]) if after else None
    rows = repo.search_page(query, params["base_url"], position) if query is not None else []
    kept = {rtype: _filtered(repo, params, rtype, rows[:page])}
    if len(rows) > page:
        last = rows[page - 1]  # the page's last row, kept or not: the next page starts after it
        return Page(kept, (index, [last[0], last[1], *last[3:]], state), False)
    return Page(kept, (index + 1, None, state), index + 1 >= len(types))


def _write(services: Services, job: Job, got: Page, touched: set[Path], counts: dict[str, int]) -> None:
    """Append a page read to its types' files and move the job's progress past it."""
    progress, params = job.progress, job.params
    folder, limit = export_dir(services, job.id), services.settings.export_part_resources
    for rtype, kept in got.kept.items():
        record = progress["files"].setdefault(rtype, {"count": 0, "bytes": 0})
        if kept:
            lines = _lines(kept, tuple(params.get("elements") or ()))
            _append_parts(folder, rtype, record, lines, limit, touched)
            counts[rtype] = counts.get(rtype, 0) + len(kept)
    progress["index"], progress["after"], state = got.after
    if state is not None:
        progress["scan"] = state
    if got.finished:
        _write_errors(services, job, touched)
        progress["finished"] = time.time()


ERRORS = "error.ndjson"  # the error file: OperationOutcomes, one per line (manifest "error")


def _write_errors(services: Services, job: Job, touched: set[Path]) -> None:
    """The error file, written whole by the last step (from its start again if that step is redone):
    one OperationOutcome per warning of the kick-off (what ``handling=lenient`` ignored)."""
    warnings = job.params.get("warnings") or []
    if not warnings:
        return
    lines = [res.dumps({"resourceType": "OperationOutcome", "issue": [issue]}) for issue in warnings]
    path = export_dir(services, job.id) / ERRORS
    job.progress["errors"] = {"count": len(lines), "bytes": _append(path, 0, lines)}
    touched.add(path)


def _members(params: dict[str, Any]) -> list[str] | None:
    """The patients the export is confined to (a Group's members, the ``patient`` parameter's), or None
    for every patient the owner may see (a Patient-level export without ``patient``)."""
    if params["level"] == "system" or (params["level"] == "patient" and not params.get("limited")):
        return None
    return list(params["members"])


def _filters(params: dict[str, Any], rtype: str) -> list[str]:
    """The ``_typeFilter`` queries of ``rtype`` (a job queued before several were allowed holds one string)."""
    found = params["filters"].get(rtype, [])
    return [found] if isinstance(found, str) else list(found)


def _parse(repo: Repository, params: dict[str, Any], rtype: str, query: str) -> SearchQuery:
    # lenient (Prefer: handling=lenient at kick-off): unknown search parameters are ignored, as in a search
    return parse_type_query(repo, rtype, query, strict=not params.get("lenient"))


def _page_query(repo: Repository, params: dict[str, Any], rtype: str, page: int) -> SearchQuery | None:
    """The search for one page of ``rtype``: its ``_typeFilter`` (when there is one; several are applied
    to the page by :func:`_filtered`), ``_since``, and at Patient and Group level membership of a patient's
    compartment (None: nothing of this type can be in it)."""
    filters = _filters(params, rtype)
    query = _parse(repo, params, rtype, filters[0] if len(filters) == 1 else "")
    query.count = page
    query.sort = []
    if params.get("since"):
        query.filters.extend(
            parse_type_query(repo, rtype, f"_lastUpdated=ge{quote(params['since'])}", strict=True).filters
        )
    if params["level"] == "system":
        return query
    members = _members(params)
    if rtype == "Group" and params.get("group"):
        # The Group itself only: another Group sharing a member is in that member's compartment,
        # but not in this export (THREATS.md AZ-07, HAPI #3700).
        query.filters.extend(parse_type_query(repo, rtype, f"_id={params['group']}", strict=True).filters)
        return query
    if rtype == "Patient":
        if members is not None:
            query.filters.extend(parse_type_query(repo, rtype, "_id=" + ",".join(members), strict=True).filters)
        return query
    compartment = compartment_params(rtype)
    if not compartment:
        return None
    if members:
        query.filters.append(Compartment(tuple(compartment), "Patient", members[0], tuple(members[1:])))
    else:
        query.filters.append(Compartment(tuple(compartment), "Patient", "", any_target=True))
    return query


def _filtered(repo: Repository, params: dict[str, Any], rtype: str, rows: list[Row]) -> list[Row]:
    """With several ``_typeFilter``s for ``rtype``, the rows of the page that match at least one (their
    union, each resource once: the page is walked once, in key order, whichever filters match a row).
    One search per filter over the page's ids; one filter or none was applied by the page's own query."""
    filters = _filters(params, rtype)
    if len(filters) < 2 or not rows:
        return rows
    ids = [row[1] for row in rows]
    matched: set[str] = set()
    for text in filters:
        check = _parse(repo, params, rtype, text)
        check.filters.extend(parse_type_query(repo, rtype, "_id=" + ",".join(ids), strict=True).filters)
        check.count, check.sort = len(ids), []
        matched.update(row[1] for row in repo.search_page(check, params["base_url"]))
    return [row for row in rows if row[1] in matched]


def _lines(rows: list[Row], elements: tuple[str, ...]) -> list[bytes]:
    """The stored JSON of each row, or with ``_elements`` the subset (tagged SUBSETTED) of each."""
    if not elements:
        return [row[2] for row in rows]
    return [res.dumps(subset(res.loads(row[2]), None, elements)) for row in rows]


def part_name(rtype: str, number: int) -> str:
    """The file of a type's ``number``-th part (from 1): ``Observation.ndjson``, ``Observation-2.ndjson``..."""
    return f"{rtype}.ndjson" if number == 1 else f"{rtype}-{number}.ndjson"


def parts(record: dict[str, Any]) -> list[tuple[int, int]]:
    """``(count, bytes)`` of each part of a type's output in order: the full ones the record lists in
    ``parts`` (absent while there is one) and the one being written, when it holds anything."""
    full = [(int(c), int(b)) for c, b in record.get("parts", [])]
    current = _in_current(record)
    return [*full, (current, int(record["bytes"]))] if current else full


def _in_current(record: dict[str, Any]) -> int:
    """The resources in the part being written: all of the type's, less the full parts'."""
    return int(record["count"]) - sum(int(c) for c, _ in record.get("parts", []))


def _append_parts(
    folder: Path, rtype: str, record: dict[str, Any], lines: list[bytes], limit: int, touched: set[Path]
) -> None:
    """Append ``lines`` to the type's current part; one that holds ``limit`` lines is closed first and
    the next begun (from empty: :func:`_append` cuts a file a redone step had begun). ``record`` keeps
    ``count`` (all parts), ``bytes`` (the current part's) and ``parts`` (``[count, bytes]`` of the full ones)."""
    while lines:
        closed = record.get("parts", [])
        held = _in_current(record)
        if held >= limit:  # closed when the next line comes: no empty part after an exact fill
            record["parts"] = [*closed, [held, record["bytes"]]]
            record["bytes"] = 0
            continue
        head, lines = lines[: limit - held], lines[limit - held :]
        path = folder / part_name(rtype, len(closed) + 1)
        record["bytes"] = _append(path, int(record["bytes"]), head)
        record["count"] += len(head)
        touched.add(path)


def _append(path: Path, length: int, lines: list[bytes]) -> int:
    """Append one line per row to ``path``, first cutting it back to ``length`` (what the last committed
    step left: a step that died after writing is redone whole); returns the new length (synced by the
    step, :func:`_sync`, before its transaction commits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as out:
        out.truncate(length)
        out.seek(length)
        out.write(b"\n".join(lines))  # the page in two writes, not two per line
        out.write(b"\n")
        return out.tell()


def _sync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())
