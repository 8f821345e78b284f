"""The console's audit viewer and patient portal in a real browser (ADR 0026), sign-in on: an administrator
(with TOTP) reads and filters the audit log, a patient sees a clinician's break-the-glass with its reason,
denies a facility (whose clinician then no longer sees the record) and withdraws it again; a form posted
from another site is refused; no serious accessibility violation on any page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Page, expect

from ketnoi import console
from ketnoi.auth.scopes import parse_scopes
from ketnoi.auth.totp import current_code
from ketnoi.console import audit_pages, audit_view, consent_view, i18n
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from tests.conftest import LiveServer, _free_port
from tests.console.conftest import axe_violations

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "mật-khẩu-đủ-dài-2026"
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
REASON = "Ngừng tuần hoàn, cấp cứu tại khoa"
# bacsi.cuu works at the central hospital, which never treated Nguyễn Văn An: break-the-glass is its way in.
EMERGENCY = RequestContext(
    authenticated=True, user="bacsi.cuu", roles=frozenset({"clinician"}), organization="Organization/bv3",
    scopes=parse_scopes("user/*.cruds"),
)  # fmt: skip
NOT_FOUND = "Không tìm thấy, hoặc bạn không được phép xem."


@dataclass
class Site:
    root: str
    services: Services
    admin_totp: str


def _call(services: Services, context: RequestContext, method: str, path: str, body: Any = None) -> FhirResponse:
    path, _, qs = path.partition("?")
    query = [(k, v) for k, _, v in (p.partition("=") for p in qs.split("&") if p)]
    headers = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
    return handle(services, FhirRequest(method, path, query, headers, body, "http://x/fhir", context))


def _put(services: Services, resource: dict[str, Any], organization: str | None = None) -> None:
    context = RequestContext.operator("test", organization)
    response = _call(services, context, "PUT", f"{resource['resourceType']}/{resource['id']}", resource)
    assert response.status in (200, 201), response.resource


def _seed(services: Services) -> str:
    orgs = (
        ("bv1", "Trạm Y tế xã Tân Lập"),
        ("bv2", "Bệnh viện tỉnh Hà Giang"),
        ("bv3", "Bệnh viện Đa khoa Trung ương"),
    )
    for org, name in orgs:
        _put(services, {"resourceType": "Organization", "id": org, "name": name})
    # The record is the provincial hospital's (bv2); the commune station (bv1) sees it through its visit, a
    # care relation, so the patient's Consent decides for bv1 (what bv1 wrote itself it always keeps).
    for pid, given in (("an", ["Văn", "An"]), ("binh", ["Thị", "Bình"])):
        patient = {
            "resourceType": "Patient", "id": pid, "gender": "male", "birthDate": "1980-03-12",
            "name": [{"use": "official", "family": "Nguyễn", "given": given}],
        }  # fmt: skip
        _put(services, patient, "Organization/bv2")
    visit = {
        "resourceType": "Encounter", "id": "enc-an", "status": "in-progress",
        "class": {"system": V3_ACT, "code": "AMB", "display": "Khám ngoại trú"},
        "subject": {"reference": "Patient/an"}, "period": {"start": date.today().isoformat()},
        "serviceProvider": {"reference": "Organization/bv1"},
    }  # fmt: skip
    _put(services, visit, "Organization/bv1")
    pulse = {
        "resourceType": "Observation", "id": "mach-an", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Mạch"}], "text": "Mạch"},
        "subject": {"reference": "Patient/an"}, "effectiveDateTime": "2026-11-30T08:00:00+07:00",
        "valueQuantity": {"value": 78, "unit": "lần/phút"},
    }  # fmt: skip
    _put(services, pulse, "Organization/bv2")
    accounts = Accounts(services.store, hasher=CHEAP)
    now = time.time()
    accounts.add("bacsi.an", PASSWORD, "clinician", organization="Organization/bv1", now=now)
    accounts.add("benhnhan.an", PASSWORD, "patient", patient="Patient/an", now=now)
    _, secret = accounts.add("quantri", PASSWORD, "admin", now=now)
    assert secret is not None
    return secret


@pytest.fixture
def site(fresh_services: Services) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    port = _free_port()
    services = fresh_services
    services.settings = services.settings.with_(auth="on", base_url=f"http://127.0.0.1:{port}/fhir")
    secret = _seed(services)
    with LiveServer(console.mount(create_app(services), services), port=port):
        yield Site(f"http://127.0.0.1:{port}", services, secret)


def _sign_in(page: Page, site: Site, user: str, start: str = "/", totp: str | None = None) -> None:
    """The platform's own sign-in and consent pages, then back to ``start``."""
    page.goto(site.root + start)
    expect(page).to_have_url(re.compile(r"/auth/authorize"))
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    if totp is not None:
        page.fill("#totp", totp)
    page.click("button[type=submit]")
    page.click("button[name=decision][value=allow]")
    expect(page).to_have_url(site.root + start)


