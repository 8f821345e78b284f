"""The authorization-code flow over real HTTP (SMART App Launch 2, RFC 6749, RFC 7636, RFC 7009,
RFC 7662), driven as a browser and an app would: sign-in form, consent, code, token, FHIR call,
refresh, revoke, introspect. THREATS.md AU-02, AU-03, AU-05 and AU-06, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from argon2 import PasswordHasher

from ketnoi.app import build_services, open_store, stop_services
from ketnoi.auth.tokens import issue_access_token
from ketnoi.auth.totp import current_code
from ketnoi.config import Settings
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from ketnoi.security.clients import Clients
from ketnoi.security.keystore import KeyStore
from ketnoi.security.urls import fhir_base, issuer_for
from tests.conftest import BACKENDS, LiveServer, throwaway_url

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "a long enough passphrase 42"
REDIRECT = "http://127.0.0.1:9/callback"


@dataclass
class Site:
    services: Services
    root: str  # http://127.0.0.1:PORT
    audience: str
    issuer: str
    app: str  # public client id
    web: str  # confidential client id
    web_secret: str
    other_app: str
    admin_totp: str
    patient: str  # the patient user's Patient id
    other_patient: str
    observations: dict[str, str] = field(default_factory=dict)
    browsers: list[httpx.Client] = field(default_factory=list)  # closed with the site


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    tmp: Path = tmp_path_factory.mktemp("authcode")
    with throwaway_url(request.param, tmp) as url:
        store = open_store(url)
        store.migrate()
        # One server for the whole module, on one address: the throttles are tested on their own servers.
        settings = Settings(database=url, auth="on", sign_in_burst=10_000, token_burst=10_000)
        services = build_services(settings, store)
        now = time.time()
        clients, accounts = Clients(store, hasher=CHEAP), Accounts(store, hasher=CHEAP)
        scope = "openid fhirUser launch launch/patient offline_access patient/*.cruds user/*.cruds"
        app, _ = clients.add("Sổ sức khoẻ", scope, kind="public", redirect_uris=[REDIRECT], now=now)
        other, _ = clients.add("Other app", scope, kind="public", redirect_uris=[REDIRECT], now=now)
        web, secret = clients.add("Web", scope + " system/*.rs", kind="confidential", redirect_uris=[REDIRECT], now=now)
        audience = fhir_base(services.settings)
        admin_token = issue_access_token(
            KeyStore(store).ring(now), issuer=issuer_for(audience), audience=audience, subject="setup",
            client_id="test", scope="system/*.cruds", lifetime=300, now=now,
        )  # fmt: skip
        with LiveServer(create_app(services)) as live, httpx.Client(base_url=live.base, timeout=60) as http:
            auth = {"Authorization": f"Bearer {admin_token}"}
            ids = [http.post("/Patient", json={"resourceType": "Patient"}, headers=auth).json()["id"] for _ in "ab"]
            observations = {}
            for pid in ids:
                obs = {"resourceType": "Observation", "status": "final", "code": {"text": "mạch"}}
                made = http.post("/Observation", json={**obs, "subject": {"reference": f"Patient/{pid}"}}, headers=auth)
                observations[pid] = made.json()["id"]
                care = {  # a current Encounter at the clinician's facility (bv1): its patients are open to it
                    "resourceType": "Encounter",
                    "status": "in-progress",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": {"reference": f"Patient/{pid}"},
                    "period": {"start": date.today().isoformat()},
                    "serviceProvider": {"reference": "Organization/bv1"},  # written for no one: the provider counts
                }
                assert http.post("/Encounter", json=care, headers=auth).status_code == 201
            accounts.add("bacsi", PASSWORD, "clinician", organization="Organization/bv1", now=now)
            accounts.add("guessed", PASSWORD, "clinician", organization="Organization/bv1", now=now)
            accounts.add("benhnhan", PASSWORD, "patient", patient=f"Patient/{ids[0]}", now=now)
            _, totp = accounts.add("quantri", PASSWORD, "admin", now=now)
            assert totp is not None and secret is not None
            site = Site(
                services, live.base.removesuffix("/fhir"), audience, issuer_for(audience), app.client_id,
                web.client_id, secret, other.client_id, totp, ids[0], ids[1], observations,
            )  # fmt: skip
            yield site
            for browser in site.browsers:
                browser.close()
        stop_services(services)
        store.close()


class Browser:
    """A user agent: keeps cookies, follows nothing, reads forms."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.http = httpx.Client(base_url=site.root, timeout=60, follow_redirects=False)
        site.browsers.append(self.http)

    def authorize(self, **params: str) -> httpx.Response:
        return self.http.get("/auth/authorize", params=params)

    def sign_in(self, page: httpx.Response, username: str, password: str = PASSWORD, totp: str = "") -> httpx.Response:
        form = {"request": _hidden(page.text), "username": username, "password": password, "totp": totp}
        return self.http.post("/auth/authorize/sign-in", data=form)

    def consent(self, page: httpx.Response, decision: str = "allow", patient: str | None = None) -> httpx.Response:
        form = {"request": _hidden(page.text), "decision": decision}
        if patient is not None:
            form["patient"] = patient
        return self.http.post("/auth/authorize/consent", data=form)


