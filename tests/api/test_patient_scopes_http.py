"""A patient's token over real HTTP (``--auth on``), on SQLite and PostgreSQL: it never sees or
changes another patient's data, and no answer depends on whether the other patient's data matches
(THREATS.md section 7: AZ-01..AZ-05 oracle checks, AZ-08 writes, AZ-09 scope grammar, AZ-10 fail
closed).

One server and one database per backend for the whole module: patient A (the token's) and patient
B, each with Observations, a Condition, an Encounter and a MedicationRequest, a shared Practitioner,
Organization and Medications, and data that links them (A's panel Observation has B's Observation as
a member; B's panel has A's). Every B resource carries the canary :data:`CANARY`. The oracle check
runs each probe twice, before and after B's data is changed to match it, and the answers must be the
same (status, the resources returned, ``Bundle.total``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ketnoi.app import build_services, open_store, stop_services
from ketnoi.auth.keys import KeyRing
from ketnoi.auth.tokens import issue_access_token
from ketnoi.config import Settings
from ketnoi.security.keystore import KeyStore
from ketnoi.security.urls import fhir_base, issuer_for
from tests.conftest import BACKENDS, LiveServer, throwaway_url

LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CANARY = "CanaryB"  # planted in every resource of patient B
TOGGLE = "99999-9"  # the code B's data takes while it "matches" the probes
MARKER = "77777-7"  # the code of every Observation A tries to write in the AZ-08 checks
NOPE = "does-not-exist-0"  # an id nobody has


@dataclass
class World:
    http: httpx.Client
    ring: KeyRing
    audience: str
    issuer: str
    ids: dict[str, str]  # A, B, doc, doc2, org, med, med2, A_vital, B_vital, ...
    b_ids: frozenset[str]  # every id of B's resources (B itself included)

    def token(self, scope: str = "patient/*.rs", patient: object = "A", **changes: Any) -> str:
        extra: dict[str, Any] = {}
        if patient is not None:
            extra["patient"] = self.ids[patient] if patient in ("A", "B") else patient
        args: dict[str, Any] = {
            "issuer": self.issuer, "audience": self.audience, "subject": "an", "client_id": "app",
            "scope": scope, "lifetime": 600, "now": time.time(), "extra": extra,
        }  # fmt: skip
        args.update(changes)
        return issue_access_token(self.ring, **args)

    @property
    def admin(self) -> str:
        return self.token("system/*.cruds", patient=None)

    def call(self, method: str, path: str, token: str, body: Any = None, **headers: str) -> httpx.Response:
        sent = {"Authorization": f"Bearer {token}", **headers}
        if body is not None:
            sent.setdefault("Content-Type", "application/fhir+json")
            return self.http.request(method, path, content=json.dumps(body).encode(), headers=sent)
        return self.http.request(method, path, headers=sent)

    def get(self, path: str, token: str) -> httpx.Response:
        return self.call("GET", path, token)

    def url(self, template: str, *, nobody: bool = False) -> str:
        """``template`` with the fixture's ids; ``nobody``: B's ids replaced by one nobody has."""
        ids = {k: NOPE if nobody and v in self.b_ids else v for k, v in self.ids.items()}
        return template.format(**ids, LOINC=LOINC, TOGGLE=TOGGLE, CANARY=CANARY, CATEGORY=CATEGORY)

    def stored(self, path: str) -> Any:
        """A resource as the administrator reads it (to prove a refused write changed nothing)."""
        r = self.get(path, self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    def markers(self) -> int:
        """How many Observations with the AZ-08 marker code exist (for the administrator)."""
        r = self.get(f"Observation?code={LOINC}|{MARKER}&_summary=count", self.admin)
        assert r.status_code == 200, r.text
        return int(r.json()["total"])


# ---- data ---------------------------------------------------------------------------------------


def _code(code: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code}]}


def _obs(patient: str, code: str, category: str = "vital-signs", **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": _code(code),
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-01-01",
        **more,
    }


def _ref(target: str) -> dict[str, str]:
    return {"reference": target}


def _canary(text: str = "") -> list[dict[str, str]]:
    return [{"text": f"{CANARY} {text}".strip()}]


def _populate(http: httpx.Client, admin: str) -> dict[str, str]:
    auth = {"Authorization": f"Bearer {admin}"}

    def post(resource: dict[str, Any]) -> str:
        r = http.post(f"/{resource['resourceType']}", json=resource, headers=auth)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    ids: dict[str, str] = {}
    ids["org"] = post({"resourceType": "Organization", "name": "Bệnh viện Bạch Mai"})
    ids["doc"] = post({"resourceType": "Practitioner", "name": [{"family": "Lê"}]})
    ids["doc2"] = post({"resourceType": "Practitioner", "name": [{"family": "Trần"}]})
    ids["med"] = post({"resourceType": "Medication", "code": {"text": "paracetamol"}})
    ids["med2"] = post({"resourceType": "Medication", "code": {"text": "insulin"}})
    for who, family, cccd in (("A", "An", "A-001"), ("B", f"{CANARY} Bình", "B-001")):
        ids[who] = post(
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:cccd", "value": cccd}],
                "name": [{"family": family}],
                "generalPractitioner": [_ref(f"Practitioner/{ids['doc']}")],
                "managingOrganization": _ref(f"Organization/{ids['org']}"),
            }
        )
    for who in ("A", "B"):
        p = ids[who]
        note: dict[str, Any] = {"note": _canary()} if who == "B" else {}
        ident = [{"system": "urn:obs", "value": f"{who}-vital"}]
        doc = [_ref(f"Practitioner/{ids['doc']}")]
        ids[f"{who}_vital"] = post(_obs(p, "8867-4", identifier=ident, performer=doc, **note))
        ids[f"{who}_lab"] = post(_obs(p, "2093-3", "laboratory", performer=doc, **note))
        ids[f"{who}_cond"] = post(
            {"resourceType": "Condition", "subject": _ref(f"Patient/{p}"), "code": _code("44054006"), **note}
        )
        ids[f"{who}_enc"] = post(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": _ref(f"Patient/{p}"),
                "participant": [{"individual": _ref(f"Practitioner/{ids['doc']}")}],
                "serviceProvider": _ref(f"Organization/{ids['org']}"),
                **({"reasonCode": _canary()} if who == "B" else {}),
            }
        )
        ids[f"{who}_medreq"] = post(
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationReference": _ref(f"Medication/{ids['med']}"),
                "subject": _ref(f"Patient/{p}"),
                "requester": _ref(f"Practitioner/{ids['doc']}"),
                **note,
            }
        )
    # B's Observation that A's panel names as a member (A's data pointing at B's)...
    ids["B_target"] = post(_b_target(ids, "1111-1", ids["doc"]))
    members = [_ref(f"Observation/{ids[k]}") for k in ("A_vital", "A_lab", "B_target")]
    ids["A_panel"] = post(_obs(ids["A"], "85353-1", hasMember=members))
    # ...and B's panel that names A's Observation (B's data pointing at A's).
    ids["B_panel"] = post(_obs(ids["B"], "85353-1", hasMember=[_ref(f"Observation/{ids['A_vital']}")], note=_canary()))
    # A deleted resource of each patient.
    for who in ("A", "B"):
        gone: dict[str, Any] = {"note": _canary()} if who == "B" else {}
        ids[f"{who}_deleted"] = post(_obs(ids[who], "1-1", **gone))
        assert http.delete(f"/Observation/{ids[f'{who}_deleted']}", headers=auth).status_code in (200, 204)
    return ids


def _b_target(ids: dict[str, str], code: str, performer: str) -> dict[str, Any]:
    return _obs(ids["B"], code, performer=[_ref(f"Practitioner/{performer}")], note=_canary("target"))


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from ketnoi.api.routes import create_app

    tmp: Path = tmp_path_factory.mktemp("patient_scopes")
    with throwaway_url(request.param, tmp, "ketnoi_scopes") as url:
        store = open_store(url)
        store.migrate()
        services = build_services(Settings(database=url), store)
        services.settings = services.settings.with_(auth="on")
        try:
            audience = fhir_base(services.settings)
            ring = KeyStore(services.store).ring(time.time())
            with LiveServer(create_app(services)) as live, httpx.Client(base_url=live.base, timeout=60) as http:
                w = World(http, ring, audience, issuer_for(audience), {}, frozenset())
                w.ids = _populate(http, w.admin)
                w.b_ids = frozenset(v for k, v in w.ids.items() if k == "B" or k.startswith("B_"))
                yield w
        finally:
            stop_services(services)
            store.close()


# ---- helpers ------------------------------------------------------------------------------------


def _entries(r: httpx.Response) -> list[dict[str, Any]]:
    return [e for e in r.json().get("entry", []) if e.get("search", {}).get("mode") != "outcome"]


def _ids(r: httpx.Response) -> set[str]:
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in _entries(r)}


def _answer(r: httpx.Response) -> tuple[Any, ...]:
    """What must not depend on B's data: status, the resources returned, the total, the issue codes."""
    body = r.json() if r.content else {}
    returned = tuple(sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in _entries(r)))
    issues = tuple(i.get("code") for i in body.get("issue", []))
    return r.status_code, returned, body.get("total"), issues


