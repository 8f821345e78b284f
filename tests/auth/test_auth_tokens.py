"""ketnoi.auth.tokens: RFC 9068 access tokens and ID tokens; every refusal, the verification cache."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

from ketnoi.auth.keys import KeyRing
from ketnoi.auth.tokens import (
    AccessClaims,
    TokenError,
    VerifiedTokenCache,
    issue_access_token,
    issue_id_token,
    verify_access_token,
)

NOW = 1_700_000_000
ISS = "https://fhir.example.org"
AUD = "https://fhir.example.org/fhir"


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.generate(now=NOW)


@pytest.fixture(scope="module")
def rsa_ring() -> KeyRing:
    return KeyRing.generate("RS256", now=NOW)


def issue(ring: KeyRing, **changes: Any) -> str:
    args: dict[str, Any] = {
        "issuer": ISS,
        "audience": AUD,
        "subject": "user-1",
        "client_id": "app-1",
        "scope": "launch/patient patient/*.rs",
        "lifetime": 300,
        "now": NOW,
    }
    args.update(changes)
    return issue_access_token(ring, **args)


def verify(token: str, ring: KeyRing, *, now: float = NOW, cache: VerifiedTokenCache | None = None) -> AccessClaims:
    cache = VerifiedTokenCache() if cache is None else cache  # isolated from other tests
    return verify_access_token(token, ring, issuer=ISS, audience=AUD, now=now, cache=cache)


def refused(token: Any, ring: KeyRing, reason: str, *, now: float = NOW) -> None:
    with pytest.raises(TokenError) as err:
        verify(token, ring, now=now)
    assert err.value.reason == reason, err.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def good_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "user-1",
        "client_id": "app-1",
        "scope": "patient/*.rs",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 300,
        "jti": "j-1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def forge(
    ring: KeyRing, *, header: dict[str, Any] | None = None, claims: Any = None, payload: str | None = None
) -> str:
    """Sign arbitrary header/claims with the ring's active private key (test-only, via joserfc)."""
    active = ring.active()
    hdr = {"alg": active.alg, "typ": "at+jwt", "kid": active.kid, **(header or {})}
    hdr = {k: v for k, v in hdr.items() if v is not None}
    body = payload if payload is not None else json.dumps(good_claims() if claims is None else claims)
    # Accept any header value when signing, so that tests can produce what we must refuse.
    anything = {name: HeaderParameter(name, lambda _: None) for name in ("kid", "typ", "x-custom")}
    registry = JWSRegistry(header_registry=anything, algorithms=[hdr["alg"]])
    return jws.serialize_compact(hdr, body, ring.private_key(active.kid), registry=registry)


# --- happy paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["ring", "rsa_ring"])
def test_round_trip(which: str, request: pytest.FixtureRequest) -> None:
    ring: KeyRing = request.getfixturevalue(which)
    token = issue(ring, extra={"patient": "p-9", "fhirUser": "Practitioner/7"}, jti="fixed")
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": ring.active().alg, "typ": "at+jwt", "kid": ring.active().kid}
    claims = verify(token, ring)
    assert claims == AccessClaims(
        sub="user-1",
        client_id="app-1",
        scope="launch/patient patient/*.rs",
        exp=NOW + 300,
        iat=NOW,
        nbf=NOW,
        jti="fixed",
        issuer=ISS,
        audience=(AUD,),
        extra={"patient": "p-9", "fhirUser": "Practitioner/7"},
    )


def test_random_jti() -> None:
    ring = KeyRing.generate(now=NOW)
    first, second = verify(issue(ring), ring), verify(issue(ring), ring)
    assert first.jti != second.jti
    assert len(first.jti) >= 16


def test_audience_list_containing_ours(ring: KeyRing) -> None:
    assert verify(issue(ring, audience=["https://other.example", AUD]), ring).audience == ("https://other.example", AUD)


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_accepted_types(typ: str, ring: KeyRing) -> None:
    assert verify(forge(ring, header={"typ": typ}), ring).jti == "j-1"


