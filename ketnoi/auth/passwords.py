"""Password hashing (Argon2id) and the password policy for ketnoi accounts.

Hashing follows RFC 9106 (Argon2) with the Argon2id variant through argon2-cffi: the encoded
PHC string (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) carries its own salt and parameters,
so a database column of text is all that is stored. The defaults (t=3, m=64 MiB, p=2) follow the
second recommended option of RFC 9106 §4 scaled to a small server; :func:`needs_rehash` lets
sign-in upgrade old hashes whenever these change.

The policy follows NIST SP 800-63B §3.1.1.2 (length over composition rules, a block list of
common passwords, no password containing the account name) instead of "one capital, one digit"
rules, which push people towards ``Matkhau@123``.
"""

from __future__ import annotations

import functools
import secrets
import string
import unicodedata

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
# Argon2 pre-hashes the password, so cost grows with its length: an unbounded password field is
# a cheap way to burn server CPU (and memory for the request body). 1 024 is far above any
# passphrase a person types or a password manager generates.
MAX_LENGTH = 1024
# Containment is only checked for names this long: "an" or "ha" (common Vietnamese given names)
# occur inside many good passphrases, and refusing those teaches nothing.
MIN_USERNAME_CHECKED = 3

TOO_SHORT = (
    f"The password must have at least {MIN_LENGTH} characters.",
    f"Mật khẩu phải có ít nhất {MIN_LENGTH} ký tự.",
)
TOO_LONG = (
    f"The password must have at most {MAX_LENGTH} characters.",
    f"Mật khẩu không được dài quá {MAX_LENGTH} ký tự.",
)
CONTAINS_USERNAME = (
    "The password must not be or contain the user name.",
    "Mật khẩu không được trùng hoặc chứa tên đăng nhập.",
)
TOO_COMMON = (
    "This password is one of the most common passwords; choose another.",
    "Mật khẩu này nằm trong danh sách mật khẩu phổ biến nhất; hãy chọn mật khẩu khác.",
)

# The most used passwords worldwide and in Vietnam (leak compilations), compared after case
# folding. Many are shorter than MIN_LENGTH and are refused twice, which is harmless; the long
# ones are the reason the list exists.
COMMON_PASSWORDS = frozenset(
    {
        "123456", "12345678", "123456789", "1234567890", "12345678910", "123456789a",
        "1234567890123", "123456789012", "123123123123", "123456123456", "111111111111",
        "000000000000", "987654321", "0987654321", "11223344556677", "147258369",
        "password", "password1", "password123", "password1234", "passwordpassword",
        "qwerty", "qwerty123", "qwerty123456", "qwertyuiop", "qwertyuiop123", "1q2w3e4r5t6y",
        "1qaz2wsx3edc", "zaq12wsxcde3", "asdfghjkl", "abc123", "abc123abc123", "abcd1234abcd",
        "iloveyou", "iloveyou123", "iloveyouiloveyou", "admin", "admin123", "administrator",
        "welcome", "welcome123", "letmein", "letmein123", "football", "monkey", "dragon",
        "sunshine", "princess", "matkhau", "matkhau123", "matkhau123456", "matkhaucuatoi",
        "anhyeuem", "anhyeuem123", "anhyeuem123456", "anhyeuemnhieulam", "emyeuanh",
        "emyeuanh123456", "vietnam", "vietnam123456", "vietnamvodich", "hanoi123456",
        "saigon123456", "hoilamgi", "khongbiet", "toilanguoivietnam",
    }
)  # fmt: skip

DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_KIB = 64 * 1024
DEFAULT_PARALLELISM = 2


def make_hasher(
    time_cost: int = DEFAULT_TIME_COST,
    memory_kib: int = DEFAULT_MEMORY_KIB,
    parallelism: int = DEFAULT_PARALLELISM,
) -> PasswordHasher:
    """An Argon2id hasher; tests pass tiny costs, production keeps the defaults."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


DEFAULT_HASHER = make_hasher()


def hash_password(password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """The encoded Argon2id hash of ``password`` (fresh random salt). ValueError if too long."""
    if len(password) > MAX_LENGTH:
        raise ValueError(TOO_LONG[0])
    return hasher.hash(password)


def verify_password(stored_hash: str, password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Whether ``password`` matches ``stored_hash``; False (never an exception) for anything else.

    The parameters are read from the hash itself, so hashes made with older settings still verify.
    """
    if len(password) > MAX_LENGTH:
        return False  # no hash of ours can match, and checking would cost CPU (see MAX_LENGTH)
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError, ValueError):
        # ValueError: a hash with non-ASCII characters fails to encode before Argon2 sees it.
        return False


def needs_rehash(stored_hash: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Whether ``stored_hash`` was made with other parameters (or is unreadable) and should be redone.

    Call after a successful :func:`verify_password`, the only moment the plain password is known.
    """
    try:
        return hasher.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return True


@functools.lru_cache(maxsize=8)
def _dummy_hash(hasher: PasswordHasher) -> str:
    # Made with the same hasher as real hashes, so it costs exactly as much to verify; made at
    # first use rather than written here so that it follows any change of the parameters.
    return hasher.hash(secrets.token_urlsafe(16))


def burn_verify_time(hasher: PasswordHasher = DEFAULT_HASHER) -> None:
    """Spend the time of one failed verification; call it when the user name is unknown.

    Without it "no such user" answers in microseconds and "wrong password" in tens of
    milliseconds, and that difference tells an attacker which user names exist (user
    enumeration by timing) even when both answers carry the same text.
    """
    verify_password(_dummy_hash(hasher), "not the password", hasher)


def _fold(text: str) -> str:
    # NFKC first so that full-width or composed look-alikes compare equal to the plain letters.
    return unicodedata.normalize("NFKC", text).casefold()


def _contains_username(password: str, username: str) -> bool:
    name = _fold(username.strip())
    if not name:
        return False
    folded = _fold(password)
    return folded == name or (len(name) >= MIN_USERNAME_CHECKED and name in folded)


def check_password_policy(password: str, username: str) -> list[tuple[str, str]]:
    """The problems with ``password`` for account ``username`` as (English, Vietnamese); [] if none."""
    problems: list[tuple[str, str]] = []
    if len(password) < MIN_LENGTH:
        problems.append(TOO_SHORT)
    if len(password) > MAX_LENGTH:
        problems.append(TOO_LONG)
        return problems  # folding a huge string to compare it is the work the limit avoids
    if _contains_username(password, username):
        problems.append(CONTAINS_USERNAME)
    if _fold(password) in COMMON_PASSWORDS:
        problems.append(TOO_COMMON)
    return problems


_ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 20) -> str:
    """A random password of letters and digits (≈ 5.95 bits each: 20 give 119 bits).

    No punctuation, so it survives being read aloud, typed on a phone or pasted into a shell.
    """
    if length < MIN_LENGTH:
        raise ValueError(f"length must be at least {MIN_LENGTH}")
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
