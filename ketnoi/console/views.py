"""The console's pages over HTTP (ADR 0026): sign-in and sign-out, the session cookie, the language, and
one handler per page. The logic is in :mod:`ketnoi.console.sessions` and :mod:`ketnoi.console.records`;
templates under ``templates/`` (Jinja2, autoescaped)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ketnoi.api.bearer import Authenticator, Unauthorized
from ketnoi.api.routes import request_context
from ketnoi.console import clinical, i18n, records, show
from ketnoi.console.sessions import ConsoleAuth, ConsoleSession, SignInFailed
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.services import Services

HERE = Path(__file__).parent
SESSION_COOKIE = "ketnoi_console"
STATE_COOKIE = "ketnoi_console_signin"
LANG_COOKIE = "lang"
Handler = Callable[[Request], Awaitable[Response]]
#: A page's work: the request, the console session (None with --auth off) and the caller's context.
Work = Callable[[Request, ConsoleSession | None, RequestContext], Awaitable[Response]]

STAFF: frozenset[str] = frozenset({"admin", "facility-admin", "clinician", "provincial"})
IMPORTERS: frozenset[str] = frozenset({"admin", "facility-admin"})  # who runs $import-xml130 as a user
#: The main navigation: (path, text key, roles that see it; None: everyone), one row per feature's main page.
NAV: list[tuple[str, str, frozenset[str] | None]] = [
    ("/", "home", None),
    ("/patients", "patients", STAFF),
    ("/audit", "nav_audit", frozenset({"admin"})),
    ("/me", "nav_me", frozenset({"patient"})),
    ("/me/appointments", "nav_me_appointments", frozenset({"patient"})),
    ("/me/access", "nav_me_access", frozenset({"patient"})),
    ("/me/consent", "nav_me_consent", frozenset({"patient"})),
    ("/registry", "registry", frozenset({"admin", "facility-admin", "provincial", "clinician"})),
    ("/dashboard", "dashboard", frozenset({"admin", "provincial", "facility-admin"})),
    ("/review", "nav_review", frozenset({"admin", "facility-admin"})),
    ("/imports", "nav_imports", IMPORTERS),
    ("/ops", "nav_ops", frozenset({"admin"})),
    ("/account", "nav_account", frozenset({*STAFF, "patient"})),  # one's own account: password, TOTP
]

_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.globals.update(show=show)


CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"


class Console:
    """The console of one server: ``auth`` None when the server runs without sign-in (``--auth off``)."""

    def __init__(self, services: Services, auth: ConsoleAuth | None, authenticator: Authenticator | None) -> None:
        self.services = services
        self.auth = auth
        self.authenticator = authenticator

    # ---- rendering ----------------------------------------------------------------------------
    def render(
        self, request: Request, name: str, status: int = 200, context: RequestContext | None = None, **values: Any
    ) -> HTMLResponse:
        """``name`` rendered in the user's language; ``context`` (the caller) chooses the navigation shown."""
        lang = chosen_language(request)
        page = _templates.get_template(name).render(
            t=i18n.translator(lang), lang=lang, path=request.url.path, query=request.url.query,
            open_access=self.auth is None, nav=_nav(context, self.auth is None), **values,
        )  # fmt: skip
        headers = {
            "Cache-Control": "no-store",  # a patient's record is not kept by the browser or a proxy
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        return HTMLResponse(page, status_code=status, headers=headers)

    # ---- who is calling -----------------------------------------------------------------------
    async def caller(self, request: Request) -> tuple[ConsoleSession | None, RequestContext] | Response:
        """The session and its context, or the redirect to sign in."""
        base = request_context(request)
        if self.auth is None:
            return None, base
        auth = self.auth
        kept = await run_in_threadpool(auth.session, request.cookies.get(SESSION_COOKIE), time.time())
        if kept is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
        assert self.authenticator is not None
        try:
            context = await run_in_threadpool(self.authenticator.context, f"Bearer {kept.access}", base)
        except Unauthorized:  # revoked meanwhile (the user disabled, a key retired)
            await run_in_threadpool(auth.end, request.cookies.get(SESSION_COOKIE), time.time())
            return RedirectResponse("/signin", status_code=303)
        return kept, context

    def page(self, work: Work) -> Handler:
        """A GET page: the signed-in caller, or the redirect to sign in."""

        async def handler(request: Request) -> Response:
            found = await self.caller(request)
            if isinstance(found, Response):
                return found
            return await work(request, *found)

        return handler

    def form(self, work: Work) -> Handler:
        """A POST that changes something: as :meth:`page`, and only from this site's own pages (the
        browser's Origin must be this server's: a form on another site cannot post here, even if the
        session cookie were sent)."""
        page = self.page(work)

        async def handler(request: Request) -> Response:
            if not _same_origin(request, self.services.settings.public_base()):
                return self.render(request, "message.html", 403, message="forbidden_origin")
            return await page(request)

        return handler

    def reader(self, request: Request, context: RequestContext) -> records.Reader:
        base_url = self.services.settings.base_url or str(request.base_url).rstrip("/") + "/fhir"
        return records.Reader(self.services, context, base_url)


def chosen_language(request: Request) -> str:
    """The user's language: the ``lang`` cookie, else the browser's Accept-Language (ADR 0026 decision 5)."""
    return i18n.choose(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def _nav(context: RequestContext | None, open_access: bool) -> list[tuple[str, str]]:
    roles = context.roles if context is not None else frozenset()
    return [(path, key) for path, key, who in NAV if who is None or open_access or roles & who]


def _same_origin(request: Request, public_base: str) -> bool:
    """Whether the browser says the form came from this site: the public address the console is served at
    (behind a TLS proxy the request itself arrives as http://internal-host), or the address it was asked at."""
    origin = request.headers.get("origin")
    if origin is None:  # an old browser or a non-browser client: the Referer, else refuse
        origin = "/".join(request.headers.get("referer", "").split("/")[:3])
    public = "/".join(public_base.split("/")[:3])
    own = f"{request.url.scheme}://{request.url.netloc}"
    return bool(origin) and origin in (public, own)


def _safe_next(value: str | None) -> str:
    """A local path to return to after sign-in: never another site (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def routes(console: Console) -> list[Route | Mount]:
    secure = console.services.settings.public_base().startswith("https://")

    page = console.page

    async def signin(request: Request) -> Response:
        if console.auth is None:
            return RedirectResponse("/", status_code=303)
        lang = chosen_language(request)
        url, state = await run_in_threadpool(
            console.auth.start, _safe_next(request.query_params.get("next")), lang, time.time()
        )
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            STATE_COOKIE, state, max_age=600, path="/callback", httponly=True, samesite="lax", secure=secure
        )
        return response

    async def callback(request: Request) -> Response:
        if console.auth is None:
            return RedirectResponse("/", status_code=303)
        params = request.query_params
        if params.get("error"):
            reason = "sign_in_cancelled" if params.get("error") == "access_denied" else "sign_in_failed"
            return console.render(request, "message.html", 400, message=reason, again=True)
        try:
            cookie, target = await run_in_threadpool(
                console.auth.finish, params.get("code", ""), params.get("state", ""),
                request.cookies.get(STATE_COOKIE), time.time(),
            )  # fmt: skip
        except SignInFailed as exc:
            return console.render(request, "message.html", 400, message=exc.reason, again=True)
        response = RedirectResponse(_safe_next(target), status_code=303)
        response.delete_cookie(STATE_COOKIE, path="/callback")
        response.set_cookie(SESSION_COOKIE, cookie, path="/", httponly=True, samesite="lax", secure=secure)
        return response

    async def signout(request: Request) -> Response:
        if console.auth is not None:
            await run_in_threadpool(console.auth.end, request.cookies.get(SESSION_COOKIE), time.time())
        response = console.render(request, "message.html", message="signed_out", again=True)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def language(request: Request) -> Response:
        lang = request.path_params["lang"]
        back = _safe_next(request.query_params.get("next"))
        response = RedirectResponse(back, status_code=303)
        if lang in i18n.LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="lax", secure=secure)
        return response

    async def home(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        return console.render(request, "home.html", context=context, user=kept.user if kept else None)

    async def patients(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        text = request.query_params.get("q", "").strip()[:200]
        query = records.patient_query(text)
        found = records.Found([], False, None)
        if query is not None:
            found = await run_in_threadpool(console.reader(request, context).search, "Patient", query)
        return console.render(
            request, "patients.html", context=context, user=kept.user if kept else None, q=text,
            searched=query is not None, found=found.entries, more=found.more, problem=found.problem,
        )  # fmt: skip

    async def patient(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        pid = request.path_params["id"]
        data = await run_in_threadpool(records.record, console.reader(request, context), pid)
        user = kept.user if kept else None
        if data is None:
            # A clinician of a facility may open it in an emergency (the offer says nothing about
            # whether the patient exists: the operation answers that, with the reason recorded).
            emergency = pid if "clinician" in context.roles and context.organization else None
            return console.render(
                request, "message.html", 404, context, message="not_found", user=user, emergency=emergency
            )
        opened = request.query_params.get("opened", "")[:40]
        data |= await run_in_threadpool(
            clinical.sections, console.reader(request, context), data["patient"], console.auth is None
        )
        saved = request.query_params.get("saved", "")
        return console.render(
            request, "patient.html", context=context, user=user, opened=opened,
            saved=saved if saved in ("observation", "note") else "", **data,
        )  # fmt: skip

    async def emergency(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        """Break-the-glass (``Patient/[id]/$break-the-glass``): the form, and its answer."""
        pid, user = request.path_params["id"], kept.user if kept else None
        if request.method == "GET":
            return console.render(request, "emergency.html", context=context, user=user, pid=pid, reason="")
        reason = str((await request.form()).get("reason", "")).strip()
        done, answer = await run_in_threadpool(records.break_glass, console.reader(request, context), pid, reason)
        if not done:
            status = 400 if answer else 403
            return console.render(
                request, "emergency.html", status, context, user=user, pid=pid, reason=reason, problem=answer
            )
        return RedirectResponse(f"/patients/{quote(pid, safe='')}?opened={quote(answer)}", status_code=303)

    return [
        Route("/", page(home)),
        Route("/signin", signin),
        Route("/callback", callback),
        Route("/signout", signout, methods=["POST"]),  # a form: a link on another site cannot sign you out
        Route("/lang/{lang}", language),
        Route("/patients", page(patients)),
        Route("/patients/{id}", page(patient)),
        Route("/patients/{id}/emergency", page(emergency)),
        Route("/patients/{id}/emergency", console.form(emergency), methods=["POST"]),
        # Compressed for a slow provincial link (uPlot: 51 KB → 23 KB); pages themselves are small.
        Mount(
            "/static", GZipMiddleware(StaticFiles(directory=HERE / "static"), minimum_size=1024), name="console-static"
        ),
    ]
