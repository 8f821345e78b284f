"""The console's audit pages: the audit viewer for administrators (``/audit``) and the patient portal
(``/me``: my record, ``/me/access``: who accessed it, ``/me/consent``: my sharing choices).

Everything is read and written through the FHIR interactions with the signed-in user's context
(``records.Reader`` → ``interactions.router.handle``): the audit log is ``AuditEvent?...`` as
``interactions.audit_api`` serves it (an administrator with a ``user/`` scope reads all of it, a patient
their own records, anyone else is refused), Consents are ``POST``/``PUT Consent`` as the patient, so
the same validation, compartment rule and audit trail apply as for an API client with that token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ketnoi.console import consent_view, records
from ketnoi.console.audit_view import Row, row
from ketnoi.console.sessions import ConsoleSession
from ketnoi.console.show import VIETNAM
from ketnoi.console.views import Console
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle

PAGE: Final = 25  # rows a page shows
# With a filter the API cannot apply (the portal hides the patient's own visits: "not this agent" is no
# search parameter) the console reads the log newest first in batches and keeps the matches: at most
# this many records per page view, then it offers to go on from where it stopped (a long log is never
# read whole at once). The viewer's filters are all the API's (audit_api: patient, date, agent).
SCAN_BATCH: Final = 100
SCAN_BATCHES: Final = 10
MAX_FORM: Final = 16_384
_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # the FHIR id datatype
_CURSOR: Final = re.compile(r"\d{1,18}")  # audit_api's _page: a position in the log
DONE: Final = frozenset({"denied_facility", "denied_category", "withdrawn", "restored", "already"})


# ---- reading the log ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Scan:
    """One page of the log as the caller may see it."""

    rows: list[Row]
    cursor: str | None  # where the next page starts (audit_api's _page), None at the end
    status: int  # the API's answer: 200, or why not (403: not the caller's to read)
    problem: str | None  # the OperationOutcome's text when refused
    stopped: bool = False  # the scan stopped at its limit before filling the page


def scan(
    reader: records.Reader, query: list[tuple[str, str]], keep: Callable[[Row], bool] | None, cursor: str | None
) -> Scan:
    """Newest first from ``cursor``: PAGE rows that ``keep`` accepts (all when None)."""
    rows: list[Row] = []
    count = PAGE if keep is None else SCAN_BATCH
    for _ in range(1 if keep is None else SCAN_BATCHES):
        paged = [("_page", cursor)] if cursor else []
        response = reader.call("AuditEvent", [*query, ("_sort", "-date"), ("_count", str(count)), *paged])
        bundle = records.json_of(response)
        if response.status != 200:
            return Scan([], None, response.status, records.diagnostics(bundle) or str(response.status))
        events = [e["resource"] for e in bundle.get("entry") or () if isinstance(e.get("resource"), dict)]
        more = any(link.get("relation") == "next" for link in bundle.get("link") or ())
        for n, event in enumerate(events):
            found = row(event)
            cursor = found.id
            if keep is None or keep(found):
                rows.append(found)
            if len(rows) == PAGE:
                return Scan(rows, cursor if more or n < len(events) - 1 else None, 200, None)
        if not more:
            return Scan(rows, None, 200, None)
    return Scan(rows, cursor, 200, None, stopped=True)


def org_names(reader: records.Reader, refs: Iterable[str]) -> dict[str, str]:
    """``Organization/x`` → its name, for those the caller may read (directory data: everyone may)."""
    ids = sorted({ref.removeprefix("Organization/") for ref in refs if ref.startswith("Organization/")})
    ids = [i for i in ids if _ID.fullmatch(i)][:100]
    if not ids:
        return {}
    return records.names(reader.search("Organization", [("_id", ",".join(ids)), ("_count", str(len(ids)))]).entries)


# ---- writing as the caller -------------------------------------------------------------------------
def write(
    reader: records.Reader, method: str, path: str, body: dict[str, Any], if_match: str | None = None
) -> FhirResponse:
    """A FHIR write with the caller's context: the same interaction an API client's request runs."""
    headers = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
    if if_match:
        headers["if-match"] = if_match
    return handle(reader.services, FhirRequest(method, path, [], headers, body, reader.base_url, reader.context))


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form; empty for anything else (the handlers then say what is missing)."""
    body = await request.body()
    if len(body) > MAX_FORM or "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _now() -> str:
    return datetime.now(VIETNAM).isoformat(timespec="seconds")


def _user(kept: ConsoleSession | None) -> str | None:
    return kept.user if kept else None


