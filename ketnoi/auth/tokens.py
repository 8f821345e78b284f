"""Access tokens (RFC 9068 JWT profile) and OpenID Connect ID tokens, signed with the key ring.

* Access token: JWS compact (RFC 7515) with header ``typ: at+jwt`` and ``kid``; claims iss, aud,
  sub, client_id, scope, iat, nbf, exp, jti (RFC 9068 §2.2) plus SMART context claims
  (patient, fhirUser, ...). Verification follows RFC 9068 §4 and RFC 8725 (JWT BCP): a fixed
  algorithm allowlist, the key chosen by our own ``kid`` and never by the token, the key's own
  algorithm enforced (no HS256-with-public-key confusion), explicit ``typ`` so that an ID token
  (``typ: JWT``) is never accepted as an access token.
* ID token: OpenID Connect Core §2, ``aud`` = the client.

:class:`TokenError` carries a short machine-readable ``reason`` for logs and metrics; the HTTP
layer should answer every one of them with the same ``invalid_token`` (RFC 6750 §3.1).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry

from ketnoi.auth.keys import SUPPORTED_ALGORITHMS, KeyObject, KeyRing

__all__ = ["MAX_LIFETIME", "MAX_TOKEN_BYTES", "AccessClaims", "TokenError", "VerifiedTokenCache"]
__all__ += ["issue_access_token", "issue_id_token", "verify_access_token"]
__all__ += ["sign_statement", "verify_statement"]

MAX_LIFETIME = 3600  # seconds; short-lived bearer tokens limit the damage of a leak
MAX_TOKEN_BYTES = 8 * 1024  # ours are < 1 KiB; refusing early bounds the work an attacker can cause
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §4, case-insensitive
REGISTERED = frozenset({"iss", "aud", "sub", "client_id", "scope", "iat", "nbf", "exp", "jti"})

# joserfc checks header syntax and refuses unknown header parameters; we pass the allowlist as
# well, so that even a bug in our own checks could not let "none" or HS* through.
_REGISTRY = JWSRegistry(algorithms=sorted(SUPPORTED_ALGORITHMS))


class TokenError(ValueError):
    """A token that must be refused; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The claims of a verified access token. ``extra`` is read-only: instances are shared by the cache."""

    sub: str
    client_id: str
    scope: str
    exp: int
    iat: int
    nbf: int | None
    jti: str
    issuer: str
    audience: tuple[str, ...]
    extra: Mapping[str, Any]


def unverified(token: str, part: int) -> dict[str, Any]:
    """Part 0 (header) or 1 (claims) of a compact JWS, decoded WITHOUT checking anything: only to
    know which key or client to verify it with. Empty when it cannot be read."""
    try:
        segment = token.split(".")[part]
        data = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _sign(ring: KeyRing, header_typ: str, claims: dict[str, Any]) -> str:
    active = ring.active()
    header = {"alg": active.alg, "typ": header_typ, "kid": active.kid}
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
    return jws.serialize_compact(header, payload, ring.private_key(active.kid), registry=_REGISTRY)


def _check_lifetime(lifetime: int) -> None:
    if isinstance(lifetime, bool) or not 0 < lifetime <= MAX_LIFETIME:
        raise ValueError(f"token lifetime must be in (0, {MAX_LIFETIME}] seconds, not {lifetime!r}")


def issue_access_token(
    ring: KeyRing,
    *,
    issuer: str,
    audience: str | list[str],
    subject: str,
    client_id: str,
    scope: str,
    lifetime: int,
    now: float,
    extra: Mapping[str, Any] | None = None,
    jti: str | None = None,
) -> str:
    """A signed RFC 9068 access token from the ring's active key, valid ``lifetime`` seconds."""
    _check_lifetime(lifetime)
    clash = REGISTERED & set(extra or {})
    if clash:
        # A context claim must never be able to override what we checked (audience, expiry...).
        raise ValueError(f"extra claims may not set registered claims {sorted(clash)}")
    iat = int(now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "client_id": client_id,
        "scope": scope,
        "iat": iat,
        "nbf": iat,
        "exp": iat + lifetime,
        "jti": jti or secrets.token_urlsafe(16),
        **(extra or {}),
    }
    return _sign(ring, "at+jwt", claims)


def issue_id_token(
    ring: KeyRing,
    *,
    issuer: str,
    subject: str,
    client_id: str,
    now: float,
    lifetime: int = 300,
    nonce: str | None = None,
    fhir_user: str | None = None,
) -> str:
    """An OpenID Connect ID token (``typ: JWT``, ``aud`` = the client) with optional nonce and fhirUser."""
    _check_lifetime(lifetime)
    iat = int(now)
    claims: dict[str, Any] = {"iss": issuer, "sub": subject, "aud": client_id, "iat": iat, "exp": iat + lifetime}
    if nonce is not None:
        claims["nonce"] = nonce
    if fhir_user is not None:
        claims["fhirUser"] = fhir_user
    return _sign(ring, "JWT", claims)


