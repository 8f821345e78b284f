"""The console in a real browser (ADR 0026), with sign-in on: the platform's own sign-in and consent
pages, a patient search without diacritics that shows only what the access policy allows, the patient's
record, the language switch, sign-out, and no serious accessibility violation on any page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from ketnoi import console
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from tests.conftest import LiveServer, _free_port
from tests.console.conftest import axe_violations

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "mật-khẩu-đủ-dài-2026"
CCCD = "001080012345"
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@dataclass
class Site:
    root: str
    services: Services


def _put(services: Services, resource: dict[str, Any], organization: str | None = None) -> None:
    context = RequestContext.operator("test", organization)
    path = f"{resource['resourceType']}/{resource['id']}"
    request = FhirRequest(
        "PUT", path, [], {"content-type": "application/fhir+json"}, resource, "http://x/fhir", context
    )
    response = handle(services, request)
    assert response.status in (200, 201), response.resource


def _seed(services: Services) -> None:
    for org, name in (("bv1", "Trạm Y tế xã Tân Lập"), ("bv2", "Bệnh viện tỉnh Hà Giang")):
        _put(services, {"resourceType": "Organization", "id": org, "name": name})
    an = {
        "resourceType": "Patient", "id": "an", "gender": "male", "birthDate": "1980-03-12",
        "name": [{"use": "official", "family": "Nguyễn", "given": ["Văn", "An"]}],
        "identifier": [{"system": "http://fhir.ehealth.gov.vn/core/sid/national_id", "value": CCCD}],
    }  # fmt: skip
    binh = {
        "resourceType": "Patient", "id": "binh", "gender": "female", "birthDate": "1980-07-01",
        "name": [{"use": "official", "family": "Nguyễn", "given": ["Văn", "Anh"]}],
    }  # fmt: skip
    _put(services, an, "Organization/bv1")
    _put(services, binh, "Organization/bv2")
    for pid, org in (("an", "bv1"), ("binh", "bv2")):
        encounter = {
            "resourceType": "Encounter", "id": f"enc-{pid}", "status": "in-progress",
            "class": {"system": V3_ACT, "code": "AMB", "display": "Khám ngoại trú"},
            "subject": {"reference": f"Patient/{pid}"}, "period": {"start": date.today().isoformat()},
            "serviceProvider": {"reference": f"Organization/{org}"},
        }  # fmt: skip
        _put(services, encounter, f"Organization/{org}")
    pulse = {
        "resourceType": "Observation", "id": "mach-an", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Mạch"}], "text": "Mạch"},
        "subject": {"reference": "Patient/an"}, "effectiveDateTime": "2026-11-30T08:00:00+07:00",
        "valueQuantity": {"value": 78, "unit": "lần/phút"},
    }  # fmt: skip
    _put(services, pulse, "Organization/bv1")
    for day, value in (("2026-11-28", 92), ("2026-11-29", 85)):  # earlier pulses: a trend with a range
        earlier = {**pulse, "id": f"mach-an-{day}", "effectiveDateTime": f"{day}T08:00:00+07:00",
                   "valueQuantity": {"value": value, "unit": "lần/phút"},
                   "referenceRange": [{"low": {"value": 60}, "high": {"value": 90}}]}  # fmt: skip
        _put(services, earlier, "Organization/bv1")
    accounts = Accounts(services.store, hasher=CHEAP)
    accounts.add("bacsi.an", PASSWORD, "clinician", organization="Organization/bv1", now=time.time())


@pytest.fixture
def site(fresh_services: Services) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    port = _free_port()
    services = fresh_services
    # The public address the console registers its redirect URI for: the one the browser uses.
    services.settings = services.settings.with_(auth="on", base_url=f"http://127.0.0.1:{port}/fhir")
    _seed(services)
    with LiveServer(console.mount(create_app(services), services), port=port):
        yield Site(f"http://127.0.0.1:{port}", services)


def _sign_in(page: Page, site: Site, password: str = PASSWORD) -> None:
    page.goto(site.root + "/")
    expect(page).to_have_url(re.compile(r"/auth/authorize"))  # the platform's own sign-in page
    page.fill("#username", "bacsi.an")
    page.fill("#password", password)
    page.click("button[type=submit]")


def _allow(page: Page) -> None:
    page.click("button[name=decision][value=allow]")


def test_sign_in_search_without_diacritics_and_open_the_record(page: Page, site: Site) -> None:
    page.goto(site.root + "/")
    expect(page).to_have_url(re.compile(r"/auth/authorize"))
    assert not axe_violations(page, ("moderate", "serious", "critical"))  # the platform's sign-in page too
    _sign_in(page, site)
    _allow(page)
    expect(page).to_have_url(site.root + "/")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("header")).to_contain_text("bacsi.an")
    assert not axe_violations(page)

    page.fill("#q", "nguyen van an 1980")
    page.click("form.search button")
    expect(page).to_have_url(re.compile(r"/patients\?q="))
    rows = page.locator("table.list tbody tr")
    # Nguyễn Văn An has a visit at the clinician's station; Nguyễn Văn Anh (same words, same year) only at
    # another facility: the policy leaves her out, as it would for an API client with the same token.
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Nguyễn Văn An")
    expect(rows.first).to_contain_text(f"CCCD {CCCD}")
    assert "Anh" not in page.locator("table.list").inner_text()
    assert not axe_violations(page)

    page.fill("#q", CCCD)
    page.click("form.search button")
    expect(rows).to_have_count(1)

    page.click("text=Nguyễn Văn An")
    expect(page).to_have_url(site.root + "/patients/an")
    expect(page.locator("h1")).to_have_text("Nguyễn Văn An")
    expect(page.locator("section[aria-labelledby=s-observations]")).to_contain_text("78 lần/phút")
    expect(page.locator("section[aria-labelledby=s-encounters]")).to_contain_text("Trạm Y tế xã Tân Lập")
    assert not axe_violations(page)

    # The pulse trend: a table of the three values, oldest first, and a chart drawn from it by uPlot.
    trend = page.locator("section[aria-labelledby=s-trends] figure").first
    expect(trend.locator("figcaption")).to_contain_text("Mạch (lần/phút)")
    expect(trend.locator("figcaption")).to_contain_text("60.0–90.0")
    expect(trend.locator("tbody tr")).to_have_count(3)
    expect(trend.locator("tbody tr").first).to_contain_text("28/11/2026")
    expect(trend.locator(".chart canvas")).to_have_count(1)
    assert not axe_violations(page)

    page.goto(site.root + "/patients/binh")  # another facility's patient, by address: no more than by search
    expect(page.locator("h1")).to_have_text("Không tìm thấy, hoặc bạn không được phép xem.")


def test_break_the_glass_states_a_reason_opens_the_record_and_is_audited(page: Page, site: Site) -> None:
    _sign_in(page, site)
    _allow(page)
    page.goto(site.root + "/patients/binh")  # another facility's patient: not found, with the emergency offer
    page.click("text=Mở hồ sơ khẩn cấp")
    expect(page.locator("h1")).to_have_text("Mở hồ sơ khẩn cấp (phá kính)")
    assert not axe_violations(page)
    page.fill("#reason", "   ")  # passes the browser's required check; the server still asks why
    page.click("form.glass-form button[type=submit]")
    expect(page.locator("#reason-error")).to_contain_text("Hãy nêu lý do")
    expect(page.locator("#reason")).to_have_attribute("aria-invalid", "true")
    page.fill("#reason", "Hôn mê, nhập viện cấp cứu: cần tiền sử dị ứng")
    page.click("form.glass-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/patients/binh\?opened="))
    expect(page.locator("h1")).to_have_text("Nguyễn Văn Anh")
    expect(page.locator(".glass")).to_contain_text("Mở khẩn cấp:")
    # The opening is in the audit log with its reason and purpose of use, naming the patient.
    admin = RequestContext.operator("test")
    found = handle(site.services, FhirRequest("GET", "AuditEvent", [("patient", "Patient/binh")], {}, None,
                                              "http://x/fhir", admin))  # fmt: skip
    assert found.resource is not None, found.status
    events = [e["resource"] for e in found.resource.get("entry", [])]
    glass = [e for e in events if any(p.get("text") for p in e.get("purposeOfEvent", []))]
    assert [e["purposeOfEvent"][0]["text"] for e in glass] == ["Hôn mê, nhập viện cấp cứu: cần tiền sử dị ứng"]


def test_a_wrong_password_does_not_sign_in(page: Page, site: Site) -> None:
    _sign_in(page, site, password="sai-mat-khau")
    expect(page).to_have_url(re.compile(r"/auth/authorize"))
    expect(page.locator("body")).to_contain_text("mật khẩu")
    page.goto(site.root + "/patients?q=an")
    expect(page).to_have_url(re.compile(r"/auth/authorize"))  # still no session: back to sign-in
    assert "ketnoi_console" not in {c["name"] for c in page.context.cookies()}


def test_english_one_click_away_and_sign_out_ends_the_session(page: Page, site: Site) -> None:
    _sign_in(page, site)
    _allow(page)
    page.goto(site.root + "/patients?q=an")
    page.click("text=English")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(r"/patients\?q=an$"))  # back where the switch was made
    expect(page.locator("h1")).to_have_text("Patients")
    page.click("header button:has-text('Sign out')")
    expect(page.locator("h1")).to_have_text("You are signed out.")
    page.goto(site.root + "/patients")
    expect(page).to_have_url(re.compile(r"/auth/authorize"))  # the session and its tokens are gone


def test_the_search_box_reads_identifiers_years_and_names() -> None:
    """What a clinician types: an identifier of any national shape, a birth year, and name words (each must match)."""
    from ketnoi.console.records import patient_query

    query = patient_query("nguyen 1985 dn4797914012345 7901234567 an")
    assert query is not None
    assert query[:5] == [
        ("birthdate", "1985"),
        ("identifier", "DN4797914012345"),
        ("identifier", "7901234567"),
        ("name", "nguyen"),
        ("name", "an"),
    ]
    assert patient_query("   ") is None
