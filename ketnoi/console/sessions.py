"""The console as an OAuth client of this server (ADR 0026 decision 2), without HTTP.

Sign-in is the platform's own authorization endpoint: :meth:`ConsoleAuth.start` makes the authorization
request (PKCE S256, a random ``state`` bound to the browser by a cookie) and :meth:`ConsoleAuth.finish`
exchanges the code at the token service in-process. The tokens stay on the server in a session record
(``security`` kind ``console``, keyed by the SHA-256 of the session cookie): the browser holds only the
cookie. :meth:`ConsoleAuth.session` refreshes the access token shortly before it expires and ends a
session idle for :data:`IDLE_S` or older than :data:`MAX_AGE_S`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Final
from urllib.parse import urlencode

from ketnoi.auth.tokens import unverified
from ketnoi.interactions.services import Services
from ketnoi.security.client_auth import OAuthError
from ketnoi.security.clients import Client, Clients
from ketnoi.security.introspection import TokenStatus
from ketnoi.security.oauth import TokenService

CLIENT_NAME: Final = "ketnoi console"
# user/ scopes for staff, patient/ scopes for a patient account: the authorization server grants each
# role only its own (ketnoi.security.authorize._granted); online_access: a refresh token for a working day.
SCOPE: Final = "openid fhirUser online_access user/*.cruds patient/*.cruds"
SIGNIN_S: Final = 600  # to complete a sign-in
IDLE_S: Final = 1800  # a session unused this long ends
MAX_AGE_S: Final = 12 * 3600  # and none lasts longer (online_access ends then too)
REFRESH_MARGIN_S: Final = 60  # refresh an access token expiring sooner than this
SEEN_EVERY_S: Final = 60  # how often a session's last use is written back


class SignInFailed(Exception):
    """The sign-in did not complete: ``reason`` is a key of the console's text catalogue."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    id_hash: str
    access: str
    refresh: str | None
    access_expires: float
    created: float
    seen: float
    user: str
    fhir_user: str | None
    patient: str | None
    scope: str
    # A TOTP secret the user is setting up on the account page, until confirmed with a code (issue 15):
    # kept here, on the server, never in a cookie or URL, and gone when the session ends.
    pending_totp: str | None = field(default=None, repr=False)

    @property
    def grant(self) -> str | None:
        """The refresh-token grant (``sid``) this session's tokens belong to: the sign-in to keep when
        the user changes the password and every other one ends."""
        sid = unverified(self.access, 1).get("sid")
        return sid if isinstance(sid, str) else None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class ConsoleAuth:
    """Sign-in, sessions and sign-out of the console for one server."""

    def __init__(self, services: Services, tokens: TokenService, origin: str) -> None:
        self.store = services.store
        self.audience = services.settings.public_base()
        self.issuer = services.settings.issuer()
        self.tokens = tokens
        self.status = TokenStatus(tokens)
        self.redirect_uri = f"{origin}/callback"
        self._client: Client | None = None

    # ---- the registered client ----------------------------------------------------------------
    def client(self, now: float) -> Client:
        """The console's public client, registered on first use for this server's redirect URI (a
        server moved to another address registers anew and revokes the old one)."""
        if self._client is not None:
            return self._client
        clients = Clients(self.store)
        with self.store.session(write=False) as session:
            known = session.security_get("console-client", "id", now)
        client = clients.get(known) if known else None
        if client is None or client.revoked or client.redirect_uris != (self.redirect_uri,):
            if client is not None and not client.revoked:
                clients.revoke(client.client_id, now=now)
            client, _ = clients.add(CLIENT_NAME, SCOPE, kind="public", redirect_uris=[self.redirect_uri], now=now)
            with self.store.session(write=True) as session:
                session.security_put("console-client", "id", client.client_id, None, now)
        self._client = client
        return client

    # ---- sign-in ------------------------------------------------------------------------------
    def start(self, next_path: str, lang: str, now: float) -> tuple[str, str]:
        """The authorization URL to send the browser to, and the cookie value binding it to the browser."""
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        record = json.dumps({"verifier": verifier, "next": next_path})
        with self.store.session(write=True) as session:
            session.security_put("console-signin", _digest(state), record, now + SIGNIN_S, now)
        query = {
            "response_type": "code", "client_id": self.client(now).client_id, "redirect_uri": self.redirect_uri,
            "scope": SCOPE, "state": state, "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256", "aud": self.audience, "ui_locales": lang,
        }  # fmt: skip
        return f"{self.issuer}/authorize?{urlencode(query)}", state

    def finish(self, code: str, state: str, cookie: str | None, now: float) -> tuple[str, str]:
        """Exchange ``code``: the new session's cookie value and the page to go back to."""
        if not state or cookie is None or not hmac.compare_digest(state, cookie):
            raise SignInFailed("session_expired")  # not this browser's sign-in (login CSRF), or too old
        with self.store.session(write=True) as session:
            record = session.security_take("console-signin", _digest(state), now)
        if record is None:
            raise SignInFailed("session_expired")
        started = json.loads(record)
        form = {
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
            "client_id": self.client(now).client_id, "code_verifier": started["verifier"],
        }  # fmt: skip
        try:
            answer = self.tokens.token(form, now)
        except OAuthError as exc:
            raise SignInFailed("sign_in_failed") from exc
        cookie_value = secrets.token_urlsafe(32)
        claims = unverified(answer["access_token"], 1)  # just issued to us, in-process
        kept = ConsoleSession(
            _digest(cookie_value), answer["access_token"], answer.get("refresh_token"),
            now + float(answer.get("expires_in", 0)), now, now, str(claims.get("sub", "")),
            claims.get("fhirUser"), answer.get("patient"), str(answer.get("scope", "")),
        )  # fmt: skip
        self._save(kept, now)
        return cookie_value, str(started.get("next") or "/")

    # ---- sessions -----------------------------------------------------------------------------
    def session(self, cookie: str | None, now: float) -> ConsoleSession | None:
        """The live session of this cookie (its access token refreshed when about to expire), or None."""
        if not cookie:
            return None
        with self.store.session(write=False) as session:
            text = session.security_get("console", _digest(cookie), now)
        if text is None:
            return None
        kept = ConsoleSession(**json.loads(text))
        if now - kept.seen > IDLE_S or now - kept.created > MAX_AGE_S:
            self.end(cookie, now)
            return None
        if kept.access_expires - now < REFRESH_MARGIN_S:
            refreshed = self._refresh(kept, now)
            if refreshed is None:
                self.end(cookie, now)
                return None
            kept = refreshed
        elif now - kept.seen >= SEEN_EVERY_S:
            kept = replace(kept, seen=now)
            self._save(kept, now)
        return kept

    def _refresh(self, kept: ConsoleSession, now: float) -> ConsoleSession | None:
        if kept.refresh is None:
            return None
        form = {"grant_type": "refresh_token", "refresh_token": kept.refresh, "client_id": self.client(now).client_id}
        try:
            answer = self.tokens.token(form, now)
        except OAuthError:
            return None  # revoked, expired, or the account disabled: the session ends
        fresh = replace(
            kept, access=answer["access_token"], refresh=answer.get("refresh_token", kept.refresh),
            access_expires=now + float(answer.get("expires_in", 0)), seen=now,
        )  # fmt: skip
        self._save(fresh, now)
        return fresh

    def end(self, cookie: str | None, now: float) -> None:
        """Sign out: the refresh token's grant is revoked and the session deleted."""
        if not cookie:
            return
        with self.store.session(write=True) as session:
            text = session.security_take("console", _digest(cookie), now)
        if text is None:
            return
        kept = ConsoleSession(**json.loads(text))
        client_id = self.client(now).client_id
        for token in (kept.refresh, kept.access):
            if token:
                with contextlib.suppress(OAuthError):  # already gone: nothing left to revoke
                    self.status.revoke({"token": token, "client_id": client_id}, None, now)

    def hold_totp(self, kept: ConsoleSession, secret: str | None, now: float) -> ConsoleSession:
        """The session keeping ``secret`` as the TOTP being set up (None: none any more)."""
        updated = replace(kept, pending_totp=secret)
        self._save(updated, now)
        return updated

    def _save(self, kept: ConsoleSession, now: float) -> None:
        expires = min(kept.created + MAX_AGE_S, kept.seen + IDLE_S)
        with self.store.session(write=True) as session:
            session.security_put("console", kept.id_hash, json.dumps(asdict(kept)), expires, now)


__all__ = ["ConsoleAuth", "ConsoleSession", "SignInFailed"]