def _no_b(w: World, r: httpx.Response, what: str) -> None:
    """Nothing of B comes back: no B resource among the entries, no canary anywhere in them."""
    if r.status_code != 200 or not r.content:
        return
    entries = _entries(r)
    leaked = {e["resource"]["id"] for e in entries} & w.b_ids
    assert not leaked, (what, leaked)
    assert CANARY not in json.dumps(entries, ensure_ascii=False), what


def _forbidden(r: httpx.Response, what: str = "") -> None:
    """403 insufficient_scope as the policy answers it (SMART: a missing permission is 403)."""
    assert r.status_code == 403, (what, r.status_code, r.text[:300])
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and "entry" not in body
    assert body["issue"][0]["code"] == "forbidden"
    assert "insufficient_scope" in body["issue"][0]["diagnostics"]
    challenge = r.headers["WWW-Authenticate"]  # RFC 6750 section 3.1
    assert 'error="insufficient_scope"' in challenge, challenge


def _masked(r: httpx.Response, *ids: str) -> str:
    text = r.text
    for i in ids:
        text = text.replace(i, "<id>")
    return text


# ---- AZ-01: direct reads of B's data answer exactly like a resource that does not exist ------------

DIRECT = [
    "Patient/{id}",
    "Observation/{id}",
    "Patient/{id}/_history/1",
    "Observation/{id}/_history/1",
    "Patient/{id}/_history",
    "Observation/{id}/_history",
]


