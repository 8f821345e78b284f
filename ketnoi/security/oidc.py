"""Access tokens from an external OpenID Connect provider (``ketnoi serve --oidc-issuer URL``).

A national deployment signs people in at its own identity provider; ketnoi accepts that
provider's access tokens beside its own. What is trusted, and what is not:

* **The provider's signature, for its own issuer only.** Its keys come from its discovery document
  (``{issuer}/.well-known/openid-configuration``, whose ``issuer`` must equal the configured URL
  exactly) and the ``jwks_uri`` named there. A token is verified with :func:`verify_access_token`,
  the same code as our own tokens: ES256/RS256 only (never ``none`` or HS*), the key picked by
  exact ``kid`` and deciding the algorithm, ``iss`` exact, our FHIR base in ``aud`` (so an ID
  token, made for a client, fails), ``exp``/``nbf`` with 30 s leeway, ``typ`` ``at+jwt`` or
  ``JWT``, and the RFC 9068 claims ``sub``, ``client_id``, ``scope`` and ``jti``.
* **Who the person is**, not what they may do: ``preferred_username`` (else ``sub``) names a local
  account (:class:`ketnoi.security.accounts.Accounts`). An unknown or disabled account is refused.
  The account decides role, organization, patient and fhirUser; the token's claims for them are
  ignored. The token's ``scope`` is narrowed by the role (``ROLE_SCOPES``), so the provider can
  lower what a person may do here, never raise it.

Network fetches happen on the request's worker thread, bounded (timeouts, a size cap, redirects
only within the same origin) and cached: keys for 5 minutes, re-fetched early at most once per
30 s for an unknown ``kid`` (a key the provider rotated in). A provider that cannot be reached
costs one attempt per 10 s; meanwhile keys fetched earlier keep working for up to an hour, and
without any the request is refused (401, "identity provider unavailable"), never a 500.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final, NamedTuple
from urllib.parse import urljoin, urlsplit

import httpx

from ketnoi.auth.keys import KeyRing
from ketnoi.auth.scopes import ScopeSet, parse_scopes
from ketnoi.auth.tokens import (
    ACCESS_TOKEN_TYPES,
    MAX_TOKEN_BYTES,
    AccessClaims,
    TokenError,
    VerifiedTokenCache,
    unverified,
    verify_access_token,
)
from ketnoi.config import ConfigError, Settings
from ketnoi.fhir.definitions import resource_types
from ketnoi.security.accounts import ROLE_SCOPES, AccountError, Accounts, User, normalize_username

log = logging.getLogger("ketnoi.security.oidc")

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})  # http allowed here (tests, local setups)
KEYS_REFRESH_S: Final = 300.0  # the provider's keys are re-fetched at most this often ...
UNKNOWN_KID_COOLDOWN_S: Final = 30.0  # ... or early for an unknown kid, at most once per this
RETRY_AFTER_FAILURE_S: Final = 10.0  # a provider that failed is not asked again before this
STALE_GRACE_S: Final = 3600.0  # keys stay usable this long past their refresh while it cannot be reached
ACCOUNT_CACHE_S: Final = 30.0  # how long a local account lookup is reused (see AccountCache)
ACCOUNT_CACHE_SIZE: Final = 10_000
LEEWAY_S: Final = 30  # clock difference tolerated with the provider
MAX_DOCUMENT_BYTES: Final = 256 * 1024  # discovery documents and JWK Sets are a few KiB
FETCH_DEADLINE_S: Final = 5.0  # one document, redirects and a slow trickle included
MAX_REDIRECTS: Final = 3
TIMEOUT: Final = httpx.Timeout(3.0, connect=2.0)
# Some providers label access tokens plain "JWT"; the audience check keeps their ID tokens out.
TOKEN_TYPES: Final = ACCESS_TOKEN_TYPES | {"jwt"}


class ProviderUnavailable(Exception):
    """The provider's keys could not be fetched and none usable are cached (the detail is logged)."""


class FetchError(Exception):
    """One failed fetch: what went wrong, for the log."""


# ---- configuration ------------------------------------------------------------------------------


