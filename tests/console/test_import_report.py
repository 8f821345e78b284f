"""The import report as the console reads, groups, filters, writes and keeps it (ketnoi.console.import_report):
pure functions over the OperationOutcome ``$import-xml130`` answers (built here by ketnoi.claims.report)."""

from __future__ import annotations

import csv
import io

from ketnoi.claims.report import CSV_HEADER, FileReport, VisitResult, to_csv, to_outcome
from ketnoi.console import import_report as ir
from ketnoi.console.import_pages import Filters, parameters
from ketnoi.xml130.problems import Problem

BIRTH = Problem("datetime-format", "Thời điểm sai", "bad date-time", "XML1", "LK1", "NGAY_SINH", "19801350")
BIRTH2 = Problem("datetime-format", "Thời điểm sai", "bad date-time", "XML1", "LK2", "NGAY_SINH", "2000")
ICD = Problem("code-format", "Mã ICD sai", "not an ICD code", "XML1", "LK2", "MA_BENH_CHINH", "XYZ")
SEX = Problem("code-unknown", "Mã lạ", "unknown code", "XML1", "LK3", "GIOI_TINH", "=cmd|' /C calc'!A0")
LINE = Problem("too-long", "Quá dài", "too long", "XML2", "LK3", "TEN_THUOC", "x" * 300)


def _reports() -> list[FileReport]:
    one = FileReport("a.xml", "79001")
    one.visits = [
        VisitResult(1, "LK0", "created"),
        VisitResult(2, "LK1", "rejected", [BIRTH]),
        VisitResult(3, "LK2", "rejected", [BIRTH2, ICD]),
        VisitResult(4, "LK3", "updated", [SEX]),
        VisitResult(5, "LK4", "unchanged"),
        VisitResult(6, "LK5", "rejected", [LINE]),
    ]
    refused = FileReport("b.xml", refused=True)
    refused.problems = [Problem("not-xml", "Không phải XML", "not XML")]
    return [one, refused]


def test_the_outcome_reads_back_into_files_and_the_rows_of_the_cli_csv() -> None:
    reports = _reports()
    report = ir.from_outcome(to_outcome(reports))
    assert report.files == [
        ir.FileSummary("a.xml", "79001", 1, 1, 1, 3, False),
        ir.FileSummary("b.xml", "", 0, 0, 0, 0, True),
    ]
    assert report.files[0].visits == 6
    # The same rows, in the same order, as the CLI's --errors CSV.
    cli = list(csv.reader(io.StringIO(to_csv(reports))))
    assert [list(f.row()) for f in report.findings] == cli[1:]
    assert [r.message_vi for r in report.reasons("b.xml")] == ["Không phải XML"]
    assert report.reasons("a.xml") == []
    assert report.totals == ir.Totals(files=2, refused=1, imported=3, rejected=3, errors=5, warnings=1)
    assert report.tables == ["XML1", "XML2"]
    assert report.findings[0].message("en") == "bad date-time" and report.findings[0].message("vi") == "Thời điểm sai"


def test_problems_are_grouped_by_table_and_field_counting_visits() -> None:
    report = ir.from_outcome(to_outcome(_reports()))
    groups = ir.groups(report.findings)
    assert groups[0] == ir.Group("XML1", "NGAY_SINH", visits=2, errors=2, warnings=0)  # most visits first
    assert ir.Group("XML1", "GIOI_TINH", visits=1, errors=0, warnings=1) in groups
    assert ("", "") in {(g.table, g.field) for g in groups}  # the refused file's own problem
    assert [g.table for g in groups if g.visits == 1] == ["XML1", "XML1", "XML2", ""]  # then by table, the file last


def test_filters_keep_what_they_name_and_ignore_what_they_do_not_know() -> None:
    report = ir.from_outcome(to_outcome(_reports()))
    assert [f.field for f in ir.select(report.findings, severity="warning")] == ["GIOI_TINH"]
    assert [f.ma_lk for f in ir.select(report.findings, table="XML1", field="NGAY_SINH")] == ["LK1", "LK2"]
    assert len(ir.select(report.findings)) == len(report.findings)
    filters = Filters.of({"severity": "fatal", "table": "XML99", "field": "<script>", "page": "-1"}, report.tables)
    assert filters == Filters("", "", "", 1) and filters.params() == ""
    kept = Filters.of({"severity": "error", "table": "XML2", "page": "3"}, report.tables)
    assert kept.params(2) == "severity=error&table=XML2&page=2"
    assert kept.narrowed("XML1", "NGAY_SINH") == "severity=error&table=XML1&field=NGAY_SINH"


def test_the_csv_has_a_byte_order_mark_the_cli_columns_and_no_formula() -> None:
    report = ir.from_outcome(to_outcome(_reports()))
    data = ir.to_csv(report.findings)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == CSV_HEADER
    sex = next(r for r in rows if r[4] == "GIOI_TINH")
    assert sex[5] == "'=cmd|' /C calc'!A0"  # shown as text by a spreadsheet, not run
    assert ir._safe(("-12.5", "-x")) == ("-12.5", "'-x")  # a negative number stays a number


def test_a_kept_report_carries_its_outcome_and_counts() -> None:
    outcome = to_outcome(_reports())
    report = ir.from_outcome(outcome)
    doc = ir.document(outcome, report, "qt.a", "2026-12-03T10:00:00+07:00")
    assert ir.is_report(doc)
    assert ir.outcome_of(doc) == outcome
    assert ir.totals_of(doc) == report.totals
    assert doc["description"] == "a.xml, b.xml" and doc["author"] == [{"display": "qt.a"}]
    assert not ir.is_report({"resourceType": "DocumentReference", "type": {"text": "other"}})
    broken = {**doc, "content": [{"attachment": {"contentType": ir.OUTCOME_TYPE, "data": "not base64!"}}]}
    assert ir.outcome_of(broken) is None
    assert ir.totals_of({"resourceType": "DocumentReference"}) == ir.Totals()


def test_a_refused_request_is_said_in_the_ui_language() -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "forbidden", "details": {"text": "Không được phép / Not allowed"}},
        {"severity": "error", "code": "invalid", "diagnostics": "only English"},
    ]}  # fmt: skip
    assert ir.refusal(outcome, "vi") == "Không được phép; only English"
    assert ir.refusal(outcome, "en") == "Not allowed; only English"


def test_the_upload_is_sent_as_file_attachments() -> None:
    sent = parameters([("a.xml", b"<GIAMDINHHS/>")])
    (param,) = sent["parameter"]
    assert param["name"] == "file" and param["valueAttachment"]["title"] == "a.xml"
    assert param["valueAttachment"]["data"] == "PEdJQU1ESU5ISFMvPg=="