@pytest.mark.parametrize("scope", ["patient/*.rs", "patient/*.cruds"])
def test_reads_of_b_look_like_nothing_there(world: World, scope: str) -> None:
    token = world.token(scope)
    cases = [(path, "B" if path.startswith("Patient") else "B_vital") for path in DIRECT]
    cases += [("Observation/{id}", k) for k in ("B_lab", "B_target", "B_panel", "B_deleted")]
    cases += [("Observation/{id}/_history/2", "B_deleted"), ("Observation/{id}/_history", "B_deleted")]
    cases += [("Condition/{id}", "B_cond"), ("Encounter/{id}", "B_enc"), ("MedicationRequest/{id}", "B_medreq")]
    for template, key in cases:
        theirs = world.get(template.format(id=world.ids[key]), token)
        nothing = world.get(template.format(id=NOPE), token)
        assert theirs.status_code == nothing.status_code == 404, (template, key, theirs.text[:200])
        assert theirs.json()["issue"][0]["code"] == "not-found", theirs.text
        assert _masked(theirs, world.ids[key]) == _masked(nothing, NOPE), (template, key)
        skip = {"date", "x-request-id", "content-length"}
        assert {h for h in theirs.headers if h not in skip} == {h for h in nothing.headers if h not in skip}
        assert CANARY not in theirs.text
    # The same reads of A's own data work (the 404s above are the policy, not a broken fixture).
    for template in DIRECT:
        key = "A" if template.startswith("Patient") else "A_vital"
        assert world.get(template.format(id=world.ids[key]), token).status_code == 200, template
    assert world.get(f"Observation/{world.ids['A_deleted']}", token).status_code == 410  # A's own deletion


# ---- AZ-02..AZ-05: searches and history; no answer depends on B's data -----------------------------