def _url_allowed(url: str) -> bool:
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises for a port that is not a number
    except ValueError:
        return False
    if not host or parts.query or parts.fragment or parts.username is not None:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK)


def check_issuers(settings: Settings) -> None:
    """ConfigError unless every configured issuer may be trusted: an https URL (http only on
    loopback), without query or fragment, and not this server's own issuer (whose tokens are ours)."""
    for url in settings.oidc_issuers:
        if not _url_allowed(url):
            raise ConfigError(
                f"--oidc-issuer {url!r}: an issuer must be an https URL without query or fragment "
                "(http only on 127.0.0.1, localhost or ::1)"
            )
        if url == settings.issuer():
            raise ConfigError(f"--oidc-issuer {url!r} is this server's own issuer")


# ---- fetching ------------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _read_capped(response: httpx.Response, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise FetchError(f"{response.url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise FetchError(f"{response.url} is larger than {MAX_DOCUMENT_BYTES} bytes")
        if time.monotonic() > deadline:  # the timeouts bound each read, not a slow trickle
            raise FetchError(f"{response.url} took longer than {FETCH_DEADLINE_S} s")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(body: bytes, url: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise FetchError(f"{url} did not answer JSON") from None
    if not isinstance(data, dict):
        raise FetchError(f"{url} did not answer a JSON object")
    return data


def get_json(http: httpx.Client, url: str) -> dict[str, Any]:
    """The JSON object at ``url``: 200 only, redirects followed only within the same origin (a
    provider must not send us to another host), at most MAX_DOCUMENT_BYTES, within the deadline."""
    deadline = time.monotonic() + FETCH_DEADLINE_S
    headers = {"Accept": "application/json", "Accept-Encoding": "identity"}  # no decompression bombs
    try:
        for _ in range(MAX_REDIRECTS + 1):
            with http.stream("GET", url, headers=headers) as response:
                if response.is_redirect:
                    target = urljoin(url, response.headers.get("location", ""))
                    if _origin(target) != _origin(url):
                        raise FetchError(f"{url} redirects to another origin")
                    url = target
                    continue
                if response.status_code != 200:
                    raise FetchError(f"{url} answered HTTP {response.status_code}")
                return _json_object(_read_capped(response, deadline), url)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # connection refused, timeout, TLS, protocol errors
        raise FetchError(f"{url}: {type(exc).__name__} {exc}".strip()) from None
    raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")


def _jwks_uri(document: dict[str, Any], issuer: str) -> str:
    """The discovery document's ``jwks_uri``, after checking that the document is this issuer's."""
    if document.get("issuer") != issuer:
        raise FetchError(f"the discovery document names issuer {str(document.get('issuer'))[:200]!r}")
    uri = document.get("jwks_uri")
    # https anywhere (providers serve keys from a CDN), or plain http only on the issuer's own origin
    # (a loopback issuer): a provider must not point us at an internal http service.
    if not isinstance(uri, str) or not (
        _url_allowed(uri) and (uri.startswith("https://") or _origin(uri) == _origin(issuer))
    ):
        raise FetchError(f"the discovery document's jwks_uri {str(uri)[:200]!r} is not an allowed URL")
    return uri


class _Keys(NamedTuple):
    ring: KeyRing
    fetched_at: float


class ExternalIssuer:
    """One trusted provider: its keys (fetched and cached) and the check of its tokens."""

    def __init__(self, issuer: str, audience: str, transport: httpx.BaseTransport | None = None) -> None:
        self.issuer = issuer
        self.audience = audience
        self.cache = VerifiedTokenCache()  # our own tokens' cache is separate: other key ring, other types
        self._transport = transport  # tests pass an httpx.MockTransport
        self._keys: _Keys | None = None
        self._failed_at: float | None = None  # the last fetch that failed
        self._forced_at: float | None = None  # the last early fetch for an unknown kid
        self._lock = threading.Lock()  # one fetch at a time, not one per request thread

    def verify(self, token: str, now: float) -> AccessClaims:
        """The claims of a valid access token of this provider for our FHIR base; TokenError or
        ProviderUnavailable otherwise."""
        try:
            return self._check(token, self.ring(now), now)
        except TokenError as exc:
            if exc.reason != "unknown-key":
                raise
        # Perhaps a key the provider rotated in since we fetched: fetch again (rate-limited), retry once.
        kid = str(unverified(token, 0).get("kid", ""))
        return self._check(token, self.ring_with(kid, now), now)

    def _check(self, token: str, ring: KeyRing, now: float) -> AccessClaims:
        return verify_access_token(
            token, ring, issuer=self.issuer, audience=self.audience, now=now, leeway=LEEWAY_S,
            cache=self.cache, token_types=TOKEN_TYPES,
        )  # fmt: skip

    def ring(self, now: float) -> KeyRing:
        """The provider's keys, fetched when missing or older than KEYS_REFRESH_S."""
        keys = self._keys
        if keys is not None and _age(now, keys.fetched_at) < KEYS_REFRESH_S:
            return keys.ring
        usable = self._usable(now)
        # With usable keys, a request does not wait behind another thread's fetch (the provider
        # may be slow or down): it goes on with what we have.
        if not self._lock.acquire(blocking=usable is None):
            assert usable is not None  # a blocking acquire always succeeds
            return usable
        try:
            keys = self._keys
            if keys is not None and _age(now, keys.fetched_at) < KEYS_REFRESH_S:
                return keys.ring  # another thread fetched them meanwhile
            return self._refresh(now)
        finally:
            self._lock.release()

    def ring_with(self, kid: str, now: float) -> KeyRing:
        """The keys, fetched again first if they lack ``kid`` and no early fetch happened in the last
        UNKNOWN_KID_COOLDOWN_S: kids come from unauthenticated tokens, and a flood of made-up kids
        must not turn into a flood of requests to the provider."""
        with self._lock:
            keys = self._keys
            if keys is not None and keys.ring.public_key(kid, now) is not None:
                return keys.ring  # another thread fetched them meanwhile
            if self._forced_at is not None and _age(now, self._forced_at) < UNKNOWN_KID_COOLDOWN_S:
                return self._current(now)
            self._forced_at = now
            return self._refresh(now)

    def forget(self) -> None:
        """Drop the cached keys (tests; an operator's reload)."""
        with self._lock:
            self._keys = self._failed_at = self._forced_at = None

    def _refresh(self, now: float) -> KeyRing:
        """Fetch the keys (lock held); on failure, those still usable, else ProviderUnavailable."""
        if self._failed_at is not None and _age(now, self._failed_at) < RETRY_AFTER_FAILURE_S:
            return self._current(now)  # do not wait on a provider that just failed
        try:
            ring = self._fetch(now)
        except FetchError as exc:
            self._failed_at = now
            log.warning("OpenID provider %s: cannot fetch its keys: %s", self.issuer, exc)
            return self._current(now)
        self._keys, self._failed_at = _Keys(ring, now), None
        return ring

    def _fetch(self, now: float) -> KeyRing:
        # A client per fetch (every 5 minutes at most): no pooled sockets outlive it.
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=self._transport) as http:
            document = get_json(http, self.issuer.rstrip("/") + "/.well-known/openid-configuration")
            jwks = get_json(http, _jwks_uri(document, self.issuer))
        try:
            ring = KeyRing.from_public_jwks(jwks, now=now)
        except ValueError as exc:
            raise FetchError(f"its JWK Set is unusable: {exc}") from None
        if not ring.all_keys():
            raise FetchError("its JWK Set has no ES256 or RS256 signing key")
        return ring

    def _usable(self, now: float) -> KeyRing | None:
        keys = self._keys
        if keys is not None and _age(now, keys.fetched_at) < KEYS_REFRESH_S + STALE_GRACE_S:
            return keys.ring
        return None

    def _current(self, now: float) -> KeyRing:
        ring = self._usable(now)
        if ring is None:
            raise ProviderUnavailable(f"the identity provider {self.issuer} cannot be reached")
        return ring


