"""The clinician's record in a real browser (issue 15): a child's immunisations against the national
schedule, a diagnostic report and a document whose attachment downloads only for those who may read it,
and the observation and encounter-note forms, with their errors next to the fields, in Vietnamese."""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from ketnoi import console
from ketnoi.console import i18n, show
from ketnoi.console.clinical_forms import check_blood_pressure, check_lab
from ketnoi.console.measures import LAB_TESTS
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from ketnoi.vn.epi_schedule import ATC, CVX
from tests.conftest import LiveServer, _free_port
from tests.console.conftest import axe_violations

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "mật-khẩu-đủ-dài-2026"
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
LETTER = "Giấy ra viện: bé khoẻ, hẹn tái khám sau 7 ngày.\n".encode()


@dataclass
class Site:
    root: str
    services: Services


def _call(services: Services, method: str, path: str, body: Any = None, query: Any = (),
          organization: str | None = None) -> FhirResponse:  # fmt: skip
    context = RequestContext.operator("test", organization)
    headers = {"content-type": "application/fhir+json"}
    return handle(services, FhirRequest(method, path, list(query), headers, body, "http://x/fhir", context))


def _put(services: Services, resource: dict[str, Any], organization: str = "Organization/bv1") -> None:
    response = _call(services, "PUT", f"{resource['resourceType']}/{resource['id']}", resource, (), organization)
    assert response.status in (200, 201), response.resource


def _search(services: Services, rtype: str, *query: tuple[str, str]) -> list[dict[str, Any]]:
    found = _call(services, "GET", rtype, query=query)
    bundle = found.resource if found.resource is not None else orjson.loads(found.raw or b"{}")
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]


def _shot(id: str, cvx: str, atc: str, on: date, number: int) -> dict[str, Any]:
    return {
        "resourceType": "Immunization", "id": id, "status": "completed",
        "vaccineCode": {"coding": [{"system": CVX, "code": cvx}, {"system": ATC, "code": atc}]},
        "patient": {"reference": "Patient/be"}, "occurrenceDateTime": on.isoformat(), "primarySource": True,
        "location": {"reference": "Location/loc1"}, "lotNumber": f"{cvx}LOT",
        "protocolApplied": [{"series": "Tiêm chủng mở rộng (TCMR)", "doseNumberPositiveInt": number}],
    }  # fmt: skip


def _temperature(id: str, when: datetime, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "8310-5", "display": "Body temperature"}], "text": "Nhiệt độ"},
        "subject": {"reference": "Patient/be"}, "effectiveDateTime": when.isoformat(timespec="seconds"),
        "valueQuantity": {"value": value, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"},
    }  # fmt: skip


