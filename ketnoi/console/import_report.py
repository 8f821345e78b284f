"""A claims-XML import's report as the console shows and keeps it (pure: JSON in, data and text out).

``$import-xml130`` answers an OperationOutcome whose issues carry the report as data (the extensions of
:mod:`ketnoi.claims.report`): a summary per file, then each problem's CSV row. Here it is read back into
files and problems, grouped by table and field, filtered, written as CSV for Excel, and wrapped in the
DocumentReference that keeps it (type ``claims-import-report``; ADR 0022 decision 9): the OperationOutcome
verbatim as its attachment, and the counts the list of reports shows as an extension, so that the list
needs no attachment decoded.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Final

import orjson

from ketnoi.claims.report import COUNTS, CSV_HEADER, FILE_EXTENSION, PROBLEM_EXTENSION

REPORT_SYSTEM: Final = "https://fhir.ketnoi.vn/CodeSystem/document-type"
REPORT_CODE: Final = "claims-import-report"
REPORT_TYPE: Final = f"{REPORT_SYSTEM}|{REPORT_CODE}"  # the search that lists them: DocumentReference?type=
TOTALS_EXTENSION: Final = "https://fhir.ketnoi.vn/StructureDefinition/claims-import-totals"
OUTCOME_TYPE: Final = "application/fhir+json"
BOM: Final = "\ufeff"  # Excel takes a CSV without it for the local code page and garbles Vietnamese


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of the report: the columns of ``report.CSV_HEADER``, in that order."""

    file: str
    visit: str
    table: str
    ma_lk: str
    field: str
    value: str
    rule: str
    severity: str  # error | warning
    message_vi: str
    message_en: str

    def row(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, f.name)) for f in fields(self))

    def message(self, lang: str) -> str:
        return self.message_en if lang == "en" else self.message_vi


@dataclass(frozen=True, slots=True)
class FileSummary:
    name: str
    facility: str  # MACSKCB of the envelope ("" when the file was refused before it was read)
    created: int
    updated: int
    unchanged: int
    rejected: int
    refused: bool  # nothing of the file was written; ``reasons`` say why

    @property
    def visits(self) -> int:
        return self.created + self.updated + self.unchanged + self.rejected


@dataclass(frozen=True, slots=True)
class Totals:
    """What the list of reports shows of one: files, visits imported and rejected, problems."""

    files: int = 0
    refused: int = 0  # files refused whole
    imported: int = 0  # visits created, updated or unchanged
    rejected: int = 0
    errors: int = 0
    warnings: int = 0


@dataclass(frozen=True, slots=True)
class Report:
    files: list[FileSummary]
    findings: list[Finding]

    def reasons(self, name: str) -> list[Finding]:
        """The file's own problems (no visit): why it was refused, or its visit count."""
        return [f for f in self.findings if f.file == name and not f.visit]

    @property
    def totals(self) -> Totals:
        return Totals(
            files=len(self.files),
            refused=sum(1 for f in self.files if f.refused),
            imported=sum(f.created + f.updated + f.unchanged for f in self.files),
            rejected=sum(f.rejected for f in self.files),
            errors=sum(1 for f in self.findings if f.severity == "error"),
            warnings=sum(1 for f in self.findings if f.severity == "warning"),
        )

    @property
    def tables(self) -> list[str]:
        """The tables problems were found in, for the filter (XML2 before XML10)."""
        return sorted({f.table for f in self.findings if f.table}, key=_table_order)


@dataclass(frozen=True, slots=True)
class Group:
    """The problems of one table and field: how many visits have one, and how many are errors."""

    table: str
    field: str
    visits: int
    errors: int
    warnings: int


# ---- reading the operation's answer ----------------------------------------------------------------
def _parts(issue: dict[str, Any], url: str) -> dict[str, Any] | None:
    for ext in issue.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            found: dict[str, Any] = {}
            for part in ext.get("extension") or ():
                if isinstance(part, dict) and isinstance(part.get("url"), str):
                    value = next((v for k, v in part.items() if k.startswith("value")), None)
                    found[part["url"]] = value
            return found
    return None


def _count(parts: dict[str, Any], name: str) -> int:
    value = parts.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def from_outcome(outcome: dict[str, Any]) -> Report:
    """The report an ``$import-xml130`` OperationOutcome carries (issues without its data are skipped)."""
    files: list[FileSummary] = []
    findings: list[Finding] = []
    for issue in outcome.get("issue") or ():
        if not isinstance(issue, dict):
            continue
        summary = _parts(issue, FILE_EXTENSION)
        if summary is not None:
            created, updated, unchanged, rejected = (_count(summary, k) for k in COUNTS)
            files.append(
                FileSummary(
                    str(summary.get("file") or ""), str(summary.get("facility") or ""),
                    created, updated, unchanged, rejected, summary.get("refused") is True,
                )
            )  # fmt: skip
            continue
        problem = _parts(issue, PROBLEM_EXTENSION)
        if problem is not None:
            findings.append(Finding(*(str(problem.get(column) or "") for column in CSV_HEADER)))
    return Report(files, findings)


