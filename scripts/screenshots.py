"""Screenshots of the console's main pages in Vietnamese, for docs/screenshots/ (``make screenshots``).

It does what a newcomer does with ``make run``, in a temporary folder: generates a small demo population,
loads it into a new SQLite database, links its duplicates (``ketnoi mpi dedupe``), makes the demo
accounts, serves with sign-in required, then signs in as the demo clinician, patient and administrator
in Debian's chromium (Playwright) and photographs each page. A page that answers 404 (not built yet) is
skipped with a line on stderr. Nothing is downloaded.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--patients 150]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pyotp
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
KETNOI = [sys.executable, "-m", "ketnoi"]
#: (file name, path, who); a path with {patient} gets the first patient the clinician's search finds.
PAGES: list[tuple[str, str, str]] = [
    ("01-home", "/", "clinician"),
    ("02-patient-search", "/patients?q={search}", "clinician"),
    ("03-patient-record", "/patients/{patient}", "clinician"),
    ("04-emergency-access", "/patients/{patient}/emergency", "clinician"),
    ("05-registries", "/registry", "clinician"),
    ("06-portal-record", "/me", "patient"),
    ("07-portal-access-log", "/me/access", "patient"),
    ("08-portal-consent", "/me/consent", "patient"),
    ("09-audit-viewer", "/audit", "admin"),
    ("10-dashboard", "/dashboard?year=2025", "admin"),
    ("11-review-queue", "/review", "admin"),
    ("12-observation-form", "/patients/{patient}/observations/new", "clinician"),
    ("13-portal-appointments", "/me/appointments", "patient"),
    ("14-claims-imports", "/imports", "admin"),
    ("15-dashboard-province", "/dashboard?year=2025", "provincial"),
    ("16-server-status", "/ops", "admin"),
    ("17-accounts", "/ops/users", "admin"),
    ("18-my-account", "/account", "clinician"),
    ("19-blood-pressure-form", "/patients/{patient}/observations/new?kind=bp", "clinician"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--patients", type=int, default=150)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.stderr.write("error: chromium is not installed: run scripts/browser-install.sh\n")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ketnoi-shots-") as tmp:
        url, accounts, server = _serve(Path(tmp), args.patients)
        try:
            _shoot(chromium, url, accounts, args.out)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


def _run(*argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([*KETNOI, *argv], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: ketnoi {argv[0]} {argv[1] if len(argv) > 1 else ''}: {done.stderr.strip()}")
    return done.stdout


def _serve(tmp: Path, patients: int) -> tuple[str, dict[str, Any], subprocess.Popen[bytes]]:
    """A server on the demo data, as ``make run`` starts it: (its address, the demo accounts, the process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url, database = f"http://127.0.0.1:{port}", f"sqlite:///{tmp}/ketnoi.db"
    env = {**os.environ, "KETNOI_CARE_WINDOW_DAYS": "3650", "KETNOI_EXPORT_DIR": str(tmp / "export")}
    _run("migrate", "--database", database)
    _run("demo", "generate", "--patients", str(patients), "--seed", "1", "--out", str(tmp / "demo"))
    _run("load", "--database", database, "--owners", str(tmp / "demo" / "owners.csv"), str(tmp / "demo"))
    _run("mpi", "dedupe", "--database", database)
    accounts = json.loads(_run("demo", "accounts", "--database", database, "--base-url", url))
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(
        [*KETNOI, "serve", "--database", database, "--port", str(port), "--auth", "on"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return url, accounts, server
        except httpx.TransportError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit(f"error: the server did not start: {(tmp / 'server.log').read_text()[-2000:]}")


def _sign_in(page: Page, url: str, account: dict[str, Any]) -> None:
    page.goto(url + "/signin")
    page.fill("#username", account["username"])
    page.fill("#password", account["password"])
    if account.get("totp_secret"):
        page.fill("#totp", pyotp.TOTP(account["totp_secret"]).now())
    page.click("button[type=submit]")
    allow = page.locator("button[name=decision][value=allow]")
    if allow.count():
        allow.click()
    page.wait_for_url(url + "/**")


def _shoot(chromium: str, url: str, accounts: dict[str, Any], out: Path) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            found: dict[str, str] = {}
            for who in ("clinician", "patient", "provincial", "admin"):
                context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
                page = context.new_page()
                _sign_in(page, url, accounts[who])
                if who == "clinician":
                    found = _first_patient(page, url)
                for name, path, owner in PAGES:
                    if owner == who:
                        _photo(page, url + path.format(**found), out / f"{name}.png")
                context.close()
        finally:
            browser.close()


def _first_patient(page: Page, url: str) -> dict[str, str]:
    """A patient the demo clinician may see, found as a user would: a family name typed without diacritics."""
    for family in ("nguyen", "tran", "le", "pham"):
        page.goto(f"{url}/patients?q={family}")
        link = page.locator("table.list tbody a").first
        if link.count():
            return {"search": family, "patient": (link.get_attribute("href") or "").rsplit("/", 1)[-1]}
    raise SystemExit("error: the demo clinician's search found no patient")


def _photo(page: Page, target: str, path: Path) -> None:
    answer = page.goto(target)
    if answer is not None and answer.status == 404 and "/patients/" not in target:
        sys.stderr.write(f"skipped {path.name}: {target} answered 404\n")
        return
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=True)
    sys.stdout.write(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}\n")


if __name__ == "__main__":
    sys.exit(main())
