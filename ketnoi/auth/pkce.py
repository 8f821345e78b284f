"""PKCE (RFC 7636), S256 only.

SMART App Launch 2 requires PKCE with ``S256`` for every client and forbids ``plain`` (which
protects nothing once the authorization request is observed). The verifier is 43-128 characters
of the unreserved set (RFC 7636 §4.1); the challenge is BASE64URL(SHA-256(verifier)) without
padding (§4.2), i.e. exactly 43 characters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["valid_challenge", "verify_pkce"]

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_challenge(challenge: str | None, method: str | None) -> bool:
    """Whether the authorize endpoint may accept this ``code_challenge`` / ``code_challenge_method``."""
    return method == "S256" and isinstance(challenge, str) and _CHALLENGE.fullmatch(challenge) is not None


def verify_pkce(code_verifier: str | None, code_challenge: str, method: str) -> bool:
    """Whether ``code_verifier`` (from the token request) matches the stored challenge."""
    if method != "S256" or not isinstance(code_verifier, str) or not valid_challenge(code_challenge, method):
        return False
    if _VERIFIER.fullmatch(code_verifier) is None:
        return False
    if hmac.compare_digest(code_verifier, code_challenge):
        # The verifier sent as the challenge ("plain" in disguise): refuse, it proves nothing.
        return False
    return hmac.compare_digest(_s256(code_verifier), code_challenge)
