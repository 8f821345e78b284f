"""Time-based one-time passwords for the second sign-in factor.

TOTP is RFC 6238 (HOTP of RFC 4226 over the time step ``floor(unix_time / 30)``) with 6 digits
and HMAC-SHA-1: the combination every authenticator app (Google Authenticator, Microsoft
Authenticator, FreeOTP, Aegis...) supports, and the default of the ``otpauth://`` key URI format
they scan from a QR code. SHA-1's collision weakness does not carry over to HMAC-SHA-1 (the
security analysis of RFC 4226 Appendix A). The HOTP arithmetic itself is pyotp's.

:func:`verify_totp` returns the time step that matched; the caller stores it with the account and
passes it back next time, so one code cannot be used twice (RFC 6238 §5.2: "the verifier MUST NOT
accept the second attempt of the OTP after the successful validation has been issued").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import pyotp

DIGITS = 6
STEP_S = 30
# RFC 6238 §5.2 recommends at most one step of tolerated drift each way: phones' clocks are
# usually right to a few seconds, and people type a code that changed while they typed it.
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, the HMAC-SHA-1 output length recommended by RFC 4226 §4 (R6)


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, digest=hashlib.sha1, interval=STEP_S)


def new_secret() -> str:
    """A fresh shared secret: 160 random bits as base32 (32 characters, no padding)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def provisioning_uri(secret: str, username: str, issuer: str = "ketnoi") -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from a QR code."""
    return _totp(secret).provisioning_uri(name=username, issuer_name=issuer)


def time_step(now: float) -> int:
    """The RFC 6238 time step (counter) of the Unix time ``now``."""
    return int(now // STEP_S)


def current_code(secret: str, now: float) -> str:
    """The 6-digit code an authenticator shows at ``now`` (tests and the demo use it)."""
    return _totp(secret).generate_otp(time_step(now))


def _well_formed(code: str) -> bool:
    # str.isdigit() alone accepts "١٢٣٤٥٦" and "１２３４５６", and pyotp's comparison normalises
    # with NFKC, which turns the full-width digits into ASCII ones; only exact ASCII is a code.
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def verify_totp(secret: str, code: str, now: float, last_used_step: int | None) -> int | None:
    """The time step whose code equals ``code``, or None.

    Steps from ``now``'s step - 1 to + 1 are tried; a step ≤ ``last_used_step`` is refused
    (replay). Raises ValueError for a ``secret`` that is not base32 of at least 112 bits.
    """
    if not _well_formed(code):
        return None
    totp = _totp(secret)
    step = time_step(now)
    matched: int | None = None
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if candidate < 0 or (last_used_step is not None and candidate <= last_used_step):
            continue
        # Every candidate is compared in constant time and the loop does not stop at the first
        # match, so the response time does not say which step (or how many digits) matched.
        if hmac.compare_digest(totp.generate_otp(candidate).encode("ascii"), code.encode("ascii")):
            matched = candidate  # the latest step wins: it blocks the most codes from replay
    return matched
