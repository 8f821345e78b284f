"""User accounts over the store: registration rules, sign-in, lock-out, TOTP and rehashing (both backends)."""

from __future__ import annotations

import json
import threading

import pytest
from argon2 import extract_parameters

from ketnoi.auth import passwords
from ketnoi.auth.passwords import CONTAINS_USERNAME, TOO_SHORT, make_hasher
from ketnoi.auth.totp import current_code
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import KIND, ROLE_SCOPES, AccountError, Accounts, User

CHEAP = make_hasher(time_cost=1, memory_kib=8, parallelism=1)  # behaviour, not strength
GOOD = "Cây đa, giếng nước, sân đình"
OTHER = "trống đồng Đông Sơn 1924"
NOW = 1_700_000_000.0


@pytest.fixture
def accounts(fresh_services: Services) -> Accounts:
    return Accounts(fresh_services.store, hasher=CHEAP)


def _clinician(accounts: Accounts, name: str = "lan", **options: object) -> User:
    user, _ = accounts.add(name, GOOD, "clinician", organization="Organization/tram-1", now=NOW, **options)  # type: ignore[arg-type]
    return user


def _stored(services: Services, username: str) -> dict[str, object]:
    with services.store.session(write=False) as s:
        text = s.security_get(KIND, username, NOW)
    assert text is not None
    value: dict[str, object] = json.loads(text)
    return value


def test_add_then_get(accounts: Accounts, fresh_services: Services) -> None:
    user, secret = accounts.add("Lan.Nguyen", GOOD, "clinician", organization="Organization/tram-1", now=NOW)
    assert secret is None  # only admins get a second factor by default
    assert (user.username, user.role, user.organization, user.patient) == (
        "lan.nguyen",
        "clinician",
        "Organization/tram-1",
        None,
    )
    assert (user.failures, user.locked_until, user.disabled, user.totp_secret) == (0, 0.0, False, None)
    assert user.created == NOW
    assert accounts.get("LAN.NGUYEN") == user
    assert accounts.get("nobody") is None
    assert accounts.get("not a name!") is None
    stored = json.dumps(_stored(fresh_services, "lan.nguyen"), ensure_ascii=False)
    assert GOOD not in stored and stored.count("$argon2id$") == 1  # only the hash is kept
    assert "password_hash" not in repr(user) and "$argon2id$" not in repr(user)


def test_admins_get_totp_by_default_others_on_request(accounts: Accounts) -> None:
    admin, admin_secret = accounts.add("root", GOOD, "admin", now=NOW)
    assert admin_secret is not None and admin.totp_secret == admin_secret
    _, none = accounts.add("quiet", GOOD, "admin", now=NOW, totp=False)
    assert none is None
    clinician, secret = accounts.add("mai", GOOD, "provincial", organization="Organization/so-y-te", now=NOW, totp=True)
    assert secret is not None and clinician.totp_secret == secret
    patient, _ = accounts.add("benh.nhan", GOOD, "patient", patient="Patient/p-1", now=NOW)
    assert (patient.patient, patient.fhir_user, patient.totp_secret) == ("Patient/p-1", "Patient/p-1", None)
    assert [u.username for u in accounts.list()] == ["benh.nhan", "mai", "quiet", "root"]


# (user name, password, role, links, what the English message says)
REFUSALS: list[tuple[str, str, str, dict[str, str], str]] = [
    ("", GOOD, "admin", {}, "1 to 64 characters"),
    ("x" * 65, GOOD, "admin", {}, "1 to 64 characters"),
    ("an ha", GOOD, "admin", {}, "1 to 64 characters"),
    ("đức", GOOD, "admin", {}, "1 to 64 characters"),
    ("ok", GOOD, "nurse", {}, "Unknown role 'nurse'"),
    ("ok", GOOD, "patient", {}, "linked to its record"),
    ("ok", GOOD, "clinician", {}, "must belong to an organization"),
    ("ok", GOOD, "provincial", {}, "must belong to an organization"),
    ("ok", GOOD, "clinician", {"organization": "Org/1"}, "not a reference such as Organization/123"),
    ("ok", GOOD, "patient", {"patient": "Patient/"}, "not a reference such as Patient/123"),
    ("ok", GOOD, "patient", {"patient": "Patient/a b"}, "not a reference"),
    ("ok", GOOD, "admin", {"fhir_user": "Device/1"}, "not a reference such as Practitioner/123"),
    ("ok", GOOD, "clinician", {"organization": "Organization/1", "patient": "Patient/1"}, "Only a patient account"),
    ("ok", "short", "admin", {}, TOO_SHORT[0]),
]


