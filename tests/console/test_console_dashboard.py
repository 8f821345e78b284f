"""The dashboard (``/dashboard``, ``/dashboard.csv``) in a real browser with sign-in on: a provincial
manager sees the counts of the province's facilities (and not another province's), filters by facility,
downloads the CSV; a clinician has no dashboard. And the pure functions of ``ketnoi.console.dashboard``."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from ketnoi import console
from ketnoi.console import dashboard, i18n, records
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.organizations import LEVEL_SYSTEM
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from tests.conftest import LiveServer, _free_port
from tests.console.conftest import axe_violations
from tests.console.test_console import CHEAP, PASSWORD, V3_ACT, Site, _allow, _put

YEAR = date.today().year
ICD10 = "http://hl7.org/fhir/sid/icd-10"
CVX = "http://hl7.org/fhir/sid/cvx"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
# Visits per facility and month: F1 and F2 are in province P; F3 in Q, which P's manager must not count.
VISITS = {"F1": {1: 2, 2: 1, 3: 3}, "F2": {1: 1, 3: 1}, "F3": {1: 5}}


def _org(id: str, name: str, part_of: str | None = None, level: str | None = None) -> dict[str, Any]:
    org: dict[str, Any] = {"resourceType": "Organization", "id": id, "name": name}
    if part_of:
        org["partOf"] = {"reference": f"Organization/{part_of}"}
    if level:
        org["type"] = [{"coding": [{"system": LEVEL_SYSTEM, "code": level}]}]
    return org


def _condition(id: str, patient: str, encounter: str, code: str, month: int) -> dict[str, Any]:
    return {
        "resourceType": "Condition", "id": id, "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter}"}, "recordedDate": f"{YEAR}-{month:02d}-15",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "code": {"coding": [{"system": ICD10, "code": code}]},
    }  # fmt: skip


def _immunization(id: str, patient: str, cvx: str, location: str, month: int) -> dict[str, Any]:
    return {
        "resourceType": "Immunization", "id": id, "status": "completed", "patient": {"reference": f"Patient/{patient}"},
        "vaccineCode": {"coding": [{"system": CVX, "code": cvx}]}, "occurrenceDateTime": f"{YEAR}-{month:02d}-10",
        "location": {"reference": f"Location/{location}"},
    }  # fmt: skip


def _seed(services: Services) -> None:
    for org in (
        _org("P", "Sở Y tế tỉnh Hà Giang", level="province"), _org("Q", "Sở Y tế tỉnh Cao Bằng", level="province"),
        _org("F1", "Trạm Y tế xã Tân Lập", "P"), _org("F2", "Trạm Y tế xã Hòa Bình", "P"),
        _org("F3", "Trạm Y tế xã Bảo Lạc", "Q"),
    ):  # fmt: skip
        _put(services, org)
    for fac in VISITS:
        location = {"resourceType": "Location", "id": f"L{fac}", "name": f"Điểm tiêm {fac}",
                    "managingOrganization": {"reference": f"Organization/{fac}"}}  # fmt: skip
        _put(services, location)
        owner = f"Organization/{fac}"
        # Two children born this year at F1, one at F2 (and one in Q): the cohort of the birth doses.
        for n in range(2 if fac == "F1" else 1):
            child = {"resourceType": "Patient", "id": f"tre-{fac}-{n}", "birthDate": f"{YEAR}-01-0{n + 1}"}
            _put(services, child, owner)
        for month, visits in VISITS[fac].items():
            for n in range(visits):
                encounter = {
                    "resourceType": "Encounter", "id": f"e-{fac}-{month}-{n}", "status": "finished",
                    "class": {"system": V3_ACT, "code": "AMB"}, "subject": {"reference": f"Patient/tre-{fac}-0"},
                    "period": {"start": f"{YEAR}-{month:02d}-{n + 10}T09:00:00+07:00"},
                    "serviceProvider": {"reference": owner},
                }  # fmt: skip
                _put(services, encounter, owner)
    f1, f2 = "Organization/F1", "Organization/F2"
    _put(services, _condition("tha", "tre-F1-0", "e-F1-1-0", "I10", 1), f1)
    _put(services, _condition("dtd", "tre-F1-1", "e-F1-1-1", "E11.9", 1), f1)
    _put(services, _condition("hh1", "tre-F2-0", "e-F2-1-0", "J06.9", 1), f2)
    _put(services, _condition("hh2", "tre-F2-0", "e-F2-3-0", "J06.9", 3), f2)
    _put(services, _condition("hh3", "tre-F3-0", "e-F3-1-0", "J06.9", 1), "Organization/F3")  # in Q
    _put(services, _immunization("vgb1", "tre-F1-0", "08", "LF1", 1), f1)
    _put(services, _immunization("vgb2", "tre-F1-1", "08", "LF1", 1), f1)
    _put(services, _immunization("bcg1", "tre-F2-0", "19", "LF2", 1), f2)
    accounts = Accounts(services.store, hasher=CHEAP)
    accounts.add("sotyte.hg", PASSWORD, "provincial", organization="Organization/P", now=time.time())
    accounts.add("bacsi.tl", PASSWORD, "clinician", organization=f1, now=time.time())


@pytest.fixture
def site(fresh_services: Services) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    port = _free_port()
    services = fresh_services
    services.settings = services.settings.with_(auth="on", base_url=f"http://127.0.0.1:{port}/fhir")
    _seed(services)
    with LiveServer(console.mount(create_app(services), services), port=port):
        yield Site(f"http://127.0.0.1:{port}", services)


def _sign_in(page: Page, site: Site, user: str, path: str) -> None:
    page.goto(site.root + path)
    expect(page).to_have_url(re.compile(r"/auth/authorize"))
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    _allow(page)


def _cells(table: Locator) -> dict[str, list[str]]:
    """The table's rows: the row header's text → the other cells' texts."""
    out: dict[str, list[str]] = {}
    for row in table.locator("tbody tr").all():
        out[row.locator("th").inner_text().strip()] = [c.strip() for c in row.locator("td").all_inner_texts()]
    return out


