"""``ketnoi load``: NDJSON files (one resource per line) and Bundle files into a database.

Every resource takes the same path as a REST write (``Repository``: validation, versioning,
indexing, hooks), but many share one database transaction, which is where the speed comes from.
NDJSON resources keep their ids (update-as-create), and a resource identical to the stored one is
skipped, so re-running a load after a crash resumes without duplicates or spurious versions.
transaction and batch Bundles go through the Bundle processor exactly as ``POST /fhir``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any, TypeVar

from ketnoi import runtime
from ketnoi.bulk.owners import Owners
from ketnoi.bulk.prepare import PreparedItem, changes_extraction, parse_line, prepare, prepared_chunks
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.organizations import is_reference
from ketnoi.interactions.repository import Repository, unit_of_work
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.search.extract import Extractor
from ketnoi.store.base import VersionConflict


@dataclass(slots=True)
class Failure:
    source: str  # file:line
    what: str  # Type/id when known
    message: str


@dataclass(slots=True)
class LoadReport:
    written: int = 0
    unchanged: int = 0
    failures: list[Failure] = field(default_factory=list)
    dangling: list[Failure] = field(default_factory=list)  # references to resources that do not exist
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return (self.written + self.unchanged) / self.seconds if self.seconds else 0.0


Progress = Callable[[LoadReport], None]
# Resources per transaction. Large because index pages touched by many resources of one
# transaction are written (WAL, checkpoint) once: measured at 200k resources, 500 → 5,000 made
# SQLite loads +38% and PostgreSQL +6%; memory stays near 0.5 GB. A server's own writes wait
# for the SQLite writer lock up to one batch (~2 s), hence $import keeps smaller steps.
BATCH_SIZE = 5000
T = TypeVar("T")
Item = tuple[str, Any]  # (source label, parsed JSON or a parse error message)


def files_in(paths: Iterable[str | Path]) -> list[Path]:
    """The .ndjson/.json files named, or found (sorted) in the folders named."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix in (".ndjson", ".json") and p.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return out


def load_paths(
    services: Services,
    paths: Iterable[str | Path],
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    workers: int = 0,
    context: RequestContext | None = None,
    organization: str | None = None,
    owners: Mapping[str, str] | None = None,
) -> LoadReport:
    """Load files and folders. ``workers`` > 0 prepares NDJSON lines (parse, validate, extract) in
    that many worker processes while this one writes. Every write is made for ``context`` (by
    default the operator running ``ketnoi load``, for ``organization``: ``Organization/ID``, which
    every version written records as its owner; ``ketnoi load --organization``). ``owners`` maps
    ``Type/id`` to the ``Organization/ID`` a resource is written for instead (``ketnoi load --owners``,
    :func:`ketnoi.bulk.owners.read_owners`): the operator's statement of who owns what, never read from
    the resources."""
    ctx = _operator(organization) if context is None else context
    if organization is not None and context is not None:
        raise ValueError("load_paths takes a context or an organization, not both")
    writer = Owners(ctx, owners or {})
    with runtime.bulk_mode():  # fewer GC passes, quicker GIL hand-over (ketnoi.runtime)
        return _load_paths(services, paths, batch_size=batch_size, progress=progress, workers=workers, context=writer)


def _operator(organization: str | None) -> RequestContext:
    """The context of ``ketnoi load``: the operator, writing for ``organization`` when given."""
    if organization is not None and not is_reference(organization):
        raise ValueError(f"--organization takes a reference such as Organization/123, not {organization!r}")
    return RequestContext.operator("load", organization)


