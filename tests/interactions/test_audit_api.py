"""The audit log through the API (THREATS.md AUD-02, the API half; ADR 0015), on both backends.

Nobody writes AuditEvents through the API, whatever their role and however they ask (plain,
conditional, in a Bundle): 403/405, recorded as refused attempts, the log otherwise unchanged.
Administrators read every record, a patient only their own (another patient's are not found),
anyone else nothing; every reading of the log is itself recorded. A patient's view says who
accessed their record, when, from which facility and why, break-the-glass included.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from typing import Any

import httpx
import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.services import Services
from ketnoi.validation.structure import validate
from tests.interactions.audit_helpers import (
    CLINICIAN,
    OPEN,
    as_,
    body,
    call,
    create,
    head,
    observation,
    patient_ctx,
    records,
)

ADMIN = RequestContext(
    authenticated=True,
    user="root",
    roles=frozenset({"admin"}),
    client_id="console",
    scopes=parse_scopes("user/*.cruds"),
)
BACKEND = RequestContext(authenticated=True, client_id="lis-f1", scopes=parse_scopes("system/*.cruds"))
PATCH = [{"op": "replace", "path": "/outcome", "value": "0"}]


def _entries(r: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = body(r).get("entry", [])
    return [e["resource"] for e in found]


def _patients(event: dict[str, Any]) -> set[str]:
    return {e["what"]["reference"] for e in event.get("entity", []) if e.get("role", {}).get("code") == "1"}


@pytest.fixture
def world(fresh_services: Services) -> dict[str, Any]:
    s = fresh_services
    a, b = create(s, {"resourceType": "Patient"}), create(s, {"resourceType": "Patient"})
    obs_a, obs_b = create(s, observation(a)), create(s, observation(b))
    assert call(s, as_(CLINICIAN, "w0"), "GET", f"Observation/{obs_a}").status == 404  # no care relation yet
    for patient in (a, b):  # the clinician's facility treats both (ADR 0017: reach by organization)
        create(s, _encounter(patient), replace(OPEN, organization=CLINICIAN.organization))
    assert call(s, as_(CLINICIAN, "w1"), "GET", f"Observation/{obs_a}").status == 200
    btg = as_(CLINICIAN, "w2", purpose_of_use="ETREAT")  # break-the-glass
    assert call(s, btg, "GET", f"Patient/{a}").status == 200
    assert call(s, as_(CLINICIAN, "w3"), "GET", f"Observation/{obs_b}").status == 200
    log = records(s)
    return {"s": s, "a": a, "b": b, "obs_a": obs_a, "seq_a": _seq(log, "w1"), "seq_b": _seq(log, "w3")}


def _encounter(patient: str) -> dict[str, Any]:
    """A current ambulatory Encounter of ``patient``: a care relation with whoever it is written for."""
    return {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": date.today().isoformat()},
    }


def _seq(log: list[Any], request_id: str) -> int:
    return int(next(r.seq for r in log if r.request_id == request_id))


def _attempts(w: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    a, seq = w["a"], w["seq_a"]
    event = {"resourceType": "AuditEvent", **{k: v for k, v in records(w["s"])[0].event.items() if k != "text"}}
    json_patch = "application/json-patch+json"
    fhir = "application/fhir+json"

    def bundle(kind: str, method: str, url: str, resource: Any = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"request": {"method": method, "url": url}}
        if resource is not None:
            entry["resource"] = resource
        return {"resourceType": "Bundle", "type": kind, "entry": [entry]}

    return [
        ("POST", "AuditEvent", event, fhir),
        ("PUT", f"AuditEvent/{seq}", {**event, "id": str(seq)}, fhir),
        ("PATCH", f"AuditEvent/{seq}", PATCH, json_patch),
        ("DELETE", f"AuditEvent/{seq}", None, fhir),
        ("PUT", f"AuditEvent?patient={a}", event, fhir),
        ("PATCH", f"AuditEvent?patient={a}", PATCH, json_patch),
        ("DELETE", f"AuditEvent?patient={a}", None, fhir),
        ("POST", "", bundle("transaction", "POST", "AuditEvent", event), fhir),
        ("POST", "", bundle("transaction", "PUT", f"AuditEvent/{seq}", {**event, "id": str(seq)}), fhir),
        ("POST", "", bundle("batch", "DELETE", f"AuditEvent/{seq}"), fhir),
        ("POST", "", bundle("batch", "POST", "AuditEvent", event), fhir),
    ]


def test_nobody_writes_audit_events_through_the_api(world: dict[str, Any]) -> None:
    s = world["s"]
    roles = {
        "patient": patient_ctx(world["a"], "-"),
        "clinician": CLINICIAN,
        "admin": ADMIN,
        "backend": BACKEND,
        "operator": OPEN,
    }
    before = records(s)
    asked: set[str] = set()
    for role, ctx in roles.items():
        for n, (method, url, resource, ctype) in enumerate(_attempts(world)):
            rid = f"aud02-{role}-{n}"
            asked.add(rid)
            r = call(s, replace(ctx, request_id=rid), method, url, resource, ctype)
            statuses = [r.status]
            if body(r).get("type") == "batch-response":
                statuses = [int(e["response"]["status"].split()[0]) for e in body(r)["entry"]]
            assert set(statuses) <= {403, 405}, (role, method, url, statuses, body(r))
    after = records(s)
    assert after[: len(before)] == before  # nothing changed, nothing removed
    added = after[len(before) :]
    assert {r.request_id for r in added} == asked  # every attempt recorded
    for record in added:  # ... as refused, but for the batch Bundles that carried the refused entries
        assert record.event["outcome"] == "4" or record.subtype == "batch", record.key()
    assert body(call(s, OPEN, "GET", "?_type=AuditEvent"))["total"] == 0  # none in the resource tables


def test_a_patient_reads_only_their_own_audit_events(world: dict[str, Any]) -> None:
    s, a, b = world["s"], world["a"], world["b"]
    mine = call(s, patient_ctx(a, "pa1", "patient/*.rs"), "GET", "AuditEvent")
    assert mine.status == 200
    events = _entries(mine)
    assert events and all(_patients(e) == {f"Patient/{a}"} for e in events)
    assert str(world["seq_a"]) in {e["id"] for e in events}
    assert _entries(call(s, patient_ctx(a, "pa2", "patient/AuditEvent.rs"), "GET", f"AuditEvent?patient={b}")) == []
    assert _entries(call(s, patient_ctx(a, "pa3"), "GET", f"Patient/{b}/AuditEvent")) == []
    assert call(s, patient_ctx(a, "pa4"), "GET", f"AuditEvent/{world['seq_b']}").status == 404
    assert call(s, patient_ctx(a, "pa5"), "GET", f"AuditEvent/{world['seq_a']}").status == 200
    assert call(s, patient_ctx(a, "pa6", "patient/Observation.rs"), "GET", "AuditEvent").status == 403
    reads = {r.request_id: r for r in records(s) if (r.request_id or "").startswith("pa")}
    assert reads["pa1"].subtype == "search-type" and reads["pa1"].patient == a  # reading is recorded
    assert reads["pa4"].event["outcome"] == "4" and reads["pa6"].event["outcome"] == "4"


def test_administrators_read_all_and_others_nothing(world: dict[str, Any]) -> None:
    s = world["s"]
    total = head(s)
    assert call(s, as_(CLINICIAN, "c1"), "GET", "AuditEvent").status == 403
    assert call(s, as_(CLINICIAN, "c2"), "GET", f"AuditEvent/{world['seq_a']}").status == 403
    everything = _entries(call(s, replace(ADMIN, request_id="ad1"), "GET", f"AuditEvent?_count={total + 10}"))
    assert len(everything) >= total and [int(e["id"]) for e in everything] == sorted(int(e["id"]) for e in everything)
    assert call(s, replace(BACKEND, request_id="be1"), "GET", f"AuditEvent/{world['seq_b']}").status == 200
    logged = {r.request_id for r in records(s, total)}
    assert {"c1", "c2", "ad1", "be1"} <= logged
    # Paging by position in the log, both ways; dates.
    first = body(call(s, ADMIN, "GET", "AuditEvent?_count=2"))
    link = next(x["url"] for x in first["link"] if x["relation"] == "next")
    second = body(call(s, ADMIN, "GET", "AuditEvent?" + link.split("?", 1)[1]))
    ids = [int(e["resource"]["id"]) for e in [*first["entry"], *second["entry"]]]
    assert ids == sorted(ids) and len(set(ids)) == 4
    newest = _entries(call(s, ADMIN, "GET", "AuditEvent?_sort=-date&_count=3"))
    assert [int(e["id"]) for e in newest] == sorted((int(e["id"]) for e in newest), reverse=True)
    assert _entries(call(s, ADMIN, "GET", "AuditEvent?date=ge2999-01-01")) == []
    assert len(_entries(call(s, ADMIN, "GET", "AuditEvent?date=lt2999-01-01&_count=3"))) == 3
    assert call(s, ADMIN, "GET", "AuditEvent?agent=x").status == 400  # never silently unfiltered


def _agents(event: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The references and the identifier values of an event's agents."""
    who = [a.get("who", {}) for a in event.get("agent", [])]
    return {w["reference"] for w in who if "reference" in w}, {
        w["identifier"]["value"] for w in who if "identifier" in w
    }


