"""SMART Backend Services client authentication: ``private_key_jwt`` client assertions.

Spec: http://hl7.org/fhir/smart-app-launch/backend-services.html (Authenticating to the Token
Endpoint), RFC 7523 §3 (JWT bearer client authentication), RFC 7521, and RFC 8725 (JWT BCP).

The assertion is a JWS signed by the client with a key from its registered JWK Set. It must carry
``iss`` = ``sub`` = the client_id, ``aud`` = our token URL, ``exp`` at most five minutes ahead and
a ``jti`` never seen before while the assertion is alive. The key is chosen strictly by ``kid``
from the JWK Set the caller resolved for this client; keys embedded in the token (``jwk``,
``x5c``) are never trusted, and a ``jku`` header is only accepted when it names one of the URLs
registered for the client.

:class:`AssertionRejected` carries a short ``reason`` for logs; the token endpoint answers all of
them with ``invalid_client`` (RFC 6749 §5.2).
"""

from __future__ import annotations

import heapq
import json
import math
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, RSAKey
from joserfc.jws import JWSRegistry

__all__ = [
    "ALLOWED_ALGORITHMS",
    "AssertionRejected",
    "ReplayCache",
    "make_client_assertion",
    "verify_client_assertion",
]

#: SMART requires servers to support RS384 and ES384; ES256/RS256 are widespread. No "none", no HS*.
ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"ES256", "ES384", "RS256", "RS384"})
MAX_ASSERTION_BYTES = 8 * 1024
MIN_RSA_BITS = 2048
NBF_LEEWAY = 30  # seconds of clock skew tolerated on an optional nbf
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KTY = {"ES256": "EC", "ES384": "EC", "RS256": "RSA", "RS384": "RSA"}
# Header members this code does not know are ignored, as RFC 7515 §4 requires (the SMART Bulk Data
# Tester sends "kty"); "crit" and "b64", which would ask for them to be understood, are refused below.
_REGISTRY = JWSRegistry(algorithms=sorted(ALLOWED_ALGORITHMS), strict_check_header=False)


class AssertionRejected(ValueError):
    """A client assertion that must be refused; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class ReplayCache:
    """Remembers (client_id, jti) until the assertion's ``exp`` (RFC 7523 §3 item 7).

    Forgetting an entry is only safe once its ``exp`` has passed: from then on the assertion is
    refused as expired anyway (the exp check uses the same instant and no leeway), so purging
    can never re-open a replay window. Eviction therefore only ever drops expired entries,
    oldest expiry first (a heap). If the cache is full of live entries we refuse new assertions
    ("busy") rather than forget one: a flood can deny service for at most ``max_ahead`` seconds,
    it can never enable a replay. Process-local: several workers need a shared store instead.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._exp: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._exp)

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            exp, key = heapq.heappop(self._heap)
            if self._exp.get(key) == exp:
                del self._exp[key]

    def seen_or_add(self, client_id: str, jti: str, exp: float, now: float) -> bool:
        """True if (client_id, jti) is still remembered; otherwise remember it until ``exp``.

        Raises AssertionRejected("busy") when full of unexpired entries.
        """
        key = (client_id, jti)
        with self._lock:
            self._purge(now)
            if key in self._exp:
                return True
            if len(self._exp) >= self._max:
                raise AssertionRejected("busy", "replay cache full of live assertions")
            self._exp[key] = exp
            heapq.heappush(self._heap, (exp, key))
            return False


def verify_client_assertion(
    assertion: str,
    *,
    client_id: str,
    token_url: str,
    client_jwks: Mapping[str, Any],
    now: float,
    replay: ReplayCache,
    max_ahead: int = 300,
    allowed_jku: frozenset[str] = frozenset(),
) -> None:
    """Accept a client assertion for ``client_id`` or raise :class:`AssertionRejected`.

    ``client_jwks`` is the client's registered JWK Set (already fetched if it is a URL);
    ``allowed_jku`` the JWK Set URLs registered for the client.
    """
    if not isinstance(assertion, str):
        raise AssertionRejected("malformed", "assertion is not a string")
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise AssertionRejected("oversize", f"assertion longer than {MAX_ASSERTION_BYTES} bytes")
    try:
        obj = jws.extract_compact(assertion.encode("ascii"), registry=_REGISTRY)
        header = obj.headers()
        _REGISTRY.check_header(header)
    except (JoseError, ValueError) as err:  # UnicodeEncodeError is a ValueError
        raise AssertionRejected("malformed", str(err)) from None
    if "crit" in header or "b64" in header:
        raise AssertionRejected("malformed", "JWS extensions are not accepted")
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise AssertionRejected("algorithm", f"alg {alg!r} not allowed")
    if "jku" in header and header["jku"] not in allowed_jku:
        # Fetching keys from a URL chosen by the token would let anyone sign for anyone.
        raise AssertionRejected("jku", f"jku {header['jku']!r} is not registered for the client")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AssertionRejected("missing-kid")
    key = _select_key(client_jwks, kid, alg)
    try:
        valid = jws.validate_compact(obj, key, registry=_REGISTRY)
    except (JoseError, ValueError) as err:  # key not usable for alg: curve, "use", "alg" member
        raise AssertionRejected("algorithm", str(err)) from None
    if not valid:
        raise AssertionRejected("bad-signature")
    claims = _payload(obj.payload)
    exp, jti = _check_claims(claims, client_id=client_id, token_url=token_url, now=now, max_ahead=max_ahead)
    # Last, after the signature and every other check: otherwise anyone could fill the cache
    # with forged (client_id, jti) pairs and get the real client's assertions refused.
    if replay.seen_or_add(client_id, jti, exp, now):
        raise AssertionRejected("replay", f"jti {jti!r} already used")