def test_nbf_is_optional(ring: KeyRing) -> None:
    assert verify(forge(ring, claims=good_claims(nbf=None)), ring).nbf is None


@pytest.mark.parametrize("now", [NOW - 30, NOW + 300 + 29])
def test_leeway_accepts(now: int, ring: KeyRing) -> None:
    verify(issue(ring), ring, now=now)


@pytest.mark.parametrize("lifetime", [0, -1, 3601, True, 10**6])
def test_lifetime_bounds(lifetime: int, ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        issue(ring, lifetime=lifetime)


def test_lifetime_max(ring: KeyRing) -> None:
    assert verify(issue(ring, lifetime=3600), ring).exp == NOW + 3600


@pytest.mark.parametrize("name", ["aud", "exp", "iss", "scope", "sub", "client_id", "jti", "nbf", "iat"])
def test_extra_cannot_override_registered_claims(name: str, ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="registered claims"):
        issue(ring, extra={name: "x"})


def test_extra_is_read_only(ring: KeyRing) -> None:
    claims = verify(issue(ring, extra={"patient": "p-1"}), ring)
    with pytest.raises(TypeError):
        claims.extra["patient"] = "p-2"  # type: ignore[index]


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!!.x.y", "....", "é.é.é", b64(b"not json") + ".e30.sig", 12345, None],
)
def test_malformed(token: Any, ring: KeyRing) -> None:
    refused(token, ring, "malformed")


@pytest.mark.parametrize(
    ("payload", "header"),
    [
        pytest.param("not json", None, id="payload-not-json"),
        pytest.param("[1, 2]", None, id="payload-array"),
        pytest.param(None, {"b64": False, "crit": ["b64"]}, id="rfc7797-unencoded"),
        pytest.param(None, {"x-custom": 1}, id="unknown-header"),
        pytest.param(None, {"kid": 5}, id="kid-not-string"),
    ],
)
def test_malformed_signed(payload: str | None, header: dict[str, Any] | None, ring: KeyRing) -> None:
    refused(forge(ring, header=header, payload=payload), ring, "malformed")


def test_oversize(ring: KeyRing) -> None:
    refused("a" * 8193, ring, "oversize")
    big = issue(ring, extra={"blob": "x" * 9000})
    refused(big, ring, "oversize")


def _unsigned(ring: KeyRing, alg: str) -> str:
    header = {"alg": alg, "typ": "at+jwt", "kid": ring.active().kid}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(good_claims()).encode())}."


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none(alg: str, ring: KeyRing) -> None:
    refused(_unsigned(ring, alg), ring, "algorithm")


@pytest.mark.parametrize("which", ["ring", "rsa_ring"])
@pytest.mark.parametrize("secret_format", ["jwk-json", "pem"])
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_with_public_key_as_secret(
    which: str, secret_format: str, alg: str, request: pytest.FixtureRequest
) -> None:
    """The classic key-confusion attack (RFC 8725 §2.1): the public key used as an HMAC secret."""
    ring: KeyRing = request.getfixturevalue(which)
    kid = ring.active().kid
    public = ring.public_key(kid, NOW)
    assert public is not None
    if secret_format == "pem":
        secret = public.as_pem(private=False)
        key = OctKey(secret, secret)  # joserfc refuses OctKey.import_key(PEM); build it directly
    else:
        key = OctKey.import_key(json.dumps(public.as_dict(private=False)).encode())
    header = {"alg": alg, "typ": "at+jwt", "kid": kid}
    token = jws.serialize_compact(header, json.dumps(good_claims()), key, algorithms=[alg])
    refused(token, ring, "algorithm")