def _break_the_glass(site: Site) -> None:
    params = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": REASON}]}
    response = _call(site.services, EMERGENCY, "POST", "Patient/an/$break-the-glass", params)
    assert response.status == 200, response.resource


def test_administrator_reads_the_audit_log_and_filters_by_patient(page: Page, site: Site) -> None:
    _break_the_glass(site)
    _call(site.services, EMERGENCY, "GET", "Patient/binh")  # another patient's record touched: filtered out below
    for _ in range(30):  # more than a page of the log
        _call(site.services, RequestContext.operator("test"), "GET", "Organization/bv1")
    _sign_in(page, site, "quantri", "/audit", totp=current_code(site.admin_totp, time.time()))
    expect(page.locator("nav")).to_contain_text("Nhật ký truy cập")
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(25)
    assert not axe_violations(page)
    first = rows.first.inner_text()
    page.click("a[rel=next]")  # the next page: older records
    expect(page).to_have_url(re.compile(r"/audit\?page=\d+$"))
    expect(rows.first).not_to_have_text(first)

    page.fill("#f-patient", "an")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"/audit\?patient=an"))
    expect(rows.first).to_be_visible()
    assert "Patient/binh" not in page.locator("table.audit").inner_text()
    # The opening (ETREAT, with the reason) and the request's own record: both labelled, not by colour alone.
    glass = page.locator("table.audit tbody tr.glass")
    expect(glass).to_have_count(2)
    for n in range(2):
        expect(glass.nth(n)).to_contain_text("Mở khẩn cấp")
    opening = glass.filter(has_text=REASON)
    expect(opening).to_have_count(1)
    expect(opening).to_contain_text("bacsi.cuu")
    expect(opening).to_contain_text("Bệnh viện Đa khoa Trung ương")  # the facility by name
    expect(opening).to_contain_text("Cấp cứu")
    assert not axe_violations(page)

    page.fill("#f-patient", "")
    page.fill("#f-user", "bacsi.cuu")  # the API's agent:identifier: the database filters
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"[?&]user=bacsi.cuu&"))
    texts = rows.all_inner_texts()
    assert len(texts) == 3 and all("bacsi.cuu" in text for text in texts)  # the opening, its record, binh
    assert any("Patient/binh" in text for text in texts)
    expect(page.locator("a[rel=next]")).to_have_count(0)

    page.fill("#f-user", "")
    page.fill("#f-facility", "bv3")  # the API's agent=Organization/bv3: what was done for that facility
    page.click("form.filters button[type=submit]")
    texts = rows.all_inner_texts()
    assert len(texts) == 3 and all("Bệnh viện Đa khoa Trung ương" in text for text in texts)
    page.fill("#f-facility", "bv1")  # the commune station wrote the visit, nothing else
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Encounter/enc-an")
    page.fill("#f-user", "bacsi.cuu")  # both: nothing that user did for that facility
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(0)
    assert not axe_violations(page)


def test_patient_sees_the_break_the_glass_with_its_reason(page: Page, site: Site) -> None:
    _break_the_glass(site)
    _sign_in(page, site, "benhnhan.an", "/me")
    expect(page.locator("h1")).to_have_text("Nguyễn Văn An")
    expect(page.locator("section[aria-labelledby=s-observations]")).to_contain_text("78 lần/phút")
    expect(page.locator("nav")).not_to_contain_text("Nhật ký truy cập")  # the administrators' viewer
    assert not axe_violations(page)

    page.click("nav >> text=Ai đã xem hồ sơ")
    expect(page).to_have_url(site.root + "/me/access")
    opening = page.locator("table.access tbody tr.glass").filter(has_text=REASON)
    expect(opening).to_have_count(1)
    expect(opening).to_contain_text("Mở khẩn cấp hồ sơ")
    expect(opening).to_contain_text("bacsi.cuu")
    expect(opening).to_contain_text("Bệnh viện Đa khoa Trung ương")
    assert "benhnhan.an" not in page.locator("table.access").inner_text()  # my own visits hidden by default
    assert not axe_violations(page)
    page.click("text=Hiện cả những lần tôi tự xem")
    expect(page.locator("table.access")).to_contain_text("benhnhan.an")

    page.goto(site.root + "/audit")  # the API answers a patient with their own records only
    assert "Patient/binh" not in page.locator("main").inner_text()


