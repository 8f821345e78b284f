"""Secure by default: every console page that is not part of signing in needs a session, and every
POST needs this site's own origin; a new page that forgets either fails here (it is found by walking
the routes the console mounts, not from a list kept by hand)."""

from __future__ import annotations

import re

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from ketnoi import console
from ketnoi.interactions.services import Services
from tests.conftest import LiveServer

#: Pages anyone may open: the sign-in steps, the language switch, the stylesheet and scripts.
PUBLIC = {"/signin", "/callback", "/signout", "/lang/{lang}"}


def _with_console(services: Services) -> tuple[Starlette, list[Route]]:
    """The app as ``ketnoi serve`` builds it, and the routes the console put in front of the API's."""
    from ketnoi.api.routes import create_app

    api_only = len(create_app(services).router.routes)
    app = console.mount(create_app(services), services)
    mounted = app.router.routes[: len(app.router.routes) - api_only]
    assert any(isinstance(r, Mount) and r.path == "/static" for r in mounted)  # the walk sees the console
    return app, [r for r in mounted if isinstance(r, Route)]


def test_every_page_redirects_to_sign_in_without_a_session(fresh_services: Services) -> None:
    fresh_services.settings = fresh_services.settings.with_(auth="on")
    app, routes = _with_console(fresh_services)
    checked = []
    with LiveServer(app) as live, httpx.Client(base_url=f"http://127.0.0.1:{live.port}", timeout=30) as client:
        own = f"http://127.0.0.1:{live.port}"
        for route in routes:
            if route.path in PUBLIC:
                continue
            url = re.sub(r"\{[^}]+\}", "x", route.path)
            for method in sorted(route.methods or {"GET"}):
                if method == "HEAD":
                    continue
                headers = {"origin": own} if method == "POST" else {}
                answer = client.request(method, url, headers=headers, follow_redirects=False)
                assert answer.status_code == 303, (method, route.path, answer.status_code)
                assert answer.headers["location"].startswith("/signin"), (method, route.path)
                if method == "POST":  # and from another site: refused before anything else
                    foreign = client.request(method, url, headers={"origin": "https://evil.example"})
                    assert foreign.status_code == 403, (route.path, foreign.status_code)
                checked.append(f"{method} {route.path}")
    # The walk reached the pages of every feature module, GETs and POSTs.
    for expected in ("GET /patients", "GET /audit", "GET /registry", "GET /dashboard", "POST /me/consent/{what:str}"):
        assert expected in checked, (expected, checked)


def test_behind_a_proxy_a_form_from_the_public_address_passes_the_origin_check(fresh_services: Services) -> None:
    # The server is reached as http://127.0.0.1:port (what a TLS-terminating proxy forwards to); the
    # browser's page, and so its Origin, is the public https address the settings name.
    fresh_services.settings = fresh_services.settings.with_(auth="on", base_url="https://ketnoi.example.vn/fhir")
    app, _ = _with_console(fresh_services)
    with LiveServer(app) as live, httpx.Client(base_url=f"http://127.0.0.1:{live.port}", timeout=30) as client:
        public = client.post("/me/consent/category", headers={"origin": "https://ketnoi.example.vn"})
        assert public.status_code == 303 and public.headers["location"].startswith("/signin")  # past the gate
        other = client.post("/me/consent/category", headers={"origin": "https://ketnoi.example.vn.evil.example"})
        assert other.status_code == 403
        plain = client.post("/me/consent/category", headers={"origin": "http://ketnoi.example.vn"})
        assert plain.status_code == 403  # http is not the https site