def _hidden(html: str) -> str:
    found = re.search(r'name="request" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _request(site: Site, client_id: str, challenge: str, scope: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": scope,
        "state": "st-1", "aud": site.audience, "code_challenge": challenge, "code_challenge_method": "S256", **extra,
    }  # fmt: skip


def _code(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 303, response.text[:300]
    location = response.headers["location"]
    return parse_qs(urlsplit(location).query)


def get_code(site: Site, username: str, scope: str, client_id: str | None = None, **extra: str) -> tuple[str, str]:
    """Sign in and consent as ``username``: (code, verifier)."""
    browser = Browser(site)
    verifier, challenge = _pkce()
    page = browser.authorize(**_request(site, client_id or site.app, challenge, scope, **extra))
    assert page.status_code == 200, page.text[:300]
    consent = browser.sign_in(page, username)
    assert "consent" in consent.text, consent.text[:500]
    params = _code(browser.consent(consent))
    assert params["state"] == ["st-1"] and params["iss"] == [site.issuer]
    return params["code"][0], verifier


def token(site: Site, **form: str) -> httpx.Response:
    return httpx.post(f"{site.root}/auth/token", data=form, timeout=60)


def exchange(site: Site, code: str, verifier: str, client_id: str | None = None) -> httpx.Response:
    return token(
        site, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier,
        client_id=client_id or site.app,
    )  # fmt: skip


def fhir(site: Site, path: str, access: str) -> httpx.Response:
    return httpx.get(f"{site.root}/fhir/{path}", headers={"Authorization": f"Bearer {access}"}, timeout=60)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def introspect(site: Site, tok: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{site.root}/auth/introspect", data={"token": tok}, headers=_basic(site.web, site.web_secret), timeout=60
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


# ---- the whole flow ----------------------------------------------------------------------------


def test_full_flow_sign_in_consent_code_token_api_refresh_revoke(site: Site) -> None:
    code, verifier = get_code(site, "benhnhan", "openid fhirUser offline_access patient/*.rs")
    answer = exchange(site, code, verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["patient"] == site.patient
    assert body["scope"] == "fhirUser offline_access openid patient/*.rs"
    assert {"access_token", "refresh_token", "id_token", "expires_in"} <= set(body)
    # The token works, and only for this patient's compartment.
    own = fhir(site, f"Observation/{site.observations[site.patient]}", body["access_token"])
    assert own.status_code == 200
    other = fhir(site, f"Observation/{site.observations[site.other_patient]}", body["access_token"])
    assert other.status_code == 404
    assert introspect(site, body["access_token"])["patient"] == site.patient
    # Refresh: a new pair; the old refresh token is spent.
    again = token(site, grant_type="refresh_token", refresh_token=body["refresh_token"], client_id=site.app)
    assert again.status_code == 200, again.text
    fresh = again.json()
    assert fresh["refresh_token"] != body["refresh_token"] and fhir(site, "Patient", fresh["access_token"]).is_success
    # Revoke the new refresh token: the grant ends, its access tokens stop at the edge.
    revoked = httpx.post(f"{site.root}/auth/revoke", data={"token": fresh["refresh_token"], "client_id": site.app})
    assert revoked.status_code == 200
    assert (
        token(site, grant_type="refresh_token", refresh_token=fresh["refresh_token"], client_id=site.app).json()[
            "error"
        ]
        == "invalid_grant"
    )
    stopped = fhir(site, "Patient", fresh["access_token"])
    assert stopped.status_code == 401 and "revoked" in stopped.headers["www-authenticate"]
    assert introspect(site, fresh["access_token"]) == {"active": False}


def test_discovery_lists_the_user_facing_flow(site: Site) -> None:
    config = httpx.get(f"{site.root}/fhir/.well-known/smart-configuration").json()
    assert config["authorization_endpoint"] == f"{site.issuer}/authorize"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"launch-ehr", "launch-standalone", "permission-offline"} <= set(config["capabilities"])


# ---- AU-03: PKCE and codes ---------------------------------------------------------------------


def test_pkce_plain_or_missing_challenge_is_refused_at_the_authorize_endpoint(site: Site) -> None:
    browser = Browser(site)
    verifier, _ = _pkce()
    plain = browser.authorize(**_request(site, site.app, verifier, "patient/*.rs", code_challenge_method="plain"))
    assert _code(plain)["error"] == ["invalid_request"]
    missing = _request(site, site.app, "", "patient/*.rs")
    del missing["code_challenge"]
    assert _code(browser.authorize(**missing))["error"] == ["invalid_request"]


def test_missing_or_wrong_verifier_is_refused_and_burns_the_code(site: Site) -> None:
    code, verifier = get_code(site, "benhnhan", "patient/*.rs")
    wrong = exchange(site, code, _pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert exchange(site, code, verifier).json()["error"] == "invalid_grant"  # spent by the failed try
    code, verifier = get_code(site, "benhnhan", "patient/*.rs")
    missing = token(site, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, client_id=site.app)
    assert missing.json()["error"] == "invalid_grant"
    code, verifier = get_code(site, "benhnhan", "patient/*.rs")
    assert exchange(site, code, challenge_of(verifier)).json()["error"] == "invalid_grant"  # challenge as verifier


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_a_reused_code_is_refused_and_revokes_what_it_gave(site: Site) -> None:
    code, verifier = get_code(site, "benhnhan", "offline_access patient/*.rs")
    first = exchange(site, code, verifier).json()
    assert fhir(site, "Patient", first["access_token"]).status_code == 200
    replay = exchange(site, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert fhir(site, "Patient", first["access_token"]).status_code == 401
    assert (
        token(site, grant_type="refresh_token", refresh_token=first["refresh_token"], client_id=site.app).json()[
            "error"
        ]
        == "invalid_grant"
    )


def test_a_code_for_another_client_or_redirect_uri_is_refused(site: Site) -> None:
    code, verifier = get_code(site, "benhnhan", "patient/*.rs")
    assert exchange(site, code, verifier, client_id=site.other_app).json()["error"] == "invalid_grant"
    code, verifier = get_code(site, "benhnhan", "patient/*.rs")
    moved = token(
        site, grant_type="authorization_code", code=code, redirect_uri=REDIRECT + "x", code_verifier=verifier,
        client_id=site.app,
    )  # fmt: skip
    assert moved.json()["error"] == "invalid_grant"


def test_unregistered_redirect_uri_or_client_is_shown_not_redirected(site: Site) -> None:
    browser = Browser(site)
    _, challenge = _pkce()
    evil = browser.authorize(
        **_request(site, site.app, challenge, "patient/*.rs", redirect_uri="https://evil.example/")
    )
    assert evil.status_code == 400 and "location" not in evil.headers
    assert "redirect_uri" in evil.text
    for near in (REDIRECT + "/", REDIRECT[:-1], REDIRECT.upper()):  # one character off: no exact match
        nearly = browser.authorize(**_request(site, site.app, challenge, "patient/*.rs", redirect_uri=near))
        assert nearly.status_code == 400 and "location" not in nearly.headers
    unknown = browser.authorize(**_request(site, "nobody", challenge, "patient/*.rs"))
    assert unknown.status_code == 400 and "location" not in unknown.headers
    wrong_aud = browser.authorize(**_request(site, site.app, challenge, "patient/*.rs", aud="https://other/fhir"))
    assert _code(wrong_aud)["error"] == ["invalid_request"]


# ---- sign-in and consent pages -----------------------------------------------------------------


def test_pages_are_bilingual_unframeable_and_uncached(site: Site) -> None:
    browser = Browser(site)
    _, challenge = _pkce()
    vi = browser.authorize(**_request(site, site.app, challenge, "patient/*.rs"))
    assert "Tên đăng nhập" in vi.text and 'lang="vi"' in vi.text and "Sổ sức khoẻ" in vi.text
    en = browser.authorize(**_request(site, site.app, challenge, "patient/*.rs", ui_locales="en"))
    assert "User name" in en.text
    for page in (vi, en):
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "http" not in re.sub(r'action="/auth/[a-z/-]+"', "", page.text.split("<body>")[1])  # no external asset
    cookie = next(iter(browser.http.cookies.jar))
    assert cookie.path == "/auth/authorize" and cookie.has_nonstandard_attr("HttpOnly")


def test_wrong_password_unknown_user_and_another_browser(site: Site) -> None:
    browser = Browser(site)
    _, challenge = _pkce()
    page = browser.authorize(**_request(site, site.app, challenge, "patient/*.rs"))
    wrong = browser.sign_in(page, "benhnhan", "not the password at all")
    unknown = browser.sign_in(page, "nobody-here", "not the password at all")
    assert "không đúng" in wrong.text and "không đúng" in unknown.text  # one message: no user enumeration
    thief = Browser(site)  # the form replayed without the cookie of the browser that began it
    stolen = thief.sign_in(page, "benhnhan")
    assert stolen.status_code == 400 and "hết hạn" in stolen.text


def test_repeated_failures_lock_the_account_with_retry_after(site: Site) -> None:
    browser = Browser(site)
    _, challenge = _pkce()
    page = browser.authorize(**_request(site, site.app, challenge, "user/*.rs", ui_locales="en"))
    answers = [browser.sign_in(page, "guessed", f"wrong guess number {n}") for n in range(6)]
    locked = answers[-1]
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1 and "locked" in locked.text
    right = browser.sign_in(page, "guessed")  # even the right password waits for the lock to end
    assert right.status_code == 429 and "consent" not in right.text


def test_each_address_is_rate_limited_on_the_sign_in_form(fresh_services: Services) -> None:
    from ketnoi.api.routes import create_app

    fresh_services.settings = fresh_services.settings.with_(auth="on", sign_in_burst=3, sign_in_per_s=0.01)
    now = time.time()
    app, _ = Clients(fresh_services.store).add("A", "patient/*.rs", kind="public", redirect_uris=[REDIRECT], now=now)
    with LiveServer(create_app(fresh_services)) as live, httpx.Client(base_url=live.base.removesuffix("/fhir")) as http:
        site = Site(fresh_services, str(http.base_url), fhir_base(fresh_services.settings), "", app.client_id,
                    "", "", "", "", "", "")  # fmt: skip
        browser = Browser(site)
        _, challenge = _pkce()
        page = browser.authorize(**_request(site, app.client_id, challenge, "patient/*.rs"))
        statuses = [browser.sign_in(page, f"user{n}", "some wrong password").status_code for n in range(5)]
        browser.http.close()
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]


def test_administrator_needs_totp(site: Site) -> None:
    browser = Browser(site)
    _, challenge = _pkce()
    page = browser.authorize(**_request(site, site.app, challenge, "user/*.rs", ui_locales="en"))
    asked = browser.sign_in(page, "quantri")
    assert "authenticator" in asked.text and "consent" not in asked.text
    done = browser.sign_in(page, "quantri", totp=current_code(site.admin_totp, time.time()))
    assert "consent" in done.text


def test_denied_consent_goes_back_to_the_app_as_access_denied(site: Site) -> None:
    browser = Browser(site)
    _, challenge = _pkce()
    consent = browser.sign_in(browser.authorize(**_request(site, site.app, challenge, "patient/*.rs")), "benhnhan")
    params = _code(browser.consent(consent, "deny"))
    assert params["error"] == ["access_denied"] and params["state"] == ["st-1"] and "code" not in params
    assert browser.consent(consent).status_code == 400  # answered once


# ---- launch context ----------------------------------------------------------------------------


def test_clinician_standalone_launch_chooses_a_patient(site: Site) -> None:
    browser = Browser(site)
    verifier, challenge = _pkce()
    page = browser.authorize(**_request(site, site.app, challenge, "launch/patient patient/*.rs"))
    consent = browser.sign_in(page, "bacsi")
    assert 'name="patient"' in consent.text
    nobody = browser.consent(consent, patient="does-not-exist")
    assert nobody.status_code == 400 and 'name="patient"' in nobody.text  # shown again, to correct
    code = _code(browser.consent(nobody, patient=f"Patient/{site.other_patient}"))["code"][0]
    body = exchange(site, code, verifier).json()
    assert body["patient"] == site.other_patient
    assert fhir(site, f"Observation/{site.observations[site.patient]}", body["access_token"]).status_code == 404


def test_an_app_asking_user_and_patient_scopes_gets_those_of_the_role(site: Site) -> None:
    # The console asks both (ADR 0026): staff without a patient context get user/ scopes only (a
    # patient/ scope without a patient would be useless), a patient gets patient/ scopes only.
    both = "openid fhirUser user/*.rs patient/*.rs"
    code, verifier = get_code(site, "bacsi", both)
    clinician = exchange(site, code, verifier).json()
    assert clinician["scope"].split() == ["fhirUser", "openid", "user/*.rs"] and "patient" not in clinician
    code, verifier = get_code(site, "benhnhan", both)
    patient = exchange(site, code, verifier).json()
    assert patient["scope"].split() == ["fhirUser", "openid", "patient/*.rs"] and patient["patient"] == site.patient
    # With launch/patient the clinician chooses a patient and keeps the patient/ scopes.
    browser, (verifier, challenge) = Browser(site), _pkce()
    consent = browser.sign_in(
        browser.authorize(**_request(site, site.app, challenge, "launch/patient " + both)), "bacsi"
    )
    code = _code(browser.consent(consent, patient=f"Patient/{site.patient}"))["code"][0]
    assert "patient/*.rs" in exchange(site, code, verifier).json()["scope"].split()


def test_ehr_launch_sets_the_patient_from_the_launch_handle(site: Site) -> None:
    code, verifier = get_code(site, "bacsi", "user/*.rs")
    clinician = exchange(site, code, verifier).json()["access_token"]
    made = httpx.post(
        f"{site.root}/auth/launch", data={"patient": f"Patient/{site.patient}"},
        headers={"Authorization": f"Bearer {clinician}"},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    anonymous = httpx.post(f"{site.root}/auth/launch", data={"patient": f"Patient/{site.patient}"})
    assert anonymous.status_code == 401
    code, verifier = get_code(site, "bacsi", "launch patient/*.rs", launch=made.json()["launch"])
    assert exchange(site, code, verifier).json()["patient"] == site.patient
    browser = Browser(site)
    _, challenge = _pkce()
    bad = browser.authorize(**_request(site, site.app, challenge, "launch patient/*.rs", launch="forged"))
    assert _code(bad)["error"] == ["invalid_request"]


# ---- AU-05: refresh tokens ---------------------------------------------------------------------


def test_refresh_token_is_bound_to_its_client_and_rotation_detects_theft(site: Site) -> None:
    code, verifier = get_code(site, "benhnhan", "offline_access patient/*.rs")
    body = exchange(site, code, verifier).json()
    stolen = token(site, grant_type="refresh_token", refresh_token=body["refresh_token"], client_id=site.other_app)
    assert stolen.json()["error"] == "invalid_grant"
    rotated = token(site, grant_type="refresh_token", refresh_token=body["refresh_token"], client_id=site.app).json()
    replay = token(site, grant_type="refresh_token", refresh_token=body["refresh_token"], client_id=site.app)
    assert replay.json()["error"] == "invalid_grant"
    # The replay of a rotated token ended the whole grant, including the new pair.
    assert (
        token(site, grant_type="refresh_token", refresh_token=rotated["refresh_token"], client_id=site.app).json()[
            "error"
        ]
        == "invalid_grant"
    )
    assert fhir(site, "Patient", rotated["access_token"]).status_code == 401


def test_refresh_may_narrow_but_not_widen(site: Site) -> None:
    code, verifier = get_code(site, "benhnhan", "offline_access patient/*.rs")
    body = exchange(site, code, verifier).json()
    wider = token(
        site, grant_type="refresh_token", refresh_token=body["refresh_token"], client_id=site.app,
        scope="patient/*.cruds",
    )  # fmt: skip
    assert wider.json()["error"] == "invalid_scope"
    narrow = token(
        site, grant_type="refresh_token", refresh_token=body["refresh_token"], client_id=site.app,
        scope="patient/Observation.rs",
    )  # fmt: skip
    assert narrow.json()["scope"] == "patient/Observation.rs"


# ---- confidential clients ----------------------------------------------------------------------


def test_confidential_client_must_authenticate_with_its_secret(site: Site) -> None:
    code, verifier = get_code(site, "bacsi", "user/*.rs", client_id=site.web)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    bare = token(site, **form, client_id=site.web)
    assert bare.status_code == 401 and bare.json()["error"] == "invalid_client"
    wrong = httpx.post(f"{site.root}/auth/token", data=form, headers=_basic(site.web, "wrong"))
    assert wrong.status_code == 401 and "WWW-Authenticate" in wrong.headers
    code, verifier = get_code(site, "bacsi", "user/*.rs", client_id=site.web)
    form.update(code=code, code_verifier=verifier)
    good = httpx.post(f"{site.root}/auth/token", data=form, headers=_basic(site.web, site.web_secret))
    assert good.status_code == 200, good.text
    both = httpx.post(
        f"{site.root}/auth/token", data={**form, "client_secret": site.web_secret},
        headers=_basic(site.web, site.web_secret),
    )  # fmt: skip
    assert both.json()["error"] == "invalid_request"  # one method only


def test_client_credentials_with_a_secret_gets_system_scopes_only(site: Site) -> None:
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs user/*.rs"}
    answer = httpx.post(f"{site.root}/auth/token", data=form, headers=_basic(site.web, site.web_secret)).json()
    assert answer["scope"] == "system/Patient.rs" and answer["expires_in"] <= 300 and "refresh_token" not in answer
    assert fhir(site, "Patient", answer["access_token"]).status_code == 200
    public = token(site, grant_type="client_credentials", scope="system/Patient.rs", client_id=site.app)
    assert public.status_code in (400, 401)


# ---- AU-06: introspection ----------------------------------------------------------------------


def test_introspection_active_expired_revoked_garbage(site: Site) -> None:
    code, verifier = get_code(site, "bacsi", "user/*.rs")
    access = exchange(site, code, verifier).json()["access_token"]
    active = introspect(site, access)
    assert active["active"] is True and active["sub"] == "bacsi" and active["scope"] == "user/*.rs"
    expired = issue_access_token(
        KeyStore(site.services.store).ring(time.time()), issuer=site.issuer, audience=site.audience,
        subject="bacsi", client_id=site.app, scope="user/*.rs", lifetime=60, now=time.time() - 3600,
    )  # fmt: skip
    assert introspect(site, expired) == {"active": False}
    for garbage in ("garbage", "a.b.c", "x" * 5000):
        assert introspect(site, garbage) == {"active": False}
    revoke = httpx.post(f"{site.root}/auth/revoke", data={"token": access, "client_id": site.app})
    assert revoke.status_code == 200
    assert introspect(site, access) == {"active": False}
    assert fhir(site, "Patient", access).status_code == 401
    public = httpx.post(f"{site.root}/auth/introspect", data={"token": access, "client_id": site.app})
    assert public.status_code == 401  # a public client may not probe tokens


def test_revoking_another_clients_token_does_nothing(site: Site) -> None:
    code, verifier = get_code(site, "bacsi", "user/*.rs")
    access = exchange(site, code, verifier).json()["access_token"]
    other = httpx.post(f"{site.root}/auth/revoke", data={"token": access, "client_id": site.other_app})
    assert other.status_code == 200  # RFC 7009: the same answer ...
    assert fhir(site, "Patient", access).status_code == 200  # ... but nothing revoked


def test_an_administrators_token_carries_the_role(site: Site) -> None:
    """The role is in our own signed token, so an administrator's user/ token may do what only
    administrators may (read the audit trail), and a clinician's same scope may not."""
    # An administrator of its own: a TOTP code is accepted once, and another test used this step's.
    _, totp = Accounts(site.services.store, hasher=CHEAP).add("quantri2", PASSWORD, "admin", now=time.time())
    assert totp is not None
    browser = Browser(site)
    verifier, challenge = _pkce()
    page = browser.authorize(**_request(site, site.app, challenge, "user/*.rs"))
    consent = browser.sign_in(page, "quantri2", totp=current_code(totp, time.time()))
    admin = exchange(site, _code(browser.consent(consent))["code"][0], verifier).json()["access_token"]
    code, verifier = get_code(site, "bacsi", "user/*.rs")
    clinician = exchange(site, code, verifier).json()["access_token"]
    assert fhir(site, "AuditEvent?_count=1", admin).status_code == 200
    assert fhir(site, "AuditEvent?_count=1", clinician).status_code == 403


def _auth_events(site: Site) -> list[dict[str, Any]]:
    import json

    with site.services.store.session(write=False) as session:
        rows = session.audit_rows(0, 100_000)
    events = [json.loads(r.event) for r in rows]
    return [e for e in events if e["type"]["code"] == "110114"]


def test_sign_ins_and_token_requests_are_audited(site: Site) -> None:
    before = len(_auth_events(site))
    browser = Browser(site)
    _, challenge = _pkce()
    page = browser.authorize(**_request(site, site.app, challenge, "patient/*.rs"))
    browser.sign_in(page, "benhnhan", "not the password at all")  # refused
    code, verifier = get_code(site, "benhnhan", "patient/*.rs")  # signed in
    exchange(site, code, verifier)  # issued
    exchange(site, code, verifier)  # refused: the code was used
    new = _auth_events(site)[before:]
    logins = [e for e in new if e["subtype"][0]["code"] == "110122"]
    tokens = [e for e in new if e["subtype"][0]["code"] == "token"]
    assert [e["outcome"] for e in logins] == ["4", "0"]
    assert logins[0]["outcomeDesc"] == "bad-password"
    assert [e["outcome"] for e in tokens] == ["0", "4"] and "invalid_grant" in tokens[1]["outcomeDesc"]
    for e in logins + tokens:
        client = next(a for a in e["agent"] if a["type"]["coding"][0]["code"] == "110153")
        assert client["network"]["address"] == "127.0.0.1" and client["who"]["identifier"]["value"] == site.app
    user = next(a for a in tokens[0]["agent"] if a.get("requestor") and "name" in a)
    assert user["name"] == "benhnhan"
