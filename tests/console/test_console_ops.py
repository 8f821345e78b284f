"""The operators' pages in a real browser (ADR 0027): a national administrator sees the server's state and
the background jobs with their progress, adds an account (a refused value first, shown next to its field),
sees its TOTP QR code once, disables it (and it can no longer sign in), registers and revokes an app; a
clinician is refused every operators' page."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Page, expect

from ketnoi import console
from ketnoi.auth.totp import current_code
from ketnoi.interactions.services import Services
from ketnoi.jobs.runner import JobRunner
from ketnoi.security.accounts import Accounts
from ketnoi.security.admin import ACTION
from tests.conftest import LiveServer, _free_port
from tests.console.conftest import axe_violations

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "mật-khẩu-đủ-dài-2026"


@dataclass
class Site:
    root: str
    services: Services
    totp: str  # the administrator's
    job: int  # an import job, one file of four done


@pytest.fixture
def site(fresh_services: Services) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    port = _free_port()
    services = fresh_services
    services.settings = services.settings.with_(auth="on", base_url=f"http://127.0.0.1:{port}/fhir")
    accounts = Accounts(services.store, hasher=CHEAP)
    _, secret = accounts.add("quantri", PASSWORD, "admin", now=time.time())
    accounts.add("bacsi.an", PASSWORD, "clinician", organization="Organization/bv1", now=time.time())
    assert secret is not None
    job = _running_import(services)
    with LiveServer(console.mount(create_app(services), services), port=port):
        yield Site(f"http://127.0.0.1:{port}", services, secret, job)


def _running_import(services: Services) -> int:
    """An import job, one file of four read, held by a worker of its own (so that the server's runner
    leaves it alone): what the list shows while a real import runs."""
    job = JobRunner(services.store).submit("import", {}, {"inputs": [{}, {}, {}, {}], "current": 0, "errors": []})
    now = time.time()
    with services.store.session(write=True) as session:
        claimed = session.claim_job(["import"], "elsewhere", now, now + 3600, job_id=job.id)
        assert claimed is not None
        progress = json.dumps({"inputs": [{}, {}, {}, {}], "current": 1, "errors": []})
        session.update_job(job.id, "elsewhere", state="running", progress=progress, error=None,
                           lease_until=now + 3600, now=now)  # fmt: skip
    return job.id


def _sign_in(page: Page, site: Site, target: str, username: str, password: str, totp: str | None) -> None:
    page.goto(site.root + target)
    page.fill("#username", username)
    page.fill("#password", password)
    if totp is not None:
        page.fill("#totp", current_code(totp, time.time()))
    page.click("button[type=submit]")
    page.click("button[name=decision][value=allow]")
    expect(page).to_have_url(site.root + target)


def _events(services: Services) -> list[dict[str, Any]]:
    with services.store.session(write=False) as session:
        rows = session.audit_rows(0, 10_000)
    events = [json.loads(row.event) for row in rows]
    return [e for e in events if any(s.get("system") == ACTION for s in e.get("subtype", ()))]


def test_an_administrator_sees_the_server_and_its_jobs(page: Page, site: Site) -> None:
    _sign_in(page, site, "/ops", "quantri", PASSWORD, site.totp)
    expect(page.locator("h1")).to_have_text("Tình trạng máy chủ")
    expect(page.locator("nav[aria-label]").first).to_contain_text("Vận hành")
    server = page.locator("section[aria-labelledby=s-server]")
    expect(server).to_contain_text("sqlite")
    expect(server).to_contain_text("Bật")  # sign-in on
    expect(server).to_contain_text(f"{site.root}/fhir")
    expect(page.locator("section[aria-labelledby=s-jobs]")).to_contain_text("Đang chạy")
    expect(page.locator("section[aria-labelledby=s-counts] tbody tr")).to_have_count(9)
    assert not axe_violations(page)

    page.click("a[href='/ops/jobs']")
    row = page.locator("table.jobs tbody tr", has_text="Nhập dữ liệu")
    expect(row.locator("progress")).to_have_attribute("value", "1")
    expect(row.locator("progress")).to_have_attribute("max", "4")
    expect(row).to_contain_text("1 / 4 tệp")
    expect(row).to_contain_text("Đang chạy")
    assert not axe_violations(page)
    # Cancelled through $import-status, as the API allows a caller of the job's organization (national).
    row.get_by_role("button", name=f"Huỷ tác vụ {site.job}").click()
    expect(page).to_have_url(site.root + f"/ops/jobs?cancelled={site.job}")
    expect(page.locator("[role=status]")).to_contain_text(f"Đã huỷ tác vụ số {site.job}")
    expect(row).to_contain_text("Đã huỷ")
    expect(row.get_by_role("button")).to_have_count(0)
    assert JobRunner(site.services.store).get(site.job).state == "cancelled"  # type: ignore[union-attr]


def test_an_administrator_adds_an_account_sees_its_code_once_and_disables_it(
    page: Page, site: Site, browser: Browser
) -> None:
    _sign_in(page, site, "/ops/users", "quantri", PASSWORD, site.totp)
    expect(page.locator("table.accounts tbody tr")).to_have_count(2)
    assert not axe_violations(page)

    # A name already taken: refused next to its field, the other values kept.
    page.fill("#f-username", "QuanTri")
    page.select_option("#f-role", "admin")
    page.check("#f-generate")
    page.click("form[action='/ops/users'] button[type=submit]")
    expect(page.locator("#f-username-msg")).to_contain_text("đã được dùng")
    expect(page.locator("#f-username")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-role")).to_have_value("admin")
    assert not axe_violations(page)

    page.fill("#f-username", "qt.moi")
    page.check("#f-generate")
    page.click("form[action='/ops/users'] button[type=submit]")
    expect(page.locator("h1")).to_have_text("Đã thêm tài khoản")
    expect(page).to_have_url(site.root + "/ops/users")  # the answer to the POST: no secret in any URL
    qr = page.locator("img.qr")
    expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    expect(qr).to_have_attribute("alt", re.compile("Mã QR"))
    secret = page.locator("code.ident").nth(1).inner_text()
    password = page.locator("code.ident").first.inner_text()
    expect(page.locator(".secret")).to_contain_text(f"otpauth://totp/ketnoi:qt.moi?secret={secret}")
    assert not axe_violations(page)

    page.goto(site.root + "/ops/users")  # shown once: nowhere on the list
    expect(page.locator("table.accounts tbody tr")).to_have_count(3)
    assert secret not in page.content() and password not in page.content()
    row = page.locator("table.accounts tbody tr", has_text="qt.moi")
    expect(row).to_contain_text("Quản trị viên quốc gia")
    expect(row).to_contain_text("Đang hoạt động")
    row.get_by_role("button", name="Vô hiệu hoá qt.moi").click()
    expect(page).to_have_url(site.root + "/ops/users?done=disable")
    expect(page.locator("[role=status]")).to_contain_text("Đã vô hiệu hoá tài khoản")
    expect(page.locator("table.accounts tbody tr", has_text="qt.moi")).to_contain_text("Đã vô hiệu hoá")

    other = browser.new_context(locale="vi-VN")  # the disabled account's owner, on another browser
    try:
        theirs = other.new_page()
        theirs.goto(site.root + "/")
        theirs.fill("#username", "qt.moi")
        theirs.fill("#password", password)
        theirs.fill("#totp", current_code(secret, time.time()))
        theirs.click("button[type=submit]")
        expect(theirs).to_have_url(re.compile(r"/auth/authorize"))
        expect(theirs.locator("body")).to_contain_text("mật khẩu")
        assert "ketnoi_console" not in {c["name"] for c in other.cookies()}
    finally:
        other.close()

    events = [e for e in _events(site.services) if e["action"] != "R"]  # the changes (each look is recorded too)
    assert [(e["subtype"][1]["code"], e["outcome"]) for e in events] == [
        ("users-add", "4"), ("users-add", "0"), ("users-disable", "0")
    ]  # fmt: skip
    assert secret not in json.dumps(events) and password not in json.dumps(events)


def test_an_administrator_registers_an_app_and_revokes_it(page: Page, site: Site) -> None:
    _sign_in(page, site, "/ops/clients", "quantri", PASSWORD, site.totp)
    own = page.locator("table.clients tbody tr", has_text="ketnoi console")  # the console's own app
    expect(own).to_contain_text("Trang quản trị này")
    expect(own.get_by_role("button")).to_have_count(0)  # not revocable from here: it would lock everyone out
    page.fill("#f-name", "Sổ sức khoẻ")
    page.select_option("#f-kind", "confidential")
    page.fill("#f-scope", "user/*.rs")
    page.fill("#f-redirect_uris", "http://app.example.vn/callback")  # plain http off the loopback
    page.click("form[action='/ops/clients'] button[type=submit]")
    expect(page.locator("#f-redirect_uris-msg")).to_contain_text("https")
    expect(page.locator("#f-name")).to_have_value("Sổ sức khoẻ")
    assert not axe_violations(page)

    page.fill("#f-redirect_uris", "https://app.example.vn/callback")
    page.click("form[action='/ops/clients'] button[type=submit]")
    expect(page.locator("h1")).to_have_text("Đã đăng ký ứng dụng")
    expect(page.locator(".secret")).to_contain_text("client_secret")
    assert not axe_violations(page)

    page.goto(site.root + "/ops/clients")
    row = page.locator("table.clients tbody tr", has_text="Sổ sức khoẻ")
    expect(row).to_contain_text("Bảo mật")
    row.get_by_role("button", name="Thu hồi Sổ sức khoẻ").click()
    expect(page).to_have_url(site.root + "/ops/clients?done=revoked")
    expect(page.locator("table.clients tbody tr", has_text="Sổ sức khoẻ")).to_contain_text("Đã thu hồi")


def test_a_clinician_is_refused_every_operators_page(page: Page, site: Site) -> None:
    _sign_in(page, site, "/", "bacsi.an", PASSWORD, None)
    expect(page.locator("header nav")).not_to_contain_text("Vận hành")
    for path in ("/ops", "/ops/jobs", "/ops/users", "/ops/clients"):
        answer = page.goto(site.root + path)
        assert answer is not None and answer.status == 403, path
        expect(page.locator("h1")).to_contain_text("Chỉ quản trị viên quốc gia")
    assert not axe_violations(page)
    posted = page.request.post(
        site.root + "/ops/users", headers={"origin": site.root},
        form={"username": "ke.gian", "role": "admin", "generate": "on"},
    )  # fmt: skip
    assert posted.status == 403
    assert Accounts(site.services.store).get("ke.gian") is None
    refused = _events(site.services)  # every refused look, then the refused change
    assert [(e["subtype"][-1]["code"], e["outcome"]) for e in refused] == [
        ("server-status", "4"), ("jobs-list", "4"), ("users-list", "4"), ("clients-list", "4"), ("users-add", "4")
    ]  # fmt: skip
    assert refused[0]["agent"][0]["who"]["identifier"]["value"] == "bacsi.an"
