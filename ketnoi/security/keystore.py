"""The server's signing key ring, kept in the store and shared by every process that serves.

The ring (:class:`ketnoi.auth.keys.KeyRing`, private keys included) is one record: kind
``"keyring"``, key ``"signing"``. It is created on first use (ES256) with an insert-if-absent,
so processes starting together agree on one ring. Rotation (``ketnoi keys rotate``) reads the
record ``for_update`` and writes it back in one transaction: two rotations at once both land,
neither loses the other's key.

Each process caches the ring and re-reads it at most every :data:`REFRESH_S` seconds (or on
:meth:`KeyStore.reload`), so a rotation made elsewhere is picked up without a restart. Until
then a process still signs with the previous key, which stays published (``retire_after``) until
every token it signed has expired, so nothing breaks; a verifier that meets a new ``kid`` may ask
:meth:`KeyStore.ring_with` for a prompt re-read.

The private keys are stored in the database as JWK JSON: whoever can read the database can
sign tokens, exactly as whoever can write it can change the records those tokens protect.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Final

from ketnoi.auth.keys import KeyRing

if TYPE_CHECKING:
    from ketnoi.store.base import Store

KIND: Final = "keyring"
KEY: Final = "signing"
REFRESH_S: Final = 30.0
# An unknown kid may trigger a re-read, at most this often: kids come from unauthenticated
# tokens, and each re-read is a database query.
MIN_RELOAD_S: Final = 1.0
# The longest access token (tokens.MAX_LIFETIME) plus the verifiers' clock leeway.
DEFAULT_TOKEN_LIFETIME: Final = 3600 + 30


def _dump(ring: KeyRing) -> str:
    return json.dumps(ring.to_json(), sort_keys=True)


def _parse(text: str) -> KeyRing:
    return KeyRing.from_json(json.loads(text))


class KeyStore:
    """The signing key ring of ``store``, cached in this process."""

    def __init__(self, store: Store, *, refresh_s: float = REFRESH_S, alg: str = "ES256") -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._alg = alg  # of the first key, when the ring is created
        self._ring: KeyRing | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()  # one re-read at a time, not one per request thread

    def ring(self, now: float) -> KeyRing:
        """The ring, from the cache unless it is older than ``refresh_s`` (created on first use)."""
        with self._lock:
            # A clock that stepped backwards also re-reads: the age of the cache is unknown then.
            if self._ring is None or not 0.0 <= now - self._read_at < self._refresh_s:
                self._ring, self._read_at = self._load(now), now
            return self._ring

    def ring_with(self, kid: str, now: float) -> KeyRing:
        """The ring, re-read first if it lacks ``kid`` (a key made by another process) and the
        last read is at least :data:`MIN_RELOAD_S` old."""
        ring = self.ring(now)
        if any(key.kid == kid for key in ring.all_keys()):
            return ring
        with self._lock:
            if self._ring is ring and now - self._read_at >= MIN_RELOAD_S:
                self._ring, self._read_at = self._load(now), now
            return self._ring if self._ring is not None else ring

    def reload(self) -> None:
        """Forget the cached ring: the next :meth:`ring` reads the store."""
        with self._lock:
            self._ring = None

    def rotate(self, now: float, token_lifetime: float = DEFAULT_TOKEN_LIFETIME, alg: str = "ES256") -> str:
        """Make a new signing key (its kid is returned); the old ones stay published for ``token_lifetime``."""
        with self._store.session(write=True) as session:
            text = session.security_get(KIND, KEY, now, for_update=True)
            ring = KeyRing() if text is None else _parse(text)
            new = ring.rotate(now, token_lifetime, alg)
            session.security_put(KIND, KEY, _dump(ring), None, now)
        with self._lock:
            self._ring, self._read_at = ring, now
        return new.kid

    def jwks(self, now: float) -> dict[str, list[dict[str, Any]]]:
        """The public JWK Set to publish (no private members), re-read at most every
        :data:`MIN_RELOAD_S` rather than :data:`REFRESH_S`: another server trusting this one as its
        OpenID provider (``ketnoi.security.oidc``) fetches this set when it meets a new kid, and a
        key rotated in by ``ketnoi keys rotate`` must be here by then, not 30 s later. The bound
        keeps a flood of anonymous requests to one database read a second."""
        with self._lock:
            if self._ring is not None and not 0.0 <= now - self._read_at < MIN_RELOAD_S:
                self._ring, self._read_at = self._load(now), now
        return self.ring(now).jwks(now)

    def _load(self, now: float) -> KeyRing:
        with self._store.session(write=False) as session:
            text = session.security_get(KIND, KEY, now)
        return self._create(now) if text is None else _parse(text)

    def _create(self, now: float) -> KeyRing:
        ring = KeyRing.generate(self._alg, now=now)
        with self._store.session(write=True) as session:
            if session.security_add(KIND, KEY, _dump(ring), None, now):
                return ring
            # Another process created the ring first: use that one, so that all sign alike.
            text = session.security_get(KIND, KEY, now)
        if text is None:
            raise RuntimeError("the signing key ring vanished while it was being created")
        return _parse(text)
