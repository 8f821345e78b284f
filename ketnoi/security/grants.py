"""What a user consented to, and the single-use and revocable credentials it yields.

A :class:`Grant` is one consent: a user lets a client act with some scopes, optionally with a
patient in context. It travels through three records in ``security_record`` (kind, key → JSON):

* ``code`` (key: SHA-256 of the code): the grant, the redirect URI and the PKCE challenge, for
  :data:`CODE_LIFETIME` seconds. Taken atomically by the token endpoint, so a code works once
  even when two requests race; a ``code-used`` record remembers it was taken, so a second use is
  recognised as a replay and revokes what the first use produced (RFC 6749 §4.1.2).
* ``family`` (key: a random id, the ``sid`` claim of every access token of the grant): the grant
  itself, alive until its absolute expiry or revocation. Deleting it ends every refresh token of
  the grant at once.
* ``refresh`` (key: SHA-256 of the token) → its family. A refresh token is rotated on every use
  (RFC 9700 §4.14.2): the old one is taken and remembered in ``refresh-used``; presenting it again
  means it was copied, and the whole family is revoked.

Only hashes of codes and refresh tokens are stored: a copy of the database yields none of them.

The revocation list (kind ``revoked``) names what must no longer be accepted even though its
signature and expiry are fine: one access token (``jti:``), a grant (``sid:``), a user (``sub:``)
or a client (``client:``), each with the instant of revocation. Entries live as long as the
longest access token (:data:`ketnoi.auth.tokens.MAX_LIFETIME`): after that every token they could
concern has expired anyway. :class:`Revocations` is each process's cached view of that list.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ketnoi.auth.tokens import MAX_LIFETIME, AccessClaims

if TYPE_CHECKING:
    from ketnoi.store.base import Session, Store

CODE_LIFETIME: Final = 60  # seconds; RFC 6749 §4.1.2 recommends at most 10 minutes
CODE_REPLAY_WINDOW: Final = 3600  # how long a taken code is remembered, to spot a replay
OFFLINE_LIFETIME: Final = 30 * 86400  # offline_access: the grant lasts 30 days from sign-in
ONLINE_LIFETIME: Final = 12 * 3600  # online_access: a working day from sign-in
REVOCATION_REFRESH_S: Final = 15.0  # every process sees a revocation made elsewhere within this


def new_jti() -> str:
    """A token id: random, so that one token can be revoked by naming it."""
    return secrets.token_urlsafe(16)


def digest(secret: str) -> str:
    """The stored key of a code or refresh token: its SHA-256, hex (the token itself is never stored)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Grant:
    """One consent: ``username`` lets ``client_id`` act with ``scope`` (canonical text)."""

    username: str
    client_id: str
    scope: str
    patient: str | None = None  # the patient in context, a bare Patient id
    claims: dict[str, str] = field(default_factory=dict)  # fhirUser, organization
    nonce: str | None = None  # echoed in the ID token (OpenID Connect)
    auth_time: float = 0.0  # when the user signed in
    family: str = ""  # set when the first tokens are issued
    expires: float = 0.0  # the family's absolute end (refresh tokens never outlive it)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Grant:
        data: dict[str, Any] = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class CodeRecord:
    grant: Grant
    redirect_uri: str
    challenge: str


# ---- authorization codes ---------------------------------------------------------------------


def put_code(store: Store, grant: Grant, redirect_uri: str, challenge: str, now: float) -> str:
    """A new authorization code for ``grant``, valid :data:`CODE_LIFETIME` seconds."""
    code = secrets.token_urlsafe(32)
    value = json.dumps({"grant": grant.to_json(), "redirect_uri": redirect_uri, "challenge": challenge})
    with store.session(write=True) as session:
        session.security_put("code", digest(code), value, now + CODE_LIFETIME, now)
    return code


def take_code(session: Session, code: str, now: float) -> CodeRecord | None:
    """The code's record, taken so that nobody can use it again; None if unknown, expired or used."""
    key = digest(code)
    text = session.security_take("code", key, now)
    if text is None:
        return None
    data = json.loads(text)
    session.security_put("code-used", key, "{}", now + CODE_REPLAY_WINDOW, now)
    return CodeRecord(Grant.from_json(data["grant"]), data["redirect_uri"], data["challenge"])


def note_code_use(session: Session, code: str, family: str, jti: str, now: float) -> None:
    """Remember what a code produced (its family, its access token), for a replay to revoke."""
    value = json.dumps({"family": family, "jti": jti})
    session.security_put("code-used", digest(code), value, now + CODE_REPLAY_WINDOW, now)


def replayed_code(session: Session, code: str, now: float) -> dict[str, str] | None:
    """What a code produced, if it was used before (a replay); None for a code never seen."""
    text = session.security_get("code-used", digest(code), now)
    if text is None:
        return None
    data: dict[str, str] = json.loads(text)
    return data


