"""The clinician's pages of a patient's record (issue 15):

- ``GET|POST /patients/{id}/observations/new[?kind=bp|lab]``: a vital sign, a blood pressure (the
  vital-signs panel with its two components) or a laboratory result, written as an Observation.
- ``GET|POST /patients/{id}/notes/new``: an encounter and its note (Encounter + ClinicalImpression in
  one transaction: both or neither).
- ``GET /patients/{id}/documents/{doc}/{n}``: attachment ``n`` of a DocumentReference, downloaded.

The record page itself (``/patients/{id}``, :mod:`ketnoi.console.views`) shows the immunisation
schedule, the reports and the documents from :func:`ketnoi.console.clinical.sections`. Every read and
write goes through the interactions as the signed-in user (ADR 0026 decision 3).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ketnoi.console import clinical, clinical_forms, i18n, measures, show
from ketnoi.console.clinical_forms import Checked
from ketnoi.console.outcome import Message
from ketnoi.console.sessions import ConsoleSession
from ketnoi.console.views import Console, chosen_language
from ketnoi.interactions.context import RequestContext

MAX_FIELD = 200  # characters kept of a one-line form value
_CHECKS = {
    "vital": clinical_forms.check_observation,
    "bp": clinical_forms.check_blood_pressure,
    "lab": clinical_forms.check_lab,
}
_FIRST = {"vital": "8310-5", "bp": "", "lab": next(iter(measures.LAB_TESTS))}  # what a new form shows


@dataclass(slots=True)
class Row:
    """One form field as ``clinical_form.html`` draws it."""

    key: str
    label: str  # text key
    kind: str  # select | text | datetime | textarea
    value: str = ""
    options: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (value, shown text)
    hint: str = ""  # text key
    required: bool = False
    messages: list[Message] = dataclasses.field(default_factory=list)


def _encounter_options(encounters: list[dict[str, Any]], t: dict[str, str]) -> list[tuple[str, str]]:
    options = [("", t["clin_no_encounter"])]
    for e in encounters:
        kind = show.concepts(e.get("type")) or t.get(f"class_{(e.get('class') or {}).get('code')}", "")
        options.append((f"Encounter/{e.get('id')}", f"{show.when(e, 'period')} {kind}".strip()))
    return options


def observation_rows(
    kind: str, values: dict[str, str], t: dict[str, str], encounters: list[dict[str, Any]]
) -> list[Row]:
    """The observation form's fields for ``kind`` (a vital sign, a blood pressure, a laboratory result)."""
    if kind == "bp":
        measured = [
            Row("systolic", "clin_field_systolic", "text", values.get("systolic", ""), hint="clin_bp_hint",
                required=True),
            Row("diastolic", "clin_field_diastolic", "text", values.get("diastolic", ""), hint="clin_bp_hint",
                required=True),
        ]  # fmt: skip
    else:
        if kind == "lab":
            codes = [(c, f"{t[f'lab_{c}']} ({lab.unit})") for c, lab in measures.LAB_TESTS.items()]
        else:
            codes = [(c, f"{t[f'vital_{c}']} ({v.unit})") for c, v in measures.VITAL_SIGNS.items()]
        label = "clin_field_test" if kind == "lab" else "clin_field_code"
        measured = [
            Row("code", label, "select", values.get("code", ""), codes, required=True),
            Row("value", "clin_field_value", "text", values.get("value", ""), hint="clin_value_hint", required=True),
        ]
    return [
        *measured,
        Row("when", "clin_field_when", "datetime", values.get("when", ""), required=True),
        Row("encounter", "clin_field_encounter", "select", values.get("encounter", ""),
            _encounter_options(encounters, t)),
        Row("note", "clin_field_note", "textarea", values.get("note", "")),
    ]  # fmt: skip


def note_rows(values: dict[str, str], t: dict[str, str]) -> list[Row]:
    statuses = [(s, t[f"encounter_{s}"]) for s in clinical_forms.ENCOUNTER_STATUSES]
    classes = [(c, t[f"class_{c}"]) for c in clinical_forms.ENCOUNTER_CLASSES]
    return [
        Row("status", "clin_field_status", "select", values.get("status", ""), statuses, required=True),
        Row("class", "clin_field_class", "select", values.get("class", ""), classes, required=True),
        Row("start", "clin_field_start", "datetime", values.get("start", ""), required=True),
        Row("reason", "clin_field_reason", "text", values.get("reason", "")),
        Row("note", "clin_field_summary", "textarea", values.get("note", ""), required=True),
    ]


