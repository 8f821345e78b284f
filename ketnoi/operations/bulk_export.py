"""``$export``: FHIR Bulk Data Access export as a resumable background job (issue 14, ADR 0024).

Follows Bulk Data Access 2.0 (https://hl7.org/fhir/uv/bulkdata/export.html) and the asynchronous
request pattern:

- Kick-off: ``GET|POST [base]/$export`` (every type), ``[base]/Patient/$export`` (the Patient
  compartment of every patient), ``[base]/Group/[id]/$export`` (the compartments of the Group's
  Patient members), with ``Prefer: respond-async``; parameters ``_outputFormat`` (NDJSON),
  ``_type``, ``_since``, ``_elements`` and ``_typeFilter`` (one search per type). Answers ``202`` with
  ``Content-Location`` naming the status endpoint.
- Status: ``GET [base]/$export-status?job=N``: ``202`` with ``X-Progress`` and ``Retry-After``
  while it runs; ``200`` with the manifest when done; ``DELETE`` cancels and removes its files.
- Files: ``GET [base]/$export-file?job=N&file=Type.ndjson`` (``application/fhir+ndjson``), only for
  the caller who started the job (same user or client, same organization): ``requiresAccessToken``.

The job runs with its owner's rights: every page is a search through the Repository, so what the
access policy hides (another facility's patients, a Consent's categories) is filtered in the
database query as for any search, and a type the owner's scopes do not allow is refused at
kick-off. A step writes one page (:data:`PAGE` resources) to the type's file and saves the file's
length and the page's last key in the same transaction; a step that dies is redone after cutting
the file back to the saved length, so every resource is in the output exactly once however the job
is interrupted. Memory holds one page.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import FhirError, Issue, bad_request, not_found, operation_outcome
from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.elements import subset
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.policy import REGISTRY_TYPES, compartment_params
from ketnoi.interactions.reach import aggregates_only
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.search import parse_type_query
from ketnoi.interactions.services import Services
from ketnoi.jobs import Job, JobRunner, JobStep
from ketnoi.operations.job_status import cancelled, failed, job_number
from ketnoi.operations.reindex import runner_of
from ketnoi.search.compile import Position
from ketnoi.search.normalize import date_range
from ketnoi.search.query import Compartment
from ketnoi.store.base import Session

WHAT = ("Export job", "tác vụ xuất")  # in answers about a job
KIND = "export"
PAGE = 1000
NDJSON = "application/fhir+ndjson"
FORMATS = (NDJSON, "application/ndjson", "ndjson")
NOT_YET = ("patient", "includeAssociatedData")  # Bulk Data parameters not supported yet


# ---- kick-off --------------------------------------------------------------------------------------
def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    if request.prefer.get("respond-async") is None:
        raise bad_request(
            "Bulk export is asynchronous: send the header Prefer: respond-async",
            "Xuất dữ liệu hàng loạt chạy nền: hãy gửi tiêu đề Prefer: respond-async",
            code="required",
        )
    if (rtype, id is None) not in ((None, True), ("Patient", True), ("Group", False)):
        raise bad_request(
            "Bulk export is at [base]/$export, [base]/Patient/$export or [base]/Group/[id]/$export",
            "Xuất hàng loạt dùng [base]/$export, [base]/Patient/$export hoặc [base]/Group/[id]/$export",
        )
    if repo.context.patient is not None or "patient" in repo.context.roles:
        raise FhirError.of(
            403,
            "forbidden",
            "Bulk export is for systems and staff; a patient downloads their record with Patient/[id]/$everything",
            "Xuất hàng loạt dành cho hệ thống và cán bộ; người bệnh tải hồ sơ của mình bằng Patient/[id]/$everything",
        )
    params = _parameters(request)
    level = "system" if rtype is None else ("patient" if id is None else "group")
    types = _types(repo, params.get("_type"), level)
    members = _members(repo, id) if id is not None else []
    job_params = {
        "request": _request_url(request, rtype, id),
        "level": level,
        "types": types,
        "since": _since(params.get("_since")),
        "filters": _type_filters(repo, params.get("_typeFilter"), types),
        "members": members,
        "elements": [e.strip() for e in (params.get("_elements") or "").split(",") if e.strip()],
        "group": id,
        "base_url": request.base_url,
    }
    runner = runner_of(repo.services)
    runner.start()
    job = runner.submit(KIND, job_params, {"index": 0, "after": None, "files": {}}, owner=repo.context.to_json())
    outcome = operation_outcome(
        [
            Issue(
                "information",
                "informational",
                f"Export job {job.id} accepted ({len(types)} resource types); poll the Content-Location",
                f"Đã nhận tác vụ xuất {job.id} ({len(types)} loại tài nguyên); xem trạng thái tại Content-Location",
            )
        ]
    )
    return FhirResponse(202, resource=outcome, headers={"Content-Location": _status_url(request.base_url, job.id)})


def _request_url(request: FhirRequest, rtype: str | None, id: str | None) -> str:
    path = "/".join(p for p in (rtype, id) if p)
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in request.query)
    return f"{request.base_url}/{path + '/' if path else ''}$export" + (f"?{query}" if query else "")


def _parameters(request: FhirRequest) -> dict[str, str]:
    """The kick-off's parameters (query string, or a POSTed Parameters), repeated values joined by ','."""
    pairs: list[tuple[str, str]] = list(request.query)
    body = request.body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for p in body.get("parameter") or ():
            value = next((v for k, v in p.items() if k.startswith("value")), None) if isinstance(p, dict) else None
            if isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(value, str):
                pairs.append((p["name"], value))
    found: dict[str, str] = {}
    for name, value in pairs:
        if name in NOT_YET:
            raise bad_request(
                f"The export parameter {name} is not supported yet",
                f"Tham số xuất {name} chưa được hỗ trợ",
                code="not-supported",
            )
        found[name] = f"{found[name]},{value}" if name in found else value
    output = found.get("_outputFormat")
    if output is not None and output not in FORMATS:
        raise bad_request(
            f"_outputFormat {output!r} is not supported: use {NDJSON}",
            f"_outputFormat {output!r} không được hỗ trợ: hãy dùng {NDJSON}",
            code="not-supported",
        )
    return found


