"""Claims-XML imports in a real browser: a facility's administrator uploads an envelope with broken fields,
reads the report (summary, problems by field, each problem in the UI language), filters it, downloads the
CSV and finds the report again later; a file that is not XML is refused next to the upload field; another
facility's administrator never sees the report, a national administrator does."""

from __future__ import annotations

import copy
import csv
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Page, expect

from ketnoi import console
from ketnoi.auth.scopes import parse_scopes
from ketnoi.auth.totp import current_code
from ketnoi.claims import systems as s
from ketnoi.claims.report import CSV_HEADER
from ketnoi.console import import_pages, records
from ketnoi.demo.xml130 import iter_visits
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from ketnoi.xml130.writer import envelope_bytes
from tests.conftest import LiveServer, _free_port
from tests.console.conftest import axe_violations

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "mật-khẩu-đủ-dài-2026"
OPERATOR = RequestContext.operator("test")
LIMIT = 1024 * 1024  # the server's body limit in these tests (1 MB), so that a too-large upload is cheap to make


@dataclass
class Site:
    root: str
    services: Services
    secrets: dict[str, str]  # user -> TOTP secret
    facility: str  # MACSKCB of facility A
    envelope: bytes  # facility A's: three visits, the second with a broken birth date, the third a broken ICD code
    ma_lk: list[str]


def _organization(services: Services, id: str, code: str, name: str) -> None:
    body = {"resourceType": "Organization", "id": id, "name": name,
            "identifier": [{"system": s.FACILITY_SYSTEM, "value": code}]}  # fmt: skip
    headers = {"content-type": "application/fhir+json"}
    answer = handle(services, FhirRequest("PUT", f"Organization/{id}", [], headers, body, "http://x/fhir", OPERATOR))
    assert answer.status in (200, 201), answer.resource


def _broken_envelope() -> tuple[str, bytes, list[str]]:
    """Three visits of one demo facility: as generated, with NGAY_SINH 13th month, with an ICD code that is none."""
    by: dict[str, list[dict[str, Any]]] = {}
    for facility, tables in iter_visits(30, 11):
        by.setdefault(facility, []).append(tables)
    facility = max(by, key=lambda f: len(by[f]))
    good, date, icd = (copy.deepcopy(t) for t in by[facility][:3])
    date["XML1"][0]["NGAY_SINH"] = "19801350"
    icd["XML1"][0]["MA_BENH_CHINH"] = "XYZ"
    visits = [good, date, icd]
    return facility, envelope_bytes(facility, visits, created="202611300800"), [v["XML1"][0]["MA_LK"] for v in visits]


@pytest.fixture
def site(fresh_services: Services) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    port = _free_port()
    services = fresh_services
    services.settings = services.settings.with_(
        auth="on", base_url=f"http://127.0.0.1:{port}/fhir", max_body_bytes=LIMIT
    )
    facility, envelope, ma_lk = _broken_envelope()
    assert len(envelope) < LIMIT
    _organization(services, "bv-a", facility, "Bệnh viện A")
    _organization(services, "bv-b", "99999", "Bệnh viện B")
    accounts = Accounts(services.store, hasher=CHEAP)
    secrets = {}
    for user, role, org in (("qt.a", "facility-admin", "Organization/bv-a"),
                            ("qt.b", "facility-admin", "Organization/bv-b"), ("quantri", "admin", None)):  # fmt: skip
        _, secret = accounts.add(user, PASSWORD, role, organization=org, now=time.time())
        assert secret is not None
        secrets[user] = secret
    with LiveServer(console.mount(create_app(services), services), port=port):
        yield Site(f"http://127.0.0.1:{port}", services, secrets, facility, envelope, ma_lk)


def _sign_in(page: Page, site: Site, user: str, path: str = "/imports") -> None:
    page.goto(site.root + path)
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.fill("#totp", current_code(site.secrets[user], time.time()))
    page.click("button[type=submit]")
    page.click("button[name=decision][value=allow]")
    expect(page).to_have_url(site.root + path)


def _facility_a(site: Site) -> records.Reader:
    """Facility A's administrator as the console's pages call the API (the same context a token gives)."""
    context = RequestContext(
        authenticated=True, user="qt.a", scopes=parse_scopes("user/*.cruds patient/*.cruds"),
        organization="Organization/bv-a", roles=frozenset({"facility-admin"}),
    )  # fmt: skip
    return records.Reader(site.services, context, site.root + "/fhir")


