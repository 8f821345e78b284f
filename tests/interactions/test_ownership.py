"""Who owns a record (issue 10): every version records, server-side, the organization it was written
for; a facility changes only what it owns; organizations form a hierarchy through ``partOf``.

Driven in-process with the ``RequestContext`` the edge makes from a token (and once over HTTP with
real tokens), on a fresh database of each backend. Facilities F1 and F2 are in two provinces.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from argon2 import PasswordHasher

from ketnoi.app import build_services, stop_services
from ketnoi.auth.scopes import parse_scopes
from ketnoi.auth.tokens import issue_access_token
from ketnoi.bulk.load import load_paths
from ketnoi.interactions import organizations
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.organizations import LEVEL_SYSTEM, Hierarchy, hierarchy
from ketnoi.interactions.repository import unit_of_work
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.security.clients import Clients
from ketnoi.security.keystore import KeyStore
from ketnoi.security.urls import fhir_base, issuer_for
from tests.conftest import LiveServer

F1, F2 = "Organization/F1", "Organization/F2"
OPERATOR = RequestContext.operator("test")  # no organization: not limited, records none


def _staff(org: str | None, scopes: str = "user/*.cruds", role: str = "clinician") -> RequestContext:
    return RequestContext(authenticated=True, scopes=parse_scopes(scopes), organization=org, roles=frozenset({role}))


F1_CLINICIAN, F2_CLINICIAN = _staff(F1), _staff(F2)
NATIONAL_ADMIN = _staff(None, "user/*.cruds patient/*.cruds system/*.cruds", "admin")
F2_BACKEND = RequestContext(authenticated=True, client_id="lis", scopes=parse_scopes("system/*.cruds"), organization=F2)


def _call(
    services: Services, ctx: RequestContext, method: str, url: str, body: Any = None, **headers: str
) -> FhirResponse:
    path, _, qs = url.partition("?")
    headers = {"content-type": "application/fhir+json", **headers}
    request = FhirRequest(method, path, parse_qsl(qs, keep_blank_values=True), headers, body, "http://x/fhir", ctx)
    return handle(services, request)


def _body(r: FhirResponse) -> Any:
    return r.resource if r.resource is not None else orjson.loads(r.raw or b"null")


def _owner(services: Services, rtype: str, id: str) -> tuple[int, str | None]:
    """(current version, the organization it records), straight from the store."""
    with services.store.session(write=False) as s:
        current = s.current(rtype, id)
    assert current is not None
    return current.version, current.org


def _obs(code: str, identifier: str | None = None, subject: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"text": code}}
    if identifier:
        obs["identifier"] = [{"system": "urn:test", "value": identifier}]
    if subject:
        obs["subject"] = {"reference": f"Patient/{subject}"}
    return obs


def _in_care(services: Services, patient: str, *orgs: str) -> None:
    """A current Encounter of ``patient`` at each of ``orgs`` (written for it): a care relation that
    lets the facility see the patient's record, whoever wrote it (ADR 0017, reach by organization)."""
    for org in orgs:
        encounter = {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{patient}"},
            "period": {"start": date.today().isoformat()},
        }
        _create(services, RequestContext.operator("test", org), encounter)


def _patient(services: Services, *orgs: str) -> str:
    """A new Patient (written by the operator), in the care of each of ``orgs``."""
    id = _create(services, OPERATOR, {"resourceType": "Patient"})
    _in_care(services, id, *orgs)
    return id


def _create(services: Services, ctx: RequestContext, resource: dict[str, Any]) -> str:
    r = _call(services, ctx, "POST", resource["resourceType"], resource)
    assert r.status == 201, _body(r)
    return str(_body(r)["id"])


# ---- stamping ---------------------------------------------------------------------------------------


def test_every_version_records_the_callers_organization(fresh_services: Services) -> None:
    s = fresh_services
    by_f1 = _create(s, F1_CLINICIAN, _obs("mạch"))
    assert _owner(s, "Observation", by_f1) == (1, F1)
    by_backend = _create(s, F2_BACKEND, _obs("huyết áp"))
    assert _owner(s, "Observation", by_backend) == (1, F2)
    assert _owner(s, "Observation", _create(s, NATIONAL_ADMIN, _obs("nhiệt độ"))) == (1, None)
    assert _owner(s, "Observation", _create(s, OPERATOR, _obs("cân nặng"))) == (1, None)
    # Server-side only: the resource the API returns says nothing of it.
    read = _body(_call(s, F1_CLINICIAN, "GET", f"Observation/{by_f1}"))
    assert set(read["meta"]) == {"versionId", "lastUpdated"}


