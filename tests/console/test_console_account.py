"""The account page in a real browser (issue 15, ADR 0027 decision 6): a clinician turns on two-step sign-in
with a code computed from the key the page shows (a wrong code first, refused next to its field), signs out
and is asked for the code at the next sign-in; an administrator is told the second factor stays; a password
change ends the account's other sign-ins; a patient has the page too. No serious axe violation anywhere."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Page, expect

from ketnoi import console
from ketnoi.auth.totp import STEP_S, current_code
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from ketnoi.security.admin import ACTION
from tests.conftest import LiveServer, _free_port
from tests.console.conftest import axe_violations

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "mật-khẩu-đủ-dài-2026"
NEW_PASSWORD = "một câu dễ nhớ cho mật khẩu mới"


@dataclass
class Site:
    root: str
    services: Services
    totp: str  # the administrator's


@pytest.fixture
def site(fresh_services: Services) -> Iterator[Site]:
    from ketnoi.api.routes import create_app

    port = _free_port()
    services = fresh_services
    services.settings = services.settings.with_(auth="on", base_url=f"http://127.0.0.1:{port}/fhir")
    accounts = Accounts(services.store, hasher=CHEAP)
    _, secret = accounts.add("quantri", PASSWORD, "admin", now=time.time())
    accounts.add("bacsi.an", PASSWORD, "clinician", organization="Organization/bv1", now=time.time())
    accounts.add("benhnhan.an", PASSWORD, "patient", patient="Patient/an", now=time.time())
    assert secret is not None
    clinic = {"resourceType": "Organization", "id": "bv1", "name": "Bệnh viện Đa khoa Tân Lập"}
    written = handle(
        services, FhirRequest("PUT", "Organization/bv1", body=clinic, context=RequestContext.operator("t"))
    )
    assert written.status == 201
    with LiveServer(console.mount(create_app(services), services), port=port):
        yield Site(f"http://127.0.0.1:{port}", services, secret)


def _sign_in(page: Page, site: Site, target: str, username: str, password: str, code: str | None) -> None:
    page.goto(site.root + target)
    page.fill("#username", username)
    page.fill("#password", password)
    if code is not None:
        page.fill("#totp", code)
    page.click("button[type=submit]")
    page.click("button[name=decision][value=allow]")
    expect(page).to_have_url(site.root + target)


def _wrong(secret: str, now: float) -> str:
    near = {current_code(secret, now + d * STEP_S) for d in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


def _actions(services: Services) -> list[tuple[str, str]]:
    with services.store.session(write=False) as session:
        events = [json.loads(row.event) for row in session.audit_rows(0, 10_000)]
    return [
        (next(s["code"] for s in e["subtype"] if s.get("system") == ACTION), e["outcome"])
        for e in events
        if any(s.get("system") == ACTION for s in e.get("subtype", ()))
    ]


def test_a_clinician_turns_on_two_step_sign_in_and_is_asked_for_the_code(page: Page, site: Site) -> None:
    _sign_in(page, site, "/account", "bacsi.an", PASSWORD, None)
    expect(page.locator("h1")).to_have_text("Tài khoản của tôi")
    expect(page.locator("header nav a[aria-current=page]")).to_have_text("Tài khoản của tôi")
    expect(page.locator("dl.facts")).to_contain_text("Bệnh viện Đa khoa Tân Lập (Organization/bv1)")  # read as the user
    expect(page.locator("dl.facts")).to_contain_text("Nhân viên y tế")
    expect(page.locator("#totp-state")).to_have_text("Đang tắt")
    assert not axe_violations(page)

    page.get_by_role("button", name="Bật đăng nhập hai bước").click()
    expect(page.locator("h1")).to_have_text("Thiết lập đăng nhập hai bước")
    expect(page.locator("img.qr")).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    secret = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    expect(page.locator("#f-old_code")).to_have_count(0)  # nothing to replace
    assert not axe_violations(page)

    # A wrong code: refused next to its field, the same key still shown to try again.
    page.fill("#f-code", _wrong(secret, time.time()))
    page.fill("#f-password", PASSWORD)
    page.click("form[action='/account/totp'] button[type=submit]")
    expect(page.locator("#f-code-msg")).to_contain_text("Mã không đúng")
    expect(page.locator("#f-code")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#totp-secret")).to_have_text(secret)
    assert not axe_violations(page)
    assert Accounts(site.services.store).get("bacsi.an").totp_secret is None  # type: ignore[union-attr]

    page.fill("#f-code", current_code(secret, time.time()))
    page.fill("#f-password", PASSWORD)
    page.click("form[action='/account/totp'] button[type=submit]")
    expect(page).to_have_url(site.root + "/account?done=totp")
    expect(page.locator("[role=status]")).to_contain_text("Đã bật đăng nhập hai bước")
    expect(page.locator("#totp-state")).to_have_text("Đang bật")
    assert not axe_violations(page)
    # The key was never in a URL, a cookie or an event.
    assert all(secret not in c["value"] for c in page.context.cookies())
    assert secret not in json.dumps(_actions(site.services))
    assert _actions(site.services) == [("account-totp", "4"), ("account-totp", "0")]

    page.click("header button[type=submit]")  # sign out
    expect(page.locator("h1")).to_have_text("Bạn đã đăng xuất.")
    page.goto(site.root + "/account")
    page.fill("#username", "bacsi.an")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("cần mã xác thực 6 số")  # asked for the code
    page.fill("#username", "bacsi.an")
    page.fill("#password", PASSWORD)
    # The code of the next step: the one typed to confirm the key is used up (RFC 6238 §5.2).
    page.fill("#totp", current_code(secret, time.time() + STEP_S))
    page.click("button[type=submit]")
    page.click("button[name=decision][value=allow]")
    expect(page).to_have_url(site.root + "/account")
    expect(page.locator("#totp-state")).to_have_text("Đang bật")


def test_an_administrator_keeps_the_second_factor(page: Page, site: Site) -> None:
    _sign_in(page, site, "/account", "quantri", PASSWORD, current_code(site.totp, time.time()))
    expect(page.locator("#totp-state")).to_have_text("Đang bật")
    expect(page.locator("#totp-required")).to_contain_text("không thể tắt")
    expect(page.locator("form[action='/account/totp/off']")).to_have_count(0)
    expect(page.get_by_role("button", name="Thay khoá (điện thoại mới)")).to_be_visible()
    assert not axe_violations(page)
    posted = page.request.post(
        site.root + "/account/totp/off", headers={"origin": site.root},
        form={"off_password": PASSWORD, "off_code": current_code(site.totp, time.time() + STEP_S)},
    )  # fmt: skip
    assert posted.status == 403 and "phải luôn có bước xác thực thứ hai" in posted.text()
    assert Accounts(site.services.store).get("quantri").totp_secret == site.totp  # type: ignore[union-attr]

    # Replacing the key asks for a code of the old one as well.
    page.get_by_role("button", name="Thay khoá (điện thoại mới)").click()
    expect(page.locator("#f-old_code")).to_be_visible()
    assert not axe_violations(page)


def test_a_new_password_signs_the_other_browsers_out(page: Page, site: Site, browser: Browser) -> None:
    other = browser.new_context(locale="vi-VN")  # the same person, signed in on another computer
    try:
        theirs = other.new_page()
        _sign_in(theirs, site, "/account", "bacsi.an", PASSWORD, None)
        _sign_in(page, site, "/account", "bacsi.an", PASSWORD, None)

        page.fill("#f-current", PASSWORD)
        page.fill("#f-new", NEW_PASSWORD)
        page.fill("#f-new2", NEW_PASSWORD + "!")
        page.click("form[action='/account/password'] button[type=submit]")
        expect(page.locator("#f-new2-msg")).to_contain_text("không khớp")
        page.fill("#f-current", "không phải mật khẩu")
        page.fill("#f-new", NEW_PASSWORD)
        page.fill("#f-new2", NEW_PASSWORD)
        page.click("form[action='/account/password'] button[type=submit]")
        expect(page.locator("#f-current-msg")).to_contain_text("Mật khẩu hiện tại không đúng")
        expect(page.locator("#f-current")).to_have_attribute("aria-invalid", "true")
        assert not axe_violations(page)

        page.fill("#f-current", PASSWORD)
        page.fill("#f-new", NEW_PASSWORD)
        page.fill("#f-new2", NEW_PASSWORD)
        page.click("form[action='/account/password'] button[type=submit]")
        expect(page).to_have_url(re.compile(r"/account\?done=password&ended=1$"))
        expect(page.locator("[role=status]")).to_contain_text("Đã đăng xuất 1 phiên đăng nhập khác")
        page.reload()  # this session goes on
        expect(page.locator("h1")).to_have_text("Tài khoản của tôi")

        theirs.goto(site.root + "/account")  # the other one is over: back to the sign-in page
        expect(theirs).to_have_url(re.compile(r"/auth/authorize"))
    finally:
        other.close()
    assert _actions(site.services) == [("account-password", "4"), ("account-password", "0")]


def test_a_patient_has_the_page_too(page: Page, site: Site) -> None:
    _sign_in(page, site, "/account", "benhnhan.an", PASSWORD, None)
    expect(page.locator("dl.facts")).to_contain_text("Bệnh nhân")
    expect(page.locator("dl.facts")).to_contain_text("Patient/an")
    expect(page.get_by_role("button", name="Bật đăng nhập hai bước")).to_be_visible()  # optional for them
    expect(page.locator("form[action='/account/password']")).to_be_visible()
    assert not axe_violations(page)
