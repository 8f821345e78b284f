"""Websocket subscribers bound in this process (ADR 0025), kept apart from the HTTP edge that owns
the sockets: the edge registers a ``send`` for each binding; the relay calls it from its thread.

Binding tokens (``$get-ws-binding-token``): short random strings, each good for one subscription
for :data:`TOKEN_S` seconds, kept in the database (``security_record``) so any process can accept
the socket that presents one; the token is stored as its SHA-256 only.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from typing import Final

from ketnoi.store.base import Session

TOKEN_S: Final = 300.0
TOKEN_KIND: Final = "ws-binding"
Send = Callable[[str], bool]  # deliver one text message; False when the socket is gone or too slow


class Hub:
    def __init__(self) -> None:
        self._bound: dict[str, dict[int, Send]] = {}
        self._lock = threading.Lock()

    def bind(self, subscription: str, key: int, send: Send) -> None:
        with self._lock:
            self._bound.setdefault(subscription, {})[key] = send

    def unbind(self, key: int) -> None:
        with self._lock:
            for sockets in self._bound.values():
                sockets.pop(key, None)
            self._bound = {s: socks for s, socks in self._bound.items() if socks}

    def bound(self, subscription: str) -> bool:
        with self._lock:
            return bool(self._bound.get(subscription))

    def send(self, subscription: str, message: str) -> bool:
        """Send to every socket bound to ``subscription``; True when at least one took it."""
        with self._lock:
            senders = list(self._bound.get(subscription, {}).items())
        delivered = False
        for key, send in senders:
            if send(message):
                delivered = True
            else:
                self.unbind(key)
        return delivered


def issue_token(session: Session, subscription: str, now: float) -> str:
    token = secrets.token_urlsafe(24)
    session.security_put(TOKEN_KIND, _digest(token), subscription, now + TOKEN_S, now)
    return token


def redeem_token(session: Session, token: str, now: float) -> str | None:
    """The subscription a binding token is for (None: unknown or expired); a token binds once."""
    return session.security_take(TOKEN_KIND, _digest(token), now)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
