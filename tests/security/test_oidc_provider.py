"""ketnoi.security.oidc without a network: the provider is an httpx.MockTransport, time is ``now``.

Fetching (discovery, issuer check, jwks_uri, redirects, size), caching and its rate limits, a
provider that is down, the token checks, and the mapping of a token to a local account. The same
code against a real second ketnoi process: test_oidc_issuer.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import httpx
import pytest
from joserfc import jws

from ketnoi.auth.keys import KeyRing
from ketnoi.auth.scopes import parse_scopes
from ketnoi.auth.tokens import TokenError, issue_access_token, issue_id_token
from ketnoi.cli import main
from ketnoi.config import ConfigError, Settings, from_env
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts, User
from ketnoi.security.keystore import KeyStore
from ketnoi.security.oidc import (
    AccountCache,
    ExternalIssuer,
    ExternalIssuers,
    ProviderUnavailable,
    check_issuers,
    granted_scopes,
)

NOW = 1_700_000_000.0
ISS = "https://idp.example.vn/realms/vn"
AUD = "http://127.0.0.1:8080/fhir"
CONFIG = f"{ISS}/.well-known/openid-configuration"
JWKS = f"{ISS}/protocol/openid-connect/certs"


@dataclass
class Provider:
    """A fake OpenID provider: its key ring, what it answers, and what it was asked."""

    ring: KeyRing = field(default_factory=lambda: KeyRing.generate(now=NOW))
    routes: dict[str, Callable[[], httpx.Response]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    down: bool = False

    def __post_init__(self) -> None:
        self.routes[CONFIG] = lambda: httpx.Response(200, json={"issuer": ISS, "jwks_uri": JWKS})
        self.routes[JWKS] = lambda: httpx.Response(200, json=self.ring.jwks(NOW))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(str(request.url))
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        route = self.routes.get(str(request.url))
        return route() if route is not None else httpx.Response(404)

    def issuer(self) -> ExternalIssuer:
        return ExternalIssuer(ISS, AUD, httpx.MockTransport(self.handle))

    def token(self, now: float = NOW, ring: KeyRing | None = None, **changes: Any) -> str:
        args: dict[str, Any] = {"issuer": ISS, "audience": AUD, "subject": "lan", "client_id": "app",
                                "scope": "user/*.rs", "lifetime": 300, "now": now}  # fmt: skip
        return issue_access_token(ring or self.ring, **{**args, **changes})


def _refused(issuer: ExternalIssuer, token: str, reason: str, now: float = NOW) -> None:
    with pytest.raises(TokenError) as caught:
        issuer.verify(token, now)
    assert caught.value.reason == reason


# ---- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", [ISS, "http://127.0.0.1:8081/auth", "http://localhost/auth", "http://[::1]:9000/auth", "https://idp.vn"]
)
def test_issuer_urls_accepted(url: str) -> None:
    check_issuers(Settings(oidc_issuers=(url,)))


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example.vn/auth",  # plain http off loopback
        "ftp://idp.example.vn/auth",
        "https://idp.example.vn/auth?realm=vn",
        "https://idp.example.vn/auth#x",
        "https://user:pw@idp.example.vn/auth",
        "https://idp.example.vn:port/auth",
        "idp.example.vn",
        "https://idp.example.vn/a b",
        "http://127.0.0.1:8080/auth",  # this server's own issuer
    ],
)
def test_issuer_urls_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="--oidc-issuer"):
        check_issuers(Settings(oidc_issuers=("https://fine.example.vn", url)))


def test_issuers_from_the_environment() -> None:
    assert from_env({}).oidc_issuers == ()
    env = {"KETNOI_OIDC_ISSUER": f" {ISS}, http://127.0.0.1:9/auth ,"}
    assert from_env(env).oidc_issuers == (ISS, "http://127.0.0.1:9/auth")


def test_serve_refuses_a_bad_issuer_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--database", "sqlite:///nowhere/x.db", "--oidc-issuer", "http://idp.example.vn/auth"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: --oidc-issuer 'http://idp.example.vn/auth'") and err.count("\n") == 1


# ---- fetching and caching ------------------------------------------------------------------------


def test_a_valid_token_and_the_keys_cached_for_five_minutes() -> None:
    provider = Provider()
    issuer = provider.issuer()
    assert issuer.verify(provider.token(), NOW).sub == "lan"
    assert provider.asked == [CONFIG, JWKS]
    assert issuer.verify(provider.token(NOW + 299, jti="b"), NOW + 299).sub == "lan"
    assert len(provider.asked) == 2  # cached
    issuer.verify(provider.token(NOW + 300, jti="c"), NOW + 300)
    assert provider.asked == [CONFIG, JWKS, CONFIG, JWKS]  # refreshed


def test_plain_jwt_type_accepted_but_an_id_token_fails_on_audience() -> None:
    provider = Provider()
    issuer = provider.issuer()
    active = provider.ring.active()
    claims = {"iss": ISS, "aud": AUD, "sub": "lan", "client_id": "app", "scope": "user/*.rs", "jti": "j",
              "iat": int(NOW), "exp": int(NOW) + 60}  # fmt: skip
    header = {"alg": active.alg, "typ": "JWT", "kid": active.kid}
    plain = jws.serialize_compact(header, json.dumps(claims), provider.ring.private_key(active.kid))
    assert issuer.verify(plain, NOW).sub == "lan"
    id_token = issue_id_token(provider.ring, issuer=ISS, subject="lan", client_id="app", now=NOW)
    with pytest.raises(TokenError) as caught:
        issuer.verify(id_token, NOW)
    assert caught.value.reason in ("audience", "claims")  # made for the client, not for our FHIR base


def test_token_checks() -> None:
    provider = Provider()
    issuer = provider.issuer()
    _refused(issuer, provider.token(audience="https://other.example/fhir"), "audience")
    _refused(issuer, provider.token(issuer="https://idp.example.vn/realms/other"), "issuer")
    _refused(issuer, provider.token(NOW - 400), "expired")
    _refused(issuer, provider.token(NOW + 400, lifetime=60), "not-yet-valid")


def test_the_discovery_document_must_name_the_issuer(caplog: pytest.LogCaptureFixture) -> None:
    provider = Provider()
    provider.routes[CONFIG] = lambda: httpx.Response(200, json={"issuer": ISS + "/", "jwks_uri": JWKS})
    with caplog.at_level(logging.WARNING, "ketnoi.security.oidc"), pytest.raises(ProviderUnavailable):
        provider.issuer().verify(provider.token(), NOW)
    assert "names issuer" in caplog.text and ISS in caplog.text


@pytest.mark.parametrize(
    ("jwks_uri", "ok"),
    [
        ("https://keys.cdn.example.vn/vn.json", True),  # https anywhere
        ("http://keys.example.vn/vn.json", False),  # plain http off the issuer's origin
        ("http://127.0.0.1/keys", False),  # ... even on loopback: not the issuer's
        ("file:///etc/passwd", False),
        (42, False),
    ],
)
def test_the_jwks_uri(jwks_uri: Any, ok: bool) -> None:
    provider = Provider()
    provider.routes[CONFIG] = lambda: httpx.Response(200, json={"issuer": ISS, "jwks_uri": jwks_uri})
    provider.routes[str(jwks_uri)] = lambda: httpx.Response(200, json=provider.ring.jwks(NOW))
    issuer = provider.issuer()
    if ok:
        assert issuer.verify(provider.token(), NOW).sub == "lan"
    else:
        with pytest.raises(ProviderUnavailable):
            issuer.verify(provider.token(), NOW)


def test_redirects_only_within_the_origin() -> None:
    provider = Provider()
    moved = f"{ISS}/keys/v2"
    provider.routes[JWKS] = lambda: httpx.Response(302, headers={"Location": "/realms/vn/keys/v2"})
    provider.routes[moved] = lambda: httpx.Response(200, json=provider.ring.jwks(NOW))
    assert provider.issuer().verify(provider.token(), NOW).sub == "lan"
    provider.routes[JWKS] = lambda: httpx.Response(302, headers={"Location": "https://evil.example/keys"})
    with pytest.raises(ProviderUnavailable):
        provider.issuer().verify(provider.token(), NOW)
    assert "https://evil.example/keys" not in provider.asked


@pytest.mark.parametrize(
    "answer",
    [
        lambda: httpx.Response(200, content=b'{"keys": []}' + b" " * 300_000),  # over the cap
        lambda: httpx.Response(200, content=(b" " * 1000 for _ in range(300))),  # streamed, no length
        lambda: httpx.Response(500, json={}),
        lambda: httpx.Response(200, content=b"<html>"),
        lambda: httpx.Response(200, json=[1, 2]),
        lambda: httpx.Response(200, json={"keys": []}),  # no key we could use
        lambda: httpx.Response(200, json={"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}),  # private
    ],
)
def test_unusable_answers(answer: Callable[[], httpx.Response]) -> None:
    provider = Provider()
    provider.routes[JWKS] = answer
    with pytest.raises(ProviderUnavailable):
        provider.issuer().verify(provider.token(), NOW)


def test_an_unknown_kid_fetches_again_at_most_every_30_seconds() -> None:
    provider = Provider()
    issuer = provider.issuer()
    issuer.verify(provider.token(), NOW)
    strangers = [provider.token(ring=KeyRing.generate(now=NOW)) for _ in range(5)]
    for token in strangers:  # a flood of made-up kids ...
        _refused(issuer, token, "unknown-key")
    assert len(provider.asked) == 4  # ... costs the provider one more fetch, not five
    _refused(issuer, strangers[0], "unknown-key", NOW + 29)
    assert len(provider.asked) == 4
    _refused(issuer, strangers[0], "unknown-key", NOW + 30)
    assert len(provider.asked) == 6


def test_a_rotated_key_is_fetched_when_first_seen() -> None:
    provider = Provider()
    issuer = provider.issuer()
    issuer.verify(provider.token(), NOW)
    provider.ring.rotate(NOW + 10, token_lifetime=3630)
    assert issuer.verify(provider.token(NOW + 10), NOW + 10).sub == "lan"
    assert len(provider.asked) == 4


def test_a_provider_down_before_any_fetch() -> None:
    provider = Provider(down=True)
    issuer = provider.issuer()
    with pytest.raises(ProviderUnavailable, match="cannot be reached"):
        issuer.verify(provider.token(), NOW)
    assert provider.asked == [CONFIG]
    with pytest.raises(ProviderUnavailable):
        issuer.verify(provider.token(NOW + 9), NOW + 9)
    assert provider.asked == [CONFIG]  # not asked again for 10 s
    provider.down = False
    assert issuer.verify(provider.token(NOW + 10), NOW + 10).sub == "lan"


def test_keys_fetched_earlier_outlive_an_outage_for_an_hour() -> None:
    provider = Provider()
    issuer = provider.issuer()
    issuer.verify(provider.token(), NOW)
    provider.down = True
    later = NOW + 300 + 3599
    assert issuer.verify(provider.token(later), later).sub == "lan"  # refresh failed: the old keys serve
    assert len(provider.asked) == 3
    with pytest.raises(ProviderUnavailable):
        issuer.verify(provider.token(later + 11), later + 11)  # more than an hour past due


def test_forget_drops_the_keys() -> None:
    provider = Provider()
    issuer = provider.issuer()
    issuer.verify(provider.token(), NOW)
    issuer.forget()
    issuer.verify(provider.token(NOW + 1), NOW + 1)
    assert len(provider.asked) == 4


# ---- claims → local account ----------------------------------------------------------------------


def _user(role: str, **links: str | None) -> User:
    return User("lan", role, links.get("organization"), links.get("patient"), links.get("fhir_user"),
                "hash", None, None, 0, 0.0, False, NOW)  # fmt: skip


class FakeAccounts:
    def __init__(self, *users: User) -> None:
        self.users = {u.username: u for u in users}
        self.reads = 0

    def get(self, username: str) -> User | None:
        self.reads += 1
        return self.users.get(username)


@pytest.mark.parametrize(
    ("role", "requested", "granted"),
    [
        ("clinician", "user/*.cruds", "user/*.cruds"),
        ("clinician", "user/Observation.rs system/*.cruds", "user/Observation.rs"),  # no system/ for people
        # Kept, but the provider's patient context is not trusted: without one, the policy refuses (403).
        ("clinician", "patient/*.rs", "patient/*.rs"),
        ("admin", "system/*.rs openid", "system/*.rs"),
        ("patient", "user/*.cruds", "patient/*.cruds"),  # a patient's own data is all "user" means
        ("patient", "user/Observation.rs", "patient/Observation.rs"),
        ("provincial", "garbage user/Patient.r", "user/Patient.r"),
    ],
)
def test_scopes_are_narrowed_by_the_local_role(role: str, requested: str, granted: str) -> None:
    assert granted_scopes(role, requested).text() == granted


def _issuers(provider: Provider, accounts: FakeAccounts) -> ExternalIssuers:
    settings = Settings(oidc_issuers=(ISS,))
    return ExternalIssuers(settings, cast(Accounts, accounts), httpx.MockTransport(provider.handle))


def test_the_local_account_decides_everything_but_client_and_scope() -> None:
    provider = Provider()
    accounts = FakeAccounts(_user("patient", patient="Patient/p1", fhir_user="Patient/p1"))
    issuers = _issuers(provider, accounts)
    extra = {"patient": "p2", "organization": "Organization/x", "fhirUser": "Practitioner/x", "roles": ["admin"]}
    token = provider.token(scope="user/*.cruds", extra=extra, client_id="portal")
    issuer = issuers.issuer_of(token)
    assert issuer is not None
    caller = issuers.caller(issuer, token, NOW)
    assert (caller.user, caller.patient, caller.organization, caller.fhir_user) == ("lan", "p1", None, "Patient/p1")
    assert caller.roles == frozenset({"patient"}) and caller.client_id == "portal"
    assert caller.scopes == parse_scopes("patient/*.cruds").narrow(parse_scopes("patient/*.cruds"))


def test_preferred_username_names_the_account() -> None:
    provider = Provider()
    accounts = FakeAccounts(_user("clinician", organization="Organization/bv"))
    issuers = _issuers(provider, accounts)
    token = provider.token(subject="f:3a9c:uuid", extra={"preferred_username": "LAN"})
    assert issuers.caller(issuers.issuers[ISS], token, NOW).user == "lan"
    for bad in ({"preferred_username": "not a name!"}, {}):  # unusable, or the opaque sub: no such account
        token = provider.token(subject="f:3a9c:uuid", extra=bad)
        with pytest.raises(TokenError, match="no local account"):
            issuers.caller(issuers.issuers[ISS], token, NOW)


def test_routing_by_the_unverified_issuer() -> None:
    provider = Provider()
    issuers = _issuers(provider, FakeAccounts())
    assert issuers.issuer_of(provider.token()) is issuers.issuers[ISS]
    assert issuers.issuer_of(provider.token(issuer="http://127.0.0.1:8080/auth")) is None
    assert issuers.issuer_of("garbage") is None
    assert issuers.issuer_of(provider.token() + "x" * 9000) is None  # oversize: not even decoded
    assert provider.asked == []


def test_accounts_are_reused_for_30_seconds() -> None:
    lan = _user("clinician", organization="Organization/bv")
    accounts = FakeAccounts(lan)
    cache = AccountCache(cast(Accounts, accounts))
    assert cache.get("lan", NOW) == lan
    accounts.users["lan"] = replace(lan, disabled=True)
    assert cache.get("lan", NOW + 29) == lan and accounts.reads == 1  # disabled, not yet seen
    assert cache.get("lan", NOW + 30).disabled  # type: ignore[union-attr]
    assert cache.get("nobody", NOW) is None and cache.get("nobody", NOW + 1) is None
    assert accounts.reads == 3  # a missing account is cached too
    cache.clear()
    cache.get("lan", NOW + 31)
    assert accounts.reads == 4


def test_account_cache_is_bounded() -> None:
    accounts = FakeAccounts()
    cache = AccountCache(cast(Accounts, accounts), max_entries=2)
    for name in ("a", "b", "c", "a"):
        cache.get(name, NOW)
    assert accounts.reads == 4  # "a" was evicted by "c"


# ---- this server as the provider of another: its JWK Set follows a rotation at once ---------------


def test_the_published_key_set_follows_a_rotation_within_a_second(fresh_services: Services) -> None:
    serving = KeyStore(fresh_services.store)
    first = serving.jwks(NOW)["keys"]
    new_kid = KeyStore(fresh_services.store).rotate(NOW + 0.5)  # `ketnoi keys rotate`, another process
    assert serving.jwks(NOW + 0.5)["keys"] == first  # read at most once a second
    assert new_kid in {k["kid"] for k in serving.jwks(NOW + 1.0)["keys"]}
