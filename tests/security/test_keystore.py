"""The signing key ring in the store: created once, cached per process, rotated without losing keys (both backends)."""

from __future__ import annotations

import json
import threading

import pytest

from ketnoi.auth.keys import KeyRing
from ketnoi.auth.tokens import TokenError, VerifiedTokenCache, issue_access_token, verify_access_token
from ketnoi.interactions.services import Services
from ketnoi.security.keystore import KEY, KIND, KeyStore

NOW = 1_700_000_000.0
AUD = "http://127.0.0.1:8080/fhir"
ISS = "http://127.0.0.1:8080/auth"


def _stored_kids(services: Services) -> list[str]:
    with services.store.session(write=False) as s:
        text = s.security_get(KIND, KEY, NOW)
    assert text is not None
    return [key.kid for key in KeyRing.from_json(json.loads(text)).all_keys()]


def _token(ring: KeyRing, now: float) -> str:
    return issue_access_token(
        ring, issuer=ISS, audience=AUD, subject="lan", client_id="ketnoi-cli", scope="user/*.rs", lifetime=300, now=now
    )


def _verify(token: str, ring: KeyRing, now: float) -> str:
    return verify_access_token(token, ring, issuer=ISS, audience=AUD, now=now, cache=VerifiedTokenCache()).sub


def test_the_ring_is_created_on_first_use_and_shared(fresh_services: Services) -> None:
    first = KeyStore(fresh_services.store).ring(NOW)
    (key,) = first.all_keys()
    assert key.alg == "ES256" and key.retire_after is None
    assert _stored_kids(fresh_services) == [key.kid]
    other_process = KeyStore(fresh_services.store).ring(NOW + 1)
    assert other_process.active().kid == key.kid  # read back, not made again
    assert "d" not in KeyStore(fresh_services.store).jwks(NOW)["keys"][0]


def test_processes_starting_together_agree_on_one_ring(fresh_services: Services) -> None:
    barrier = threading.Barrier(4)
    kids: list[str] = []

    def start() -> None:
        barrier.wait()
        kids.append(KeyStore(fresh_services.store).ring(NOW).active().kid)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(kids) == 4 and len(set(kids)) == 1
    assert _stored_kids(fresh_services) == kids[:1]


def test_rotation_keeps_the_old_key_published_until_its_tokens_expire(fresh_services: Services) -> None:
    keys = KeyStore(fresh_services.store)
    old = keys.ring(NOW).active().kid
    token = _token(keys.ring(NOW), NOW)
    new = keys.rotate(NOW + 10)
    assert new != old and keys.ring(NOW + 10).active().kid == new
    assert [k["kid"] for k in keys.jwks(NOW + 10)["keys"]] == [old, new]
    retiring = {k.kid: k.retire_after for k in keys.ring(NOW + 10).all_keys()}
    assert retiring == {old: NOW + 10 + 3630, new: None}
    assert _verify(token, keys.ring(NOW + 20), NOW + 20) == "lan"  # a token in flight still verifies
    assert [k["kid"] for k in keys.jwks(NOW + 10 + 3631)["keys"]] == [new]
    assert _verify(_token(keys.ring(NOW + 20), NOW + 20), KeyStore(fresh_services.store).ring(NOW + 20), NOW + 20)


def test_rotation_elsewhere_is_seen_after_the_refresh_or_a_reload(fresh_services: Services) -> None:
    server = KeyStore(fresh_services.store)
    old = server.ring(NOW).active().kid
    new = KeyStore(fresh_services.store).rotate(NOW + 1)  # `ketnoi keys rotate` in another process
    assert server.ring(NOW + 29).active().kid == old  # cached
    assert server.ring(NOW + 31).active().kid == new  # re-read after 30 s
    server.rotate(NOW + 40)
    newest = KeyStore(fresh_services.store).rotate(NOW + 41)
    assert server.ring(NOW + 42).active().kid != newest
    server.reload()
    assert server.ring(NOW + 42).active().kid == newest
    assert server.ring(NOW - 100).active().kid == newest  # a clock stepping back re-reads too


def test_an_unknown_kid_prompts_a_rate_limited_reread(fresh_services: Services) -> None:
    server = KeyStore(fresh_services.store)
    server.ring(NOW)
    new = KeyStore(fresh_services.store).rotate(NOW + 0.5)
    assert server.ring_with(new, NOW + 0.5).active().kid != new  # re-read less than a second ago
    assert server.ring_with(new, NOW + 1.5).active().kid == new
    assert server.ring_with("forged", NOW + 1.6).active().kid == new


def test_two_rotations_at_once_lose_no_key(fresh_services: Services) -> None:
    first = KeyStore(fresh_services.store).ring(NOW).active().kid
    barrier = threading.Barrier(3)
    made: list[str] = []

    def rotate() -> None:
        barrier.wait()
        made.append(KeyStore(fresh_services.store).rotate(NOW + 1))

    threads = [threading.Thread(target=rotate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(_stored_kids(fresh_services)) == sorted([first, *made])
    ring = KeyStore(fresh_services.store).ring(NOW + 2)
    assert sum(k.retire_after is None for k in ring.all_keys()) == 1  # one signs, the others retire


def test_rotate_to_rs256_and_on_an_empty_store(fresh_services: Services) -> None:
    keys = KeyStore(fresh_services.store)
    kid = keys.rotate(NOW, alg="RS256")  # no ring yet: the new key is the only one
    ring = keys.ring(NOW)
    assert [(k.kid, k.alg) for k in ring.all_keys()] == [(kid, "RS256")]
    assert _verify(_token(ring, NOW), ring, NOW) == "lan"
    with pytest.raises(ValueError, match="unsupported signing algorithm"):
        keys.rotate(NOW, alg="HS256")
    assert _stored_kids(fresh_services) == [kid]


def test_a_retired_key_verifies_nothing(fresh_services: Services) -> None:
    keys = KeyStore(fresh_services.store)
    token = _token(keys.ring(NOW), NOW)
    keys.rotate(NOW, token_lifetime=60)
    with pytest.raises(TokenError) as caught:
        _verify(token, keys.ring(NOW + 61), NOW + 61)
    assert caught.value.reason == "unknown-key"