# ---- the audit viewer ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Filters:
    """The viewer's GET form, every field a parameter of the API's search: the database filters, so a
    page is full and its next link right whatever the filters."""

    patient: str
    user: str
    facility: str
    since: str  # yyyy-mm-dd
    until: str
    page: str | None

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Filters:
        def field(name: str) -> str:
            return str(params.get(name, "")).strip()[:64]

        page = field("page")
        return cls(
            field("patient").removeprefix("Patient/"), field("user"), field("facility"),
            field("from"), field("to"), page if _CURSOR.fullmatch(page) else None,
        )  # fmt: skip

    def query(self) -> list[tuple[str, str]]:
        query = [("patient", self.patient)] if self.patient else []
        query += [("date", f"ge{self.since}")] if self.since else []
        query += [("date", f"le{self.until}")] if self.until else []
        # The user: the account name or the client id the events record (agent.who.identifier); the
        # facility: the organization the caller acted for (the PROV agent's who), R4's agent.
        query += [("agent:identifier", self.user)] if self.user else []
        facility = self.facility.removeprefix("Organization/")
        return query + ([("agent", f"Organization/{facility}")] if facility else [])

    def link(self, cursor: str) -> str:
        """The next page's address: these filters from ``cursor`` on."""
        kept = {"patient": self.patient, "user": self.user, "facility": self.facility, "from": self.since}
        kept["to"] = self.until
        return "?" + urlencode([*((k, v) for k, v in kept.items() if v), ("page", cursor)])


