"""Bearer tokens at the edge (RFC 6750): a verified access token becomes the RequestContext.

With ``--auth on`` every FHIR request except ``GET /fhir/metadata`` needs ``Authorization: Bearer
<token>``: a JWT signed by this server's key ring (``ketnoi.security.keystore``) for this server's
FHIR base and issuer (``ketnoi.security.urls``). Anything else is 401 with ``WWW-Authenticate``
naming the problem (RFC 6750 §3), before any FHIR work starts. A verified token's claims fill the
context that the policy (ketnoi.interactions.policy) enforces.

With ``--oidc-issuer URL`` a token whose (unverified) ``iss`` is such a provider is checked against
that provider's keys instead, and its person mapped to a local account (``ketnoi.security.oidc``);
both paths end in the same :class:`Caller` and so in the same context.
"""

from __future__ import annotations

import time
from functools import lru_cache

from ketnoi.auth.keys import KeyRing
from ketnoi.auth.scopes import ScopeSet, parse_scopes
from ketnoi.auth.tokens import AccessClaims, TokenError, VerifiedTokenCache, unverified, verify_access_token
from ketnoi.config import Settings
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import FhirError, Issue
from ketnoi.interactions.context import RequestContext
from ketnoi.security.accounts import ROLES
from ketnoi.security.grants import Revocations
from ketnoi.security.keystore import KeyStore
from ketnoi.security.oidc import Caller, ExternalIssuers, ProviderUnavailable

REALM = 'Bearer realm="ketnoi"'


class Unauthorized(Exception):
    """401: the OperationOutcome and the ``WWW-Authenticate`` challenge to send."""

    def __init__(self, challenge: str, en: str, vi: str) -> None:
        super().__init__(en)
        self.error = FhirError(401, [Issue("error", "login", en, vi)])
        self.challenge = challenge


class Authenticator:
    """Verifies bearer tokens for one server (its key ring, audience and issuer)."""

    def __init__(
        self, settings: Settings, keys: KeyStore, revocations: Revocations, external: ExternalIssuers | None = None
    ) -> None:
        self.audience = settings.public_base()
        self.issuer = settings.issuer()
        self.keys = keys
        self.cache = VerifiedTokenCache()
        self.revocations = revocations
        self.external = external  # the trusted OpenID providers (--oidc-issuer), if any

    def context(self, authorization: str | None, base: RequestContext) -> RequestContext:
        """The caller behind ``Authorization``, or Unauthorized."""
        if not authorization:
            raise Unauthorized(
                REALM,
                "This server needs an access token: send Authorization: Bearer <token>",
                "Máy chủ cần mã truy cập: hãy gửi Authorization: Bearer <mã>",
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid("the Authorization header must be 'Bearer <token>'")
        token, now = token.strip(), time.time()
        try:
            caller = self._caller(token, now)
        except TokenError as exc:
            raise _invalid(exc.reason) from None
        except ProviderUnavailable:
            # Logged where the fetch failed (once per attempt, not once per request).
            raise Unauthorized(
                f'{REALM}, error="invalid_token", error_description="identity provider unavailable"',
                "The identity provider that issued this token cannot be reached to check it; try again later",
                "Không thể kết nối nhà cung cấp định danh đã cấp mã truy cập này để kiểm tra; hãy thử lại sau",
            ) from None
        return RequestContext(
            request_id=base.request_id,
            source=base.source,
            remote_addr=base.remote_addr,
            authenticated=True,
            user=caller.user,
            fhir_user=caller.fhir_user,
            roles=caller.roles,
            client_id=caller.client_id,
            scopes=caller.scopes,
            organization=caller.organization,
            patient=caller.patient,
            token_id=caller.token_id,
        )

    def _caller(self, token: str, now: float) -> Caller:
        """Who a token speaks for: a trusted provider's (by its unverified ``iss``), else one of ours."""
        external = self.external
        issuer = external.issuer_of(token) if external is not None else None
        if external is not None and issuer is not None:
            # Revocations list our own tokens' jti/sub/client; the provider's are another namespace.
            # Its people are stopped here by disabling their local account (ketnoi.security.oidc).
            return external.caller(issuer, token, now)
        try:
            claims = self._verify(token, self.keys.ring(now), now)
        except TokenError as exc:
            if exc.reason != "unknown-key":
                raise
            # A key rotated in by another process: re-read the ring once and try again.
            kid = str(unverified(token, 0).get("kid", ""))
            claims = self._verify(token, self.keys.ring_with(kid, now), now)
        if self.revocations.revoked(claims, now):
            raise TokenError("revoked")
        extra = claims.extra
        return Caller(
            user=claims.sub,
            client_id=claims.client_id,
            scopes=_scopes(claims.scope),
            fhir_user=_str(extra.get("fhirUser")),
            organization=_str(extra.get("organization")),
            patient=_str(extra.get("patient")),
            token_id=claims.jti,
            roles=_roles(extra.get("role")),
        )

    def _verify(self, token: str, ring: KeyRing, now: float) -> AccessClaims:
        return verify_access_token(token, ring, issuer=self.issuer, audience=self.audience, now=now, cache=self.cache)


def _invalid(reason: str) -> Unauthorized:
    # The reason is one of the verifier's fixed words (expired, audience, ...), never token content.
    return Unauthorized(
        f'{REALM}, error="invalid_token", error_description="{reason}"',
        f"The access token is not valid here ({reason}); get a new one",
        f"Mã truy cập không hợp lệ tại đây ({reason}); hãy lấy mã mới",
    )


@lru_cache(maxsize=1024)
def _scopes(text: str) -> ScopeSet:
    """Parsed once per distinct scope string: every request of a token carries the same one, and
    the verified-token cache already spares the signature check (ScopeSet is immutable)."""
    return parse_scopes(text, resource_types())


@lru_cache(maxsize=64)
def _roles(role: object) -> frozenset[str]:
    return frozenset({role}) if isinstance(role, str) and role in ROLES else frozenset()


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
