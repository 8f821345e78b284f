"""ketnoi.auth.assertions: SMART Backend Services client assertions and the replay cache."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

from ketnoi.auth.assertions import AssertionRejected, ReplayCache, make_client_assertion, verify_client_assertion

NOW = 1_700_000_000
CLIENT = "backend-1"
TOKEN_URL = "https://fhir.example.org/auth/token"
JKU = "https://client.example/jwks.json"


def new_key(kind: str, kid: str = "k1") -> ECKey | RSAKey:
    if kind == "RSA":
        return RSAKey.generate_key(2048, parameters={"kid": kid})
    return ECKey.generate_key(kind, parameters={"kid": kid})  # "P-256" / "P-384"


@pytest.fixture(scope="module")
def ec_key() -> ECKey | RSAKey:
    return new_key("P-256")


@pytest.fixture(scope="module")
def rsa_key() -> ECKey | RSAKey:
    return new_key("RSA", kid="r1")


def jwks(*keys: ECKey | RSAKey | dict[str, Any]) -> dict[str, Any]:
    return {"keys": [k if isinstance(k, dict) else k.as_dict(private=False) for k in keys]}


def check(assertion: Any, client_jwks: dict[str, Any], *, replay: ReplayCache | None = None, **kw: Any) -> None:
    args: dict[str, Any] = {"client_id": CLIENT, "token_url": TOKEN_URL, "now": NOW}
    args.update(kw)
    verify_client_assertion(
        assertion, client_jwks=client_jwks, replay=ReplayCache() if replay is None else replay, **args
    )


def refused(assertion: Any, client_jwks: dict[str, Any], reason: str, **kw: Any) -> None:
    with pytest.raises(AssertionRejected) as err:
        check(assertion, client_jwks, **kw)
    assert err.value.reason == reason, err.value


def claims(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": NOW + 240, "jti": "jti-1"}
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def sign(key: Any, *, header: dict[str, Any] | None = None, body: dict[str, Any] | str | None = None) -> str:
    """Sign anything with joserfc (test-only): the header defaults to the key's alg and kid."""
    hdr = {"alg": "ES256", "typ": "JWT", "kid": "k1", **(header or {})}
    hdr = {k: v for k, v in hdr.items() if v is not None}
    payload = body if isinstance(body, str) else json.dumps(claims() if body is None else body)
    registry = JWSRegistry(header_registry={"x-custom": HeaderParameter("x", "str")}, algorithms=[hdr["alg"]])
    return jws.serialize_compact(hdr, payload, key, registry=registry)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- happy paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "alg"), [("P-256", "ES256"), ("P-384", "ES384"), ("RSA", "RS384"), ("RSA", "RS256")])
def test_accepted(kind: str, alg: str, rsa_key: ECKey | RSAKey) -> None:
    key = rsa_key if kind == "RSA" else new_key(kind)
    assertion = make_client_assertion(
        key.as_dict(private=True), client_id=CLIENT, token_url=TOKEN_URL, now=NOW, alg=alg
    )
    header = json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "=="))
    assert header == {"alg": alg, "typ": "JWT", "kid": key.kid}
    check(assertion, jwks(key))


@pytest.mark.parametrize(("kind", "alg"), [("P-256", "ES256"), ("P-384", "ES384"), ("RSA", "RS384")])
def test_make_client_assertion_default_alg(kind: str, alg: str, rsa_key: ECKey | RSAKey) -> None:
    key = rsa_key if kind == "RSA" else new_key(kind)
    assertion = make_client_assertion(key.as_dict(private=True), client_id=CLIENT, token_url=TOKEN_URL, now=NOW)
    assert json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "=="))["alg"] == alg
    payload = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
    assert payload["iss"] == payload["sub"] == CLIENT
    assert payload["aud"] == TOKEN_URL
    assert payload["exp"] == NOW + 120
    assert len(payload["jti"]) >= 16


def test_make_client_assertion_kid_defaults_to_thumbprint() -> None:
    key = ECKey.generate_key("P-256")
    assertion = make_client_assertion(key.as_dict(private=True), client_id=CLIENT, token_url=TOKEN_URL, now=NOW)
    assert json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "=="))["kid"] == key.thumbprint()
    check(assertion, jwks({**key.as_dict(private=False), "kid": key.thumbprint()}))


