"""Bearer tokens at the edge (RFC 6750): a verified access token becomes the RequestContext.

With ``--auth on`` every FHIR request except ``GET /fhir/metadata`` needs ``Authorization: Bearer
<token>``: a JWT signed by this server's key ring (``ketnoi.security.keystore``) for this server's
FHIR base and issuer (``ketnoi.security.urls``). Anything else is 401 with ``WWW-Authenticate``
naming the problem (RFC 6750 §3), before any FHIR work starts. A verified token's claims fill the
context that the policy (ketnoi.interactions.policy) enforces.
"""

from __future__ import annotations

import base64
import json
import time

from ketnoi.auth.scopes import parse_scopes
from ketnoi.auth.tokens import TokenError, VerifiedTokenCache, verify_access_token
from ketnoi.config import Settings
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import FhirError, Issue
from ketnoi.interactions.context import RequestContext
from ketnoi.security.keystore import KeyStore
from ketnoi.security.urls import fhir_base, issuer_for
from ketnoi.store.base import Store

REALM = 'Bearer realm="ketnoi"'


class Unauthorized(Exception):
    """401: the OperationOutcome and the ``WWW-Authenticate`` challenge to send."""

    def __init__(self, challenge: str, en: str, vi: str) -> None:
        super().__init__(en)
        self.error = FhirError(401, [Issue("error", "login", en, vi)])
        self.challenge = challenge


class Authenticator:
    """Verifies bearer tokens for one server (its key ring, audience and issuer)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.audience = fhir_base(settings)
        self.issuer = issuer_for(self.audience)
        self.keys = KeyStore(store)
        self.cache = VerifiedTokenCache()
        self.known_types = resource_types()

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
        now = time.time()
        try:
            claims = verify_access_token(
                token.strip(),
                self.keys.ring(now),
                issuer=self.issuer,
                audience=self.audience,
                now=now,
                cache=self.cache,
            )
        except TokenError as exc:
            if exc.reason == "unknown-key":  # a key rotated in by another process: re-read once
                try:
                    claims = verify_access_token(
                        token.strip(), self.keys.ring_with(_kid(token), now), issuer=self.issuer,
                        audience=self.audience, now=now, cache=self.cache,
                    )  # fmt: skip
                except TokenError as again:
                    raise _invalid(again.reason) from None
            else:
                raise _invalid(exc.reason) from None
        extra = claims.extra
        patient = extra.get("patient")
        return RequestContext(
            request_id=base.request_id,
            source=base.source,
            remote_addr=base.remote_addr,
            authenticated=True,
            user=claims.sub,
            fhir_user=_str(extra.get("fhirUser")),
            client_id=claims.client_id,
            scopes=parse_scopes(claims.scope, self.known_types),
            organization=_str(extra.get("organization")),
            patient=_str(patient),
        )


def _invalid(reason: str) -> Unauthorized:
    # The reason is one of the verifier's fixed words (expired, audience, ...), never token content.
    return Unauthorized(
        f'{REALM}, error="invalid_token", error_description="{reason}"',
        f"The access token is not valid here ({reason}); get a new one",
        f"Mã truy cập không hợp lệ tại đây ({reason}); hãy lấy mã mới",
    )


def _kid(token: str) -> str:
    """The ``kid`` of a token's header, read unverified (only to know which key to look for)."""
    try:
        header = token.split(".", 1)[0]
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        kid = data.get("kid") if isinstance(data, dict) else None
        return kid if isinstance(kid, str) else ""
    except (ValueError, UnicodeDecodeError):
        return ""


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