def refusal(outcome: dict[str, Any], lang: str) -> str:
    """Why a request was refused before any file was read (a missing or broken body, no right to
    import, too large): the OperationOutcome's text in ``lang`` (the server writes "vi / en")."""
    texts = []
    for issue in outcome.get("issue") or ():
        if not isinstance(issue, dict):
            continue
        text = str((issue.get("details") or {}).get("text") or "")
        vi, sep, en = text.partition(" / ")
        texts.append((en if lang == "en" else vi) if sep else text or str(issue.get("diagnostics") or ""))
    return "; ".join(t for t in texts if t)


# ---- what the report page shows -------------------------------------------------------------------
def _table_order(table: str) -> tuple[int, str]:
    digits = table.removeprefix("XML")
    return (int(digits), table) if digits.isdigit() else (999, table)


def groups(findings: Iterable[Finding]) -> list[Group]:
    """Problems by table and field, most visits first ("XML1 · NGAY_SINH: 12 visits")."""
    visits: dict[tuple[str, str], set[tuple[str, str]]] = {}
    errors: dict[tuple[str, str], int] = {}
    warnings: dict[tuple[str, str], int] = {}
    for f in findings:
        key = (f.table, f.field)
        visits.setdefault(key, set()).add((f.file, f.visit or f.ma_lk))
        errors[key] = errors.get(key, 0) + (f.severity == "error")
        warnings[key] = warnings.get(key, 0) + (f.severity != "error")
    found = [Group(t, fld, len(v), errors[(t, fld)], warnings[(t, fld)]) for (t, fld), v in visits.items()]
    return sorted(found, key=lambda g: (-g.visits, _table_order(g.table), g.field))


def select(findings: Iterable[Finding], severity: str = "", table: str = "", field: str = "") -> list[Finding]:
    """The findings a filter keeps (an empty filter keeps all)."""
    wanted = {"severity": severity, "table": table, "field": field}
    return [f for f in findings if all(not v or getattr(f, k) == v for k, v in wanted.items())]


def to_csv(findings: Iterable[Finding]) -> bytes:
    """UTF-8 with a byte-order mark (Excel then reads Vietnamese), the columns of ``report.CSV_HEADER``."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(_safe(f.row()) for f in findings)
    return out.getvalue().encode("utf-8")


def _safe(row: tuple[str, ...]) -> tuple[str, ...]:
    """A value a spreadsheet would run as a formula (``=HYPERLINK(...)`` in a hospital's field) is
    written as text: a leading apostrophe, which Excel shows as nothing."""
    return tuple(f"'{v}" if v[:1] in ("=", "+", "-", "@") and not _number(v) else v for v in row)


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


# ---- keeping it: a DocumentReference -------------------------------------------------------------
def document(outcome: dict[str, Any], report: Report, user: str, now: str) -> dict[str, Any]:
    """The DocumentReference that keeps the report: its owner is the importing organization, which the
    server records from the caller (never from the body). ``now``: an instant."""
    totals = report.totals
    names = ", ".join(f.name for f in report.files)
    data = base64.b64encode(orjson.dumps(outcome)).decode("ascii")
    return {
        "resourceType": "DocumentReference",
        "extension": [
            {"url": TOTALS_EXTENSION, "extension": [
                {"url": f.name, "valueInteger": getattr(totals, f.name)} for f in fields(totals)
            ]}
        ],
        "status": "current",
        "type": {
            "coding": [{"system": REPORT_SYSTEM, "code": REPORT_CODE, "display": "Claims XML import report"}],
            "text": "Báo cáo nhập hồ sơ XML 130",
        },
        "date": now,
        "author": [{"display": user}] if user else [],
        "description": names[:1000],
        "content": [
            {"attachment": {"contentType": OUTCOME_TYPE, "data": data, "title": "report.json", "creation": now}}
        ],
    }  # fmt: skip


def is_report(resource: dict[str, Any]) -> bool:
    codings = (resource.get("type") or {}).get("coding") or ()
    wanted = (REPORT_SYSTEM, REPORT_CODE)
    return any(isinstance(c, dict) and (c.get("system"), c.get("code")) == wanted for c in codings)


def outcome_of(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The OperationOutcome a report DocumentReference keeps; None when it has none readable."""
    for content in resource.get("content") or ():
        attachment = (content or {}).get("attachment") or {}
        if attachment.get("contentType") != OUTCOME_TYPE or not isinstance(attachment.get("data"), str):
            continue
        try:
            outcome = orjson.loads(base64.b64decode(attachment["data"], validate=True))
        except (binascii.Error, ValueError):
            return None
        return outcome if isinstance(outcome, dict) and outcome.get("resourceType") == "OperationOutcome" else None
    return None


def totals_of(resource: dict[str, Any]) -> Totals:
    """The counts a report DocumentReference carries (zeros for a part it lacks)."""
    parts = _parts(resource, TOTALS_EXTENSION) or {}
    return Totals(**{f.name: _count(parts, f.name) for f in fields(Totals)})
