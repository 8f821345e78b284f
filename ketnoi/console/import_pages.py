"""Claims-XML imports in the console (``/imports``; docs/xml130.md, ADR 0022 decisions 8 and 9).

A facility's administrator uploads the day's envelopes; the console sends them as ``POST $import-xml130``
(a Parameters of ``file`` attachments) with the signed-in user's context, so the import writes with the
user's rights and facility exactly as the API would. The answer, the report, is kept as a
DocumentReference of type ``claims-import-report`` written as the same user: its owner is the user's
organization (recorded by the server), so the facility rule decides who finds it again (the facility,
the national administrators; not another facility) and the audit trail records every reading.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ketnoi.console import import_report, records, views
from ketnoi.console.import_report import Finding, Report
from ketnoi.console.sessions import ConsoleSession
from ketnoi.console.show import VIETNAM
from ketnoi.console.views import Console
from ketnoi.interactions.context import RequestContext

#: Who may import claims: ``$import-xml130`` is own-data work (ketnoi.interactions.policy.require_admin):
#: a national administrator, or a facility's administrator for its own facility's files.
ROLES: Final = views.IMPORTERS
PAGE: Final = 20  # reports a page of the list shows
ROWS: Final = 100  # problems a page of the report shows (the CSV has them all)
MAX_FILES: Final = 20
_FIELD: Final = re.compile(r"[A-Z0-9_]{1,40}")  # a claims field name, as a filter
_CURSOR: Final = re.compile(r"[A-Za-z0-9_\-.=~]{1,2000}")


@dataclass(frozen=True, slots=True)
class Upload:
    """The files of an upload form, or why there are none to send."""

    files: list[tuple[str, bytes]]
    problem: str = ""  # a text key: none chosen, too large, not a form


@dataclass(frozen=True, slots=True)
class Listed:
    reports: list[dict[str, Any]]
    cursor: str | None  # the next page's
    problem: str | None


# ---- the upload -----------------------------------------------------------------------------------
async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit``. What is over is still read (up to four
    times the limit) and dropped, so that the browser gets the page that says so and not a reset."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > 4 * limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > 4 * limit:
            return None
        if size <= limit:
            chunks.append(chunk)
    return b"".join(chunks) if size <= limit else None


async def read_upload(request: Request, limit: int) -> Upload:
    """The ``files`` of a multipart form, at most ``limit`` bytes in all (the API's own body limit)."""
    if "multipart/form-data" not in request.headers.get("content-type", ""):
        return Upload([], "imp_not_form")
    body = await _body(request, limit)
    if body is None:
        return Upload([], "imp_too_large")

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(request.headers, stream(), max_files=MAX_FILES, max_fields=10, max_part_size=limit)
    try:
        form = await parser.parse()
    except MultiPartException:  # a broken or oversized form: said in words, never a 500
        return Upload([], "imp_not_form")
    files = []
    for item in form.getlist("files"):
        if isinstance(item, UploadFile) and item.filename:
            files.append((item.filename[:200], await item.read()))
    await form.close()
    return Upload(files, "" if files else "imp_none_chosen")


def parameters(files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The operation's Parameters: one ``file`` attachment per envelope (base64 ``data``, ``title`` its name)."""
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "file", "valueAttachment": {"contentType": "application/xml", "title": name,
                                                  "data": base64.b64encode(data).decode("ascii")}}
            for name, data in files
        ],
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Imported:
    """What an upload came to: the report kept (``id``), or why not."""

    report: Report | None = None
    id: str | None = None  # the DocumentReference that keeps it
    refusal: str = ""  # the API refused the request itself (no right, a broken body): its text
    kept_problem: str = ""  # the import ran but its report could not be kept: the API's text


def run_import(reader: records.Reader, files: list[tuple[str, bytes]], user: str, lang: str) -> Imported:
    """``$import-xml130`` with the caller's context, then its report kept as a DocumentReference (unless
    every file was refused whole: nothing was imported, the form says why)."""
    response = reader.post("$import-xml130", parameters(files))
    outcome = records.json_of(response)
    report = import_report.from_outcome(outcome)
    if response.status not in (200, 400) or not report.files:
        return Imported(refusal=import_report.refusal(outcome, lang) or str(response.status))
    if all(f.refused for f in report.files):
        return Imported(report)
    now = datetime.now(VIETNAM).isoformat(timespec="milliseconds")  # two imports in one second keep their order
    written = reader.write("POST", "DocumentReference", import_report.document(outcome, report, user, now))
    if not written.ok:
        texts = "; ".join(str(i.get("diagnostics", "")) for i in written.issues if i.get("diagnostics"))
        return Imported(report, kept_problem=texts or str(written.status))
    return Imported(report, written.id)


# ---- the list and one report ----------------------------------------------------------------------
def list_reports(reader: records.Reader, cursor: str) -> Listed:
    """The reports the caller may see, newest first (``DocumentReference?type=…&_sort=-date``)."""
    query = [("type", import_report.REPORT_TYPE), ("_sort", "-date"), ("_count", str(PAGE))]
    if cursor:
        query.append(("_cursor", cursor))
    response = reader.call("DocumentReference", query)
    bundle = records.json_of(response)
    if response.status != 200:
        return Listed([], None, records.diagnostics(bundle) or str(response.status))
    entries = [e["resource"] for e in bundle.get("entry") or () if isinstance(e.get("resource"), dict)]
    following = next((link.get("url", "") for link in bundle.get("link") or () if link.get("relation") == "next"), "")
    return Listed(entries, dict(parse_qsl(urlsplit(following).query)).get("_cursor") if following else None, None)