def test_a_forged_meta_cannot_claim_another_organization(fresh_services: Services) -> None:
    s = fresh_services
    forged = {"source": F1, "tag": [{"system": LEVEL_SYSTEM, "code": "national"}], "security": [{"code": F1}]}
    id = _create(s, F2_CLINICIAN, {**_obs("mạch", subject=_patient(s, F1)), "meta": forged})  # F1 sees it
    assert _owner(s, "Observation", id) == (1, F2)
    # The body keeps what the client sent (it is data), the record keeps who wrote it.
    assert _body(_call(s, F2_CLINICIAN, "GET", f"Observation/{id}"))["meta"]["source"] == F1
    assert _call(s, F1_CLINICIAN, "DELETE", f"Observation/{id}").status == 403


def test_a_load_records_the_organization_it_loads_for(fresh_services: Services, tmp_path: Path) -> None:
    """``ketnoi load --organization``: every version the load writes records it (30 resources in one
    transaction: PostgreSQL's COPY path), and another facility's resources are not changed."""
    s = fresh_services
    ids = [f"load-{uuid.uuid4().hex[:12]}" for _ in range(30)]
    lines = [orjson.dumps({"resourceType": "Patient", "id": id, "gender": "female"}) for id in ids]
    (tmp_path / "p.ndjson").write_bytes(b"\n".join(lines))
    report = load_paths(s, [tmp_path / "p.ndjson"], organization=F1)
    assert (report.written, report.failures) == (30, [])
    assert {_owner(s, "Patient", id) for id in ids} == {(1, F1)}
    changed = [orjson.dumps({"resourceType": "Patient", "id": id, "gender": "male"}) for id in ids[:2]]
    (tmp_path / "q.ndjson").write_bytes(b"\n".join(changed))
    refused = load_paths(s, [tmp_path / "q.ndjson"], organization=F2)
    assert refused.written == 0
    assert [f.what for f in refused.failures] == [f"Patient/{id}" for id in ids[:2]]
    assert "Organization/F1" in refused.failures[0].message
    assert {_owner(s, "Patient", id) for id in ids[:2]} == {(1, F1)}
    with pytest.raises(ValueError, match="Organization/123"):
        load_paths(s, [tmp_path / "q.ndjson"], organization="F2")


# ---- the facility write rule ------------------------------------------------------------------------


def test_another_facility_may_not_change_it(fresh_services: Services) -> None:
    s = fresh_services
    patient = _patient(s)
    id = _create(s, F1_CLINICIAN, _obs("mạch", identifier="f1-obs", subject=patient))
    before = _body(_call(s, F1_CLINICIAN, "GET", f"Observation/{id}"))
    patch = [{"op": "replace", "path": "/status", "value": "amended"}]
    json_patch = {"content-type": "application/json-patch+json"}
    # Out of F2's reach (no care relation with the patient), it is not found at all.
    assert _call(s, F2_CLINICIAN, "DELETE", f"Observation/{id}").status == 404
    assert _call(s, F2_CLINICIAN, "PUT", f"Observation/{id}", {**before, "status": "amended"}).status == 404
    _in_care(s, patient, F2)  # F2 now treats the patient: it sees F1's record, and still may not change it
    attempts = [
        _call(s, F2_CLINICIAN, "PUT", f"Observation/{id}", {**before, "status": "amended"}),
        _call(s, F2_CLINICIAN, "PATCH", f"Observation/{id}", patch, **json_patch),
        _call(s, F2_CLINICIAN, "DELETE", f"Observation/{id}"),
        _call(s, F2_CLINICIAN, "PUT", "Observation?identifier=urn:test|f1-obs", {**_obs("x"), "status": "amended"}),
        _call(s, F2_CLINICIAN, "PATCH", "Observation?identifier=urn:test|f1-obs", patch, **json_patch),
        _call(s, F2_CLINICIAN, "DELETE", "Observation?identifier=urn:test|f1-obs"),
        _call(s, F2_BACKEND, "DELETE", f"Observation/{id}"),  # whatever the scopes
    ]
    assert [r.status for r in attempts] == [403] * 7
    assert all("Organization/F1 wrote Observation/" in _body(r)["issue"][0]["diagnostics"] for r in attempts)
    issue = _body(attempts[0])["issue"][0]
    assert issue["code"] == "forbidden"
    assert "Organization/F1 wrote Observation/" in issue["diagnostics"]
    assert "Organization/F1 đã ghi" in str(_body(attempts[0]))
    assert _body(_call(s, F1_CLINICIAN, "GET", f"Observation/{id}")) == before  # nothing changed
    assert _owner(s, "Observation", id) == (1, F1)