_TOKEN_TYPES = ACCESS_TOKEN_TYPES | {"jwt"}


def sign_statement(ring: KeyRing, typ: str, claims: Mapping[str, Any]) -> str:
    """A compact JWS of ``claims`` from the ring's active key, for signed statements that are not
    tokens (an audit checkpoint). Each kind has its own header ``typ``, never a token's, so that no
    statement can pass for a token (``at+jwt`` is required there) nor one kind for another."""
    if typ.lower() in _TOKEN_TYPES:
        raise ValueError(f"typ {typ!r} is a token type; a statement needs its own")
    return _sign(ring, typ, dict(claims))


def verify_statement(statement: str, ring: KeyRing, *, typ: str, now: float) -> dict[str, Any]:
    """The claims of a statement made by :func:`sign_statement` with header ``typ``, verified with
    the ring's key named by its ``kid`` and published at ``now``; else TokenError. The same checks
    as an access token's signature (algorithm allowlist, the key decides the algorithm); the
    claims' meaning is the caller's."""
    if not isinstance(statement, str) or len(statement) > MAX_TOKEN_BYTES:
        raise TokenError("malformed", "not a string, or too long")
    try:
        raw = statement.encode("ascii")
    except UnicodeEncodeError:
        raise TokenError("malformed", "not ASCII") from None
    return _verified_payload(raw, ring, now, frozenset({typ.lower()}))[2]


class _Entry(NamedTuple):
    kid: str
    key: KeyObject  # the very object that verified the signature
    claims: AccessClaims
    typ: str  # the header's typ, lower-case: re-checked on a cache hit against the caller's types


