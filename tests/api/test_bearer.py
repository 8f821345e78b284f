"""Bearer tokens over HTTP with ``--auth on`` (THREATS.md AU-01, RFC 6750): every FHIR request but
the CapabilityStatement needs a valid access token from this server's key ring, for this server's
audience and issuer; anything else is 401 with ``WWW-Authenticate`` and nothing is returned.
A valid token's scopes are then enforced (a patient sees only their own record)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import OctKey

from ketnoi.auth.keys import KeyRing
from ketnoi.auth.tokens import issue_access_token, issue_id_token
from ketnoi.interactions.services import Services
from ketnoi.security.keystore import KeyStore
from ketnoi.security.urls import fhir_base, issuer_for
from tests.conftest import LiveServer


@dataclass
class Server:
    http: httpx.Client
    ring: KeyRing
    audience: str
    issuer: str
    patient: str  # the token's patient
    other: str  # another patient's Observation


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def server(fresh_services: Services) -> Iterator[Server]:
    from ketnoi.api.routes import create_app

    services = fresh_services
    services.settings = services.settings.with_(auth="on")
    audience = fhir_base(services.settings)
    ring = KeyStore(services.store).ring(time.time())
    admin = issue_access_token(
        ring, issuer=issuer_for(audience), audience=audience, subject="admin", client_id="test",
        scope="system/*.cruds", lifetime=300, now=time.time(),
    )  # fmt: skip
    with LiveServer(create_app(services)) as live, httpx.Client(base_url=live.base, timeout=60) as http:
        auth = {"Authorization": f"Bearer {admin}"}
        a = http.post("/Patient", json={"resourceType": "Patient"}, headers=auth).json()["id"]
        b = http.post("/Patient", json={"resourceType": "Patient"}, headers=auth).json()["id"]
        obs = {"resourceType": "Observation", "status": "final", "code": {"text": "mạch"}}
        http.post("/Observation", json={**obs, "subject": {"reference": f"Patient/{a}"}}, headers=auth)
        other = http.post("/Observation", json={**obs, "subject": {"reference": f"Patient/{b}"}}, headers=auth)
        yield Server(http, ring, audience, issuer_for(audience), a, other.json()["id"])


def _token(s: Server, **changes: object) -> str:
    now = time.time()
    args: dict[str, object] = {
        "issuer": s.issuer, "audience": s.audience, "subject": "an", "client_id": "app",
        "scope": "patient/*.rs", "lifetime": 300, "now": now, "extra": {"patient": s.patient},
    }  # fmt: skip
    args.update(changes)
    return issue_access_token(s.ring if "ring" not in args else args.pop("ring"), **args)  # type: ignore[arg-type]


def _refused(response: httpx.Response, error: str | None = "invalid_token") -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="ketnoi"')
    if error:
        assert f'error="{error}"' in challenge
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and "entry" not in body


def _get(s: Server, token: str | None, path: str = "/Observation") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return s.http.get(path, headers=headers)


def test_metadata_is_public_and_everything_else_needs_a_token(server: Server) -> None:
    assert server.http.get("/metadata").status_code == 200
    _refused(server.http.get("/Observation"), error=None)
    _refused(server.http.get("/Observation", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}))
    # The body of an unauthenticated request is never parsed (no work for a stranger).
    deep = b"[" * 5000 + b"]" * 5000
    _refused(server.http.post("/Observation", content=deep, headers={"Content-Type": "application/fhir+json"}), None)


def test_garbage_and_forged_tokens(server: Server) -> None:
    claims = {"iss": server.issuer, "aud": server.audience, "sub": "x", "client_id": "app", "scope": "patient/*.rs"}
    claims |= {"exp": int(time.time()) + 300, "iat": int(time.time()), "jti": "j", "patient": server.patient}
    kid = server.ring.active().kid
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode())
    none = f"{header}.{_b64(json.dumps(claims).encode())}."
    public = server.ring.public_key(kid, time.time())
    assert public is not None
    hmac_key = OctKey.import_key(json.dumps(public.as_dict(private=False)).encode())
    hs256 = jws.serialize_compact(
        {"alg": "HS256", "typ": "at+jwt", "kid": kid}, json.dumps(claims), hmac_key, algorithms=["HS256"]
    )
    other_ring = KeyRing.generate(now=time.time())
    for token in ("garbage", "a.b.c", none, hs256, _token(server, ring=other_ring)):
        _refused(_get(server, token))


def test_time_audience_issuer_and_token_type(server: Server) -> None:
    now = time.time()
    _refused(_get(server, _token(server, now=now - 600)))  # expired
    _refused(_get(server, _token(server, now=now + 600)))  # not yet valid
    _refused(_get(server, _token(server, audience="https://other.example/fhir")))
    _refused(_get(server, _token(server, issuer="https://other.example/auth")))
    id_token = issue_id_token(server.ring, issuer=server.issuer, subject="an", client_id="app", now=now)
    _refused(_get(server, id_token))


def test_a_patient_token_sees_only_that_patient(server: Server) -> None:
    token = _token(server)
    mine = _get(server, token)
    assert mine.status_code == 200
    subjects = {e["resource"]["subject"]["reference"] for e in mine.json()["entry"]}
    assert subjects == {f"Patient/{server.patient}"}
    assert _get(server, token, f"/Observation/{server.other}").status_code == 404
    write = server.http.post(
        "/Observation",
        json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert write.status_code == 403  # .rs does not write
    assert "insufficient_scope" in write.json()["issue"][0]["diagnostics"]
