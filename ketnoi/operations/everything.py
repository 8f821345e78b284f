"""``Patient/[id]/$everything`` and ``Patient/$everything``
(http://hl7.org/fhir/R4/patient-operation-everything.html): one patient's record as a ``searchset``.

The Bundle holds the Patient, then every resource of that Patient's R4 compartment, type by type
(alphabetical) and by id within a type, each type read by the same compartment search as
``Patient/[id]/Observation``; then, per page, the shared directory and definitional resources
(``policy.SHARED_TYPES``: Practitioner, Organization, Location, Medication, ...) those reference,
as ``include`` entries, through ``Repository.included``. Everything is read through the Repository,
so the caller's scopes apply exactly as to a search:

- a Patient the caller may not read (another patient's, for a patient token) is 404, word for word
  a read of a Patient that does not exist; a deleted one is 410;
- types the caller may not search are left out silently (the answer is what the caller may see);
  granular scopes filter as they filter a search;
- ``Patient/$everything`` (no id) is the patient in context of a ``patient/`` token, and 400
  for any other caller ("name the patient").

Parameters (query string, or a Parameters body with POST): ``_since`` (only resources updated
at or after this instant: the Patient and the compartment; included directory data is not
filtered), ``_type`` (comma-separated, repeatable: only these types; the Patient itself only if
listed), ``_count`` (page size). ``start`` and ``end`` are accepted and ignored, with a warning
issue. Paging is keyset-based: ``next`` carries a signed ``_cursor`` holding (type, id) of the
last row, bound to the patient. ``total`` is given only when the whole record fits in one page.
``AuditEvent`` (in the compartment) lives in the audit log: read it with ``AuditEvent?patient=``.

A golden record of the patient index (ADR 0023) is one person's records at several facilities: its
``$everything`` spans the golden record and every source record its ``seealso`` links name, and
their compartments, in one keyset order. What the caller may see is decided per row, by each row's
own patient (a source's Consent still withholds what it withholds); no other Patient's links are
followed.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlencode

from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import patient_compartment, resource_types
from ketnoi.fhir.outcome import Issue, bad_request, operation_outcome
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.policy import SHARED_TYPES
from ketnoi.interactions.repository import Repository, check_id
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.search import cursor_secret, include_cap_warning
from ketnoi.interactions.visibility import Row
from ketnoi.search.compile import Position
from ketnoi.search.extract_mpi import is_golden, linked_patients
from ketnoi.search.paging import decode_cursor, encode_cursor
from ketnoi.search.parse import parse
from ketnoi.search.query import Compartment, Include, SearchQuery
from ketnoi.store.base import StoredVersion

_KNOWN = ("_since", "_type", "_count", "_cursor", "start", "end", "_format", "_pretty")
_NOT_HERE = frozenset({"AuditEvent"})  # the audit log, not the resource tables (AuditEvent?patient=)


@cache
def _members() -> dict[str, tuple[str, ...]]:
    """Compartment type → its membership parameters (R4 Patient CompartmentDefinition)."""
    found = {r["code"]: tuple(r["param"]) for r in patient_compartment().get("resource", ()) if r.get("param")}
    return {t: p for t, p in found.items() if t not in _NOT_HERE and t != "Patient"}


def _params(request: FhirRequest) -> list[tuple[str, str]]:
    """The query string, plus a POSTed Parameters body's values as the same (name, text) pairs."""
    out = list(request.query)
    body = request.body
    if request.method == "POST" and body is not None:
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise bad_request(
                "$everything with POST takes a Parameters resource",
                "$everything với POST nhận một tài nguyên Parameters",
            )
        for param in body.get("parameter") or ():
            if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                continue
            values = [v for k, v in param.items() if k.startswith("value")]
            if len(values) == 1 and isinstance(values[0], (str, int)) and not isinstance(values[0], bool):
                out.append((param["name"], str(values[0])))
    return out


