"""``$reindex``: rebuild the search index rows of the current versions of some or all resource
types, as a resumable background job (``ketnoi.jobs``), after custom SearchParameters changed.

- ``POST [base]/$reindex`` (all types, or the ``type`` parameters of a Parameters body) and
  ``POST [base]/[Type]/$reindex`` answer ``202 Accepted`` with ``Content-Location`` naming the
  status endpoint, following the asynchronous request pattern (http://hl7.org/fhir/R4/async.html).
- ``GET [base]/$reindex-status?job=N``: ``202`` (with ``X-Progress``) while queued or running,
  ``200`` when done, ``500`` with an OperationOutcome when failed; the body is a Parameters
  (state, counts, cursor, errors). ``DELETE`` on it cancels the job; the status is then 404.
- ``ketnoi reindex`` runs the same job in the foreground (``run_foreground``), resuming an
  unfinished job of the same scope.

Each step rewrites the index rows of ``batch_size`` resources, in (type, id) order, and saves the
last (type, id) done in the same transaction, so the job resumes exactly after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import FhirError, Issue, bad_request, not_found, operation_outcome
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.search_parameters import SearchParameterRegistry
from ketnoi.interactions.services import Services
from ketnoi.jobs import Job, JobRunner, JobStep
from ketnoi.search.index import IndexRows
from ketnoi.store.base import Session, StoredVersion

KIND = "reindex"
BATCH_SIZE = 500
MAX_ISSUES = 50  # per-resource errors kept in the job's progress


def runner_of(services: Services) -> JobRunner:
    runner = services.extras.get("jobs")
    if not isinstance(runner, JobRunner):
        raise FhirError.of(
            501, "not-supported", "Background jobs are not enabled on this server", "Máy chủ chưa bật tác vụ nền"
        )
    return runner


def scope(types: Sequence[str] | None) -> dict[str, Any]:
    """A job's params: the sorted resource types, or None for all."""
    return {"types": sorted(set(types)) if types else None}


def reindex_step(services: Services, batch_size: int = BATCH_SIZE) -> JobStep:
    """The job step: the next ``batch_size`` current resources, in (type, id) order."""

    def step(session: Session, job: Job) -> bool:
        repo = Repository(services, session, RequestContext.of_job(job.owner))
        progress = job.progress
        if "started" not in progress:
            # Start from what the database says is active (a node may have missed a change).
            registry = services.extras.get("search_parameters")
            if isinstance(registry, SearchParameterRegistry):
                registry.load(session)
            progress.update(started=time.time(), processed=0, skipped=0, failed=0, after=None, issues=[])
        cursor = progress.get("after")
        page = repo.current_page(job.params.get("types"), tuple(cursor) if cursor else None, batch_size)
        extractor = services.extractor
        extracted: list[tuple[StoredVersion, IndexRows]] = []
        for stored in page:
            try:
                extracted.append((stored, extractor.extract(res.loads(stored.content or b"{}"))))
            except Exception as exc:  # a stored resource that cannot be read or extracted: report, go on
                progress["failed"] += 1
                if len(progress["issues"]) < MAX_ISSUES:
                    progress["issues"].append(f"{stored.resource_type}/{stored.id}: {type(exc).__name__}: {exc}")
        # The page's index rows in a few statements (a delete and an insert per index table), not ~17
        # per resource: a million Patients took two hours one by one.
        replaced = repo.replace_indexes(extracted)
        progress["processed"] += sum(replaced)
        progress["skipped"] += len(replaced) - sum(replaced)  # changed meanwhile: indexed when written
        if page:
            progress["after"] = [page[-1].resource_type, page[-1].id]
        done = len(page) < batch_size
        if done:
            progress["finished"] = time.time()
        return done

    return step


def install(services: Services, runner: JobRunner, batch_size: int = BATCH_SIZE) -> None:
    runner.register(KIND, reindex_step(services, batch_size))


def run_foreground(
    services: Services,
    types: Sequence[str] | None,
    *,
    batch_size: int = BATCH_SIZE,
    on_start: Callable[[Job, bool], None] | None = None,
    on_progress: Callable[[Job], None] | None = None,
    poll_s: float = 2.0,
) -> Job:
    """Run (or resume) the reindex job of this scope in the calling thread; wait while another
    process holds it. ``on_start(job, resumed)`` is told which job it is. Returns the finished job."""
    runner = runner_of(services)
    install(services, runner, batch_size)
    params = scope(types)
    unfinished = runner.find_unfinished(KIND, params)
    job = unfinished or runner.submit(KIND, params, owner=RequestContext.operator("reindex").to_json())
    if on_start is not None:
        on_start(job, unfinished is not None)
    while True:
        ran = runner.run(job.id, on_progress=on_progress)
        current = ran if ran is not None and ran.finished else runner.get(job.id)
        if current is None or current.finished:
            return current or job
        if ran is None and on_progress is not None:
            on_progress(current)  # held by another runner (a server): show its progress
        time.sleep(poll_s if ran is None else 0)


