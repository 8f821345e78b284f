"""Every route and operation the CapabilityStatement announces is covered by an authorization case
(THREATS.md AZ-06): a caller holding patient A's widest scopes aims each one at patient B's data and
must get a refusal (403 or 404) or an answer without B's data. A route or operation added later
without a case here fails ``test_every_announced_route_has_a_case``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services

OPEN = RequestContext.operator("test")
B_CCCD = {"system": "http://fhir.ehealth.gov.vn/core/sid/national_id", "value": "001085012345"}
Case = Callable[[dict[str, str]], tuple[str, str, Any]]  # ids → (method, url, body)


def _obs(patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


MATCH = {
    "resourceType": "Parameters",
    "parameter": [{"name": "resource", "resource": {"resourceType": "Patient", "identifier": [B_CCCD]}}],
}


def _pair(source: str, target: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}},
        ],
    }


GLASS = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "test"}]}

_COMMUNES = "https://fhir.ketnoi.vn/CodeSystem/vn-admin-unit-2025"
_LEGACY_MAP = "https://fhir.ketnoi.vn/ConceptMap/vn-admin-unit-legacy-to-2025"
CASES: dict[str, Case] = {
    # type-level and instance-level interactions, aimed at B
    "read": lambda i: ("GET", f"Observation/{i['obs_b']}", None),
    "vread": lambda i: ("GET", f"Observation/{i['obs_b']}/_history/1", None),
    "update": lambda i: ("PUT", f"Observation/{i['obs_b']}", {**_obs(i["b"]), "id": i["obs_b"]}),
    "patch": lambda i: ("PATCH", f"Observation/{i['obs_b']}", {"resourceType": "Parameters", "parameter": []}),
    "delete": lambda i: ("DELETE", f"Observation/{i['obs_b']}", None),
    "history-instance": lambda i: ("GET", f"Observation/{i['obs_b']}/_history", None),
    "history-type": lambda i: ("GET", "Observation/_history", None),
    "create": lambda i: ("POST", "Observation", _obs(i["b"])),
    "search-type": lambda i: ("GET", f"Observation?subject=Patient/{i['b']}", None),
    # system-level interactions
    "transaction": lambda i: (
        "POST",
        "",
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "GET", "url": f"Observation/{i['obs_b']}"}}],
        },
    ),
    "batch": lambda i: (
        "POST",
        "",
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"request": {"method": "GET", "url": f"Observation/{i['obs_b']}"}}],
        },
    ),
    "search-system": lambda i: ("GET", f"?_id={i['obs_b']}", None),
    "history-system": lambda i: ("GET", "_history", None),
    # operations
    "$everything": lambda i: ("GET", f"Patient/{i['b']}/$everything", None),  # 404, like a missing Patient
    "$validate": lambda i: ("POST", f"Observation/{i['obs_b']}/$validate", None),  # validates the stored one
    "$reindex": lambda i: ("POST", "$reindex", None),
    "$reindex-status": lambda i: ("GET", "$reindex-status?job=1", None),
    "$import": lambda i: ("POST", "$import", {"resourceType": "Parameters", "parameter": []}),
    "$import-status": lambda i: ("GET", "$import-status?job=1", None),
    "$import-errors": lambda i: ("GET", "$import-errors?job=1", None),
    # 400 without Prefer: respond-async; what an export holds for each caller: tests/operations/test_bulk_export.py
    "$export": lambda i: ("GET", "Patient/$export?_type=Observation&_since=2000-01-01", None),
    "$export-status": lambda i: ("GET", "$export-status?job=1", None),  # nobody's job here: 404
    "$export-file": lambda i: ("GET", "$export-file?job=1&file=Observation.ndjson", None),
    "$import-xml130": lambda i: ("POST", "$import-xml130", {"resourceType": "Parameters", "parameter": []}),
    "$export-xml130": lambda i: ("GET", "$export-xml130?start=1900-01-01&end=2100-12-31", None),  # test_export.py
    "$break-the-glass": lambda i: ("POST", f"Patient/{i['b']}/$break-the-glass", GLASS),  # a facility user's only
    "$match": lambda i: ("POST", "Patient/$match", MATCH),  # B's CCCD: shown only to who may read B
    "$merge": lambda i: ("POST", "Patient/$merge", _pair(i["b"], i["a"])),  # B's Observation would move
    "$unmerge": lambda i: ("POST", "Patient/$unmerge", _pair(i["b"], i["a"])),  # nothing merged: 404
    # terminology: shared code systems, nobody's data (docs/terminology.md)
    "$expand": lambda i: ("GET", f"ValueSet/$expand?url={_COMMUNES}?vs&count=1", None),
    "$lookup": lambda i: ("GET", f"CodeSystem/$lookup?system={_COMMUNES}&code=01", None),
    "$validate-code": lambda i: ("GET", f"CodeSystem/$validate-code?url={_COMMUNES}&code=01", None),
    "$subsumes": lambda i: ("GET", f"CodeSystem/$subsumes?system={_COMMUNES}&codeA=01&codeB=00004", None),
    "$translate": lambda i: ("GET", f"ConceptMap/$translate?url={_LEGACY_MAP}&code=01", None),
    # Subscriptions: the operator's subscription to B's Observations (the ids fixture), with B's event
    "$status": lambda i: ("GET", "Subscription/sub-b/$status", None),
    "$events": lambda i: ("GET", "Subscription/sub-b/$events?content=full-resource", None),
    "$get-ws-binding-token": lambda i: ("POST", "Subscription/sub-b/$get-ws-binding-token", None),
}


def _call(services: Services, ctx: RequestContext, method: str, url: str, body: Any) -> FhirResponse:
    path, _, qs = url.partition("?")
    query = [tuple(p.split("=", 1)) for p in qs.split("&") if p]
    headers = {"content-type": "application/fhir+json", "prefer": "respond-async", "accept": "application/fhir+json"}
    return handle(services, FhirRequest(method, path, query, headers, body, "http://x/fhir", ctx))  # type: ignore[arg-type]


def _answer(services: Services, ctx: RequestContext, r: FhirResponse) -> tuple[int, bytes]:
    """The status and every byte the caller gets: for an accepted ``$export``, its files as well (the job
    is run to its end and each file of the manifest downloaded), so the leak checks cover them."""
    text = orjson.dumps(r.resource) if r.resource is not None else (r.raw or b"")
    location = r.headers.get("Content-Location", "")
    if r.status != 202 or "$export-status" not in location:
        return r.status, text
    status_url = location.split("/fhir/", 1)[1]
    deadline = time.monotonic() + 30
    while (done := _call(services, ctx, "GET", status_url, None)).status == 202:
        assert time.monotonic() < deadline, "export did not finish"
        time.sleep(0.05)
    assert done.status == 200 and done.resource is not None, done.resource
    for item in done.resource["output"]:
        got = _call(services, ctx, "GET", item["url"].split("/fhir/", 1)[1], None)
        text += got.raw or b"".join(got.stream or ())  # an export file is streamed
    return 200, text


def _announced(services: Services) -> set[str]:
    rest = handle(services, FhirRequest("GET", "metadata")).resource["rest"][0]  # type: ignore[index]
    names = {i["code"] for res in rest["resource"] for i in res.get("interaction", [])}
    names |= {i["code"] for i in rest.get("interaction", [])}
    names |= {"$" + o["name"] for o in rest.get("operation", [])}
    names |= {"$" + o["name"] for res in rest["resource"] for o in res.get("operation", [])}
    return names


def test_every_announced_route_has_a_case(services: Services) -> None:
    missing = _announced(services) - set(CASES)
    assert not missing, f"routes or operations without an authorization case: {sorted(missing)}"


@pytest.fixture
def ids(fresh_services: Services) -> dict[str, str]:
    def create(resource: dict[str, Any]) -> str:
        r = _call(fresh_services, OPEN, "POST", resource["resourceType"], resource)
        assert r.status == 201
        return str(orjson.loads(r.raw or b"{}")["id"] if r.resource is None else r.resource["id"])

    a = create({"resourceType": "Patient"})
    b = create({"resourceType": "Patient", "identifier": [B_CCCD]})
    subscription = {"resourceType": "Subscription", "id": "sub-b", "status": "active", "reason": "B's results",
                    "criteria": f"Observation?subject=Patient/{b}", "channel": {"type": "websocket"}}  # fmt: skip
    assert _call(fresh_services, OPEN, "PUT", "Subscription/sub-b", subscription).status == 201
    return {"a": a, "b": b, "obs_a": create(_obs(a)), "obs_b": create(_obs(b))}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_patient_token_cannot_reach_another_patient(fresh_services: Services, ids: dict[str, str], name: str) -> None:
    ctx = RequestContext(
        authenticated=True, scopes=parse_scopes("patient/*.cruds"), patient=ids["a"], roles=frozenset({"patient"})
    )
    before = _call(fresh_services, OPEN, "GET", f"Observation/{ids['obs_b']}", None).raw
    method, url, body = CASES[name](ids)
    status, text = _answer(fresh_services, ctx, _call(fresh_services, ctx, method, url, body))
    if status not in (403, 404):
        assert status == 200, (name, status, text[:300])
        # B's resources never appear (an error naming the id the caller asked for reveals nothing).
        leaked = (f'"id":"{ids["obs_b"]}"', f'"id":"{ids["b"]}"', f"Patient/{ids['b']}")
        assert not [x for x in leaked if x.encode() in text], (name, text[:300])
    after = _call(fresh_services, OPEN, "GET", f"Observation/{ids['obs_b']}", None).raw
    assert after == before, name  # B's data is unchanged, whatever the answer


def test_a_patient_token_cannot_break_the_glass(fresh_services: Services, ids: dict[str, str]) -> None:
    """Break-the-glass opens a record to a facility's signed-in user: a patient is refused outright."""
    ctx = RequestContext(
        authenticated=True,
        user="bn-a",
        scopes=parse_scopes("patient/*.cruds"),
        patient=ids["a"],
        roles=frozenset({"patient"}),
    )
    for patient in (ids["b"], ids["a"]):  # another patient's record, and even their own
        method, url, body = CASES["$break-the-glass"]({**ids, "b": patient})
        r = _call(fresh_services, ctx, method, url, body)
        assert r.status == 403, (patient, r.status, r.resource)
        issue = r.resource["issue"][0] if r.resource is not None else {}
        assert issue.get("code") == "forbidden" and "Break-the-glass" in issue.get("diagnostics", ""), issue


