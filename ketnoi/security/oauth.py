"""The token endpoint's logic (RFC 6749 §5), without HTTP. Today: SMART Backend Services.

``client_credentials`` with ``private_key_jwt`` (http://hl7.org/fhir/smart-app-launch/backend-services.html):
a registered backend client proves itself with a JWT signed by one of its registered keys
(``ketnoi.auth.assertions``: signature, ``iss``/``sub``, ``aud`` = this token URL, ``exp`` at most
five minutes ahead, exact ``kid``, no ``jku``), each ``jti`` accepted once — in this process
and, through the store, across every process sharing the database. It gets an access token of at
most five minutes for the scopes it asked for, narrowed to those it is registered for, and no
refresh token. Errors are the RFC's ``invalid_client``, ``invalid_request``, ``invalid_scope``,
``unsupported_grant_type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ketnoi.auth.assertions import AssertionRejected, ReplayCache, verify_client_assertion
from ketnoi.auth.scopes import parse_scopes
from ketnoi.auth.tokens import issue_access_token, unverified
from ketnoi.config import Settings
from ketnoi.fhir.definitions import resource_types
from ketnoi.security.clients import Clients
from ketnoi.security.keystore import KeyStore
from ketnoi.store.base import Store

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
BACKEND_LIFETIME = 300  # SMART: expires_in SHOULD NOT exceed 300 s for backend services
_JTI = "jti"  # security_record kind: used assertion ids


@dataclass(frozen=True, slots=True)
class OAuthError(Exception):
    """An error response of the token endpoint (RFC 6749 §5.2)."""

    error: str
    description: str
    status: int = 400


class TokenService:
    """Issues access tokens for one server."""

    def __init__(self, settings: Settings, store: Store, keys: KeyStore) -> None:
        self.store = store
        self.audience = settings.public_base()
        self.issuer = settings.issuer()
        self.token_url = f"{self.issuer}/token"
        self.keys = keys
        self.clients = Clients(store)
        self.replay = ReplayCache()

    def token(self, form: dict[str, str], now: float) -> dict[str, Any]:
        """The token response for a form-encoded token request."""
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            raise OAuthError("unsupported_grant_type", f"grant_type {grant[:40]!r} is not supported here")
        return self._client_credentials(form, now)

    def _client_credentials(self, form: dict[str, str], now: float) -> dict[str, Any]:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion", "")
        client_id = _claim(assertion, "iss")
        client = self.clients.get(client_id) if isinstance(client_id, str) and client_id else None
        if client is None or client.revoked or client.kind != "backend" or client.jwks is None:
            raise OAuthError("invalid_client", "unknown, revoked or not a backend client", 401)
        try:
            verify_client_assertion(
                assertion, client_id=client.client_id, token_url=self.token_url, client_jwks=client.jwks,
                now=now, replay=self.replay,
            )  # fmt: skip
        except AssertionRejected as exc:
            raise OAuthError("invalid_client", f"client assertion refused: {exc.reason}", 401) from None
        self._used_once(client.client_id, assertion, now)
        requested = parse_scopes(form.get("scope", ""), resource_types())
        granted = requested.narrow(parse_scopes(client.scope, resource_types()))
        if not granted.clinical:
            raise OAuthError("invalid_scope", "none of the requested scopes is registered for this client")
        token = issue_access_token(
            self.keys.ring(now), issuer=self.issuer, audience=self.audience, subject=client.client_id,
            client_id=client.client_id, scope=granted.text(), lifetime=BACKEND_LIFETIME, now=now,
        )  # fmt: skip
        return {"access_token": token, "token_type": "Bearer", "expires_in": BACKEND_LIFETIME, "scope": granted.text()}

    def _used_once(self, client_id: str, assertion: str, now: float) -> None:
        """The process's replay cache knows this process's assertions; the store knows everyone's."""
        exp = _claim(assertion, "exp")
        with self.store.session(write=True) as session:
            fresh = session.security_add(_JTI, f"{client_id} {_claim(assertion, 'jti')}", "{}", float(exp), now)
        if not fresh:
            raise OAuthError("invalid_client", "client assertion refused: replay", 401)

    def jwks(self, now: float) -> dict[str, Any]:
        return self.keys.jwks(now)


def _claim(assertion: str, name: str) -> Any:
    """A claim of a JWT's payload, read without verifying (to find the client; verified next)."""
    return unverified(assertion, 1).get(name)