def test_a_facility_changes_its_own(fresh_services: Services) -> None:
    s = fresh_services
    id = _create(s, F1_CLINICIAN, _obs("mạch"))
    current = _body(_call(s, F1_CLINICIAN, "GET", f"Observation/{id}"))
    assert _call(s, F1_CLINICIAN, "PUT", f"Observation/{id}", {**current, "status": "amended"}).status == 200
    assert _owner(s, "Observation", id) == (2, F1)
    patch = [{"op": "replace", "path": "/status", "value": "corrected"}]
    assert (
        _call(
            s, F1_CLINICIAN, "PATCH", f"Observation/{id}", patch, **{"content-type": "application/json-patch+json"}
        ).status
        == 200
    )
    assert _call(s, F1_CLINICIAN, "DELETE", f"Observation/{id}").status == 200
    assert _owner(s, "Observation", id) == (4, F1)  # the deletion records who deleted


def test_callers_without_an_organization_change_anything_and_keep_the_owner(fresh_services: Services) -> None:
    """A national administrator (or an operator) may correct a facility's record; the record stays
    the facility's: another facility still may not change it."""
    s = fresh_services
    id = _create(s, F1_CLINICIAN, _obs("mạch", subject=_patient(s, F2)))  # F2 sees it (care relation)
    current = _body(_call(s, F1_CLINICIAN, "GET", f"Observation/{id}"))
    assert _call(s, NATIONAL_ADMIN, "PUT", f"Observation/{id}", {**current, "status": "amended"}).status == 200
    assert _owner(s, "Observation", id) == (2, None)  # this version: written for no organization
    current = _body(_call(s, F1_CLINICIAN, "GET", f"Observation/{id}"))
    assert _call(s, F2_CLINICIAN, "PUT", f"Observation/{id}", {**current, "status": "corrected"}).status == 403
    assert _call(s, NATIONAL_ADMIN, "DELETE", f"Observation/{id}").status == 200
    assert _call(s, F2_CLINICIAN, "PUT", f"Observation/{id}", {**current, "status": "final"}).status == 403
    assert _call(s, F1_CLINICIAN, "PUT", f"Observation/{id}", {**current, "status": "final"}).status == 201


def test_records_without_an_owner_are_open_to_what_the_scopes_allow(fresh_services: Services) -> None:
    """Versions written before the store recorded owners (like the operator's here) have none: any
    facility that sees the record (a care relation with its patient) may change it, and then owns it."""
    s = fresh_services
    patient = _patient(s)
    id = _create(s, OPERATOR, _obs("mạch", subject=patient))
    assert _call(s, F2_CLINICIAN, "GET", f"Observation/{id}").status == 404  # out of F2's reach, owner or not
    _in_care(s, patient, F1, F2)  # both facilities treat the patient
    current = _body(_call(s, F2_CLINICIAN, "GET", f"Observation/{id}"))
    assert _call(s, F2_CLINICIAN, "PUT", f"Observation/{id}", {**current, "status": "amended"}).status == 200
    assert _owner(s, "Observation", id) == (2, F2)  # and now it is F2's
    current = _body(_call(s, F2_CLINICIAN, "GET", f"Observation/{id}"))
    assert _call(s, F1_CLINICIAN, "PUT", f"Observation/{id}", current).status == 403


