"""OAuth client registration over the store: kinds, redirect URIs, JWK Sets, scopes, secrets (both backends)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc.jwk import ECKey

from ketnoi.auth import passwords
from ketnoi.auth.passwords import make_hasher
from ketnoi.interactions.services import Services
from ketnoi.security.clients import KIND, ClientError, Clients

CHEAP = make_hasher(time_cost=1, memory_kib=8, parallelism=1)
NOW = 1_700_000_000.0
APP = "https://app.example.vn/callback"


def _public_jwk(kid: str) -> dict[str, Any]:
    return dict(ECKey.generate_key("P-256", private=True).as_dict(private=False, kid=kid))


def _private_jwk(kid: str) -> dict[str, Any]:
    return dict(ECKey.generate_key("P-256", private=True).as_dict(private=True, kid=kid))


@pytest.fixture
def clients(fresh_services: Services) -> Clients:
    return Clients(fresh_services.store, hasher=CHEAP)


def _stored(services: Services, client_id: str) -> str:
    with services.store.session(write=False) as s:
        text = s.security_get(KIND, client_id, NOW)
    assert text is not None
    return text


def test_public_client(clients: Clients) -> None:
    scope = "patient/Observation.read launch/patient openid"
    client, secret = clients.add("Sổ sức khỏe", scope, kind="public", redirect_uris=[APP, APP], now=1.0)
    assert secret is None and client.secret_hash is None
    assert len(client.client_id) == 48 and int(client.client_id, 16) >= 0  # 192 bits, hex
    assert client.client_id.replace("-", "").replace("_", "").isalnum()
    assert (client.name, client.kind, client.redirect_uris, client.revoked, client.created) == (
        "Sổ sức khỏe",
        "public",
        (APP,),  # duplicates collapse
        False,
        1.0,
    )
    assert client.scope == "launch/patient openid patient/Observation.rs"  # canonical
    assert clients.get(client.client_id) == client
    assert clients.get("unknown") is None


def test_client_ids_differ(clients: Clients) -> None:
    ids = {clients.add("a", "user/*.rs", kind="public", redirect_uris=[APP], now=NOW)[0].client_id for _ in range(5)}
    assert len(ids) == 5


def test_confidential_client_secret_is_shown_once_and_only_its_hash_kept(
    clients: Clients, fresh_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, secret = clients.add("EMR", "user/*.cruds", kind="confidential", redirect_uris=[APP], now=NOW)
    assert secret is not None and len(secret) >= 43  # 256 bits
    stored = _stored(fresh_services, client.client_id)
    assert secret not in stored and json.loads(stored)["secret_hash"].startswith("$argon2id$")
    assert secret not in repr(client) and "argon2" not in repr(client)
    assert clients.verify_secret(client.client_id, secret) == client
    assert clients.verify_secret(client.client_id, secret + "x") is None
    burned: list[object] = []
    monkeypatch.setattr(passwords, "burn_verify_time", lambda hasher: burned.append(hasher))
    assert clients.verify_secret("unknown", secret) is None
    assert burned == [CHEAP]  # an unknown id costs one verification, like a wrong secret


def test_only_confidential_active_clients_have_a_secret(clients: Clients) -> None:
    public, _ = clients.add("SPA", "user/*.rs", kind="public", redirect_uris=[APP], now=NOW)
    assert clients.verify_secret(public.client_id, "") is None
    client, secret = clients.add("EMR", "user/*.rs", kind="confidential", redirect_uris=[APP], now=NOW)
    assert secret is not None
    revoked = clients.revoke(client.client_id, now=NOW)
    assert revoked.revoked is True and clients.get(client.client_id) == revoked
    assert clients.verify_secret(client.client_id, secret) is None


def test_backend_clients(clients: Clients) -> None:
    jwks = {"keys": [_public_jwk("k1"), _public_jwk("k2")]}
    by_set, secret = clients.add("Sở Y tế", "system/*.rs", kind="backend", jwks=jwks, now=NOW)
    assert secret is None and by_set.jwks == jwks and by_set.jwks_url is None and by_set.redirect_uris == ()
    by_url, _ = clients.add("CDC", "system/Observation.rs", kind="backend", jwks_url="https://cdc.example/jwks", now=1)
    assert by_url.jwks is None and by_url.jwks_url == "https://cdc.example/jwks"
    local, _ = clients.add("dev", "system/*.rs", kind="backend", jwks_url="http://127.0.0.1:9000/jwks", now=NOW)
    assert local.jwks_url == "http://127.0.0.1:9000/jwks"
    assert clients.get(by_set.client_id) == by_set


def test_redirect_uris(clients: Clients) -> None:
    for uri in ("http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:8000/cb", "https://a.vn/cb?x=1"):
        client, _ = clients.add("app", "user/*.rs", kind="public", redirect_uris=[uri], now=NOW)
        assert client.redirect_uris == (uri,)


def _refusals() -> list[tuple[dict[str, Any], str]]:
    """(keyword arguments of add besides name and scope, what the English message says)."""
    public = {"kind": "public"}
    backend = {"kind": "backend"}
    return [
        ({"kind": "web"}, "Unknown client kind 'web'"),
        (public, "needs at least one redirect URI"),
        ({"kind": "confidential"}, "needs at least one redirect URI"),
        ({**public, "redirect_uris": ["http://app.example/cb"]}, "must be an absolute https URL"),
        ({**public, "redirect_uris": ["https://app.example/cb#frag"]}, "without '#'"),
        ({**public, "redirect_uris": ["/callback"]}, "absolute"),
        ({**public, "redirect_uris": ["app.example/cb"]}, "absolute"),
        ({**public, "redirect_uris": ["com.example.app:/cb"]}, "absolute https"),
        ({**public, "redirect_uris": ["https://app.example/cb\n"]}, "absolute https"),
        ({**public, "redirect_uris": ["https://[::1/cb"]}, "absolute https"),
        ({**public, "redirect_uris": ["https://app.example:port/cb"]}, "absolute https"),
        ({**public, "redirect_uris": [APP], "jwks_url": "https://a.example/jwks"}, "Only backend clients"),
        (backend, "JWK Set or a JWK Set URL"),
        ({**backend, "jwks": {"keys": [_public_jwk("a")]}, "jwks_url": "https://a/jwks"}, "one of them"),
        ({**backend, "jwks_url": "http://keys.example/jwks"}, "must be an absolute https URL"),
        ({**backend, "jwks_url": "https://a/jwks", "redirect_uris": [APP]}, "no redirect URI"),
        ({**backend, "jwks": {"keys": [_private_jwk("a")]}}, "private key"),
        ({**backend, "jwks": {"keys": [{**_public_jwk("a"), "p": "x"}]}}, "private key"),
        ({**backend, "jwks": {"keys": [_public_jwk("a"), _public_jwk("a")]}}, "share one kid"),
        ({**backend, "jwks": {"keys": [{k: v for k, v in _public_jwk("a").items() if k != "kid"}]}}, "a kid"),
        ({**backend, "jwks": {"keys": [{"kty": "oct", "kid": "a"}]}}, "kty EC or RSA"),
        ({**backend, "jwks": {"keys": []}}, "non-empty 'keys' list"),
        ({**backend, "jwks": {"keys": "k"}}, "non-empty 'keys' list"),
        ({**backend, "jwks": ["k"]}, "must be a JSON object"),
    ]


def test_add_refuses(clients: Clients) -> None:
    for options, expected in _refusals():
        with pytest.raises(ClientError) as caught:
            clients.add("app", "user/*.rs", now=NOW, **options)
        assert expected in caught.value.en, options
        assert caught.value.vi and str(caught.value) == f"{caught.value.en} / {caught.value.vi}"
    assert clients.list() == []


def test_scope_and_name_are_checked(clients: Clients) -> None:
    ok = {"kind": "public", "redirect_uris": [APP], "now": NOW}
    with pytest.raises(ClientError) as caught:
        clients.add("app", "user/Patient.rs user/patient.rs system/*.dus openid", **ok)  # type: ignore[arg-type]
    assert "user/patient.rs, system/*.dus" in caught.value.en
    for scope in ("", "   "):
        with pytest.raises(ClientError, match="at least one scope"):
            clients.add("app", scope, **ok)  # type: ignore[arg-type]
    for name in ("", "  ", "x" * 201):
        with pytest.raises(ClientError, match="needs a name"):
            clients.add(name, "user/*.rs", **ok)  # type: ignore[arg-type]
    assert clients.list() == []


def test_list_and_revoke(clients: Clients) -> None:
    a, _ = clients.add("a", "user/*.rs", kind="public", redirect_uris=[APP], now=NOW)
    b, _ = clients.add("b", "system/*.rs", kind="backend", jwks_url="https://b.example/jwks", now=NOW)
    assert clients.list() == sorted([a, b], key=lambda c: c.client_id)
    clients.revoke(a.client_id, now=NOW + 1)
    assert [(c.client_id, c.revoked) for c in clients.list()] == sorted(
        [(a.client_id, True), (b.client_id, False)], key=lambda pair: pair[0]
    )
    with pytest.raises(ClientError, match="No client with id 'nope'"):
        clients.revoke("nope", now=NOW)


def test_a_client_may_act_for_an_organization(clients: Clients, fresh_services: Services) -> None:
    """Backend and confidential clients registered for an organization: their client_credentials
    tokens act for it (issue 10). A public app acts for its users, never for one of its own."""
    backend, _ = clients.add(
        "LIS", "system/*.cruds", kind="backend", jwks={"keys": [_public_jwk("k")]}, organization="Organization/bv-1",
        now=NOW,
    )  # fmt: skip
    assert backend.organization == "Organization/bv-1"
    assert clients.get(backend.client_id) == backend
    assert json.loads(_stored(fresh_services, backend.client_id))["organization"] == "Organization/bv-1"
    plain, _ = clients.add("EMR", "user/*.rs", kind="confidential", redirect_uris=[APP], now=NOW)
    assert plain.organization is None
    with pytest.raises(ClientError, match="Only backend and confidential"):
        clients.add("SPA", "user/*.rs", kind="public", redirect_uris=[APP], organization="Organization/bv-1", now=NOW)
    with pytest.raises(ClientError, match="Organization/123"):
        clients.add("EMR", "user/*.rs", kind="confidential", redirect_uris=[APP], organization="bv-1", now=NOW)
