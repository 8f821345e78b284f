"""KeyRing.from_public_jwks (another issuer's published keys) and verify_access_token's token_types."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.jwk import ECKey

from ketnoi.auth.keys import KeyRing
from ketnoi.auth.tokens import ACCESS_TOKEN_TYPES, TokenError, VerifiedTokenCache, verify_access_token

NOW = 1_700_000_000.0
ISS = "https://idp.example.vn/realms/vn"
AUD = "http://127.0.0.1:8080/fhir"


@pytest.fixture(scope="module")
def provider() -> KeyRing:
    ring = KeyRing.generate("ES256", now=NOW)
    ring.rotate(NOW + 1, token_lifetime=3600, alg="RS256")
    return ring


def _token(ring: KeyRing, typ: str = "at+jwt") -> str:
    active = ring.active()
    claims = {"iss": ISS, "aud": AUD, "sub": "lan", "client_id": "app", "scope": "user/*.rs", "jti": "j",
              "iat": int(NOW), "exp": int(NOW) + 300}  # fmt: skip
    header = {"alg": active.alg, "typ": typ, "kid": active.kid}
    return jws.serialize_compact(header, json.dumps(claims), ring.private_key(active.kid))


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8)).rstrip(b"=").decode()


def _verify(token: str, ring: KeyRing, **kwargs: Any) -> str:
    return verify_access_token(token, ring, issuer=ISS, audience=AUD, now=NOW, **kwargs).sub


def test_a_published_set_verifies_the_providers_tokens(provider: KeyRing) -> None:
    public = KeyRing.from_public_jwks(provider.jwks(NOW), now=NOW)
    assert {k.kid for k in public.all_keys()} == {k.kid for k in provider.all_keys()}
    assert {k.alg for k in public.all_keys()} == {"ES256", "RS256"}
    assert _verify(_token(provider), public, cache=VerifiedTokenCache()) == "lan"
    with pytest.raises(LookupError):
        public.active()  # it cannot sign
    assert public.public_key(provider.active().kid, NOW + 10**9) is not None  # never retires by itself


def test_keys_we_cannot_use_are_skipped(provider: KeyRing) -> None:
    usable = provider.jwks(NOW)["keys"]
    p384 = ECKey.generate_key("P-384", private=False).as_dict(private=False, kid="p384")
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    small_rsa = {"kty": "RSA", "kid": "small", "alg": "RS256", "n": _b64(numbers.n), "e": _b64(numbers.e)}
    es = dict(usable[0])
    skipped: list[Any] = [
        "not a key",
        {**es, "kid": "enc", "use": "enc"},
        {**es, "kid": "ps", "alg": "PS256"},
        {**es, "kid": "hs", "alg": "HS256"},
        {**es, "kid": ""},
        {k: v for k, v in es.items() if k != "kid"},
        {**es, "kid": "broken", "x": "!!"},
        {**es, "kid": "mismatch", "alg": "RS256"},  # an EC key claiming RSA
        p384,
        small_rsa,
    ]
    ring = KeyRing.from_public_jwks({"keys": [*usable, *skipped]}, now=NOW)
    assert {k.kid for k in ring.all_keys()} == {k["kid"] for k in usable}


def test_a_key_without_alg_gets_the_one_its_type_allows(provider: KeyRing) -> None:
    keys = [{k: v for k, v in jwk.items() if k != "alg"} for jwk in provider.jwks(NOW)["keys"]]
    ring = KeyRing.from_public_jwks({"keys": keys}, now=NOW)
    assert {k.alg for k in ring.all_keys()} == {"ES256", "RS256"}
    assert _verify(_token(provider), ring, cache=VerifiedTokenCache()) == "lan"


@pytest.mark.parametrize(
    ("jwks", "message"),
    [
        ({}, "'keys' list"),
        ({"keys": "x"}, "'keys' list"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}, "private key material"),
    ],
)
def test_unusable_sets_are_refused(jwks: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KeyRing.from_public_jwks(jwks, now=NOW)


def test_a_private_key_or_a_shared_kid_refuses_the_whole_set(provider: KeyRing) -> None:
    private = provider.all_keys()[0].private_jwk
    with pytest.raises(ValueError, match="private key material"):
        KeyRing.from_public_jwks({"keys": [private]}, now=NOW)
    twice = provider.jwks(NOW)["keys"][0]
    with pytest.raises(ValueError, match="share the kid"):
        KeyRing.from_public_jwks({"keys": [twice, dict(twice)]}, now=NOW)


def test_token_types(provider: KeyRing) -> None:
    public = KeyRing.from_public_jwks(provider.jwks(NOW), now=NOW)
    plain = _token(provider, typ="JWT")
    with pytest.raises(TokenError, match="type"):
        _verify(plain, public, cache=VerifiedTokenCache())  # ours: RFC 9068 only
    cache = VerifiedTokenCache()
    assert _verify(plain, public, cache=cache, token_types=ACCESS_TOKEN_TYPES | {"jwt"}) == "lan"
    assert len(cache) == 1
    with pytest.raises(TokenError, match="type"):
        _verify(plain, public, cache=cache)  # a cache hit is held to the caller's types too
