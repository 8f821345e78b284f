"""The patient index's review queue in a real browser: a steward compares two records side by side and
decides; "the same person" links them into one golden record (the server does it in the decision's
transaction), "two people" closes the pair; a decision made meanwhile by someone else is not overwritten."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from ketnoi import console
from ketnoi.auth.totp import current_code
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from tests.conftest import LiveServer, _free_port
from tests.console.conftest import axe_violations

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "mật-khẩu-đủ-dài-2026"
OPERATOR = RequestContext.operator("test")
MPI = "https://fhir.ketnoi.vn/CodeSystem/mpi"
CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"


@dataclass
class Site:
    root: str
    services: Services
    totp: str


def _call(services: Services, method: str, path: str, body: Any = None, query: Any = ()) -> FhirResponse:
    headers = {"content-type": "application/fhir+json"}
    return handle(services, FhirRequest(method, path, list(query), headers, body, "http://x/fhir", OPERATOR))


def _put(services: Services, resource: dict[str, Any]) -> None:
    response = _call(services, "PUT", f"{resource['resourceType']}/{resource['id']}", resource)
    assert response.status in (200, 201), response.resource


def _patient(id: str, given: str, birth: str, cccd: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient", "id": id, "gender": "female", "birthDate": birth,
        "name": [{"family": "Trần", "given": ["Thị", given]}],
        "identifier": [{"system": CCCD, "value": cccd}],
    }  # fmt: skip


def _task(id: str, a: str, b: str, grade: str) -> dict[str, Any]:
    """A review Task as the background linker writes it (ketnoi.mpi.link.review)."""
    return {
        "resourceType": "Task", "id": id, "status": "requested", "intent": "proposal",
        "code": {"coding": [{"system": MPI, "code": "match-review"}]},
        "identifier": [{"system": "https://fhir.ketnoi.vn/sid/mpi-pair", "value": f"{a}|{b}"}],
        "focus": {"reference": f"Patient/{a}"}, "for": {"reference": f"Patient/{a}"},
        "authoredOn": "2026-12-01T08:00:00+07:00",
        "input": [
            {"type": {"text": "candidate"}, "valueReference": {"reference": f"Patient/{b}"}},
            {"type": {"text": "grade"}, "valueCode": grade},
            {"type": {"text": "probability"}, "valueDecimal": 0.93},
        ],
    }  # fmt: skip


@pytest.fixture
def site(fresh_services: Services) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    port = _free_port()
    services = fresh_services
    services.settings = services.settings.with_(auth="on", base_url=f"http://127.0.0.1:{port}/fhir")
    _put(services, _patient("a", "Lan", "1990-04-02", "001190000001"))
    _put(services, _patient("b", "Lan", "1990-02-04", "001190000001"))  # day and month swapped
    _put(services, _patient("c", "Mai", "1985-01-01", "001185000002"))
    _put(services, _patient("d", "Mai", "1985-01-01", "001185000003"))  # another CCCD: two people
    _put(services, _task("t-ab", "a", "b", "probable"))
    _put(services, _task("t-cd", "c", "d", "possible"))
    _, secret = Accounts(services.store, hasher=CHEAP).add("quantri", PASSWORD, "admin", now=time.time())
    assert secret is not None
    with LiveServer(console.mount(create_app(services), services), port=port):
        yield Site(f"http://127.0.0.1:{port}", services, secret)


def _sign_in(page: Page, site: Site) -> None:
    page.goto(site.root + "/review")
    page.fill("#username", "quantri")
    page.fill("#password", PASSWORD)
    page.fill("#totp", current_code(site.totp, time.time()))
    page.click("button[type=submit]")
    page.click("button[name=decision][value=allow]")
    expect(page).to_have_url(site.root + "/review")


def _golden_members(services: Services) -> list[set[str]]:
    found = _call(services, "GET", "Patient", query=[("_tag", f"{MPI}|golden")])
    bundle = found.resource if found.resource is not None else orjson.loads(found.raw or b"{}")
    goldens = [e["resource"] for e in bundle.get("entry", [])]
    return [{link["other"]["reference"] for link in g.get("link", [])} for g in goldens]


def _read(services: Services, path: str) -> dict[str, Any]:
    found = _call(services, "GET", path)
    body = found.resource if found.resource is not None else orjson.loads(found.raw or b"null")
    assert found.status == 200 and isinstance(body, dict), found.status
    return body


def _status(services: Services, task: str) -> str:
    return str(_read(services, f"Task/{task}")["status"])


def test_a_steward_compares_links_one_pair_and_keeps_the_other_apart(page: Page, site: Site) -> None:
    _sign_in(page, site)
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("nav")).to_contain_text("Trùng hồ sơ")
    assert not axe_violations(page)

    page.goto(site.root + "/review/t-ab")
    expect(page.locator("h1")).to_have_text("So sánh hai hồ sơ")
    birth = page.locator("table.compare tr", has_text="Ngày sinh")
    expect(birth).to_contain_text("02/04/1990")
    expect(birth).to_contain_text("04/02/1990")
    expect(birth).to_contain_text("≠ Khác")  # a difference is said in words, not only by colour
    expect(page.locator("table.compare tr", has_text="Họ tên")).to_contain_text("Giống")
    assert not axe_violations(page)
    page.click("button[value=same]")
    expect(page).to_have_url(site.root + "/review?done=linked")
    expect(page.locator("[role=status]")).to_contain_text("cùng một người")
    assert _golden_members(site.services) == [{"Patient/a", "Patient/b"}]  # linked in the decision
    assert _status(site.services, "t-ab") == "completed"
    expect(rows).to_have_count(1)

    page.goto(site.root + "/review/t-cd")
    page.click("button[value=different]")
    expect(page).to_have_url(site.root + "/review?done=rejected")
    assert _status(site.services, "t-cd") == "rejected"
    assert _golden_members(site.services) == [{"Patient/a", "Patient/b"}]  # c and d stay apart
    expect(page.locator("main")).to_contain_text("Không có cặp hồ sơ nào chờ xem xét")


def test_a_decision_made_meanwhile_is_not_overwritten(page: Page, site: Site) -> None:
    _sign_in(page, site)
    page.goto(site.root + "/review/t-ab")
    current = _read(site.services, "Task/t-ab")
    _put(site.services, {**current, "status": "rejected"})  # another steward, between page and click
    page.click("button[value=same]")
    expect(page.locator("[role=alert]")).to_contain_text("Người khác vừa quyết định cặp này")
    assert _status(site.services, "t-ab") == "rejected" and _golden_members(site.services) == []
    page.click("text=Tải lại")
    expect(page).to_have_url(re.compile(r"/review/t-ab$"))
