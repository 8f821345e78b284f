"""The server's signing keys: generation, rotation, and the published JWK Set.

* Keys are JWKs (RFC 7517) for ES256 (ECDSA P-256, the default) or RS256 (RSA 2048), the two
  algorithms of RFC 7518 §3.1 that every SMART client library can verify.
* The ``kid`` is the RFC 7638 thumbprint of the public key, so it is stable, unique per key and
  carries no meaning an attacker could use.
* Rotation never breaks tokens in flight: the previous key stops signing at once but stays in the
  JWK Set (``retire_after``) until the last token it signed has expired.

The ring is plain data (:meth:`KeyRing.to_json`/:meth:`KeyRing.from_json`); where it is stored
(database row, file with mode 0600) is the caller's business. Nothing here reads a clock: every
time-dependent call takes ``now`` in epoch seconds.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

__all__ = ["SUPPORTED_ALGORITHMS", "KeyObject", "KeyRing", "SigningKey", "generate_key"]

#: Algorithms this server signs with (and therefore the only ones it accepts on its own tokens).
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset({"ES256", "RS256"})

KeyObject = ECKey | RSAKey  # a joserfc key object, public or private

# JWK members that hold private material (RFC 7518 §6.2.2, §6.3.2, §6.4). Checked explicitly
# when publishing, in addition to joserfc's own filtering: a leak here is catastrophic.
PRIVATE_MEMBERS: frozenset[str] = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_RSA_2048_N_CHARS = 342  # a 2048-bit modulus is 256 bytes, 342 characters of unpadded base64url


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One signing key. ``private_jwk`` is kept out of ``repr`` so it never lands in a log."""

    kid: str
    alg: str
    private_jwk: dict[str, Any] = field(repr=False)
    created_at: float
    retire_after: float | None = None  # when it leaves the JWK Set; None: signing or published

    def public_jwk(self) -> dict[str, Any]:
        """The public half, with ``kid``, ``alg`` and ``use`` as published in the JWK Set."""
        return _public_dict(_import(self.private_jwk))


def generate_key(alg: str = "ES256", *, now: float) -> SigningKey:
    """A fresh key pair for ``alg`` (ES256: EC P-256; RS256: RSA 2048)."""
    key: KeyObject
    if alg == "ES256":
        key = ECKey.generate_key("P-256", private=True)
    elif alg == "RS256":
        key = RSAKey.generate_key(2048, private=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r} (use one of {sorted(SUPPORTED_ALGORITHMS)})")
    kid = key.thumbprint()
    private = key.as_dict(private=True, kid=kid, alg=alg, use="sig")
    return SigningKey(kid=kid, alg=alg, private_jwk=dict(private), created_at=now)


