"""SMART Backend Services over HTTP: ``client_credentials`` with ``private_key_jwt`` at
``POST /auth/token`` (THREATS.md AU-04), and the token it gives used on the FHIR API."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from ketnoi.auth.assertions import make_client_assertion
from ketnoi.interactions.services import Services
from ketnoi.security.clients import Clients
from ketnoi.security.urls import fhir_base, issuer_for
from tests.conftest import LiveServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Backend:
    http: httpx.Client  # at the server root
    client_id: str
    private: dict[str, Any]
    token_url: str


def _key(kid: str) -> dict[str, Any]:
    key = ECKey.generate_key("P-384", private=True)
    return {**key.as_dict(private=True), "kid": kid, "alg": "ES384"}


@pytest.fixture
def backend(fresh_services: Services) -> Iterator[Backend]:
    from ketnoi.api.routes import create_app

    services = fresh_services
    services.settings = services.settings.with_(auth="on")
    private = _key("k1")
    public = {k: v for k, v in private.items() if k != "d"}
    client, _ = Clients(services.store).add(
        "Sở Y tế", "system/Observation.rs system/Patient.rs", kind="backend", jwks={"keys": [public]}, now=time.time()
    )
    token_url = issuer_for(fhir_base(services.settings)) + "/token"
    with LiveServer(create_app(services)) as live, httpx.Client(base_url=live.base.removesuffix("/fhir")) as http:
        yield Backend(http, client.client_id, private, token_url)


def _ask(b: Backend, assertion: str, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": "system/Observation.rs",
        **form,
    }
    return b.http.post("/auth/token", data=data)


def _assertion(b: Backend, **changes: Any) -> str:
    args: dict[str, Any] = {"client_id": b.client_id, "token_url": b.token_url, "now": time.time()}
    args.update(changes)
    return make_client_assertion(args.pop("key", b.private), **args)


def _refused(r: httpx.Response, error: str, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert "access_token" not in r.json()
    assert r.headers["Cache-Control"] == "no-store"


def test_a_backend_gets_a_short_token_and_uses_it(backend: Backend) -> None:
    r = _ask(backend, _assertion(backend), scope="system/Observation.rs system/*.cruds")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 300
    assert "refresh_token" not in body
    # narrowed to what it is registered for: *.cruds shrinks to the registered Patient.rs
    assert body["scope"] == "system/Observation.rs system/Patient.rs"
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    assert backend.http.get("/fhir/Observation", headers=auth).status_code == 200
    assert backend.http.get("/fhir/Condition", headers=auth).status_code == 403
    keys = backend.http.get("/auth/jwks").json()["keys"]
    assert keys and all("d" not in k for k in keys)


def test_assertions_that_must_be_refused(backend: Backend) -> None:
    now = time.time()
    _refused(_ask(backend, _assertion(backend), grant_type="password"), "unsupported_grant_type", 400)
    _refused(_ask(backend, _assertion(backend), client_assertion_type="not_an_assertion_type"), "invalid_request", 400)
    _refused(_ask(backend, _assertion(backend, key=_key("k1"))), "invalid_client", 401)  # same kid, other key
    _refused(_ask(backend, _assertion(backend, key=_key("k2"))), "invalid_client", 401)  # unknown kid
    _refused(_ask(backend, _assertion(backend, lifetime=600)), "invalid_client", 401)  # exp 10 min ahead
    _refused(_ask(backend, _assertion(backend, now=now - 600)), "invalid_client", 401)  # expired
    _refused(_ask(backend, _assertion(backend, token_url="https://other.example/auth/token")), "invalid_client", 401)
    _refused(_ask(backend, _assertion(backend, client_id="someone-else")), "invalid_client", 401)
    _refused(_ask(backend, "garbage"), "invalid_client", 401)
    _refused(_ask(backend, _assertion(backend), scope="patient/*.rs"), "invalid_scope", 400)


def test_a_jti_is_accepted_once(backend: Backend) -> None:
    jti = uuid.uuid4().hex
    assert _ask(backend, _assertion(backend, jti=jti)).status_code == 200
    _refused(_ask(backend, _assertion(backend, jti=jti)), "invalid_client", 401)


def test_a_flood_is_slowed_down(backend: Backend) -> None:
    statuses = [backend.http.post("/auth/token", data={"grant_type": "x"}).status_code for _ in range(30)]
    assert statuses.count(429) >= 5
    limited = backend.http.post("/auth/token", data={"grant_type": "x"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert json.loads(limited.text)["error"] == "slow_down"


def test_discovery_and_capability_statement_name_the_token_endpoint(backend: Backend) -> None:
    smart = backend.http.get("/fhir/.well-known/smart-configuration")
    assert smart.status_code == 200  # public, like /fhir/metadata
    config = smart.json()
    assert config["token_endpoint"] == backend.token_url
    assert config["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]
    for endpoint in ("authorization", "revocation", "introspection"):
        assert config[f"{endpoint}_endpoint"].startswith(config["issuer"] + "/")
    assert config["code_challenge_methods_supported"] == ["S256"]
    jwks = backend.http.get(config["jwks_uri"].replace(config["issuer"], "/auth"))
    assert jwks.status_code == 200
    security = backend.http.get("/fhir/metadata").json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert security["extension"][0]["extension"][0]["valueUri"] == backend.token_url


def test_keys_from_a_registered_jwks_url_and_their_rotation(
    fresh_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend registered with --jwks-url: its keys are fetched from there (a real server on
    loopback), and a new kid after a rotation makes the server fetch them again."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ketnoi.api.routes import create_app
    from ketnoi.security import client_auth

    published: dict[str, Any] = {"keys": []}

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(published)

    first, second = _key("k1"), _key("k2")
    published["keys"] = [{k: v for k, v in first.items() if k != "d"}]
    services = fresh_services
    services.settings = services.settings.with_(auth="on")
    token_url = issuer_for(fhir_base(services.settings)) + "/token"
    with LiveServer(Starlette(routes=[Route("/jwks", jwks)])) as keys_server:
        url = keys_server.base.removesuffix("/fhir") + "/jwks"
        client, _ = Clients(services.store).add(
            "CDC", "system/Observation.rs", kind="backend", jwks_url=url, now=time.time()
        )
        with LiveServer(create_app(services)) as live, httpx.Client(base_url=live.base.removesuffix("/fhir")) as http:
            b = Backend(http, client.client_id, first, token_url)
            assert _ask(b, _assertion(b)).status_code == 200
            published["keys"] = [{k: v for k, v in second.items() if k != "d"}]  # the client rotates
            rotated = Backend(http, client.client_id, second, token_url)
            monkeypatch.setattr(client_auth, "JWKS_REFETCH_S", 3600.0)
            _refused(_ask(rotated, _assertion(rotated)), "invalid_client", 401)  # unknown kid, refetch not yet due
            monkeypatch.setattr(client_auth, "JWKS_REFETCH_S", 0.0)
            assert _ask(rotated, _assertion(rotated)).status_code == 200  # fetched again for the new kid
            _refused(_ask(b, _assertion(b)), "invalid_client", 401)  # the old key is gone