def _select_key(client_jwks: Mapping[str, Any], kid: str, alg: str) -> Key:
    """The one key with exactly this kid; refuse if none fits or the kid is ambiguous."""
    keys = client_jwks.get("keys")
    if not isinstance(keys, list):
        raise AssertionRejected("unknown-key", "client has no JWK Set")
    same_kid = [k for k in keys if isinstance(k, dict) and k.get("kid") == kid]
    if len(same_kid) > 1:
        # Which one would we pick? Refuse rather than guess (or try each: an oracle).
        raise AssertionRejected("ambiguous-key", f"{len(same_kid)} keys with kid {kid!r}")
    if not same_kid or same_kid[0].get("kty") != _KTY[alg]:
        raise AssertionRejected("unknown-key", f"no {_KTY[alg]} key with kid {kid!r}")
    jwk = {k: v for k, v in same_kid[0].items() if k not in _PRIVATE_MEMBERS}  # verify with public part only
    try:
        key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError) as err:
        raise AssertionRejected("bad-key", str(err)) from None
    if isinstance(key, RSAKey) and key.public_key.key_size < MIN_RSA_BITS:
        raise AssertionRejected("bad-key", f"RSA key shorter than {MIN_RSA_BITS} bits")
    return key


def _payload(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(payload)
    except ValueError:
        raise AssertionRejected("malformed", "payload is not JSON") from None
    if not isinstance(claims, dict):
        raise AssertionRejected("malformed", "payload is not a JSON object")
    return claims


def _number(value: Any) -> float | None:
    # json.loads accepts NaN, Infinity, 1e400 and 400-digit integers; none of them is a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _check_claims(
    claims: dict[str, Any], *, client_id: str, token_url: str, now: float, max_ahead: int
) -> tuple[float, str]:
    if claims.get("iss") != client_id:
        raise AssertionRejected("issuer", f"iss {claims.get('iss')!r}")
    if claims.get("sub") != client_id:
        raise AssertionRejected("subject", f"sub {claims.get('sub')!r}")
    aud = claims.get("aud")
    if not (aud == token_url or (isinstance(aud, list) and token_url in aud)):
        raise AssertionRejected("audience", f"aud {aud!r}")
    exp = _number(claims.get("exp"))
    if exp is None:
        raise AssertionRejected("missing-exp")
    if now >= exp:
        raise AssertionRejected("expired", f"expired at {exp}")
    if exp > now + max_ahead:
        # SMART: "no more than five minutes in the future"; also bounds the replay cache.
        raise AssertionRejected("exp-too-far", f"exp {exp - now:.0f} s ahead (max {max_ahead})")
    nbf = claims.get("nbf")
    if nbf is not None and ((n := _number(nbf)) is None or n > now + NBF_LEEWAY):
        raise AssertionRejected("not-yet-valid", f"nbf {nbf!r}")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise AssertionRejected("missing-jti")
    return exp, jti


def make_client_assertion(
    private_jwk: Mapping[str, Any],
    *,
    client_id: str,
    token_url: str,
    now: float,
    lifetime: int = 120,
    jti: str | None = None,
    kid: str | None = None,
    alg: str | None = None,
) -> str:
    """A client assertion signed with ``private_jwk`` (for tests and the CLI; clients make their own).

    ``kid`` defaults to the JWK's kid, else its RFC 7638 thumbprint; ``alg`` to the JWK's alg, else
    ES256/ES384 by curve or RS384 for RSA (the algorithms SMART servers must support).
    """
    key = JWKRegistry.import_key(dict(private_jwk))
    if not isinstance(key, ECKey | RSAKey) or not key.is_private:
        raise ValueError("need a private EC or RSA JWK")
    if alg is None:
        if key.alg:
            alg = key.alg
        elif isinstance(key, ECKey):
            alg = "ES384" if key.curve_name == "P-384" else "ES256"
        else:
            alg = "RS384"
    header = {"alg": alg, "typ": "JWT", "kid": kid or key.kid or key.thumbprint()}
    iat = int(now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": iat,
        "exp": iat + lifetime,
        "jti": jti or secrets.token_urlsafe(16),
    }
    payload = json.dumps(claims, separators=(",", ":"))
    return jws.serialize_compact(header, payload, key, registry=_REGISTRY)