def _seed(services: Services) -> None:
    for org, name in (("bv1", "Trạm Y tế xã Tân Lập"), ("bv2", "Bệnh viện tỉnh Hà Giang")):
        _put(services, {"resourceType": "Organization", "id": org, "name": name}, f"Organization/{org}")
    _put(services, {"resourceType": "Location", "id": "loc1", "name": "Điểm tiêm trạm Tân Lập",
                    "managingOrganization": {"reference": "Organization/bv1"}})  # fmt: skip
    _put(services, {"resourceType": "Practitioner", "id": "bs1", "name": [{"family": "Lê", "given": ["Thu"]}]})
    today = datetime.now(show.VIETNAM).date()
    birth = today - timedelta(days=100)  # past the 2- and 3-month doses, before the 4-month ones
    for pid, born, org in (("be", birth, "bv1"), ("khac", date(1975, 5, 5), "bv2")):
        _put(services, {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": born.isoformat(),
                        "name": [{"use": "official", "family": "Phạm", "given": ["Thị", pid.title()]}]},
             f"Organization/{org}")  # fmt: skip
        _put(services, {
            "resourceType": "Encounter", "id": f"enc-{pid}", "status": "finished",
            "class": {"system": V3_ACT, "code": "AMB"}, "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": (today - timedelta(days=2)).isoformat()},
            "serviceProvider": {"reference": f"Organization/{org}"},
        }, f"Organization/{org}")  # fmt: skip
    # The demo's way: hepatitis B at birth, BCG, then the 5-in-1 at two months; bOPV 1 forgotten.
    _put(services, _shot("hepb", "08", "J07BC01", birth, 1))
    _put(services, _shot("bcg", "19", "J07AN01", birth + timedelta(days=4), 1))
    _put(services, _shot("penta1", "198", "J07CA11", birth + timedelta(days=62), 1))
    now = datetime.now(show.VIETNAM).replace(microsecond=0)
    for n, value in enumerate((38.5, 37.9)):
        _put(services, _temperature(f"t{n}", now - timedelta(days=2 - n), value))
    _put(services, {
        "resourceType": "DiagnosticReport", "id": "cbc", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "HM"}],
                      "text": "Huyết học"}],
        "code": {"text": "Tổng phân tích tế bào máu"}, "subject": {"reference": "Patient/be"},
        "effectiveDateTime": (today - timedelta(days=1)).isoformat(), "issued": now.isoformat(),
        "performer": [{"reference": "Organization/bv1"}],
        "result": [{"reference": "Observation/t0"}, {"reference": "Observation/t1"}],
        "conclusion": "Không thiếu máu",
    })  # fmt: skip
    letter = base64.b64encode(LETTER).decode()
    _put(services, {
        "resourceType": "DocumentReference", "id": "letter", "status": "current",
        "type": {"text": "Giấy ra viện"}, "subject": {"reference": "Patient/be"}, "date": now.isoformat(),
        "author": [{"reference": "Practitioner/bs1"}], "custodian": {"reference": "Organization/bv1"},
        "description": "Ra viện sau điều trị viêm phế quản",
        "content": [
            {"attachment": {"contentType": "text/plain; charset=utf-8", "data": letter, "title": "giấy ra viện.txt",
                            "size": len(LETTER)}},
            {"attachment": {"contentType": "application/pdf", "url": "https://example.org/x.pdf", "title": "Bản gốc"}},
        ],
    })  # fmt: skip
    _put(services, {
        "resourceType": "DocumentReference", "id": "other", "status": "current", "type": {"text": "Bí mật"},
        "subject": {"reference": "Patient/khac"},
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(b"SECRET").decode()}}],
    }, "Organization/bv2")  # fmt: skip
    accounts = Accounts(services.store, hasher=CHEAP)
    accounts.add("bacsi.thu", PASSWORD, "clinician", organization="Organization/bv1", fhir_user="Practitioner/bs1",
                 now=time.time())  # fmt: skip


@pytest.fixture
def site(fresh_services: Services) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    port = _free_port()
    services = fresh_services
    services.settings = services.settings.with_(auth="on", base_url=f"http://127.0.0.1:{port}/fhir")
    _seed(services)
    with LiveServer(console.mount(create_app(services), services), port=port):
        yield Site(f"http://127.0.0.1:{port}", services)


def _open_record(page: Page, site: Site) -> None:
    page.goto(site.root + "/patients/be")
    page.fill("#username", "bacsi.thu")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.click("button[name=decision][value=allow]")
    expect(page).to_have_url(site.root + "/patients/be")


def _row(page: Page, table: str, text: str) -> Any:
    return page.locator(f"table.{table} tbody tr", has_text=text)


