"""``ketnoi load``: NDJSON files (one resource per line) and Bundle files into a database.

Every resource takes the same path as a REST write (``Repository``: validation, versioning,
indexing, hooks), but many share one database transaction, which is where the speed comes from.
NDJSON resources keep their ids (update-as-create), and a resource identical to the stored one is
skipped, so re-running a load after a crash resumes without duplicates or spurious versions.
transaction and batch Bundles go through the Bundle processor exactly as ``POST /fhir``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ketnoi.bulk.prepare import PreparedItem, prepared_chunks
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.search.extract import Extractor
from ketnoi.sql import SqlQuery
from ketnoi.store.base import Session


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
    batch_size: int = 500,
    progress: Progress | None = None,
    workers: int = 0,
) -> LoadReport:
    """Load files and folders. ``workers`` > 0 prepares NDJSON lines (parse, validate, extract) in
    that many worker processes while this one writes."""
    report = LoadReport()
    started = time.perf_counter()
    # Versions written from here on are this load's (for the reference check); lastUpdated is
    # kept to the millisecond, so round down to it.
    since = math.floor(time.time() * 1000) / 1000
    files = files_in(paths)
    lines = (line for path in files if path.suffix == ".ndjson" for line in _ndjson(path))
    if workers > 0 and isinstance(services.extractor, Extractor):
        for prepared in prepared_chunks(services, _chunked(lines, batch_size), workers):
            write_batch(services, prepared, report)
            if progress:
                progress(report)
    else:
        items = ((source, parse_line(raw)) for source, raw in lines)
        load_resources(services, items, report, batch_size=batch_size, progress=progress)
    for path in files:
        if path.suffix != ".ndjson":
            _load_json_file(services, path, report, batch_size, progress)
        report.seconds = time.perf_counter() - started
    if report.written:
        with services.store.session(write=True) as session:
            session.analyze()  # the planner's statistics, before anyone searches the new data
    report.dangling = dangling_references(services, since)
    report.seconds = time.perf_counter() - started
    return report


_DANGLING = SqlQuery(
    "SELECT DISTINCT x.resource_type, x.resource_id, x.target_type, x.target_id FROM idx_reference x "
    "JOIN resource r ON r.resource_type = x.resource_type AND r.id = x.resource_id AND r.last_updated >= ? "
    "LEFT JOIN resource t ON t.resource_type = x.target_type AND t.id = x.target_id AND t.deleted = ? "
    "WHERE x.target_id IS NOT NULL AND x.url IS NULL AND t.id IS NULL "
    "ORDER BY x.resource_type, x.resource_id, x.target_type, x.target_id LIMIT ?",
    (),
)


def dangling_references(services: Services, since: float, limit: int = 10_000) -> list[Failure]:
    """References from resources written since ``since`` to local resources that do not exist.

    Checked once after the whole load, not per resource: NDJSON files arrive in any type order,
    so an Observation may legitimately come before its Patient."""
    query = SqlQuery(_DANGLING.sql, (since, False, limit))
    with services.store.session(write=False) as session:
        rows = session.query(query)
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


def _chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parse_line(data: bytes) -> Any:
    """The parsed JSON, or the reason it is not JSON (a str, reported as the failure)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {exc}"


def _load_json_file(
    services: Services, path: Path, report: LoadReport, batch_size: int, progress: Progress | None
) -> None:
    source, value = path.name, parse_line(path.read_bytes())
    is_bundle = isinstance(value, dict) and value.get("resourceType") == "Bundle"
    if is_bundle and value.get("type") in ("transaction", "batch"):
        _load_bundle(services, source, value, report)
    elif is_bundle:
        entries = [(f"{source}#entry{i}", e.get("resource")) for i, e in enumerate(value.get("entry", []))]
        load_resources(services, entries, report, batch_size=batch_size, progress=progress)
    else:
        load_resources(services, [(source, value)], report, batch_size=batch_size, progress=progress)


def _load_bundle(services: Services, source: str, bundle: dict[str, Any], report: LoadReport) -> None:
    response = handle(services, FhirRequest("POST", "", body=bundle, headers={"prefer": "return=minimal"}))
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
    batch_size: int = 500,
    progress: Progress | None = None,
) -> LoadReport:
    """Write parsed resources (which must carry ids) in transactions of ``batch_size``; an item
    that is a str is the reason its line could not be parsed."""
    prepared: Iterator[PreparedItem] = ((s, r, None, r if isinstance(r, str) else None) for s, r in items)
    for batch in _chunked(prepared, batch_size):
        write_batch(services, batch, report)
        if progress:
            progress(report)
    return report


def write_batch(services: Services, batch: list[PreparedItem], report: LoadReport) -> None:
    """One transaction: refused items are reported, the others written (with their prepared
    index rows when a worker made them, else validated and indexed here)."""
    with services.store.session(write=True) as session:
        repo = Repository(services, session)
        prefetch_current(session, (r for _, r, _, _ in batch))
        for source, resource, index, error in batch:
            what = _label(resource)
            if error is not None:
                report.failures.append(Failure(source, what, error))
                continue
            try:
                written = repo.upsert(resource, index)
            except FhirError as exc:  # nothing was written for this resource; carry on
                report.failures.append(Failure(source, what, str(exc)))
                continue
            if written:
                report.written += 1
            else:
                report.unchanged += 1


def prefetch_current(session: Session, resources: Iterable[Any]) -> None:
    """Lock and read, in one query, the current versions of the resources that carry a type and id."""
    session.prefetch(
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