def _month(month: int) -> str:
    return f"{month:02d}/{YEAR}"


def test_a_provincial_manager_sees_the_province_counts_filters_and_downloads(page: Page, site: Site) -> None:
    _sign_in(page, site, "sotyte.hg", "/dashboard")
    expect(page).to_have_url(site.root + "/dashboard")
    expect(page.locator("h1")).to_have_text("Bảng chỉ số hoạt động y tế")
    expect(page.locator("nav a[href='/dashboard']")).to_have_attribute("aria-current", "page")
    visits = _cells(page.locator("#t-visits"))
    # F1 and F2 (province P): January 2 + 1, February 1, March 3 + 1; F3's five (province Q) are not counted.
    assert {k: v[0] for k, v in visits.items() if v[0] != "0"} == {_month(1): "3", _month(2): "1", _month(3): "4"}
    assert len(visits) == 12
    expect(page.locator("#t-visits tfoot td")).to_have_text("8")
    diagnoses = _cells(page.locator("#t-diagnoses"))
    assert diagnoses["Nhiễm khuẩn hô hấp cấp"][-1] == "2"  # the province's two; Q's third is not counted
    assert diagnoses["Tăng huyết áp"] == ["I10*", "1"]
    assert next(iter(diagnoses)) == "Nhiễm khuẩn hô hấp cấp"  # the commonest first
    doses = _cells(page.locator("#t-immunizations"))
    # Two birth doses of hepatitis B for three children born this year in P: 66.7 % of the year's plan.
    assert doses["Viêm gan B sơ sinh"] == ["CVX 08", "2", "3,0", "66,7 %"]
    assert doses["Lao (BCG)"][1] == "1"
    assert _cells(page.locator("#t-cohorts"))[str(YEAR)] == ["3"]
    registers = _cells(page.locator("#t-registers"))
    assert registers["Tăng huyết áp"][-1] == "1" and registers["Đái tháo đường type 2"][-1] == "1"
    expect(page.locator("section[aria-labelledby=s-visits] .chart canvas")).to_have_count(1)
    expect(page.locator("section[aria-labelledby=s-diagnoses] svg.bars rect")).to_have_count(12)
    assert not axe_violations(page)

    page.select_option("#f-facility", label="Trạm Y tế xã Tân Lập")
    page.select_option("#f-to", "6")
    page.click("form.dash-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"facility=Organization%2FF1"))
    visits = _cells(page.locator("#t-visits"))
    assert {k: v[0] for k, v in visits.items()} == {
        _month(1): "2",
        _month(2): "1",
        _month(3): "3",
        _month(4): "0",
        _month(5): "0",
        _month(6): "0",
    }
    diagnoses = _cells(page.locator("#t-diagnoses"))
    assert diagnoses["Nhiễm khuẩn hô hấp cấp"][-1] == "0" and diagnoses["Tăng huyết áp"][-1] == "1"
    doses = _cells(page.locator("#t-immunizations"))
    assert doses["Viêm gan B sơ sinh"] == ["CVX 08", "2", "—", "—"] and doses["Lao (BCG)"][1] == "0"
    expect(page.locator("#t-cohorts")).to_have_count(0)  # no coverage for one facility: said instead
    expect(page.locator("section[aria-labelledby=s-immunizations]")).to_contain_text("Chưa tính được tỷ lệ")
    assert not axe_violations(page)

    with page.expect_download() as info:
        page.click("text=Tải về bảng tính (CSV)")
    download = info.value
    assert download.suggested_filename == f"ketnoi-dashboard-{YEAR}-01-06.csv"
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the Vietnamese right
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["indicator", "label", "period", "value"]
    assert ["visits", _month(1), f"{YEAR}-01", "2"] in rows
    assert ["visits", _month(3), f"{YEAR}-03", "3"] in rows
    assert ["immunization_doses", "Viêm gan B sơ sinh", f"{YEAR}-01/{YEAR}-06", "2"] in rows
    assert ["diagnosis_group", "Tăng huyết áp", f"{YEAR}-01/{YEAR}-06", "1"] in rows
    assert ["chronic_register_active", "Đái tháo đường type 2", date.today().isoformat(), "1"] in rows
    assert len([r for r in rows if r[0] == "visits"]) == 6


def test_a_clinician_has_no_dashboard(page: Page, site: Site) -> None:
    _sign_in(page, site, "bacsi.tl", "/")
    expect(page.locator("header")).to_contain_text("bacsi.tl")
    expect(page.locator("nav")).not_to_contain_text("Chỉ số")
    assert page.locator("nav a[href='/dashboard']").count() == 0
    response = page.goto(site.root + "/dashboard")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Trang chỉ số dành cho quản trị viên và cán bộ quản lý.")
    assert page.request.get(site.root + "/dashboard.csv").status == 403


# ---- the pure functions -------------------------------------------------------------------------------


def test_filters_take_defaults_for_what_is_missing_or_wrong() -> None:
    today = date(2026, 12, 3)
    assert dashboard.parse_filters({}, today) == (dashboard.Filters(2026), [])
    found = dashboard.parse_filters({"year": "2025", "from": "3", "to": "5", "facility": "Organization/F1"}, today)
    assert found == (dashboard.Filters(2025, 3, 5, "Organization/F1"), [])
    wrong = dashboard.parse_filters({"year": "20x5", "from": "9", "to": "2", "facility": "Patient/1"}, today)
    assert wrong == (dashboard.Filters(2026), ["bad_year", "bad_months", "bad_facility"])
    assert dashboard.parse_filters({"from": "13"}, today)[1] == ["bad_months"]


def test_the_plan_is_bounded_and_asks_each_month_in_vietnam_time() -> None:
    searches = dashboard.plan(dashboard.Filters(2026, 12, 12, "Organization/F1"))
    visits = [s for s in searches if s.indicator == "visits"]
    assert len(visits) == 1
    assert ("date", "sa2026-11-30T23:59:59+07:00") in visits[0].query  # starts on 1 December or later
    assert ("date", "lt2027-01-01T00:00:00+07:00") in visits[0].query
    assert ("service-provider", "Organization/F1") in visits[0].query
    assert not [s for s in searches if s.indicator == "cohort"]  # not per facility
    assert dashboard.most_searches() == len(dashboard.plan(dashboard.Filters(2026))) <= 50
    assert dashboard.expand(["E11", "B18.1"]) == ["E11", *(f"E11.{d}" for d in range(10)), "B18.1"]


def test_coverage_divides_the_doses_by_the_cohort_and_the_part_of_the_year() -> None:
    filters = dashboard.Filters(2026, 1, 6)
    searches = dashboard.plan(filters)
    totals: list[int | None] = []
    for s in searches:
        if s.indicator == "cohort":
            totals.append(100 if s.key == "2026" else 80)
        elif s.key in ("vx_penta", "vx_mr"):
            totals.append(120)
        else:
            totals.append(None if s.key == "vx_bcg" else 0)
    found = dashboard.assemble(filters, searches, totals, i18n.translator("en"), date(2026, 7, 1))
    rows = {r.key: r for r in found.immunizations}
    assert (rows["vx_penta"].expected, rows["vx_penta"].coverage) == (150.0, 80.0)  # 100 children × 3 doses × ½
    assert (rows["vx_mr"].expected, rows["vx_mr"].coverage) == (40.0, 300.0)  # last year's 80 children × ½
    assert rows["vx_bcg"].value is None and rows["vx_bcg"].coverage is None  # refused: no number made up
    text = dashboard.csv_text(dashboard.csv_rows(found))
    assert text.startswith("\ufeffindicator,label,period,value\r\n")
    assert "immunization_coverage_percent,5-in-1 (diphtheria, pertussis, tetanus, hepatitis B, Hib)" not in text
    assert '"5-in-1 (diphtheria, pertussis, tetanus, hepatitis B, Hib)",2026-01/2026-06,80.0' in text


def test_numbers_are_written_the_language_s_way_and_csv_cells_are_not_formulas() -> None:
    assert dashboard.number(12345, "vi") == "12.345" and dashboard.number(12345, "en") == "12,345"
    assert dashboard.number(85.25, "vi") == "85,2" and dashboard.number(None, "en") == "—"
    text = dashboard.csv_text([("visits", '=HYPERLINK("x")', "2026-01", "-3")])
    assert "'=HYPERLINK" in text and text.endswith(",-3\r\n")


def test_the_period_s_edges_in_vietnam_time_and_an_open_visit_counted_once(fresh_services: Services) -> None:
    """Through the FHIR interactions: a dose on 31 December of the year before is not this year's, one on
    1 January and one on 31 December are; a visit without an end counts in the month it started only."""
    for day in ("2025-12-31", "2026-01-01", "2026-12-31", "2027-01-01"):
        _put(fresh_services, {**_immunization(f"d{day}", "x", "08", "L", 1), "occurrenceDateTime": day})
    _put(fresh_services, {
        "resourceType": "Encounter", "id": "open", "status": "in-progress", "class": {"system": V3_ACT, "code": "AMB"},
        "period": {"start": "2026-03-01T00:30:00+07:00"},  # 28 February in UTC, 1 March in Vietnam
    })  # fmt: skip
    reader = records.Reader(fresh_services, RequestContext.operator("test"), "http://x/fhir")
    searches = dashboard.plan(dashboard.Filters(2026))
    totals = {(s.indicator, s.key): reader.count(s.rtype, list(s.query)).total for s in searches}
    assert totals[("doses", "vx_hepb")] == 2
    assert [totals[("visits", str(m))] for m in range(1, 13)] == [0, 0, 1] + [0] * 9