PROBES = [
    "Observation",
    "Observation?code={LOINC}|{TOGGLE}",
    "Observation?subject=Patient/{B}",
    "Observation?patient={B}",
    "Observation?subject:Patient={B}",
    "Observation?patient=Patient/{B}&code={LOINC}|{TOGGLE}",
    "Observation?_id={B_vital}",
    "Observation?_id={B_target},{A_vital}",
    "Observation?subject.name=Toggle",
    "Observation?subject:Patient.name=Toggle",
    "Observation?subject:Patient.identifier=urn:cccd|B-001",
    "Observation?has-member.code={LOINC}|{TOGGLE}",  # A's panel names B's Observation
    "Observation?has-member:Observation.performer=Practitioner/{doc2}",
    "Observation?has-member.subject:Patient.name=Toggle",
    "Observation?_content={CANARY}",
    "Observation?_total=accurate",
    "Observation?_summary=count",
    "Observation?code={LOINC}|{TOGGLE}&_summary=count",
    "Observation?_count=1&_total=accurate",
    "Observation?_include=Observation:subject",
    "Observation?_include=*",
    "Observation?_include=Observation:has-member&_include:iterate=Observation:performer",
    "Observation?_include:iterate=Observation:has-member&_include:iterate=Observation:subject",
    "Observation?_revinclude=Observation:has-member",
    "Patient?_id={B}",
    "Patient?_id={A},{B}",
    "Patient?name=Toggle",
    "Patient?identifier=urn:cccd|B-001",
    "Patient?_has:Observation:subject:code={LOINC}|{TOGGLE}",
    "Patient?_has:Observation:patient:code={LOINC}|{TOGGLE}",
    "Patient?_has:Condition:subject:code={LOINC}|{TOGGLE}",
    "Patient?_revinclude=Observation:subject",
    "Patient?_revinclude=Observation:subject&_revinclude=Condition:subject&_revinclude=Encounter:subject",
    "Practitioner?_has:Observation:performer:code={LOINC}|{TOGGLE}",
    "Practitioner?_has:MedicationRequest:requester:subject=Patient/{B}",
    "Practitioner?_has:Encounter:practitioner:patient={B}",
    "Practitioner?_revinclude=Observation:performer",
    "Practitioner?_id={doc2}&_revinclude=MedicationRequest:requester&_revinclude=Encounter:participant",
    "Medication?_has:MedicationRequest:medication:patient={B}",
    "Medication?_has:MedicationRequest:medication:subject.name=Toggle",
    "Condition?code={LOINC}|{TOGGLE}",
    "Condition?_summary=count",
    "Condition?subject=Patient/{B}&_total=accurate",
    "Encounter?participant=Practitioner/{doc2}",
    "MedicationRequest?medication=Medication/{med2}",
    "MedicationRequest?_include=MedicationRequest:medication&_include=MedicationRequest:requester",
    "Patient/{B}/Observation",
    "Patient/{B}/Observation?code={LOINC}|{TOGGLE}&_total=accurate",
    "Patient/{B}/Condition",
    "Patient/{A}/Observation?code={LOINC}|{TOGGLE}",
    "?_type=Observation&code={LOINC}|{TOGGLE}",
    "?_content={CANARY}",
    "Observation/_history",
    "Patient/_history",
    "_history",
]


def _make_b_match(w: World) -> list[str]:
    """Change B's data so that every probe would find something of B (returns what was created)."""
    ids, admin = w.ids, w.admin
    patient = w.stored(f"Patient/{ids['B']}")
    patient["name"] = [{"family": f"{CANARY} Bình", "given": ["Toggle"]}]
    assert w.call("PUT", f"Patient/{ids['B']}", admin, patient).status_code == 200
    target = {**_b_target(ids, TOGGLE, ids["doc2"]), "id": ids["B_target"]}
    assert w.call("PUT", f"Observation/{ids['B_target']}", admin, target).status_code == 200
    subject = _ref(f"Patient/{ids['B']}")
    new = [
        _obs(ids["B"], TOGGLE, performer=[_ref(f"Practitioner/{ids['doc']}")], note=_canary()),
        {"resourceType": "Condition", "subject": subject, "code": _code(TOGGLE), "note": _canary()},
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationReference": _ref(f"Medication/{ids['med2']}"),
            "subject": subject,
            "requester": _ref(f"Practitioner/{ids['doc2']}"),
            "note": _canary(),
        },
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": subject,
            "participant": [{"individual": _ref(f"Practitioner/{ids['doc2']}")}],
            "reasonCode": _canary(),
        },
    ]
    created = []
    for resource in new:
        r = w.call("POST", resource["resourceType"], admin, resource)
        assert r.status_code == 201, r.text
        created.append(f"{resource['resourceType']}/{r.json()['id']}")
    return created


def _unmake_b_match(w: World, created: list[str]) -> None:
    ids, admin = w.ids, w.admin
    for path in created:
        assert w.call("DELETE", path, admin).status_code in (200, 204)
    patient = w.stored(f"Patient/{ids['B']}")
    patient["name"] = [{"family": f"{CANARY} Bình"}]
    assert w.call("PUT", f"Patient/{ids['B']}", admin, patient).status_code == 200
    target = {**_b_target(ids, "1111-1", ids["doc"]), "id": ids["B_target"]}
    assert w.call("PUT", f"Observation/{ids['B_target']}", admin, target).status_code == 200