class VerifiedTokenCache:
    """A bounded LRU of tokens whose signature has been checked, keyed by SHA-256 of the token.

    Why: every API request carries the same bearer token for its lifetime, and an ECDSA/RSA
    verification costs far more than the rest of the check; clients typically reuse a token
    hundreds of times. What is cached is only what cannot change for a given token string (the
    signature is valid, the structure and types are right). Everything that depends on time or
    on the caller is re-checked on every call: exp/nbf/iat against ``now``, iss and aud, and the
    key still being published in the ring (same kid, same key object), so a retired or replaced
    key invalidates its cached tokens at once. Only successes are stored: failures cost an
    attacker our CPU, never our memory. Keying by digest keeps entries small and avoids holding
    bearer tokens in memory longer than needed.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._lock = threading.Lock()  # the ASGI thread pool may verify concurrently

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None:
                self._entries.move_to_end(digest)
            return entry

    def put(self, digest: bytes, entry: _Entry) -> None:
        with self._lock:
            self._entries[digest] = entry
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def discard(self, digest: bytes) -> None:
        with self._lock:
            self._entries.pop(digest, None)


_DEFAULT_CACHE = VerifiedTokenCache()


def verify_access_token(
    token: str,
    ring: KeyRing,
    *,
    issuer: str,
    audience: str,
    now: float,
    leeway: int = 30,
    cache: VerifiedTokenCache | None = None,
    token_types: frozenset[str] = ACCESS_TOKEN_TYPES,
) -> AccessClaims:
    """The claims of a valid access token for ``audience`` issued by ``issuer``; else TokenError.

    ``token_types``: the header ``typ`` values accepted, lower-case. Ours are RFC 9068's; an
    external OpenID provider may label its access tokens plain ``JWT`` (``ketnoi.security.oidc``),
    where the audience check is what keeps its ID tokens out.
    """
    if not isinstance(token, str):
        raise TokenError("malformed", "token is not a string")
    if len(token) > MAX_TOKEN_BYTES:  # checked on characters before encoding: no work for huge input
        raise TokenError("oversize", f"token longer than {MAX_TOKEN_BYTES} bytes")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise TokenError("malformed", "token is not ASCII") from None
    cache = _DEFAULT_CACHE if cache is None else cache
    digest = hashlib.sha256(raw).digest()
    entry = cache.get(digest)
    if entry is None or ring.public_key(entry.kid, now) is not entry.key:
        entry = _verify_signature(raw, ring, now, token_types)
        cache.put(digest, entry)
    if entry.typ not in token_types:  # a cache shared by callers accepting different types
        raise TokenError("type", f"typ {entry.typ!r} is not an access token")
    claims = entry.claims
    try:
        _check_claims(claims, issuer=issuer, audience=audience, now=now, leeway=leeway)
    except TokenError as err:
        if err.reason == "expired":
            cache.discard(digest)  # can never become valid again
        raise
    return claims


def _verify_signature(raw: bytes, ring: KeyRing, now: float, token_types: frozenset[str]) -> _Entry:
    """The expensive, time-independent part: structure, header, key, signature, claim types."""
    kid, key, payload, typ = _verified_payload(raw, ring, now, token_types)
    return _Entry(kid, key, _parse_claims(payload), typ)


def _verified_payload(
    raw: bytes, ring: KeyRing, now: float, token_types: frozenset[str]
) -> tuple[str, KeyObject, dict[str, Any], str]:
    """Structure, header, key and signature of a compact JWS signed with ``ring``: (kid, key,
    JSON object payload, lower-case ``typ``), else TokenError."""
    try:
        obj = jws.extract_compact(raw, registry=_REGISTRY)
        header = obj.headers()
        _REGISTRY.check_header(header)  # syntax of known parameters; unknown ones refused
    except (JoseError, ValueError) as err:
        raise TokenError("malformed", str(err)) from None
    if "crit" in header or "b64" in header:
        raise TokenError("malformed", "JWS extensions are not accepted")  # RFC 7797 payloads etc.
    alg = header.get("alg")
    if alg not in SUPPORTED_ALGORITHMS:
        raise TokenError("algorithm", f"alg {alg!r} not allowed")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in token_types:
        raise TokenError("type", f"typ {typ!r} is not one of {sorted(token_types)}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise TokenError("unknown-key", "no kid")
    key = ring.public_key(kid, now)
    if key is None:
        raise TokenError("unknown-key", f"kid {kid!r} unknown or retired")
    if key.alg != alg:
        # The key decides the algorithm, never the token (RFC 8725 §3.1).
        raise TokenError("algorithm", f"alg {alg!r} does not match key {kid!r}")
    try:
        valid = jws.validate_compact(obj, key, registry=_REGISTRY)
    except (JoseError, ValueError) as err:
        raise TokenError("bad-signature", str(err)) from None
    if not valid:
        raise TokenError("bad-signature")
    try:
        payload = json.loads(obj.payload)
    except ValueError:
        raise TokenError("malformed", "payload is not JSON") from None
    if not isinstance(payload, dict):
        raise TokenError("malformed", "payload is not a JSON object")
    return kid, key, payload, typ.lower()


def _is_number(value: Any) -> bool:
    # json.loads accepts NaN, Infinity, 1e400 and 400-digit integers; none of them is a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _parse_claims(payload: dict[str, Any]) -> AccessClaims:
    for name in ("iss", "sub", "client_id", "scope", "jti"):
        if not isinstance(payload.get(name), str):
            raise TokenError("claims", f"claim {name!r} missing or not a string")
    for name in ("iat", "exp"):
        if not _is_number(payload.get(name)):
            raise TokenError("claims", f"claim {name!r} missing or not a number")
    nbf = payload.get("nbf")
    if nbf is not None and not _is_number(nbf):
        raise TokenError("claims", "claim 'nbf' is not a number")
    aud = payload.get("aud")
    audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
    if not audience or not all(isinstance(a, str) for a in audience):
        raise TokenError("claims", "claim 'aud' missing or not a string / list of strings")
    extra = {k: v for k, v in payload.items() if k not in REGISTERED}
    return AccessClaims(
        sub=payload["sub"],
        client_id=payload["client_id"],
        scope=payload["scope"],
        exp=int(payload["exp"]),
        iat=int(payload["iat"]),
        nbf=None if nbf is None else int(nbf),
        jti=payload["jti"],
        issuer=payload["iss"],
        audience=audience,
        extra=MappingProxyType(extra),
    )


def _check_claims(claims: AccessClaims, *, issuer: str, audience: str, now: float, leeway: int) -> None:
    """The cheap checks, repeated on every call (also for cached tokens)."""
    if claims.issuer != issuer:
        raise TokenError("issuer", f"issuer {claims.issuer!r}")
    if audience not in claims.audience:
        raise TokenError("audience", f"audience {list(claims.audience)!r}")
    if now >= claims.exp + leeway:
        raise TokenError("expired", f"expired at {claims.exp}")
    if claims.nbf is not None and claims.nbf > now + leeway:
        raise TokenError("not-yet-valid", f"not before {claims.nbf}")
    if claims.iat > now + leeway:
        raise TokenError("not-yet-valid", f"issued in the future ({claims.iat})")
