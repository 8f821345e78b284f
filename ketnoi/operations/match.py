"""``POST Patient/$match``: which stored patients may be the person described (issue 13; ADR 0023).

A registration desk asks before it creates a patient; a data steward asks while cleaning. The body is
the R4 Parameters of the operation:

- ``resource`` (required): a Patient, as complete as the desk has it (name, birth date, gender, CCCD,
  BHYT card, phone, coded address);
- ``onlyCertainMatches`` (boolean, default false): only ``certain`` matches;
- ``count`` (integer 1..100, default 10): at most this many matches.

Candidates are found through the blocking keys every Patient gets as index rows when written
(:mod:`ketnoi.search.extract_mpi`), one index lookup per key, never a scan; each is compared and graded
by the patient index's model (:mod:`ketnoi.mpi.matcher`). The answer is a ``searchset`` Bundle, best
first, each entry with ``search.mode`` ``match``, ``search.score`` (the match probability) and the
``match-grade`` extension (``certain``, ``probable``, ``possible``).

The access policy applies: a match the caller may not read is not in the Bundle. A clinician still
needs to know that a record exists elsewhere to ask for it (a Consent, or break-the-glass in an
emergency), so a ``certain`` or ``probable`` match held out of reach is reported as an information
issue naming the organization that holds it, never the record or its content. A patient (a token
confined to one patient) may not call it: matching strangers' demographics is not a patient's task.
"""

from __future__ import annotations

from typing import Any, Final

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError, bad_request
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.ownership import owner
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.mpi.matcher import Ranked, candidates, model_for, registry_size, score
from ketnoi.search.extract_mpi import lookup_keys, patient_view

GRADE_URL: Final = "http://hl7.org/fhir/StructureDefinition/match-grade"
DEFAULT_COUNT: Final = 10
MAX_COUNT: Final = 100
_HELD_ELSEWHERE: Final = frozenset({"certain", "probable"})


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    if repo.context.patient is not None or "patient" in repo.context.roles:
        raise FhirError.of(
            403,
            "forbidden",
            "Patient matching is for registration desks and data stewards, not for a patient's own access",
            "Đối sánh bệnh nhân dành cho bộ phận tiếp đón và người quản lý dữ liệu, không dành cho bệnh nhân",
        )
    query, only_certain, count = _parameters(request.body)
    view = patient_view(query)
    keys = lookup_keys(view)
    if not keys:
        raise bad_request(
            "The Patient has nothing to match on: give a name with a birth date, a CCCD, a BHYT card or a phone",
            "Patient không có gì để đối sánh: hãy cho họ tên kèm ngày sinh, CCCD, thẻ BHYT hoặc số điện thoại",
            code="required",
        )
    model = model_for(repo.services.settings.mpi_model).for_records(registry_size(repo))
    scored = score(view, candidates(repo, view), model)  # compared from their index rows
    if only_certain:
        scored = [s for s in scored if s.match.grade == "certain"]
    stored = {v.id: v for v in repo.privileged("patient-match").read_many("Patient", [s.id for s in scored])}
    ranked = [Ranked(res.loads_object(stored[s.id].content), s.match) for s in scored if s.id in stored]
    shown, held = _split(repo, ranked, stored)
    return FhirResponse(200, resource=_bundle(repo, shown[:count], held))


def _parameters(body: Any) -> tuple[dict[str, Any], bool, int]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise bad_request(
            "Send a Parameters resource with the Patient to match in 'resource'",
            "Hãy gửi một Parameters có Patient cần đối sánh trong 'resource'",
        )
    params = [p for p in body.get("parameter") or () if isinstance(p, dict)]
    named = {str(p.get("name")): p for p in params}
    return _resource(named.get("resource")), _only_certain(named.get("onlyCertainMatches")), _count(named.get("count"))


def _resource(param: dict[str, Any] | None) -> dict[str, Any]:
    resource = param.get("resource") if param else None
    if resource is None:
        raise bad_request(
            "Parameter 'resource' is required: the Patient to match",
            "Thiếu tham số 'resource': Patient cần đối sánh",
            code="required",
        )
    if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
        kind = resource.get("resourceType") if isinstance(resource, dict) else type(resource).__name__
        raise bad_request(
            f"Parameter 'resource' must be a Patient, not {kind}",
            f"Tham số 'resource' phải là một Patient, không phải {kind}",
        )
    return resource


def _only_certain(param: dict[str, Any] | None) -> bool:
    if param is None:
        return False
    value = param.get("valueBoolean")
    if not isinstance(value, bool):
        raise bad_request(
            "Parameter 'onlyCertainMatches' must be a valueBoolean (true or false)",
            "Tham số 'onlyCertainMatches' phải là valueBoolean (true hoặc false)",
        )
    return value


def _count(param: dict[str, Any] | None) -> int:
    if param is None:
        return DEFAULT_COUNT
    value = param.get("valueInteger", param.get("valuePositiveInt"))
    if type(value) is not int or not 1 <= value <= MAX_COUNT:
        raise bad_request(
            f"Parameter 'count' must be an integer from 1 to {MAX_COUNT}, not {value!r}",
            f"Tham số 'count' phải là số nguyên từ 1 đến {MAX_COUNT}, không phải {value!r}",
        )
    return value


def _split(repo: Repository, ranked: list[Ranked], stored: dict[str, Any]) -> tuple[list[Ranked], dict[str, str]]:
    """The matches the caller may read, and for the strong ones it may not: holder → best grade."""
    shown: list[Ranked] = []
    held: dict[str, str] = {}
    for r in ranked:
        pid = str(r.resource.get("id"))
        if repo.exists("Patient", pid):
            shown.append(r)
        elif r.match.grade in _HELD_ELSEWHERE:
            holder = owner(repo, stored[pid]) or "an organization at the national level"
            if held.get(holder) != "certain":
                held[holder] = r.match.grade
    return shown, held


def _bundle(repo: Repository, shown: list[Ranked], held: dict[str, str]) -> dict[str, Any]:
    base = repo.services.settings.public_base() or ""
    entries: list[dict[str, Any]] = [_entry(base, r) for r in shown]
    if held:
        entries.append({"resource": _held_outcome(held), "search": {"mode": "outcome"}})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(shown), "entry": entries}


def _entry(base: str, ranked: Ranked) -> dict[str, Any]:
    resource = ranked.resource
    return {
        "fullUrl": f"{base.rstrip('/')}/Patient/{resource.get('id')}",
        "resource": resource,
        "search": {
            "extension": [{"url": GRADE_URL, "valueCode": ranked.match.grade}],
            "mode": "match",
            "score": round(ranked.match.probability, 6),
        },
    }


def _held_outcome(held: dict[str, str]) -> dict[str, Any]:
    issues = []
    for holder, grade in sorted(held.items()):
        issues.append(
            {
                "severity": "information",
                "code": "informational",
                "diagnostics": f"{holder} holds a record that is a {grade} match, out of your reach: "
                "ask for access (the patient's Consent, or break-the-glass in an emergency) | "
                f"{holder} giữ một hồ sơ trùng khớp ({grade}) mà bạn không được xem: hãy xin quyền truy cập "
                "(đồng ý của bệnh nhân, hoặc mở khẩn cấp khi cấp cứu)",
            }
        )
    return {"resourceType": "OperationOutcome", "issue": issues}


OPERATION = Operation(
    name="match",
    handler=handle,
    levels=frozenset({"type"}),
    types=frozenset({"Patient"}),
    methods=frozenset({"POST"}),
    write=False,
    access="read",  # read on Patient from the scopes; what is shown is what the caller may read
    definition={"name": "match", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match"},
)
