"""What an import did, per visit and per field: the report the CLI prints, ``--errors`` writes as CSV and
``$import-xml130`` answers as an OperationOutcome (every message in Vietnamese and English)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ketnoi.xml130.problems import Problem

# Rules that do not stop a visit: the file's visit count, and codes well shaped but not in a list we hold.
WARNING_RULES = frozenset({"count-mismatch", "code-unknown"})
CSV_HEADER = ("file", "visit", "table", "MA_LK", "field", "value", "rule", "severity", "message_vi", "message_en")
# The report's parts as data on the OperationOutcome's issues, so that a client (the web console) reads
# them without parsing the texts: a file's summary on its information issue, each problem's CSV row (the
# parts named as CSV_HEADER's columns) on its issue. Complex extensions, parts valueString (counts valueInteger).
FILE_EXTENSION = "https://fhir.ketnoi.vn/StructureDefinition/xml130-import-file"
PROBLEM_EXTENSION = "https://fhir.ketnoi.vn/StructureDefinition/xml130-import-problem"
COUNTS = ("created", "updated", "unchanged", "rejected")


def severity(problem: Problem) -> str:
    return "warning" if problem.rule in WARNING_RULES else "error"


@dataclass(slots=True)
class VisitResult:
    """One HOSO: ``created`` / ``updated`` / ``unchanged`` (imported) or ``rejected`` (nothing written)."""

    index: int
    ma_lk: str
    status: str
    problems: list[Problem] = field(default_factory=list)
    written: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class FileReport:
    name: str
    facility: str = ""
    visits: list[VisitResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # the file's own (count, refusal)
    refused: bool = False  # the whole file was refused: nothing of it was written

    def count(self, status: str) -> int:
        return sum(1 for v in self.visits if v.status == status)

    @property
    def imported(self) -> int:
        return sum(1 for v in self.visits if v.status != "rejected")

    @property
    def resources(self) -> int:
        return sum(sum(v.written.values()) for v in self.visits)

    def rows(self) -> list[tuple[str, ...]]:
        """One CSV row per problem: the file's first, then each visit's."""
        found = [_row(self.name, "", p) for p in self.problems]
        for visit in self.visits:
            found.extend(_row(self.name, str(visit.index), p) for p in visit.problems)
        return found


def _row(name: str, visit: str, p: Problem) -> tuple[str, ...]:
    return (name, visit, p.table, p.ma_lk, p.field, p.value, p.rule, severity(p), p.message_vi, p.message_en)


def to_csv(reports: list[FileReport]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for report in reports:
        writer.writerows(report.rows())
    return out.getvalue()


def _where(p: Problem, visit: str) -> str:
    parts = [f"HOSO {visit}" if visit else "", p.table, f"MA_LK={p.ma_lk}" if p.ma_lk else "", p.field]
    return " ".join(x for x in parts if x)


def _parts(url: str, parts: list[tuple[str, str | int | bool]]) -> list[dict[str, Any]]:
    kinds = {str: "valueString", int: "valueInteger", bool: "valueBoolean"}
    # An empty string is no FHIR value: the part is left out (a reader takes it as "").
    values = [{"url": k, kinds[type(v)]: v} for k, v in parts if v != ""]
    return [{"url": url, "extension": values}]


def _issue(p: Problem, visit: str, name: str) -> dict[str, Any]:
    where = _where(p, visit)
    value = f" ('{p.value[:80]}')" if p.value else ""
    issue: dict[str, Any] = {
        "severity": severity(p),
        "code": "invalid" if severity(p) == "error" else "informational",
        "details": {
            "coding": [{"system": "https://fhir.ketnoi.vn/CodeSystem/xml130-rule", "code": p.rule}],
            "text": f"{where}{value}: {p.message_vi} / {p.message_en}",
        },
        "diagnostics": f"{where}{value}: {p.message_en}",
        "extension": _parts(PROBLEM_EXTENSION, list(zip(CSV_HEADER, _row(name, visit, p), strict=True))),
    }
    if where:
        issue["expression"] = [".".join(x for x in (p.table, p.field) if x) or "GIAMDINHHS"]
    return issue


def summary_line(report: FileReport) -> tuple[str, str]:
    """(Vietnamese, English) one-line summary of a file."""
    if report.refused:
        return f"{report.name}: tệp bị từ chối, không ghi gì", f"{report.name}: file refused, nothing written"
    new, updated, same, bad = (report.count(k) for k in ("created", "updated", "unchanged", "rejected"))
    n = len(report.visits)
    vi = f"{report.name}: {n} hồ sơ — mới {new}, cập nhật {updated}, không đổi {same}, lỗi {bad}"
    en = f"{report.name}: {n} visits — created {new}, updated {updated}, unchanged {same}, rejected {bad}"
    return vi, en


def to_outcome(reports: list[FileReport]) -> dict[str, Any]:
    """An OperationOutcome: a summary per file (information), then every problem with where it is."""
    issues: list[dict[str, Any]] = []
    for report in reports:
        vi, en = summary_line(report)
        counts: list[tuple[str, str | int | bool]] = [(k, report.count(k)) for k in COUNTS]
        file = [("file", report.name), ("facility", report.facility), *counts, ("refused", report.refused)]
        issues.append(
            {"severity": "information", "code": "informational", "details": {"text": f"{vi} / {en}"},
             "diagnostics": en, "extension": _parts(FILE_EXTENSION, file)}
        )  # fmt: skip
        issues.extend(_issue(p, "", report.name) for p in report.problems)
        for visit in report.visits:
            issues.extend(_issue(p, str(visit.index), report.name) for p in visit.problems)
    return {"resourceType": "OperationOutcome", "issue": issues}