def test_no_probe_depends_on_bs_data(world: World) -> None:
    """AZ-02/03/04/05: every way of naming B, chains, ``_has``, includes, totals, compartment search,
    history: nothing of B comes back, each answer is the same as when the query names a patient (or
    resource) that does not exist, and the same whether or not B's data matches."""
    token = world.token("patient/*.rs")
    urls = [world.url(p) for p in PROBES]
    before = {}
    unlike_nobody = []
    for template, url in zip(PROBES, urls, strict=True):
        r = world.get(url, token)
        _no_b(world, r, url)
        before[url] = _answer(r)
        nobody = world.url(template, nobody=True)
        if nobody != url and _answer(world.get(nobody, token)) != before[url]:
            unlike_nobody.append((url, before[url]))
    assert not unlike_nobody, unlike_nobody
    created = _make_b_match(world)
    try:
        # The admin sees B's matching data: the probes below would find it if they could.
        admin = world.admin
        assert _ids(world.get(world.url("Observation?has-member.code={LOINC}|{TOGGLE}"), admin)) == {
            world.ids["A_panel"]
        }
        by_performer = world.get(world.url("Practitioner?_has:Observation:performer:code={LOINC}|{TOGGLE}"), admin)
        assert _ids(by_performer) == {world.ids["doc"], world.ids["doc2"]}
        by_b = world.get(world.url("Medication?_has:MedicationRequest:medication:patient={B}"), admin)
        assert _ids(by_b) == {world.ids["med"], world.ids["med2"]}
        changed = []
        for url in urls:
            r = world.get(url, token)
            _no_b(world, r, url)
            if _answer(r) != before[url]:
                changed.append((url, before[url], _answer(r)))
        assert not changed, changed
    finally:
        _unmake_b_match(world, created)


def test_totals_count_only_as_data(world: World) -> None:
    token = world.token("patient/*.rs")
    mine = {world.ids[k] for k in ("A_vital", "A_lab", "A_panel")}
    assert _ids(world.get("Observation?_count=100", token)) == mine
    for probe in ("Observation?_count=1&_total=accurate", "Observation?_summary=count", "Patient/{A}/Observation"):
        r = world.get(world.url(probe), token)
        assert r.status_code == 200 and r.json()["total"] == len(mine), (probe, r.text[:300])
    assert world.get("Patient?_summary=count", token).json()["total"] == 1
    assert world.get("Condition?_summary=count", token).json()["total"] == 1
    # Paging: the next page holds A's data only, and the pages together are exactly A's.
    seen: set[str] = set()
    url: str | None = "Observation?_count=1"
    while url is not None:
        r = world.http.get(url, headers={"Authorization": f"Bearer {token}"})
        seen |= _ids(r)
        url = next((link["url"] for link in r.json()["link"] if link["relation"] == "next"), None)
    assert seen == mine


def test_history_is_refused_or_own(world: World) -> None:
    token = world.token("patient/*.rs")
    for url in ("Observation/_history", "Patient/_history", "_history", "_history?_count=1"):
        _forbidden(world.get(url, token), url)
    own = world.get(f"Observation/{world.ids['A_vital']}/_history", token)
    assert own.status_code == 200 and {e["resource"]["id"] for e in own.json()["entry"]} == {world.ids["A_vital"]}


def test_shared_types_and_own_data_still_answer(world: World) -> None:
    """The confinement is not a blanket denial (AZ-03: no false deny): chains, ``_has`` and
    includes over A's own data and over shared directory resources still find them."""
    token = world.token("patient/*.rs")
    ids = world.ids

    def found(url: str) -> set[str]:
        return _ids(world.get(world.url(url), token))

    assert found("Observation?subject:Patient.name=An") == {ids["A_vital"], ids["A_lab"], ids["A_panel"]}
    assert found("Observation?has-member.code={LOINC}|8867-4") == {ids["A_panel"]}
    assert found("Observation?has-member:Observation.performer=Practitioner/{doc}") == {ids["A_panel"]}
    assert found("Patient?_has:Observation:subject:code={LOINC}|8867-4") == {ids["A"]}
    assert found("Practitioner?_has:Observation:performer:code={LOINC}|8867-4") == {ids["doc"]}
    assert found("Medication?_has:MedicationRequest:medication:patient={A}") == {ids["med"]}
    assert found("Organization?_has:Patient:organization:name=An") == {ids["org"]}
    included = found("Observation?_id={A_vital}&_include=*")
    assert {ids["A_vital"], ids["A"], ids["doc"]} <= included and not included & world.b_ids
    rev = found("Observation?_id={A_vital}&_revinclude=Observation:has-member")
    assert rev == {ids["A_vital"], ids["A_panel"]}  # B's panel names A_vital too: left out
    assert found("Practitioner?_id={doc}&_revinclude=Encounter:participant") == {ids["doc"], ids["A_enc"]}
    assert found("Patient/{A}/Condition") == {ids["A_cond"]}