def test_alg_mismatching_the_key() -> None:
    """A ring holding an RS256 and an ES256 key: a token may not claim the other key's algorithm."""
    ring = KeyRing.generate("RS256", now=NOW)
    rsa_kid = ring.active().kid
    ring.rotate(NOW, token_lifetime=3600, alg="ES256")
    ec_kid = ring.active().kid
    body = json.dumps(good_claims())
    es_with_rsa_kid = jws.serialize_compact(
        {"alg": "ES256", "typ": "at+jwt", "kid": rsa_kid}, body, ring.private_key(ec_kid), algorithms=["ES256"]
    )
    rs_with_ec_kid = jws.serialize_compact(
        {"alg": "RS256", "typ": "at+jwt", "kid": ec_kid}, body, ring.private_key(rsa_kid), algorithms=["RS256"]
    )
    refused(es_with_rsa_kid, ring, "algorithm")
    refused(rs_with_ec_kid, ring, "algorithm")


@pytest.mark.parametrize("alg", ["PS256", "RS384", "RS512"])
def test_other_rsa_algorithms(alg: str, rsa_ring: KeyRing) -> None:
    """Signed with the ring's own RSA key, but with an algorithm outside the allowlist."""
    active = rsa_ring.active()
    key = RSAKey.import_key({k: v for k, v in active.private_jwk.items() if k != "alg"})
    token = jws.serialize_compact(
        {"alg": alg, "typ": "at+jwt", "kid": active.kid}, json.dumps(good_claims()), key, algorithms=[alg]
    )
    refused(token, rsa_ring, "algorithm")


@pytest.mark.parametrize("kid", [None, "unknown", ""])
def test_unknown_kid(kid: str | None, ring: KeyRing) -> None:
    refused(forge(ring, header={"kid": kid}), ring, "unknown-key")  # None: no kid header at all


def test_token_from_another_ring(ring: KeyRing) -> None:
    refused(issue(KeyRing.generate(now=NOW)), ring, "unknown-key")


def test_bad_signature_other_key_same_kid(ring: KeyRing) -> None:
    impostor = ECKey.generate_key("P-256")
    header = {"alg": "ES256", "typ": "at+jwt", "kid": ring.active().kid}
    token = jws.serialize_compact(header, json.dumps(good_claims()), impostor, algorithms=["ES256"])
    refused(token, ring, "bad-signature")


@pytest.mark.parametrize("which", ["ring", "rsa_ring"])
def test_bad_signature_tampered(which: str, request: pytest.FixtureRequest) -> None:
    ring: KeyRing = request.getfixturevalue(which)
    header, _, signature = issue(ring).split(".")
    tampered = f"{header}.{b64(json.dumps(good_claims(sub='admin')).encode())}.{signature}"
    refused(tampered, ring, "bad-signature")
    refused(f"{header}.{_}.{signature[:-4]}", ring, "bad-signature")


def test_id_token_is_not_an_access_token(ring: KeyRing) -> None:
    id_token = issue_id_token(ring, issuer=ISS, subject="user-1", client_id=AUD, now=NOW)
    refused(id_token, ring, "type")


@pytest.mark.parametrize("typ", [None, "JWT", "at+jwt2", "jwt+at", "application/jwt"])
def test_wrong_type(typ: str | None, ring: KeyRing) -> None:
    refused(forge(ring, header={"typ": typ}), ring, "type")


def test_expired(ring: KeyRing) -> None:
    token = issue(ring)
    refused(token, ring, "expired", now=NOW + 300 + 30)  # exp + leeway
    refused(token, ring, "expired", now=NOW + 10_000)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_yet_valid(claim: str, ring: KeyRing) -> None:
    refused(forge(ring, claims=good_claims(**{claim: NOW + 31})), ring, "not-yet-valid")


@pytest.mark.parametrize("aud", ["https://other.example/fhir", ["https://other.example"], AUD + "/"])
def test_wrong_audience(aud: Any, ring: KeyRing) -> None:
    refused(issue(ring, audience=aud), ring, "audience")