def test_the_record_shows_the_schedule_reports_and_a_document_to_download(page: Page, site: Site) -> None:
    _open_record(page, site)
    doses = page.locator("table.immunizations tbody tr")
    expect(doses).to_have_count(15)
    expect(doses.nth(0)).to_contain_text("Viêm gan B sơ sinh")
    expect(doses.nth(0)).to_contain_text("Đã tiêm")
    expect(doses.nth(0)).to_contain_text("Điểm tiêm trạm Tân Lập")  # the facility, by name
    expect(doses.nth(2)).to_contain_text("5 trong 1")
    expect(doses.nth(2)).to_contain_text("Đã tiêm")
    expect(doses.nth(3)).to_contain_text("Bại liệt uống (bOPV)")
    expect(doses.nth(3)).to_contain_text("Quá hạn")  # due at two months, more than a month ago
    expect(doses.nth(4)).to_contain_text("Đến hạn tiêm")  # the 5-in-1's second dose, at three months
    expect(doses.nth(14)).to_contain_text("Chưa đến hạn")
    report = _row(page, "reports", "Tổng phân tích tế bào máu")
    for text in ("Huyết học", "Chính thức", "Không thiếu máu", "Trạm Y tế xã Tân Lập"):
        expect(report).to_contain_text(text)
    expect(report.locator("td").last).to_have_text("2")
    document = _row(page, "documents", "Giấy ra viện")
    for text in ("Lê Thu", "Trạm Y tế xã Tân Lập", "Ra viện sau điều trị", "https://example.org/x.pdf"):
        expect(document).to_contain_text(text)
    expect(document.locator("a[href*='example.org']")).to_have_count(0)  # a remote URL is text, not a link
    assert not axe_violations(page)

    link = document.locator("a", has_text="giấy ra viện.txt")
    answer = page.request.get(site.root + str(link.get_attribute("href")))
    assert answer.status == 200 and answer.body() == LETTER
    headers = answer.headers
    assert headers["content-type"].startswith("text/plain")
    assert headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''gi%E1%BA%A5y" in headers["content-disposition"]
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"

    # Another facility's patient's document: 404, whether asked under its patient or under this one.
    for path in (
        "/patients/khac/documents/other/0",
        "/patients/be/documents/other/0",
        "/patients/be/documents/letter/1",
    ):
        refused = page.request.get(site.root + path)
        assert refused.status == 404, path
        assert b"SECRET" not in refused.body()


