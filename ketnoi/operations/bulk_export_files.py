"""``$export-status`` and ``$export-file``: an export job's progress, manifest, cancellation and files
(ADR 0024), for the caller who started it only (``requiresAccessToken``).

A file is streamed from disk in chunks (never read whole into memory), gzip-compressed on the way
when the client sends ``Accept-Encoding: gzip``.
"""

from __future__ import annotations

import shutil
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import Issue, not_found, operation_outcome
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.services import Services
from ketnoi.jobs import Job
from ketnoi.operations.bulk_export_job import ERRORS, KIND, export_dir, part_name, parts
from ketnoi.operations.job_status import cancelled, failed, job_number
from ketnoi.operations.reindex import runner_of

WHAT = ("Export job", "tác vụ xuất")  # in answers about a job
NDJSON = "application/fhir+ndjson"
CHUNK = 64 * 1024  # bytes read (and sent) at a time


def _job(repo: Repository, request: FhirRequest) -> Job:
    """The caller's own export job named by ``?job=N`` (another caller's is 404, like a missing one:
    the files are the kick-off caller's, ``requiresAccessToken``)."""
    value = job_number(request)
    record = repo.job(value)
    job = Job.of(record) if record is not None and record.kind == KIND and record.state != "cancelled" else None
    if job is not None and not _same_caller(RequestContext.of_job(job.owner), repo.context):
        job = None
    if job is not None and _expired(repo.services, job):
        runner_of(repo.services).cancel(job.id, finished_too=True)
        shutil.rmtree(export_dir(repo.services, job.id), ignore_errors=True)
        job = None
    if job is None:
        raise not_found(f"Export job {value} not found", f"Không tìm thấy tác vụ xuất {value}")
    return job


def _expired(services: Services, job: Job) -> bool:
    """A finished export older than ``export_keep_hours``: its files are gone when next asked for."""
    finished = job.progress.get("finished")
    keep_s = services.settings.export_keep_hours * 3600
    return job.state == "done" and isinstance(finished, (int, float)) and time.time() - finished > keep_s


def _same_caller(owner: RequestContext, caller: RequestContext) -> bool:
    if caller.scopes is None and owner.scopes is None:
        return True  # auth off, or an operator: one server, one caller
    return (owner.user, owner.client_id, owner.organization) == (caller.user, caller.client_id, caller.organization)