@pytest.mark.parametrize("iss", ["https://evil.example", ISS + "/"])
def test_wrong_issuer(iss: str, ring: KeyRing) -> None:
    refused(issue(ring, issuer=iss), ring, "issuer")


@pytest.mark.parametrize("name", ["iss", "aud", "sub", "client_id", "scope", "iat", "exp", "jti"])
def test_missing_claim(name: str, ring: KeyRing) -> None:
    refused(forge(ring, claims=good_claims(**{name: None})), ring, "claims")


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "tomorrow"},
        {"exp": True},
        {"iat": [1]},
        {"nbf": "now"},
        {"aud": 5},
        {"aud": []},
        {"aud": [AUD, 5]},
        {"scope": ["patient/*.rs"]},
        {"sub": 1},
    ],
)
def test_mistyped_claim(changes: dict[str, Any], ring: KeyRing) -> None:
    refused(forge(ring, claims=good_claims(**changes)), ring, "claims")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "9" * 400])
def test_non_finite_exp(value: str, ring: KeyRing) -> None:
    payload = json.dumps(good_claims(exp=0)).replace('"exp": 0', f'"exp": {value}')
    refused(forge(ring, payload=payload), ring, "claims")


# --- rotation ------------------------------------------------------------------------------


def test_rotation() -> None:
    ring = KeyRing.generate(now=NOW)
    old_kid = ring.active().kid
    old_token = issue(ring)
    ring.rotate(NOW + 10, token_lifetime=300)  # old key retires at NOW + 310
    new_token = issue(ring, now=NOW + 10)
    assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))["kid"] != old_kid
    cache = VerifiedTokenCache()
    for now in (NOW + 10, NOW + 309):
        assert verify(old_token, ring, now=now, cache=cache).sub == "user-1"
        assert verify(new_token, ring, now=now, cache=cache).sub == "user-1"
    with pytest.raises(TokenError) as err:  # still within exp + leeway, but the key is gone
        verify(old_token, ring, now=NOW + 310, cache=cache)
    assert err.value.reason == "unknown-key"
    assert verify(new_token, ring, now=NOW + 310, cache=cache).sub == "user-1"


# --- the verification cache ----------------------------------------------------------------


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def test_cache_returns_same_claims(ring: KeyRing) -> None:
    cache = VerifiedTokenCache()
    token = issue(ring)
    first = verify(token, ring, cache=cache)
    assert len(cache) == 1
    second = verify(token, ring, now=NOW + 100, cache=cache)
    assert second is first  # served from the cache: not re-verified, not re-parsed


def test_default_cache(ring: KeyRing) -> None:
    token = issue(ring, jti="default-cache")
    first = verify_access_token(token, ring, issuer=ISS, audience=AUD, now=NOW)
    assert verify_access_token(token, ring, issuer=ISS, audience=AUD, now=NOW) is first


def test_cache_still_refuses_expired(ring: KeyRing) -> None:
    cache = VerifiedTokenCache()
    token = issue(ring)
    verify(token, ring, cache=cache)
    with pytest.raises(TokenError) as err:
        verify(token, ring, now=NOW + 330, cache=cache)
    assert err.value.reason == "expired"
    assert cache.get(_digest(token)) is None  # an expired token is dropped


def test_cache_still_refuses_not_yet_valid(ring: KeyRing) -> None:
    cache = VerifiedTokenCache()
    token = issue(ring, now=NOW + 100)
    verify(token, ring, now=NOW + 100, cache=cache)
    with pytest.raises(TokenError) as err:
        verify(token, ring, now=NOW, cache=cache)
    assert err.value.reason == "not-yet-valid"


