"""The token endpoint's logic (RFC 6749 §5), without HTTP.

Three grants:

* ``authorization_code`` (RFC 6749 §4.1 with PKCE S256, RFC 7636): a code from the sign-in and
  consent pages (:mod:`ketnoi.security.authorize`) is exchanged once, by the client it was made
  for, with the same redirect URI and the verifier of its challenge. A second use of a code is a
  replay: what the first use produced is revoked.
* ``refresh_token``: rotated on every use, bound to its client; a rotated token presented again
  revokes its whole grant (:mod:`ketnoi.security.grants`). The scope may be narrowed, never widened.
* ``client_credentials`` (SMART Backend Services; or a confidential client with a secret):
  ``system/`` scopes only, at most five minutes, no refresh token.

Client authentication is :mod:`ketnoi.security.client_auth`. Errors are the RFC's
``invalid_client``, ``invalid_grant``, ``invalid_request``, ``invalid_scope``,
``unsupported_grant_type``; a code or refresh token that does not work is ``invalid_grant``
whatever the reason (unknown, expired, used, another client's), so nothing is learnt by guessing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from ketnoi.auth.pkce import verify_pkce
from ketnoi.auth.scopes import ScopeSet, parse_scopes
from ketnoi.auth.tokens import issue_access_token, issue_id_token, unverified
from ketnoi.config import Settings
from ketnoi.fhir.definitions import resource_types
from ketnoi.interactions.context import RequestContext
from ketnoi.security import auth_events, grants
from ketnoi.security.accounts import Accounts
from ketnoi.security.client_auth import ASSERTION_TYPE, ClientAuthenticator, OAuthError
from ketnoi.security.clients import Client, Clients
from ketnoi.security.keystore import KeyStore
from ketnoi.store.base import Session, Store

BACKEND_LIFETIME: Final = 300  # SMART: expires_in SHOULD NOT exceed 300 s for backend services
USER_LIFETIME: Final = 900  # a user's access token: 15 minutes, then the refresh token
GRANT_TYPES: Final = ("authorization_code", "refresh_token", "client_credentials")

__all__ = ["ASSERTION_TYPE", "BACKEND_LIFETIME", "GRANT_TYPES", "USER_LIFETIME", "OAuthError", "TokenService"]


def _bad_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


class TokenService:
    """Issues access tokens for one server."""

    def __init__(
        self, settings: Settings, store: Store, keys: KeyStore, revocations: grants.Revocations | None = None
    ) -> None:
        self.store = store
        self.audience = settings.public_base()
        self.issuer = settings.issuer()
        self.token_url = f"{self.issuer}/token"
        self.keys = keys
        self.clients = Clients(store)
        self.accounts = Accounts(store)
        self.client_auth = ClientAuthenticator(store, self.clients, self.token_url)
        self.revocations = revocations or grants.Revocations(store)

    def token(
        self, form: dict[str, str], now: float, authorization: str | None = None, address: str | None = None
    ) -> dict[str, Any]:
        """The token response for a form-encoded token request; an AuditEvent records it, issued or refused."""
        try:
            answer = self._token(form, now, authorization)
        except OAuthError as exc:
            who = RequestContext(client_id=form.get("client_id") or None, remote_addr=address)
            auth_events.record(self.store, who, "token", exc.status, f"{exc.error}: {exc.description}", self.issuer)
            raise
        claims = unverified(answer["access_token"], 1)
        who = RequestContext(
            user=None if claims.get("sub") == claims.get("client_id") else claims.get("sub"),
            client_id=claims.get("client_id"), fhir_user=claims.get("fhirUser"), remote_addr=address,
        )  # fmt: skip
        auth_events.record(self.store, who, "token", 200, None, self.issuer, claims.get("patient"))
        return answer

    def _token(self, form: dict[str, str], now: float, authorization: str | None) -> dict[str, Any]:
        grant = form.get("grant_type", "")
        if grant not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant[:40]!r} is not supported here")
        client = self.client_auth.authenticate(form, authorization, now)
        # The signing keys are read (on a new database: created, a write) before a grant's write
        # transaction opens: creating them inside it would wait forever on SQLite's one writer.
        self.keys.ring(now)
        if grant == "client_credentials":
            return self._client_credentials(form, client, now)
        if grant == "authorization_code":
            return self._authorization_code(form, client, now)
        return self._refresh(form, client, now)

    # ---- client_credentials ----------------------------------------------------------------
    def _client_credentials(self, form: dict[str, str], client: Client, now: float) -> dict[str, Any]:
        if client.kind == "public":
            raise OAuthError("unauthorized_client", "a public client cannot use client_credentials", 400)
        known = resource_types()
        granted = parse_scopes(form.get("scope", ""), known).narrow(parse_scopes(client.scope, known))
        system = ScopeSet(tuple(s for s in granted.clinical if s.context == "system"))  # no user, no patient
        if not system.clinical:
            raise OAuthError("invalid_scope", "none of the requested system/ scopes is registered for this client")
        # A client registered for an organization acts for it: every version it writes records it.
        extra = {"organization": client.organization} if client.organization else None
        token = issue_access_token(
            self.keys.ring(now), issuer=self.issuer, audience=self.audience, subject=client.client_id,
            client_id=client.client_id, scope=system.text(), lifetime=BACKEND_LIFETIME, now=now, extra=extra,
        )  # fmt: skip
        return {"access_token": token, "token_type": "Bearer", "expires_in": BACKEND_LIFETIME, "scope": system.text()}

    # ---- authorization_code ----------------------------------------------------------------
    def _authorization_code(self, form: dict[str, str], client: Client, now: float) -> dict[str, Any]:
        code = form.get("code", "")
        error: OAuthError
        with self.store.session(write=True) as session:
            record = grants.take_code(session, code, now) if code else None
            if record is None:
                error = self._code_replay(session, code, now)
            elif record.grant.client_id != client.client_id or record.redirect_uri != form.get("redirect_uri"):
                error = _bad_grant("the code was issued to another client or redirect_uri")
            elif not verify_pkce(form.get("code_verifier"), record.challenge, "S256"):
                error = _bad_grant("code_verifier does not match the code_challenge (PKCE S256)")
            elif not self._active_user(record.grant.username):
                error = _bad_grant("the user's account is disabled")
            else:
                answer, family, jti = self._issue(session, record.grant, record.grant.scope, now)
                grants.note_code_use(session, code, family, jti, now)
                return answer
        # Out of the transaction so that a replay's revocation commits; the code stays used.
        self.revocations.reload()
        raise error

    def _code_replay(self, session: Session, code: str, now: float) -> OAuthError:
        used = grants.replayed_code(session, code, now) if code else None
        if used is None:
            return _bad_grant("unknown or expired authorization code")
        grants.end_family(session, used.get("family", ""), now)
        if used.get("jti"):
            grants.revoke(session, "jti", used["jti"], now)
        return _bad_grant("the authorization code was already used; the tokens it gave are revoked")

    # ---- refresh_token ---------------------------------------------------------------------
    def _refresh(self, form: dict[str, str], client: Client, now: float) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        error: OAuthError
        with self.store.session(write=True) as session:
            family = grants.find_refresh(session, token, now) if token else None
            if family is None:
                error = self._refresh_replay(session, token, now)
            elif family.client_id != client.client_id:
                error = _bad_grant("unknown, expired or revoked refresh token")  # another client's: say no more
            elif not self._active_user(family.username):
                grants.end_family(session, family.family, now)
                error = _bad_grant("the user's account is disabled")
            else:
                scope = self._narrowed(form.get("scope"), family.scope)
                grants.retire_refresh(session, token, family, now)
                answer, _, _ = self._issue(session, family, scope, now)
                return answer
        self.revocations.reload()
        raise error

    def _refresh_replay(self, session: Session, token: str, now: float) -> OAuthError:
        reused = grants.reused_refresh_family(session, token, now) if token else None
        if reused is None:
            return _bad_grant("unknown, expired or revoked refresh token")
        grants.end_family(session, reused, now)  # a copy exists: end the whole grant (RFC 9700 §4.14.2)
        return _bad_grant("the refresh token was already used; the whole grant is revoked")

    def _narrowed(self, requested: str | None, granted: str) -> str:
        if not requested:
            return granted
        known = resource_types()
        asked, have = parse_scopes(requested, known), parse_scopes(granted, known)
        narrowed = asked.narrow(have)
        if asked.invalid or narrowed.text() != asked.text():
            raise OAuthError("invalid_scope", "a refresh may only keep or narrow the granted scopes")
        return narrowed.text()

    # ---- issuing ---------------------------------------------------------------------------
    def _active_user(self, username: str) -> bool:
        user = self.accounts.get(username)
        return user is not None and not user.disabled

    def _issue(self, session: Session, grant: grants.Grant, scope: str, now: float) -> tuple[dict[str, Any], str, str]:
        """The token response for ``grant`` (with ``scope``), its family id and its access token's jti."""
        others = parse_scopes(grant.scope).other
        family: grants.Grant | None = grant if grant.family else None
        if family is None and others & {"offline_access", "online_access"}:
            offline = "offline_access" in others
            lifetime = grants.OFFLINE_LIFETIME if offline else grants.ONLINE_LIFETIME
            family = grants.start_family(session, replace(grant, auth_time=grant.auth_time or now), lifetime, now)
        extra: dict[str, Any] = dict(grant.claims)
        if grant.patient:
            extra["patient"] = grant.patient
        if family is not None:
            extra["sid"] = family.family
        jti = grants.new_jti()
        access = issue_access_token(
            self.keys.ring(now), issuer=self.issuer, audience=self.audience, subject=grant.username,
            client_id=grant.client_id, scope=scope, lifetime=USER_LIFETIME, now=now, extra=extra, jti=jti,
        )  # fmt: skip
        answer: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": USER_LIFETIME}
        answer["scope"] = scope
        if grant.patient:
            answer["patient"] = grant.patient  # SMART launch context in the token response
        if family is not None:
            answer["refresh_token"] = grants.new_refresh_token(session, family, now)
        if "openid" in others and others & {"fhirUser", "profile"}:
            answer["id_token"] = issue_id_token(
                self.keys.ring(now), issuer=self.issuer, subject=grant.username, client_id=grant.client_id,
                now=now, nonce=grant.nonce, fhir_user=grant.claims.get("fhirUser"),
            )  # fmt: skip
        return answer, family.family if family is not None else "", jti

    def jwks(self, now: float) -> dict[str, Any]:
        return self.keys.jwks(now)
