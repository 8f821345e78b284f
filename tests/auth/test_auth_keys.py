"""ketnoi.auth.keys: key generation, the key ring, rotation, the published JWK Set, storage."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from ketnoi.auth.keys import PRIVATE_MEMBERS, KeyRing, SigningKey, generate_key

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return generate_key("RS256", now=NOW)


def _assert_public_only(jwks: dict[str, Any]) -> None:
    for jwk in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        assert {"d", "p", "q", "dp", "dq", "qi"}.isdisjoint(jwk)  # spelled out, not via the module


@pytest.mark.parametrize(("alg", "kty"), [("ES256", "EC"), ("RS256", "RSA")])
def test_generate_key(alg: str, kty: str) -> None:
    key = generate_key(alg, now=NOW)
    assert key.alg == alg
    assert key.created_at == NOW
    assert key.retire_after is None
    assert key.private_jwk["kty"] == kty
    assert key.private_jwk["kid"] == key.kid
    assert key.private_jwk["alg"] == alg
    assert key.private_jwk["use"] == "sig"
    assert "d" in key.private_jwk
    imported = (ECKey if kty == "EC" else RSAKey).import_key(key.private_jwk)
    assert key.kid == imported.thumbprint()  # RFC 7638
    if kty == "EC":
        assert key.private_jwk["crv"] == "P-256"
    else:
        assert imported.public_key.key_size == 2048


def test_generate_key_default_is_es256() -> None:
    assert generate_key(now=NOW).alg == "ES256"


def test_generated_keys_differ() -> None:
    assert generate_key(now=NOW).kid != generate_key(now=NOW).kid


@pytest.mark.parametrize("alg", ["HS256", "none", "PS256", "ES384", "RS384", "EdDSA", ""])
def test_generate_key_refuses_other_algorithms(alg: str) -> None:
    with pytest.raises(ValueError, match="unsupported signing algorithm"):
        generate_key(alg, now=NOW)


def test_repr_hides_private_key() -> None:
    key = generate_key(now=NOW)
    assert key.private_jwk["d"] not in repr(key)
    assert "private_jwk" not in repr(key)


def test_public_jwk_has_no_private_parts(rsa_key: SigningKey) -> None:
    for key in (generate_key(now=NOW), rsa_key):
        public = key.public_jwk()
        assert public["kid"] == key.kid
        assert public["alg"] == key.alg
        assert public["use"] == "sig"
        _assert_public_only({"keys": [public]})


def test_new_ring_has_one_active_key() -> None:
    ring = KeyRing.generate(now=NOW)
    active = ring.active()
    assert ring.all_keys() == [active]
    jwks = ring.jwks(NOW)
    assert [k["kid"] for k in jwks["keys"]] == [active.kid]
    _assert_public_only(jwks)
    assert json.loads(json.dumps(jwks)) == jwks


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_jwks_public_parts(alg: str, rsa_key: SigningKey) -> None:
    ring = KeyRing([rsa_key]) if alg == "RS256" else KeyRing.generate(now=NOW)
    (jwk,) = ring.jwks(NOW)["keys"]
    assert jwk["alg"] == alg
    assert jwk["kty"] == ("RSA" if alg == "RS256" else "EC")
    _assert_public_only({"keys": [jwk]})


def test_empty_ring_has_no_active_key() -> None:
    ring = KeyRing()
    with pytest.raises(LookupError):
        ring.active()
    assert ring.jwks(NOW) == {"keys": []}


def test_rotate_keeps_old_key_published_until_its_tokens_expire() -> None:
    ring = KeyRing.generate(now=NOW)
    old = ring.active()
    new = ring.rotate(NOW + 100, token_lifetime=3600)
    assert ring.active() == new != old
    assert new.created_at == NOW + 100
    retiring = next(k for k in ring.all_keys() if k.kid == old.kid)
    assert retiring.retire_after == NOW + 100 + 3600
    for t in (NOW + 100, NOW + 3699):
        jwks = ring.jwks(t)
        assert {k["kid"] for k in jwks["keys"]} == {old.kid, new.kid}
        _assert_public_only(jwks)
        assert ring.public_key(old.kid, t) is not None
    assert [k["kid"] for k in ring.jwks(NOW + 3700)["keys"]] == [new.kid]
    assert ring.public_key(old.kid, NOW + 3700) is None
    assert ring.public_key(new.kid, NOW + 3700) is not None


def test_rotate_drops_keys_already_retired() -> None:
    ring = KeyRing.generate(now=NOW)
    first = ring.active()
    second = ring.rotate(NOW + 10, token_lifetime=60)
    third = ring.rotate(NOW + 100, token_lifetime=60)  # first retired at NOW + 70
    assert [k.kid for k in ring.all_keys()] == [second.kid, third.kid]
    assert first.kid not in {k["kid"] for k in ring.jwks(NOW + 100)["keys"]}


def test_rotate_can_change_algorithm() -> None:
    ring = KeyRing.generate(now=NOW)
    new = ring.rotate(NOW + 1, token_lifetime=60, alg="RS256")
    assert new.alg == "RS256"
    assert ring.rotate(NOW + 2, token_lifetime=60).alg == "RS256"  # keeps the current algorithm


def test_rotate_refuses_negative_lifetime() -> None:
    with pytest.raises(ValueError):
        KeyRing.generate(now=NOW).rotate(NOW, token_lifetime=-1)


def test_public_key_is_cached_and_public() -> None:
    ring = KeyRing.generate(now=NOW)
    kid = ring.active().kid
    key = ring.public_key(kid, NOW)
    assert key is not None
    assert key is ring.public_key(kid, NOW + 1)  # not rebuilt from JSON per request
    assert not key.is_private
    assert ring.private_key(kid).is_private
    assert ring.private_key(kid) is ring.private_key(kid)


@pytest.mark.parametrize("kid", ["unknown", ""])
def test_public_key_unknown(kid: str) -> None:
    assert KeyRing.generate(now=NOW).public_key(kid, NOW) is None


def test_json_round_trip(rsa_key: SigningKey) -> None:
    ring = KeyRing([rsa_key])
    ring.rotate(NOW + 5, token_lifetime=600, alg="ES256")
    stored = json.loads(json.dumps(ring.to_json()))
    loaded = KeyRing.from_json(stored)
    assert loaded.all_keys() == ring.all_keys()
    assert loaded.active() == ring.active()
    assert loaded.jwks(NOW + 10) == ring.jwks(NOW + 10)
    assert loaded.to_json() == stored


def _ring_json(**changes: Any) -> dict[str, Any]:
    data = KeyRing.generate(now=NOW).to_json()
    data["keys"][0].update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({}, "'keys' list", id="no-keys"),
        pytest.param({"keys": "nope"}, "'keys' list", id="keys-not-list"),
        pytest.param({"keys": [1]}, "'jwk' object", id="entry-not-object"),
        pytest.param({"keys": [{"kid": "x", "alg": "ES256"}]}, "'jwk' object", id="no-jwk"),
        pytest.param(_ring_json(alg="RS256"), "does not fit", id="alg-mismatch"),
        pytest.param(_ring_json(alg="HS256"), "unsupported signing algorithm", id="unsupported-alg"),
        pytest.param(_ring_json(kid="other"), "disagree", id="kid-mismatch"),
        pytest.param(_ring_json(jwk=OctKey.generate_key(256).as_dict()), "unsupported key type", id="oct-key"),
        pytest.param(
            _ring_json(jwk=ECKey.generate_key("P-384").as_dict(private=True)), "does not fit", id="wrong-curve"
        ),
    ],
)
def test_from_json_refuses(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KeyRing.from_json(data)


def test_from_json_refuses_public_only_key() -> None:
    key = generate_key(now=NOW)
    data = KeyRing([key]).to_json()
    data["keys"][0]["jwk"] = key.public_jwk()
    with pytest.raises(ValueError, match="no private part"):
        KeyRing.from_json(data)


def test_ring_refuses_duplicate_kid() -> None:
    key = generate_key(now=NOW)
    with pytest.raises(ValueError, match="duplicate kid"):
        KeyRing([key, replace(key, created_at=NOW + 1)])
