"""The network address a request came from, read in one place for every edge route."""

from __future__ import annotations

from starlette.requests import Request


def address(request: Request) -> str | None:
    """The peer's address (None when the server does not know it, e.g. a Unix socket)."""
    return request.client.host if request.client is not None else None


def throttle_key(request: Request) -> str:
    """The rate limiters' key: the address, or one shared bucket for callers without one."""
    return address(request) or "?"
