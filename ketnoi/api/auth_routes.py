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
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketnoi.auth.throttle import RateLimiter
from ketnoi.interactions.services import Services
from ketnoi.security.oauth import OAuthError, TokenService

_MAX_FORM = 64 * 1024  # a token request is a few hundred bytes; a client assertion a few KiB


def routes(services: Services) -> list[Route]:
    tokens = TokenService(services.settings, services.store)
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

    return [Route("/auth/token", token, methods=["POST"]), Route("/auth/jwks", jwks, methods=["GET"])]


def _error(exc: OAuthError, retry_after: int | None = None) -> Response:
    headers = {"Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ketnoi"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)
