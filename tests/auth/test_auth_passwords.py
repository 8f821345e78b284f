"""Argon2id hashing, the password policy, generated passwords and the timing-equaliser."""

from __future__ import annotations

import string
from typing import Literal

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from ketnoi.auth import passwords
from ketnoi.auth.passwords import (
    COMMON_PASSWORDS,
    CONTAINS_USERNAME,
    TOO_COMMON,
    TOO_LONG,
    TOO_SHORT,
    burn_verify_time,
    check_password_policy,
    generate_password,
    hash_password,
    make_hasher,
    needs_rehash,
    verify_password,
)

# The smallest costs Argon2 allows: the tests check behaviour, not strength.
CHEAP = make_hasher(time_cost=1, memory_kib=8, parallelism=1)
GOOD = "Cây đa, giếng nước, sân đình"


def test_round_trip() -> None:
    stored = hash_password(GOOD, CHEAP)
    assert verify_password(stored, GOOD, CHEAP) is True


def test_wrong_password_is_false() -> None:
    stored = hash_password(GOOD, CHEAP)
    assert verify_password(stored, GOOD + " ", CHEAP) is False
    assert verify_password(stored, "", CHEAP) is False


def test_same_password_gets_a_new_salt_each_time() -> None:
    assert hash_password(GOOD, CHEAP) != hash_password(GOOD, CHEAP)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",  # well formed, too short a salt and tag
        "$argon2id$v=19$m=8,t=1,p=1$ä$ö",  # non-ASCII fails before Argon2
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
    ],
)
def test_malformed_hash_is_false_never_an_exception(stored: str) -> None:
    assert verify_password(stored, GOOD, CHEAP) is False


def test_cheap_hash_is_argon2id_with_its_parameters() -> None:
    stored = hash_password(GOOD, CHEAP)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    params = extract_parameters(stored)
    assert (params.type, params.time_cost, params.memory_cost, params.parallelism) == (Type.ID, 1, 8, 1)


def test_production_defaults() -> None:
    # The one test that pays for a real hash (about a fifth of a second).
    stored = hash_password(GOOD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=2$")
    params = extract_parameters(stored)
    assert (params.type, params.time_cost, params.memory_cost, params.parallelism) == (Type.ID, 3, 65536, 2)
    assert (params.salt_len, params.hash_len) == (16, 32)
    assert needs_rehash(stored) is False


def test_verification_uses_the_parameters_in_the_hash() -> None:
    other = make_hasher(time_cost=2, memory_kib=16, parallelism=1)
    assert verify_password(hash_password(GOOD, other), GOOD, CHEAP) is True


def test_needs_rehash() -> None:
    assert needs_rehash(hash_password(GOOD, CHEAP), CHEAP) is False
    assert needs_rehash(hash_password(GOOD, CHEAP)) is True  # parameters differ from the defaults
    assert needs_rehash("not a hash") is True
    assert needs_rehash("$argon2id$ä") is True


def test_too_long_password_is_refused() -> None:
    stored = hash_password(GOOD, CHEAP)
    with pytest.raises(ValueError, match="at most 1024"):
        hash_password("a" * 1025, CHEAP)
    assert verify_password(stored, "a" * 1025, CHEAP) is False
    assert verify_password(hash_password("a" * 1024, CHEAP), "a" * 1024, CHEAP) is True


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)
        self.calls: list[str] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.calls.append("hash")
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.calls.append("verify")
        return super().verify(hash, password)


def test_burn_verify_time_runs_one_real_failed_verification() -> None:
    hasher = CountingHasher()
    burn_verify_time(hasher)
    burn_verify_time(hasher)
    # The dummy hash is made once with this hasher's parameters, then each call verifies against it.
    assert hasher.calls == ["hash", "verify", "verify"]


def test_policy_accepts_a_good_passphrase() -> None:
    assert check_password_policy(GOOD, "nguyen.van.an") == []
    assert check_password_policy("x" * 12, "bs.lan") == []
    assert check_password_policy("x" * 1024, "bs.lan") == []


