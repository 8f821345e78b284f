"""A user's own account (ketnoi.security.own_account, issue 15, ADR 0027 decision 6): only the caller's
account, each change behind the current password (and a code where one proves something), wrong answers on
the sign-in lock-out, every change and refusal in the audit log without a secret; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from argon2 import PasswordHasher

from ketnoi.auth.totp import STEP_S, current_code
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.services import Services
from ketnoi.security import grants
from ketnoi.security.accounts import Accounts
from ketnoi.security.admin import ACTION, FieldRefused, NotAllowed
from ketnoi.security.errors import Refused
from ketnoi.security.own_account import Locked, OwnAccount

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "mật-khẩu-đủ-dài-2026"
NEW_PASSWORD = "một câu dễ nhớ cho mật khẩu mới"
CLINICIAN = RequestContext(
    authenticated=True, user="bs.lan", roles=frozenset({"clinician"}), organization="Organization/bv1"
)
ADMIN = RequestContext(authenticated=True, user="quantri", roles=frozenset({"admin"}))


@pytest.fixture
def accounts(fresh_services: Services) -> Accounts:
    accounts = Accounts(fresh_services.store, hasher=CHEAP)
    now = time.time()
    accounts.add("bs.lan", PASSWORD, "clinician", organization="Organization/bv1", now=now)
    accounts.add("bs.minh", PASSWORD, "clinician", organization="Organization/bv1", now=now)
    accounts.add("quantri", PASSWORD, "admin", now=now)
    return accounts


@pytest.fixture
def own(fresh_services: Services, accounts: Accounts) -> OwnAccount:
    return OwnAccount(fresh_services.store, base="http://x/fhir", hasher=CHEAP)


def _events(services: Services) -> list[dict[str, Any]]:
    with services.store.session(write=False) as session:
        rows = session.audit_rows(0, 10_000)
    events = [json.loads(row.event) for row in rows]
    return [e for e in events if any(s.get("system") == ACTION for s in e.get("subtype", ()))]


def _trail(services: Services) -> list[tuple[str, str]]:
    return [(next(s["code"] for s in e["subtype"] if s["system"] == ACTION), e["outcome"]) for e in _events(services)]


def _wrong(secret: str, now: float) -> str:
    """A well-formed code that no step near ``now`` has."""
    near = {current_code(secret, now + d * STEP_S) for d in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


def _totp_on(own: OwnAccount, context: RequestContext = CLINICIAN) -> str:
    secret = own.new_totp(context)
    now = time.time()
    own.set_totp(context, secret, password=PASSWORD, code=current_code(secret, now), now=now)
    return secret


def test_the_page_shows_the_callers_account_and_no_secret(own: OwnAccount) -> None:
    mine = own.view(CLINICIAN)
    assert (mine.username, mine.role, mine.organization, mine.totp, mine.totp_required) == (
        "bs.lan", "clinician", "Organization/bv1", False, False
    )  # fmt: skip
    admin = own.view(ADMIN)
    assert admin.totp and admin.totp_required  # an administrator's account is made with TOTP
    assert not {"password_hash", "totp_secret"} & set(type(mine).__slots__)


@pytest.mark.parametrize(
    "context",
    [
        RequestContext(),  # --auth off: nobody
        RequestContext(user="bs.lan", roles=frozenset({"clinician"})),  # a name with no verified token behind it
        RequestContext(authenticated=True, user="https://idp.example|someone"),  # a token of no local account
    ],
)
def test_without_an_account_of_ones_own_everything_is_refused(
    own: OwnAccount, fresh_services: Services, context: RequestContext
) -> None:
    with pytest.raises(NotAllowed):
        own.view(context)
    with pytest.raises(NotAllowed):
        own.new_totp(context)
    with pytest.raises(NotAllowed):
        own.change_password(context, current=PASSWORD, new=NEW_PASSWORD, keep=None, now=time.time())
    assert _trail(fresh_services) == [("account-totp", "4"), ("account-password", "4")]


def test_a_new_key_takes_effect_only_with_the_password_and_a_code_from_it(
    own: OwnAccount, accounts: Accounts, fresh_services: Services
) -> None:
    secret = own.new_totp(CLINICIAN)
    assert accounts.get("bs.lan").totp_secret is None  # type: ignore[union-attr]  # made, not yet kept
    now = time.time()
    with pytest.raises(FieldRefused) as wrong:
        own.set_totp(CLINICIAN, secret, password="not the password", code=current_code(secret, now), now=now)
    assert wrong.value.field == "password"
    with pytest.raises(FieldRefused) as bad_code:
        own.set_totp(CLINICIAN, secret, password=PASSWORD, code=_wrong(secret, now), now=now)
    assert bad_code.value.field == "code" and bad_code.value.vi
    assert accounts.get("bs.lan").totp_secret is None  # type: ignore[union-attr]
    assert accounts.get("bs.lan").failures == 2  # type: ignore[union-attr]  # both count on the lock-out

    mine = own.set_totp(CLINICIAN, secret, password=PASSWORD, code=current_code(secret, now), now=now)
    assert mine.totp
    user = accounts.get("bs.lan")
    assert user is not None and user.totp_secret == secret and user.failures == 0
    # Sign-in now asks for the code; the one typed to confirm is used up (RFC 6238 §5.2), the next one works.
    assert accounts.sign_in("bs.lan", PASSWORD, None, now).reason == "totp-required"
    assert accounts.sign_in("bs.lan", PASSWORD, current_code(secret, now), now).reason == "bad-totp"
    later = now + STEP_S
    assert accounts.sign_in("bs.lan", PASSWORD, current_code(secret, later), later).user is not None
    assert accounts.get("bs.minh").totp_secret is None  # type: ignore[union-attr]  # nobody else's account
    assert _trail(fresh_services) == [("account-totp", "4"), ("account-totp", "4"), ("account-totp", "0")]


def test_replacing_a_key_needs_a_code_of_the_old_one(own: OwnAccount, accounts: Accounts) -> None:
    old = _totp_on(own)
    new = own.new_totp(CLINICIAN)
    now = time.time() + STEP_S  # the old key's code of this step was used to turn it on
    with pytest.raises(FieldRefused) as missing:
        own.set_totp(CLINICIAN, new, password=PASSWORD, code=current_code(new, now), now=now)
    assert missing.value.field == "old_code"
    assert accounts.get("bs.lan").totp_secret == old  # type: ignore[union-attr]
    own.set_totp(
        CLINICIAN, new, password=PASSWORD, code=current_code(new, now), old_code=current_code(old, now), now=now
    )
    assert accounts.get("bs.lan").totp_secret == new  # type: ignore[union-attr]


def test_an_administrator_cannot_turn_the_second_factor_off(
    own: OwnAccount, accounts: Accounts, fresh_services: Services
) -> None:
    secret = accounts.get("quantri").totp_secret  # type: ignore[union-attr]
    assert secret is not None
    now = time.time()
    with pytest.raises(NotAllowed) as refused:
        own.remove_totp(ADMIN, password=PASSWORD, code=current_code(secret, now), now=now)
    assert refused.value.status == 403 and "quản trị" in refused.value.vi
    assert accounts.get("quantri").totp_secret == secret  # type: ignore[union-attr]
    assert _trail(fresh_services) == [("account-totp-off", "4")]


def test_another_role_may_turn_it_off_with_the_password_and_a_code(own: OwnAccount, accounts: Accounts) -> None:
    secret = _totp_on(own)
    later = time.time() + STEP_S
    with pytest.raises(FieldRefused) as wrong:
        own.remove_totp(CLINICIAN, password=PASSWORD, code=_wrong(secret, later), now=later)
    assert wrong.value.field == "old_code"
    assert not own.remove_totp(CLINICIAN, password=PASSWORD, code=current_code(secret, later), now=later).totp
    assert accounts.get("bs.lan").totp_secret is None  # type: ignore[union-attr]
    with pytest.raises(Refused) as nothing:  # nothing left to turn off
        own.remove_totp(CLINICIAN, password=PASSWORD, code=current_code(secret, later), now=later)
    assert not isinstance(nothing.value, FieldRefused) and "đang tắt" in nothing.value.vi


def test_a_new_password_follows_the_policy_and_ends_every_other_sign_in(
    own: OwnAccount, accounts: Accounts, fresh_services: Services
) -> None:
    now = time.time()
    for weak in ("ngắn quá", "bs.lan-và-mật-khẩu", "matkhau123456", PASSWORD):
        with pytest.raises(FieldRefused) as refused:
            own.change_password(CLINICIAN, current=PASSWORD, new=weak, keep=None, now=now)
        assert refused.value.field == "new"
    with pytest.raises(FieldRefused) as wrong:
        own.change_password(CLINICIAN, current="not the password", new=NEW_PASSWORD, keep=None, now=now)
    assert wrong.value.field == "password"
    # Three sign-ins of bs.lan (this console, a phone app, another browser) and one of a colleague.
    store = fresh_services.store
    with store.session(write=True) as session:
        mine = [grants.start_family(session, grants.Grant("bs.lan", "app", "openid", auth_time=now), 3600, now)
                for _ in range(3)]  # fmt: skip
        theirs = grants.start_family(session, grants.Grant("bs.minh", "app", "openid", auth_time=now), 3600, now)
    changed, ended = own.change_password(CLINICIAN, current=PASSWORD, new=NEW_PASSWORD, keep=mine[0].family, now=now)
    assert changed.username == "bs.lan" and ended == 2
    with store.session(write=False) as session:
        families = {key for key, _ in session.security_list("family", now)}
        revoked = {key for key, _ in session.security_list("revoked", now)}
    assert families == {mine[0].family, theirs.family}  # this session and the colleague's go on
    assert revoked == {f"sid:{mine[1].family}", f"sid:{mine[2].family}"}  # the others' access tokens too
    assert accounts.sign_in("bs.lan", NEW_PASSWORD, None, now).user is not None
    assert accounts.sign_in("bs.lan", PASSWORD, None, now).reason == "bad-password"
    assert accounts.sign_in("bs.minh", PASSWORD, None, now).user is not None
    assert _trail(fresh_services) == [("account-password", "4")] * 5 + [("account-password", "0")]


def test_wrong_answers_lock_the_account_as_sign_in_does(own: OwnAccount, accounts: Accounts) -> None:
    now = time.time()
    for _ in range(5):  # the platform's lock-out: the fifth failure in a row locks for 30 s
        with pytest.raises(FieldRefused):
            own.change_password(CLINICIAN, current="guess", new=NEW_PASSWORD, keep=None, now=now)
    with pytest.raises(Locked) as locked:  # even the right password is not checked now
        own.change_password(CLINICIAN, current=PASSWORD, new=NEW_PASSWORD, keep=None, now=now + 1)
    assert locked.value.status == 429 and 0 < locked.value.retry_after <= 30
    assert accounts.sign_in("bs.lan", PASSWORD, None, now + 1).reason == "locked"  # and at the sign-in page
    secret = own.new_totp(CLINICIAN)
    with pytest.raises(Locked):
        own.set_totp(CLINICIAN, secret, password=PASSWORD, code=current_code(secret, now + 1), now=now + 1)
    later = now + 31
    own.change_password(CLINICIAN, current=PASSWORD, new=NEW_PASSWORD, keep=None, now=later)
    assert accounts.get("bs.lan").failures == 0  # type: ignore[union-attr]


def test_no_password_secret_or_code_enters_an_event(own: OwnAccount, fresh_services: Services) -> None:
    secret = _totp_on(own)
    later = time.time() + STEP_S
    code = current_code(secret, later)
    with pytest.raises(FieldRefused):
        own.change_password(CLINICIAN, current="wrong-password-typed", new=NEW_PASSWORD, keep=None, now=later)
    own.change_password(CLINICIAN, current=PASSWORD, new=NEW_PASSWORD, keep=None, now=later)
    own.remove_totp(CLINICIAN, password=NEW_PASSWORD, code=code, now=later)
    events = _events(fresh_services)
    text = json.dumps(events, ensure_ascii=False)
    for secret_text in (secret, PASSWORD, NEW_PASSWORD, "wrong-password-typed", code):
        assert secret_text not in text
    assert all(e["agent"][0]["who"]["identifier"]["value"] == "bs.lan" for e in events)
    assert all(e["entity"][0]["what"]["identifier"]["value"] == "bs.lan" for e in events)
    assert {(e["subtype"][0]["code"], e["action"]) for e in events} == {("110137", "U")}
