"""Real-browser tests: Playwright drives Debian's chromium (/usr/bin/chromium), axe-core checks accessibility.

Nothing is downloaded while the tests run: ``scripts/browser-install.sh`` (called by ``make test``) installs
chromium with apt and axe-core from the npm registry into .axe/; ``playwright install`` is never used
(docs/testing-browser.md). Without chromium, Playwright or axe-core the tests skip with the command that
installs it, except in CI (``CI=true``), where that is a failure: CI never skips.

Fixtures:
- ``browser`` (session): one headless chromium per test process (xdist worker).
- ``page`` (function): a new page in its own browser context (locale vi-VN), closed after the test.
- ``live_app`` (function): the base URL (``http://127.0.0.1:PORT``, no trailing slash) of the real app
  (``ketnoi.api.routes.create_app``) served by uvicorn over a new, empty SQLite database. A test that
  seeds data or changes settings before the server starts requests ``fresh_services`` too: within one
  test it is the same ``Services`` the server uses.
And ``axe_violations(page)``, the serious and critical axe-core violations of the page as it is now.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from ketnoi.interactions.services import Services
from tests.conftest import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / ".axe" / "node_modules" / "axe-core" / "axe.min.js"
INSTALL_BROWSER = "scripts/browser-install.sh"
INSTALL_PLAYWRIGHT = ".venv/bin/pip install -e '.[dev]'"
# The machine's network is closed: without these chromium keeps trying to reach Google's services
# (updates, sync, QUIC probes) and logs every refused connection. No GPU and, as root, no sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable(what: str, command: str) -> NoReturn:
    """Skip the test, or fail it under ``CI=true`` (the project's rule: CI never skips)."""
    message = f"{what}: run `{command}`"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed", INSTALL_PLAYWRIGHT)
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"no chromium at {CHROMIUM}", INSTALL_BROWSER)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="vi-VN")
    try:
        yield context.new_page()
    finally:
        context.close()


# Browser tests run on SQLite only: what they test is the HTML, and the FHIR suites already cover both
# backends. This override keeps the shared fixture (tests/conftest.py: a new migrated database, the audit
# journal in tmp_path, its teardown) and narrows its parameters to SQLite for every test in this folder;
# pytest hands the parameter on to the overridden fixture, which builds the services. Test ids read
# `[sqlite]`, and `make test-sqlite` (-k "not postgres") keeps them. A test that wants PostgreSQL as well
# says so: @pytest.mark.parametrize("fresh_services", ["sqlite", "postgres"], indirect=True).
@pytest.fixture(params=["sqlite"])
def fresh_services(fresh_services: Services) -> Services:
    return fresh_services


@pytest.fixture
def live_app(fresh_services: Services) -> Iterator[str]:
    """The API with the console mounted (as ``ketnoi serve`` has it), without sign-in (``--auth off``)."""
    from ketnoi import console
    from ketnoi.api.routes import create_app

    with LiveServer(console.mount(create_app(fresh_services), fresh_services)) as server:
        yield f"http://127.0.0.1:{server.port}"


# Runs in the page: axe.run() over the whole document, the violations of the given impacts reduced to
# what a failing assertion should show.
_RUN_AXE = """async (impacts) => {
    const results = await axe.run(document);
    return results.violations
        .filter((v) => impacts.includes(v.impact))
        .map((v) => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target)}));
}"""


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Page, impacts: Sequence[str] = ("serious", "critical")) -> list[dict[str, Any]]:
    """The page's axe-core violations of these impacts: ``[{id, impact, help, targets}]`` (``targets``:
    one CSS selector path per offending node). ``assert not axe_violations(page)`` shows them all."""
    if not AXE.is_file():
        unavailable(f"axe-core is not installed ({AXE.relative_to(ROOT)})", INSTALL_BROWSER)
    # Not page.add_script_tag(path=AXE): that inserts an inline <script>, which the project's pages refuse
    # (Content-Security-Policy: default-src 'none', ketnoi/api/pages.py), and bypass_csp on the context
    # would hide a console script that the real policy blocks. Evaluated through the DevTools protocol,
    # axe runs under the page's policy untouched, and adds no element to the document it checks.
    if page.evaluate("typeof axe === 'undefined'"):
        page.evaluate(_axe_source())
    violations: list[dict[str, Any]] = page.evaluate(_RUN_AXE, list(impacts))
    return violations + reflow_violations(page)


#: WCAG 2.1 AA 1.4.10 (Reflow), which axe does not test: at 320 CSS pixels wide (a phone, or 400 % zoom)
#: nothing makes the page scroll sideways; a wide table scrolls inside its own box, as the criterion allows.
REFLOW_WIDTH = 320
_WIDE_ELEMENTS = """(width) => {
    // Its box, or text overflowing it (a long word does not widen its box), past the edge; the page may be scrolled.
    const right = (e) => { const r = e.getBoundingClientRect(); return Math.max(r.right, r.left + e.scrollWidth); };
    const out = (e) => right(e) + window.scrollX > width + 1;
    const boxed = (e) => {
        const box = e.parentElement && e.parentElement.closest('.scroll');
        return box && !out(box);
    };
    const named = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '');
    const wide = [...document.body.querySelectorAll('*')].filter((e) => out(e) && !boxed(e));
    // The innermost: the element whose content is too wide, not every box around it.
    return wide.filter((e) => ![...e.children].some((c) => wide.includes(c))).slice(0, 5).map(named)
        .concat([`document ${document.documentElement.scrollWidth}px wide`]);
}"""


def reflow_violations(page: Page) -> list[dict[str, Any]]:
    """The page seen REFLOW_WIDTH pixels wide (then put back): a violation naming the outermost elements
    that stick out when the document is wider than the screen."""
    size = page.viewport_size
    page.set_viewport_size({"width": REFLOW_WIDTH, "height": 640})
    try:
        wide = page.evaluate("document.documentElement.scrollWidth") > REFLOW_WIDTH
        targets = page.evaluate(_WIDE_ELEMENTS, REFLOW_WIDTH) if wide else []
    finally:
        if size is not None:
            page.set_viewport_size(size)
    help_ = f"Content must reflow at {REFLOW_WIDTH} CSS pixels without scrolling sideways (WCAG 1.4.10)"
    return [{"id": "reflow", "impact": "serious", "help": help_, "targets": targets}] if wide else []
