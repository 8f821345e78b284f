"""The authorization endpoint over HTTP: ``/auth/authorize`` (sign-in and consent pages) and
``POST /auth/launch`` (an EHR makes a launch handle naming a patient).

The logic is :mod:`ketnoi.security.authorize`; this module turns it into pages, cookies and
redirects. The pending sign-in travels in a hidden form field and is bound to the browser by a
``HttpOnly``, ``SameSite=Strict`` cookie scoped to ``/auth/authorize``; each address may post
the sign-in form once a second on average (bursts of 10; ``Settings.sign_in_*``), beyond which it
gets 429 with ``Retry-After`` — on top of the per-account lock-out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ketnoi.api import pages, remote
from ketnoi.api.bearer import Unauthorized
from ketnoi.auth.throttle import RateLimiter
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import unit_of_work
from ketnoi.interactions.router import error_response
from ketnoi.interactions.services import Services
from ketnoi.security.authorize import (
    Authorizer,
    PageError,
    PatientChoice,
    Pending,
    RedirectError,
    language,
    redirect_to,
)

_COOKIE_PATH = "/auth/authorize"
_MAX_FORM = 16 * 1024
ContextOf = Callable[[Request], Awaitable[RequestContext]]


def _cookie_name(pending_id: str) -> str:
    # One cookie per pending sign-in: two tabs signing in to two apps do not undo each other.
    return f"ketnoi_signin_{pending_id[:12]}"


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_FORM:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _lang(request: Request) -> str:
    return language(None, request.headers.get("accept-language"))


def routes(services: Services, authorizer: Authorizer, context_of: ContextOf) -> list[Route]:
    secure = services.settings.issuer().startswith("https://")
    limiter = RateLimiter(rate_per_s=services.settings.sign_in_per_s, burst=services.settings.sign_in_burst)

    async def authorize(request: Request) -> Response:
        params = dict(request.query_params) if request.method == "GET" else await _form(request)
        try:
            pending, cookie = await run_in_threadpool(
                authorizer.begin, params, request.headers.get("accept-language"), time.time()
            )
        except PageError as exc:
            return pages.error_page(_lang(request), exc.en, exc.vi)
        except RedirectError as exc:
            target = {"error": exc.error, "error_description": exc.description, "state": exc.state}
            return RedirectResponse(redirect_to(exc.redirect_uri, target), status_code=303)
        response = pages.sign_in_page(pending.request.lang, pending.id, pending.request.client_name)
        response.set_cookie(
            _cookie_name(pending.id), cookie, max_age=600, path=_COOKIE_PATH,
            secure=secure, httponly=True, samesite="strict",
        )  # fmt: skip
        return response

    async def pending_of(request: Request, form: dict[str, str]) -> Pending:
        pending_id = form.get("request", "")
        cookie = request.cookies.get(_cookie_name(pending_id))
        return await run_in_threadpool(authorizer.pending, pending_id, cookie, time.time())

    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        try:
            pending = await pending_of(request, form)
        except PageError as exc:
            return pages.error_page(_lang(request), exc.en, exc.vi)
        lang, app = pending.request.lang, pending.request.client_name
        wait = limiter.take(remote.throttle_key(request), time.monotonic())
        if wait > 0:
            page = pages.sign_in_page(lang, pending.id, app, pages.sign_in_message(lang, "slow", wait), 429)
            page.headers["Retry-After"] = str(math.ceil(wait))
            return page
        args = (
            pending, form.get("username", ""), form.get("password", ""), form.get("totp"), time.time(),
            remote.address(request),
        )  # fmt: skip
        signed, reason, retry = await run_in_threadpool(authorizer.sign_in, *args)
        if reason is not None:
            status = 429 if reason == "locked" else 200  # 401 would need a WWW-Authenticate scheme
            page = pages.sign_in_page(lang, pending.id, app, pages.sign_in_message(lang, reason, retry), status)
            if reason == "locked":
                page.headers["Retry-After"] = str(math.ceil(retry))
            return page
        try:
            consent = await run_in_threadpool(authorizer.consent, signed)
        except PageError as exc:
            return pages.error_page(lang, exc.en, exc.vi)
        return pages.consent_page(lang, signed.id, consent)

    async def consent(request: Request) -> Response:
        form = await _form(request)
        try:
            pending = await pending_of(request, form)
            allow = form.get("decision") == "allow"
            target = await run_in_threadpool(authorizer.decide, pending, allow, form.get("patient"), time.time())
        except PatientChoice as exc:
            lang = pending.request.lang
            again = await run_in_threadpool(authorizer.consent, pending)
            return pages.consent_page(lang, pending.id, again, exc.vi if lang == "vi" else exc.en, status=400)
        except PageError as exc:
            return pages.error_page(_lang(request), exc.en, exc.vi)
        response = RedirectResponse(target, status_code=303, headers=pages.HEADERS)
        response.delete_cookie(_cookie_name(pending.id), path=_COOKIE_PATH)
        return response

    async def launch(request: Request) -> Response:
        """``POST /auth/launch`` with ``patient=Patient/ID``: a launch handle for an EHR launch, made
        by a signed-in user or system that may read that patient (checked by the FHIR policy)."""
        try:
            context = await context_of(request)
            form = await _form(request)
            pid = form.get("patient", "").removeprefix("Patient/")
            await run_in_threadpool(_check_readable, services, context, pid)
            handle = await run_in_threadpool(authorizer.new_launch, pid, time.time())
        except Unauthorized as exc:
            fresp = error_response(exc.error)
            headers = {**fresp.headers, "WWW-Authenticate": exc.challenge}
            return JSONResponse(fresp.resource, status_code=fresp.status, headers=headers)
        except FhirError as exc:
            fresp = error_response(exc)
            return JSONResponse(fresp.resource, status_code=fresp.status, headers=fresp.headers)
        return JSONResponse({"launch": handle, "patient": pid}, headers={"Cache-Control": "no-store"})

    return [
        Route("/auth/authorize", authorize, methods=["GET", "POST"]),
        Route("/auth/authorize/sign-in", sign_in, methods=["POST"]),
        Route("/auth/authorize/consent", consent, methods=["POST"]),
        Route("/auth/launch", launch, methods=["POST"]),
    ]


def _check_readable(services: Services, context: RequestContext, pid: str) -> None:
    with unit_of_work(services, context, write=False) as repo:
        repo.read("Patient", pid)