def test_add_refuses(accounts: Accounts) -> None:
    for username, password, role, links, expected in REFUSALS:
        with pytest.raises(AccountError) as caught:
            accounts.add(username, password, role, now=NOW, **links)  # type: ignore[arg-type]
        error = caught.value
        assert expected in error.en, (username, role, links)
        assert error.vi and error.vi != error.en
        assert str(error) == f"{error.en} / {error.vi}"
        assert isinstance(error, ValueError)
    assert accounts.list() == []


def test_every_password_problem_is_in_the_message(accounts: Accounts) -> None:
    with pytest.raises(AccountError) as caught:
        accounts.add("hoang", "hoang", "admin", now=NOW)
    for en, vi in (TOO_SHORT, CONTAINS_USERNAME):
        assert en in caught.value.en and vi in caught.value.vi


def test_a_taken_name_is_refused_whatever_its_case(accounts: Accounts) -> None:
    _clinician(accounts, "lan")
    with pytest.raises(AccountError, match="already taken"):
        accounts.add("LAN", OTHER, "admin", now=NOW)
    assert accounts.get("lan") is not None and accounts.get("lan").role == "clinician"  # type: ignore[union-attr]


def test_two_concurrent_adds_of_one_name_cannot_both_win(accounts: Accounts) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def add(role: str) -> None:
        barrier.wait()
        try:
            accounts.add("tuan", GOOD, role, now=NOW)
            outcomes.append(role)
        except AccountError:
            outcomes.append("refused")

    threads = [threading.Thread(target=add, args=(role,)) for role in ("admin", "admin", "admin", "admin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["admin", "refused", "refused", "refused"]
    assert len(accounts.list()) == 1


def test_sign_in_with_the_right_password(accounts: Accounts) -> None:
    user = _clinician(accounts)
    result = accounts.sign_in("LAN", GOOD, None, NOW)
    assert (result.user, result.reason, result.retry_after) == (user, None, 0.0)


def test_unknown_user_and_bad_password_both_fail_at_the_same_cost(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clinician(accounts)
    burned: list[object] = []
    real_burn = passwords.burn_verify_time
    monkeypatch.setattr(passwords, "burn_verify_time", lambda hasher: burned.append(hasher) or real_burn(hasher))
    unknown = accounts.sign_in("ghost", GOOD, None, NOW)
    malformed = accounts.sign_in("not a name!", GOOD, None, NOW)
    assert burned == [CHEAP, CHEAP]  # a real Argon2 verification was spent for each unknown name
    bad = accounts.sign_in("lan", OTHER, None, NOW)
    assert (unknown.user, unknown.reason) == (None, "unknown")
    assert (malformed.user, malformed.reason) == (None, "unknown")
    assert (bad.user, bad.reason, bad.retry_after) == (None, "bad-password", 0.0)
    assert accounts.get("lan").failures == 1  # type: ignore[union-attr]


def test_five_failures_lock_the_account(accounts: Accounts, fresh_services: Services) -> None:
    _clinician(accounts)
    results = [accounts.sign_in("lan", OTHER, None, NOW + i) for i in range(5)]
    assert [r.reason for r in results] == ["bad-password"] * 5
    assert [r.retry_after for r in results[:4]] == [0.0] * 4
    assert results[4].retry_after == 30.0
    assert _stored(fresh_services, "lan")["failures"] == 5
    locked = accounts.sign_in("lan", GOOD, None, NOW + 10)  # even the right password
    assert (locked.user, locked.reason) == (None, "locked")
    assert locked.retry_after == pytest.approx(24.0)
    after = accounts.sign_in("lan", GOOD, None, NOW + 35)
    assert after.user is not None and after.reason is None
    assert (after.user.failures, after.user.locked_until) == (0, 0.0)
    assert _stored(fresh_services, "lan")["failures"] == 0


def test_a_locked_account_checks_no_password(accounts: Accounts, monkeypatch: pytest.MonkeyPatch) -> None:
    _clinician(accounts)
    for i in range(5):
        accounts.sign_in("lan", OTHER, None, NOW + i)
    monkeypatch.setattr(passwords, "verify_password", lambda *a: pytest.fail("verified while locked"))
    assert accounts.sign_in("lan", OTHER, None, NOW + 5).reason == "locked"
    assert accounts.get("lan").failures == 5  # type: ignore[union-attr]  # failures while locked do not count


def test_success_resets_the_failure_count(accounts: Accounts) -> None:
    _clinician(accounts)
    for i in range(4):
        accounts.sign_in("lan", OTHER, None, NOW + i)
    assert accounts.sign_in("lan", GOOD, None, NOW + 5).user is not None
    results = [accounts.sign_in("lan", OTHER, None, NOW + 10 + i) for i in range(4)]
    assert [r.retry_after for r in results] == [0.0] * 4  # counting started again from zero


def test_concurrent_failures_are_all_counted(accounts: Accounts) -> None:
    _clinician(accounts)
    barrier = threading.Barrier(4)

    def fail() -> None:
        barrier.wait()
        accounts.sign_in("lan", OTHER, None, NOW)

    threads = [threading.Thread(target=fail) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert accounts.get("lan").failures == 4  # type: ignore[union-attr]  # no lost update


def test_totp_is_required_checked_and_never_replayed(accounts: Accounts) -> None:
    _, secret = accounts.add("root", GOOD, "admin", now=NOW)
    assert secret is not None
    missing = accounts.sign_in("root", GOOD, None, NOW)
    assert (missing.user, missing.reason) == (None, "totp-required")
    assert accounts.sign_in("root", GOOD, "", NOW).reason == "totp-required"
    assert accounts.get("root").failures == 0  # type: ignore[union-attr]  # a missing code is not a failure
    code = current_code(secret, NOW)
    wrong = "000000" if code != "000000" else "111111"
    assert accounts.sign_in("root", GOOD, wrong, NOW).reason == "bad-totp"
    assert accounts.get("root").failures == 1  # type: ignore[union-attr]  # a wrong code is
    assert accounts.sign_in("root", OTHER, code, NOW).reason == "bad-password"  # the password first
    ok = accounts.sign_in("root", GOOD, code, NOW)
    assert ok.user is not None and ok.user.totp_last_step == int(NOW // 30)
    assert ok.user.failures == 0
    replay = accounts.sign_in("root", GOOD, code, NOW + 1)
    assert (replay.user, replay.reason) == (None, "bad-totp")
    assert accounts.sign_in("root", GOOD, current_code(secret, NOW + 30), NOW + 30).user is not None


def test_sign_in_upgrades_an_old_hash(fresh_services: Services) -> None:
    Accounts(fresh_services.store, hasher=CHEAP).add("lan", GOOD, "clinician", organization="Organization/1", now=NOW)
    stronger = make_hasher(time_cost=2, memory_kib=16, parallelism=1)
    upgraded = Accounts(fresh_services.store, hasher=stronger)
    assert upgraded.sign_in("lan", OTHER, None, NOW).reason == "bad-password"
    assert extract_parameters(upgraded.get("lan").password_hash).time_cost == 1  # type: ignore[union-attr]
    result = upgraded.sign_in("lan", GOOD, None, NOW)
    assert result.user is not None
    stored = upgraded.get("lan")
    assert stored == result.user
    params = extract_parameters(stored.password_hash)
    assert (params.time_cost, params.memory_cost) == (2, 16)
    assert upgraded.sign_in("lan", GOOD, None, NOW).user is not None


@pytest.mark.parametrize(("new_password", "reason"), [(OTHER, "bad-password"), (GOOD, None)])
def test_a_password_changed_during_the_check_is_checked_again(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch, new_password: str, reason: str | None
) -> None:
    _clinician(accounts)
    real_verify = passwords.verify_password
    checked: list[str] = []

    def verify(stored: str, password: str, hasher: object) -> bool:
        checked.append(stored)
        if len(checked) == 1:  # a reset (or an upgrade of the hash) lands while the first check runs
            accounts.reset_password("lan", new_password, NOW)
        return real_verify(stored, password, hasher)  # type: ignore[arg-type]

    monkeypatch.setattr(passwords, "verify_password", verify)
    result = accounts.sign_in("lan", GOOD, None, NOW)
    assert result.reason == reason and (result.user is None) == (reason is not None)
    assert len(checked) == 2 and checked[0] != checked[1]  # the second check used the new hash


def test_disable_and_enable(accounts: Accounts) -> None:
    _clinician(accounts)
    assert accounts.disable("LAN", now=NOW).disabled is True
    disabled = accounts.sign_in("lan", GOOD, None, NOW)
    assert (disabled.user, disabled.reason) == (None, "disabled")
    assert accounts.enable("lan", now=NOW).disabled is False
    assert accounts.sign_in("lan", GOOD, None, NOW).user is not None
    with pytest.raises(AccountError, match="No user named 'ghost'"):
        accounts.disable("ghost", now=NOW)


def test_reset_password_clears_the_lock(accounts: Accounts) -> None:
    _clinician(accounts)
    for i in range(5):
        accounts.sign_in("lan", GOOD + "?", None, NOW + i)
    assert accounts.sign_in("lan", GOOD, None, NOW + 6).reason == "locked"
    with pytest.raises(AccountError, match="at least 12"):
        accounts.reset_password("lan", "short", NOW + 7)
    user = accounts.reset_password("lan", OTHER, NOW + 7)
    assert (user.failures, user.locked_until) == (0, 0.0)
    assert accounts.sign_in("lan", OTHER, None, NOW + 8).user is not None
    assert accounts.sign_in("lan", GOOD, None, NOW + 9).reason == "bad-password"
    with pytest.raises(AccountError, match="No user named"):
        accounts.reset_password("ghost", OTHER, NOW)


def test_set_totp_adds_a_second_factor(accounts: Accounts) -> None:
    _clinician(accounts)
    secret = accounts.set_totp("lan", now=NOW)
    assert accounts.sign_in("lan", GOOD, None, NOW).reason == "totp-required"
    assert accounts.sign_in("lan", GOOD, current_code(secret, NOW), NOW).user is not None
    assert accounts.set_totp("lan", now=NOW) != secret  # a new secret, the old one stops working


def test_context_claims(accounts: Accounts) -> None:
    patient, _ = accounts.add("benh.nhan", GOOD, "patient", patient="Patient/p-1", now=NOW)
    assert patient.context_claims() == {"fhirUser": "Patient/p-1", "patient": "p-1", "role": "patient"}
    doctor = _clinician(accounts, "bs.lan", fhir_user="Practitioner/pr-9")
    assert doctor.context_claims() == {
        "fhirUser": "Practitioner/pr-9",
        "organization": "Organization/tram-1",
        "role": "clinician",
    }
    admin, _ = accounts.add("root", GOOD, "admin", organization="Organization/so-y-te", now=NOW)
    assert admin.context_claims() == {"role": "admin"}


def test_a_facility_admin_belongs_to_a_facility(accounts: Accounts) -> None:
    """A facility's administrator: needs an organization, gets a second factor like every
    administrator, acts for the facility (the claim) with a clinician's scopes (issue 10)."""
    with pytest.raises(AccountError, match="must belong to an organization"):
        accounts.add("qt.bv1", GOOD, "facility-admin", now=NOW)
    admin, secret = accounts.add("qt.bv1", GOOD, "facility-admin", organization="Organization/bv-1", now=NOW)
    assert secret is not None and admin.totp_secret == secret
    assert admin.context_claims() == {"organization": "Organization/bv-1", "role": "facility-admin"}
    assert ROLE_SCOPES["facility-admin"] == ROLE_SCOPES["clinician"]
    with pytest.raises(AccountError, match="facility-admin"):
        accounts.add("ai.do", GOOD, "superuser", now=NOW)
