"""The patient portal's own pages, beside ``/me``, ``/me/access`` and ``/me/consent`` (audit_pages.py):

- ``/me/download``: "download my data", the whole record as one FHIR Bundle (a JSON file), gathered
  from ``Patient/{me}/$everything`` page by page (every ``next`` link followed);
- ``/me/appointments``: my appointments, upcoming first (soonest first), then those not yet scheduled
  (proposed, pending, on the waiting list: no start yet), then past (latest first).

As every console page, they read through the FHIR interactions with the patient's own context
(``records.Reader``): the file holds exactly what an app with the patient's token would get from
``$everything``, no more, and each page read is audited like an API client's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketnoi.console import records, show
from ketnoi.console.sessions import ConsoleSession
from ketnoi.console.views import Console
from ketnoi.interactions.context import RequestContext

_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # the FHIR id datatype
MAX_PAGES: Final = 1000  # $everything pages one download follows: far beyond any one person's record
APPOINTMENTS: Final = 50  # of each kind (upcoming, not yet scheduled, past) a page shows
AWAITING: Final = ("proposed", "pending", "waitlist")  # an appointment asked for, its time not yet given
PORTAL = frozenset({"patient"})
STATUSES: Final = (
    "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow", "entered-in-error",
    "checked-in", "waitlist",
)  # fmt: skip


# ---- download my data ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Gathered:
    bundle: dict[str, Any] | None  # the collection, None when the server refused
    status: int
    problem: str | None


def gather(reader: records.Reader, pid: str, now: datetime) -> Gathered:
    """``Patient/{pid}/$everything``, every page, as one Bundle of type ``collection`` (each resource
    once: a directory entry another page included again is not repeated)."""
    entries: dict[str, dict[str, Any]] = {}
    path, query = f"Patient/{pid}/$everything", [("_count", "500")]
    for _ in range(MAX_PAGES):
        response = reader.call(path, query)
        page = records.json_of(response)
        if response.status != 200:
            return Gathered(None, response.status, records.diagnostics(page) or str(response.status))
        for entry in page.get("entry") or ():
            resource = entry.get("resource")
            if isinstance(resource, dict):
                key = str(entry.get("fullUrl") or f"{resource.get('resourceType')}/{resource.get('id')}")
                entries.setdefault(key, {"fullUrl": key, "resource": resource})
        following = next((link.get("url") for link in page.get("link") or () if link.get("relation") == "next"), None)
        if not following:
            bundle = {
                "resourceType": "Bundle",
                "type": "collection",
                "timestamp": now.isoformat(timespec="seconds"),
                "entry": list(entries.values()),
            }
            return Gathered(bundle, 200, None)
        path, query = _local(str(following), reader.base_url)
    return Gathered(None, 413, None)  # a loop or a record beyond reason: refused rather than cut short


def _local(url: str, base_url: str) -> tuple[str, list[tuple[str, str]]]:
    """A ``next`` link (``{base}/Patient/x/$everything?...``) as the path and query the router takes."""
    parts = urlsplit(url)
    base_path = urlsplit(base_url).path.rstrip("/")
    return parts.path.removeprefix(base_path).lstrip("/"), parse_qsl(parts.query, keep_blank_values=True)


def filename(now: datetime) -> str:
    """``ho-so-suc-khoe-YYYY-MM-DD.json``, the date in Vietnam."""
    return f"ho-so-suc-khoe-{now.astimezone(show.VIETNAM).date().isoformat()}.json"


# ---- my appointments -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Visit:
    """One Appointment in words."""

    id: str
    start: str  # the instant as stored, for <time datetime>
    when: str  # hour:minute day/month/year, Vietnam time
    status: str  # text key appt_<status>
    place: str  # the location (else facility) by name
    practitioner: str
    reason: str
    instructions: str
    requested: tuple[tuple[str, str], ...] = ()  # requestedPeriod: (first day, last day), either may be ""


def visit(appointment: dict[str, Any], names: dict[str, str]) -> Visit:
    actors = [
        str((p.get("actor") or {}).get("reference") or "")
        for p in appointment.get("participant") or ()
        if isinstance(p, dict)
    ]
    displays = {
        str((p.get("actor") or {}).get("reference") or ""): str((p.get("actor") or {}).get("display") or "")
        for p in appointment.get("participant") or ()
        if isinstance(p, dict)
    }

    def named(kind: str) -> str:
        found = [names.get(a) or displays.get(a) or a for a in actors if a.startswith(kind + "/")]
        return ", ".join(found)

    reasons = [show.concept(c) for c in appointment.get("reasonCode") or ()]
    reasons += [names.get(str((r or {}).get("reference") or ""), "") for r in appointment.get("reasonReference") or ()]
    reason = ", ".join(r for r in reasons if r) or str(appointment.get("description") or "")
    notes = [str(appointment.get(k) or "") for k in ("patientInstruction", "comment")]
    status = str(appointment.get("status") or "")
    return Visit(
        id=str(appointment.get("id") or ""),
        start=str(appointment.get("start") or ""),
        when=show.moment(appointment.get("start")),
        status=f"appt_{status}" if status in STATUSES else "unknown",
        place=named("Location") or named("HealthcareService") or named("Organization"),
        practitioner=named("Practitioner") or named("PractitionerRole"),
        reason=reason,
        instructions=" ".join(n for n in notes if n),
        requested=tuple(
            (show.date(p.get("start")), show.date(p.get("end")))
            for p in appointment.get("requestedPeriod") or ()
            if isinstance(p, dict) and (p.get("start") or p.get("end"))
        ),
    )


def _names(included: list[dict[str, Any]]) -> dict[str, str]:
    """``Type/id`` → a name for each included resource: a place's or facility's name, a person's
    official name, a Condition's code."""
    found: dict[str, str] = {}
    for resource in included:
        key = f"{resource.get('resourceType')}/{resource.get('id')}"
        if isinstance(resource.get("name"), str):
            found[key] = str(resource["name"])
        elif isinstance(resource.get("name"), list):
            found[key] = show.name(resource)
        elif resource.get("resourceType") == "Condition":
            found[key] = show.concept(resource.get("code"))
    return found