# ---- AZ-08: writes stay in A's compartment; a transaction with one refused entry writes nothing -------


def test_writes_outside_the_compartment_are_refused(world: World) -> None:
    token = world.token("patient/*.cruds")
    ids = world.ids
    a_vital = world.stored(f"Observation/{ids['A_vital']}")
    b_vital = world.stored(f"Observation/{ids['B_vital']}")
    b_patient = world.stored(f"Patient/{ids['B']}")

    # create for B; move A's out to B (update, JSON Patch, FHIRPath Patch)
    _forbidden(world.call("POST", "Observation", token, _obs(ids["B"], MARKER)), "create for B")
    moved = {**a_vital, "subject": _ref(f"Patient/{ids['B']}")}
    _forbidden(world.call("PUT", f"Observation/{ids['A_vital']}", token, moved), "move A's to B")
    move = [{"op": "replace", "path": "/subject/reference", "value": f"Patient/{ids['B']}"}]
    patch_type = {"Content-Type": "application/json-patch+json"}
    _forbidden(world.call("PATCH", f"Observation/{ids['A_vital']}", token, move, **patch_type), "patch to B")
    fhirpath = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Observation.subject"},
                    {"name": "value", "valueReference": {"reference": f"Patient/{ids['B']}"}},
                ],
            }
        ],
    }
    _forbidden(world.call("PATCH", f"Observation/{ids['A_vital']}", token, fhirpath), "FHIRPath patch to B")

    # update, delete, patch B's resources: 404, as if there were none
    theirs = {**b_vital, "subject": _ref(f"Patient/{ids['A']}")}
    assert world.call("PUT", f"Observation/{ids['B_vital']}", token, theirs).status_code == 404
    assert world.call("PUT", f"Observation/{ids['B_vital']}", token, b_vital).status_code == 404
    assert world.call("DELETE", f"Observation/{ids['B_vital']}", token).status_code == 404
    assert world.call("PATCH", f"Observation/{ids['B_vital']}", token, move, **patch_type).status_code == 404
    nope_patch = world.call("PATCH", f"Observation/{NOPE}", token, move, **patch_type)
    mine = world.call("PATCH", f"Observation/{ids['B_vital']}", token, fhirpath)
    assert mine.status_code == nope_patch.status_code == 404
    assert world.call("PUT", f"Patient/{ids['B']}", token, {**b_patient, "name": [{"family": "X"}]}).status_code == 404
    assert world.call("DELETE", f"Patient/{ids['B']}", token).status_code == 404

    # a Patient other than itself
    _forbidden(world.call("POST", "Patient", token, {"resourceType": "Patient"}), "create a Patient")
    _forbidden(world.call("PUT", "Patient/new-one", token, {"resourceType": "Patient", "id": "new-one"}), "PUT")
    own = world.stored(f"Patient/{ids['A']}")
    assert world.call("PUT", f"Patient/{ids['A']}", token, own).status_code == 200  # itself: allowed

    # conditional writes select only A's resources: B's identifier matches nothing, like a made-up one
    for ident in ("urn:obs|B-vital", "urn:obs|nobody"):
        url = f"Observation?identifier={ident}"
        _forbidden(world.call("PUT", url, token, _obs(ids["B"], MARKER)), url)
        deleted = world.call("DELETE", url, token)
        assert deleted.status_code == 200 and "Nothing to delete" in deleted.text, deleted.text
        assert world.call("PATCH", url, token, move, **patch_type).status_code == 404

    assert world.stored(f"Observation/{ids['B_vital']}") == b_vital
    assert world.stored(f"Patient/{ids['B']}") == b_patient
    assert world.stored(f"Observation/{ids['A_vital']}")["subject"] == a_vital["subject"]
    assert world.markers() == 0
    assert world.get("Patient?_id=new-one", world.admin).json().get("total") == 0