FACILITY_CALLERS = {
    "clinician": RequestContext(
        authenticated=True,
        user="bs-f1",
        scopes=parse_scopes("user/*.cruds"),
        organization="Organization/F1",
        roles=frozenset({"clinician"}),
    ),
    "provincial": RequestContext(
        authenticated=True,
        user="ql-p1",
        scopes=parse_scopes("user/*.cruds"),
        organization="Organization/P1",
        roles=frozenset({"provincial"}),
    ),
    "backend": RequestContext(
        authenticated=True, client_id="his-f1", scopes=parse_scopes("system/*.cruds"), organization="Organization/F1"
    ),
}


@pytest.mark.parametrize("caller", sorted(FACILITY_CALLERS))
@pytest.mark.parametrize("name", sorted(set(CASES) - {"$break-the-glass"}))
def test_a_facility_or_province_without_a_relation_cannot_reach_the_patient(
    fresh_services: Services, ids: dict[str, str], name: str, caller: str
) -> None:
    """The same matrix for a clinician of facility F1, a provincial manager and F1's backend
    system, with wide scopes and no care relation with B, whose data no facility owns (AZ-06 at
    the facility and region levels, ADR 0017). Break-the-glass is left out: opening B's record,
    audited, is what it is for (test_reach.py)."""
    ctx = FACILITY_CALLERS[caller]
    before = _call(fresh_services, OPEN, "GET", f"Observation/{ids['obs_b']}", None).raw
    method, url, body = CASES[name](ids)
    status, text = _answer(fresh_services, ctx, _call(fresh_services, ctx, method, url, body))
    if status not in (403, 404):
        assert status in (200, 201, 400), (name, status, text[:300])  # 400: $import of nothing, allowed
        leaked = (f'"id":"{ids["obs_b"]}"', f'"id":"{ids["b"]}"')
        assert not [x for x in leaked if x.encode() in text], (name, text[:300])
    after = _call(fresh_services, OPEN, "GET", f"Observation/{ids['obs_b']}", None).raw
    assert after == before, name
