"""The operators' pages (``/ops``; ADR 0027): the server's state, the background jobs, the user accounts
and the OAuth clients, for national administrators.

Accounts and clients are not FHIR resources: the pages call :class:`ketnoi.security.admin.Admin` with
the signed-in user's context, which refuses anyone but an administrator and writes every change, and
every refused attempt, to the audit log. Resource counts and job cancellation go through the FHIR
interactions as every console page's reads do. A password, TOTP secret or client secret is shown once,
in the answer to the form that made it (``Cache-Control: no-store``), never in a URL.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ketnoi.console import ops_view, records, show, views
from ketnoi.console.sessions import ConsoleSession
from ketnoi.console.views import Console
from ketnoi.interactions.context import RequestContext
from ketnoi.security.accounts import ROLES
from ketnoi.security.admin import JOB_PAGE, Admin, FieldRefused, NotAllowed
from ketnoi.security.clients import KINDS

USER_ACTIONS: Final = ("disable", "enable", "password", "totp")


def _user(kept: ConsoleSession | None) -> str | None:
    return kept.user if kept else None


def _text(form: FormData, name: str, limit: int = 200) -> str:
    return str(form.get(name, "")).strip()[:limit]


def routes(console: Console) -> list[Route]:
    settings = console.services.settings
    admin = Admin(console.services.store, open_access=console.auth is None, base=settings.public_base())
    started = time.time()  # the console's start: the server's, to the minute

    def forbidden(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        return console.render(request, "message.html", 403, context, message="ops_forbidden", user=_user(kept))

    async def status(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        try:
            facts = await run_in_threadpool(admin.facts, context, settings.database, settings.auth)
        except NotAllowed:  # recorded in the audit log by admin
            return forbidden(request, kept, context)
        counts = await run_in_threadpool(ops_view.counts, console.reader(request, context))
        return console.render(
            request, "ops.html", context=context, user=_user(kept), facts=facts, counts=counts,
            uptime=ops_view.duration(time.time() - started), size=ops_view.size(facts.database_bytes),
            checkpoint=show.epoch_moment(facts.last_checkpoint),
        )  # fmt: skip

    async def jobs(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        return await _jobs_page(request, kept, context)

    async def _jobs_page(
        request: Request, kept: ConsoleSession | None, context: RequestContext, status_code: int = 200,
        problem: str = "",
    ) -> Response:  # fmt: skip
        before = request.query_params.get("before", "")
        try:
            found = await run_in_threadpool(
                admin.jobs, context, int(before) if before.isdigit() else None, JOB_PAGE + 1
            )
        except NotAllowed:
            return forbidden(request, kept, context)
        cancelled = request.query_params.get("cancelled", "")
        return console.render(
            request, "ops_jobs.html", status_code, context, user=_user(kept),
            rows=[ops_view.job_row(job) for job in found[:JOB_PAGE]],
            next=found[JOB_PAGE - 1].id if len(found) > JOB_PAGE else None,
            cancelled=cancelled if cancelled.isdigit() else "", problem=problem,
        )  # fmt: skip

    async def cancel(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        """Cancel through the job's status URL, as the API client who started it would: the API decides."""
        if not admin.allowed(context):
            return forbidden(request, kept, context)
        kind, id = str(request.path_params["kind"]), str(request.path_params["id"])
        if kind not in ops_view.CANCELLABLE or not id.isdigit():
            return console.render(request, "message.html", 404, context, message="not_found", user=_user(kept))
        reader = console.reader(request, context)
        answer = await run_in_threadpool(reader.delete, f"${kind}-status", [("job", id)])
        if answer.status in (200, 202, 204):
            return RedirectResponse(f"/ops/jobs?cancelled={id}", status_code=303)
        # Refused (another caller's job, or finished meanwhile): the API's reason, on the list.
        problem = records.diagnostics(records.json_of(answer)) or str(answer.status)
        return await _jobs_page(request, kept, context, answer.status if answer.status >= 400 else 409, problem)

    async def users(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        return await _users_page(request, kept, context)

    async def _users_page(
        request: Request, kept: ConsoleSession | None, context: RequestContext, status_code: int = 200, **values: Any
    ) -> Response:
        try:
            accounts = await run_in_threadpool(admin.users, context)
        except NotAllowed:
            return forbidden(request, kept, context)
        values.setdefault("form", {})
        return console.render(
            request, "ops_users.html", status_code, context, user=_user(kept), accounts=accounts, roles=ROLES,
            now=time.time(), done=request.query_params.get("done", "")[:20], **values,
        )  # fmt: skip

    async def add_user(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        form = await request.form()
        values = {name: _text(form, name) for name in ("username", "role", "organization", "patient")}
        generate = form.get("generate") == "on"
        password = None if generate else str(form.get("password", ""))[:1024]
        if not generate and password != str(form.get("password2", ""))[:1024]:
            errors = {"password": ("ops_passwords_differ", True)}
            return await _users_page(request, kept, context, 400, form=values, errors=errors)
        try:
            new = await run_in_threadpool(
                lambda: admin.add_user(
                    context, values["username"], values["role"], password=password,
                    organization=values["organization"] or None, patient=values["patient"] or None,
                )
            )  # fmt: skip
        except NotAllowed:
            return forbidden(request, kept, context)
        except FieldRefused as exc:
            errors = {exc.field: (exc.vi if views.chosen_language(request) == "vi" else exc.en, False)}
            return await _users_page(request, kept, context, 400, form=values, errors=errors)
        shown = ops_view.totp(new.totp, new.user.username) if new.totp else None
        return console.render(
            request, "ops_secret.html", 201, context, user=_user(kept), what="ops_user_added",
            subject=new.user.username, password=new.password, totp=shown, back="/ops/users",
        )  # fmt: skip

    async def change_user(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        name, action = str(request.path_params["name"])[:64], str(request.path_params["action"])
        if action not in USER_ACTIONS:
            return console.render(request, "message.html", 404, context, message="not_found", user=_user(kept))
        work = {
            "disable": admin.disable_user, "enable": admin.enable_user,
            "password": admin.reset_password, "totp": admin.reset_totp,
        }[action]  # fmt: skip
        try:
            answer = await run_in_threadpool(work, context, name)
        except NotAllowed:
            return forbidden(request, kept, context)
        except FieldRefused as exc:
            problem = exc.vi if views.chosen_language(request) == "vi" else exc.en
            return await _users_page(request, kept, context, 404, problem=problem)
        if action == "password":
            return console.render(
                request, "ops_secret.html", 200, context, user=_user(kept), what="ops_password_reset", subject=name,
                password=answer, totp=None, back="/ops/users",
            )  # fmt: skip
        if action == "totp":
            return console.render(
                request, "ops_secret.html", 200, context, user=_user(kept), what="ops_totp_reset", subject=name,
                password=None, totp=ops_view.totp(str(answer), name.casefold()), back="/ops/users",
            )  # fmt: skip
        return RedirectResponse(f"/ops/users?done={action}", status_code=303)

    async def clients(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        return await _clients_page(request, kept, context)

    async def _clients_page(
        request: Request, kept: ConsoleSession | None, context: RequestContext, status_code: int = 200, **values: Any
    ) -> Response:
        try:
            found = await run_in_threadpool(admin.clients, context)
        except NotAllowed:
            return forbidden(request, kept, context)
        values.setdefault("form", {"kind": "public"})
        return console.render(
            request, "ops_clients.html", status_code, context, user=_user(kept), clients=found, kinds=KINDS,
            own=_own_client(),
            done=request.query_params.get("done", "")[:20], **values,
        )  # fmt: skip

    async def add_client(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        form = await request.form()
        values = {name: _text(form, name, 2000) for name in ("name", "kind", "scope", "organization")}
        values["redirect_uris"] = _text(form, "redirect_uris", 4000)
        values["jwks"] = str(form.get("jwks", ""))[:20000]
        uris = [line.strip() for line in values["redirect_uris"].splitlines() if line.strip()]
        jwks: Any = None
        if values["kind"] == "backend":
            try:
                jwks = json.loads(values["jwks"])
            except ValueError:
                errors = {"jwks": ("ops_jwks_not_json", True)}
                return await _clients_page(request, kept, context, 400, form=values, errors=errors)
        try:
            client, secret = await run_in_threadpool(
                lambda: admin.add_client(
                    context, values["name"], values["scope"], kind=values["kind"], redirect_uris=uris, jwks=jwks,
                    organization=values["organization"] or None,
                )
            )  # fmt: skip
        except NotAllowed:
            return forbidden(request, kept, context)
        except FieldRefused as exc:
            errors = {exc.field: (exc.vi if views.chosen_language(request) == "vi" else exc.en, False)}
            return await _clients_page(request, kept, context, 400, form=values, errors=errors)
        return console.render(
            request, "ops_secret.html", 201, context, user=_user(kept), what="ops_client_added",
            subject=client.client_id, client_secret=secret, password=None, totp=None, back="/ops/clients",
        )  # fmt: skip

    def _own_client() -> str | None:
        """The console's own client: revoked, it would sign every user out of the console, this one too."""
        return console.auth.client(time.time()).client_id if console.auth is not None else None

    async def revoke(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        client_id = str(request.path_params["id"])[:100]
        if client_id == await run_in_threadpool(_own_client) and admin.allowed(context):
            return await _clients_page(request, kept, context, 409, problem_key="ops_own_client")
        try:
            await run_in_threadpool(admin.revoke_client, context, client_id)
        except NotAllowed:
            return forbidden(request, kept, context)
        except FieldRefused as exc:
            problem = exc.vi if views.chosen_language(request) == "vi" else exc.en
            return await _clients_page(request, kept, context, 404, problem=problem)
        return RedirectResponse("/ops/clients?done=revoked", status_code=303)

    page, form = console.page, console.form
    return [
        Route("/ops", page(status)),
        Route("/ops/jobs", page(jobs)),
        Route("/ops/jobs/{kind}/{id}/cancel", form(cancel), methods=["POST"]),
        Route("/ops/users", page(users)),
        Route("/ops/users", form(add_user), methods=["POST"]),
        Route("/ops/users/{name}/{action}", form(change_user), methods=["POST"]),
        Route("/ops/clients", page(clients)),
        Route("/ops/clients", form(add_client), methods=["POST"]),
        Route("/ops/clients/{id}/revoke", form(revoke), methods=["POST"]),
    ]