def _tx(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def test_a_transaction_with_one_refused_entry_writes_nothing(world: World) -> None:
    token = world.token("patient/*.cruds")
    ids = world.ids
    b_vital = world.stored(f"Observation/{ids['B_vital']}")
    a_vital = world.stored(f"Observation/{ids['A_vital']}")
    mine = {"resource": _obs(ids["A"], MARKER), "request": {"method": "POST", "url": "Observation"}}
    move = [{"op": "replace", "path": "/status", "value": "amended"}]
    patch = {
        "resource": {
            "resourceType": "Binary",
            "contentType": "application/json-patch+json",
            "data": base64.b64encode(json.dumps(move).encode()).decode(),
        },
        "request": {"method": "PATCH", "url": f"Observation/{ids['B_vital']}"},
    }
    by_cccd = {
        "resource": {**_obs(ids["A"], MARKER), "subject": _ref("Patient?identifier=urn:cccd|B-001")},
        "request": {"method": "POST", "url": "Observation"},
    }

    def entry(method: str, url: str, resource: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"request": {"method": method, "url": url}, **({"resource": resource} if resource else {})}

    b_url, a_url = f"Observation/{ids['B_vital']}", f"Observation/{ids['A_vital']}"
    refused = {
        "create for B": (entry("POST", "Observation", _obs(ids["B"], MARKER)), 403),
        "update B's": (entry("PUT", b_url, b_vital), 404),
        "delete B's": (entry("DELETE", b_url), 404),
        "patch B's": (patch, 404),
        "move A's to B": (entry("PUT", a_url, {**a_vital, "subject": _ref(f"Patient/{ids['B']}")}), 403),
        "new Patient": (entry("POST", "Patient", {"resourceType": "Patient"}), 403),
        "reference to B by identifier": (by_cccd, 404),
    }
    for name, (bad, status) in refused.items():
        r = world.call("POST", "", token, _tx(mine, bad))
        assert r.status_code == status, (name, r.status_code, r.text[:300])
        assert r.json()["resourceType"] == "OperationOutcome", name
        assert world.markers() == 0, name  # A's own valid entry was rolled back with it
    # B's identifier resolves like one nobody has.
    nobody = {**by_cccd, "resource": {**by_cccd["resource"], "subject": _ref("Patient?identifier=urn:cccd|X-9")}}
    r = world.call("POST", "", token, _tx(mine, nobody))
    assert r.status_code == 404 and r.json()["issue"][0]["code"] == "not-found"
    assert world.stored(f"Observation/{ids['B_vital']}") == b_vital
    assert world.stored(f"Observation/{ids['A_vital']}") == a_vital
    # The same transaction without the refused entry goes through (the refusals above were theirs).
    ok = world.call("POST", "", token, _tx(mine))
    assert ok.status_code == 200, ok.text
    assert world.markers() == 1
    made = ok.json()["entry"][0]["response"]["location"].split("/_history")[0]
    assert world.call("DELETE", made, world.admin).status_code in (200, 204)
    assert world.markers() == 0
    # A batch answers each entry on its own: B's is 404, A's is there.
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Observation/{ids['B_vital']}"}},
            {"request": {"method": "GET", "url": f"Observation/{ids['A_vital']}"}},
        ],
    }
    entries = world.call("POST", "", token, batch).json()["entry"]
    assert [e["response"]["status"][:3] for e in entries] == ["404", "200"]
    assert CANARY not in json.dumps(entries, ensure_ascii=False)


# ---- AZ-09: scope grammar over HTTP -------------------------------------------------------------------


def test_a_type_outside_the_scopes_is_403_whether_or_not_data_exists(world: World) -> None:
    token = world.token("patient/Observation.rs")
    ids = world.ids
    assert _ids(world.get("Observation", token)) == {ids["A_vital"], ids["A_lab"], ids["A_panel"]}
    with_data = world.get("Condition", token)  # A has a Condition
    without = world.get("Procedure", token)  # nobody has a Procedure
    _forbidden(with_data)
    _forbidden(without)
    assert with_data.text.replace("Condition", "T") == without.text.replace("Procedure", "T")
    for url in ("Condition?subject=Patient/{A}", "Condition/{A_cond}", "Condition/" + NOPE, "Patient/{A}/Condition"):
        _forbidden(world.get(world.url(url), token), url)
    assert world.get(world.url("Condition/{A_cond}"), token).text == world.get("Condition/" + NOPE, token).text
    # _has and chains through an unscoped type: refused, with or without matching data, never an oracle.
    scoped = world.token("patient/Observation.rs patient/Patient.rs")
    has = [world.get(world.url(f"Patient?_has:Condition:subject:code={LOINC}|{c}"), scoped) for c in ("44054006", "0")]
    for r in has:
        _forbidden(r)
    assert has[0].text == has[1].text
    chain = world.get(world.url("Encounter?subject.name=An"), scoped)
    _forbidden(chain)
    # A chain whose target types are partly in scope looks at those only (Patient, not Group/Device).
    assert _ids(world.get("Observation?subject.name=An", scoped)) == {ids["A_vital"], ids["A_lab"], ids["A_panel"]}
    # Writes need their letters.
    _forbidden(world.call("POST", "Observation", token, _obs(ids["A"], MARKER)))
    _forbidden(world.call("DELETE", f"Observation/{ids['A_vital']}", token))


