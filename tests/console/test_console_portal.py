"""The patient portal's appointments and "download my data" in a real browser, sign-in on: a patient
with demo-style data (a chronic condition's follow-up at the commune station, a past vaccination
visit) sees upcoming before past, in Vietnam time and plain words; the download is one FHIR Bundle of
their own record and nobody else's; staff are told the pages are for patients; no serious
accessibility violation."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from ketnoi import console
from ketnoi.auth.scopes import parse_scopes
from ketnoi.console import i18n, portal_pages, records
from ketnoi.console.show import VIETNAM
from ketnoi.demo import appointments as demo_appointments
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from ketnoi.validation.structure import validate
from tests.conftest import LiveServer, _free_port
from tests.console.conftest import axe_violations

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "mật-khẩu-đủ-dài-2026"
ICD10 = "http://hl7.org/fhir/sid/icd-10"


@dataclass
class Site:
    root: str
    services: Services


def _put(services: Services, resource: dict[str, Any], organization: str | None = None) -> None:
    context = RequestContext.operator("test", organization)
    path = f"{resource['resourceType']}/{resource['id']}"
    headers = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
    response = handle(services, FhirRequest("PUT", path, [], headers, resource, "http://x/fhir", context))
    assert response.status in (200, 201), response.resource


def _instant(at: datetime) -> str:
    return at.astimezone(VIETNAM).isoformat(timespec="seconds")


def _appointment(id: str, patient: str, start: datetime, status: str, **more: Any) -> dict[str, Any]:
    """Shaped as the demo generator writes them (ketnoi.demo.appointments)."""
    return {
        "resourceType": "Appointment", "id": id, "status": status,
        "start": _instant(start), "end": _instant(start + timedelta(minutes=20)), "minutesDuration": 20,
        "participant": [
            {"actor": {"reference": f"Patient/{patient}"}, "required": "required", "status": "accepted"},
            {"actor": {"reference": "Practitioner/bs-lan"}, "required": "required", "status": "accepted"},
            {"actor": {"reference": "Location/tram-tan-lap"}, "required": "required", "status": "accepted"},
        ],
        **more,
    }  # fmt: skip


def _unscheduled(id: str, patient: str, status: str, **more: Any) -> dict[str, Any]:
    """An appointment without its start and end: the patient and the place asked for, not yet given."""
    found = _appointment(id, patient, datetime.now(UTC), status, **more)
    for key in ("start", "end", "minutesDuration"):
        del found[key]
    found["participant"][1]["status"] = "needs-action"
    return found


def _seed(services: Services) -> None:
    station = "Organization/tyt-tan-lap"
    _put(services, {"resourceType": "Organization", "id": "tyt-tan-lap", "name": "Trạm Y tế xã Tân Lập"})
    _put(services, {"resourceType": "Location", "id": "tram-tan-lap", "name": "Trạm Y tế xã Tân Lập, phòng khám 2"})
    doctor = {"resourceType": "Practitioner", "id": "bs-lan", "name": [{"family": "Trần", "given": ["Thị", "Lan"]}]}
    _put(services, doctor)
    for pid, given in (("an", ["Văn", "An"]), ("binh", ["Thị", "Bình"])):
        patient = {
            "resourceType": "Patient", "id": pid, "gender": "male", "birthDate": "1960-03-12",
            "name": [{"use": "official", "family": "Nguyễn", "given": given}],
            "managingOrganization": {"reference": station},
        }  # fmt: skip
        _put(services, patient, station)
    hypertension = {
        "resourceType": "Condition", "id": "tha-an", "subject": {"reference": "Patient/an"},
        "code": {"coding": [{"system": ICD10, "code": "I10"}], "text": "Tăng huyết áp vô căn"},
    }  # fmt: skip
    _put(services, hypertension, station)
    now = datetime.now(UTC)
    follow_up = _appointment(
        "hen-tai-kham", "an", now + timedelta(days=9), "booked",
        appointmentType=demo_appointments.FOLLOW_UP, reasonReference=[{"reference": "Condition/tha-an"}],
        patientInstruction=demo_appointments.FOLLOW_UP_INSTRUCTION,
    )  # fmt: skip
    later = _appointment("hen-xa", "an", now + timedelta(days=40), "booked", comment="Đo lại huyết áp buổi sáng")
    past = _appointment(
        "hen-cu", "an", now - timedelta(days=30), "fulfilled",
        reasonCode=[{"coding": [{"system": ICD10, "code": "Z24.6"}], "text": "Cần tiêm phòng viêm gan virus"}],
    )  # fmt: skip
    theirs = _appointment("hen-binh", "binh", now + timedelta(days=3), "booked", comment="BÍ MẬT CỦA BÌNH")
    for appointment in (follow_up, later, past, theirs):
        _put(services, appointment, station)
    # Asked for, no time given yet (R4 allows no start when proposed, on the waiting list or cancelled).
    first_day, last_day = (now + timedelta(days=14)).date(), (now + timedelta(days=28)).date()
    for unscheduled in (
        _unscheduled(
            "de-nghi",
            "an",
            "proposed",
            requestedPeriod=[{"start": first_day.isoformat(), "end": last_day.isoformat()}],
            comment="Khám mắt định kỳ",
        ),
        _unscheduled("cho", "an", "waitlist", description="Nội soi dạ dày"),
        _unscheduled("huy", "an", "cancelled", description="ĐÃ HUỶ, KHÔNG HIỆN"),
        _unscheduled("cho-binh", "binh", "waitlist", description="BÍ MẬT CỦA BÌNH"),
    ):
        _put(services, unscheduled, station)
    secret = {
        "resourceType": "Observation", "id": "obs-binh", "status": "final", "subject": {"reference": "Patient/binh"},
        "code": {"text": "BÍ MẬT CỦA BÌNH"}, "valueString": "x",
    }  # fmt: skip
    _put(services, secret, station)
    accounts = Accounts(services.store, hasher=CHEAP)
    accounts.add("benhnhan.an", PASSWORD, "patient", patient="Patient/an", now=time.time())
    accounts.add("bacsi.lan", PASSWORD, "clinician", organization=station, now=time.time())


@pytest.fixture
def site(fresh_services: Services) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    port = _free_port()
    services = fresh_services
    services.settings = services.settings.with_(auth="on", base_url=f"http://127.0.0.1:{port}/fhir")
    _seed(services)
    with LiveServer(console.mount(create_app(services), services), port=port):
        yield Site(f"http://127.0.0.1:{port}", services)


def _sign_in(page: Page, site: Site, user: str, start: str) -> None:
    page.goto(site.root + start)
    expect(page).to_have_url(re.compile(r"/auth/authorize"))
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.click("button[name=decision][value=allow]")
    expect(page).to_have_url(site.root + start)


def test_a_patient_sees_upcoming_appointments_before_past_ones(page: Page, site: Site) -> None:
    _sign_in(page, site, "benhnhan.an", "/me")
    page.click("nav >> text=Lịch hẹn")
    expect(page).to_have_url(site.root + "/me/appointments")
    expect(page.locator("h1")).to_have_text("Lịch hẹn của tôi")
    upcoming = page.locator("section[aria-labelledby=s-upcoming] tbody tr")
    expect(upcoming).to_have_count(2)
    first = upcoming.first
    soon = datetime.now(UTC) + timedelta(days=9)
    expect(first).to_contain_text(soon.astimezone(VIETNAM).strftime("%d/%m/%Y"))  # Vietnam time
    expect(first).to_contain_text("Đã đặt lịch")  # booked, in words
    expect(first).to_contain_text("Trạm Y tế xã Tân Lập, phòng khám 2")
    expect(first).to_contain_text("Trần Thị Lan")
    expect(first).to_contain_text("Tăng huyết áp vô căn")  # the reason: the condition by name
    expect(first).to_contain_text("Mang theo thẻ BHYT")
    expect(upcoming.nth(1)).to_contain_text("Đo lại huyết áp buổi sáng")  # the comment, as instructions
    past = page.locator("section[aria-labelledby=s-past] tbody tr")
    expect(past).to_have_count(1)
    expect(past.first).to_contain_text("Đã khám xong")
    expect(past.first).to_contain_text("Cần tiêm phòng viêm gan virus")
    waiting = page.locator("section[aria-labelledby=s-unscheduled] tbody tr")
    expect(waiting).to_have_count(2)  # the cancelled one is not awaited, Bình's is not mine
    expect(page.locator("#s-unscheduled")).to_have_text("Chưa xếp lịch")
    start, end = datetime.now(UTC) + timedelta(days=14), datetime.now(UTC) + timedelta(days=28)
    expect(waiting.first).to_contain_text(f"{start:%d/%m/%Y} – {end:%d/%m/%Y}")  # the requested period
    expect(waiting.first).to_contain_text("Đề xuất, chưa xác nhận")
    expect(waiting.first).to_contain_text("Khám mắt định kỳ")
    expect(waiting.nth(1)).to_contain_text("Trong danh sách chờ")
    expect(waiting.nth(1)).to_contain_text("Chưa có")  # no period asked for
    expect(waiting.nth(1)).to_contain_text("Nội soi dạ dày")
    assert "BÍ MẬT CỦA BÌNH" not in page.content() and "KHÔNG HIỆN" not in page.content()
    assert not axe_violations(page)

    page.set_viewport_size({"width": 360, "height": 740})  # a phone: the table becomes one block per visit
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert not axe_violations(page)

    page.click("text=English")
    expect(page.locator("h1")).to_have_text("My appointments")
    expect(upcoming.first).to_contain_text("Booked")
    expect(waiting.nth(1)).to_contain_text("On the waiting list")
    expect(page.locator("#s-unscheduled")).to_have_text("Not yet scheduled")


def test_a_patient_downloads_their_record_as_one_bundle(page: Page, site: Site) -> None:
    _sign_in(page, site, "benhnhan.an", "/me")
    expect(page.locator("#s-me-download")).to_have_text("Tải hồ sơ về máy")
    assert not axe_violations(page)
    with page.expect_download() as started:
        page.click("a[href='/me/download']")
    today = datetime.now(VIETNAM).date().isoformat()
    assert started.value.suggested_filename == f"ho-so-suc-khoe-{today}.json"

    answer = page.request.get(site.root + "/me/download")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-disposition"] == f'attachment; filename="ho-so-suc-khoe-{today}.json"'
    bundle = orjson.loads(answer.body())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert [i for i in validate(bundle, strict=True) if i.severity in ("error", "fatal")] == []
    held = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    assert {"Patient/an", "Condition/tha-an", "Appointment/hen-tai-kham", "Appointment/hen-cu"} <= held
    assert not held & {"Patient/binh", "Observation/obs-binh", "Appointment/hen-binh"}
    assert "BÍ MẬT CỦA BÌNH" not in answer.text() and "Patient/binh" not in answer.text()  # no trace of binh
    assert len(held) == len(bundle["entry"])  # each resource once


def test_a_download_follows_every_page(site: Site) -> None:
    # A page size of one: the Bundle is gathered from a dozen pages of $everything, nothing lost.
    site.services.settings = site.services.settings.with_(default_count=1, max_count=1)
    context = RequestContext(
        authenticated=True, user="benhnhan.an", roles=frozenset({"patient"}), patient="an",
        scopes=parse_scopes("patient/*.rs"),
    )  # fmt: skip
    reader = records.Reader(site.services, context, site.root + "/fhir")
    found = portal_pages.gather(reader, "an", datetime.now(UTC))
    assert found.bundle is not None, found.problem
    held = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in found.bundle["entry"]}
    assert {
        "Patient/an",
        "Condition/tha-an",
        "Appointment/hen-tai-kham",
        "Appointment/hen-xa",
        "Appointment/hen-cu",
    } <= held
    assert "Patient/binh" not in held


@pytest.mark.parametrize("fresh_services", ["sqlite", "postgres"], indirect=True)
def test_the_agenda_finds_the_appointments_without_a_start_on_each_backend(site: Site) -> None:
    # date:missing=true and status=proposed,pending,waitlist: the patient's own, the cancelled one left out.
    context = RequestContext(
        authenticated=True, user="benhnhan.an", roles=frozenset({"patient"}), patient="an",
        scopes=parse_scopes("patient/*.rs"),
    )  # fmt: skip
    reader = records.Reader(site.services, context, site.root + "/fhir")
    found = portal_pages.agenda(reader, "an", datetime.now(UTC))
    assert found.problem is None
    assert [v.id for v in found.unscheduled] == ["de-nghi", "cho"]  # a requested period first
    assert [v.status for v in found.unscheduled] == ["appt_proposed", "appt_waitlist"]
    assert found.unscheduled[1].requested == () and len(found.unscheduled[0].requested) == 1
    assert {v.id for v in found.upcoming} == {"hen-tai-kham", "hen-xa"} and [v.id for v in found.past] == ["hen-cu"]


def test_staff_are_told_the_portal_pages_are_for_patients(page: Page, site: Site) -> None:
    _sign_in(page, site, "bacsi.lan", "/me/appointments")
    expect(page.locator("h1")).to_have_text(i18n.TEXT["vi"]["me_patients_only"])
    expect(page.locator("nav")).not_to_contain_text("Lịch hẹn")
    answer = page.request.get(site.root + "/me/download")
    assert answer.status == 403 and "application/fhir+json" not in answer.headers["content-type"]


def test_every_status_has_words_in_both_languages() -> None:
    for lang in i18n.LANGUAGES:
        missing = {f"appt_{s}" for s in portal_pages.STATUSES} - i18n.TEXT[lang].keys()
        assert not missing, (lang, missing)
