"""Fast on a slow provincial link (issue 15): no page needs more than 200 KB of compressed scripts and
stylesheets, every one of them ships in the package (no CDN, no font service), and they travel gzipped."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import httpx

from ketnoi import console
from ketnoi.interactions.services import Services
from tests.conftest import LiveServer

HERE = Path(console.__file__).parent
BUDGET = 200 * 1024
_ASSET = re.compile(r"""<(?:script[^>]*\bsrc|link[^>]*\bhref)=["']([^"']+)["']""")
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)""")


def _assets() -> set[str]:
    """Every script and stylesheet any template names (all pages together: an upper bound of any one)."""
    found: set[str] = set()
    for template in (HERE / "templates").glob("*.html"):
        found.update(_ASSET.findall(template.read_text(encoding="utf-8")))
    return found


def test_scripts_and_styles_ship_in_the_package_and_weigh_under_the_budget() -> None:
    assets = _assets()
    assert "/static/console.css" in assets and "/static/vendor/uplot/uPlot.iife.min.js" in assets
    assert all(a.startswith("/static/") for a in assets), sorted(assets)  # no CDN
    files = [HERE / a.removeprefix("/") for a in assets]
    assert all(f.is_file() for f in files), files
    for css in (f for f in files if f.suffix == ".css"):  # no web font or image from elsewhere
        external = [u for u in _CSS_URL.findall(css.read_text(encoding="utf-8")) if not u.startswith("data:")]
        assert not external, (css, external)
    compressed = sum(len(gzip.compress(f.read_bytes())) for f in files)
    assert compressed < BUDGET, compressed


def test_static_files_travel_compressed(fresh_services: Services) -> None:
    from ketnoi.api.routes import create_app

    app = console.mount(create_app(fresh_services), fresh_services)
    with LiveServer(app) as live, httpx.Client(base_url=f"http://127.0.0.1:{live.port}", timeout=30) as client:
        answer = client.get("/static/vendor/uplot/uPlot.iife.min.js", headers={"accept-encoding": "gzip"})
        plain = client.get("/static/vendor/uplot/uPlot.iife.min.js", headers={"accept-encoding": "identity"})
    assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert answer.content == plain.content  # httpx undoes the gzip: the same script
    assert int(answer.headers["content-length"]) < len(plain.content) / 2
