"""An external OpenID provider's tokens (``--oidc-issuer``), against a second, real ketnoi process.

The provider ("IdP") is ``ketnoi serve`` on its own SQLite file, started once for the module; its
tokens come from its own CLI (``ketnoi token issue --issuer``), as an operator would mint them.
Our server is the usual in-process LiveServer over a fresh database of each backend, trusting the
IdP. Forgeries are made here with other keys. A second IdP is started and killed at once: the
provider that is down before we ever fetched its keys.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import OctKey

from ketnoi.api.bearer import Authenticator
from ketnoi.auth.keys import KeyRing
from ketnoi.auth.passwords import make_hasher
from ketnoi.auth.tokens import issue_access_token, unverified
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from ketnoi.security.keystore import KeyStore
from ketnoi.security.urls import fhir_base, issuer_for
from tests.conftest import LiveServer, _free_port

KETNOI = str(Path(sys.executable).with_name("ketnoi"))  # .venv/bin/ketnoi
GOOD = "Cây đa, giếng nước, sân đình"
CHEAP = make_hasher(time_cost=1, memory_kib=8, parallelism=1)  # local accounts: behaviour, not strength
CLINIC = "Organization/bv-bachmai"  # the local clinician account's facility
OURS = "http://127.0.0.1:8080/fhir"  # the FHIR base of fresh_services' settings: the tokens' audience


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KETNOI_")}  # defaults, whatever the shell says


def _ketnoi(*args: str, stdin: str = "") -> str:
    done = subprocess.run([KETNOI, *args], input=stdin, capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class Idp:
    issuer: str
    database: str
    token: str  # user "lan", scope user/*.cruds, for our FHIR base
    wrong_audience: str  # the same, for another server


def _serve(tmp: Path, name: str) -> tuple[subprocess.Popen[bytes], str, str]:
    port, database = _free_port(), f"sqlite:///{tmp}/{name}.db"
    args = ["serve", "--database", database, "--migrate", "--auth", "on", "--host", "127.0.0.1", "--port", str(port)]
    with open(tmp / f"{name}.log", "wb") as log:  # a file, not a pipe: a full pipe would block it
        process = subprocess.Popen([KETNOI, *args], stdout=log, stderr=subprocess.STDOUT, env=_env())
    return process, database, f"http://127.0.0.1:{port}"


def _wait_healthy(process: subprocess.Popen[bytes], origin: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{origin}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"ketnoi serve did not start: {log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Idp, str]]:
    """The IdP (running) and the issuer URL of a second one that was started and killed."""
    tmp = tmp_path_factory.mktemp("idp")
    idp, database, origin = _serve(tmp, "idp")
    dead, _, dead_origin = _serve(tmp, "dead")  # both start at once: the module waits once
    try:
        _wait_healthy(idp, origin, tmp / "idp.log")
        _wait_healthy(dead, dead_origin, tmp / "dead.log")
        _stop(dead)
        issuer = f"{origin}/auth"
        _ketnoi("users", "add", "--database", database, "--username", "lan", "--role", "clinician",
                "--organization", "Organization/idp-side", "--password-stdin", stdin=GOOD + "\n")  # fmt: skip
        mint = ["token", "issue", "--database", database, "--user", "lan", "--scope", "user/*.cruds"]
        mint += ["--lifetime", "3600", "--issuer", issuer]
        token = _ketnoi(*mint, "--audience", OURS)
        wrong = _ketnoi(*mint, "--audience", "https://other.example/fhir")
        yield Idp(issuer, database, token, wrong), f"{dead_origin}/auth"
    finally:
        _stop(idp)
        if dead.poll() is None:
            _stop(dead)


@dataclass
class Ours:
    services: Services
    http: httpx.Client
    authenticator: Authenticator
    accounts: Accounts
    idp: Idp
    dead: str  # a configured issuer whose provider is down
    patient: str  # Patient a
    mine: str  # a's Observation
    other: str  # b's Observation


@pytest.fixture
def ours(fresh_services: Services, providers: tuple[Idp, str]) -> Iterator[Ours]:
    from ketnoi.api.routes import create_app

    idp, dead = providers
    services = fresh_services
    services.settings = services.settings.with_(auth="on", oidc_issuers=(idp.issuer, dead))
    assert fhir_base(services.settings) == OURS
    ring = KeyStore(services.store).ring(time.time())
    admin = issue_access_token(
        ring, issuer=issuer_for(OURS), audience=OURS, subject="admin", client_id="test",
        scope="system/*.cruds", lifetime=300, now=time.time(),
    )  # fmt: skip
    app = create_app(services)
    with LiveServer(app) as live, httpx.Client(base_url=live.base, timeout=60) as http:
        auth = {"Authorization": f"Bearer {admin}"}  # our own tokens keep working beside the IdP's
        a = http.post("/Patient", json={"resourceType": "Patient"}, headers=auth).json()["id"]
        b = http.post("/Patient", json={"resourceType": "Patient"}, headers=auth).json()["id"]
        obs = {"resourceType": "Observation", "status": "final", "code": {"text": "mạch"}}
        mine = http.post("/Observation", json={**obs, "subject": {"reference": f"Patient/{a}"}}, headers=auth)
        other = http.post("/Observation", json={**obs, "subject": {"reference": f"Patient/{b}"}}, headers=auth)
        for patient in (a, b):  # both in the care of the local clinician's facility (_clinician): ADR 0017
            made = http.post("/Encounter", json=_encounter(patient, CLINIC), headers=auth)
            assert made.status_code == 201, made.text
        accounts = Accounts(services.store, hasher=CHEAP)
        yield Ours(
            services, http, app.state.authenticator, accounts, idp, dead, a, mine.json()["id"], other.json()["id"]
        )


def _get(ours: Ours, token: str, path: str = "/Observation") -> httpx.Response:
    return ours.http.get(path, headers={"Authorization": f"Bearer {token}"})


def _refused(response: httpx.Response, reason: str | None = None) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="ketnoi", error="invalid_token"'), challenge
    if reason is not None:
        assert f'error_description="{reason}"' in challenge, challenge
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and "entry" not in body


def _clinician(ours: Ours, name: str = "lan") -> None:
    ours.accounts.add(name, GOOD, "clinician", organization=CLINIC, now=time.time())


def _encounter(patient: str, provider: str) -> dict[str, Any]:
    """A current Encounter of ``patient`` at ``provider``: a care relation that opens the patient's
    record to that facility (written here with no owner, so the serviceProvider names the facility)."""
    return {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": date.today().isoformat()},
        "serviceProvider": {"reference": provider},
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(ours: Ours) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ours.idp.issuer, "aud": OURS, "sub": "lan", "client_id": "ketnoi-cli", "scope": "user/*.cruds",
            "iat": now, "nbf": now, "exp": now + 300, "jti": "forged"}  # fmt: skip


def test_a_local_clinician_reads_with_the_providers_token(ours: Ours) -> None:
    _clinician(ours)
    found = _get(ours, ours.idp.token)
    assert found.status_code == 200, found.text
    # user/: every patient's in the facility's care (the local account's organization, not the provider's)
    assert {e["resource"]["id"] for e in found.json()["entry"]} >= {ours.mine, ours.other}
    created = ours.http.post(
        "/Observation",
        json={"resourceType": "Observation", "status": "final", "code": {"text": "huyết áp"}},
        headers={"Authorization": f"Bearer {ours.idp.token}"},
    )
    assert created.status_code == 201, created.text  # user/*.cruds, within the clinician role


def test_no_local_account_is_refused(ours: Ours) -> None:
    _refused(_get(ours, ours.idp.token), "no local account")


def test_a_disabled_account_stops_within_the_cache_window(ours: Ours) -> None:
    _clinician(ours)
    assert _get(ours, ours.idp.token).status_code == 200
    ours.accounts.disable("lan", now=time.time())
    assert ours.authenticator.external is not None
    ours.authenticator.external.accounts.clear()  # what 30 s do (AccountCache)
    _refused(_get(ours, ours.idp.token), "no local account")


def test_a_token_for_another_server_is_refused(ours: Ours) -> None:
    _clinician(ours)
    _refused(_get(ours, ours.idp.wrong_audience), "audience")


def test_forgeries_naming_the_provider_are_refused(ours: Ours) -> None:
    _clinician(ours)
    now = time.time()
    other = KeyRing.generate(now=now)  # a key the IdP never published
    unknown_kid = issue_access_token(
        other, issuer=ours.idp.issuer, audience=OURS, subject="lan", client_id="app", scope="user/*.cruds",
        lifetime=300, now=now,
    )  # fmt: skip
    idp_kid = str(unverified(ours.idp.token, 0)["kid"])
    payload = json.dumps(_claims(ours))
    header = {"alg": "ES256", "typ": "at+jwt", "kid": idp_kid}
    stolen_kid = jws.serialize_compact(header, payload, other.private_key(other.active().kid))
    none = f"{_b64(json.dumps({**header, 'alg': 'none'}).encode())}.{_b64(payload.encode())}."
    published = httpx.get(f"{ours.idp.issuer}/jwks", timeout=10).json()["keys"]
    secret = OctKey.import_key(json.dumps(next(k for k in published if k["kid"] == idp_kid)).encode())
    hs256 = jws.serialize_compact({**header, "alg": "HS256"}, payload, secret, algorithms=["HS256"])
    _refused(_get(ours, unknown_kid), "unknown-key")
    _refused(_get(ours, stolen_kid), "bad-signature")
    for token in (none, hs256):
        _refused(_get(ours, token))
    assert _get(ours, ours.idp.token).status_code == 200  # the real one still works


def test_an_issuer_that_is_not_configured_is_refused(ours: Ours) -> None:
    from ketnoi.api.routes import create_app

    _clinician(ours)
    now = time.time()
    elsewhere = issue_access_token(
        KeyRing.generate(now=now), issuer="http://127.0.0.1:9/auth", audience=OURS, subject="lan",
        client_id="app", scope="user/*.cruds", lifetime=300, now=now,
    )  # fmt: skip
    _refused(_get(ours, elsewhere))  # not trusted, so our own check: not our key
    ours.services.settings = ours.services.settings.with_(oidc_issuers=())
    with LiveServer(create_app(ours.services)) as live:
        response = httpx.get(f"{live.base}/Observation", headers={"Authorization": f"Bearer {ours.idp.token}"})
    _refused(response)  # the same IdP token, on a server that does not trust the IdP


def test_a_patient_account_stays_in_its_compartment(ours: Ours) -> None:
    ours.accounts.add("lan", GOOD, "patient", patient=f"Patient/{ours.patient}", now=time.time())
    # The IdP's token says user/*.cruds and organization Organization/idp-side: neither counts here.
    mine = _get(ours, ours.idp.token)
    assert mine.status_code == 200, mine.text
    assert [e["resource"]["id"] for e in mine.json()["entry"]] == [ours.mine]
    assert _get(ours, ours.idp.token, f"/Patient/{ours.patient}").status_code == 200
    assert _get(ours, ours.idp.token, f"/Observation/{ours.other}").status_code == 404


def test_a_provider_that_is_down_gives_a_clear_401(ours: Ours) -> None:
    _clinician(ours)
    now = time.time()
    token = issue_access_token(
        KeyRing.generate(now=now), issuer=ours.dead, audience=OURS, subject="lan", client_id="app",
        scope="user/*.cruds", lifetime=300, now=now,
    )  # fmt: skip
    for _ in range(2):  # the second answers at once: a provider that just failed is not asked again
        started = time.monotonic()
        refused = _get(ours, token)
        _refused(refused, "identity provider unavailable")
        assert "cannot be reached" in refused.json()["issue"][0]["diagnostics"]
        assert time.monotonic() - started < 10
    assert _get(ours, ours.idp.token).status_code == 200  # the other provider is unaffected


def test_a_key_rotated_at_the_provider_is_fetched_on_first_sight(ours: Ours) -> None:
    _clinician(ours)
    assert _get(ours, ours.idp.token).status_code == 200  # our server now holds the IdP's keys
    fetched = time.monotonic()
    old_kid = unverified(ours.idp.token, 0)["kid"]
    _ketnoi("keys", "rotate", "--database", ours.idp.database)
    rotated = _ketnoi("token", "issue", "--database", ours.idp.database, "--user", "lan", "--scope", "user/*.rs",
                      "--audience", OURS, "--issuer", ours.idp.issuer)  # fmt: skip
    assert unverified(rotated, 0)["kid"] != old_kid
    # The IdP re-reads its own ring for its JWK Set at most once a second (KeyStore.jwks).
    time.sleep(max(0.0, 1.1 - (time.monotonic() - fetched)))
    assert _get(ours, rotated).status_code == 200
    assert _get(ours, ours.idp.token).status_code == 200  # the old key stays published


def test_the_providers_discovery_document(providers: tuple[Idp, str]) -> None:
    idp, _ = providers
    answer = httpx.get(f"{idp.issuer}/.well-known/openid-configuration", timeout=10)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "public, max-age=300"
    document = answer.json()
    assert document["issuer"] == idp.issuer
    assert {k: document[k] for k in ("jwks_uri", "token_endpoint", "authorization_endpoint")} == {
        "jwks_uri": f"{idp.issuer}/jwks",
        "token_endpoint": f"{idp.issuer}/token",
        "authorization_endpoint": f"{idp.issuer}/authorize",
    }
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["public"]
    assert document["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    smart = httpx.get(f"{idp.issuer.removesuffix('/auth')}/fhir/.well-known/smart-configuration", timeout=10).json()
    assert document["grant_types_supported"] == smart["grant_types_supported"]