def test_cache_still_checks_issuer_and_audience(ring: KeyRing) -> None:
    cache = VerifiedTokenCache()
    token = issue(ring)
    verify(token, ring, cache=cache)
    for kwargs, reason in (
        ({"issuer": "https://x", "audience": AUD}, "issuer"),
        ({"issuer": ISS, "audience": "https://x"}, "audience"),
    ):
        with pytest.raises(TokenError) as err:
            verify_access_token(token, ring, now=NOW, cache=cache, **kwargs)
        assert err.value.reason == reason


def test_cache_entry_unusable_once_key_leaves_ring() -> None:
    ring = KeyRing.generate(now=NOW)
    cache = VerifiedTokenCache()
    token = issue(ring)
    verify(token, ring, cache=cache)
    ring.rotate(NOW + 1, token_lifetime=0)  # old key retired at once
    with pytest.raises(TokenError) as err:
        verify(token, ring, now=NOW + 1, cache=cache)
    assert err.value.reason == "unknown-key"


def test_cache_entry_bound_to_key_object(ring: KeyRing) -> None:
    """A ring reloaded from storage has new key objects: the entry is re-verified, not trusted."""
    cache = VerifiedTokenCache()
    token = issue(ring)
    first = verify(token, ring, cache=cache)
    reloaded = KeyRing.from_json(ring.to_json())
    second = verify(token, reloaded, cache=cache)
    assert second == first and second is not first
    with pytest.raises(TokenError) as err:  # another ring never benefits from this ring's entry
        verify(token, KeyRing.generate(now=NOW), cache=cache)
    assert err.value.reason == "unknown-key"


def test_failures_are_not_cached(ring: KeyRing) -> None:
    cache = VerifiedTokenCache()
    header, _payload, signature = issue(ring).split(".")
    bad = f"{header}.{b64(json.dumps(good_claims(sub='admin')).encode())}.{signature}"
    for _ in range(2):
        with pytest.raises(TokenError):
            verify(bad, ring, cache=cache)
    assert len(cache) == 0


def test_cache_is_bounded_lru(ring: KeyRing) -> None:
    cache = VerifiedTokenCache(max_entries=2)
    a, b, c = (issue(ring, jti=j) for j in "abc")
    verify(a, ring, cache=cache)
    verify(b, ring, cache=cache)
    verify(a, ring, cache=cache)  # a is now the most recently used
    verify(c, ring, cache=cache)
    assert len(cache) == 2
    assert cache.get(_digest(b)) is None
    assert cache.get(_digest(a)) is not None and cache.get(_digest(c)) is not None


# --- ID tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["ring", "rsa_ring"])
def test_id_token(which: str, request: pytest.FixtureRequest) -> None:
    ring: KeyRing = request.getfixturevalue(which)
    token = issue_id_token(
        ring, issuer=ISS, subject="user-1", client_id="app-1", now=NOW, nonce="n-1", fhir_user="Practitioner/7"
    )
    kid = ring.active().kid
    key = ring.public_key(kid, NOW)
    assert isinstance(key, ECKey | RSAKey)
    obj = jws.deserialize_compact(token, key, algorithms=[ring.active().alg])
    assert obj.headers() == {"alg": ring.active().alg, "typ": "JWT", "kid": kid}
    assert json.loads(obj.payload) == {
        "iss": ISS,
        "sub": "user-1",
        "aud": "app-1",
        "iat": NOW,
        "exp": NOW + 300,
        "nonce": "n-1",
        "fhirUser": "Practitioner/7",
    }


def test_id_token_optional_claims(ring: KeyRing) -> None:
    token = issue_id_token(ring, issuer=ISS, subject="u", client_id="c", now=NOW, lifetime=60)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims == {"iss": ISS, "sub": "u", "aud": "c", "iat": NOW, "exp": NOW + 60}


@pytest.mark.parametrize("lifetime", [0, 3601])
def test_id_token_lifetime(lifetime: int, ring: KeyRing) -> None:
    with pytest.raises(ValueError):
        issue_id_token(ring, issuer=ISS, subject="u", client_id="c", now=NOW, lifetime=lifetime)
