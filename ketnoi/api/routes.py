"""The Starlette application: the FHIR endpoint under ``/fhir`` plus a landing page and health.

All FHIR work runs in a worker thread (the core is synchronous); this module only translates.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ketnoi.api import auth_routes, negotiation, remote, websocket
from ketnoi.api.bearer import REALM, Authenticator, Unauthorized
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import error_response, handle
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from ketnoi.security.grants import Revocations
from ketnoi.security.keystore import KeyStore
from ketnoi.security.oidc import ExternalIssuers

log = logging.getLogger("ketnoi.api")
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# Operations that answer a file of their own format (the claims XML envelope), with its Content-Type: a client
# may ask for that type (Accept: application/xml), and the answer is not FHIR JSON to pretty-print.
_OWN_FORMAT_PATHS = frozenset({"$export-xml130", "$export-file"})


def create_app(services: Services) -> Starlette:
    keys = KeyStore(services.store)  # one key ring cache for token checks and the token endpoint
    revocations = Revocations(services.store)  # one view of the revocation list, likewise
    authenticator = (
        Authenticator(services.settings, keys, revocations, _external(services))
        if services.settings.auth == "on"
        else None
    )

    async def context_of(request: Request) -> RequestContext:
        """The caller of a non-FHIR route that needs one (``POST /auth/launch``): as for FHIR."""
        context = request_context(request)
        if authenticator is None:
            return context
        return await run_in_threadpool(authenticator.context, request.headers.get("authorization"), context)

    async def fhir(request: Request) -> Response:
        return await _fhir(services, request, authenticator)

    async def landing(request: Request) -> Response:
        return HTMLResponse(_LANDING)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        services.store.close()

    app = Starlette(
        routes=[
            Route("/", landing),
            Route("/healthz", health),
            # Before /fhir/{path}, which would otherwise take /fhir/.well-known/smart-configuration.
            *auth_routes.routes(services, keys, revocations, context_of),
            *websocket.routes(services),  # Subscriptions' websocket channel (ketnoi.api.websocket)
            Route("/fhir", fhir, methods=_METHODS),
            Route("/fhir/{path:path}", fhir, methods=_METHODS),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.authenticator = authenticator  # tests reach its caches (the external accounts', keys')
    return app


def _external(services: Services) -> ExternalIssuers | None:
    """The OpenID providers trusted beside our own tokens (``--oidc-issuer``), if any."""
    if not services.settings.oidc_issuers:
        return None
    return ExternalIssuers(services.settings, Accounts(services.store))


async def _fhir(services: Services, request: Request, authenticator: Authenticator | None) -> Response:
    settings = services.settings
    base_url = settings.base_url or str(request.base_url).rstrip("/") + "/fhir"
    pretty = request.query_params.get("_pretty") == "true"
    media = "application/fhir+json"
    request_id = uuid.uuid4().hex  # replaced by the request's own once it is read
    try:
        if request.path_params.get("path", "").strip("/") not in _OWN_FORMAT_PATHS:
            media = negotiation.response_type(request.headers.get("accept"), request.query_params.get("_format"))
        context = request_context(request)
        request_id = context.request_id
        authorization = request.headers.get("authorization")
        if authenticator is None or _public(request):
            freq = await _to_fhir_request(request, base_url, services, context)
            fresp = await run_in_threadpool(handle, services, freq)
        elif request.method not in _BODY_METHODS:
            # No body to protect: check the token and do the work in one trip to a worker thread
            # (a second trip cost more than the whole token check: bench/auth.py).
            freq = await _to_fhir_request(request, base_url, services, context)
            fresp = await run_in_threadpool(_authorized, services, authenticator, authorization, freq)
        else:
            # Before the body is read: an unauthenticated caller gets no parsing work done.
            context = await run_in_threadpool(authenticator.context, authorization, context)
            freq = await _to_fhir_request(request, base_url, services, context)
            fresp = await run_in_threadpool(handle, services, freq)
    except Unauthorized as exc:
        fresp = error_response(exc.error)
        fresp.headers["WWW-Authenticate"] = exc.challenge
    except FhirError as exc:
        fresp = error_response(exc)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        fresp = error_response(
            FhirError.of(
                500,
                "exception",
                "Internal server error; the request was not applied. The error is logged.",
                "Lỗi máy chủ nội bộ; yêu cầu chưa được thực hiện. Lỗi đã được ghi lại.",
            )
        )
    if fresp.status == 403 and authenticator is not None:
        # RFC 6750 §3.1: a valid token without the scope this needs; the body says which.
        fresp.headers.setdefault("WWW-Authenticate", f'{REALM}, error="insufficient_scope"')
    response = _to_response(fresp, media, pretty, head=request.method == "HEAD")
    response.headers["X-Request-Id"] = request_id
    return response


def _authorized(
    services: Services, authenticator: Authenticator, authorization: str | None, freq: FhirRequest
) -> FhirResponse:
    """The caller's token checked, then the interaction: in the worker thread, one after the other."""
    freq.context = authenticator.context(authorization, freq.context)
    return handle(services, freq)