def routes(console: Console) -> list[Route]:
    page, form = console.page, console.form

    async def audit(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        filters = Filters.of(request.query_params)
        reader = console.reader(request, context)
        found = await run_in_threadpool(scan, reader, filters.query(), None, filters.page)
        names = await run_in_threadpool(org_names, reader, (r.facility for r in found.rows))
        return console.render(
            request, "audit.html", found.status, context, user=_user(kept), f=filters, found=found, names=names,
            next_link=filters.link(found.cursor) if found.cursor else None,
        )  # fmt: skip

    def patient_of(request: Request, kept: ConsoleSession | None, context: RequestContext) -> str | Response:
        """The signed-in patient's id, or the polite refusal for anyone else (staff, --auth off)."""
        if context.patient and _ID.fullmatch(context.patient):
            return context.patient
        return console.render(request, "message.html", 403, context, message="me_patients_only", user=_user(kept))

    async def me(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        pid = patient_of(request, kept, context)
        if isinstance(pid, Response):
            return pid
        data = await run_in_threadpool(records.record, console.reader(request, context), pid)
        if data is None:
            return console.render(request, "message.html", 404, context, message="not_found", user=_user(kept))
        return console.render(request, "me.html", context=context, user=_user(kept), **data)

    async def access(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        pid = patient_of(request, kept, context)
        if isinstance(pid, Response):
            return pid
        mine = request.query_params.get("all") == "1"  # my own visits too (hidden by default: they drown the rest)
        cursor = request.query_params.get("page", "")
        keep = None if mine else (lambda r: r.user != context.user)
        reader = console.reader(request, context)
        found = await run_in_threadpool(
            scan, reader, [("patient", pid)], keep, cursor if _CURSOR.fullmatch(cursor) else None
        )
        names = await run_in_threadpool(org_names, reader, (r.facility for r in found.rows))
        shown = [("all", "1")] if mine else []
        next_link = "?" + urlencode([*shown, ("page", found.cursor)]) if found.cursor else None
        return console.render(
            request, "me_access.html", found.status, context, user=_user(kept), found=found, names=names,
            mine=mine, next_link=next_link,
        )  # fmt: skip

    async def consent_page(
        request: Request, kept: ConsoleSession | None, context: RequestContext, pid: str,
        errors: dict[str, str] | None = None, status: int = 200,
    ) -> Response:  # fmt: skip
        reader = console.reader(request, context)
        org_query = request.query_params.get("org", "").strip()[:100]
        data = await run_in_threadpool(_consent_data, reader, pid, org_query)
        done = request.query_params.get("done", "")
        return console.render(
            request, "me_consent.html", status, context, user=_user(kept), org_query=org_query,
            errors=errors or {}, done=done if done in DONE else None, categories=list(consent_view.CATEGORIES),
            **data,
        )  # fmt: skip

    async def consent(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        pid = patient_of(request, kept, context)
        return pid if isinstance(pid, Response) else await consent_page(request, kept, context, pid)

    async def deny(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        """``POST /me/consent/organization`` (field organization) or ``/me/consent/category`` (category)."""
        pid = patient_of(request, kept, context)
        if isinstance(pid, Response):
            return pid
        what = request.path_params["what"]
        values = await _form(request)
        reader = console.reader(request, context)
        outcome = await run_in_threadpool(_deny, reader, pid, what, values.get(what, "").strip())
        if isinstance(outcome, str):
            return RedirectResponse(f"/me/consent?done={outcome}", status_code=303)
        status, message = outcome
        return await consent_page(request, kept, context, pid, {what: message}, status)

    async def change(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        """``POST /me/consent/{id}/status``: withdraw (inactive) or restore (active) one of my Consents."""
        pid = patient_of(request, kept, context)
        if isinstance(pid, Response):
            return pid
        values = await _form(request)
        reader = console.reader(request, context)
        outcome = await run_in_threadpool(_set_status, reader, request.path_params["id"], values.get("status", ""))
        if isinstance(outcome, str):
            return RedirectResponse(f"/me/consent?done={outcome}", status_code=303)
        status, message = outcome
        return await consent_page(request, kept, context, pid, {"list": message}, status)

    return [
        Route("/audit", page(audit)),
        Route("/me", page(me)),
        Route("/me/access", page(access)),
        Route("/me/consent", page(consent)),
        Route("/me/consent/{what:str}", form(deny), methods=["POST"]),
        Route("/me/consent/{id:str}/status", form(change), methods=["POST"]),
    ]


# ---- consents ----------------------------------------------------------------------------------------
Failure = tuple[int, str]  # the status to answer and the message shown next to the form


def _consent_data(reader: records.Reader, pid: str, org_query: str) -> dict[str, Any]:
    """My Consents in words, the facilities to choose from (those found by name, else those I visited)
    and the names of every facility shown."""
    found = reader.search("Consent", [("patient", f"Patient/{pid}"), ("_count", "100")])
    choices = sorted((consent_view.describe(c) for c in found.entries), key=lambda c: c.date, reverse=True)
    if org_query:
        # Any part of the name, diacritics and case ignored: people know "Tân Lập", not "Trạm Y tế xã ..."
        orgs = reader.search("Organization", [("name:contains", org_query), ("_count", "20")])
        facilities, more = orgs.entries, orgs.more
    else:
        visits = reader.search(
            "Encounter", [("patient", f"Patient/{pid}"), ("_count", "100"), ("_include", "Encounter:service-provider")]
        )
        facilities, more = [r for r in visits.included if r.get("resourceType") == "Organization"], False
    names = records.names(facilities) | org_names(reader, (ref for c in choices for ref in c.facilities))
    return {
        "choices": choices, "problem": found.problem, "facilities": facilities, "more_facilities": more,
        "names": names, "denied": {ref for c in choices if c.status == "active" for ref in c.facilities if c.whole},
    }  # fmt: skip


def _deny(reader: records.Reader, pid: str, what: str, value: str) -> str | Failure:
    """Write the denying Consent: the ``done`` key on success, else why not."""
    if what == "organization":
        org = value.removeprefix("Organization/")
        if not _ID.fullmatch(org) or reader.read("Organization", org) is None:
            return 400, "consent_unknown_facility"
        wanted = consent_view.deny_facility(pid, f"Organization/{org}", _now())
        done = "denied_facility"
    elif what == "category":
        if value not in consent_view.CATEGORIES:
            return 400, "consent_choose_category"
        wanted = consent_view.deny_category(pid, value, _now())
        done = "denied_category"
    else:
        return 404, "not_found"
    rule = consent_view.describe(wanted)
    mine = reader.search("Consent", [("patient", f"Patient/{pid}"), ("status", "active"), ("_count", "100")])
    if any(consent_view.describe(c).same_rule(rule) for c in mine.entries):
        return "already"  # asked twice (a reload): one rule is enough
    response = write(reader, "POST", "Consent", wanted)
    if response.status not in (200, 201):
        return response.status, records.diagnostics(records.json_of(response)) or str(response.status)
    return done


def _set_status(reader: records.Reader, id: str, status: str) -> str | Failure:
    if status not in ("active", "inactive"):
        return 400, "consent_bad_status"
    current = reader.read("Consent", id) if _ID.fullmatch(id) else None
    if current is None:  # not mine (the patient compartment hides it), or gone
        return 404, "not_found"
    version = (current.get("meta") or {}).get("versionId")
    response = write(
        reader, "PUT", f"Consent/{id}", consent_view.with_status(current, status), f'W/"{version}"' if version else None
    )
    if response.status not in (200, 201):
        return response.status, records.diagnostics(records.json_of(response)) or str(response.status)
    return "restored" if status == "active" else "withdrawn"