def _with_messages(rows: list[Row], checked: Checked | None) -> list[Row]:
    for row in rows:
        row.messages = (checked.messages if checked else {}).get(row.key, [])
    return rows


async def _values(request: Request, keys: tuple[str, ...]) -> dict[str, str]:
    form = await request.form()
    limit = {"note": clinical_forms.MAX_TEXT}
    return {k: str(form.get(k) or "")[: limit.get(k, MAX_FIELD)] for k in keys}


def routes(console: Console) -> list[Route]:
    def not_found(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        user = kept.user if kept else None
        return console.render(request, "message.html", 404, context, message="not_found", user=user)

    def render(request: Request, kept: ConsoleSession | None, context: RequestContext, patient: dict[str, Any],
               title: str, rows: list[Row], checked: Checked | None, intro: str = "") -> Response:  # fmt: skip
        """The form; after a refused POST with its messages, answered with the refusal's status."""
        return console.render(
            request, "clinical_form.html", checked.status if checked else 200, context,
            user=kept.user if kept else None, patient=patient, title=title, rows=rows, intro=intro,
            problems=checked.problems if checked else [], invalid=bool(checked and not checked.ok),
        )  # fmt: skip

    def done(pid: str, what: str) -> Response:
        return RedirectResponse(f"/patients/{quote(pid, safe='')}?saved={what}", status_code=303)

    async def observation(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        pid, reader = request.path_params["id"], console.reader(request, context)
        patient = await run_in_threadpool(reader.read, "Patient", pid)
        if patient is None:
            return not_found(request, kept, context)
        t = i18n.translator(chosen_language(request))
        found = await run_in_threadpool(
            reader.search, "Encounter", [("patient", f"Patient/{pid}"), ("_sort", "-date"), ("_count", "10")]
        )
        # The kind of measurement is in the address (the form posts back to it): each has its own fields.
        kind = request.query_params.get("kind", "vital")
        kind = kind if kind in clinical_forms.OBSERVATION_KINDS else "vital"
        checked = None
        if request.method == "POST":
            values = await _values(request, ("code", "value", "systolic", "diastolic", "when", "encounter", "note"))
            ids = {f"Encounter/{e.get('id')}" for e in found.entries}
            checked, resource = _CHECKS[kind](values, t, ids)
            if checked.ok:
                checked = await run_in_threadpool(
                    clinical_forms.save_observation, reader, pid, checked, resource, chosen_language(request)
                )
                if checked.ok:
                    return done(pid, "observation")
        values = checked.values if checked else {"code": _FIRST[kind], "when": clinical_forms.now_local()}
        rows = _with_messages(observation_rows(kind, values, t, found.entries), checked)
        return render(request, kept, context, patient, f"clin_{kind}_title", rows, checked)

    async def note(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        pid, reader = request.path_params["id"], console.reader(request, context)
        patient = await run_in_threadpool(reader.read, "Patient", pid)
        if patient is None:
            return not_found(request, kept, context)
        t = i18n.translator(chosen_language(request))
        checked = None
        if request.method == "POST":
            values = await _values(request, ("status", "class", "start", "reason", "note"))
            checked, start = clinical_forms.check_note(values, t)
            if checked.ok and start is not None:
                checked = await run_in_threadpool(
                    clinical_forms.save_note, reader, pid, checked, start, chosen_language(request)
                )
                if checked.ok:
                    return done(pid, "note")
        values = (
            checked.values if checked else {"status": "finished", "class": "AMB", "start": clinical_forms.now_local()}
        )
        rows = _with_messages(note_rows(values, t), checked)
        return render(request, kept, context, patient, "clin_note_title", rows, checked, "clin_note_intro")

    async def attachment(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        params = request.path_params
        found = await run_in_threadpool(
            clinical.download, console.reader(request, context), params["id"], params["doc"], params["n"]
        )
        if found is None:
            return not_found(request, kept, context)
        headers = {
            "Content-Disposition": clinical.disposition(found.filename),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",  # the browser keeps to the type said, never guesses HTML
            "Content-Security-Policy": "default-src 'none'; sandbox",  # and runs nothing if shown anyway
        }
        return Response(found.content, media_type=found.media_type, headers=headers)

    page, form = console.page, console.form
    return [
        Route("/patients/{id}/observations/new", page(observation), methods=["GET"]),
        Route("/patients/{id}/observations/new", form(observation), methods=["POST"]),
        Route("/patients/{id}/notes/new", page(note), methods=["GET"]),
        Route("/patients/{id}/notes/new", form(note), methods=["POST"]),
        Route("/patients/{id}/documents/{doc}/{n}", page(attachment)),
    ]