@dataclass(frozen=True, slots=True)
class Filters:
    severity: str  # "" | error | warning
    table: str
    field: str
    page: int  # from 1

    @classmethod
    def of(cls, params: dict[str, str], tables: list[str]) -> Filters:
        severity = params.get("severity", "")
        table = params.get("table", "")
        field = params.get("field", "")[:40]
        page = params.get("page", "1")
        return cls(
            severity if severity in ("error", "warning") else "", table if table in tables else "",
            field if _FIELD.fullmatch(field) else "", int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
        )  # fmt: skip

    def params(self, page: int | None = None) -> str:
        pairs = [("severity", self.severity), ("table", self.table), ("field", self.field)]
        if page is not None and page > 1:
            pairs.append(("page", str(page)))
        return urlencode([(k, v) for k, v in pairs if v])

    def narrowed(self, table: str, field: str) -> str:
        """The query of the same filters on one table and field (a group's link)."""
        return Filters(self.severity, table, field, 1).params()

    def select(self, findings: list[Finding]) -> list[Finding]:
        return import_report.select(findings, self.severity, self.table, self.field)


def _may_import(console: Console, context: RequestContext) -> bool:
    return console.auth is None or bool(context.roles & ROLES)


def routes(console: Console) -> list[Route]:
    limit = console.services.settings.max_body_bytes

    def listing(request: Request, kept: ConsoleSession | None, context: RequestContext, found: Listed,
                status: int = 200, **values: Any) -> Response:  # fmt: skip
        return console.render(
            request, "imports.html", status, context, user=kept.user if kept else None, listed=found,
            totals_of=import_report.totals_of, may_import=_may_import(console, context),
            limit_mb=f"{limit / 1_048_576:g}", paged="cursor" in request.query_params, **values,
        )  # fmt: skip

    async def index(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        cursor = request.query_params.get("cursor", "")
        reader = console.reader(request, context)
        found = await run_in_threadpool(list_reports, reader, cursor if _CURSOR.fullmatch(cursor) else "")
        return listing(request, kept, context, found)

    async def upload(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        sent = await read_upload(request, limit)
        reader = console.reader(request, context)
        done = Imported()
        if not sent.problem:
            user = (kept.user if kept else None) or context.user or ""
            done = await run_in_threadpool(run_import, reader, sent.files, user, views.chosen_language(request))
        if done.id is not None:
            return RedirectResponse(f"/imports/{done.id}?new=1", status_code=303)
        if done.report is not None and done.kept_problem:  # imported, but not kept: shown once, here
            return report_page(request, kept, context, done.report, None, kept_problem=done.kept_problem)
        found = await run_in_threadpool(list_reports, reader, "")
        # Nothing imported: the reason next to the upload field (each refused file's, or the request's).
        return listing(
            request, kept, context, found, 413 if sent.problem == "imp_too_large" else 400,
            upload_problem=sent.problem, refusal=done.refusal, refused=done.report,
        )  # fmt: skip

    def report_page(request: Request, kept: ConsoleSession | None, context: RequestContext, report: Report,
                    doc: dict[str, Any] | None, **values: Any) -> Response:  # fmt: skip
        filters = Filters.of(dict(request.query_params), report.tables)
        shown = filters.select(report.findings)
        pages = max(1, -(-len(shown) // ROWS))
        page = min(filters.page, pages)
        return console.render(
            request, "imports_report.html", context=context, user=kept.user if kept else None, report=report,
            doc=doc, filters=filters, groups=import_report.groups(shown), rows=shown[(page - 1) * ROWS : page * ROWS],
            shown=len(shown), page=page, pages=pages, new=request.query_params.get("new") == "1", **values,
        )  # fmt: skip

    async def stored(request: Request, context: RequestContext) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The report DocumentReference of the path and its OperationOutcome; None when there is none, it is
        no report, or the caller may not see it (one answer for all three)."""
        reader = console.reader(request, context)
        doc = await run_in_threadpool(reader.read, "DocumentReference", request.path_params["id"])
        outcome = import_report.outcome_of(doc) if doc is not None and import_report.is_report(doc) else None
        return (doc, outcome) if doc is not None and outcome is not None else None

    def not_found(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        user = kept.user if kept else None
        return console.render(request, "message.html", 404, context, message="not_found", user=user)

    async def one(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        found = await stored(request, context)
        if found is None:
            return not_found(request, kept, context)
        return report_page(request, kept, context, import_report.from_outcome(found[1]), found[0])

    async def download(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        found = await stored(request, context)
        if found is None:
            return not_found(request, kept, context)
        doc, outcome = found
        report = import_report.from_outcome(outcome)
        shown = Filters.of(dict(request.query_params), report.tables).select(report.findings)
        name = f"ketnoi-import-{str(doc.get('date') or '')[:10]}-{request.path_params['id'][:8]}.csv"
        headers = {
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        return Response(import_report.to_csv(shown), media_type="text/csv; charset=utf-8", headers=headers)

    return [
        Route("/imports", console.page(index)),
        Route("/imports", console.form(upload), methods=["POST"]),
        Route("/imports/{id}", console.page(one)),
        Route("/imports/{id}/errors.csv", console.page(download)),
    ]