def _types(repo: Repository, asked: str | None, level: str) -> list[str]:
    """The types to export: ``_type`` (each known and readable, else 400/403), or every type the caller
    may search (at Patient and Group level, those of the Patient compartment). A provincial manager
    exports the registries only, and no patient's record (ADR 0017): 403 for anything else."""
    known = resource_types()
    compartment = {t for t in known if t == "Patient" or compartment_params(t)}
    names = list(dict.fromkeys(t.strip() for t in (asked or "").split(",") if t.strip()))
    allowed = known
    if repo.access.level == "region":
        refused = "Patient" if level != "system" else next((n for n in names if n not in REGISTRY_TYPES), None)
        if refused is not None:
            raise aggregates_only(refused)
        allowed = REGISTRY_TYPES
    for name in names:
        if name not in known:
            raise bad_request(
                f"Unknown resource type '{name[:60]}' in _type",
                f"Loại tài nguyên '{name[:60]}' trong _type không tồn tại",
            )
        repo.access.require(name, "s")
    wanted = names or [t for t in sorted(allowed) if repo.access.grant(t, "s") is not None]
    return [t for t in wanted if level == "system" or t in compartment]


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        date_range(value)
    except ValueError:
        raise bad_request(
            f"_since must be a FHIR instant (e.g. 2026-01-01T00:00:00Z), not {value[:40]!r}",
            f"_since phải là thời điểm FHIR (ví dụ 2026-01-01T00:00:00Z), không phải {value[:40]!r}",
        ) from None
    return value


def _type_filters(repo: Repository, value: str | None, types: list[str]) -> dict[str, str]:
    """``_typeFilter``: ``Type?search`` per type, checked now (a filter that does not parse is a 400 at
    kick-off, not a failed job); one per type in this version."""
    found: dict[str, str] = {}
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        rtype, _, query = item.partition("?")
        if rtype not in types:
            raise bad_request(
                f"_typeFilter {item[:80]!r} names a type that is not exported",
                f"_typeFilter {item[:80]!r} nêu một loại tài nguyên không được xuất",
            )
        if rtype in found:
            raise bad_request(
                f"Only one _typeFilter per type is supported yet ({rtype})",
                f"Hiện chỉ hỗ trợ một _typeFilter cho mỗi loại ({rtype})",
                code="not-supported",
            )
        parse_type_query(repo, rtype, query, strict=True)
        found[rtype] = query
    return found


def _members(repo: Repository, group_id: str) -> list[str]:
    """The Patient members of ``Group/group_id`` (404 when the caller may not read it or it is missing)."""
    group = res.loads_object(repo.read("Group", group_id).content)
    members = []
    for member in group.get("member") or ():
        entity = member.get("entity") if isinstance(member, dict) else None
        ref = entity.get("reference") if isinstance(entity, dict) else None
        if isinstance(ref, str) and ref.startswith("Patient/") and member.get("inactive") is not True:
            members.append(ref.removeprefix("Patient/").split("/")[0])
    return list(dict.fromkeys(members))


def _status_url(base_url: str, job_id: int) -> str:
    return f"{base_url}/$export-status?job={quote(str(job_id))}"


# ---- the job ---------------------------------------------------------------------------------------
def export_dir(services: Services, job_id: int) -> Path:
    return Path(services.settings.export_dir) / str(job_id)