def test_patient_denies_a_facility_and_its_clinician_loses_the_record(page: Page, browser: Browser, site: Site) -> None:
    clinician = browser.new_context(locale="vi-VN").new_page()
    try:
        _sign_in(clinician, site, "bacsi.an", "/patients/an")
        expect(clinician.locator("h1")).to_have_text("Nguyễn Văn An")
        clinician.goto(site.root + "/audit")  # not an administrator: the API's refusal, said politely
        expect(clinician.locator("[role=alert]")).to_contain_text("không có quyền xem nhật ký")

        _sign_in(page, site, "benhnhan.an", "/me/consent")
        expect(page.locator("nav [aria-current=page]")).to_have_text("Quyền chia sẻ")  # not "Hồ sơ của tôi" too
        expect(page.locator("#s-deny-facility ~ ul.facilities")).to_contain_text("Trạm Y tế xã Tân Lập")  # visited
        assert not axe_violations(page)
        page.click("#s-deny-category ~ form button[type=submit]")  # no category chosen: said next to the form
        expect(page.locator("#err-category")).to_have_text("Hãy chọn một loại thông tin.")

        page.fill("#org", "tan lap")  # a part of the name, without diacritics
        page.click("form.search button")
        expect(page).to_have_url(re.compile(r"/me/consent\?org="))
        page.click("ul.facilities button:has-text('Tân Lập')")
        expect(page.locator("[role=status]")).to_contain_text("không còn xem được")
        rows = page.locator("table.consents tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Trạm Y tế xã Tân Lập")
        expect(rows.first).to_contain_text("Đang áp dụng")
        assert not axe_violations(page)

        clinician.goto(site.root + "/patients/an")  # the very next request
        expect(clinician.locator("h1")).to_have_text(NOT_FOUND)

        page.click("table.consents button:has-text('Rút lại')")
        expect(page.locator("[role=status]")).to_have_text("Đã rút lại lựa chọn.")
        expect(rows.first).to_contain_text("Đã rút lại")
        clinician.goto(site.root + "/patients/an")
        expect(clinician.locator("h1")).to_have_text("Nguyễn Văn An")

        page.check("#cat-hiv")
        page.click("#s-deny-category ~ form button[type=submit]")
        expect(page.locator("[role=status]")).to_contain_text("không còn được chia sẻ")
        expect(page.locator("table.consents")).to_contain_text("Thông tin về HIV/AIDS")
        assert not axe_violations(page)
    finally:
        clinician.context.close()


def test_a_form_from_another_site_is_refused(page: Page, site: Site) -> None:
    _sign_in(page, site, "benhnhan.an", "/me/consent")
    forged = page.request.post(
        site.root + "/me/consent/organization", form={"organization": "bv1"}, headers={"Origin": "http://evil.example"}
    )
    assert forged.status == 403
    assert "không gửi từ trang của ketnoi" in forged.text()
    consents = _call(site.services, RequestContext.operator("test"), "GET", "Consent?patient=Patient/an")
    assert not (consents.resource or {}).get("entry")  # nothing was written
    page.goto(site.root + "/me/consent")
    expect(page.locator("table.consents")).to_have_count(0)
    assert not axe_violations(page)


def test_staff_are_told_the_portal_is_for_patients(page: Page, site: Site) -> None:
    _sign_in(page, site, "bacsi.an", "/me")
    expect(page.locator("h1")).to_have_text(i18n.TEXT["vi"]["me_patients_only"])
    expect(page.locator("nav")).not_to_contain_text("Hồ sơ của tôi")


def test_keys_made_in_code_and_templates_exist_in_both_languages() -> None:
    made = {*audit_view.SUBTYPES.values(), *audit_view.ACTIONS.values(), *audit_view.OUTCOMES.values()}
    made |= {f"cat_{name}" for name in consent_view.CATEGORIES}
    made |= {f"consent_done_{done}" for done in audit_pages.DONE}
    made |= {"consent_unknown_facility", "consent_choose_category", "consent_bad_status", "me_patients_only"}
    made |= {"purpose_ETREAT", "purpose_TREAT", "rt_Patient", "rt_Observation", "act_glass", "act_operation_on"}
    for lang in i18n.LANGUAGES:
        assert made <= i18n.TEXT[lang].keys(), made - i18n.TEXT[lang].keys()


def test_an_audit_event_in_words() -> None:
    event = {
        "id": "42", "recorded": "2026-12-01T01:02:03.456Z", "action": "E", "outcome": "0",
        "subtype": [{"code": "operation"}, {"code": "$break-the-glass"}],
        "purposeOfEvent": [{"coding": [{"code": "ETREAT"}], "text": REASON}],
        "agent": [
            {"type": {"coding": [{"code": "IRCP"}]}, "name": "bacsi.cuu", "who": {}},
            {"type": {"coding": [{"code": "110153"}]}, "who": {"identifier": {"value": "console-1"}}},
            {"type": {"coding": [{"code": "PROV"}]}, "who": {"reference": "Organization/bv3"}},
        ],
        "entity": [{"what": {"reference": "Patient/an"}, "role": {"code": "1"}}],
    }  # fmt: skip
    found = audit_view.row(event)
    assert (found.local, found.user, found.client, found.facility) == (
        "01/12/2026 08:02",
        "bacsi.cuu",
        "console-1",
        "Organization/bv3",
    )
    assert found.glass and found.reason == REASON and found.what == "Patient/an" and found.what_type == "Patient"