def test_a_consent_the_patient_wrote_is_not_open_to_the_facilities_that_treat_the_patient(
    fresh_services: Services,
) -> None:
    s = fresh_services
    patient = _patient(s, F1)
    me = RequestContext(
        authenticated=True, scopes=parse_scopes("patient/*.cruds"), patient=patient, roles=frozenset({"patient"})
    )
    deny = {
        "resourceType": "Consent", "status": "active", "scope": {"coding": [{"code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "provision": {"type": "deny", "actor": [{"reference": {"reference": F2}, "role": {"text": "facility"}}]},
    }  # fmt: skip
    id = _create(s, me, deny)
    assert _owner(s, "Consent", id) == (1, None)  # a patient acts for no organization
    current = _body(_call(s, F1_CLINICIAN, "GET", f"Consent/{id}"))  # F1 treats the patient: it sees it
    refused = _call(s, F1_CLINICIAN, "PUT", f"Consent/{id}", {**current, "status": "inactive"})
    assert refused.status == 403 and "patient's own decision" in str(_body(refused))
    assert _call(s, F1_CLINICIAN, "DELETE", f"Consent/{id}").status == 403
    assert _owner(s, "Consent", id) == (1, None)
    # The patient withdraws it; an administrator (no organization) may correct it.
    assert _call(s, me, "PUT", f"Consent/{id}", {**current, "status": "inactive"}).status == 200
    assert _call(s, NATIONAL_ADMIN, "PUT", f"Consent/{id}", {**current, "status": "active"}).status == 200


def test_one_refused_entry_fails_the_whole_transaction(fresh_services: Services) -> None:
    s = fresh_services
    theirs = _create(s, F1_CLINICIAN, _obs("mạch", subject=_patient(s, F2)))  # F2 sees it (care relation)
    tag = uuid.uuid4().hex
    entries = [
        {"resource": _obs("mới", identifier=tag), "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "DELETE", "url": f"Observation/{theirs}"}},
    ]
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    answer = _call(s, F2_CLINICIAN, "POST", "", tx)
    assert answer.status == 403
    found = _body(_call(s, F2_CLINICIAN, "GET", f"Observation?identifier=urn:test|{tag}"))
    assert found.get("total", len(found.get("entry", []))) == 0  # the allowed entry was not kept
    assert _owner(s, "Observation", theirs) == (1, F1)
    batch = _call(s, F2_CLINICIAN, "POST", "", {**tx, "type": "batch"})  # a batch: each entry on its own
    assert [e["response"]["status"][:3] for e in _body(batch)["entry"]] == ["201", "403"]


# ---- over HTTP, with tokens --------------------------------------------------------------------------


@pytest.fixture
def http_server(fresh_services: Services) -> Iterator[tuple[httpx.Client, Services, str]]:
    from ketnoi.api.routes import create_app

    services = fresh_services
    services.settings = services.settings.with_(auth="on")
    with LiveServer(create_app(services)) as live, httpx.Client(base_url=live.base, timeout=60) as http:
        yield http, services, live.base.removesuffix("/fhir")


def _bearer(services: Services, organization: str | None, scope: str = "user/*.cruds") -> dict[str, str]:
    audience, now = fhir_base(services.settings), time.time()
    extra = {"organization": organization} if organization else None
    token = issue_access_token(
        KeyStore(services.store).ring(now), issuer=issuer_for(audience), audience=audience, subject="bs",
        client_id="app", scope=scope, lifetime=300, now=now, extra=extra,
    )  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def test_over_http_the_tokens_organization_owns_what_it_writes(
    http_server: tuple[httpx.Client, Services, str],
) -> None:
    http, services, _ = http_server
    f1, f2 = _bearer(services, F1), _bearer(services, F2)
    made = http.post("/Observation", json=_obs("mạch", subject=_patient(services, F2)), headers=f1)  # F2 sees it
    assert made.status_code == 201, made.text
    id = made.json()["id"]
    assert _owner(services, "Observation", id) == (1, F1)
    refused = http.put(f"/Observation/{id}", json={**made.json(), "status": "amended"}, headers=f2)
    assert refused.status_code == 403
    assert "Organization/F1" in refused.json()["issue"][0]["diagnostics"]
    assert http.delete(f"/Observation/{id}", headers=f2).status_code == 403
    assert http.put(f"/Observation/{id}", json={**made.json(), "status": "amended"}, headers=f1).status_code == 200
    national = _bearer(services, None, "system/*.cruds")
    assert http.delete(f"/Observation/{id}", headers=national).status_code == 200


def test_a_backend_client_registered_for_an_organization_writes_for_it(
    http_server: tuple[httpx.Client, Services, str],
) -> None:
    http, services, root = http_server
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    client, secret = Clients(services.store, hasher=cheap).add(
        "Phòng xét nghiệm", "system/*.cruds", kind="confidential", redirect_uris=["https://lab.example.vn/cb"],
        organization=F2, now=time.time(),
    )  # fmt: skip
    assert secret is not None
    answer = httpx.post(
        f"{root}/auth/token",
        data={"grant_type": "client_credentials", "scope": "system/Observation.cruds"},
        auth=(client.client_id, secret),
    )
    assert answer.status_code == 200, answer.text
    auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    made = http.post("/Observation", json=_obs("đường huyết"), headers=auth)
    assert made.status_code == 201, made.text
    assert _owner(services, "Observation", made.json()["id"]) == (1, F2)


# ---- the hierarchy -----------------------------------------------------------------------------------


def _org(services: Services, id: str, part_of: str | None = None, level: str | None = None) -> None:
    org: dict[str, Any] = {"resourceType": "Organization", "id": id, "name": id}
    if part_of:
        org["partOf"] = {"reference": part_of}
    if level:
        org["type"] = [{"coding": [{"system": LEVEL_SYSTEM, "code": level}]}]
    r = _call(services, OPERATOR, "PUT", f"Organization/{id}", org)
    assert r.status in (200, 201), _body(r)


@pytest.fixture
def tree(fresh_services: Services) -> Hierarchy:
    """Bộ Y tế → Sở Y tế Hà Nội → F1 → a commune station; Sở Y tế Huế → F2."""
    s = fresh_services
    _org(s, "byt", level="national")
    _org(s, "syt-hn", "Organization/byt", "province")
    _org(s, "syt-hue", "Organization/byt", "province")
    _org(s, "F1", "Organization/syt-hn")
    _org(s, "tram", "Organization/F1")
    _org(s, "F2", "Organization/syt-hue")
    return hierarchy(s)


def test_ancestors_province_and_within(tree: Hierarchy) -> None:
    assert tree.ancestors("Organization/tram") == ["Organization/F1", "Organization/syt-hn", "Organization/byt"]
    assert tree.ancestors("Organization/byt") == []
    assert tree.ancestors("Organization/nowhere") == []
    assert tree.province_of("Organization/tram") == "Organization/syt-hn"
    assert tree.province_of(F2) == "Organization/syt-hue"
    assert tree.province_of("Organization/syt-hn") == "Organization/syt-hn"
    assert tree.province_of("Organization/byt") is None
    assert tree.is_within("Organization/tram", "Organization/syt-hn")
    assert tree.is_within(F1, F1)
    assert not tree.is_within("Organization/tram", "Organization/syt-hue")
    assert not tree.is_within("Organization/syt-hn", F1)


def test_a_cycle_in_part_of_ends_the_walk(fresh_services: Services) -> None:
    s = fresh_services
    _org(s, "a", "Organization/b")
    _org(s, "b", "Organization/c")
    _org(s, "c", "Organization/a")
    _org(s, "self", "Organization/self")
    h = hierarchy(s)
    assert h.ancestors("Organization/a") == ["Organization/b", "Organization/c"]
    assert h.ancestors("Organization/self") == []
    assert h.province_of("Organization/a") is None


def test_a_deep_chain_is_cut(fresh_services: Services) -> None:
    s = fresh_services
    depth = organizations.MAX_DEPTH + 5
    for n in range(depth):
        _org(s, f"d{n}", f"Organization/d{n + 1}")
    assert len(hierarchy(s).ancestors("Organization/d0")) == organizations.MAX_DEPTH


def test_the_cache_follows_changes(tree: Hierarchy, fresh_services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    s = fresh_services
    assert tree.province_of(F1) == "Organization/syt-hn"
    _org(s, "F1", "Organization/syt-hue")  # this process: the after-commit hook drops the cache
    assert tree.province_of(F1) == "Organization/syt-hue"
    assert tree.is_within("Organization/tram", "Organization/syt-hue")
    # Another process (a second server over the same database) moves it back: seen within RECHECK_S.
    other = build_services(s.settings, s.store)
    try:
        _org(other, "F1", "Organization/syt-hn")
        monkeypatch.setattr(organizations, "RECHECK_S", 0.0)
        assert tree.province_of(F1) == "Organization/syt-hn"
    finally:
        stop_services(other)


def test_asked_inside_a_callers_transaction(tree: Hierarchy, fresh_services: Services) -> None:
    """Through the caller's Repository (no second transaction, which SQLite could not nest); what a
    transaction that wrote an Organization reads is not cached, as it may roll back."""
    s = fresh_services
    with unit_of_work(s, F2_CLINICIAN, write=False) as repo:
        assert tree.province_of("Organization/tram", repo) == "Organization/syt-hn"
    with pytest.raises(RuntimeError), unit_of_work(s, OPERATOR, write=True) as repo:
        repo.update(
            "Organization",
            "F1",
            {"resourceType": "Organization", "id": "F1", "partOf": {"reference": "Organization/syt-hue"}},
        )
        assert tree.province_of("Organization/tram", repo) == "Organization/syt-hue"
        raise RuntimeError("roll back")
    assert tree.province_of("Organization/tram") == "Organization/syt-hn"
