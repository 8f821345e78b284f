"""The console's dashboard pages."""

from __future__ import annotations

from starlette.routing import Route

from ketnoi.console.views import Console


def routes(console: Console) -> list[Route]:
    return []
