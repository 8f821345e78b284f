"""``POST Patient/[id]/$break-the-glass``: a clinician opens a patient's record in an emergency
(issue 10; ADR 0017).

A clinician sees another facility's data of a patient only with a care relation or a Consent; in
an emergency neither may exist yet. This operation opens the whole record of one patient to the
calling user (not to the facility, not to other users) for ``Settings.break_glass_minutes``
(default 60), overriding the patient's Consents, because a stated reason stands behind it:

- Parameters ``reason`` (string, required: why, in the clinician's words). The purpose of use is
  always ``ETREAT`` (emergency treatment, v3-ActReason).
- Only a signed-in user acting for a facility (``policy.Access.level`` ``facility``) may call it: a
  patient, a backend system, a provincial manager or an administrator has no use for it (403).
- The grant is a ``security_record`` (kind ``glass:<user>``, key the Patient id) that expires by
  itself; ``interactions.reach`` reads the caller's live grants once per request.
- An AuditEvent with ``purposeOfEvent`` ETREAT and the reason as its text is appended in the same
  transaction as the grant (no grant without its record). It names the patient, so the patient
  sees it in their own audit view (``AuditEvent?patient=``), as does every administrator.

The answer is a Parameters with the ``patient`` and the instant the opening ends (``until``).
A Patient that does not exist is 404 (the clinician must know whom they treat: the id comes from
the patient's card or the patient index).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import orjson

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError, bad_request, not_found
from ketnoi.interactions import audit, audit_events
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository, check_id
from ketnoi.interactions.request import FhirRequest, FhirResponse

PURPOSE = "ETREAT"
MAX_REASON = 2000


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    assert id is not None  # instance level only (OPERATION.levels)
    check_id(id)
    context = repo.context
    if repo.access.level != "facility" or not context.user:
        raise FhirError.of(
            403,
            "forbidden",
            "Break-the-glass is for a signed-in clinician acting for a facility",
            "Mở khẩn cấp hồ sơ chỉ dành cho người dùng y tế đã đăng nhập, làm việc cho một cơ sở",
        )
    reason = _reason(request.body)
    if not repo.privileged("break-the-glass").exists("Patient", id):
        raise not_found(f"Patient/{id} not found", f"Không tìm thấy Patient/{id}")
    until = time.time() + repo.services.settings.break_glass_minutes * 60
    grant = {"reason": reason, "organization": context.organization, "request": context.request_id}
    repo.grant_glass(context.user, id, orjson.dumps(grant).decode(), until)
    _record(repo, id, reason)
    return FhirResponse(
        200,
        resource={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "patient", "valueReference": {"reference": f"Patient/{id}"}},
                {"name": "until", "valueInstant": res.instant(until)},
            ],
        },
    )


def _reason(body: Any) -> str:
    params = body.get("parameter") if isinstance(body, dict) and body.get("resourceType") == "Parameters" else None
    for param in params if isinstance(params, list) else ():
        if isinstance(param, dict) and param.get("name") == "reason" and isinstance(param.get("valueString"), str):
            text = str(param["valueString"]).strip()
            if text:
                return text[:MAX_REASON]
    raise bad_request(
        "Say why: a Parameters body with 'reason' (valueString), e.g. the emergency you are treating",
        "Hãy nêu lý do: một Parameters có 'reason' (valueString), ví dụ tình trạng cấp cứu đang xử trí",
        code="required",
    )


def _record(repo: Repository, patient: str, reason: str) -> None:
    """The AuditEvent of the opening, in this transaction (no-op with auditing off)."""
    if audit.recorder_of(repo.services) is None:
        return
    context = replace(repo.context, purpose_of_use=PURPOSE)
    interaction = audit_events.Interaction("operation", "E", "Patient", patient, operation="$break-the-glass")
    target = audit_events.Target(f"Patient/{patient}", patient)
    recorded = res.now()
    base = repo.services.settings.public_base()
    event = audit_events.build(
        context, interaction, target, audit_events.Outcome(200), recorded=recorded, base_url=base
    )
    event["purposeOfEvent"][0]["text"] = reason
    audit.append(repo, [audit_events.entry(event, context, target, recorded)])


OPERATION = Operation(
    name="break-the-glass",
    handler=handle,
    levels=frozenset({"instance"}),
    types=frozenset({"Patient"}),
    methods=frozenset({"POST"}),
    write=True,
    access="read",  # read on Patient from the scopes; the handler asks for a facility's user
    definition={"name": "break-the-glass", "definition": "https://fhir.ketnoi.vn/OperationDefinition/break-the-glass"},
)
