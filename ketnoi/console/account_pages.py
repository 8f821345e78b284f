"""The signed-in user's own account (``/account``; issue 15, ADR 0027 decision 6): its facts, two-step
sign-in (TOTP) set up, replaced or turned off, and the password changed.

The account is not a FHIR resource: the pages call :class:`ketnoi.security.own_account.OwnAccount` with
the signed-in user's context, which acts on that context's own account only (no form field names an
account), asks for the current password again and writes every change and every refused attempt to the
audit log. A new TOTP secret is made on the server, shown in the answer to the form that asked for it
(``Cache-Control: no-store``) as a QR code and as text, and kept meanwhile in the console's session
record on the server (never in a cookie, a URL or a log): it takes effect only when the user types a
current code from it, and is gone when the session ends.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ketnoi.auth.passwords import MAX_LENGTH
from ketnoi.console import ops_view, records, views
from ketnoi.console.sessions import ConsoleSession
from ketnoi.console.views import Console
from ketnoi.interactions.context import RequestContext
from ketnoi.security.admin import FieldRefused, NotAllowed
from ketnoi.security.errors import Refused
from ketnoi.security.own_account import Locked, Mine, OwnAccount

DONE: Final = ("totp", "totp_off", "password")
#: The form field each form shows a refusal next to, by the field the core names (its own words).
OFF_FIELDS: Final = {"password": "off_password", "old_code": "off_code", "code": "off_code"}
PASSWORD_FIELDS: Final = {"password": "current", "new": "new"}


def _secret(form: FormData, name: str) -> str:
    """A password as typed (not stripped: spaces may be part of it), cut at the longest one accepted."""
    return str(form.get(name, ""))[: MAX_LENGTH + 1]


def _code(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()[:12]


def routes(console: Console) -> list[Route]:
    settings = console.services.settings
    own = OwnAccount(console.services.store, base=settings.public_base())

    def words(request: Request, refused: Refused) -> str:
        return refused.vi if views.chosen_language(request) == "vi" else refused.en

    def refusal(
        request: Request, kept: ConsoleSession | None, context: RequestContext, exc: Refused, page: str, **values: Any
    ) -> Response:
        """A refused change, answered on the form it came from: a field's refusal next to the field (400),
        a lock-out (429, Retry-After), a change not allowed (403) or one with nothing to change (409) above it."""
        fields: dict[str, str] = values.pop("fields", {})
        if isinstance(exc, FieldRefused):
            values["errors"] = {fields.get(exc.field, exc.field): (words(request, exc), False)}
            status = 400
        else:
            values["problem"] = words(request, exc)
            status = 429 if isinstance(exc, Locked) else 403 if isinstance(exc, NotAllowed) else 409
        response = console.render(request, page, status, context, user=kept.user if kept else None, **values)
        if isinstance(exc, Locked):
            response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return response

    async def mine_of(context: RequestContext) -> Mine | None:
        try:
            return await run_in_threadpool(own.view, context)
        except NotAllowed:  # --auth off, or a token of no local account: the page says so
            return None

    async def show(
        request: Request, kept: ConsoleSession | None, context: RequestContext, status: int = 200, **values: Any
    ) -> Response:
        done = request.query_params.get("done", "")
        ended = request.query_params.get("ended", "")
        mine = await mine_of(context) if kept is not None else None
        return console.render(
            request, "account.html", status, context, user=kept.user if kept else None,
            mine=mine, done=done if done in DONE else "", ended=int(ended) if ended.isdigit() else 0,
            organization_name=await run_in_threadpool(_organization_name, console.reader(request, context), mine),
            **values,
        )  # fmt: skip

    async def account(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        return await show(request, kept, context)

    async def no_account(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        """--auth off: nobody is signed in, there is no account to change."""
        return console.render(request, "message.html", 403, context, message="account_none", user=None)

    async def start_totp(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        """A new secret, kept in the session until confirmed, and the page to scan it and confirm it."""
        if kept is None or console.auth is None:
            return await no_account(request, kept, context)
        try:
            secret = await run_in_threadpool(own.new_totp, context)
            mine = await run_in_threadpool(own.view, context)
        except NotAllowed as exc:
            return await show(request, kept, context, 403, problem=words(request, exc))
        await run_in_threadpool(console.auth.hold_totp, kept, secret, time.time())
        return console.render(
            request, "account_totp.html", context=context, user=kept.user, totp=ops_view.totp(secret, kept.user),
            replacing=mine.totp,
        )  # fmt: skip

    async def confirm_totp(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        if kept is None or console.auth is None:
            return await no_account(request, kept, context)
        secret = kept.pending_totp
        if secret is None:  # never started, already confirmed, or the session is a new one
            return await show(request, kept, context, 409, problem_key="account_totp_expired")
        form = await request.form()
        try:
            await run_in_threadpool(
                lambda: own.set_totp(
                    context, secret, password=_secret(form, "password"), code=_code(form, "code"),
                    old_code=_code(form, "old_code"), now=time.time(),
                )
            )  # fmt: skip
        except NotAllowed as exc:
            return await show(request, kept, context, 403, problem=words(request, exc))
        except Refused as exc:
            now_mine = await mine_of(context)
            return refusal(
                request, kept, context, exc, "account_totp.html", totp=ops_view.totp(secret, kept.user),
                replacing=bool(now_mine and now_mine.totp),
            )  # fmt: skip
        await run_in_threadpool(console.auth.hold_totp, kept, None, time.time())
        return RedirectResponse("/account?done=totp", status_code=303)

    async def totp_off(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        if kept is None:
            return await no_account(request, kept, context)
        form = await request.form()
        try:
            await run_in_threadpool(
                lambda: own.remove_totp(
                    context, password=_secret(form, "off_password"), code=_code(form, "off_code"), now=time.time()
                )
            )
        except Refused as exc:
            return refusal(request, kept, context, exc, "account.html", fields=OFF_FIELDS, mine=await mine_of(context))
        return RedirectResponse("/account?done=totp_off", status_code=303)

    async def password(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        if kept is None:
            return await no_account(request, kept, context)
        form = await request.form()
        new = _secret(form, "new")
        if new != _secret(form, "new2"):  # a typing slip, caught before anything is checked or recorded
            return await show(request, kept, context, 400, errors={"new2": ("ops_passwords_differ", True)})
        try:
            _, ended = await run_in_threadpool(
                lambda: own.change_password(
                    context, current=_secret(form, "current"), new=new, keep=kept.grant, now=time.time()
                )
            )
        except Refused as exc:
            mine = await mine_of(context)
            return refusal(request, kept, context, exc, "account.html", fields=PASSWORD_FIELDS, mine=mine)
        if ended and console.authenticator is not None:
            # This process sees the revoked grants at once (others re-read the list within 15 s).
            console.authenticator.revocations.reload()
        return RedirectResponse(f"/account?done=password&ended={ended}", status_code=303)

    page, form = console.page, console.form
    return [
        Route("/account", page(account)),
        Route("/account/totp/new", form(start_totp), methods=["POST"]),
        Route("/account/totp", form(confirm_totp), methods=["POST"]),
        Route("/account/totp/off", form(totp_off), methods=["POST"]),
        Route("/account/password", form(password), methods=["POST"]),
    ]


def _organization_name(reader: records.Reader, mine: Mine | None) -> str:
    """The name of the caller's organization, read as the caller (directory data), or "" when unknown."""
    ref = mine.organization if mine is not None else None
    found = reader.read("Organization", ref.removeprefix("Organization/")) if ref else None
    name = found.get("name") if found else None
    return name if isinstance(name, str) else ""
