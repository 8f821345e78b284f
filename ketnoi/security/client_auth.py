"""Who is calling the token, revocation and introspection endpoints (RFC 6749 §2.3).

One method per request, never two (RFC 6749 §2.3):

* ``client_secret_basic`` (HTTP Basic, id and secret form-urlencoded first) or
  ``client_secret_post`` (``client_id`` + ``client_secret`` in the form): confidential clients.
  Checked against the Argon2id hash at the same cost whether or not the client exists.
* ``private_key_jwt`` (``client_assertion``, RFC 7523; SMART Backend Services): a JWT signed by
  one of the client's registered keys (``ketnoi.auth.assertions``: signature, ``iss``/``sub``,
  ``aud`` = the token URL, ``exp`` at most five minutes ahead, exact ``kid``), each ``jti``
  accepted once — in this process and, through the store, across every process sharing it. The
  keys are the registered JWK Set, or the one at the registered https URL (cached five minutes).
* ``none``: a public client names itself with ``client_id``; PKCE is what protects its codes.

A confidential or backend client that sends only its id is refused: a client that can prove who
it is must do so.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote_plus

import httpx

from ketnoi.auth.assertions import AssertionRejected, ReplayCache, verify_client_assertion
from ketnoi.auth.tokens import unverified
from ketnoi.security.clients import Client, Clients
from ketnoi.security.oidc import FetchError, get_json
from ketnoi.store.base import Store

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_JTI: Final = "jti"  # security_record kind: used assertion ids
JWKS_TTL_S: Final = 300.0  # a client's fetched JWK Set is reused this long
JWKS_REFETCH_S: Final = 30.0  # and fetched early for an unknown kid at most this often
log = logging.getLogger("ketnoi.security")


class OAuthError(Exception):
    """An error response of the OAuth endpoints (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _invalid_client(why: str) -> OAuthError:
    return OAuthError("invalid_client", why, 401)


def _basic(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_request", "only HTTP Basic client authentication is accepted in Authorization")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client("the Basic credentials are not base64 of id:secret") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client("the Basic credentials are not base64 of id:secret")
    return unquote_plus(client_id), unquote_plus(secret)


class ClientAuthenticator:
    """Authenticates clients of one server (its token URL is the assertions' audience)."""

    def __init__(self, store: Store, clients: Clients, token_url: str) -> None:
        self.store = store
        self.clients = clients
        self.token_url = token_url
        self.replay = ReplayCache()
        self.remote = RemoteJwks()

    def authenticate(self, form: dict[str, str], authorization: str | None, now: float) -> Client:
        """The active client behind the request, or OAuthError(invalid_client)."""
        methods = [bool(authorization), "client_secret" in form, "client_assertion" in form]
        if sum(methods) > 1:
            raise OAuthError("invalid_request", "use exactly one client authentication method")
        if authorization:
            client_id, secret = _basic(authorization)
            if form.get("client_id", client_id) != client_id:
                raise OAuthError("invalid_request", "client_id in the form differs from the authenticated one")
            return self._secret(client_id, secret)
        if "client_secret" in form:
            return self._secret(form.get("client_id", ""), form["client_secret"])
        if "client_assertion" in form:
            return self._assertion(form, now)
        return self._public(form.get("client_id", ""))

    def _secret(self, client_id: str, secret: str) -> Client:
        client = self.clients.verify_secret(client_id, secret)
        if client is None:
            raise _invalid_client("unknown client, revoked client or wrong secret")
        return client

    def _public(self, client_id: str) -> Client:
        client = self.clients.get(client_id) if client_id else None
        if client is None or client.revoked:
            raise _invalid_client("unknown or revoked client")
        if client.kind != "public":
            raise _invalid_client("this client must authenticate (client secret or signed assertion)")
        return client

    def _assertion(self, form: dict[str, str], now: float) -> Client:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form["client_assertion"]
        client_id = _claim(assertion, "iss")
        client = self.clients.get(client_id) if isinstance(client_id, str) and client_id else None
        if client is None or client.revoked or client.kind != "backend":
            raise _invalid_client("unknown, revoked or not a backend client")
        try:
            self._verify(client, assertion, now)
        except AssertionRejected as exc:
            raise _invalid_client(f"client assertion refused: {exc.reason}") from None
        self._used_once(client.client_id, assertion, now)
        return client

    def _verify(self, client: Client, assertion: str, now: float) -> None:
        """Against the registered JWK Set, or the one at the registered URL (fetched again once,
        at most every JWKS_REFETCH_S, when the assertion names a key it does not hold: a rotation)."""
        if client.jwks is not None:
            self._check(client, assertion, client.jwks, now)
            return
        if client.jwks_url is None:
            raise AssertionRejected("unknown-key", "client has no JWK Set")
        try:
            self._check(client, assertion, self.remote.get(client.jwks_url, now), now)
        except AssertionRejected as exc:
            if exc.reason != "unknown-key" or not self.remote.may_refetch(client.jwks_url, now):
                raise
            self._check(client, assertion, self.remote.get(client.jwks_url, now, fresh=True), now)

    def _check(self, client: Client, assertion: str, jwks: Mapping[str, Any], now: float) -> None:
        verify_client_assertion(
            assertion, client_id=client.client_id, token_url=self.token_url, client_jwks=jwks, now=now,
            replay=self.replay,
        )  # fmt: skip

    def _used_once(self, client_id: str, assertion: str, now: float) -> None:
        """The process's replay cache knows this process's assertions; the store knows everyone's."""
        exp = _claim(assertion, "exp")
        with self.store.session(write=True) as session:
            fresh = session.security_add(_JTI, f"{client_id} {_claim(assertion, 'jti')}", "{}", float(exp), now)
        if not fresh:
            raise _invalid_client("client assertion refused: replay")


class RemoteJwks:
    """Backend clients' JWK Sets fetched from their registered URLs (SMART Backend Services),
    kept JWKS_TTL_S; a URL that cannot be fetched or holds no key set refuses the assertion."""

    def __init__(self) -> None:
        self._sets: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, now: float, *, fresh: bool = False) -> dict[str, Any]:
        with self._lock:
            cached = self._sets.get(url)
        if cached is not None and not fresh and now - cached[0] < JWKS_TTL_S:
            return cached[1]
        try:
            with httpx.Client(timeout=3.0, follow_redirects=False) as http:
                jwks = get_json(http, url)
        except FetchError as exc:
            log.warning("client JWK Set not fetched: %s", exc)
            raise AssertionRejected("unknown-key", "the client's JWK Set URL could not be read") from None
        if not isinstance(jwks.get("keys"), list):
            raise AssertionRejected("unknown-key", "the client's JWK Set URL holds no key set")
        with self._lock:
            self._sets[url] = (now, jwks)
        return jwks

    def may_refetch(self, url: str, now: float) -> bool:
        """Whether an unknown kid may trigger a new fetch: kids come from unauthenticated requests."""
        with self._lock:
            cached = self._sets.get(url)
        return cached is None or now - cached[0] >= JWKS_REFETCH_S


def _claim(assertion: str, name: str) -> Any:
    """A claim of a JWT's payload, read without verifying (to find the client; verified next)."""
    return unverified(assertion, 1).get(name)
