"""The authorization server's HTTP endpoints under ``/auth`` (so far: ``token`` and ``jwks``).

``POST /auth/token`` takes a form-encoded request (RFC 6749 §4.4, SMART Backend Services) and
answers JSON with ``Cache-Control: no-store``; errors are the RFC's ``{"error", "error_description"}``
with 400 or 401. Each client address may make 20 requests at once and 5 a second after that:
beyond, 429 with ``Retry-After`` (assertion guessing and floods cost the caller, not the server).
``GET /auth/jwks`` publishes the public keys that verify this server's tokens.
"""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketnoi.auth.throttle import RateLimiter
from ketnoi.interactions.services import Services
from ketnoi.security.keystore import KeyStore
from ketnoi.security.oauth import OAuthError, TokenService

_MAX_FORM = 64 * 1024  # a token request is a few hundred bytes; a client assertion a few KiB


def routes(services: Services, keys: KeyStore) -> list[Route]:
    tokens = TokenService(services.settings, services.store, keys)
    limiter = RateLimiter(rate_per_s=5.0, burst=20)

    async def token(request: Request) -> Response:
        client = request.client.host if request.client is not None else "?"
        wait = limiter.take(client, time.monotonic())
        if wait > 0:
            return _error(OAuthError("slow_down", "too many token requests; retry later", 429), math.ceil(wait))
        body = await request.body()
        if len(body) > _MAX_FORM or "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return _error(OAuthError("invalid_request", "send application/x-www-form-urlencoded, under 64 KiB"))
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            answer = await run_in_threadpool(tokens.token, form, time.time())
        except OAuthError as exc:
            return _error(exc)
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def jwks(request: Request) -> Response:
        keys = await run_in_threadpool(tokens.jwks, time.time())
        return JSONResponse(keys, headers={"Cache-Control": "public, max-age=300"})

    async def smart_configuration(request: Request) -> Response:
        return JSONResponse(discovery(services), headers={"Cache-Control": "public, max-age=300"})

    return [
        Route("/auth/token", token, methods=["POST"]),
        Route("/auth/jwks", jwks, methods=["GET"]),
        Route("/fhir/.well-known/smart-configuration", smart_configuration, methods=["GET"]),
    ]


def discovery(services: Services) -> dict[str, Any]:
    """SMART App Launch discovery (http://hl7.org/fhir/smart-app-launch/conformance.html), listing
    only what this server does today: backend services. The authorization endpoint, the
    authorization-code grant and their capabilities join when they exist."""
    issuer = services.settings.issuer()
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks",
        "token_endpoint": f"{issuer}/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "RS256", "RS384"],
        "scopes_supported": ["system/*.cruds", "system/*.rs", "user/*.cruds", "patient/*.cruds"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }


def _error(exc: OAuthError, retry_after: int | None = None) -> Response:
    headers = {"Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ketnoi"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)