def test_v1_read_scope_reads_but_does_not_write(world: World) -> None:
    token = world.token("patient/Observation.read")
    ids = world.ids
    assert _ids(world.get("Observation", token)) == {ids["A_vital"], ids["A_lab"], ids["A_panel"]}
    assert world.get(f"Observation/{ids['A_vital']}", token).status_code == 200
    assert world.get(f"Observation/{ids['B_vital']}", token).status_code == 404
    a_vital = world.stored(f"Observation/{ids['A_vital']}")
    _forbidden(world.call("POST", "Observation", token, _obs(ids["A"], MARKER)))
    _forbidden(world.call("PUT", f"Observation/{ids['A_vital']}", token, a_vital))
    _forbidden(world.call("DELETE", f"Observation/{ids['A_vital']}", token))
    _forbidden(world.get("Condition", token))
    # .c cannot read; .dus is not a scope (out of order) and grants nothing, not even d
    _forbidden(world.get(f"Observation/{ids['A_vital']}", world.token("patient/Observation.c")))
    _forbidden(world.call("DELETE", f"Observation/{ids['A_vital']}", world.token("patient/Observation.dus")))
    assert world.stored(f"Observation/{ids['A_vital']}") == a_vital
    assert world.markers() == 0


@pytest.mark.parametrize("category", [f"{CATEGORY}|vital-signs", "vital-signs"])
def test_granular_scope_returns_only_its_category(world: World, category: str) -> None:
    token = world.token(f"patient/Observation.rs?category={category}")
    ids = world.ids
    vitals = {ids["A_vital"], ids["A_panel"]}
    assert _ids(world.get("Observation?_count=100", token)) == vitals
    assert world.get("Observation?_summary=count", token).json()["total"] == len(vitals)
    assert _ids(world.get("Observation?category=laboratory", token)) == set()
    assert world.get(f"Observation/{ids['A_vital']}", token).status_code == 200
    lab = world.get(f"Observation/{ids['A_lab']}", token)
    nothing = world.get(f"Observation/{NOPE}", token)
    assert lab.status_code == 404 and _masked(lab, ids["A_lab"]) == _masked(nothing, NOPE)
    assert world.get(f"Observation/{ids['B_vital']}", token).status_code == 404
    # Chains and includes do not look through the lab Observation the scope does not grant.
    assert _ids(world.get(f"Observation?has-member.code={LOINC}|2093-3", token)) == set()
    assert _ids(world.get(f"Observation?has-member.code={LOINC}|8867-4", token)) == {ids["A_panel"]}
    included = _ids(world.get(f"Observation?_id={ids['A_panel']}&_include=Observation:has-member", token))
    assert included == {ids["A_panel"], ids["A_vital"]}


# ---- AZ-10: a patient/ scope without a patient fails closed ---------------------------------------------


@pytest.mark.parametrize("patient", [None, ""])
def test_patient_scope_without_patient_fails_closed(world: World, patient: str | None) -> None:
    token = world.token("patient/*.cruds", patient=None, extra={} if patient is None else {"patient": patient})
    urls = [
        "Observation",
        "Observation?subject=Patient/{A}",
        "Observation/{A_vital}",
        "Observation/{A_vital}/_history",
        "Observation/{A_vital}/_history/1",
        "Patient",
        "Patient/{A}",
        "Patient/{A}/Observation",
        "Observation/_history",
        "_history",
        "?_type=Observation",
        "Practitioner?_has:Observation:performer:code={LOINC}|8867-4",
    ]
    for url in urls:
        r = world.get(world.url(url), token)
        assert r.status_code in (401, 403), (url, r.status_code, r.text[:200])
        body = r.json()
        assert body["resourceType"] == "OperationOutcome" and "entry" not in body, url
    write = world.call("POST", "Observation", token, _obs(world.ids["A"], MARKER))
    assert write.status_code in (401, 403)
    assert world.markers() == 0


def test_other_scopes_that_name_no_patient_grant_nothing(world: World) -> None:
    for scope in ("", "nurse/Observation.rs", "patient/observation.rs", "launch/patient openid"):
        r = world.get("Observation", world.token(scope))
        assert r.status_code in (401, 403), (scope, r.status_code)
        assert "entry" not in r.json()
    # A patient claim that is not a bare id of an existing Patient finds nothing (never B's data).
    for claim in (f"Patient/{world.ids['B']}", "someone-else"):
        token = world.token("patient/*.rs", patient=claim)
        for url in ("Observation", "Patient", "Condition"):
            r = world.get(url, token)
            assert r.status_code == 200 and _ids(r) == set(), (claim, url)
