"""Codes, refresh-token families and the revocation list over the store (both backends)."""

from __future__ import annotations

import time
from types import MappingProxyType

from ketnoi.auth.tokens import AccessClaims
from ketnoi.interactions.services import Services
from ketnoi.security import grants
from ketnoi.security.accounts import Accounts
from ketnoi.security.clients import Clients
from tests.security.test_accounts import CHEAP


def _claims(sub: str = "u", client: str = "c", jti: str = "j", iat: int = 1000, sid: str | None = None) -> AccessClaims:
    extra = MappingProxyType({"sid": sid} if sid else {})
    return AccessClaims(sub, client, "user/*.rs", iat + 900, iat, iat, jti, "iss", ("aud",), extra)


def test_revocation_by_token_grant_user_and_client(fresh_services: Services) -> None:
    store = fresh_services.store
    view = grants.Revocations(store)
    now = 2000.0
    assert not view.revoked(_claims(), now)
    view.add("jti", "j", now)
    assert view.revoked(_claims(), now) and not view.revoked(_claims(jti="k"), now)
    view.add("sid", "fam", now)
    assert view.revoked(_claims(jti="k", sid="fam"), now)
    view.add("sub", "alice", now)
    # Tokens issued up to the revocation are refused; one issued later (re-enabled, signed in again) is not.
    assert view.revoked(_claims(sub="alice", jti="k", iat=1999), now)
    assert not view.revoked(_claims(sub="alice", jti="k", iat=2001), now)
    view.add("client", "app", now)
    assert view.revoked(_claims(client="app", jti="k", iat=1500), now)


def test_another_process_sees_a_revocation_within_the_refresh_window(fresh_services: Services) -> None:
    store = fresh_services.store
    server = grants.Revocations(store)  # the serving process's view
    t0 = time.time()
    assert not server.revoked(_claims(jti="x"), t0)
    with store.session(write=True) as session:  # e.g. `ketnoi users disable` in another process
        grants.revoke(session, "jti", "x", t0)
    assert not server.revoked(_claims(jti="x"), t0 + 1)  # cached
    assert server.revoked(_claims(jti="x"), t0 + grants.REVOCATION_REFRESH_S)  # re-read: seen well under 60 s


def test_disabling_a_user_or_revoking_a_client_revokes_their_tokens(fresh_services: Services) -> None:
    store = fresh_services.store
    now = time.time()
    accounts = Accounts(store, hasher=CHEAP)
    accounts.add("an", "a long enough passphrase 42", "clinician", organization="Organization/1", now=now)
    client, _ = Clients(store, hasher=CHEAP).add(
        "App", "user/*.rs", kind="public", redirect_uris=["http://127.0.0.1/cb"], now=now
    )
    view = grants.Revocations(store)
    before = int(now)
    accounts.disable("an", now=now + 1)
    Clients(store, hasher=CHEAP).revoke(client.client_id, now=now + 1)
    view.reload()
    assert view.revoked(_claims(sub="an", iat=before), now + 2)
    assert view.revoked(_claims(client=client.client_id, iat=before), now + 2)


def test_a_code_is_taken_once(fresh_services: Services) -> None:
    store = fresh_services.store
    now = time.time()
    grant = grants.Grant("an", "app", "user/*.rs", auth_time=now)
    code = grants.put_code(store, grant, "http://127.0.0.1/cb", "c" * 43, now)
    with store.session(write=True) as session:
        record = grants.take_code(session, code, now)
        assert record is not None and record.grant == grant
        assert grants.take_code(session, code, now) is None
        assert grants.replayed_code(session, code, now) == {}
        assert grants.replayed_code(session, "never-issued", now) is None
    other = grants.put_code(store, grant, "http://127.0.0.1/cb", "c" * 43, now)
    with store.session(write=True) as session:
        assert grants.take_code(session, other, now + grants.CODE_LIFETIME + 1) is None  # expired


def test_refresh_rotation_and_family_end(fresh_services: Services) -> None:
    store = fresh_services.store
    now = time.time()
    with store.session(write=True) as session:
        family = grants.start_family(
            session, grants.Grant("an", "app", "offline_access user/*.rs", auth_time=now), 60, now
        )
        first = grants.new_refresh_token(session, family, now)
    with store.session(write=True) as session:
        found = grants.find_refresh(session, first, now)
        assert found is not None and found.family == family.family and found.expires == now + 60
        grants.retire_refresh(session, first, found, now)
        second = grants.new_refresh_token(session, found, now)
    with store.session(write=True) as session:
        assert grants.find_refresh(session, first, now) is None
        assert grants.reused_refresh_family(session, first, now) == family.family
        assert grants.find_refresh(session, second, now + 61) is None  # the family's absolute end
        grants.end_family(session, family.family, now)
        assert grants.find_refresh(session, second, now) is None