def _age(now: float, then: float) -> float:
    """Seconds since ``then``; infinite when the clock stepped backwards (the age is unknown)."""
    return now - then if now >= then else float("inf")


# ---- claims → local account ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a verified token speaks for: what the edge turns into a RequestContext (both paths)."""

    user: str
    client_id: str
    scopes: ScopeSet
    fhir_user: str | None = None
    organization: str | None = None
    patient: str | None = None  # a Patient id (the SMART launch context)
    roles: frozenset[str] = frozenset()
    token_id: str | None = None  # the token's jti (RFC 9068), for the audit trail


class AccountCache:
    """Local accounts by user name, each answer (a missing account too) reused for ACCOUNT_CACHE_S.

    Why cache: every request with an external token needs its account, one database read each.
    Why only 30 s: the provider's tokens stay valid there until they expire, so disabling the
    local account is how an operator stops a person here; it must take effect within a minute,
    and an account created for a person must start working as soon.
    """

    def __init__(self, accounts: Accounts, ttl: float = ACCOUNT_CACHE_S, max_entries: int = ACCOUNT_CACHE_SIZE) -> None:
        self._accounts = accounts
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[User | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, username: str, now: float) -> User | None:
        with self._lock:
            hit = self._entries.get(username)
        if hit is not None and _age(now, hit[1]) < self._ttl:
            return hit[0]
        user = self._accounts.get(username)
        with self._lock:
            self._entries[username] = (user, now)
            self._entries.move_to_end(username)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return user

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@lru_cache(maxsize=1024)
def granted_scopes(role: str, requested: str) -> ScopeSet:
    """The token's scopes narrowed by what the local role may be granted (ScopeSet is immutable, so
    one parse per distinct pair is shared by every request)."""
    scopes = parse_scopes(requested, resource_types())
    if role == "patient":
        # A patient's "user" access is their own record: read their user/ scopes as patient/ ones, so
        # that narrowing keeps them, confined to the compartment, instead of dropping them.
        patientwise = tuple(replace(s, context="patient") if s.context == "user" else s for s in scopes.clinical)
        scopes = replace(scopes, clinical=patientwise)
    return scopes.narrow(parse_scopes(ROLE_SCOPES[role], resource_types()))