def _patient_of(repo: Repository, id: str | None) -> str:
    if id is not None:
        check_id(id)
        return id
    if repo.access.limited:
        grant = repo.access.grant("Patient", "r")
        if grant is not None and grant.patient is not None:
            return grant.patient
    raise bad_request(
        "Name the patient: Patient/ID/$everything (Patient/$everything is a patient's own record, "
        "for a patient/ access token)",
        "Hãy nêu bệnh nhân: Patient/ID/$everything (Patient/$everything là hồ sơ của chính bệnh nhân, "
        "cho mã truy cập patient/)",
        code="required",
    )


def _types(params: list[tuple[str, str]]) -> tuple[list[str], frozenset[str], list[Issue]]:
    """(types whose resources are matches, in page order; shared types to include; notes)."""
    members = _members()
    wanted = [t for k, v in params if k == "_type" for t in v.split(",") if t]
    notes: list[Issue] = []
    for rtype in wanted:
        if rtype not in resource_types():
            raise bad_request(
                f"Unknown resource type '{rtype[:60]}' in _type",
                f"Loại tài nguyên '{rtype[:60]}' trong _type không tồn tại",
            )
        if rtype != "Patient" and rtype not in members and rtype not in SHARED_TYPES:
            notes.append(
                Issue(
                    "warning",
                    "not-supported",
                    f"_type {rtype} is not part of a patient's record and was ignored",
                    f"_type {rtype} không thuộc hồ sơ bệnh nhân và bị bỏ qua",
                )
            )
    chosen = set(wanted) if wanted else None
    types = [t for t in ("Patient", *sorted(members)) if chosen is None or t in chosen]
    shared = SHARED_TYPES if chosen is None else SHARED_TYPES & chosen
    return types, frozenset(shared), notes


def _count(repo: Repository, params: list[tuple[str, str]]) -> int:
    settings = repo.services.settings
    text = next((v for k, v in reversed(params) if k == "_count"), None)
    if text is None:
        return settings.default_count
    if not text.isdigit() or int(text) < 1:
        raise bad_request(
            f"_count must be a positive integer, not '{text[:20]}'",
            f"_count phải là số nguyên dương, không phải '{text[:20]}'",
        )
    return min(int(text), settings.max_count)


def _sources(current: StoredVersion) -> tuple[str, ...]:
    """A golden record's source records (its ``seealso`` links); nothing for any other Patient."""
    body = res.loads_object(current.content)
    if not is_golden(body):
        return ()
    return tuple(sorted({i for i in linked_patients(body) if res.is_valid_id(i) and i != current.id}))


def _query(
    repo: Repository, rtype: str, patient: str, since: str | None, count: int, also: tuple[str, ...] = ()
) -> SearchQuery:
    """The compartment search of one type (the Patient: itself), as ``Patient/[id]/[type]`` runs it;
    with ``also``, of those patients' compartments too."""
    criteria = [("_id", ",".join((patient, *also)))] if rtype == "Patient" else []
    if since is not None:
        criteria.append(("_lastUpdated", f"ge{since}"))
    query = parse((rtype,), criteria, repo.services.extractor.params_for, strict=True)
    if rtype != "Patient":
        query.filters.append(Compartment(_members()[rtype], "Patient", patient, also))
    query.count = count
    return query


def _searchable(repo: Repository, rtype: str) -> bool:
    return not repo.access.limited or repo.access.grant(rtype, "s") is not None