def export_step(services: Services, page: int = PAGE) -> JobStep:
    """One step: the next ``page`` resources of the current type, appended to its file."""

    def step(session: Session, job: Job) -> bool:
        repo = Repository(services, session, RequestContext.of_job(job.owner))
        progress, params = job.progress, job.params
        types: list[str] = params["types"]
        if progress["index"] >= len(types) or (params["level"] == "group" and not params["members"]):
            progress["finished"] = time.time()
            return True
        rtype = types[progress["index"]]
        query = _page_query(repo, params, rtype, page)
        after = progress.get("after")
        position = Position(tuple(after[2:]), after[0], after[1]) if after else None
        rows = repo.search_page(query, params["base_url"], position) if query is not None else []
        kept = rows[:page]
        record = progress["files"].setdefault(rtype, {"count": 0, "bytes": 0})
        if kept:
            lines = _lines(kept, tuple(params.get("elements") or ()))
            record["bytes"] = _append(export_dir(services, job.id) / f"{rtype}.ndjson", record["bytes"], lines)
            record["count"] += len(kept)
            audit.record_export(repo, {rtype: len(kept)}, job.id)
        if len(rows) > page:
            last = kept[-1]
            progress["after"] = [last[0], last[1], *last[3:]]
        else:
            progress["index"] += 1
            progress["after"] = None
        done = bool(progress["index"] >= len(types))
        if done:
            progress["finished"] = time.time()
        return done

    return step


def _page_query(repo: Repository, params: dict[str, Any], rtype: str, page: int) -> Any:
    """The search for one page of ``rtype``: its ``_typeFilter``, ``_since``, and at Patient and Group
    level membership of a patient's compartment (None: nothing of this type can be in it)."""
    pairs = params["filters"].get(rtype, "")
    query = parse_type_query(repo, rtype, pairs, strict=True)
    query.count = page
    query.sort = []
    if params.get("since"):
        query.filters.extend(
            parse_type_query(repo, rtype, f"_lastUpdated=ge{quote(params['since'])}", strict=True).filters
        )
    if params["level"] == "system":
        return query
    members: list[str] = params["members"]
    if rtype == "Group" and params.get("group"):
        # The Group itself only: another Group sharing a member is in that member's compartment,
        # but not in this export (THREATS.md AZ-07, HAPI #3700).
        query.filters.extend(parse_type_query(repo, rtype, f"_id={params['group']}", strict=True).filters)
        return query
    if rtype == "Patient":
        if members:
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


def _lines(rows: list[Any], elements: tuple[str, ...]) -> list[bytes]:
    """The stored JSON of each row, or with ``_elements`` the subset (tagged SUBSETTED) of each."""
    if not elements:
        return [row[2] for row in rows]
    return [res.dumps(subset(res.loads(row[2]), None, elements)) for row in rows]


def _append(path: Path, length: int, lines: list[bytes]) -> int:
    """Append one line per row to ``path``, first cutting it back to ``length`` (what the last committed
    step left: a step that died after writing is redone whole); returns the new length, on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as out:
        out.truncate(length)
        out.seek(length)
        for line in lines:
            out.write(line)
            out.write(b"\n")
        out.flush()
        os.fsync(out.fileno())
        return out.tell()


def install(services: Services, runner: JobRunner) -> None:
    runner.register(KIND, export_step(services))


# ---- status and files ------------------------------------------------------------------------------
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
        return FhirResponse(
            202,
            headers={"X-Progress": f"{job.state}: {done} resources, type {step} of {len(types)}", "Retry-After": "2"},
        )
    return FhirResponse(200, resource=_manifest(request, job))


def _manifest(request: FhirRequest, job: Job) -> dict[str, Any]:
    files = job.progress.get("files", {})
    return {
        "transactionTime": res.instant(job.created),
        "request": job.params.get("request"),
        "requiresAccessToken": True,
        "output": [
            {
                "type": t,
                "url": f"{request.base_url}/$export-file?job={job.id}&file={quote(t)}.ndjson",
                "count": f["count"],
            }
            for t, f in files.items()
            if f["count"]
        ],
        "error": [],
    }


def handle_file(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    job = _job(repo, request)
    name = request.param("file") or ""
    rtype = name.removesuffix(".ndjson")
    record = job.progress.get("files", {}).get(rtype) if job.state == "done" else None
    if record is None or not name.endswith(".ndjson") or not record["count"]:
        raise not_found(f"Export file {name[:80]!r} not found", f"Không tìm thấy tệp xuất {name[:80]!r}")
    body = (export_dir(repo.services, job.id) / f"{rtype}.ndjson").read_bytes()
    # The audit trail names every patient whose data the file carries (``seen``: one resource a line).
    return FhirResponse(200, raw=body, headers={"Content-Type": NDJSON}, seen=body.splitlines())


OPERATIONS = [
    Operation(
        name="export",
        handler=handle,
        levels=frozenset({"system", "type", "instance"}),
        types=frozenset({"Patient", "Group"}),
        methods=frozenset({"GET", "POST"}),
        write=False,
        access="read",
        definition={"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"},
    ),
    Operation(
        name="export-status",
        handler=handle_status,
        levels=frozenset({"system"}),
        methods=frozenset({"GET", "DELETE"}),
        write=False,
        access="read",  # the caller's own job only (_job)
        definition={"name": "export-status", "definition": "urn:ketnoi:operation:export-status"},
    ),
    Operation(
        name="export-file",
        handler=handle_file,
        levels=frozenset({"system"}),
        methods=frozenset({"GET"}),
        write=False,
        access="read",  # the caller's own job only (_job): requiresAccessToken
        definition={"name": "export-file", "definition": "urn:ketnoi:operation:export-file"},
    ),
]
