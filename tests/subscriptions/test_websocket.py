"""The websocket channel and the backport operations ($status, $events, $get-ws-binding-token), with a
real uvicorn server and a real websocket client on loopback, on both backends (ADR 0025)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from ketnoi.api import websocket
from ketnoi.api.routes import create_app
from ketnoi.interactions.services import Services
from ketnoi.subscriptions import relay_of
from ketnoi.subscriptions.spec import CONTENT
from tests.conftest import LiveServer


@pytest.fixture
def live(fresh_services: Services) -> Iterator[tuple[Services, httpx.Client, str]]:
    s = fresh_services
    s.settings = s.settings.with_(subscription_retry_s=0.05, subscription_rate=10_000.0)
    relay = relay_of(s)
    assert relay is not None
    with LiveServer(create_app(s)) as server:
        relay.start()
        with httpx.Client(base_url=server.base, timeout=30) as client:
            put(client, {"resourceType": "Patient", "id": "p1", "name": [{"family": "Lê"}]})
            yield s, client, server.base.replace("http://", "ws://") + "/$websocket"
        relay.stop()


def put(client: httpx.Client, resource: dict[str, Any]) -> None:
    r = client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text


def ws_subscription(id: str, content: str | None = None) -> dict[str, Any]:
    channel: dict[str, Any] = {"type": "websocket"}
    if content is not None:
        channel |= {
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": CONTENT, "valueCode": content}]},
        }
    return {"resourceType": "Subscription", "id": id, "status": "requested", "reason": "test",
            "criteria": "Observation?subject=Patient/p1", "channel": channel}  # fmt: skip


def obs(id: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"}}  # fmt: skip


def token(client: httpx.Client, id: str) -> str:
    r = client.get(f"/Subscription/{id}/$get-ws-binding-token")
    assert r.status_code == 200, r.text
    params = {p["name"]: p for p in r.json()["parameter"]}
    assert params["websocket-url"]["valueUrl"].endswith("/fhir/$websocket")
    return str(params["token"]["valueString"])


def receive(ws: ClientConnection) -> Any:
    text = ws.recv(timeout=10)
    assert isinstance(text, str)
    return orjson.loads(text) if text.startswith("{") else text


def numbers(bundle: dict[str, Any]) -> list[str]:
    head = bundle["entry"][0]["resource"]["parameter"]
    return [p["part"][0]["valueString"] for p in head if p["name"] == "notification-event"]


def test_r4_bind_then_a_ping_for_each_match(live: tuple[Services, httpx.Client, str]) -> None:
    _, client, url = live
    put(client, ws_subscription("s1"))
    with connect(url) as ws:
        ws.send("bind s1")
        assert receive(ws) == "bound s1"
        put(client, obs("o1"))
        assert receive(ws) == "ping s1"


def test_bind_with_token_hands_shake_then_sends_full_resources_in_order(
    live: tuple[Services, httpx.Client, str],
) -> None:
    _, client, url = live
    put(client, ws_subscription("s1", "full-resource"))
    one_time = token(client, "s1")
    with connect(url) as ws:
        ws.send(f"bind-with-token {one_time}")
        handshake = receive(ws)
        assert {p["name"]: p.get("valueCode") for p in handshake["entry"][0]["resource"]["parameter"]}["type"] == (
            "handshake"
        )
        put(client, obs("o1"))
        put(client, obs("o2"))
        seen: list[str] = []
        ids: list[str] = []
        while len(seen) < 2:
            bundle = receive(ws)
            seen += numbers(bundle)
            ids += [e["resource"]["id"] for e in bundle["entry"][1:]]
        assert seen == ["1", "2"] and ids == ["o1", "o2"]
    with connect(url) as again:
        again.send(f"bind-with-token {one_time}")  # a token binds once
        assert str(receive(again)).startswith("error invalid or expired token")


def test_events_wait_for_a_socket_and_none_is_lost(live: tuple[Services, httpx.Client, str]) -> None:
    _, client, url = live
    put(client, ws_subscription("s1", "id-only"))
    put(client, obs("o1"))  # nobody bound yet
    put(client, obs("o2"))
    with connect(url) as ws:
        ws.send(f"bind-with-token {token(client, 's1')}")
        receive(ws)  # handshake
        seen: list[str] = []
        while len(seen) < 2:
            seen += numbers(receive(ws))
        assert seen == ["1", "2"]


def test_status_and_events_let_a_client_fetch_what_it_missed(live: tuple[Services, httpx.Client, str]) -> None:
    _, client, url = live
    put(client, ws_subscription("s1", "id-only"))
    put(client, obs("o1"))
    put(client, obs("o2"))
    with connect(url) as ws:  # deliver both, so they are numbered
        ws.send(f"bind-with-token {token(client, 's1')}")
        receive(ws)
        got: list[str] = []
        while len(got) < 2:
            got += numbers(receive(ws))
    status = client.get("/Subscription/s1/$status").json()
    params = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}
    assert params["events-since-subscription-start"]["valueString"] == "2"
    assert params["type"]["valueCode"] == "query-status"
    missed = client.get("/Subscription/s1/$events", params={"eventsSinceNumber": "2", "content": "full-resource"})
    assert missed.status_code == 200
    body = missed.json()
    assert numbers(body) == ["2"] and body["entry"][1]["resource"]["id"] == "o2"
    bad = client.get("/Subscription/s1/$events", params={"eventsSinceNumber": "two"})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    assert client.get("/Subscription/nope/$status").status_code == 404


def test_a_rest_hook_subscription_has_no_binding_token(live: tuple[Services, httpx.Client, str]) -> None:
    services, client, _ = live
    services.settings = services.settings.with_(subscription_endpoints="127.0.0.1")
    sub = {**ws_subscription("r1"), "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"}}
    put(client, sub)
    r = client.get("/Subscription/r1/$get-ws-binding-token")
    assert r.status_code == 400 and "websocket" in r.text


def test_an_unknown_message_or_token_gets_an_error_line(live: tuple[Services, httpx.Client, str]) -> None:
    services, _, url = live
    with connect(url) as ws:
        ws.send("hello")
        assert str(receive(ws)).startswith("error unknown message")
        ws.send("bind-with-token not-a-token")
        assert str(receive(ws)).startswith("error invalid or expired token")
    services.settings = services.settings.with_(auth="on")
    assert websocket._bind(services, "bind s1")[0].startswith("error bind carries no credential")


def test_the_capability_statement_names_the_topics_and_channels(live: tuple[Services, httpx.Client, str]) -> None:
    _, client, _ = live
    statement = client.get("/metadata").json()
    (sub,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    topics = [e["valueCanonical"] for e in sub["extension"]]
    assert "https://ketnoi.vn/fhir/SubscriptionTopic/admission" in topics and "websocket" in sub["documentation"]
    operations = {op["name"] for op in statement["rest"][0]["operation"]}
    assert {"status", "events", "get-ws-binding-token"} <= operations


def test_a_websocket_subscription_is_accepted_before_any_socket_binds(
    live: tuple[Services, httpx.Client, str],
) -> None:
    services, client, _ = live
    put(client, ws_subscription("s1", "id-only"))
    relay = relay_of(services)
    assert relay is not None
    for _ in range(50):
        if client.get("/Subscription/s1").json()["status"] == "active":
            break
        relay.wake()
        time.sleep(0.1)
    assert client.get("/Subscription/s1").json()["status"] == "active"
