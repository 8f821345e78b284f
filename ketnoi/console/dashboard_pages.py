"""The console's dashboard pages (ADR 0026): ``/dashboard``, the indicators of a year for administrators
and provincial managers, and ``/dashboard.csv``, the same rows as a spreadsheet.

Every number is a ``_summary=count`` search through the FHIR interactions with the user's context
(:mod:`ketnoi.console.dashboard` says which), so each user sees the counts of what the policy lets them
see: a provincial manager their province's, a facility administrator their facility's, a national
administrator the country's. The counts of one page run side by side on a few threads.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketnoi.console import dashboard, i18n, records
from ketnoi.console.sessions import ConsoleSession
from ketnoi.console.views import Console, chosen_language
from ketnoi.interactions.context import RequestContext

log = logging.getLogger("ketnoi.console.dashboard")

ROLES: frozenset[str] = frozenset({"admin", "provincial", "facility-admin"})
# Counts run side by side, but not so many that one page holds every database connection of the pool.
WORKERS = 4
FACILITIES = 200  # facilities offered in the filter at most (per level below the user's organization)


@dataclass(frozen=True, slots=True)
class Answer:
    filters: dashboard.Filters
    errors: list[str]
    found: dashboard.Indicators
    problems: list[str]  # the server's reasons for the counts it refused (each once)
    searches: int
    seconds: float


def counts(reader: records.Reader, searches: list[dashboard.Search]) -> list[records.Counted]:
    """Every count of the plan, in its order."""
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="dashboard") as pool:
        return list(pool.map(lambda s: reader.count(s.rtype, list(s.query)), searches))


def answer(reader: records.Reader, params: dict[str, str], text: dict[str, str], today: date) -> Answer:
    began = time.perf_counter()
    filters, errors = dashboard.parse_filters(params, today)
    searches = dashboard.plan(filters)
    found = counts(reader, searches)
    totals = [c.total for c in found]
    problems = list(dict.fromkeys(c.problem for c in found if c.problem))
    rows = dashboard.assemble(filters, searches, totals, text, today)
    seconds = time.perf_counter() - began
    log.info("dashboard: %d counts in %.3f s", len(searches), seconds)
    return Answer(filters, errors, rows, problems, len(searches), seconds)


def facilities(reader: records.Reader, organization: str | None) -> list[tuple[str, str]]:
    """(reference, name) of the organizations below the user's, two levels down (a province's hospitals
    and their stations), by name; none for a user without an organization (the national level: thousands
    of them, typed instead)."""
    if organization is None:
        return []
    found: dict[str, str] = {}
    for param in ("partof", "partof.partof"):
        query = [(param, organization), ("_count", str(FACILITIES)), ("_elements", "name")]
        for org in reader.search("Organization", query).entries:
            found[f"Organization/{org.get('id')}"] = str(org.get("name") or org.get("id"))
    return sorted(found.items(), key=lambda item: (item[1].casefold(), item[0]))


def routes(console: Console) -> list[Route]:
    def text_of(request: Request) -> dict[str, str]:
        lang = chosen_language(request)
        return i18n.translator(lang)

    def allowed(context: RequestContext) -> bool:
        return console.auth is None or bool(context.roles & ROLES)

    async def page(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        user = kept.user if kept else None
        if not allowed(context):
            return console.render(request, "message.html", 403, context, message="dashboard_forbidden", user=user)
        reader = console.reader(request, context)
        params = dict(request.query_params)
        text = text_of(request)
        found = await run_in_threadpool(answer, reader, params, text, date.today())
        choices = await run_in_threadpool(facilities, reader, context.organization)
        return console.render(
            request, "dashboard.html", context=context, user=user, a=found, choices=choices,
            csv_link="/dashboard.csv?" + urlencode(found.filters.params()), charts=_charts(found, text),
            this_year=date.today().year, dashboard=dashboard,
        )  # fmt: skip

    async def download(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        if not allowed(context):
            user = kept.user if kept else None
            return console.render(request, "message.html", 403, context, message="dashboard_forbidden", user=user)
        found = await run_in_threadpool(
            answer, console.reader(request, context), dict(request.query_params), text_of(request), date.today()
        )
        body = dashboard.csv_text(dashboard.csv_rows(found.found))
        f = found.filters
        name = f"ketnoi-dashboard-{f.year}-{f.first:02d}-{f.last:02d}.csv"
        headers = {
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8", headers=headers)

    return [Route("/dashboard", console.page(page)), Route("/dashboard.csv", console.page(download))]


def _charts(found: Answer, text: dict[str, str]) -> dict[str, Any]:
    """What the templates draw: the visits' series (uPlot) and the largest value of each bar chart."""
    rows = found.found
    return {
        "visits": dashboard.visits_series(
            rows.visits, text["dash_visits"], text["dash_visits_unit"], found.filters.year
        ),
        "diagnoses": dashboard.top(rows.diagnoses),
        "immunizations": dashboard.top(rows.immunizations),
        "registers": dashboard.top(rows.registers),
    }