def handle_status(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    job = _job(repo, request)
    if request.method == "DELETE":
        runner_of(repo.services).cancel(job.id, finished_too=True)  # a finished export's files go too
        shutil.rmtree(export_dir(repo.services, job.id), ignore_errors=True)
        return cancelled(job, WHAT)
    if job.state == "failed":
        raise failed(job, WHAT)
    if job.state != "done":
        types = job.params.get("types", [])
        done = sum(f["count"] for f in job.progress.get("files", {}).values())
        step = min(job.progress.get("index", 0) + 1, len(types))
        progress = f"{job.state}: {done} resources, type {step} of {len(types)}"
        # A body as well as the headers: a client reads a JSON Content-Type as JSON (bdt does).
        note = Issue(
            "information", "informational", f"Export job {job.id} {progress}", f"Tác vụ xuất {job.id} {progress}"
        )
        return FhirResponse(
            202, resource=operation_outcome([note]), headers={"X-Progress": progress, "Retry-After": "2"}
        )
    return FhirResponse(200, resource=_manifest(request, job), headers={"Expires": _expires(repo.services, job)})


def _expires(services: Services, job: Job) -> str:
    """When the files go (HTTP date): the Bulk Data status answer SHOULD say so."""
    finished = float(job.progress.get("finished") or job.created)
    return res.http_date(finished + services.settings.export_keep_hours * 3600)


def _manifest(request: FhirRequest, job: Job) -> dict[str, Any]:
    files = job.progress.get("files", {})
    return {
        # The kick-off, or just before a write in flight then (ketnoi.operations.bulk_export_scan).
        "transactionTime": res.instant(float(job.progress.get("transaction_time") or job.created)),
        "request": job.params.get("request"),
        "requiresAccessToken": True,
        "output": [
            {
                "type": t,
                "url": f"{request.base_url}/$export-file?job={job.id}&file={quote(part_name(t, n))}",
                "count": count,
            }
            for t, f in files.items()
            for n, (count, _) in enumerate(parts(f), 1)
        ],
        "error": _errors(request, job),
    }


def _errors(request: FhirRequest, job: Job) -> list[dict[str, Any]]:
    """The error file's manifest item, when the export has messages."""
    count = job.progress.get("errors", {}).get("count", 0)
    url = f"{request.base_url}/$export-file?job={job.id}&file={ERRORS}"
    return [{"type": "OperationOutcome", "url": url, "count": count}] if count else []


def handle_file(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    job = _job(repo, request)
    name = request.param("file") or ""
    rtype, length = _file(job, name)
    if name != ERRORS:  # the error file holds the export's messages, no data
        repo.access.require(rtype, "s")  # the token downloading may have narrower scopes than the kick-off's
    path = export_dir(repo.services, job.id) / name
    try:
        handle = path.open("rb")  # opened now: a cancel or expiry deleting it mid-download does not cut it
    except OSError:
        raise not_found(f"Export file {name[:80]!r} is gone", f"Tệp xuất {name[:80]!r} không còn") from None
    headers = {"Content-Type": NDJSON, "Vary": "Accept-Encoding"}
    packed = accepts_gzip(request.header("accept-encoding"))
    if packed:
        headers["Content-Encoding"] = "gzip"
    else:
        headers["Content-Length"] = str(length)
    # The audit trail names every patient whose data the file carries: its lines, read one at a time.
    return FhirResponse(200, headers=headers, stream=chunks(handle, length, packed), seen=file_lines(path, length))


def _file(job: Job, name: str) -> tuple[str, int]:
    """The type of a finished job's file ``name`` and its length as the job committed it (the file
    holds exactly that once done); 404 for a name the manifest does not list."""
    errors = job.progress.get("errors")
    if name == ERRORS and errors and errors["count"] and job.state == "done":
        return "OperationOutcome", int(errors["bytes"])
    rtype = name.removesuffix(".ndjson").partition("-")[0]
    record = job.progress.get("files", {}).get(rtype) if job.state == "done" else None
    held = parts(record) if record is not None else []
    found = [length for n, (_, length) in enumerate(held, 1) if part_name(rtype, n) == name]
    if not found:
        raise not_found(f"Export file {name[:80]!r} not found", f"Không tìm thấy tệp xuất {name[:80]!r}")
    return rtype, found[0]


def accepts_gzip(header: str | None) -> bool:
    """Whether ``Accept-Encoding`` names gzip (or x-gzip) with a quality above 0 (RFC 9110 §12.5.3)."""
    for part in (header or "").split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        if coding.lower() not in ("gzip", "x-gzip"):
            continue
        q = next((p.partition("=")[2] for p in params if p.lower().startswith("q=")), "1")
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


def chunks(handle: IO[bytes], length: int, packed: bool) -> Iterator[bytes]:
    """The first ``length`` bytes of ``handle`` in chunks of :data:`CHUNK`, gzip-compressed when
    ``packed``; closes ``handle`` at the end (or when the consumer closes the generator)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if packed else None  # gzip framing
    try:
        left = length
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            out = packer.compress(chunk) if packer is not None else chunk
            if out:
                yield out
        if packer is not None:
            yield packer.flush()
    finally:
        handle.close()


def file_lines(path: Path, length: int) -> Iterator[bytes]:
    """The lines of the first ``length`` bytes of ``path``, one at a time."""
    with path.open("rb") as lines:
        left = length
        for line in lines:
            if left <= 0:
                break
            left -= len(line)
            if line.strip():
                yield line
