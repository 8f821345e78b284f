"""``$import``: Bulk Data import of NDJSON files as a resumable background job.

Follows the FHIR Bulk Data import proposal and the asynchronous request pattern
(http://hl7.org/fhir/R4/async.html):

- ``POST [base]/$import`` with a Parameters body: ``inputFormat`` (application/fhir+ndjson) and
  one ``input`` per file, with parts ``type`` (resource type) and ``url``. Answers ``202 Accepted``
  with ``Content-Location`` naming the status endpoint.
- ``GET [base]/$import-status?job=N``: ``202`` with ``X-Progress`` while it runs; ``200`` with the
  completion manifest (``transactionTime``, ``request``, ``output`` per input with counts, and
  ``error`` pointing to ``$import-errors``) when done. ``DELETE`` cancels.
- ``GET [base]/$import-errors?job=N``: a Bundle of OperationOutcomes, one per refused resource.

Inputs are ``file:`` URLs below the configured import folder (``KETNOI_IMPORT_DIR``); anything
else is refused, so an API client cannot make the server read arbitrary files. Every resource
goes through ``Repository.upsert`` like ``ketnoi load``: the same validation, indexing, hooks and
no-change skipping. A step handles ``batch_size`` lines and saves the byte offset it reached in
the same transaction, so a crash or restart resumes exactly there without duplicates.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ketnoi.bulk.load import dangling_references, prefetch_current
from ketnoi.bulk.prepare import parse_line
from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import FhirError, Issue, bad_request, not_found, operation_outcome
from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.services import Services
from ketnoi.jobs import Job, JobRunner, JobStep
from ketnoi.operations.job_status import cancelled, failed, job_number
from ketnoi.operations.reindex import runner_of
from ketnoi.store.base import Session

WHAT = ("Import job", "tác vụ nhập")  # in answers about a job
KIND = "import"
BATCH_SIZE = 500
MAX_ERRORS = 1000  # refused resources kept in the job (the count goes on)
NDJSON = ("application/fhir+ndjson", "application/ndjson", "ndjson")


# ---- kick-off --------------------------------------------------------------------------------------
def _parts(param: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in param.get("part", []):
        if isinstance(part, dict) and isinstance(part.get("name"), str):
            out[part["name"]] = next((v for k, v in part.items() if k.startswith("value")), None)
    return out


def _inputs(body: Any, import_dir: Path) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise bad_request(
            "$import takes a Parameters body with 'input' parameters (type, url)",
            "$import nhận nội dung Parameters với các tham số 'input' (type, url)",
        )
    inputs: list[dict[str, Any]] = []
    for param in body.get("parameter", []):
        if not isinstance(param, dict):
            continue
        name = param.get("name")
        if name == "inputFormat" and param.get("valueCode", param.get("valueString")) not in NDJSON:
            raise FhirError.of(
                415,
                "not-supported",
                "$import reads application/fhir+ndjson only",
                "$import chỉ đọc application/fhir+ndjson",
            )
        if name == "input":
            parts = _parts(param)
            rtype, url = parts.get("type"), parts.get("url")
            if not isinstance(rtype, str) or rtype not in resource_types():
                raise bad_request(
                    f"$import input {len(inputs)}: unknown resource type {rtype!r}",
                    f"$import input {len(inputs)}: loại tài nguyên {rtype!r} không tồn tại",
                )
            inputs.append(
                {
                    "type": rtype,
                    "url": url,
                    "path": str(_local_path(url, import_dir)),
                    "offset": 0,
                    "line": 0,
                    "count": 0,
                    "errors": 0,
                }
            )
    if not inputs:
        raise bad_request(
            "$import needs at least one 'input' (type, url)",
            "$import cần ít nhất một 'input' (type, url)",
            code="required",
        )
    return inputs


def _local_path(url: Any, import_dir: Path) -> Path:
    """The file a ``file:`` URL names (absolute, or relative to the import folder), which must
    exist inside the import folder: 403 outside it (``..`` and symlinks resolved first), 404 missing."""
    if not isinstance(url, str) or urlsplit(url).scheme != "file":
        raise bad_request(
            f"$import input url {str(url)[:120]!r} must be a file: URL below the import folder",
            f"url {str(url)[:120]!r} của $import phải là URL file: trong thư mục nhập",
        )
    root = import_dir.resolve()
    raw = Path(unquote(urlsplit(url).path))
    path = (raw if raw.is_absolute() else root / raw).resolve()
    if root not in path.parents:
        raise FhirError.of(
            403,
            "forbidden",
            f"$import reads only files below the import folder {root}",
            f"$import chỉ đọc tệp trong thư mục nhập {root}",
        )
    if not path.is_file():
        raise not_found(f"$import input file not found: {url[:120]}", f"Không tìm thấy tệp nhập: {url[:120]}")
    return path


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    inputs = _inputs(request.body, Path(repo.services.settings.import_dir))
    runner = runner_of(repo.services)
    runner.start()
    params = {
        "request": f"{request.base_url}/$import",
        "inputs": [{"type": i["type"], "url": i["url"]} for i in inputs],
    }
    progress = {"inputs": inputs, "current": 0, "errors": [], "since": None}
    job = runner.submit(KIND, params, progress, owner=repo.context.to_json())
    outcome = operation_outcome(
        [
            Issue(
                "information",
                "informational",
                f"Import job {job.id} accepted ({len(inputs)} files); poll the Content-Location for its status",
                f"Đã nhận tác vụ nhập {job.id} ({len(inputs)} tệp); xem trạng thái tại Content-Location",
            )
        ]
    )
    return FhirResponse(202, resource=outcome, headers={"Content-Location": _status_url(request.base_url, job.id)})


def _status_url(base_url: str, job_id: int) -> str:
    return f"{base_url}/$import-status?job={quote(str(job_id))}"


# ---- the job ---------------------------------------------------------------------------------------
def import_step(services: Services, batch_size: int = BATCH_SIZE) -> JobStep:
    """One step: up to ``batch_size`` lines of the current input, from the saved byte offset."""

    def step(session: Session, job: Job) -> bool:
        progress = job.progress
        if progress.get("since") is None:
            progress["since"] = time.time() - 0.001
        inputs: list[dict[str, Any]] = progress["inputs"]
        if progress["current"] >= len(inputs):
            return _finish(Repository(services, session, RequestContext.of_job(job.owner)), progress)
        current = inputs[progress["current"]]
        lines, offset, consumed, eof = _read_lines(Path(current["path"]), current["offset"], batch_size)
        repo = Repository(services, session, RequestContext.of_job(job.owner))
        parsed = [(current["line"] + n, parse_line(line)) for n, line in lines]
        prefetch_current(repo, (r for _, r in parsed))
        for number, resource in parsed:
            _import_one(repo, current, number, resource, progress)
        audit.record_bulk(repo, "$import", job.id)  # one AuditEvent per step, in its transaction, last
        current["offset"] = offset
        current["line"] += consumed
        if eof:
            progress["current"] += 1
        return False  # the last step (_finish) reports completion

    return step


def _read_lines(path: Path, offset: int, limit: int) -> tuple[list[tuple[int, bytes]], int, int, bool]:
    """Up to ``limit`` lines from ``offset``: (non-blank lines with their 1-based number relative to
    the offset, the offset after them, how many lines were consumed, whether the file ended)."""
    lines: list[tuple[int, bytes]] = []
    consumed = 0
    with path.open("rb") as handle_:
        handle_.seek(offset)
        while consumed < limit:
            line = handle_.readline()
            if not line:
                return lines, handle_.tell(), consumed, True
            consumed += 1
            if line.strip():
                lines.append((consumed, line))
        end = handle_.tell()
        return lines, end, consumed, handle_.read(1) == b""


def _import_one(
    repo: Repository, current: dict[str, Any], number: int, resource: Any, progress: dict[str, Any]
) -> None:
    where = f"{current['url']} line {number}"
    try:
        if isinstance(resource, str):
            raise bad_request(resource, resource, code="structure")
        if isinstance(resource, dict) and resource.get("resourceType") != current["type"]:
            raise bad_request(
                f"expected a {current['type']}, found {resource.get('resourceType')!r}",
                f"cần {current['type']}, gặp {resource.get('resourceType')!r}",
            )
        repo.upsert(resource)
        current["count"] += 1
    except FhirError as exc:  # nothing was written for this resource
        current["errors"] += 1
        if len(progress["errors"]) < MAX_ERRORS:
            progress["errors"].append({"where": where, "status": exc.status, "outcome": exc.outcome()})


def _finish(repo: Repository, progress: dict[str, Any]) -> bool:
    """Planner statistics and the referential check over what this job wrote, then done."""
    repo.analyze()
    dangling = dangling_references(repo.services, progress["since"], repo.context, limit=MAX_ERRORS)
    progress["dangling"] = [f"{d.what} {d.message}" for d in dangling]
    progress["finished"] = time.time()
    return True


def install(services: Services, runner: JobRunner, batch_size: int = BATCH_SIZE) -> None:
    runner.register(KIND, import_step(services, batch_size))


# ---- status ----------------------------------------------------------------------------------------
def _job(repo: Repository, request: FhirRequest) -> Job:
    value = job_number(request)
    record = repo.job(value)
    job = Job.of(record) if record is not None and record.kind == KIND and record.state != "cancelled" else None
    # A facility's backend sees its own organization's imports only (job numbers are sequential).
    if job is not None and repo.access.level != "open":
        job = job if RequestContext.of_job(job.owner).organization == repo.context.organization else None
    if job is None:
        raise not_found(f"Import job {value} not found", f"Không tìm thấy tác vụ nhập {value}")
    return job


def handle_status(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    job = _job(repo, request)
    if request.method == "DELETE":
        runner_of(repo.services).cancel(job.id)
        return cancelled(job, WHAT)
    if job.state == "failed":
        raise failed(job, WHAT)
    inputs = job.progress.get("inputs", [])
    if job.state != "done":
        done = sum(i["count"] + i["errors"] for i in inputs)
        return FhirResponse(
            202,
            headers={
                "X-Progress": f"{job.state}: {done} resources read, "
                f"file {min(job.progress.get('current', 0) + 1, len(inputs))} of {len(inputs)}"
            },
        )
    return FhirResponse(200, resource=_manifest(request, job))


def _manifest(request: FhirRequest, job: Job) -> dict[str, Any]:
    inputs = job.progress.get("inputs", [])
    manifest: dict[str, Any] = {
        "transactionTime": res.instant(job.created),
        "request": job.params.get("request"),
        "output": [{"type": i["type"], "inputUrl": i["url"], "count": i["count"]} for i in inputs],
        "error": [],
    }
    refused = sum(i["errors"] for i in inputs)
    if refused or job.progress.get("dangling"):
        manifest["error"].append(
            {"type": "OperationOutcome", "count": refused, "url": f"{request.base_url}/$import-errors?job={job.id}"}
        )
    return manifest


def handle_errors(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    job = _job(repo, request)
    entries = [{"resource": _located(e["outcome"], e["where"])} for e in job.progress.get("errors", [])]
    for text in job.progress.get("dangling", []):
        entries.append(
            {
                "resource": operation_outcome(
                    [Issue("warning", "not-found", f"Reference check: {text}", f"Kiểm tra tham chiếu: {text}")]
                )
            }
        )
    return FhirResponse(200, resource={"resourceType": "Bundle", "type": "collection", "entry": entries})


def _located(outcome: dict[str, Any], where: str) -> dict[str, Any]:
    for issue in outcome.get("issue", []):
        issue["diagnostics"] = f"{where}: {issue.get('diagnostics', '')}"
    return outcome


OPERATIONS = [
    Operation(
        name="import",
        handler=handle,
        levels=frozenset({"system"}),
        methods=frozenset({"POST"}),
        write=False,
        access="own-data",  # a facility's backend may import what its organization will own
        definition={"name": "import", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import"},
    ),
    Operation(
        name="import-status",
        handler=handle_status,
        levels=frozenset({"system"}),
        methods=frozenset({"GET", "DELETE"}),
        write=False,
        access="own-data",
        definition={"name": "import-status", "definition": "urn:ketnoi:operation:import-status"},
    ),
    Operation(
        name="import-errors",
        handler=handle_errors,
        levels=frozenset({"system"}),
        methods=frozenset({"GET"}),
        write=False,
        access="own-data",
        definition={"name": "import-errors", "definition": "urn:ketnoi:operation:import-errors"},
    ),
]