def _username(claims: AccessClaims) -> str:
    name = claims.extra.get("preferred_username")
    return name if isinstance(name, str) and name else claims.sub


def caller_of(user: User, claims: AccessClaims) -> Caller:
    """The caller an external token names: everything but the client and scope from the account."""
    context = user.context_claims()  # fhirUser, patient (an id), organization
    return Caller(
        user=user.username,
        client_id=claims.client_id,
        scopes=granted_scopes(user.role, claims.scope),
        fhir_user=context.get("fhirUser"),
        organization=context.get("organization"),
        patient=context.get("patient"),
        roles=frozenset({user.role}),
        token_id=claims.jti,
    )


class ExternalIssuers:
    """The trusted providers of one server and the mapping of their tokens to local accounts."""

    def __init__(self, settings: Settings, accounts: Accounts, transport: httpx.BaseTransport | None = None) -> None:
        check_issuers(settings)
        audience = settings.public_base()
        self.issuers = {url: ExternalIssuer(url, audience, transport) for url in settings.oidc_issuers}
        self.accounts = AccountCache(accounts)

    def issuer_of(self, token: str) -> ExternalIssuer | None:
        """The trusted provider a token claims to come from (read unverified, only to route it)."""
        if len(token) > MAX_TOKEN_BYTES:
            return None  # refused on the other path, without decoding it here
        iss = unverified(token, 1).get("iss")
        return self.issuers.get(iss) if isinstance(iss, str) else None

    def caller(self, issuer: ExternalIssuer, token: str, now: float) -> Caller:
        """The local caller behind a token of ``issuer``; TokenError or ProviderUnavailable."""
        claims = issuer.verify(token, now)
        try:
            username = normalize_username(_username(claims))
        except AccountError:
            raise TokenError("no local account") from None
        user = self.accounts.get(username, now)
        if user is None or user.disabled:
            raise TokenError("no local account")
        return caller_of(user, claims)
