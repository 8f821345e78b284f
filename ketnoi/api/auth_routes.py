"""The authorization server's HTTP endpoints under ``/auth``.

``POST /auth/token`` (RFC 6749 §3.2: authorization code, refresh token, client credentials),
``POST /auth/revoke`` (RFC 7009) and ``POST /auth/introspect`` (RFC 7662) take form-encoded
requests and answer JSON with ``Cache-Control: no-store``; errors are the RFC's
``{"error", "error_description"}`` with 400 or 401. Each client address may make 20 requests at
once and 5 a second after that, across the three: beyond, 429 with ``Retry-After`` (secret and
assertion guessing and floods cost the caller, not the server). ``GET /auth/jwks`` publishes the
public keys that verify this server's tokens; the sign-in pages are :mod:`ketnoi.api.signin`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketnoi.api import remote, signin
from ketnoi.auth.throttle import RateLimiter
from ketnoi.interactions.services import Services
from ketnoi.security.authorize import Authorizer
from ketnoi.security.grants import Revocations
from ketnoi.security.introspection import TokenStatus
from ketnoi.security.keystore import KeyStore
from ketnoi.security.oauth import GRANT_TYPES, OAuthError, TokenService

_MAX_FORM = 64 * 1024  # a token request is a few hundred bytes; a client assertion a few KiB


def routes(services: Services, keys: KeyStore, revocations: Revocations, context_of: signin.ContextOf) -> list[Route]:
    tokens = TokenService(services.settings, services.store, keys, revocations)
    status = TokenStatus(tokens)
    limiter = RateLimiter(rate_per_s=services.settings.token_per_s, burst=services.settings.token_burst)

    async def read_form(request: Request) -> dict[str, str]:
        """The form of an OAuth request, or OAuthError (throttled, not a form, too large)."""
        wait = limiter.take(remote.throttle_key(request), time.monotonic())
        if wait > 0:
            raise _Throttled(math.ceil(wait))
        body = await request.body()
        if len(body) > _MAX_FORM or "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            raise OAuthError("invalid_request", "send application/x-www-form-urlencoded, under 64 KiB")
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))

    async def answer(request: Request, work: Callable[[dict[str, str], str | None, str | None], Any]) -> Response:
        """Run ``work(form, authorization, address)`` in a worker thread: its JSON answer (None: an
        empty 200), or the RFC's error; throttled callers get 429 ``slow_down`` first."""
        try:
            form = await read_form(request)
            result = await run_in_threadpool(work, form, request.headers.get("authorization"), remote.address(request))
        except _Throttled as exc:
            return _error(OAuthError("slow_down", "too many requests; retry later", 429), exc.wait)
        except OAuthError as exc:
            return _error(exc)
        if result is None:
            return Response(status_code=200, headers={"Cache-Control": "no-store"})
        return JSONResponse(result, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def token(request: Request) -> Response:
        return await answer(request, lambda form, auth, address: tokens.token(form, time.time(), auth, address))

    async def revoke(request: Request) -> Response:
        return await answer(request, lambda form, auth, _: status.revoke(form, auth, time.time()))

    async def introspect(request: Request) -> Response:
        return await answer(request, lambda form, auth, _: _introspect(status, form, auth))

    async def jwks(request: Request) -> Response:
        keys = await run_in_threadpool(tokens.jwks, time.time())
        return JSONResponse(keys, headers={"Cache-Control": "public, max-age=300"})

    async def smart_configuration(request: Request) -> Response:
        return JSONResponse(discovery(services), headers={"Cache-Control": "public, max-age=300"})

    async def openid_configuration(request: Request) -> Response:
        return JSONResponse(openid_discovery(services), headers={"Cache-Control": "public, max-age=300"})

    return [
        Route("/auth/token", token, methods=["POST"]),
        Route("/auth/revoke", revoke, methods=["POST"]),
        Route("/auth/introspect", introspect, methods=["POST"]),
        Route("/auth/jwks", jwks, methods=["GET"]),
        *signin.routes(services, Authorizer(services, tokens.accounts), context_of),
        Route("/fhir/.well-known/smart-configuration", smart_configuration, methods=["GET"]),
        Route("/auth/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    ]


def discovery(services: Services) -> dict[str, Any]:
    """SMART App Launch discovery (http://hl7.org/fhir/smart-app-launch/conformance.html)."""
    issuer = services.settings.issuer()
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks",
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "grant_types_supported": list(GRANT_TYPES),
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt", "client_secret_basic", "client_secret_post", "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "RS256", "RS384"],
        "scopes_supported": [
            "openid", "fhirUser", "launch", "launch/patient", "offline_access", "online_access",
            "patient/*.cruds", "patient/*.rs", "user/*.cruds", "user/*.rs", "system/*.cruds", "system/*.rs",
        ],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-ehr", "launch-standalone", "authorize-post", "client-public", "client-confidential-symmetric",
            "client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient",
            "permission-offline", "permission-online", "permission-patient", "permission-user", "permission-v1",
            "permission-v2", "sso-openid-connect",
        ],
    }  # fmt: skip


def openid_discovery(services: Services) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3, at ``{issuer}/.well-known/openid-configuration``: what another
    server needs to trust this one as its identity provider (``ketnoi serve --oidc-issuer``)."""
    issuer = services.settings.issuer()
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks",
        "token_endpoint": f"{issuer}/token",
        "authorization_endpoint": f"{issuer}/authorize",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "grant_types_supported": discovery(services)["grant_types_supported"],
    }


class _Throttled(Exception):
    def __init__(self, wait: int) -> None:
        super().__init__(f"retry after {wait} s")
        self.wait = wait


def _introspect(status: TokenStatus, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
    """A resource server may ask with its bearer token (a ``system/`` scope), a client with its credentials."""
    now = time.time()
    if authorization and authorization.strip().lower().startswith("bearer "):
        if not status.bearer_may(authorization.strip()[7:].strip(), now):
            raise OAuthError("invalid_client", "this bearer token may not introspect (needs a system/ scope)", 401)
        return status.introspect(form, None, now)
    return status.introspect(form, status.may_introspect(form, authorization, now), now)


def _error(exc: OAuthError, retry_after: int | None = None) -> Response:
    headers = {"Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ketnoi"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)