def _includes(repo: Repository, rows: list[Row], shared: frozenset[str]) -> list[Include]:
    """For each type on the page, its references to the shared types (one Include per target type)."""
    out: list[Include] = []
    for source in sorted({r[0] for r in rows}):
        by_target: dict[str, list[str]] = {}
        for code, sp in repo.services.extractor.params_for(source).items():
            if sp.get("type") != "reference":
                continue
            for target in sp.get("target") or ():
                if target in shared:
                    by_target.setdefault(target, []).append(code)
        out.extend(Include(source, tuple(sorted(p)), t, False, False) for t, p in sorted(by_target.items()))
    return out


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    patient = _patient_of(repo, id)
    params = _params(request)
    unknown = sorted({k for k, _ in params if k not in _KNOWN})
    if unknown:
        raise bad_request(
            f"$everything does not take '{unknown[0][:40]}'", f"$everything không nhận tham số '{unknown[0][:40]}'"
        )
    also = _sources(repo.read("Patient", patient))  # 404 (not visible or missing) or 410 (deleted) first
    types, shared, notes = _types(params)
    count = _count(repo, params)
    since = next((v for k, v in reversed(params) if k == "_since"), None)
    if any(k in ("start", "end") for k, _ in params):
        notes.append(
            Issue(
                "warning",
                "not-supported",
                "start and end (care dates) are not supported by $everything and were ignored",
                "start và end (ngày chăm sóc) không được $everything hỗ trợ và bị bỏ qua",
            )
        )
    secret, signature = cursor_secret(repo), f"$everything/{patient}"
    cursor = next((v for k, v in reversed(params) if k == "_cursor"), None)
    start = decode_cursor(cursor, signature, secret) if cursor is not None else None
    if start is not None and (start.resource_type not in types or start.before):
        raise bad_request(
            "The _cursor parameter does not belong to this $everything; follow the Bundle's paging links",
            "Tham số _cursor không thuộc $everything này; hãy dùng các liên kết phân trang của Bundle",
        )
    first = types.index(start.resource_type) if start is not None else 0

    rows: list[Row] = []
    following: Position | None = None  # where the next page starts: (type, last id seen there, or "")
    for i in range(first, len(types)):
        rtype_i = types[i]
        if not _searchable(repo, rtype_i):
            continue  # what the caller may not search is left out, silently
        after = start if start is not None and i == first and start.id else None
        need = count - len(rows)
        if need == 0:  # the page is full: is anything left, from this type on?
            if repo.search_page(_query(repo, rtype_i, patient, since, 1, also), request.base_url):
                following = Position((), rtype_i, "")
                break
            continue
        found = repo.search_page(_query(repo, rtype_i, patient, since, need, also), request.base_url, after)
        rows.extend(found[:need])
        if len(found) > need:
            following = Position((), rtype_i, found[need - 1][1])
            break

    base = request.base_url
    self_base = f"{base}/Patient/{id}/$everything" if id is not None else f"{base}/Patient/$everything"
    kept = [(k, v) for k, v in params if k not in ("_count", "_cursor")]
    links = [{"relation": "self", "url": _url(self_base, params)}]
    if start is not None:
        links.append({"relation": "first", "url": _url(self_base, [*kept, ("_count", str(count))])})
    if following is not None:
        next_params = [*kept, ("_count", str(count)), ("_cursor", encode_cursor(following, signature, secret))]
        links.append({"relation": "next", "url": _url(self_base, next_params)})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if start is None and following is None:
        bundle["total"] = len(rows)  # the whole record is on this page
    bundle["link"] = links
    entries = [_entry(base, row, "match") for row in rows]
    seen = [row[2] for row in rows]  # for the audit trail: one AuditEvent per patient whose data this carries
    wanted = _includes(repo, rows, shared)
    if wanted:
        included, capped = repo.included(wanted, [(r[0], r[1]) for r in rows])
        entries.extend(_entry(base, row, "include") for row in included)
        seen.extend(row[2] for row in included)
        if capped:
            notes.append(include_cap_warning())
    if notes:
        entries.append({"resource": operation_outcome(notes), "search": {"mode": "outcome"}})
    bundle["entry"] = entries
    return FhirResponse(200, resource=bundle, seen=seen)


def _entry(base_url: str, row: Row, mode: str) -> dict[str, Any]:
    return {"fullUrl": f"{base_url}/{row[0]}/{row[1]}", "resource": res.loads(row[2]), "search": {"mode": mode}}


def _url(base: str, params: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params)}" if params else base


OPERATION = Operation(
    name="everything",
    handler=handle,
    levels=frozenset({"type", "instance"}),
    types=frozenset({"Patient"}),
    methods=frozenset({"GET", "POST"}),
    write=False,
    access="read",  # read on Patient; every resource it returns passes the caller's search policy
    definition={"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
)
