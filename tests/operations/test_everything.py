"""``Patient/[id]/$everything`` over HTTP with ``--auth on``, on both backends: the whole record,
nothing of another patient's (a canary planted in patient B's data never shows), ``_type``,
``_since``, paging, the patient-token rules (404 like a missing Patient) and the audit trail."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ketnoi.auth.keys import KeyRing
from ketnoi.auth.tokens import issue_access_token
from ketnoi.interactions.services import Services
from ketnoi.security.keystore import KeyStore
from ketnoi.security.urls import fhir_base, issuer_for
from tests.conftest import LiveServer

CANARY = "CANARY-b7f3"


@dataclass
class World:
    http: httpx.Client
    ring: KeyRing
    audience: str
    a: str  # patient A
    b: str  # patient B, whose data carries the canary
    a_ids: set[str]  # "Type/id" of every resource in A's compartment, A included
    shared: set[str]  # the directory resources A's record references
    updated: str  # one of A's Observations, updated last
    since: str  # its meta.lastUpdated

    def token(self, scope: str, patient: str | None = None) -> dict[str, str]:
        extra = {"patient": patient} if patient else None
        token = issue_access_token(
            self.ring, issuer=issuer_for(self.audience), audience=self.audience, subject="u", client_id="app",
            scope=scope, lifetime=300, now=time.time(), extra=extra,
        )  # fmt: skip
        return {"Authorization": f"Bearer {token}"}


def _obs(patient: str, text: str, performer: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": text},
        "subject": {"reference": f"Patient/{patient}"},
    }
    if performer:
        obs["performer"] = [{"reference": performer}]
    return obs


@pytest.fixture
def world(fresh_services: Services) -> Iterator[World]:
    from ketnoi.api.routes import create_app

    services = fresh_services
    services.settings = services.settings.with_(auth="on")
    audience = fhir_base(services.settings)
    ring = KeyStore(services.store).ring(time.time())
    with LiveServer(create_app(services)) as live, httpx.Client(base_url=live.base, timeout=60) as http:
        w = World(http, ring, audience, "", "", set(), set(), "", "")
        admin = w.token("system/*.cruds")

        def post(resource: dict[str, Any]) -> str:
            r = http.post(f"/{resource['resourceType']}", json=resource, headers=admin)
            assert r.status_code == 201, r.text
            return f"{resource['resourceType']}/{r.json()['id']}"

        org = post({"resourceType": "Organization", "name": "Bệnh viện A"})
        doctor = post({"resourceType": "Practitioner", "name": [{"family": "Trần"}]})
        other_doctor = post({"resourceType": "Practitioner", "name": [{"family": CANARY}]})
        a = post({"resourceType": "Patient", "managingOrganization": {"reference": org}}).split("/")[1]
        b = post({"resourceType": "Patient", "name": [{"family": CANARY}]}).split("/")[1]
        mine = [post(_obs(a, f"mạch {i}", doctor)) for i in range(4)]
        mine.append(
            post({"resourceType": "Condition", "subject": {"reference": f"Patient/{a}"}, "code": {"text": "ho"}})
        )
        mine.append(
            post(
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"code": "AMB"},
                    "subject": {"reference": f"Patient/{a}"},
                    "serviceProvider": {"reference": org},
                }
            )
        )
        post(_obs(b, CANARY, other_doctor))
        post({"resourceType": "Condition", "subject": {"reference": f"Patient/{b}"}, "code": {"text": CANARY}})
        post(_obs(b, CANARY, doctor))
        time.sleep(0.05)
        updated = mine[0].split("/")[1]
        r = http.put(f"/Observation/{updated}", json={**_obs(a, "mạch 0b", doctor), "id": updated}, headers=admin)
        assert r.status_code == 200, r.text
        w.a, w.b, w.a_ids, w.shared = a, b, {f"Patient/{a}", *mine}, {org, doctor}
        w.updated, w.since = updated, r.json()["meta"]["lastUpdated"]
        yield w


def _keys(bundle: dict[str, Any], mode: str) -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    ]


def _all_pages(w: World, url: str, headers: dict[str, str]) -> tuple[list[str], set[str], int]:
    """(matches of every page in order, included resources, number of pages) following ``next``."""
    matches: list[str] = []
    included: set[str] = set()
    pages = 0
    while url:
        r = w.http.get(url.removeprefix(str(w.http.base_url)), headers=headers)
        assert r.status_code == 200, r.text
        assert CANARY not in r.text and w.b not in r.text
        bundle = r.json()
        assert bundle["type"] == "searchset"
        matches += _keys(bundle, "match")
        included |= set(_keys(bundle, "include"))
        pages += 1
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), "")
    return matches, included, pages


def test_a_clinician_gets_the_whole_record_and_nothing_of_another_patient(world: World) -> None:
    w = world
    for scope in ("user/*.rs", "system/*.rs"):
        r = w.http.get(f"/Patient/{w.a}/$everything", headers=w.token(scope))
        assert r.status_code == 200, r.text
        assert CANARY not in r.text and w.b not in r.text
        bundle = r.json()
        matches = _keys(bundle, "match")
        assert matches[0] == f"Patient/{w.a}"
        assert set(matches) == w.a_ids and len(matches) == len(w.a_ids)
        assert set(_keys(bundle, "include")) == w.shared
        assert bundle["total"] == len(w.a_ids)
    posted = w.http.post(
        f"/Patient/{w.a}/$everything",
        json={"resourceType": "Parameters", "parameter": [{"name": "_type", "valueCode": "Observation"}]},
        headers=w.token("user/*.rs"),
    )
    assert posted.status_code == 200, posted.text
    assert {k.split("/")[0] for k in _keys(posted.json(), "match")} == {"Observation"}
    assert w.http.get("/Patient/$everything", headers=w.token("user/*.rs")).status_code == 400  # name the patient


def test_paging_type_since_and_start_end(world: World) -> None:
    w = world
    headers = w.token("user/*.rs")
    matches, included, pages = _all_pages(w, f"/Patient/{w.a}/$everything?_count=2", headers)
    assert sorted(matches) == sorted(w.a_ids) and len(matches) == len(set(matches))  # each exactly once
    assert matches[0] == f"Patient/{w.a}" and pages == (len(w.a_ids) + 1) // 2
    assert included == w.shared
    matches, included, _ = _all_pages(w, f"/Patient/{w.a}/$everything?_type=Observation,Practitioner&_count=3", headers)
    assert sorted(matches) == sorted(k for k in w.a_ids if k.startswith("Observation/"))
    assert included == {k for k in w.shared if k.startswith("Practitioner/")}
    since = httpx.QueryParams({"_since": w.since})
    r = w.http.get(f"/Patient/{w.a}/$everything?{since}", headers=headers)
    assert _keys(r.json(), "match") == [f"Observation/{w.updated}"], r.text
    r = w.http.get(f"/Patient/{w.a}/$everything?start=2020-01-01&end=2030-01-01", headers=headers)
    assert r.status_code == 200 and set(_keys(r.json(), "match")) == w.a_ids
    assert "start and end" in r.text  # ignored, with a warning
    tampered = w.http.get(f"/Patient/{w.a}/$everything?_cursor=abc.def", headers=headers)
    assert tampered.status_code == 400
    assert w.http.get(f"/Patient/{w.a}/$everything?_type=Nonsense", headers=headers).status_code == 400


def test_a_patient_token_sees_its_own_record_only(world: World) -> None:
    w = world
    mine = w.token("patient/*.rs", w.a)
    own = w.http.get("/Patient/$everything", headers=mine)
    assert own.status_code == 200, own.text
    assert set(_keys(own.json(), "match")) == w.a_ids and set(_keys(own.json(), "include")) == w.shared
    same = w.http.get(f"/Patient/{w.a}/$everything", headers=mine)
    assert _keys(same.json(), "match") == _keys(own.json(), "match")
    # Another patient's record: 404, the very answer for a Patient that does not exist.
    other = w.http.get(f"/Patient/{w.b}/$everything", headers=mine)
    missing = w.http.get("/Patient/no-such-patient/$everything", headers=mine)
    assert other.status_code == missing.status_code == 404
    assert other.text.replace(w.b, "X") == missing.text.replace("no-such-patient", "X")
    assert CANARY not in other.text
    # Types without search permission are left out silently (no 403), directory data too.
    narrow = w.token("patient/Patient.rs patient/Observation.rs", w.a)
    r = w.http.get("/Patient/$everything", headers=narrow)
    assert r.status_code == 200, r.text
    assert {k.split("/")[0] for k in _keys(r.json(), "match")} == {"Patient", "Observation"}
    assert _keys(r.json(), "include") == []


def test_an_audit_event_per_patient(world: World) -> None:
    w = world
    admin = w.token("system/*.cruds")

    def log(patient: str) -> list[dict[str, Any]]:
        r = w.http.get("/AuditEvent", params={"patient": patient, "_count": "1000"}, headers=admin)
        assert r.status_code == 200, r.text
        return [e["resource"] for e in r.json().get("entry", []) if e["resource"]["resourceType"] == "AuditEvent"]

    before_a, before_b = len(log(w.a)), log(w.b)
    r = w.http.get(f"/Patient/{w.a}/$everything", headers=w.token("user/*.rs"))
    assert r.status_code == 200
    after_a = log(w.a)
    new = [e for e in after_a[before_a:] if "$everything" in str(e)]
    assert len(new) == 1, new
    assert not [e for e in log(w.b)[len(before_b) :] if "$everything" in str(e)]