def _load_paths(
    services: Services,
    paths: Iterable[str | Path],
    *,
    batch_size: int,
    progress: Progress | None,
    workers: int,
    context: Owners,
) -> LoadReport:
    report = LoadReport()
    started = time.perf_counter()
    # Versions written from here on are this load's (for the reference check); lastUpdated is
    # kept to the millisecond, so round down to it.
    since = math.floor(time.time() * 1000) / 1000
    files = files_in(paths)
    lines = (line for path in files if path.suffix == ".ndjson" for line in _ndjson(path))
    if workers > 0 and isinstance(services.extractor, Extractor):
        chunks = prepared_chunks(services, _chunked(lines, batch_size), workers)
        write_behind(services, chunks, report, progress, context=context)
    else:
        items = ((source, parse_line(raw)) for source, raw in lines)
        load_resources(services, items, report, batch_size=batch_size, progress=progress, context=context)
    for path in files:
        if path.suffix != ".ndjson":
            _load_json_file(services, path, report, batch_size, progress, context)
        report.seconds = time.perf_counter() - started
    if report.written:
        with unit_of_work(services, context.default, write=True) as repo:
            repo.analyze()  # the planner's statistics, before anyone searches the new data
    report.dangling = dangling_references(services, since, context.default)
    report.seconds = time.perf_counter() - started
    return report


def dangling_references(
    services: Services, since: float, context: RequestContext, limit: int = 10_000
) -> list[Failure]:
    """References from resources written since ``since`` to local resources that do not exist.

    Checked once after the whole load, not per resource: NDJSON files arrive in any type order,
    so an Observation may legitimately come before its Patient."""
    with unit_of_work(services, context, write=False) as repo:
        rows = repo.dangling_references(since, limit)
    return [
        Failure("reference check", f"{rtype}/{rid}", f"refers to {ttype}/{tid}, which does not exist")
        for rtype, rid, ttype, tid in rows
    ]


def _ndjson(path: Path) -> Iterator[tuple[str, bytes]]:
    """The non-blank lines of an NDJSON file, labelled ``file:line``."""
    with path.open("rb") as handle_:
        for number, line in enumerate(handle_, 1):
            if line.strip():
                yield f"{path.name}:{number}", line


