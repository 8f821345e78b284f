"""The console's registry pages: facilities (Organization), workforce (Practitioner), sites (Location),
equipment (Device) and medicines (Medication). Searched, created and edited through the FHIR interactions
with the signed-in user's context: who may change which registry entry (a provincial manager the
province's, a facility what it wrote) is the API's answer, shown as it comes.

- ``GET /registry``: a search box per registry; ``?type=organization&q=...`` its results, a page at a
  time (the server's cursor carried in ``cursor``).
- ``GET|POST /registry/{type}/new``: the form, and the create (POST).
- ``GET|POST /registry/{type}/{id}/edit``: the form, and the update: a PUT of the resource as read with
  only the form's fields changed, ``If-Match`` the version the form was made from, so that a change
  made meanwhile by someone else is refused (412), not silently overwritten.
- Either POST may instead ask for a reference field's search (:mod:`ketnoi.console.registry_refs`):
  the form comes back as typed, nothing written, with the matches to pick from.
Validation errors come back as OperationOutcome issues and are shown next to the field they name.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ketnoi.console import i18n, records, registry_refs
from ketnoi.console.outcome import Message, outcome_text, place
from ketnoi.console.registry_fields import PROVINCE_NAMES, REGISTRIES, Field, Registry, cell, locate, merge, shown
from ketnoi.console.registry_refs import Pick
from ketnoi.console.sessions import ConsoleSession
from ketnoi.console.views import Console, chosen_language
from ketnoi.interactions.context import RequestContext

PAGE = 20
MAX_TEXT = 500  # characters kept of a form value: more is no registry field
#: Roles offered the forms' "save"; others (clinicians) read. The API decides anyway.
WRITERS = frozenset({"admin", "facility-admin", "provincial"})
_IDENTIFIER = re.compile(r"\S*\d\S*")  # one word with a digit: a code, not a name


@dataclass(slots=True)
class Row:
    """One form field as the template draws it."""

    field: Field
    value: str
    options: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (code, label) of a select
    messages: list[Message] = dataclasses.field(default_factory=list)
    name: str = ""  # a reference's target by name ("": none, or not one the user may read)
    pick: Pick | None = None  # a reference's search box and what it found


# ---- search --------------------------------------------------------------------------------------
def search_query(registry: Registry, text: str, cursor: str) -> list[tuple[str, str]]:
    """A typed word with a digit is an identifier (a facility code, a licence number); the rest a name,
    which the server matches without diacritics or case."""
    words = text.split()
    query: list[tuple[str, str]] = []
    if len(words) == 1 and _IDENTIFIER.fullmatch(words[0]):
        query.append(("identifier", words[0]))
    else:  # every word must match, in any order: "tram tan lap" finds Trạm Y tế xã Tân Lập
        query.extend((registry.name_param, word) for word in words)
    if registry.sort:
        query.append(("_sort", registry.sort))
    query.append(("_count", str(PAGE)))
    if cursor:
        query.append(("_cursor", cursor))
    return query


@dataclass(frozen=True, slots=True)
class Results:
    entries: list[dict[str, Any]]
    cursor: str | None  # the next page's, or None on the last
    problem: str | None


def search(reader: records.Reader, registry: Registry, query: list[tuple[str, str]], lang: str) -> Results:
    response = reader.call(registry.rtype, query)
    bundle = records.json_of(response)
    if response.status != 200:
        return Results([], None, outcome_text(bundle, lang) or str(response.status))
    entries = [e["resource"] for e in bundle.get("entry") or () if isinstance(e.get("resource"), dict)]
    following = next((link.get("url", "") for link in bundle.get("link") or () if link.get("relation") == "next"), "")
    cursor = dict(parse_qsl(urlsplit(following).query)).get("_cursor") if following else None
    return Results(entries, cursor, None)


# ---- pages ---------------------------------------------------------------------------------------


def _may_write(console: Console, context: RequestContext) -> bool:
    return console.auth is None or bool(context.roles & WRITERS)


def _rows(registry: Registry, state: FormState, t: dict[str, str]) -> list[Row]:
    rows = []
    for f in registry.fields:
        value = state.values.get(f.key, "")
        options = [(c.code, t.get(c.label, c.code)) for c in f.choices]
        if value and f.choices and value not in {code for code, _ in options}:
            options.append((value, value))  # a code the form does not offer: kept, shown as it is
        pick = state.picks.get(f.key, Pick()) if f.kind == "ref" else None
        rows.append(Row(f, value, options, state.messages.get(f.key, []), state.names.get(f.key, ""), pick))
    return rows


@dataclass(slots=True)
class FormState:
    """What the form page shows besides its fields."""

    registry: Registry
    rid: str | None = None
    version: str = ""
    title: str = ""
    values: dict[str, str] = dataclasses.field(default_factory=dict)
    messages: dict[str, list[Message]] = dataclasses.field(default_factory=dict)
    problems: list[Message] = dataclasses.field(default_factory=list)
    saved: bool = False
    conflict: bool = False
    picks: dict[str, Pick] = dataclasses.field(default_factory=dict)  # reference fields' search boxes
    names: dict[str, str] = dataclasses.field(default_factory=dict)  # reference fields' targets by name


def routes(console: Console) -> list[Route]:
    async def render_form(request: Request, kept: ConsoleSession | None, context: RequestContext,
                          state: FormState, status: int = 200) -> Response:  # fmt: skip
        t = i18n.translator(chosen_language(request))
        reg = state.registry
        reader = console.reader(request, context)
        state.names = await run_in_threadpool(registry_refs.names, reader, reg, state.values)
        action = f"/registry/{reg.slug}/{state.rid}/edit" if state.rid else f"/registry/{reg.slug}/new"
        return console.render(
            request, "registry_form.html", status, context, user=kept.user if kept else None, registry=reg,
            rows=_rows(reg, state, t), action=action, rid=state.rid, version=state.version,
            heading=state.title, problems=state.problems, saved=state.saved, conflict=state.conflict,
            may_write=_may_write(console, context), provinces=PROVINCE_NAMES,
        )  # fmt: skip

    def not_found(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        user = kept.user if kept else None
        return console.render(request, "message.html", 404, context, message="not_found", user=user)

    async def index(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        params = request.query_params
        active = REGISTRIES.get(params.get("type", ""))
        text = params.get("q", "").strip()[:200]
        cursor = params.get("cursor", "")[:2000]
        results = None
        if active is not None:
            query = search_query(active, text, cursor)
            reader = console.reader(request, context)
            results = await run_in_threadpool(search, reader, active, query, chosen_language(request))
        return console.render(
            request, "registry.html", context=context, user=kept.user if kept else None,
            registries=list(REGISTRIES.values()), active=active, q=text, results=results, paged=bool(cursor),
            may_write=_may_write(console, context), cells=_cells,
        )  # fmt: skip

    async def new(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        reg = REGISTRIES.get(request.path_params["type"])
        if reg is None:
            return not_found(request, kept, context)
        own = (context.organization or "").removeprefix("Organization/")
        values = {f.key: own for f in reg.fields if f.own_org and own}
        return await render_form(request, kept, context, FormState(reg, values=values))

    async def edit(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        reg = REGISTRIES.get(request.path_params["type"])
        rid = request.path_params["id"]
        current = None
        if reg is not None:
            current = await run_in_threadpool(console.reader(request, context).read, reg.rtype, rid)
        if reg is None or current is None:
            return not_found(request, kept, context)
        values = {f.key: shown(f, current) for f in reg.fields}
        state = FormState(reg, rid, _version(current), reg.title_of(current), values)
        state.saved = request.query_params.get("saved") == "1"
        return await render_form(request, kept, context, state)

    async def save(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        reg = REGISTRIES.get(request.path_params["type"])
        rid: str | None = request.path_params.get("id")
        if reg is None:
            return not_found(request, kept, context)
        form = await request.form()
        values = {f.key: str(form.get(f.key) or "")[:MAX_TEXT] for f in reg.fields}
        registry_refs.picked(reg, form, values)
        version = str(form.get("version") or "")[:20]
        reader = console.reader(request, context)
        key = registry_refs.finding(reg, form)
        if key is not None:  # a reference's search: the form again as typed, with what it found
            picks = registry_refs.typed(reg, form)
            found = await run_in_threadpool(
                registry_refs.search, reader, reg.field(key), picks[key].text, chosen_language(request)
            )
            picks[key] = found
            heading = reg.title_of(merge({"resourceType": reg.rtype}, reg.fields, values)) if rid else ""
            return await render_form(request, kept, context, FormState(reg, rid, version, heading, values, picks=picks))
        outcome = await run_in_threadpool(_save, reader, reg, rid, values, version)
        if outcome is None:
            return not_found(request, kept, context)
        written, merged = outcome
        lang = chosen_language(request)
        where = {f.key: locate(merged, f.path) for f in reg.fields}
        messages, problems = place(written.issues, where, lang)
        state = FormState(reg, rid, version, reg.title_of(merged) if rid else "", values, messages, problems)
        state.picks = registry_refs.typed(reg, form)  # a search typed, not run: kept for the next post
        if written.ok:
            if not messages and not problems:  # the form again, as stored (a reload posts nothing)
                return RedirectResponse(f"/registry/{reg.slug}/{written.id}/edit?saved=1", status_code=303)
            # Stored with warnings (KETNOI_VALIDATION=lenient): said next to their fields.
            state.rid, state.version, state.saved = written.id, written.version or "", True
            return await render_form(request, kept, context, state)
        if written.status == 412:
            state.conflict, state.problems = True, []
            return await render_form(request, kept, context, state, 409)
        return await render_form(request, kept, context, state, written.status if written.status >= 400 else 400)

    page, form = console.page, console.form
    return [
        Route("/registry", page(index)),
        Route("/registry/{type}/new", page(new), methods=["GET"]),
        Route("/registry/{type}/new", form(save), methods=["POST"]),
        Route("/registry/{type}/{id}/edit", page(edit), methods=["GET"]),
        Route("/registry/{type}/{id}/edit", form(save), methods=["POST"]),
    ]


def _cells(reg: Registry, resource: dict[str, Any], t: dict[str, str]) -> list[str]:
    return [cell(reg.field(key), resource, t) for key in reg.columns]


def _version(resource: dict[str, Any]) -> str:
    return str((resource.get("meta") or {}).get("versionId") or "")


def _save(
    reader: records.Reader, reg: Registry, rid: str | None, values: dict[str, str], version: str
) -> tuple[records.Written, dict[str, Any]] | None:
    """Create, or update the resource as read now with the form's fields changed: ``If-Match`` is the
    version the form showed, so a change made since then is refused, not overwritten. None: the
    resource is gone or out of the caller's reach."""
    if rid is None:
        merged = merge({"resourceType": reg.rtype}, reg.fields, values)
        return reader.write("POST", reg.rtype, merged), merged
    current = reader.read(reg.rtype, rid)
    if current is None:
        return None
    merged = merge(current, reg.fields, values)
    return reader.write("PUT", f"{reg.rtype}/{rid}", merged, version or None), merged