# ---- HTTP ----------------------------------------------------------------------------------------
def _types_of(request: FhirRequest, rtype: str | None) -> list[str] | None:
    if rtype is not None:
        return [rtype]
    types: list[str] = []
    body = request.body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for param in body.get("parameter", []):
            if isinstance(param, dict) and param.get("name") == "type":
                value = param.get("valueCode", param.get("valueString"))
                if not isinstance(value, str) or value not in resource_types():
                    raise bad_request(
                        f"$reindex: unknown resource type {value!r} in parameter 'type'",
                        f"$reindex: loại tài nguyên {value!r} trong tham số 'type' không tồn tại",
                    )
                types.append(value)
    elif body is not None:
        raise bad_request(
            "$reindex takes a Parameters body (optionally with 'type' parameters)",
            "$reindex nhận nội dung Parameters (có thể có tham số 'type')",
        )
    return types or None


def status_url(base_url: str, job_id: int) -> str:
    return f"{base_url}/$reindex-status?job={quote(str(job_id))}"


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    types = _types_of(request, rtype)
    runner = runner_of(repo.services)
    runner.start()
    job = runner.submit(KIND, scope(types), owner=repo.context.to_json())
    what = ", ".join(types) if types else "all types"
    outcome = operation_outcome(
        [
            Issue(
                "information",
                "informational",
                f"Reindex job {job.id} queued ({what}); poll the Content-Location for its status",
                f"Đã xếp hàng tác vụ lập lại chỉ mục {job.id} ({what}); xem trạng thái tại Content-Location",
            )
        ]
    )
    return FhirResponse(202, resource=outcome, headers={"Content-Location": status_url(request.base_url, job.id)})


def _job_id(request: FhirRequest) -> int:
    value = request.param("job")
    if value is None or not value.isdigit():
        raise bad_request(
            "$reindex-status needs the job number: ?job=N", "$reindex-status cần số tác vụ: ?job=N", code="required"
        )
    return int(value)


def _gone(job_id: int) -> FhirError:
    return not_found(f"Reindex job {job_id} not found", f"Không tìm thấy tác vụ lập lại chỉ mục {job_id}")


def handle_status(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    job_id = _job_id(request)
    runner = runner_of(repo.services)
    if request.method == "DELETE":
        job = runner.cancel(job_id)
        if job is None or job.kind != KIND:
            raise _gone(job_id)
        return FhirResponse(202, resource=status_parameters(job))
    record = repo.job(job_id)
    if record is None or record.kind != KIND or record.state == "cancelled":
        raise _gone(job_id)
    job = Job.of(record)
    body = status_parameters(job)
    if job.state == "failed":
        raise FhirError.of(
            500,
            "exception",
            f"Reindex job {job.id} failed: {job.error}",
            f"Tác vụ lập lại chỉ mục {job.id} thất bại: {job.error}",
        )
    if job.state == "done":
        return FhirResponse(200, resource=body)
    progress = f"{job.state}: {job.progress.get('processed', 0)} resources reindexed"
    if job.progress.get("after"):
        progress += " (at {}/{})".format(*job.progress["after"])
    return FhirResponse(202, resource=body, headers={"X-Progress": progress})


def status_parameters(job: Job) -> dict[str, Any]:
    """The job as a Parameters resource."""
    p = job.progress
    params: list[dict[str, Any]] = [
        {"name": "job", "valueString": str(job.id)},
        {"name": "state", "valueCode": job.state},
    ]
    params += [{"name": "type", "valueCode": t} for t in job.params.get("types") or ()]
    for name in ("processed", "skipped", "failed"):
        params.append({"name": name, "valueInteger": int(p.get(name, 0))})
    if p.get("after"):
        params.append({"name": "cursor", "valueString": "{}/{}".format(*p["after"])})
    params.append({"name": "created", "valueInstant": res.instant(job.created)})
    params.append({"name": "updated", "valueInstant": res.instant(job.updated)})
    if job.error:
        params.append({"name": "error", "valueString": job.error})
    if p.get("issues"):
        issues = [Issue("error", "processing", text, text) for text in p["issues"]]
        params.append({"name": "outcome", "resource": operation_outcome(issues)})
    return {"resourceType": "Parameters", "parameter": params}


OPERATION = Operation(
    name="reindex",
    handler=handle,
    levels=frozenset({"system", "type"}),
    methods=frozenset({"POST"}),
    write=False,  # the job is queued in its own transaction (see JobRunner.submit)
    definition={"name": "reindex", "definition": "urn:ketnoi:operation:reindex"},
)

STATUS_OPERATION = Operation(
    name="reindex-status",
    handler=handle_status,
    levels=frozenset({"system"}),
    methods=frozenset({"GET", "DELETE"}),
    write=False,
    definition={"name": "reindex-status", "definition": "urn:ketnoi:operation:reindex-status"},
)