# ---- refresh-token families ------------------------------------------------------------------


def start_family(session: Session, grant: Grant, lifetime: float, now: float) -> Grant:
    """Record the grant as a new family (its ``sid``), ending ``lifetime`` seconds after sign-in."""
    family = Grant(**{**asdict(grant), "family": secrets.token_hex(16), "expires": grant.auth_time + lifetime})
    session.security_put("family", family.family, family.to_json(), family.expires, now)
    return family


def new_refresh_token(session: Session, family: Grant, now: float) -> str:
    token = secrets.token_urlsafe(32)
    session.security_put("refresh", digest(token), json.dumps({"family": family.family}), family.expires, now)
    return token


def find_refresh(session: Session, token: str, now: float) -> Grant | None:
    """The live family of a refresh token, locked for rotation; None if unknown, used or revoked."""
    text = session.security_get("refresh", digest(token), now, for_update=True)
    if text is None:
        return None
    family = session.security_get("family", json.loads(text)["family"], now, for_update=True)
    return None if family is None else Grant.from_json(family)


def retire_refresh(session: Session, token: str, family: Grant, now: float) -> None:
    """Take a refresh token out of use, remembering it: presented again, it means a copy exists."""
    key = digest(token)
    session.security_delete("refresh", key)
    session.security_put("refresh-used", key, json.dumps({"family": family.family}), family.expires, now)


def reused_refresh_family(session: Session, token: str, now: float) -> str | None:
    text = session.security_get("refresh-used", digest(token), now)
    return None if text is None else str(json.loads(text)["family"])


def refresh_family_of(session: Session, token: str, now: float) -> Grant | None:
    """The live family of a refresh token without locking (introspection, revocation)."""
    text = session.security_get("refresh", digest(token), now)
    if text is None:
        return None
    family = session.security_get("family", json.loads(text)["family"], now)
    return None if family is None else Grant.from_json(family)


def end_family(session: Session, family: str, now: float) -> None:
    """Revoke a grant: its refresh tokens die with the family record, its access tokens by ``sid``."""
    if family:
        session.security_delete("family", family)
        revoke(session, "sid", family, now)


# ---- the revocation list ---------------------------------------------------------------------

REVOCABLE: Final = ("jti", "sid", "sub", "client")


def revoke(session: Session, what: str, value: str, now: float) -> None:
    """Add ``what:value`` (one of :data:`REVOCABLE`) to the revocation list from ``now`` on."""
    if what not in REVOCABLE:
        raise ValueError(f"cannot revoke by {what!r}")
    # Every access token lives at most MAX_LIFETIME (+ the verifiers' leeway): the entry can go then.
    session.security_put("revoked", f"{what}:{value}", json.dumps({"at": now}), now + MAX_LIFETIME + 60, now)


class Revocations:
    """This process's view of the revocation list, re-read at most every ``refresh_s`` seconds.

    Checking a token costs four dictionary lookups; the list is small (entries expire within an
    hour), so re-reading all of it is cheaper than asking the database on every request. A
    revocation made by this process is seen at once, one made by another within ``refresh_s``.
    """

    def __init__(self, store: Store, *, refresh_s: float = REVOCATION_REFRESH_S) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._entries: dict[str, float] = {}
        self._loaded = float("-inf")
        self._lock = threading.Lock()

    def revoked(self, claims: AccessClaims, now: float) -> bool:
        """Whether this token was revoked: itself, its grant, its user or its client."""
        entries = self._current(now)
        if not entries:
            return False
        sid = claims.extra.get("sid")
        if f"jti:{claims.jti}" in entries or (isinstance(sid, str) and f"sid:{sid}" in entries):
            return True
        # A user or client revoked at instant T loses the tokens issued up to T, not later ones
        # (re-enabled, it signs in again).
        for key in (f"sub:{claims.sub}", f"client:{claims.client_id}"):
            at = entries.get(key)
            if at is not None and claims.iat <= at:
                return True
        return False

    def add(self, what: str, value: str, now: float) -> None:
        """Revoke through this view: written to the store, and seen here at once."""
        with self._store.session(write=True) as session:
            revoke(session, what, value, now)
        with self._lock:
            self._entries = {**self._entries, f"{what}:{value}": now}

    def reload(self) -> None:
        self._loaded = float("-inf")

    def _current(self, now: float) -> dict[str, float]:
        if now - self._loaded < self._refresh_s:
            return self._entries
        with self._lock:
            if now - self._loaded >= self._refresh_s:  # another thread may have just re-read it
                with self._store.session(write=False) as session:
                    rows = session.security_list("revoked", now)
                self._entries = {key: float(json.loads(value)["at"]) for key, value in rows}
                self._loaded = now
        return self._entries