class KeyRing:
    """The set of signing keys: one active (signs new tokens), others published until they retire.

    Imported key objects are cached per ``kid``: importing a JWK costs 60-110 µs (big-integer
    parsing and validation), too slow to repeat on every request. A ring never changes the key
    material behind a kid (only ``retire_after``), so the cache cannot go stale.
    """

    def __init__(self, keys: Iterable[SigningKey] = ()) -> None:
        self._keys: dict[str, SigningKey] = {}
        self._private: dict[str, KeyObject] = {}
        self._public: dict[str, KeyObject] = {}
        for key in keys:
            if key.kid in self._keys:
                raise ValueError(f"duplicate kid {key.kid!r} in key ring")
            self._private[key.kid] = _checked_import(key)
            self._keys[key.kid] = key
        self._lock = threading.Lock()

    @classmethod
    def generate(cls, alg: str = "ES256", *, now: float) -> KeyRing:
        """A ring holding a single new active key."""
        return cls([generate_key(alg, now=now)])

    def all_keys(self) -> list[SigningKey]:
        """All keys, oldest first."""
        return sorted(self._keys.values(), key=lambda k: k.created_at)

    def active(self) -> SigningKey:
        """The newest key that is not retiring: the one that signs. LookupError if there is none."""
        candidates = [k for k in self._keys.values() if k.retire_after is None]
        if not candidates:
            raise LookupError("key ring has no active signing key")
        return max(candidates, key=lambda k: k.created_at)

    def rotate(self, now: float, token_lifetime: float, alg: str | None = None) -> SigningKey:
        """Make a new active key; the current ones retire at ``now + token_lifetime``.

        ``token_lifetime`` must cover the longest-lived token the old key may have signed (plus
        the verifier's clock leeway), so that no valid token loses its key. Keys already past
        their retirement are dropped from the ring here: they can verify nothing any more.
        """
        if token_lifetime < 0:
            raise ValueError("token_lifetime must not be negative")
        with self._lock:
            try:
                current_alg = self.active().alg
            except LookupError:
                current_alg = "ES256"
            new = generate_key(alg or current_alg, now=now)
            self._private[new.kid] = _import(new.private_jwk)
            kept: dict[str, SigningKey] = {}
            for kid, key in self._keys.items():
                if key.retire_after is None:
                    key = replace(key, retire_after=now + token_lifetime)
                if key.retire_after is not None and key.retire_after <= now:
                    self._public.pop(kid, None)
                    self._private.pop(kid, None)
                    continue
                kept[kid] = key
            kept[new.kid] = new
            self._keys = kept
        return new

    def _published(self, kid: str, now: float) -> SigningKey | None:
        key = self._keys.get(kid)
        if key is None or (key.retire_after is not None and key.retire_after <= now):
            return None
        return key

    def jwks(self, now: float) -> dict[str, list[dict[str, Any]]]:
        """The public JWK Set (RFC 7517 §5) to serve at the ``jwks_uri``: no private members."""
        published = [k for k in self.all_keys() if self._published(k.kid, now) is not None]
        out = [_public_dict(self._public_key(k)) for k in published]
        for jwk in out:
            if PRIVATE_MEMBERS & jwk.keys():  # defence in depth; joserfc already strips them
                raise AssertionError("private key material in JWK Set")
        return {"keys": out}

    def public_key(self, kid: str, now: float) -> KeyObject | None:
        """The (cached) public key for ``kid``, or None if unknown or retired at ``now``.

        The same object is returned for a kid every time, so callers may compare by identity.
        """
        key = self._published(kid, now)
        return None if key is None else self._public_key(key)

    def private_key(self, kid: str) -> KeyObject:
        """The (cached) private key object for ``kid`` (KeyError if unknown)."""
        key = self._keys[kid]
        cached = self._private.get(kid)
        if cached is None:
            cached = self._private.setdefault(kid, _import(key.private_jwk))
        return cached

    def _public_key(self, key: SigningKey) -> KeyObject:
        cached = self._public.get(key.kid)
        if cached is None:
            # setdefault: two threads racing here end up sharing one object (identity matters
            # to the token verification cache).
            cached = self._public.setdefault(key.kid, _import(_public_dict(_import(key.private_jwk))))
        return cached

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict holding PRIVATE keys: store it like a password (encrypted or 0600)."""
        return {
            "keys": [
                {
                    "kid": k.kid,
                    "alg": k.alg,
                    "jwk": dict(k.private_jwk),
                    "created_at": k.created_at,
                    "retire_after": k.retire_after,
                }
                for k in self.all_keys()
            ]
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeyRing:
        """The inverse of :meth:`to_json`; ValueError on anything malformed."""
        entries = data.get("keys")
        if not isinstance(entries, list):
            raise ValueError("key ring JSON needs a 'keys' list")
        keys: list[SigningKey] = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("jwk"), dict):
                raise ValueError("key ring entry needs a 'jwk' object")
            retire = entry.get("retire_after")
            keys.append(
                SigningKey(
                    kid=str(entry.get("kid")),
                    alg=str(entry.get("alg")),
                    private_jwk=dict(entry["jwk"]),
                    created_at=float(entry.get("created_at", 0)),
                    retire_after=None if retire is None else float(retire),
                )
            )
        return cls(keys)

    @classmethod
    def from_public_jwks(cls, jwks: Mapping[str, Any], *, now: float) -> KeyRing:
        """A verify-only ring from another issuer's published JWK Set (an OpenID provider's ``jwks_uri``).

        Kept: keys we would accept on our own tokens (EC P-256 for ES256, RSA of 2048 bits or more
        for RS256) with a ``kid`` and ``use`` absent or ``sig``. Others (encryption keys, other
        algorithms, keys we cannot read) are skipped, not fatal: providers publish them beside their
        signing keys. A key without ``alg`` gets the one algorithm its type allows here, so the key
        still decides the algorithm. Private members, or two keys under one kid (the kid would no
        longer pick one key), refuse the whole set (ValueError): that provider is misconfigured.
        The ring cannot sign: its keys are published (``retire_after`` infinite) but never active.
        """
        entries = jwks.get("keys")
        if not isinstance(entries, list):
            raise ValueError("a JWK Set needs a 'keys' list")
        ring = cls()
        for jwk in entries:
            found = _public_signing_key(jwk)
            if found is None:
                continue
            kid, alg, key = found
            if kid in ring._keys:
                raise ValueError(f"two keys share the kid {kid!r} in the JWK Set")
            # The SigningKey holds the public JWK only: private_key() on this ring cannot sign.
            public = _public_dict(key)
            ring._keys[kid] = SigningKey(kid, alg, public, created_at=now, retire_after=math.inf)
            ring._public[kid] = key
        return ring


def _public_signing_key(jwk: Any) -> tuple[str, str, KeyObject] | None:
    """(kid, alg, public key) of one published JWK we can verify with, else None (skipped)."""
    if not isinstance(jwk, dict):
        return None
    if PRIVATE_MEMBERS & jwk.keys():
        raise ValueError("the JWK Set holds private key material")
    kid, kty, use = jwk.get("kid"), jwk.get("kty"), jwk.get("use", "sig")
    alg = jwk.get("alg", {"EC": "ES256", "RSA": "RS256"}.get(str(kty)))
    if not isinstance(kid, str) or not kid or use != "sig" or alg not in SUPPORTED_ALGORITHMS:
        return None
    if kty == "RSA" and len(str(jwk.get("n", ""))) < _RSA_2048_N_CHARS:
        return None  # too small: skipped before joserfc imports it (and warns)
    try:
        key = _import({**jwk, "alg": alg})  # the key object carries the algorithm that verification enforces
    except (JoseError, ValueError, TypeError):  # an unreadable key is skipped like an unusable one
        return None
    if alg == "ES256":
        fits = isinstance(key, ECKey) and key.curve_name == "P-256"
    else:
        fits = isinstance(key, RSAKey) and key.public_key.key_size >= 2048
    return (kid, str(alg), key) if fits else None


def _import(jwk: Mapping[str, Any]) -> KeyObject:
    kty = jwk.get("kty")
    if kty == "EC":
        return ECKey.import_key(dict(jwk))
    if kty == "RSA":
        return RSAKey.import_key(dict(jwk))
    raise ValueError(f"unsupported key type {kty!r}")


def _public_dict(key: KeyObject) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def _checked_import(key: SigningKey) -> KeyObject:
    """Import a stored key, refusing one that does not match its own metadata (a hand-edited file)."""
    if key.alg not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"unsupported signing algorithm {key.alg!r}")
    imported = _import(key.private_jwk)
    if not imported.is_private:
        raise ValueError(f"key {key.kid!r} has no private part")
    if key.alg == "ES256":
        fits = isinstance(imported, ECKey) and imported.curve_name == "P-256"
    else:
        fits = isinstance(imported, RSAKey) and imported.public_key.key_size >= 2048
    if not fits:
        raise ValueError(f"key {key.kid!r} does not fit algorithm {key.alg}")
    if key.private_jwk.get("kid") != key.kid or key.private_jwk.get("alg") != key.alg:
        raise ValueError(f"key {key.kid!r}: JWK kid/alg disagree with the ring entry")
    return imported
