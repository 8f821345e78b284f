"""The recorder cannot be skipped: every route and operation the CapabilityStatement announces
leaves at least one AuditEvent carrying its request id, whether it is allowed (an operator) or
refused or narrowed (patient A's widest scopes aimed at patient B). The routes are the policy
matrix's cases (tests/interactions/test_policy_matrix.py), which fail there when a route has none.
"""

from __future__ import annotations

from dataclasses import replace

from ketnoi.interactions.services import Services
from tests.interactions.audit_helpers import (
    CLINICIAN,
    OPEN,
    body,
    call,
    create,
    head,
    observation,
    patient_ctx,
    records,
)
from tests.interactions.test_policy_matrix import CASES, _announced


def test_every_announced_route_is_a_case_here(services: Services) -> None:
    assert _announced(services) <= set(CASES)


def test_every_route_and_operation_leaves_an_audit_event(fresh_services: Services) -> None:
    s = fresh_services
    a, b = create(s, {"resourceType": "Patient"}), create(s, {"resourceType": "Patient"})
    ids = {"a": a, "b": b, "obs_a": create(s, observation(a)), "obs_b": create(s, observation(b))}
    callers = {"operator": OPEN, "patient": patient_ctx(a, "-")}
    missing: list[str] = []
    for name in sorted(CASES):
        for who, ctx in callers.items():
            rid = f"cov-{who}-{name.strip('$')}"
            start = head(s)
            method, url, resource = CASES[name](ids)
            status = call(s, replace(ctx, request_id=rid), method, url, resource).status
            if rid not in {r.request_id for r in records(s, start)}:
                missing.append(f"{name} by {who} ({status})")
    assert missing == []


def test_break_the_glass_allowed_leaves_its_audit_event(fresh_services: Services) -> None:
    """The operator and the patient are refused ``$break-the-glass`` (above); the one caller it is
    for, a facility's signed-in clinician, is allowed, and the opening is recorded with its reason."""
    s = fresh_services
    b = create(s, {"resourceType": "Patient"})
    ids = {"b": b, "obs_b": create(s, observation(b))}
    method, url, resource = CASES["$break-the-glass"](ids)
    start = head(s)
    r = call(s, replace(CLINICIAN, request_id="cov-clinician-break-the-glass"), method, url, resource)
    assert r.status == 200, body(r)
    mine = [x for x in records(s, start) if x.request_id == "cov-clinician-break-the-glass"]
    assert mine and {x.patient for x in mine} == {b}
    glass = [x for x in mine if x.event.get("purposeOfEvent", [{}])[0].get("text") == "test"]
    assert len(glass) == 1 and glass[0].event["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