def test_a_vital_sign_with_errors_next_to_the_field_then_saved_and_charted(page: Page, site: Site) -> None:
    _open_record(page, site)
    page.click("text=Ghi chỉ số sinh tồn")
    expect(page.locator("h1")).to_have_text("Ghi chỉ số sinh tồn")
    expect(page.locator("#f-code")).to_have_value("8310-5")
    assert not axe_violations(page)

    page.fill("#f-value", "abc")
    page.click("form.clinical-form button[type=submit]")
    expect(page.locator("#f-value-msg")).to_contain_text("Không phải là số")
    expect(page.locator("#f-value")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-value")).to_have_value("abc")  # what was typed stays, to correct
    expect(page.locator("[role=alert]")).to_contain_text("Chưa lưu")
    assert not axe_violations(page)

    page.fill("#f-value", "60")
    page.click("form.clinical-form button[type=submit]")
    expect(page.locator("#f-value-msg")).to_contain_text("Nhiệt độ phải trong khoảng 25–45 Cel")
    future = (datetime.now(show.VIETNAM) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page.fill("#f-value", "37,2")
    page.fill("#f-when", future)
    page.click("form.clinical-form button[type=submit]")
    expect(page.locator("#f-when-msg")).to_contain_text("tương lai")
    expect(page.locator("#f-value-msg")).to_have_count(0)
    assert _search(site.services, "Observation", ("patient", "Patient/be")).__len__() == 2  # nothing written

    page.fill("#f-when", datetime.now(show.VIETNAM).strftime("%Y-%m-%dT%H:%M"))
    page.select_option("#f-encounter", "Encounter/enc-be")
    page.click("form.clinical-form button[type=submit]")
    expect(page).to_have_url(site.root + "/patients/be?saved=observation")
    expect(page.locator("[role=status]")).to_contain_text("Đã lưu chỉ số")
    expect(page.locator("section[aria-labelledby=s-observations] tbody tr").first).to_contain_text("37.2 Cel")
    trend = page.locator("section[aria-labelledby=s-trends] figure", has_text="Nhiệt độ")
    expect(trend.locator("tbody tr")).to_have_count(3)
    expect(trend.locator("tbody tr").last).to_contain_text("37.2")
    assert not axe_violations(page)
    saved = [o for o in _search(site.services, "Observation", ("patient", "Patient/be")) if o["id"] not in ("t0", "t1")]
    assert len(saved) == 1
    assert saved[0]["performer"] == [{"reference": "Practitioner/bs1"}]
    assert saved[0]["encounter"] == {"reference": "Encounter/enc-be"}
    assert saved[0]["category"][0]["coding"][0]["code"] == "vital-signs"
    assert saved[0]["valueQuantity"]["code"] == "Cel" and saved[0]["effectiveDateTime"].endswith("+07:00")


def test_a_blood_pressure_and_laboratory_results_are_recorded_and_charted(page: Page, site: Site) -> None:
    _open_record(page, site)
    page.click("text=Ghi huyết áp")
    expect(page.locator("h1")).to_have_text("Ghi huyết áp")
    assert not axe_violations(page)
    page.fill("#f-systolic", "80")
    page.fill("#f-diastolic", "120")  # the two numbers swapped
    page.click("form.clinical-form button[type=submit]")
    expect(page.locator("#f-diastolic-msg")).to_contain_text("phải thấp hơn huyết áp tâm thu")
    expect(page.locator("#f-diastolic")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-systolic-msg")).to_have_count(0)
    expect(page.locator("#f-systolic")).to_have_value("80")
    assert not axe_violations(page)
    assert len(_search(site.services, "Observation", ("patient", "Patient/be"))) == 2  # nothing written

    page.fill("#f-systolic", "135")
    page.fill("#f-diastolic", "85")
    page.click("form.clinical-form button[type=submit]")
    expect(page).to_have_url(site.root + "/patients/be?saved=observation")
    rows = page.locator("section[aria-labelledby=s-observations] tbody tr")
    expect(rows.first).to_contain_text("Huyết áp tâm thu: 135 mmHg; Huyết áp tâm trương: 85 mmHg")
    panel = next(o for o in _search(site.services, "Observation", ("code", "85354-9")))
    assert [c["code"]["coding"][0]["code"] for c in panel["component"]] == ["8480-6", "8462-4"]

    # Two glucose results, the first refused for a value no patient has: the chart draws the band.
    for value in ("780", "7,8", "6,1"):
        page.click("text=Ghi kết quả xét nghiệm")
        expect(page.locator("h1")).to_have_text("Ghi kết quả xét nghiệm")
        page.select_option("#f-code", "14749-6")
        page.fill("#f-value", value)
        page.click("form.clinical-form button[type=submit]")
        if value == "780":
            expect(page.locator("#f-value-msg")).to_contain_text("Glucose máu phải trong khoảng 0.5–60 mmol/L")
            assert not axe_violations(page)
            page.goto(site.root + "/patients/be")
        else:
            expect(page).to_have_url(site.root + "/patients/be?saved=observation")
    # Recorded in the same minute as the blood pressure: the order among them is not the point.
    expect(rows.filter(has_text="mmol/L")).to_have_count(2)
    trend = page.locator("section[aria-labelledby=s-trends] figure", has_text="Glucose máu")
    expect(trend.locator("figcaption")).to_contain_text("3.9–6.4")
    expect(trend.locator("tbody tr")).to_have_count(2)
    assert not axe_violations(page)
    labs = _search(site.services, "Observation", ("patient", "Patient/be"), ("category", "laboratory"))
    assert sorted(o["valueQuantity"]["value"] for o in labs) == [6.1, 7.8]
    assert all(o["referenceRange"][0]["low"]["value"] == 3.9 for o in labs)


def test_an_encounter_note_writes_the_encounter_and_its_impression_together(page: Page, site: Site) -> None:
    _open_record(page, site)
    page.click("text=Ghi lần khám")
    expect(page.locator("h1")).to_have_text("Ghi lần khám và nhận xét")
    assert not axe_violations(page)

    # The Encounter is valid, the note is not (the server refuses a NUL character in any string): the
    # transaction's second entry is refused, so its first is not written either.
    page.select_option("#f-class", "AMB")
    page.fill("#f-reason", "Sốt, ho")
    page.locator("#f-note").evaluate("(el) => { el.value = 'Sốt nhẹ\\u0000'; }")
    page.click("form.clinical-form button[type=submit]")
    expect(page.locator("#f-note-msg")).to_contain_text("Chuỗi chứa ký tự NUL")  # the server's words, in Vietnamese
    expect(page.locator("#f-note-msg")).not_to_contain_text("Bundle.entry")
    assert not axe_violations(page)
    assert [e["id"] for e in _search(site.services, "Encounter", ("patient", "Patient/be"))] == ["enc-be"]
    assert _search(site.services, "ClinicalImpression", ("patient", "Patient/be")) == []

    page.fill("#f-note", "Sốt nhẹ 37,8 độ, họng đỏ. Hạ sốt, theo dõi tại nhà.")
    page.click("form.clinical-form button[type=submit]")
    expect(page).to_have_url(site.root + "/patients/be?saved=note")
    expect(page.locator("[role=status]")).to_contain_text("Đã lưu lần khám")
    encounters = [e for e in _search(site.services, "Encounter", ("patient", "Patient/be")) if e["id"] != "enc-be"]
    assert len(encounters) == 1
    encounter = encounters[0]
    assert encounter["status"] == "finished" and encounter["class"]["code"] == "AMB"
    assert encounter["serviceProvider"] == {"reference": "Organization/bv1"}
    assert encounter["reasonCode"] == [{"text": "Sốt, ho"}]
    impressions = _search(site.services, "ClinicalImpression", ("patient", "Patient/be"))
    assert len(impressions) == 1
    assert impressions[0]["encounter"] == {"reference": f"Encounter/{encounter['id']}"}
    assert impressions[0]["summary"].startswith("Sốt nhẹ 37,8 độ")
    assert impressions[0]["assessor"] == {"reference": "Practitioner/bs1"}
    expect(page.locator("section[aria-labelledby=s-encounters] tbody tr")).to_have_count(2)


def test_the_forms_check_times_and_are_origin_checked(page: Page, site: Site) -> None:
    _open_record(page, site)
    page.goto(site.root + "/patients/be/notes/new")
    page.fill("#f-start", "2099-01-01T08:00")
    page.fill("#f-note", "Khám lại")
    page.click("form.clinical-form button[type=submit]")
    expect(page.locator("#f-start-msg")).to_contain_text("tương lai")
    page.click("text=English")
    expect(page.locator("h1")).to_have_text("Record an encounter and its note")
    foreign = page.request.post(site.root + "/patients/be/notes/new", headers={"origin": "https://evil.example"},
                                form={"status": "finished", "class": "AMB", "start": "2026-01-01T08:00",
                                      "note": "x"})  # fmt: skip
    assert foreign.status == 403
    assert len(_search(site.services, "Encounter", ("patient", "Patient/be"))) == 1


def test_every_measurement_the_form_offers_passes_the_servers_strict_validation(site: Site) -> None:
    # Each laboratory test (its LOINC, UCUM unit, reference range) and a blood pressure, as the forms make
    # them, written as an API client would: none refused, none warned about.
    site.services.validator = dataclasses.replace(site.services.validator, level="strict")  # type: ignore[type-var]
    t = i18n.translator("en")
    made = [check_lab({"code": code, "value": str(lab.normal_high or lab.high), "when": "2026-01-02T08:30"}, t, set())
            for code, lab in LAB_TESTS.items()]  # fmt: skip
    made.append(check_blood_pressure({"systolic": "120", "diastolic": "80", "when": "2026-01-02T08:30"}, t, set()))
    for checked, observation in made:
        assert checked.ok, checked.messages
        observation["subject"] = {"reference": "Patient/be"}
        headers = {"content-type": "application/fhir+json", "prefer": "return=OperationOutcome"}
        context = RequestContext.operator("test", "Organization/bv1")
        request = FhirRequest("POST", "Observation", [], headers, observation, "http://x/fhir", context)
        response = handle(site.services, request)
        outcome = response.resource if response.resource is not None else orjson.loads(response.raw or b"{}")
        assert response.status == 201 and outcome["resourceType"] == "OperationOutcome", outcome
        issues = [i for i in outcome.get("issue") or () if i.get("severity") in ("fatal", "error", "warning")]
        assert not issues, (observation["code"], issues)