def _public(request: Request) -> bool:
    """What answers without a token: the CapabilityStatement (clients discover security there)."""
    return request.method in ("GET", "HEAD") and request.path_params.get("path", "").strip("/") == "metadata"


async def _to_fhir_request(request: Request, base_url: str, services: Services, context: RequestContext) -> FhirRequest:
    path = request.path_params.get("path", "")
    if any(ord(ch) < 0x20 for ch in path):
        raise FhirError.of(
            400, "invalid", "The URL path contains a control character", "Đường dẫn URL chứa ký tự điều khiển"
        )
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("_format", "_pretty")]
    headers = {k.lower(): v for k, v in request.headers.items()}
    body: Any = None
    if request.method in _BODY_METHODS:
        raw = await _read_body(request, services.settings.max_body_bytes)
        kind = negotiation.check_body_type(headers.get("content-type"), request.method, path)
        if kind == negotiation.RAW_XML:
            body = negotiation.xml_binary(raw)
        elif kind == negotiation.FORM_TYPE:
            query.extend(negotiation.form_params(raw))
        elif raw.strip():
            body = negotiation.parse_json(raw, services.settings.max_json_depth)
        elif request.method in ("PUT", "PATCH") or not path.endswith("_search"):
            raise FhirError.of(
                400,
                "required",
                "The request has no body; send a FHIR resource as JSON",
                "Yêu cầu không có nội dung; hãy gửi tài nguyên FHIR dạng JSON",
            )
    return FhirRequest(request.method, path, query, headers, body, base_url, context)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_context(request: Request) -> RequestContext:
    """The context every request starts with: its address and request id (the client's
    ``X-Request-Id`` when it is a plain token: it ties the client's logs to the audit trail, else a
    new one). The bearer check then adds who is calling (ketnoi.api.bearer)."""
    given = request.headers.get("x-request-id", "")
    return RequestContext(
        request_id=given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex,
        source="rest",
        remote_addr=remote.address(request),
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise negotiation.too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise negotiation.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _to_response(fresp: FhirResponse, media: str, pretty: bool, *, head: bool) -> Response:
    if fresp.stream is not None:
        return _streamed(fresp, head=head)
    own_type = any(name.lower() == "content-type" for name in fresp.headers)  # it wins over ``media``
    if fresp.raw is not None:
        body = (
            fresp.raw if not pretty or own_type else orjson.dumps(orjson.loads(fresp.raw), option=orjson.OPT_INDENT_2)
        )
    elif fresp.resource is not None:
        body = orjson.dumps(fresp.resource, option=orjson.OPT_INDENT_2 if pretty else 0)
    else:
        body = b""
    headers = dict(fresp.headers)
    if head or fresp.status in (204, 304):
        return Response(status_code=fresp.status, headers=headers, media_type=None if not body else media)
    return Response(body, status_code=fresp.status, headers=headers, media_type=f"{media}; charset=utf-8")


def _streamed(fresp: FhirResponse, *, head: bool) -> Response:
    """A body sent as its chunks are read (an export file: never whole in memory), with the
    Content-Type and encoding its operation set."""
    assert fresp.stream is not None
    if head:
        close = getattr(fresp.stream, "close", None)  # a generator holding a file open
        if callable(close):
            close()
        return Response(status_code=fresp.status, headers=dict(fresp.headers))
    return StreamingResponse(fresp.stream, status_code=fresp.status, headers=dict(fresp.headers))


_LANDING = """<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>ketnoi</title></head>
<body><h1>ketnoi — kết nối</h1>
<p>FHIR R4 server. Base: <a href="/fhir/metadata">/fhir</a> (CapabilityStatement at /fhir/metadata).</p>
<p>Máy chủ FHIR R4. Địa chỉ gốc: <code>/fhir</code>.</p></body></html>"""