@pytest.mark.parametrize("jwk", [ECKey.generate_key("P-256").as_dict(private=False), OctKey.generate_key().as_dict()])
def test_make_client_assertion_needs_private_asymmetric_key(jwk: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_client_assertion(jwk, client_id=CLIENT, token_url=TOKEN_URL, now=NOW)


@pytest.mark.parametrize("ahead", [1, 60, 240, 300])
def test_exp_up_to_five_minutes_ahead(ahead: int, ec_key: ECKey) -> None:
    check(sign(ec_key, body=claims(exp=NOW + ahead, jti=f"j{ahead}")), jwks(ec_key))


def test_audience_list(ec_key: ECKey) -> None:
    check(sign(ec_key, body=claims(aud=["https://other.example", TOKEN_URL])), jwks(ec_key))


def test_key_chosen_by_kid_among_several(ec_key: ECKey, rsa_key: RSAKey) -> None:
    other = new_key("P-256", kid="k2")
    check(sign(other, header={"kid": "k2"}), jwks(ec_key, rsa_key, other))


def test_private_members_in_registered_jwks_are_ignored(ec_key: ECKey) -> None:
    check(sign(ec_key), {"keys": [ec_key.as_dict(private=True)]})


def test_nbf_in_the_past(ec_key: ECKey) -> None:
    check(sign(ec_key, body=claims(nbf=NOW - 10, iat=NOW - 10)), jwks(ec_key))


# --- replay --------------------------------------------------------------------------------


def test_replay_refused(ec_key: ECKey) -> None:
    replay = ReplayCache()
    assertion = sign(ec_key)
    check(assertion, jwks(ec_key), replay=replay)
    refused(assertion, jwks(ec_key), "replay", replay=replay)
    # a new assertion reusing the jti is a replay as well
    refused(sign(ec_key, body=claims(exp=NOW + 200)), jwks(ec_key), "replay", replay=replay, now=NOW + 1)


def test_same_jti_other_client_is_independent(ec_key: ECKey) -> None:
    replay = ReplayCache()
    check(sign(ec_key), jwks(ec_key), replay=replay)
    other = sign(ec_key, body=claims(iss="backend-2", sub="backend-2"))
    check(other, jwks(ec_key), replay=replay, client_id="backend-2")


def test_forged_assertion_does_not_burn_the_jti(ec_key: ECKey) -> None:
    """The replay check runs last: a forgery cannot get the real client's jti refused."""
    replay = ReplayCache()
    refused(sign(new_key("P-256")), jwks(ec_key), "bad-signature", replay=replay)
    refused(sign(ec_key, body=claims(aud="https://elsewhere")), jwks(ec_key), "audience", replay=replay)
    check(sign(ec_key), jwks(ec_key), replay=replay)


def test_replay_cache_remembers_until_exp() -> None:
    cache = ReplayCache()
    assert cache.seen_or_add(CLIENT, "a", NOW + 10, NOW) is False
    assert cache.seen_or_add(CLIENT, "a", NOW + 10, NOW + 9) is True
    assert cache.seen_or_add(CLIENT, "b", NOW + 20, NOW + 9) is False
    assert len(cache) == 2
    # at exp the assertion is refused as expired anyway, so the entry may go
    assert cache.seen_or_add(CLIENT, "c", NOW + 30, NOW + 10) is False
    assert len(cache) == 2


def test_replay_cache_full_of_live_entries_is_busy(ec_key: ECKey) -> None:
    cache = ReplayCache(max_entries=2)
    cache.seen_or_add(CLIENT, "a", NOW + 100, NOW)
    cache.seen_or_add(CLIENT, "b", NOW + 50, NOW)
    with pytest.raises(AssertionRejected) as err:
        cache.seen_or_add(CLIENT, "c", NOW + 100, NOW)
    assert err.value.reason == "busy"
    assert cache.seen_or_add(CLIENT, "a", NOW + 100, NOW) is True  # nothing was forgotten
    refused(sign(ec_key), jwks(ec_key), "busy", replay=cache)
    # once "b" expired there is room again; "a" (still alive) is kept
    assert cache.seen_or_add(CLIENT, "c", NOW + 100, NOW + 50) is False
    assert cache.seen_or_add(CLIENT, "a", NOW + 100, NOW + 50) is True


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("assertion", ["", "abc", "a.b", "a.b.c.d", "!!!.x.y", "é.é.é", 42, None])
def test_malformed(assertion: Any, ec_key: ECKey) -> None:
    refused(assertion, jwks(ec_key), "malformed")


@pytest.mark.parametrize(
    ("header", "body"),
    [
        pytest.param(None, "not json", id="payload-not-json"),
        pytest.param(None, "[1]", id="payload-array"),
        pytest.param({"b64": False, "crit": ["b64"]}, None, id="rfc7797-unencoded"),
        pytest.param({"x-custom": "1", "crit": ["x-custom"]}, None, id="unknown-critical-header"),
    ],
)
def test_malformed_signed(header: dict[str, Any] | None, body: str | None, ec_key: ECKey) -> None:
    refused(sign(ec_key, header=header, body=body), jwks(ec_key), "malformed")


def test_unknown_header_members_are_ignored(ec_key: ECKey) -> None:
    """RFC 7515 §4: a header member not understood is ignored unless ``crit`` names it (the SMART Bulk
    Data Tester signs with ``kty`` in the header)."""
    check(sign(ec_key, header={"x-custom": "1"}), jwks(ec_key))


def test_oversize(ec_key: ECKey) -> None:
    refused("a" * 8193, jwks(ec_key), "oversize")
    refused(sign(ec_key, body=claims(pad="x" * 9000)), jwks(ec_key), "oversize")


@pytest.mark.parametrize("alg", ["none", "None", ""])
def test_alg_none(alg: str, ec_key: ECKey) -> None:
    header = b64(json.dumps({"alg": alg, "kid": "k1"}).encode())
    refused(f"{header}.{b64(json.dumps(claims()).encode())}.", jwks(ec_key), "algorithm")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_with_public_key_as_secret(alg: str, ec_key: ECKey) -> None:
    secret = OctKey.import_key(json.dumps(ec_key.as_dict(private=False)).encode())
    refused(sign(secret, header={"alg": alg}), jwks(ec_key), "algorithm")


@pytest.mark.parametrize("alg", ["PS256", "RS512"])
def test_other_rsa_algorithms(alg: str, rsa_key: RSAKey) -> None:
    refused(sign(rsa_key, header={"alg": alg, "kid": "r1"}), jwks(rsa_key), "algorithm")


def test_es512_refused() -> None:
    key = new_key("P-521")
    refused(sign(key, header={"alg": "ES512"}), jwks(key), "algorithm")


def test_curve_must_match_algorithm(ec_key: ECKey) -> None:
    """ES384 claimed, the registered key under that kid is P-256."""
    p384 = new_key("P-384")
    refused(sign(p384, header={"alg": "ES384"}), jwks(ec_key), "algorithm")


@pytest.mark.parametrize("restriction", [{"use": "enc"}, {"alg": "ES384"}, {"key_ops": ["encrypt"]}])
def test_key_restrictions_are_honoured(restriction: dict[str, Any], ec_key: ECKey) -> None:
    refused(sign(ec_key), jwks({**ec_key.as_dict(private=False), **restriction}), "algorithm")


@pytest.mark.parametrize("kid", [None, ""])
def test_missing_kid(kid: str | None, ec_key: ECKey) -> None:
    refused(sign(ec_key, header={"kid": kid}), jwks(ec_key), "missing-kid")


@pytest.mark.parametrize("client_jwks", [{}, {"keys": "x"}, {"keys": []}, {"keys": [1]}])
def test_no_usable_jwks(client_jwks: dict[str, Any], ec_key: ECKey) -> None:
    refused(sign(ec_key), client_jwks, "unknown-key")


def test_unknown_kid(ec_key: ECKey) -> None:
    refused(sign(ec_key, header={"kid": "k9"}), jwks(ec_key), "unknown-key")
    refused(sign(ec_key, header={"kid": "K1"}), jwks(ec_key), "unknown-key")  # exact match only


def test_kid_of_other_key_type(ec_key: ECKey) -> None:
    """The kid exists, but names an EC key while the assertion claims RS384."""
    rsa = new_key("RSA", kid="k1")
    refused(sign(rsa, header={"alg": "RS384"}), jwks(ec_key), "unknown-key")


@pytest.mark.parametrize("twin", ["same-key", "other-ec-key", "rsa-key"])
def test_ambiguous_kid(twin: str, ec_key: ECKey) -> None:
    other = {"same-key": ec_key, "other-ec-key": new_key("P-256"), "rsa-key": new_key("RSA", kid="k1")}[twin]
    refused(sign(ec_key), jwks(ec_key, other), "ambiguous-key")


def test_invalid_jwk(ec_key: ECKey) -> None:
    broken = {**ec_key.as_dict(private=False), "x": "AAAA"}
    refused(sign(ec_key), jwks(broken), "bad-key")


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
def test_short_rsa_key() -> None:
    with pytest.warns(SecurityWarning):
        weak = RSAKey.generate_key(1024, parameters={"kid": "k1"})
    refused(sign(weak, header={"alg": "RS384"}), jwks(weak), "bad-key")


def test_bad_signature(ec_key: ECKey) -> None:
    refused(sign(new_key("P-256")), jwks(ec_key), "bad-signature")  # impostor key, same kid
    header, _, signature = sign(ec_key).split(".")
    tampered = f"{header}.{b64(json.dumps(claims(jti='other')).encode())}.{signature}"
    refused(tampered, jwks(ec_key), "bad-signature")


@pytest.mark.parametrize("jku", ["https://evil.example/jwks.json", JKU + "?x", "http://client.example/jwks.json"])
def test_jku_not_registered(jku: str, ec_key: ECKey) -> None:
    refused(sign(ec_key, header={"jku": jku}), jwks(ec_key), "jku", allowed_jku=frozenset({JKU}))


def test_jku_refused_by_default(ec_key: ECKey) -> None:
    refused(sign(ec_key, header={"jku": JKU}), jwks(ec_key), "jku")


def test_jku_registered(ec_key: ECKey) -> None:
    check(sign(ec_key, header={"jku": JKU}), jwks(ec_key), allowed_jku=frozenset({JKU}))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "other"}, "issuer"),
        ({"iss": None}, "issuer"),
        ({"sub": "other"}, "subject"),
        ({"sub": None}, "subject"),
        ({"aud": "https://fhir.example.org/auth/token/"}, "audience"),
        ({"aud": ["https://other.example"]}, "audience"),
        ({"aud": None}, "audience"),
        ({"exp": None}, "missing-exp"),
        ({"exp": "soon"}, "missing-exp"),
        ({"exp": NOW - 1}, "expired"),
        ({"exp": NOW}, "expired"),
        ({"exp": NOW + 600}, "exp-too-far"),
        ({"exp": NOW + 301}, "exp-too-far"),
        ({"nbf": NOW + 60}, "not-yet-valid"),
        ({"nbf": "now"}, "not-yet-valid"),
        ({"jti": None}, "missing-jti"),
        ({"jti": ""}, "missing-jti"),
        ({"jti": 7}, "missing-jti"),
    ],
)
def test_claim_refusals(changes: dict[str, Any], reason: str, ec_key: ECKey) -> None:
    refused(sign(ec_key, body=claims(**changes)), jwks(ec_key), reason)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400", "9" * 400])
def test_non_finite_exp(value: str, ec_key: ECKey) -> None:
    body = json.dumps(claims(exp=0)).replace('"exp": 0', f'"exp": {value}')
    refused(sign(ec_key, body=body), jwks(ec_key), "missing-exp")


def test_max_ahead_is_configurable(ec_key: ECKey) -> None:
    refused(sign(ec_key, body=claims(exp=NOW + 90)), jwks(ec_key), "exp-too-far", max_ahead=60)