def _all_pages(s: Services, url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while url:
        page = body(call(s, ADMIN, "GET", url))
        found += [e["resource"] for e in page.get("entry", [])]
        url = next(("AuditEvent?" + x["url"].split("?", 1)[1] for x in page["link"] if x["relation"] == "next"), "")
    return found


def test_administrators_search_by_agent_in_the_database(world: dict[str, Any]) -> None:
    s = world["s"]
    everything = _all_pages(s, "AuditEvent?_count=50")
    facility = [e for e in everything if "Organization/F1" in _agents(e)[0]]
    lan = [e for e in everything if "lan" in _agents(e)[1]]
    assert facility and lan and len(facility) < len(everything)

    # The facility the caller acted for (its PROV agent's who): R4's agent, a reference.
    by_facility = body(call(s, ADMIN, "GET", "AuditEvent?agent=Organization/F1&_count=50"))
    assert [e["resource"]["id"] for e in by_facility["entry"]] == [e["id"] for e in facility]
    assert by_facility["total"] == len(facility)  # one page: the total counts the matches only
    # Paged, each page is full of matches and the next link carries the filter (filtered in the query).
    paged = _all_pages(s, "AuditEvent?agent=Organization/F1&_count=2&_sort=-date")
    assert [e["id"] for e in paged] == [e["id"] for e in reversed(facility)]
    first = body(call(s, ADMIN, "GET", "AuditEvent?agent=Organization/F1&_count=2"))
    assert len(first["entry"]) == 2 and "total" not in first
    assert "agent=Organization%2FF1" in next(x["url"] for x in first["link"] if x["relation"] == "next")

    # The user: their account name (or the client's id), any system or the one named; comma: either.
    for url in (
        "AuditEvent?agent:identifier=lan",
        "AuditEvent?agent:identifier=https://fhir.ketnoi.vn/sid/user|lan",
        "AuditEvent?agent=Practitioner/dr-lan",
    ):
        assert [e["id"] for e in _all_pages(s, url + "&_count=50")] == [e["id"] for e in lan], url
    assert _entries(call(s, ADMIN, "GET", "AuditEvent?agent:identifier=https://other.example|lan")) == []
    assert body(call(s, ADMIN, "GET", "AuditEvent?agent:identifier=nobody"))["total"] == 0
    either = _all_pages(s, "AuditEvent?agent:identifier=nobody,emr-f1&_count=50")
    assert {e["id"] for e in either} == {e["id"] for e in everything if "emr-f1" in _agents(e)[1]}
    # Repeated: both must hold; with the patient and dates as before.
    both = _entries(
        call(s, ADMIN, "GET", f"AuditEvent?agent=Organization/F1&agent:identifier=lan&patient={world['a']}")
    )
    assert both and all(_patients(e) == {f"Patient/{world['a']}"} and "lan" in _agents(e)[1] for e in both)
    assert str(world["seq_a"]) in {e["id"] for e in both}
    # A patient's own search narrowed by agent stays their own.
    mine = _entries(call(s, patient_ctx(world["a"], "pg1"), "GET", "AuditEvent?agent:identifier=lan"))
    assert mine and all(_patients(e) == {f"Patient/{world['a']}"} for e in mine)
    # Bad input: the reason, in both languages, never a wider answer.
    for url in (
        "AuditEvent?agent=dr-lan",
        "AuditEvent?agent:identifier=sys|",
        "AuditEvent?agent=",
        "AuditEvent?agent=a,,b",
    ):
        refused = call(s, ADMIN, "GET", url)
        assert refused.status == 400, url
        assert body(refused)["resourceType"] == "OperationOutcome"


def test_a_patients_view_shows_who_where_when_and_why(world: dict[str, Any]) -> None:
    s, a = world["s"], world["a"]
    events = _entries(call(s, patient_ctx(a, "pv1"), "GET", f"AuditEvent?patient={a}&_sort=-date"))
    glass = [e for e in events if e.get("purposeOfEvent", [{}])[0].get("coding", [{}])[0].get("code") == "ETREAT"]
    assert len(glass) == 1
    event = glass[0]
    agents = {x["type"]["coding"][0]["code"]: x for x in event["agent"]}
    assert agents["IRCP"]["who"]["reference"] == "Practitioner/dr-lan"
    assert agents["PROV"]["who"]["reference"] == "Organization/F1"
    assert event["recorded"] and event["entity"][0]["what"]["reference"].startswith(f"Patient/{a}")
    div = event["text"]["div"]
    assert "đã xem" in div and "ETREAT" in div and "Organization/F1" in div and " read " in div
    assert [i for i in validate(event, strict=True) if i.severity in ("error", "fatal")] == []  # valid R4, as served


def test_the_capability_statement_offers_audit_events_read_only(fresh_services: Services) -> None:
    statement = body(call(fresh_services, OPEN, "GET", "metadata"))
    audit = next(r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert {i["code"] for i in audit["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in audit["searchParam"]} == {"patient", "date", "agent"}


def test_over_http_the_request_id_and_address_are_recorded(client: httpx.Client, services: Services) -> None:
    rid = f"http-{uuid.uuid4().hex[:12]}"
    start = head(services)
    r = client.get("/Patient?_count=1", headers={"X-Request-Id": rid})
    assert r.status_code == 200 and r.headers["X-Request-Id"] == rid
    mine = [x for x in records(services, start) if x.request_id == rid]
    assert mine and all(x.agent("110153")["network"]["address"] == "127.0.0.1" for x in mine)  # type: ignore[index]
    refused = client.post("/AuditEvent", json={"resourceType": "AuditEvent"}, headers={"X-Request-Id": rid + "w"})
    assert refused.status_code == 405 and "server only" in refused.text
    assert client.get("/AuditEvent?_count=1").status_code == 200  # --auth off on loopback: not scope-limited
