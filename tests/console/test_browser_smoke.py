"""The browser-test machinery itself (tests/console/conftest.py): chromium opens the real app, and the
accessibility check finds what it should, so that ``assert not axe_violations(page)`` cannot pass by
checking nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.console.conftest import axe_violations

if TYPE_CHECKING:  # imported for the annotations only: without playwright the fixtures skip (or fail in CI)
    from playwright.sync_api import Page


def test_landing_page_has_a_title_a_language_and_no_serious_accessibility_violation(page: Page, live_app: str) -> None:
    response = page.goto(f"{live_app}/")
    assert response is not None and response.status == 200
    assert page.title().strip()
    assert page.locator("html").get_attribute("lang")
    assert not axe_violations(page)


def test_axe_finds_an_image_without_alt_and_an_unlabelled_input(page: Page) -> None:
    page.set_content('<html><body><img src="x.png"><input></body></html>')
    found = {v["id"]: v for v in axe_violations(page)}
    assert {"image-alt", "label"} <= found.keys(), found
    assert found["image-alt"]["impact"] == "critical"
    assert found["image-alt"]["targets"] == [["img"]]
    assert found["label"]["targets"] == [["input"]]


def test_axe_runs_under_the_strict_content_security_policy_of_the_sign_in_pages(page: Page, live_app: str) -> None:
    # /auth/authorize without its parameters: the sign-in error page, with default-src 'none'.
    response = page.goto(f"{live_app}/auth/authorize")
    assert response is not None and response.status == 400
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x.png>')")
    assert [v["id"] for v in axe_violations(page)] == ["image-alt"]


def test_the_reflow_check_finds_a_page_too_wide_for_a_phone_and_passes_a_wide_table_in_its_box(page: Page) -> None:
    page.set_content('<html lang="en"><body><main><div id="w" style="width:600px">wide</div></main></body></html>')
    found = [v for v in axe_violations(page) if v["id"] == "reflow"]
    assert found and found[0]["targets"][0] == "div#w", found
    page.set_content(
        '<html lang="en"><body><main><div class="scroll" style="overflow-x:auto">'
        '<table><tr><td style="width:900px">a wide table</td></tr></table></div></main></body></html>'
    )
    assert not [v for v in axe_violations(page) if v["id"] == "reflow"]
    assert page.viewport_size is not None and page.viewport_size["width"] > 320  # put back after the check