def test_a_facility_uploads_reads_the_report_by_field_downloads_it_and_finds_it_again(
    page: Page, site: Site, tmp_path: Path
) -> None:
    _sign_in(page, site, "qt.a")
    expect(page.locator("nav")).to_contain_text("Nhập hồ sơ XML")
    expect(page.locator("main")).to_contain_text("Chưa có lần nhập nào")
    assert not axe_violations(page)

    upload = tmp_path / "bv-a-ngay-30.xml"
    upload.write_bytes(site.envelope)
    page.set_input_files("#files", str(upload))
    page.click("form.upload button[type=submit]")
    expect(page).to_have_url(re.compile(r"/imports/[^/?]+\?new=1$"))
    report_url = page.url.split("?")[0]
    expect(page.locator("[role=status]")).to_contain_text("Đã nhập xong")
    summary = page.locator("section[aria-labelledby=summary-title] tbody tr")
    expect(summary).to_have_count(1)
    # file, facility, visits, created, updated, unchanged, rejected
    expect(summary.locator("th, td")).to_have_text(["bv-a-ngay-30.xml", site.facility, "3", "1", "0", "0", "2"])
    groups = page.locator("ul.groups li")
    expect(groups.filter(has_text="XML1 · NGAY_SINH")).to_contain_text("1 hồ sơ")
    expect(groups.filter(has_text="XML1 · MA_BENH_CHINH")).to_contain_text("1 hồ sơ")
    rows = page.locator("table.problems tbody tr")
    birth = rows.filter(has_text="NGAY_SINH")
    expect(birth).to_contain_text("Thời điểm phải có dạng yyyyMMddHHmm")  # the Vietnamese message
    expect(birth).to_contain_text(site.ma_lk[1])
    expect(birth).to_contain_text("19801350")
    expect(birth.locator(".badge")).to_have_text("✖ Lỗi")  # the severity in words, not colour alone
    expect(rows.filter(has_text="MA_BENH_CHINH")).to_contain_text("XYZ")
    assert not axe_violations(page)

    # The CSV: UTF-8 with a byte-order mark, the columns of the CLI's report, every problem.
    with page.expect_download() as caught:
        page.click("a.download")
    data = Path(caught.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(table[0]) == CSV_HEADER
    by_field = {row[4]: dict(zip(CSV_HEADER, row, strict=True)) for row in table[1:]}
    assert by_field["NGAY_SINH"]["value"] == "19801350" and by_field["NGAY_SINH"]["MA_LK"] == site.ma_lk[1]
    assert by_field["NGAY_SINH"]["visit"] == "2" and by_field["NGAY_SINH"]["severity"] == "error"
    assert "yyyyMMddHHmm" in by_field["NGAY_SINH"]["message_vi"] and by_field["NGAY_SINH"]["message_en"]
    assert by_field["MA_BENH_CHINH"]["value"] == "XYZ" and by_field["MA_BENH_CHINH"]["file"] == "bv-a-ngay-30.xml"

    # One field alone (the group's link), then the filters.
    groups.filter(has_text="NGAY_SINH").locator("a").click()
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("NGAY_SINH")
    page.click("text=Bỏ lọc")
    page.select_option("#severity", "warning")
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(sum(1 for row in table[1:] if row[7] == "warning"))
    assert all("⚠ Cảnh báo" in text for text in rows.all_inner_texts())
    page.select_option("#severity", "error")
    page.select_option("#table", "XML1")
    page.click("form.filters button[type=submit]")
    expect(rows.filter(has_text="NGAY_SINH")).to_have_count(1)
    expect(rows.filter(has_text="MA_BENH_CHINH")).to_have_count(1)
    assert not axe_violations(page)

    # In English: the same problem, the English message.
    page.goto(report_url)
    page.click("a[lang=en]")
    expect(page.locator("h1")).to_contain_text("Import report")
    expect(rows.filter(has_text="NGAY_SINH")).to_contain_text("date-time must be yyyyMMddHHmm")
    expect(rows.filter(has_text="NGAY_SINH").locator(".badge")).to_have_text("✖ Error")
    assert not axe_violations(page)

    # Later: the list of imports has it, with its counts; it opens the same report.
    page.goto(site.root + "/imports")
    listed = page.locator("section[aria-labelledby=reports-title] tbody tr")
    expect(listed).to_have_count(1)
    expect(listed.locator("td")).to_contain_text(["qt.a", "bv-a-ngay-30.xml", "1", "2"])
    assert not axe_violations(page)
    listed.locator("a").click()
    expect(page).to_have_url(report_url)


def test_a_file_that_is_not_xml_is_refused_next_to_the_upload_field(page: Page, site: Site, tmp_path: Path) -> None:
    _sign_in(page, site, "qt.a")
    notes = tmp_path / "ghi-chu.xml"
    notes.write_text("Danh sách bệnh nhân tháng 11, không phải XML", encoding="utf-8")
    page.set_input_files("#files", str(notes))
    page.click("form.upload button[type=submit]")
    error = page.locator("#files-error")
    expect(error).to_contain_text("Không nhập được gì")
    expect(error).to_contain_text("ghi-chu.xml")
    expect(error).to_contain_text("không phải XML hợp lệ")
    expect(page.locator("#files")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("main")).to_contain_text("Chưa có lần nhập nào")  # nothing imported, no report kept
    assert not axe_violations(page)

    big = tmp_path / "qua-lon.xml"
    big.write_bytes(b"<GIAMDINHHS>" + b" " * (LIMIT + 1) + b"</GIAMDINHHS>")
    page.set_input_files("#files", str(big))
    page.click("form.upload button[type=submit]")
    expect(error).to_contain_text("lớn hơn giới hạn 1 MB")
    assert not axe_violations(page)


def test_another_facility_does_not_see_the_report_and_a_national_administrator_does(
    browser: Browser, page: Page, site: Site
) -> None:
    done = import_pages.run_import(_facility_a(site), [("a.xml", site.envelope)], "qt.a", "vi")
    assert done.id is not None and done.report is not None
    report = f"/imports/{done.id}"

    _sign_in(page, site, "qt.b")
    expect(page.locator("main")).to_contain_text("Chưa có lần nhập nào")
    page.goto(site.root + report)
    expect(page.locator("main")).to_contain_text("Không tìm thấy")
    assert page.request.get(site.root + report + "/errors.csv").status == 404

    national = browser.new_context(locale="vi-VN")
    try:
        other = national.new_page()
        _sign_in(other, site, "quantri")
        expect(other.locator("section[aria-labelledby=reports-title] tbody tr")).to_have_count(1)
        other.goto(site.root + report)
        expect(other.locator("table.problems")).to_contain_text("NGAY_SINH")
        assert not axe_violations(other)
    finally:
        national.close()


@pytest.mark.parametrize("fresh_services", ["sqlite", "postgres"], indirect=True)
def test_reports_are_kept_for_the_importing_facility_on_both_backends(fresh_services: Services) -> None:
    """Without a browser, on both backends: the kept report is found by its facility and by a national
    administrator, newest first, and neither listed nor read for another facility."""
    facility, envelope, _ = _broken_envelope()
    _organization(fresh_services, "bv-a", facility, "Bệnh viện A")
    _organization(fresh_services, "bv-b", "99999", "Bệnh viện B")

    def reader(org: str | None, role: str) -> records.Reader:
        context = RequestContext(
            authenticated=True, user=role, scopes=parse_scopes("user/*.cruds patient/*.cruds"),
            organization=org, roles=frozenset({role}),
        )  # fmt: skip
        return records.Reader(fresh_services, context, "http://x/fhir")

    a, b = reader("Organization/bv-a", "facility-admin"), reader("Organization/bv-b", "facility-admin")
    first = import_pages.run_import(a, [("a.xml", envelope)], "qt.a", "vi")
    again = import_pages.run_import(a, [("a.xml", envelope)], "qt.a", "en")  # the same file: unchanged
    assert first.id and again.id and again.report is not None
    assert [(f.created, f.unchanged, f.rejected) for f in again.report.files] == [(0, 1, 2)]
    national = reader(None, "admin")
    for who, seen in ((a, [again.id, first.id]), (national, [again.id, first.id]), (b, [])):
        listed = import_pages.list_reports(who, "")
        assert listed.problem is None and [d["id"] for d in listed.reports] == seen
    assert b.read("DocumentReference", first.id) is None
    refused = import_pages.run_import(b, [("a.xml", envelope)], "qt.b", "vi")  # facility A's file
    assert refused.id is not None and refused.report is not None  # kept: its visits were refused one by one
    assert {f.rule for f in refused.report.findings} >= {"forbidden"}


def test_the_list_of_reports_is_paged_newest_first(fresh_services: Services) -> None:
    from ketnoi.claims.report import FileReport, to_outcome
    from ketnoi.console import import_report

    _organization(fresh_services, "bv-a", "25001", "Bệnh viện A")
    a = _facility_a(Site("http://x", fresh_services, {}, "25001", b"", []))
    for n in range(import_pages.PAGE + 1):
        outcome = to_outcome([FileReport(f"{n:02d}.xml", "25001")])
        doc = import_report.document(
            outcome, import_report.from_outcome(outcome), "qt.a", f"2026-12-{n + 1:02d}T08:00:00+07:00"
        )
        assert a.write("POST", "DocumentReference", doc).ok
    first = import_pages.list_reports(a, "")
    assert [d["description"] for d in first.reports] == [f"{n:02d}.xml" for n in range(20, 0, -1)]
    assert first.cursor is not None
    second = import_pages.list_reports(a, first.cursor)
    assert [d["description"] for d in second.reports] == ["00.xml"] and second.cursor is None
