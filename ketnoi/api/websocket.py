"""The websocket channel of Subscriptions: ``[base]/$websocket`` (ADR 0025).

A client binds a subscription to its socket with a text message:

- ``bind-with-token <token>`` (Subscriptions Backport IG): the token comes from
  ``Subscription/[id]/$get-ws-binding-token``, which needs read access to that Subscription; it is
  good once, for five minutes. The server answers with a handshake Bundle (a subscription whose
  content is a Bundle) or ``bound <id>``.
- ``bind <id>`` (R4's websocket binding, which carries no credential): only on a server without
  sign-in (``--auth off``); otherwise refused with an ``error`` message.

Then each notification arrives as a text message: ``ping <id>`` for a subscription without
payload (R4), else the notification Bundle's JSON. Heartbeats come as heartbeat Bundles. The relay
sends from its own thread; each send waits at most :data:`SEND_S` for the socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ketnoi import subscriptions
from ketnoi.interactions.services import Services
from ketnoi.subscriptions import notify, sockets
from ketnoi.subscriptions.spec import Spec

log = logging.getLogger("ketnoi.api")
SEND_S: Final = 5.0
MAX_MESSAGE: Final = 4096  # a bind message is short; anything longer is not one


def routes(services: Services) -> list[WebSocketRoute]:
    async def endpoint(ws: WebSocket) -> None:
        await _serve(services, ws)

    return [WebSocketRoute("/fhir/$websocket", endpoint)]


async def _serve(services: Services, ws: WebSocket) -> None:
    hub: sockets.Hub = services.extras[subscriptions.HUB]
    loop = asyncio.get_running_loop()
    key = id(ws)
    await ws.accept()

    def send(message: str) -> bool:
        try:
            asyncio.run_coroutine_threadsafe(ws.send_text(message), loop).result(SEND_S)
            return True
        except Exception:  # closed, or too slow: the relay retries later
            return False

    try:
        while True:
            message = (await ws.receive_text())[:MAX_MESSAGE].strip()
            reply = await run_in_threadpool(_bind, services, message)
            await ws.send_text(reply[0])
            if reply[1] is not None:
                hub.bind(reply[1], key, send)
                relay = subscriptions.relay_of(services)
                if relay is not None:
                    relay.wake()  # what waited for a socket goes now
    except WebSocketDisconnect:
        pass
    finally:
        hub.unbind(key)


def _bind(services: Services, message: str) -> tuple[str, str | None]:
    """The answer to one client message, and the subscription it binds (None: none)."""
    verb, _, arg = message.partition(" ")
    arg = arg.strip()
    if verb == "bind-with-token":
        with services.store.session(write=True) as session:
            subscription = sockets.redeem_token(session, arg, time.time())
            state = session.subscription_state(subscription) if subscription else None
        if subscription is None or state is None:
            return "error invalid or expired token (get one from Subscription/[id]/$get-ws-binding-token)", None
        return _handshake(services, Spec.from_json(state.spec), state.events), subscription
    if verb == "bind":
        if services.settings.auth == "on":
            return "error bind carries no credential: use bind-with-token (see $get-ws-binding-token)", None
        with services.store.session(write=False) as session:
            state = session.subscription_state(arg)
        if state is None or Spec.from_json(state.spec).channel != "websocket":
            return f"error no websocket Subscription/{arg[:64]}", None
        return f"bound {arg}", arg
    return "error unknown message: send bind-with-token <token>", None


def _handshake(services: Services, spec: Spec, events: int) -> str:
    if spec.content not in ("empty", "id-only", "full-resource"):
        return f"bound {spec.id}"
    base = services.settings.public_base()
    state = "active" if spec.status == "requested" else spec.status
    return orjson.dumps(notify.bundle(spec, "handshake", events, [], {}, base, state)).decode()