def test_policy_messages_are_bilingual() -> None:
    assert TOO_SHORT == ("The password must have at least 12 characters.", "Mật khẩu phải có ít nhất 12 ký tự.")
    assert TOO_LONG == ("The password must have at most 1024 characters.", "Mật khẩu không được dài quá 1024 ký tự.")
    assert CONTAINS_USERNAME == (
        "The password must not be or contain the user name.",
        "Mật khẩu không được trùng hoặc chứa tên đăng nhập.",
    )
    assert TOO_COMMON == (
        "This password is one of the most common passwords; choose another.",
        "Mật khẩu này nằm trong danh sách mật khẩu phổ biến nhất; hãy chọn mật khẩu khác.",
    )


def test_policy_too_short() -> None:
    assert check_password_policy("Xy7!kq2#Lm9", "bs.lan") == [TOO_SHORT]
    assert check_password_policy("", "bs.lan") == [TOO_SHORT]


def test_policy_too_long_stops_there() -> None:
    assert check_password_policy("b" * 1025, "bs.lan") == [TOO_LONG]
    assert check_password_policy("bs.lan" * 200, "bs.lan") == [TOO_LONG]


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("nguyen.van.an", "nguyen.van.an"),
        ("NGUYEN.VAN.AN", "Nguyen.Van.An"),
        ("my name is Nguyen.Van.An!", "nguyen.van.an"),
        ("xx-lan-2024-xx", "Lan"),
        ("ＢＳ.ＬＡＮ is my password", "bs.lan"),  # full-width letters fold to ASCII
    ],
)
def test_policy_username(password: str, username: str) -> None:
    assert check_password_policy(password, username) == [CONTAINS_USERNAME]


def test_policy_username_rules_edges() -> None:
    # Names shorter than 3 characters only count when the whole password equals them.
    assert check_password_policy("Thanh pho Ha Noi xanh", "an") == []
    assert check_password_policy("an", "AN") == [TOO_SHORT, CONTAINS_USERNAME]
    assert check_password_policy(GOOD, "") == []
    assert check_password_policy(GOOD, "   ") == []


@pytest.mark.parametrize("password", ["matkhau", "123456789", "iloveyou", "anhyeuem", "password"])
def test_policy_common_and_short(password: str) -> None:
    assert check_password_policy(password, "bs.lan") == [TOO_SHORT, TOO_COMMON]


@pytest.mark.parametrize("password", ["123456789012", "Anhyeuem123456", "PASSWORDPASSWORD", "qwerty123456"])
def test_policy_common_and_long_enough(password: str) -> None:
    assert check_password_policy(password, "bs.lan") == [TOO_COMMON]


def test_common_list_size_and_vietnamese_favourites() -> None:
    assert 50 <= len(COMMON_PASSWORDS) <= 100
    assert {"matkhau", "123456789", "iloveyou", "anhyeuem"} <= COMMON_PASSWORDS
    assert all(p == p.casefold() for p in COMMON_PASSWORDS)  # compared after folding


def test_policy_reports_every_problem() -> None:
    assert check_password_policy("admin", "admin") == [TOO_SHORT, CONTAINS_USERNAME, TOO_COMMON]


def test_generate_password() -> None:
    pw = generate_password()
    assert len(pw) == 20
    assert set(pw) <= set(string.ascii_letters + string.digits)
    assert len(generate_password(32)) == 32
    assert len({generate_password() for _ in range(50)}) == 50
    assert check_password_policy(pw, "bs.lan") == []


def test_generate_password_refuses_lengths_below_the_policy() -> None:
    with pytest.raises(ValueError, match="at least 12"):
        generate_password(11)


def test_default_hasher_has_the_documented_defaults() -> None:
    assert (passwords.DEFAULT_TIME_COST, passwords.DEFAULT_MEMORY_KIB, passwords.DEFAULT_PARALLELISM) == (3, 65536, 2)
