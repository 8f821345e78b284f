"""The Subscriptions R5 Backport IG's operations on a Subscription (ADR 0025):

- ``GET Subscription/[id]/$status``: a ``searchset`` Bundle holding the subscription's status
  (``Parameters`` of type ``query-status``: status, events since start, the last error).
- ``GET Subscription/[id]/$events?eventsSinceNumber=&eventsUntilNumber=&content=``: the events the
  server still keeps (``Settings.subscription_keep_days``), as a notification Bundle of type
  ``query-event``, so a client that saw a gap in the event numbers can fetch what it missed.
  ``content`` (empty, id-only, full-resource) defaults to the subscription's.
- ``GET|POST Subscription/[id]/$get-ws-binding-token``: a one-time token (5 minutes) a websocket
  client sends as ``bind-with-token <token>`` to receive this subscription's notifications.

Each needs read access to the Subscription (its owner, or whoever may read it); a resource in
``$events`` is read with the caller's own rights at that moment, and what the caller may not read
goes out as its id only.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import bad_request, not_found
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.store.base import SubscriptionState
from ketnoi.subscriptions import notify, sockets
from ketnoi.subscriptions.spec import CONTENTS, Spec

MAX_EVENTS = 1000
WEBSOCKET_PATH = "/$websocket"  # below the FHIR base (ketnoi.api.websocket)


def _subscription(repo: Repository, id: str | None) -> tuple[Spec, SubscriptionState]:
    assert id is not None  # instance level only
    repo.read("Subscription", id)  # 404 for what the caller may not read
    state = repo.session.subscription_state(id)
    if state is None:
        raise not_found(f"Subscription/{id} has no delivery state", f"Subscription/{id} chưa có trạng thái gửi")
    return Spec.from_json(state.spec), state


def handle_status(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    spec, state = _subscription(repo, id)
    base = request.base_url
    status = notify.status(spec, "query-status", state.events, [], base, spec.status)
    if state.error:
        status["parameter"].append({"name": "error", "valueCodeableConcept": {"text": state.error}})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{"resource": status, "search": {"mode": "match"}}],
    }
    return FhirResponse(200, bundle)


def handle_events(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    spec, state = _subscription(repo, id)
    first = _number(request, "eventsSinceNumber", 1)
    last = _number(request, "eventsUntilNumber", state.events)
    content = request.param("content") or spec.content
    if content not in CONTENTS:
        content = "id-only" if content in ("ping", "put") else content
    if content not in CONTENTS:
        raise bad_request(
            f"content is one of {', '.join(CONTENTS)}, not '{content[:40]}'",
            f"content là một trong {', '.join(CONTENTS)}, không phải '{content[:40]}'",
        )
    events = repo.session.subscription_events(spec.id, first, last, MAX_EVENTS)
    shown = replace(spec, content=content)
    resources = notify.focus_resources(repo, events) if content == "full-resource" else {}
    body = notify.bundle(shown, "query-event", state.events, events, resources, request.base_url, spec.status)
    seen = [res.dumps(r) for r in resources.values()]
    return FhirResponse(200, body, seen=seen)


def _number(request: FhirRequest, name: str, default: int) -> int:
    value = request.param(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise bad_request(f"{name} must be a whole number, not '{value[:40]}'", f"{name} phải là số nguyên")
    return int(value)


def handle_token(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    spec, _ = _subscription(repo, id)
    if spec.channel != "websocket":
        raise bad_request(
            f"Subscription/{spec.id} uses {spec.channel}, not websocket",
            f"Subscription/{spec.id} dùng {spec.channel}, không phải websocket",
        )
    now = time.time()
    token = sockets.issue_token(repo.session, spec.id, now)
    ws = request.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + WEBSOCKET_PATH
    params = [
        {"name": "token", "valueString": token},
        {"name": "expiration", "valueDateTime": res.instant(now + sockets.TOKEN_S)},
        {"name": "subscription", "valueString": f"{request.base_url}/Subscription/{spec.id}"},
        {"name": "websocket-url", "valueUrl": ws},
    ]
    return FhirResponse(200, {"resourceType": "Parameters", "parameter": params})


def _operation(name: str, handler: Any, methods: frozenset[str], write: bool) -> Operation:
    return Operation(
        name=name,
        handler=handler,
        levels=frozenset({"instance"}),
        types=frozenset({"Subscription"}),
        methods=methods,
        write=write,
        access="read",  # read on Subscription; the instance itself is read through the caller's policy
        definition={
            "name": name,
            "definition": f"http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-{name}",
        },
    )


OPERATIONS = [
    _operation("status", handle_status, frozenset({"GET", "POST"}), False),
    _operation("events", handle_events, frozenset({"GET", "POST"}), False),
    _operation("get-ws-binding-token", handle_token, frozenset({"GET", "POST"}), True),
]
