"""TOTP (RFC 6238): secrets, the otpauth URI, drift window, replay and the shape of a code."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from ketnoi.auth.totp import current_code, new_secret, provisioning_uri, time_step, verify_totp

# RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode("ascii")
NOW = 1_700_000_015.0  # inside step 56 666 667
STEP = 56_666_667


def code_at_step(secret: str, step: int) -> str:
    return current_code(secret, step * 30.0)


@pytest.mark.parametrize(
    ("now", "code"),
    [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"), (1234567890, "005924"), (2000000000, "279037")],
)
def test_rfc6238_vectors_truncated_to_six_digits(now: float, code: str) -> None:
    assert current_code(RFC_SECRET, now) == code


def test_new_secret_is_160_bit_base32() -> None:
    secret = new_secret()
    assert len(secret) == 32
    assert len(base64.b32decode(secret)) == 20
    assert new_secret() != secret


def test_provisioning_uri() -> None:
    uri = provisioning_uri(RFC_SECRET, "bs.lan@tram-y-te")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.path) == ("otpauth", "totp", "/ketnoi:bs.lan%40tram-y-te")
    assert parse_qs(parts.query) == {"secret": [RFC_SECRET], "issuer": ["ketnoi"]}
    assert "issuer=BV%20Bach%20Mai" in provisioning_uri(RFC_SECRET, "lan", issuer="BV Bach Mai")


def test_time_step() -> None:
    assert time_step(NOW) == STEP
    assert time_step(STEP * 30.0) == STEP
    assert time_step(STEP * 30.0 - 0.001) == STEP - 1


def test_accepts_current_step_and_returns_it() -> None:
    assert verify_totp(RFC_SECRET, current_code(RFC_SECRET, NOW), NOW, None) == STEP


@pytest.mark.parametrize("offset", [-1, 1])
def test_accepts_one_step_of_drift(offset: int) -> None:
    code = code_at_step(RFC_SECRET, STEP + offset)
    assert verify_totp(RFC_SECRET, code, NOW, None) == STEP + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_refuses_two_steps_of_drift(offset: int) -> None:
    code = code_at_step(RFC_SECRET, STEP + offset)
    assert code not in {code_at_step(RFC_SECRET, STEP + d) for d in (-1, 0, 1)}  # no accidental twin
    assert verify_totp(RFC_SECRET, code, NOW, None) is None


def test_refuses_replay_of_the_same_step() -> None:
    code = current_code(RFC_SECRET, NOW)
    used = verify_totp(RFC_SECRET, code, NOW, None)
    assert used == STEP
    assert verify_totp(RFC_SECRET, code, NOW + 5, used) is None


def test_refuses_an_earlier_step_after_a_later_one_was_used() -> None:
    earlier = code_at_step(RFC_SECRET, STEP - 1)
    assert verify_totp(RFC_SECRET, earlier, NOW, STEP) is None
    assert verify_totp(RFC_SECRET, earlier, NOW, STEP - 1) is None
    assert verify_totp(RFC_SECRET, earlier, NOW, STEP - 2) == STEP - 1


def test_next_step_is_accepted_after_the_current_one_was_used() -> None:
    later = code_at_step(RFC_SECRET, STEP + 1)
    assert verify_totp(RFC_SECRET, later, NOW, STEP) == STEP + 1


def test_wrong_code_is_refused() -> None:
    right = current_code(RFC_SECRET, NOW)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert verify_totp(RFC_SECRET, wrong, NOW, None) is None


@pytest.mark.parametrize(
    "code",
    [
        "12345",
        "1234567",
        "12 456",
        "١٢٣٤٥٦",  # Arabic-Indic digits: str.isdigit() is True
        "１２３４５６",  # full-width digits: NFKC would make them ASCII
        "",
        " 123456",
        "123456\n",
        "12345a",
        "+12345",
    ],
)
def test_refuses_codes_that_are_not_six_ascii_digits(code: str) -> None:
    assert verify_totp(RFC_SECRET, code, NOW, None) is None


def test_malformed_look_alikes_of_the_right_code_are_refused() -> None:
    right = current_code(RFC_SECRET, NOW)
    full_width = "".join(chr(ord(c) - ord("0") + ord("０")) for c in right)
    assert verify_totp(RFC_SECRET, full_width, NOW, None) is None
    assert verify_totp(RFC_SECRET, right[:3] + " " + right[3:], NOW, None) is None
    assert verify_totp(RFC_SECRET, right + "0", NOW, None) is None


def test_near_the_epoch_no_negative_step_is_tried() -> None:
    assert verify_totp(RFC_SECRET, current_code(RFC_SECRET, 5.0), 5.0, None) == 0


def test_bad_secret_raises() -> None:
    with pytest.raises(ValueError):
        verify_totp("not base32!", "123456", NOW, None)
    with pytest.raises(ValueError):
        verify_totp("GEZDGNBV", "123456", NOW, None)  # 40 bits: too short