@dataclass(frozen=True, slots=True)
class Agenda:
    upcoming: list[Visit]
    past: list[Visit]
    more: bool  # a list was cut at APPOINTMENTS
    problem: str | None
    unscheduled: list[Visit] = field(default_factory=list)  # asked for, no time given yet


def agenda(reader: records.Reader, pid: str, now: datetime) -> Agenda:
    """Upcoming (from now, soonest first) and past (latest first): two searches, each by ``date``
    (the start), each bringing the people, places and conditions it names (``_include``). A third finds
    those not yet scheduled: no start (``date:missing``), which R4 allows a proposed appointment or one
    on the waiting list (and a cancelled one, not shown: nothing is awaited); by ``date`` alone the
    other two never meet them."""
    instant = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    base = [
        ("patient", f"Patient/{pid}"), ("_count", str(APPOINTMENTS)),
        ("_include", "Appointment:actor"), ("_include", "Appointment:reason-reference"),
    ]  # fmt: skip
    ahead = reader.search("Appointment", [*base, ("date", f"ge{instant}"), ("_sort", "date")])
    behind = reader.search("Appointment", [*base, ("date", f"lt{instant}"), ("_sort", "-date")])
    waiting = reader.search("Appointment", [*base, ("date:missing", "true"), ("status", ",".join(AWAITING))])
    names = _names([*ahead.included, *behind.included, *waiting.included])
    unscheduled = [visit(a, names) for a in sorted(waiting.entries, key=_requested_first)]
    return Agenda(
        [visit(a, names) for a in ahead.entries], [visit(a, names) for a in behind.entries],
        ahead.more or behind.more or waiting.more, ahead.problem or behind.problem or waiting.problem, unscheduled,
    )  # fmt: skip


def _requested_first(appointment: dict[str, Any]) -> tuple[bool, str]:
    """The earliest requested start first (ISO dates compare as text), those with none last."""
    periods = [p for p in appointment.get("requestedPeriod") or () if isinstance(p, dict)]
    starts = [str(p["start"])[:10] for p in periods if p.get("start")]
    return not starts, min(starts, default="")


# ---- the pages -------------------------------------------------------------------------------------
def _patient(context: RequestContext) -> str | None:
    """The signed-in patient's id; None for anyone else (staff, --auth off)."""
    return context.patient if context.patient and _ID.fullmatch(context.patient) else None


def routes(console: Console) -> list[Route]:
    def refuse(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        user = kept.user if kept else None
        return console.render(request, "message.html", 403, context, message="me_patients_only", user=user)

    async def download(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        pid = _patient(context)
        if pid is None:
            return refuse(request, kept, context)
        now = datetime.now(UTC)
        found = await run_in_threadpool(gather, console.reader(request, context), pid, now)
        if found.bundle is None:
            user = kept.user if kept else None
            message = "me_download_too_big" if found.status == 413 else "me_download_failed"
            return console.render(request, "message.html", found.status, context, message=message, user=user)
        headers = {
            "Content-Disposition": f'attachment; filename="{filename(now)}"',
            "Cache-Control": "no-store",  # a whole health record: kept by no browser cache or proxy
            "X-Content-Type-Options": "nosniff",
        }
        body = orjson.dumps(found.bundle, option=orjson.OPT_INDENT_2)
        return Response(body, 200, headers, media_type="application/fhir+json")

    async def appointments(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        pid = _patient(context)
        if pid is None:
            return refuse(request, kept, context)
        found = await run_in_threadpool(agenda, console.reader(request, context), pid, datetime.now(UTC))
        return console.render(
            request, "me_appointments.html", context=context, user=kept.user if kept else None, agenda=found
        )

    return [
        Route("/me/download", console.page(download)),
        Route("/me/appointments", console.page(appointments)),
    ]
