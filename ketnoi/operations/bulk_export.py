"""``$export``: FHIR Bulk Data Access export as a resumable background job (issue 14, ADR 0024).

Follows Bulk Data Access 2.0 (https://hl7.org/fhir/uv/bulkdata/export.html) and the asynchronous
request pattern:

- Kick-off (this module): ``GET|POST [base]/$export`` (every type), ``[base]/Patient/$export`` (the
  Patient compartment of every patient), ``[base]/Group/[id]/$export`` (the compartments of the Group's
  Patient members), with ``Prefer: respond-async`` and ``Accept: application/fhir+json``; parameters
  ``_outputFormat`` (NDJSON), ``_type``, ``_since``, ``_elements``, ``_typeFilter`` (several per type:
  their union) and ``patient`` (Patient and Group level). Answers ``202`` with ``Content-Location``
  naming the status endpoint.
- The job (:mod:`ketnoi.operations.bulk_export_job`): pages of the owner's search appended to one
  NDJSON file per type, exactly once across interruptions.
- Status and files (:mod:`ketnoi.operations.bulk_export_files`): ``[base]/$export-status?job=N``
  (``202`` with ``X-Progress`` and ``Retry-After``, ``200`` with the manifest, ``DELETE`` cancels)
  and ``[base]/$export-file?job=N&file=Type.ndjson`` (streamed, gzip when asked), only for the caller
  who started the job.

The job runs with its owner's rights: every page is a search through the Repository, so what the
access policy hides (another facility's patients, a Consent's categories) is filtered in the
database query as for any search, and a type the owner's scopes do not allow is refused at kick-off.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import FhirError, Issue, bad_request, operation_outcome
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.policy import REGISTRY_TYPES, compartment_params
from ketnoi.interactions.reach import aggregates_only
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.search import parse_type_query
from ketnoi.interactions.services import Services
from ketnoi.jobs import JobRunner
from ketnoi.operations import bulk_export_files as files
from ketnoi.operations import bulk_export_scan as scan
from ketnoi.operations.bulk_export_job import KIND, PAGE, export_dir, export_step
from ketnoi.operations.reindex import runner_of
from ketnoi.search.normalize import date_range

__all__ = ["KIND", "OPERATIONS", "PAGE", "export_dir", "export_step", "handle", "install"]

NDJSON = files.NDJSON
FORMATS = (NDJSON, "application/ndjson", "ndjson")
# Accept at kick-off: Bulk Data names application/fhir+json only (bdt checks that application/json,
# what an HTTP client sends by default, is refused); */* leaves the choice to the server.
JSON_TYPES = ("application/fhir+json", "*/*")
ASSOCIATED: tuple[str, ...] = ()  # includeAssociatedData values supported: none (ADR 0024 decision 7)
# A _typeFilter list is split at the commas that start another query ("Type?"), not at those inside one
# ("Observation?code=a,b").
_NEXT_FILTER = re.compile(r",(?=\s*[A-Z][A-Za-z]*\?)")
Params = dict[str, list[str]]


# ---- kick-off --------------------------------------------------------------------------------------
def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    _check_headers(request)
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
    lenient = request.prefer.get("handling") == "lenient"
    params = _parameters(request)
    level = "system" if rtype is None else ("patient" if id is None else "group")
    notes = _associated(params.get("includeAssociatedData", []), lenient)
    types = _types(repo, _listed(params.get("_type", [])), level)
    asked = _patients(params.get("patient", []), level, request.base_url)
    members = _members(repo, id) if id is not None else []
    if asked is not None:
        members = [m for m in members if m in asked] if id is not None else asked
    job_params = {
        "request": _request_url(request, rtype, id),
        "level": level,
        "types": types,
        "since": _since(_single(params, "_since")),
        "filters": _type_filters(repo, params.get("_typeFilter", []), types, lenient, notes),
        "members": members,
        "limited": asked is not None,
        "elements": _listed(params.get("_elements", [])),
        "group": id,
        "lenient": lenient,
        "base_url": request.base_url,
        # What handling=lenient ignored: in the kick-off answer and, for a client that reads only the
        # manifest, in the export's error file (Bulk Data: OperationOutcomes in the manifest's error).
        "warnings": [issue.to_json() for issue in notes],
        # The database's state at kick-off (transactionTime), for the read in storage order (ADR 0024,
        # decision 12): taken here, not at the first step, so that nothing written after the
        # kick-off is exported that way. Only where that read may be used: every type, system level.
        "mark": scan.mark_now(repo.session) if level == "system" and not params.get("_type") else None,
    }
    runner = runner_of(repo.services)
    runner.start()
    job = runner.submit(KIND, job_params, {"index": 0, "after": None, "files": {}}, owner=repo.context.to_json())
    accepted = Issue(
        "information",
        "informational",
        f"Export job {job.id} accepted ({len(types)} resource types); poll the Content-Location",
        f"Đã nhận tác vụ xuất {job.id} ({len(types)} loại tài nguyên); xem trạng thái tại Content-Location",
    )
    location = f"{request.base_url}/$export-status?job={quote(str(job.id))}"
    return FhirResponse(202, resource=operation_outcome([accepted, *notes]), headers={"Content-Location": location})


def _check_headers(request: FhirRequest) -> None:
    """``Prefer: respond-async`` and ``Accept: application/fhir+json`` (the kick-off's OperationOutcome)
    are required by Bulk Data Access."""
    if request.prefer.get("respond-async") is None:
        raise bad_request(
            "Bulk export is asynchronous: send the header Prefer: respond-async",
            "Xuất dữ liệu hàng loạt chạy nền: hãy gửi tiêu đề Prefer: respond-async",
            code="required",
        )
    accept = [t.split(";")[0].strip().lower() for t in (request.header("accept") or "").split(",")]
    if not any(t in JSON_TYPES for t in accept):
        raise bad_request(
            "Bulk export kick-off needs the header Accept: application/fhir+json",
            "Yêu cầu xuất hàng loạt cần tiêu đề Accept: application/fhir+json",
            code="required",
        )


def _request_url(request: FhirRequest, rtype: str | None, id: str | None) -> str:
    path = "/".join(p for p in (rtype, id) if p)
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in request.query)
    return f"{request.base_url}/{path + '/' if path else ''}$export" + (f"?{query}" if query else "")


def _parameters(request: FhirRequest) -> Params:
    """The kick-off's parameters (query string, then a POSTed Parameters), each occurrence's value."""
    found: Params = {}
    for name, value in request.query:
        found.setdefault(name, []).append(value)
    body = request.body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for p in body.get("parameter") or ():
            named = p.get("name") if isinstance(p, dict) else None
            if isinstance(named, str):
                found.setdefault(named, []).append(_value(named, p))
    output = _single(found, "_outputFormat")
    if output is not None and output not in FORMATS:
        raise bad_request(
            f"_outputFormat {output[:60]!r} is not supported: use {NDJSON}",
            f"_outputFormat {output[:60]!r} không được hỗ trợ: hãy dùng {NDJSON}",
            code="not-supported",
        )
    return found


def _value(name: str, parameter: dict[str, object]) -> str:
    """A Parameters entry's value as text: ``valueReference.reference`` (``patient``), else the one
    ``value[x]`` that is a string (valueString, valueInstant, valueCode...)."""
    ref = parameter.get("valueReference")
    value: object = ref.get("reference") if isinstance(ref, dict) else None
    if value is None:
        value = next((v for k, v in parameter.items() if k.startswith("value") and isinstance(v, str)), None)
    if not isinstance(value, str):
        raise bad_request(
            f"The export parameter {name[:40]} has no value this server reads",
            f"Tham số xuất {name[:40]} không có giá trị máy chủ đọc được",
        )
    return value


def _single(params: Params, name: str) -> str | None:
    values = list(dict.fromkeys(params.get(name, [])))
    if len(values) > 1:
        raise bad_request(f"Give {name} once", f"Chỉ được gửi {name} một lần")
    return values[0] if values else None


def _listed(values: list[str]) -> list[str]:
    """Comma-separated lists, as many times as given, into one list (each once, in order)."""
    return list(dict.fromkeys(v.strip() for value in values for v in value.split(",") if v.strip()))


def _associated(values: list[str], lenient: bool) -> list[Issue]:
    """``includeAssociatedData``: no value is supported (ADR 0024); a 400 naming that, or with
    ``Prefer: handling=lenient`` a warning in the kick-off answer and the export without them."""
    unknown = [v for v in _listed(values) if v not in ASSOCIATED]
    if not unknown:
        return []
    names = ", ".join(v[:60] for v in unknown)
    en = f"includeAssociatedData {names} is not supported (supported values: none)"
    vi = f"includeAssociatedData {names} không được hỗ trợ (giá trị được hỗ trợ: không có)"
    if not lenient:
        raise bad_request(en, vi, code="not-supported")
    return [
        Issue("warning", "not-supported", en + "; ignored (handling=lenient)", vi + "; đã bỏ qua (handling=lenient)")
    ]


def _types(repo: Repository, names: list[str], level: str) -> list[str]:
    """The types to export: ``_type`` (each known and readable, else 400/403), or every type the caller
    may search (at Patient and Group level, those of the Patient compartment). A provincial manager
    exports the registries only, and no patient's record (ADR 0017): 403 for anything else."""
    known = resource_types()
    compartment = {t for t in known if t == "Patient" or compartment_params(t)}
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


def _patients(values: list[str], level: str, base_url: str) -> list[str] | None:
    """The ids of the ``patient`` parameter (``Patient/[id]``, or the same under this server's base),
    None when not given. Not a system-level parameter (Bulk Data 2.0)."""
    refs = _listed(values)
    if not refs:
        return None
    if level == "system":
        raise bad_request(
            "The patient parameter is for Patient/$export and Group/[id]/$export, not a system-level export",
            "Tham số patient dùng cho Patient/$export và Group/[id]/$export, không dùng khi xuất toàn hệ thống",
        )
    ids = []
    for ref in refs:
        local = ref.removeprefix(base_url.rstrip("/") + "/")
        rtype, _, pid = local.partition("/")
        if rtype != "Patient" or not res.is_valid_id(pid):
            raise bad_request(
                f"patient must reference a Patient as Patient/[id], not {ref[:80]!r}",
                f"patient phải tham chiếu một Patient dạng Patient/[id], không phải {ref[:80]!r}",
            )
        ids.append(pid)
    return list(dict.fromkeys(ids))


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        start = date_range(value)[0]
    except ValueError:
        raise bad_request(
            f"_since must be a FHIR instant (e.g. 2026-01-01T00:00:00Z), not {value[:40]!r}",
            f"_since phải là thời điểm FHIR (ví dụ 2026-01-01T00:00:00Z), không phải {value[:40]!r}",
        ) from None
    if start > time.time():
        raise bad_request(
            f"_since {value[:40]!r} is in the future",
            f"_since {value[:40]!r} là thời điểm trong tương lai",
        )
    return value


def _type_filters(
    repo: Repository, values: list[str], types: list[str], lenient: bool, notes: list[Issue]
) -> dict[str, list[str]]:
    """``_typeFilter``: ``Type?search`` queries, several per type allowed (the export holds their union),
    checked now: one that does not parse is a 400 at kick-off, not a failed job. With ``Prefer:
    handling=lenient`` unknown search parameters are ignored, as in a lenient search, and a warning for
    each is added to ``notes``."""
    found: dict[str, list[str]] = {}
    for item in (i.strip() for value in values for i in _NEXT_FILTER.split(value)):
        if not item:
            continue
        rtype, _, query = item.partition("?")
        if rtype not in types:
            raise bad_request(
                f"_typeFilter {item[:80]!r} names a type that is not exported",
                f"_typeFilter {item[:80]!r} nêu một loại tài nguyên không được xuất",
            )
        ignored = parse_type_query(repo, rtype, query, strict=not lenient).ignored
        if ignored:
            names = ", ".join(sorted(set(ignored)))
            notes.append(
                Issue(
                    "warning",
                    "not-supported",
                    f"_typeFilter {item[:80]!r}: unknown search parameter(s) {names} ignored (handling=lenient)",
                    f"_typeFilter {item[:80]!r}: đã bỏ qua tham số tìm kiếm không biết {names} (handling=lenient)",
                )
            )
        if query not in found.setdefault(rtype, []):
            found[rtype].append(query)
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


def install(services: Services, runner: JobRunner) -> None:
    runner.register(KIND, export_step(services))


BULK = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition"
OPERATIONS = [
    Operation(
        name="export",
        handler=handle,
        levels=frozenset({"system", "type", "instance"}),
        types=frozenset({"Patient", "Group"}),
        methods=frozenset({"GET", "POST"}),
        write=False,
        access="read",
        definition={
            "name": "export",
            "definition": f"{BULK}/export",
            "per_type": {"Patient": f"{BULK}/patient-export", "Group": f"{BULK}/group-export"},
        },
    ),
    Operation(
        name="export-status",
        handler=files.handle_status,
        levels=frozenset({"system"}),
        methods=frozenset({"GET", "DELETE"}),
        write=False,
        access="read",  # the caller's own job only (bulk_export_files._job)
        definition={"name": "export-status", "definition": "urn:ketnoi:operation:export-status"},
    ),
    Operation(
        name="export-file",
        handler=files.handle_file,
        levels=frozenset({"system"}),
        methods=frozenset({"GET"}),
        write=False,
        access="read",  # the caller's own job only (bulk_export_files._job): requiresAccessToken
        definition={"name": "export-file", "definition": "urn:ketnoi:operation:export-file"},
    ),
]
