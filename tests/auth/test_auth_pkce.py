"""ketnoi.auth.pkce: RFC 7636 PKCE, S256 only."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from ketnoi.auth.pkce import valid_challenge, verify_pkce

# RFC 7636 Appendix B
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def challenge_for(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_rfc_7636_example() -> None:
    assert challenge_for(RFC_VERIFIER) == RFC_CHALLENGE
    assert verify_pkce(RFC_VERIFIER, RFC_CHALLENGE, "S256") is True


@pytest.mark.parametrize("verifier", ["a" * 43, "Z" * 128, "0123456789-._~" * 4, "A-b.C_d~" * 16])
def test_valid_verifiers(verifier: str) -> None:
    assert verify_pkce(verifier, challenge_for(verifier), "S256") is True


@pytest.mark.parametrize("method", ["plain", "s256", "S384", "", None, "S256 "])
def test_only_s256(method: Any) -> None:
    assert verify_pkce(RFC_VERIFIER, RFC_CHALLENGE, method) is False


def test_plain_with_verifier_as_challenge() -> None:
    assert verify_pkce(RFC_VERIFIER, RFC_VERIFIER, "plain") is False


def test_verifier_equal_to_challenge() -> None:
    assert verify_pkce(RFC_CHALLENGE, RFC_CHALLENGE, "S256") is False


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("a" * 42, id="too-short"),
        pytest.param("a" * 129, id="too-long"),
        pytest.param("a" * 42 + " ", id="space"),
        pytest.param("a" * 42 + "+", id="plus"),
        pytest.param("a" * 42 + "/", id="slash"),
        pytest.param("a" * 42 + "=", id="padding"),
        pytest.param("a" * 42 + "é", id="non-ascii"),
        pytest.param("a" * 43 + "\n", id="trailing-newline"),
        pytest.param(b"a" * 43, id="bytes"),
    ],
)
def test_invalid_verifier(verifier: Any) -> None:
    # The challenge is computed from the verifier itself: only the syntax rule can refuse it.
    text = verifier.decode() if isinstance(verifier, bytes) else verifier
    challenge = challenge_for(text) if text else RFC_CHALLENGE
    assert verify_pkce(verifier, challenge, "S256") is False


def test_wrong_verifier() -> None:
    assert verify_pkce("b" * 43, RFC_CHALLENGE, "S256") is False
    assert verify_pkce(RFC_VERIFIER[:-1] + "l", RFC_CHALLENGE, "S256") is False


@pytest.mark.parametrize(
    "challenge",
    [RFC_CHALLENGE + "=", RFC_CHALLENGE[:-1], RFC_CHALLENGE + "A", RFC_CHALLENGE.replace("-", "+"), ""],
)
def test_malformed_stored_challenge(challenge: str) -> None:
    assert verify_pkce(RFC_VERIFIER, challenge, "S256") is False


def test_valid_challenge() -> None:
    assert valid_challenge(RFC_CHALLENGE, "S256") is True
    assert valid_challenge(challenge_for("x" * 128), "S256") is True


@pytest.mark.parametrize(
    ("challenge", "method"),
    [
        (RFC_CHALLENGE, "plain"),
        (RFC_CHALLENGE, None),
        (RFC_CHALLENGE, "s256"),
        (RFC_CHALLENGE[:-1], "S256"),
        (RFC_CHALLENGE + "A", "S256"),
        (RFC_CHALLENGE + "=", "S256"),
        (RFC_CHALLENGE[:-1] + "/", "S256"),
        (RFC_CHALLENGE[:-1] + "+", "S256"),
        (RFC_CHALLENGE + "\n", "S256"),
        ("", "S256"),
        (None, "S256"),
    ],
)
def test_invalid_challenge(challenge: Any, method: Any) -> None:
    assert valid_challenge(challenge, method) is False
