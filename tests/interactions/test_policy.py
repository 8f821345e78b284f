"""Scope enforcement at the one read/write path (SMART App Launch 2; THREATS.md AZ-01..AZ-10).

The core is driven in-process with a ``RequestContext`` carrying scopes, exactly what the HTTP edge
will make from a verified token: two patients A and B on a fresh database of each backend, and
callers with patient, user and system scopes. Every refused or filtered answer must be the same
whether or not B's data matches (no oracle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services

LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@dataclass
class World:
    services: Services
    a: str  # patient A (the caller's patient)
    b: str  # patient B (someone else)
    obs_a: str
    obs_b: str
    lab_a: str
    doctor: str  # a Practitioner both observations name as performer


def _call(services: Services, ctx: RequestContext, method: str, url: str, body: Any = None) -> FhirResponse:
    path, _, qs = url.partition("?")
    headers = {"content-type": "application/fhir+json"}
    request = FhirRequest(method, path, parse_qsl(qs, keep_blank_values=True), headers, body, "http://x/fhir", ctx)
    return handle(services, request)


OPEN = RequestContext.operator("test")


def _create(services: Services, resource: dict[str, Any]) -> str:
    r = _call(services, OPEN, "POST", resource["resourceType"], resource)
    assert r.status == 201, r.resource
    return str((r.resource or {}).get("id") or orjson_id(r))


def orjson_id(r: FhirResponse) -> str:
    import orjson

    return str(orjson.loads(r.raw or b"{}")["id"])


def _obs(patient: str, code: str, category: str, performer: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performer": [{"reference": f"Practitioner/{performer}"}],
        "effectiveDateTime": "2026-01-01",
    }


@pytest.fixture
def world(fresh_services: Services) -> World:
    s = fresh_services
    doctor = _create(s, {"resourceType": "Practitioner", "name": [{"family": "Lê"}]})
    a = _create(s, {"resourceType": "Patient", "name": [{"family": "An"}]})
    b = _create(s, {"resourceType": "Patient", "name": [{"family": "Bình"}]})
    obs_a = _create(s, _obs(a, "8867-4", "vital-signs", doctor))
    obs_b = _create(s, _obs(b, "8867-4", "vital-signs", doctor))
    lab_a = _create(s, _obs(a, "2093-3", "laboratory", doctor))
    return World(s, a, b, obs_a, obs_b, lab_a, doctor)


def _patient(w: World, scopes: str, patient: str | None = "A") -> RequestContext:
    pid = {"A": w.a, "B": w.b}.get(patient or "") if patient else None
    return RequestContext(authenticated=True, scopes=parse_scopes(scopes), patient=pid, roles=frozenset({"patient"}))


def _ids(r: FhirResponse) -> set[str]:
    assert r.status == 200, r.resource
    return {e["resource"]["id"] for e in (r.resource or {}).get("entry", []) if e["search"]["mode"] != "outcome"}


def _body(r: FhirResponse) -> Any:
    import orjson

    return r.resource if r.resource is not None else orjson.loads(r.raw or b"null")


# ---- AZ-01: direct reads of another patient's data look exactly like nothing there ---------------


def test_reads_outside_the_compartment_are_404_like_nothing_at_all(world: World) -> None:
    ctx = _patient(world, "patient/*.rs")
    s = world.services
    assert _call(s, ctx, "GET", f"Observation/{world.obs_a}").status == 200
    gone = _call(s, OPEN, "POST", "Observation", _obs(world.b, "1-1", "vital-signs", world.doctor))
    deleted = orjson_id(gone)
    _call(s, OPEN, "DELETE", f"Observation/{deleted}")
    answers = [
        _call(s, ctx, "GET", f"Observation/{world.obs_b}"),
        _call(s, ctx, "GET", f"Observation/{world.obs_b}/_history/1"),
        _call(s, ctx, "GET", f"Observation/{deleted}"),
        _call(s, ctx, "GET", "Observation/does-not-exist"),
        _call(s, ctx, "GET", f"Patient/{world.b}"),
    ]
    assert [r.status for r in answers] == [404] * 5
    assert {_body(r)["issue"][0]["code"] for r in answers} == {"not-found"}


# ---- AZ-02: searches see only the patient's data, totals included ----------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "patient={b}",
        "subject=Patient/{b}",
        "_id={obs_b}",
        "code=http://loinc.org|8867-4",
        "performer=Practitioner/{doctor}",
    ],
)
def test_searches_are_confined_to_the_patient(world: World, query: str) -> None:
    ctx = _patient(world, "patient/Observation.rs")
    url = "Observation?" + query.format(b=world.b, obs_b=world.obs_b, doctor=world.doctor)
    found = _ids(_call(world.services, ctx, "GET", url))
    assert found <= {world.obs_a, world.lab_a}
    assert world.obs_b not in found
    total = _body(_call(world.services, ctx, "GET", url + "&_summary=count"))["total"]
    assert total == len(found)


# ---- AZ-03: includes leave out what is out of bounds, keep what is allowed ------------------------


def test_includes_filter_other_patients_but_keep_shared_types(world: World) -> None:
    ctx = _patient(world, "patient/*.rs")
    r = _call(world.services, ctx, "GET", f"Observation?_id={world.obs_a}&_include=*")
    ids = _ids(r)
    assert {world.obs_a, world.a, world.doctor} <= ids  # own patient, shared Practitioner
    rev = _call(world.services, ctx, "GET", f"Practitioner?_id={world.doctor}&_revinclude=Observation:performer")
    assert world.obs_b not in _ids(rev) and world.obs_a in _ids(rev)


# ---- AZ-04: chains and _has answer the same whether or not B's data matches -----------------------


def test_chains_and_has_are_no_oracle(world: World) -> None:
    ctx = _patient(world, "patient/*.rs")
    s = world.services
    probes = [
        "Observation?subject:Patient.name=Bình",
        "Observation?subject:Patient.name=Nobody",
        f"Patient?_has:Observation:patient:_id={world.obs_b}",
        "Patient?_has:Observation:patient:code=http://loinc.org|does-not-exist",
    ]
    answers = [_body(_call(s, ctx, "GET", p)) for p in probes]
    assert [len(a.get("entry", [])) for a in answers] == [0, 0, 0, 0]


# ---- AZ-05: history ----------------------------------------------------------------------------------


def test_history_is_the_patients_own_or_refused(world: World) -> None:
    ctx = _patient(world, "patient/*.rs")
    s = world.services
    assert _call(s, ctx, "GET", "_history").status == 403
    assert _call(s, ctx, "GET", "Observation/_history").status == 403
    assert _call(s, ctx, "GET", f"Observation/{world.obs_b}/_history").status == 404
    # A resource moved from B to A: A sees its own version, not the one that was B's.
    moved = {**_obs(world.b, "1-2", "vital-signs", world.doctor)}
    mid = orjson_id(_call(s, OPEN, "POST", "Observation", moved))
    _call(s, OPEN, "PUT", f"Observation/{mid}", {**moved, "id": mid, "subject": {"reference": f"Patient/{world.a}"}})
    versions = _body(_call(s, ctx, "GET", f"Observation/{mid}/_history"))["entry"]
    assert [e["resource"]["meta"]["versionId"] for e in versions] == ["2"]
    assert _call(s, ctx, "GET", f"Observation/{mid}/_history/1").status == 404


# ---- AZ-08: writes ------------------------------------------------------------------------------------


def test_patient_writes_stay_in_the_compartment(world: World) -> None:
    ctx = _patient(world, "patient/Observation.cruds")
    s = world.services
    assert _call(s, ctx, "POST", "Observation", _obs(world.a, "1-3", "vital-signs", world.doctor)).status == 201
    assert _call(s, ctx, "POST", "Observation", _obs(world.b, "1-3", "vital-signs", world.doctor)).status == 403
    own = _call(s, OPEN, "GET", f"Observation/{world.obs_a}")
    moved = {**_body(own), "subject": {"reference": f"Patient/{world.b}"}}
    assert _call(s, ctx, "PUT", f"Observation/{world.obs_a}", moved).status == 403
    theirs = {**_obs(world.b, "8867-4", "vital-signs", world.doctor), "id": world.obs_b}
    assert _call(s, ctx, "PUT", f"Observation/{world.obs_b}", theirs).status == 404
    assert _call(s, ctx, "DELETE", f"Observation/{world.obs_b}").status == 404
    before = _call(s, OPEN, "GET", f"Observation/{world.obs_b}")
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _obs(world.a, "1-4", "vital-signs", world.doctor),
                "request": {"method": "POST", "url": "Observation"},
            },
            {"request": {"method": "DELETE", "url": f"Observation/{world.obs_b}"}},
        ],
    }
    assert _call(s, ctx, "POST", "", tx).status == 404  # the whole transaction fails...
    after = _call(s, OPEN, "GET", f"Observation/{world.obs_b}")
    assert _body(after) == _body(before)  # ...and B's observation is untouched
    assert _call(s, ctx, "DELETE", f"Observation?_id={world.obs_b}").status == 200  # nothing matched
    assert _call(s, OPEN, "GET", f"Observation/{world.obs_b}").status == 200


# ---- AZ-09: scope grammar --------------------------------------------------------------------------------


def test_write_scope_does_not_read_and_bad_scopes_grant_nothing(world: World) -> None:
    s = world.services
    create_only = _patient(world, "patient/Observation.c")
    assert _call(s, create_only, "GET", f"Observation/{world.obs_a}").status == 403
    assert _call(s, create_only, "GET", "Observation").status == 403
    dus = _patient(world, "patient/Observation.dus")  # out of order: invalid, grants nothing
    assert _call(s, dus, "DELETE", f"Observation/{world.obs_a}").status == 403
    other_type = _patient(world, "patient/Condition.rs")
    with_data = _call(s, other_type, "GET", "Observation")
    without_data = _call(s, other_type, "GET", "Encounter")
    assert (with_data.status, without_data.status) == (403, 403)
    assert _call(s, _patient(world, "patient/Observation.read"), "GET", "Observation").status == 200  # v1


def test_granular_scope_returns_only_its_category(world: World) -> None:
    ctx = _patient(world, "patient/Observation.rs?category=" + CATEGORY + "|laboratory")
    s = world.services
    assert _ids(_call(s, ctx, "GET", "Observation")) == {world.lab_a}
    assert _call(s, ctx, "GET", f"Observation/{world.lab_a}").status == 200
    assert _call(s, ctx, "GET", f"Observation/{world.obs_a}").status == 404


# ---- AZ-10: missing context fails closed -------------------------------------------------------------------


def test_patient_scope_without_a_patient_fails_closed(world: World) -> None:
    ctx = _patient(world, "patient/*.rs", patient=None)
    for url in ("Observation", f"Observation/{world.obs_a}", "Patient"):
        r = _call(world.services, ctx, "GET", url)
        assert r.status == 403, (url, r.status)
    empty = RequestContext(authenticated=True, scopes=parse_scopes(""))
    assert _call(world.services, empty, "GET", "Observation").status == 403
    unknown = RequestContext(authenticated=True, scopes=parse_scopes("nurse/Observation.rs"))
    assert _call(world.services, unknown, "GET", "Observation").status == 403


# ---- operations and wide scopes -------------------------------------------------------------------------


def test_operations_need_their_permission(world: World) -> None:
    s = world.services
    patient = _patient(world, "patient/*.cruds")
    clinician = RequestContext(authenticated=True, scopes=parse_scopes("user/*.cruds"), roles=frozenset({"clinician"}))
    admin = RequestContext(authenticated=True, scopes=parse_scopes("user/*.cruds"), roles=frozenset({"admin"}))
    system = RequestContext(authenticated=True, scopes=parse_scopes("system/*.cruds"), client_id="backend")
    for ctx in (patient, clinician):
        assert _call(s, ctx, "POST", "$reindex").status == 403
        assert _call(s, ctx, "GET", "$reindex-status?job=1").status == 403
    for ctx in (admin, system):
        assert _call(s, ctx, "GET", "$reindex-status?job=999999").status == 404  # allowed: no such job
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    assert _call(s, patient, "POST", "Observation/$validate", body).status == 200
    empty = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "general"}]}
    other = _patient(world, "patient/Condition.rs")
    assert _call(s, other, "POST", f"Observation/{world.obs_a}/$validate", empty).status == 403


def test_user_scopes_see_every_patient(world: World) -> None:
    ctx = RequestContext(authenticated=True, scopes=parse_scopes("user/Observation.rs"), roles=frozenset({"clinician"}))
    assert {world.obs_a, world.obs_b} <= _ids(_call(world.services, ctx, "GET", "Observation"))
    assert _call(world.services, ctx, "GET", f"Patient/{world.a}").status == 403
