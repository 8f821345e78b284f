"""``POST Patient/$merge``: two records of one person become one (the parameters of FHIR R5's operation).

Parameters: ``source-patient`` / ``target-patient`` (valueReference ``Patient/ID``) or
``source-patient-identifier`` / ``target-patient-identifier`` (valueIdentifier, which must name exactly
one Patient), ``result-patient`` (optional: the target as it should read afterwards, same id),
``preview`` (valueBoolean: say what would change, write nothing). What a merge does and how
``$unmerge`` undoes it: :mod:`ketnoi.mpi.merge`. The answer is a Parameters with ``input`` (the request),
``outcome`` and ``result`` (the target Patient).

Every write goes through the caller's rights, so a merge that would touch a record the caller may not
change (another facility's Observation of the source) is refused whole: 403, nothing written. A patient
may not merge records (403). Errors name the problem: the same patient twice (400), a missing one (404),
a deleted or already merged one (409).
"""

from __future__ import annotations

from typing import Any

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError, bad_request, not_found
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.mpi import merge


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    refuse_patients(repo, "merge")
    params = parameters(request.body)
    source = patient_id(repo, params, "source-patient")
    target = patient_id(repo, params, "target-patient")
    result = params.get("result-patient", {}).get("resource")
    if result is not None and (not isinstance(result, dict) or result.get("resourceType") != "Patient"):
        raise bad_request("'result-patient' must be a Patient", "'result-patient' phải là một Patient")
    preview = params.get("preview", {}).get("valueBoolean") is True
    moves = repo.services.settings.merge_moves_references
    plan = merge.plan(repo, source, target, moves)
    if preview:
        text = (
            f"Preview: Patient/{source} would be merged into Patient/{target}; "
            f"{len(plan.referrers)} resources refer to the source"
        )
        return answer(request.body, text, res.loads_object(plan.target.content))
    stored = merge.merge(repo, plan, result, moves)
    moved = f"{len(plan.referrers)} resources now refer to the target" if moves else "references left on the source"
    return answer(request.body, f"Patient/{source} was merged into Patient/{target}; {moved}", stored)


def refuse_patients(repo: Repository, what: str) -> None:
    if repo.context.patient is not None or "patient" in repo.context.roles:
        raise FhirError.of(
            403,
            "forbidden",
            f"A patient's own access cannot {what} records: ask the facility's data steward",
            "Bệnh nhân không thể tự gộp hoặc tách hồ sơ: hãy liên hệ người quản lý dữ liệu của cơ sở",
        )


def parameters(body: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise bad_request("Send a Parameters resource", "Hãy gửi một Parameters")
    return {str(p.get("name")): p for p in body.get("parameter") or () if isinstance(p, dict)}


def patient_id(repo: Repository, params: dict[str, dict[str, Any]], name: str) -> str:
    """The id named by ``name`` (a reference) or ``name-identifier`` (exactly one Patient with it)."""
    ref = (params.get(name, {}).get("valueReference") or {}).get("reference")
    if isinstance(ref, str) and ref.startswith("Patient/") and ref.count("/") == 1:
        return ref.removeprefix("Patient/")
    if ref is not None:
        raise bad_request(f"'{name}' must reference Patient/ID, not {ref!r}", f"'{name}' phải là Patient/ID")
    identifier = params.get(f"{name}-identifier", {}).get("valueIdentifier")
    if isinstance(identifier, dict) and identifier.get("value"):
        return _by_identifier(repo, name, str(identifier.get("system", "")), str(identifier["value"]))
    raise bad_request(
        f"Parameter '{name}' (valueReference) or '{name}-identifier' (valueIdentifier) is required",
        f"Thiếu tham số '{name}' (valueReference) hoặc '{name}-identifier' (valueIdentifier)",
        code="required",
    )


def _by_identifier(repo: Repository, name: str, system: str, value: str) -> str:
    rows = repo.ids_with_token("Patient", "identifier", system, value, 2)
    visible = [pid for pid in rows if repo.exists("Patient", pid)]
    if len(visible) == 1:
        return visible[0]
    if not visible:
        raise not_found(f"No Patient has the {name} identifier {system}|{value}", f"Không có Patient mang {value}")
    raise FhirError.of(
        409,
        "multiple-matches",
        f"More than one Patient has the {name} identifier {system}|{value}: name it by reference",
        f"Nhiều Patient mang định danh {value}: hãy chỉ rõ bằng tham chiếu",
    )


def answer(request_body: Any, text: str, result: dict[str, Any]) -> FhirResponse:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
    }
    parameter = [
        {"name": "input", "resource": request_body},
        {"name": "outcome", "resource": outcome},
        {"name": "result", "resource": result},
    ]
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": parameter})


OPERATION = Operation(
    name="merge",
    handler=handle,
    levels=frozenset({"type"}),
    types=frozenset({"Patient"}),
    methods=frozenset({"POST"}),
    write=True,
    access="read",  # every write it makes passes the caller's write scopes and ownership on its own
    definition={"name": "merge", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-merge"},
)