def _chunked(items: Iterable[T], size: int, cut_after: Callable[[T], bool] | None = None) -> Iterator[list[T]]:
    """Lists of ``size`` items; a list also ends after an item for which ``cut_after`` is true."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size or (cut_after is not None and cut_after(item)):
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _load_json_file(
    services: Services,
    path: Path,
    report: LoadReport,
    batch_size: int,
    progress: Progress | None,
    context: Owners,
) -> None:
    source, value = path.name, parse_line(path.read_bytes())
    is_bundle = isinstance(value, dict) and value.get("resourceType") == "Bundle"
    if is_bundle and value.get("type") in ("transaction", "batch"):
        # A transaction is one request, made for the load's organization (an owners file does not split it).
        _load_bundle(services, source, value, report, context.default)
    else:
        entries = (
            [(f"{source}#entry{i}", e.get("resource")) for i, e in enumerate(value.get("entry", []))]
            if is_bundle
            else [(source, value)]
        )
        load_resources(services, entries, report, batch_size=batch_size, progress=progress, context=context)


def _load_bundle(
    services: Services, source: str, bundle: dict[str, Any], report: LoadReport, context: RequestContext
) -> None:
    request = FhirRequest("POST", "", body=bundle, headers={"prefer": "return=minimal"}, context=context)
    response = handle(services, request)
    entries = (response.resource or {}).get("entry", []) if response.status == 200 else []
    if response.status != 200:
        text = "; ".join(i.get("diagnostics", "") for i in (response.resource or {}).get("issue", []))
        report.failures.append(Failure(source, "Bundle", f"HTTP {response.status}: {text}"))
        return
    for index, entry in enumerate(entries):
        status = str(entry.get("response", {}).get("status", ""))
        if status.startswith("2"):
            report.written += 1
        else:
            outcome = entry.get("response", {}).get("outcome", {})
            text = "; ".join(i.get("diagnostics", "") for i in outcome.get("issue", []))
            report.failures.append(Failure(f"{source}#entry{index}", "", f"{status}: {text}"))


def load_resources(
    services: Services,
    items: Iterable[Item],
    report: LoadReport,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    context: RequestContext | Owners,
) -> LoadReport:
    """Write parsed resources (which must carry ids) in transactions of ``batch_size``; an item
    that is a str is the reason its line could not be parsed. This thread validates and indexes
    while a second one writes the previous batch (:func:`write_behind`)."""
    validator, strict = services.validator, services.settings.strict

    def prepared() -> Iterator[PreparedItem]:
        for source, resource in items:
            if isinstance(resource, str):
                yield (source, None, None, resource)
            else:
                # services.extractor is read per item: writing a SearchParameter replaces it.
                yield prepare(source, resource, services.extractor, validator, strict)

    batches = _chunked(prepared(), batch_size, cut_after=changes_extraction)
    write_behind(services, batches, report, progress, context=context)
    return report


def write_behind(
    services: Services,
    batches: Iterable[list[PreparedItem]],
    report: LoadReport,
    progress: Progress | None,
    *,
    context: RequestContext | Owners,
) -> None:
    """Write each batch in a writer thread while this thread prepares the next one.

    Why a thread: preparing (parse, validate, extract) is Python that holds the GIL, while the
    writer spends much of its time waiting on the database (PostgreSQL works in its own process,
    sqlite3 releases the GIL while it steps), so the two overlap on two cores. At most two batches
    wait, which bounds memory. A batch that ends with a SearchParameter is written before anything
    after it is prepared: writing one changes how the following resources are indexed.
    """
    queue: Queue[list[PreparedItem] | None] = Queue(maxsize=2)
    failed: list[BaseException] = []

    def writer() -> None:
        while (batch := queue.get()) is not None:
            try:
                if not failed:  # after a failure, drain the queue without writing
                    write_batch(services, batch, report, context=context)
                    if progress:
                        progress(report)
            except BaseException as exc:  # re-raised in the caller's thread below
                failed.append(exc)
            finally:
                queue.task_done()
        queue.task_done()

    thread = threading.Thread(target=writer, name="ketnoi-load-writer", daemon=True)
    thread.start()
    try:
        for batch in batches:
            if failed:
                break
            queue.put(batch)
            if batch and changes_extraction(batch[-1]):
                queue.join()
    finally:
        queue.put(None)
        thread.join()
    if failed:
        raise failed[0]


def write_batch(
    services: Services,
    batch: list[PreparedItem],
    report: LoadReport,
    *,
    context: RequestContext | Owners,
    attempts: int = 3,
) -> None:
    """One transaction: refused items are reported, the others written (with their prepared
    index rows when a worker made them, else validated and indexed here).

    A version written by someone else at the same time makes the commit fail (VersionConflict)
    and the whole transaction roll back; the batch is then tried again, reading the versions
    anew, so a concurrent writer neither loses its write nor stops the load. With an owners file, each
    resource is written for its owner by a Repository of its own, all in the batch's one transaction."""
    owners = context if isinstance(context, Owners) else Owners(context, {})
    for attempt in range(1, attempts + 1):
        outcome = LoadReport()
        try:
            _write_once(services, batch, outcome, owners)
        except VersionConflict:
            if attempt == attempts:
                raise
            continue
        report.written += outcome.written
        report.unchanged += outcome.unchanged
        report.failures.extend(outcome.failures)
        return


def _write_once(services: Services, batch: list[PreparedItem], report: LoadReport, owners: Owners) -> None:
    with unit_of_work(services, owners.default, write=True) as repo:
        prefetch_current(repo, (r for _, r, _, _ in batch))
        writers = owners.writers(repo)
        for source, resource, index, error in batch:
            what = _label(resource)
            if error is not None:
                report.failures.append(Failure(source, what, error))
                continue
            try:
                written = writers.for_(resource).upsert(resource, index)
            except FhirError as exc:  # nothing was written for this resource; carry on
                report.failures.append(Failure(source, what, str(exc)))
                continue
            if written:
                report.written += 1
            else:
                report.unchanged += 1
        audit.record_bulk(repo, "ketnoi load")  # one AuditEvent per batch, in it, last


def prefetch_current(repo: Repository, resources: Iterable[Any]) -> None:
    """Lock and read, in one query, the current versions of the resources that carry a type and id."""
    repo.prefetch(
        [
            (r["resourceType"], r["id"])
            for r in resources
            if isinstance(r, dict) and isinstance(r.get("resourceType"), str) and isinstance(r.get("id"), str)
        ]
    )


def _label(resource: Any) -> str:
    if isinstance(resource, dict):
        return f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"
    return "?"
