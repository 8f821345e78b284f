"""Subscriptions over rest-hook, with a real HTTP receiver on loopback, on both backends: every payload
kind, criteria with tokens and chains, topics, bad input, retries and recovery, the dead letters, the
access policy, and delivery after a restart (ketnoi/subscriptions, ADR 0025)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from ketnoi.app import build_services
from ketnoi.auth.scopes import parse_scopes
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.subscriptions import relay_of
from ketnoi.subscriptions.relay import Relay
from ketnoi.subscriptions.spec import CONTENT, FILTER, HEARTBEAT, TIMEOUT
from ketnoi.subscriptions.topics import BASE as TOPIC
from ketnoi.subscriptions.topics import TOPICS, Topic
from tests.interactions.audit_helpers import head, records
from tests.subscriptions.receiver import Receiver

OPERATOR = RequestContext.operator("test")
HR = {"system": "http://loinc.org", "code": "8867-4"}
BP = {"system": "http://loinc.org", "code": "85354-9"}
# Backend systems of two facilities, with no care relation to the patients here: each sees what it wrote.
F1 = RequestContext(
    authenticated=True, client_id="his-f1", scopes=parse_scopes("system/*.cruds"), organization="Organization/F1"
)
F2 = RequestContext(
    authenticated=True, client_id="his-f2", scopes=parse_scopes("system/*.cruds"), organization="Organization/F2"
)


def call(s: Services, ctx: RequestContext, method: str, url: str, body: Any = None) -> FhirResponse:
    path, _, qs = url.partition("?")
    hdrs = {"content-type": "application/fhir+json"}
    return handle(s, FhirRequest(method, path, parse_qsl(qs, keep_blank_values=True), hdrs, body, "http://x/fhir", ctx))


def put(s: Services, resource: dict[str, Any], ctx: RequestContext = OPERATOR) -> FhirResponse:
    r = call(s, ctx, "PUT", f"{resource['resourceType']}/{resource['id']}", resource)
    assert r.status in (200, 201), r.resource
    return r


def obs(id: str, subject: str, code: dict[str, str] = HR) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": id, "status": "final", "code": {"coding": [code]},
            "subject": {"reference": subject}}  # fmt: skip


def subscription(id: str, criteria: str, endpoint: str, **channel: Any) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "id": id,
        "status": "requested",
        "reason": "test",
        "criteria": criteria,
        "channel": {"type": "rest-hook", "endpoint": endpoint, **channel},
    }


def with_content(content: str) -> dict[str, Any]:
    return {"payload": "application/fhir+json", "_payload": {"extension": [{"url": CONTENT, "valueCode": content}]}}


@pytest.fixture
def world(fresh_services: Services) -> Iterator[Services]:
    s = fresh_services
    s.settings = s.settings.with_(
        subscription_endpoints="127.0.0.1/32", subscription_retry_s=0.05, subscription_rate=10_000.0
    )
    put(s, {"resourceType": "Patient", "id": "p1", "name": [{"family": "Nguyễn", "given": ["An"]}]})
    put(s, {"resourceType": "Patient", "id": "p2", "name": [{"family": "Trần", "given": ["Bình"]}]})
    yield s


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def relay(s: Services) -> Relay:
    found = relay_of(s)
    assert found is not None
    return found


def drain(s: Services, rounds: int = 5) -> None:
    """Run the relay until nothing is due (it runs in the server's thread; tests drive it)."""
    for _ in range(rounds):
        if relay(s).run_once() == 0:
            return


def read(s: Services, ref: str) -> dict[str, Any]:
    r = call(s, OPERATOR, "GET", ref)
    assert r.status == 200, r.resource
    found = r.resource if r.resource is not None else orjson.loads(r.raw or b"{}")
    assert isinstance(found, dict)
    return found


def status_of(s: Services, id: str) -> str:
    return str(read(s, f"Subscription/{id}")["status"])


def test_an_r4_subscription_without_payload_posts_an_empty_body_for_each_match(
    world: Services, receiver: Receiver
) -> None:
    put(world, subscription("s1", "Observation?code=http://loinc.org|8867-4", receiver.url))
    drain(world)
    assert status_of(world, "s1") == "active" and receiver.requests == []  # R4 has no handshake
    put(world, obs("o1", "Patient/p1"))
    put(world, obs("o2", "Patient/p1", BP))  # another code: no notification
    drain(world)
    got = receiver.wait(1)
    assert [(r.method, r.path, r.body) for r in got] == [("POST", "/hook", b"")]


def test_an_r4_payload_puts_the_resource_at_endpoint_type_id(world: Services, receiver: Receiver) -> None:
    put(world, subscription("s1", "Observation?subject=Patient/p1", receiver.url, payload="application/fhir+json"))
    drain(world)
    put(world, obs("o1", "Patient/p1"))
    put(world, obs("o2", "Patient/p2"))
    drain(world)
    (got,) = receiver.wait(1)
    assert (got.method, got.path) == ("PUT", "/hook/Observation/o1")
    assert got.json()["id"] == "o1" and got.headers["content-type"] == "application/fhir+json"


@pytest.mark.parametrize("content", ["empty", "id-only", "full-resource"])
def test_backport_payload_contents_send_numbered_history_bundles(
    world: Services, receiver: Receiver, content: str
) -> None:
    sub = subscription(
        "s1", "Observation?code=8867-4", receiver.url, header=["X-Hook-Key: k1"], **with_content(content)
    )
    put(world, sub)
    drain(world)
    put(world, obs("o1", "Patient/p1"))
    put(world, obs("o2", "Patient/p2"))
    drain(world)
    got = receiver.wait(1)
    assert got and all(r.headers["x-hook-key"] == "k1" and "authorization" not in r.headers for r in got)
    numbers: list[str] = []
    focus: list[dict[str, Any]] = []
    for r in got:
        bundle = r.json()
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
        head = bundle["entry"][0]["resource"]
        params = {p["name"]: p for p in head["parameter"]}
        assert params["type"]["valueCode"] == "event-notification"
        assert params["subscription"]["valueReference"]["reference"].endswith("/Subscription/s1")
        for p in head["parameter"]:
            if p["name"] == "notification-event":
                numbers.append(p["part"][0]["valueString"])
        focus += bundle["entry"][1:]
    assert numbers == ["1", "2"]  # both events, in order, numbered from 1
    if content == "empty":
        assert focus == []
    else:
        assert [e["fullUrl"].rsplit("/", 1)[1] for e in focus] == ["o1", "o2"]
        assert all(("resource" in e) == (content == "full-resource") for e in focus)


def test_criteria_with_a_chain_are_decided_in_the_writing_transaction(world: Services, receiver: Receiver) -> None:
    put(world, subscription("s1", "Observation?subject:Patient.name=nguyen&code=8867-4", receiver.url,
                            **with_content("id-only")))  # fmt: skip
    drain(world)
    put(world, obs("o1", "Patient/p1"))  # Nguyễn: the folded name matches
    put(world, obs("o2", "Patient/p2"))  # Trần: no
    put(world, obs("o3", "Patient/p1", BP))  # Nguyễn, but another code
    drain(world)
    focus = [e["fullUrl"] for r in receiver.wait(1) for e in r.json()["entry"][1:]]
    assert [f.rsplit("/", 1)[1] for f in focus] == ["o1"]


def test_a_topic_subscription_shakes_hands_then_filters_events(world: Services, receiver: Receiver) -> None:
    sub = subscription("t1", TOPIC + "admission", receiver.url, **with_content("id-only"))
    sub["_criteria"] = {"extension": [{"url": FILTER, "valueString": "Encounter?patient=Patient/p1"}]}
    put(world, sub)
    drain(world)
    (handshake,) = receiver.wait(1)
    head = handshake.json()["entry"][0]["resource"]
    assert {p["name"]: p.get("valueCode") for p in head["parameter"]}["type"] == "handshake"
    assert status_of(world, "t1") == "active"
    enc = {"resourceType": "Encounter", "id": "e1", "status": "in-progress", "class": {"code": "IMP"},
           "subject": {"reference": "Patient/p1"}}  # fmt: skip
    put(world, enc)
    put(world, {**enc, "id": "e2", "subject": {"reference": "Patient/p2"}})  # filtered out
    put(world, {**enc, "id": "e3", "status": "planned"})  # not an admission
    drain(world)
    got = receiver.wait(2)
    assert [e["fullUrl"].rsplit("/", 1)[1] for e in got[1].json()["entry"][1:]] == ["e1"]
    assert len(got) == 2


def test_a_topic_with_a_previous_test_fires_when_the_state_is_reached_not_at_every_change(
    world: Services, receiver: Receiver
) -> None:
    """The admission topic (queryCriteria previous + current, requireBoth): an encounter that starts, or is
    created started, is one admission; a change during the stay is none; a report becoming final is one
    lab result, its amendment none (ADR 0025 decision 1)."""
    put(world, subscription("t1", TOPIC + "admission", receiver.url, **with_content("id-only")))
    put(world, subscription("t2", TOPIC + "lab-result-final", receiver.url, **with_content("id-only")))
    drain(world)
    assert len(receiver.wait(2)) == 2  # the handshakes
    enc = {"resourceType": "Encounter", "id": "e1", "status": "planned", "class": {"code": "IMP"},
           "subject": {"reference": "Patient/p1"}}  # fmt: skip
    put(world, enc)  # planned: no
    put(world, {**enc, "status": "in-progress"})  # starts: yes
    put(world, {**enc, "status": "in-progress", "priority": {"text": "urgent"}})  # during the stay: no
    put(world, {**enc, "id": "e2", "status": "in-progress"})  # created started: yes
    report = {"resourceType": "DiagnosticReport", "id": "r1", "status": "preliminary", "code": {"text": "CBC"},
              "subject": {"reference": "Patient/p1"}}  # fmt: skip
    put(world, report)  # preliminary: no
    put(world, {**report, "status": "final"})  # final now: yes
    put(world, {**report, "status": "amended"})  # was final already: no
    drain(world)
    got = receiver.wait(5)
    focus = [e["fullUrl"].rsplit("/", 2)[1:] for r in got[2:] for e in r.json()["entry"][1:]]
    # Two subscriptions, each delivered in its own order: their notifications may interleave either way.
    assert sorted(focus) == [["DiagnosticReport", "r1"], ["Encounter", "e1"], ["Encounter", "e2"]], focus
    assert [read(world, "Encounter/e1")["meta"]["versionId"], read(world, "DiagnosticReport/r1")["status"]] == [
        "3",
        "amended",
    ]


@pytest.mark.parametrize("topic", [t for t in TOPICS.values() if t.previous])
def test_a_topics_previous_test_is_decided_from_index_rows(world: Services, topic: Topic) -> None:
    """The version before is not in the database any more (the new one is): its test must never need it."""
    from ketnoi.interactions.repository import Repository
    from ketnoi.interactions.search import parse_type_query
    from ketnoi.store.base import StoredVersion
    from ketnoi.subscriptions.matching import holds

    with world.store.session(write=False) as session:
        query = parse_type_query(Repository(world, session, OPERATOR), topic.resource_type, topic.previous, strict=True)
    resource = {"resourceType": topic.resource_type, "id": "x", "status": "unknown"}
    stored = StoredVersion(topic.resource_type, "x", 1, 0.0, False, orjson.dumps(resource))
    index = world.extractor.extract(resource)
    assert query.filters
    assert all(holds(crit, stored, index, "http://x/fhir") for crit in query.filters)


@pytest.mark.parametrize(
    ("criteria", "channel", "words"),
    [
        ("Observation?no-such-param=1", {}, "no-such-param"),
        ("Observation?code=x&_include=Observation:subject", {}, "_include"),
        ("Observation?code=x&_count=5", {}, "_count"),
        ("Observation?code=x&_summary=true", {}, "_count"),
        ("not a search", {}, "criteria"),
        ("Observation?code=x", {"type": "email"}, "rest-hook or websocket"),
        ("Observation?code=x", {"payload": "text/csv"}, "payload"),
        ("Observation?code=x", {"endpoint": "http://169.254.169.254/latest"}, "not an allowed destination"),
        ("Observation?code=x", {"endpoint": "http://10.1.2.3/hook"}, "not an allowed destination"),
        ("Observation?code=x", {"endpoint": "file:///etc/passwd"}, "http(s)"),
        ("Observation?code=x", {"header": ["Host: evil"]}, "header"),
        (TOPIC + "admission", {}, None),  # a topic is fine ...
    ],
)
def test_a_subscription_that_cannot_work_is_refused_with_400_and_nothing_stored(
    world: Services, receiver: Receiver, criteria: str, channel: dict[str, Any], words: str | None
) -> None:
    sub = subscription("bad", criteria, receiver.url)
    sub["channel"].update(channel)
    r = call(world, OPERATOR, "PUT", "Subscription/bad", sub)
    if words is None:
        assert r.status == 201
        return
    assert r.status == 400, r.resource
    assert r.resource is not None and words in r.resource["issue"][0]["diagnostics"]
    assert call(world, OPERATOR, "GET", "Subscription/bad").status == 404


def test_a_topic_filter_on_a_parameter_the_topic_does_not_offer_is_refused(world: Services, receiver: Receiver) -> None:
    sub = subscription("t1", TOPIC + "admission", receiver.url)
    sub["_criteria"] = {"extension": [{"url": FILTER, "valueString": "Encounter?reason-code=x"}]}
    r = call(world, OPERATOR, "PUT", "Subscription/t1", sub)
    assert r.status == 400 and "reason-code" in str(r.resource)


def test_loopback_is_refused_without_an_allow_list(world: Services, receiver: Receiver) -> None:
    world.settings = world.settings.with_(subscription_endpoints="")
    r = call(world, OPERATOR, "PUT", "Subscription/s1", subscription("s1", "Observation?code=x", receiver.url))
    assert r.status == 400 and "KETNOI_SUBSCRIPTION_ENDPOINTS" in str(r.resource)


def test_a_receiver_that_is_down_gets_retries_with_back_off_then_error_then_recovers(
    world: Services, receiver: Receiver
) -> None:
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url, **with_content("id-only")))
    drain(world)
    receiver.status = 503
    put(world, obs("o1", "Patient/p1"))
    for expected in (0.05, 0.1, 0.2):  # subscription_retry_s, doubled after each failure
        before = time.time()
        relay(world).run_once()
        after = time.time()
        with world.store.session(write=False) as session:
            state = session.subscription_state("s1")
        assert state is not None
        # The wait counts from the failure, some time within run_once: bounded by both ends, however
        # slowly a loaded machine ran it (the wait left afterwards can even be gone by then).
        assert state.next_at - after - 1e-3 <= expected <= state.next_at - before + 1e-3, (expected, state)
        time.sleep(max(0.0, state.next_at - time.time()) + 0.01)
    assert len(receiver.requests) == 3
    assert status_of(world, "s1") == "error"
    assert "503" in read(world, "Subscription/s1")["error"]
    receiver.status = 200
    drain(world)
    assert status_of(world, "s1") == "active"
    bodies = [r.json() for r in receiver.requests]
    assert all(b["entry"][1]["fullUrl"].endswith("/Observation/o1") for b in bodies)  # the same event each time


def test_a_notification_that_keeps_failing_goes_to_the_dead_letters(world: Services, receiver: Receiver) -> None:
    world.settings = world.settings.with_(subscription_attempts=2)
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url, **with_content("id-only")))
    drain(world)
    receiver.status = 500
    put(world, obs("o1", "Patient/p1"))
    for _ in range(2):
        relay(world).run_once()
        time.sleep(0.2)
    receiver.status = 200
    put(world, obs("o2", "Patient/p1"))
    drain(world)
    with world.store.session(write=False) as session:
        events = session.subscription_events("s1", 1, 10, 10)
    assert [(e.number, e.focus_id, e.state, e.attempts) for e in events] == [(1, "o1", "dead", 2), (2, "o2", "sent", 1)]
    assert events[0].error is not None and "500" in events[0].error


def test_a_subscriber_gets_nothing_it_may_not_see(world: Services, receiver: Receiver) -> None:
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url, **with_content("full-resource")), F1)
    drain(world)
    put(world, obs("mine", "Patient/p1"), F1)
    put(world, obs("theirs", "Patient/p2"), F2)  # F1 has no care relation with p2
    drain(world)
    focus = [e["resource"]["id"] for r in receiver.wait(1) for e in r.json()["entry"][1:]]
    assert focus == ["mine"]
    with world.store.session(write=False) as session:
        assert [e.focus_id for e in session.subscription_events("s1", 1, 10, 10)] == ["mine"]


def test_events_committed_before_a_crash_are_delivered_by_the_next_process(world: Services, receiver: Receiver) -> None:
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url, **with_content("id-only")))
    drain(world)
    put(world, obs("o1", "Patient/p1"))  # committed; the relay never ran: the process "dies" here
    restarted = build_services(world.settings, world.store)
    try:
        relay(restarted).run_once()
        (got,) = receiver.wait(1)
        assert got.json()["entry"][1]["fullUrl"].endswith("/Observation/o1")
    finally:
        relay(restarted).stop()


def test_a_relay_that_dies_after_sending_causes_a_duplicate_with_the_same_event_number(
    world: Services, receiver: Receiver
) -> None:
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url, **with_content("id-only")))
    drain(world)
    put(world, obs("o1", "Patient/p1"))
    dying = relay(world)
    batch = dying._take("s1")  # leased and numbered ...
    assert batch is not None
    dying._send(batch, "event-notification")  # ... sent, and the process dies before recording it
    with world.store.session(write=True) as session:  # its lease runs out
        session.subscription_lease("s1", dying.worker, time.time(), time.time() - 1)
    other = build_services(world.settings, world.store)
    try:
        relay(other).run_once()
    finally:
        relay(other).stop()
    got = receiver.wait(2)
    numbers = [
        p["part"][0]["valueString"]
        for r in got
        for p in r.json()["entry"][0]["resource"]["parameter"]
        if p["name"] == "notification-event"
    ]
    assert numbers == ["1", "1"]  # the same event twice: a duplicate the subscriber can detect


def test_an_off_subscription_matches_nothing_and_a_deleted_one_is_forgotten(
    world: Services, receiver: Receiver
) -> None:
    put(world, {**subscription("s1", "Observation?code=8867-4", receiver.url), "status": "off"})
    put(world, obs("o1", "Patient/p1"))
    drain(world)
    assert receiver.requests == []
    assert call(world, OPERATOR, "DELETE", "Subscription/s1").status in (200, 204)
    with world.store.session(write=False) as session:
        assert session.subscription_state("s1") is None


def test_the_relay_thread_delivers_without_being_driven(world: Services, receiver: Receiver) -> None:
    r = relay(world)
    r.start()
    try:
        put(world, subscription("s1", "Observation?code=8867-4", receiver.url))
        put(world, obs("o1", "Patient/p1"))
        assert len(receiver.wait(1)) == 1  # woken by the commits, no test driving it
    finally:
        r.stop()
    assert r._thread is None


def test_only_who_may_read_a_subscription_sees_its_status_and_events(world: Services, receiver: Receiver) -> None:
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url, **with_content("id-only")), F1)
    drain(world)
    put(world, obs("mine", "Patient/p1"), F1)
    drain(world)
    for op in ("$status", "$events"):
        assert call(world, F1, "GET", f"Subscription/s1/{op}").status == 200
        other = call(world, F2, "GET", f"Subscription/s1/{op}")
        assert other.status == 404 and "mine" not in str(other.resource)
    assert call(world, F2, "GET", "Subscription/s1").status == 404  # its endpoint and headers too


def test_a_subscriber_that_never_answers_delays_nobody_else(world: Services, receiver: Receiver) -> None:
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        slow = subscription("slow", "Observation?code=8867-4", f"http://127.0.0.1:{silent.getsockname()[1]}/hook",
                            extension=[{"url": TIMEOUT, "valueUnsignedInt": 3}])  # fmt: skip
        put(world, slow)
        put(world, subscription("fast", "Observation?code=8867-4", receiver.url))
        drain(world)
        put(world, obs("o1", "Patient/p1"))
        started = time.monotonic()
        relay(world).run_once()
        assert len(receiver.wait(1, timeout=1)) == 1 and time.monotonic() - started < 2.9
        relay(world).run_once()  # the slow one is still being sent: not taken twice
        time.sleep(3.5)  # its timeout passes; the failure is recorded by the sender itself
        with world.store.session(write=False) as session:
            state = session.subscription_state("slow")
        assert state is not None and state.failures == 1 and "Timeout" in (state.error or "")
        assert len(receiver.requests) == 1
    finally:
        silent.close()


def test_a_quiet_topic_subscription_gets_heartbeats(world: Services, receiver: Receiver) -> None:
    sub = subscription("t1", TOPIC + "admission", receiver.url, **with_content("id-only"),
                       extension=[{"url": HEARTBEAT, "valueUnsignedInt": 1}])  # fmt: skip
    put(world, sub)
    drain(world)  # the handshake
    time.sleep(1.1)
    relay(world)._beat_at = 0.0  # heartbeats are looked at once a second
    relay(world).run_once()
    got = receiver.wait(2)
    kinds = [
        {p["name"]: p.get("valueCode") for p in r.json()["entry"][0]["resource"]["parameter"]}["type"] for r in got
    ]
    assert kinds == ["handshake", "heartbeat"]
    assert len(got[1].json()["entry"]) == 1  # a heartbeat carries no event


def test_a_notification_over_the_payload_cap_goes_id_only(world: Services, receiver: Receiver) -> None:
    world.settings = world.settings.with_(subscription_max_payload=2000)
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url, **with_content("full-resource")))
    drain(world)
    big = {**obs("o1", "Patient/p1"), "note": [{"text": "x" * 5000}]}
    put(world, big)
    put(world, obs("o2", "Patient/p1"))
    drain(world)
    entries = [e for r in receiver.wait(1) for e in r.json()["entry"][1:]]
    assert [e["fullUrl"].rsplit("/", 1)[1] for e in entries] == ["o1", "o2"]
    assert all("resource" not in e for e in entries) and all(len(r.body) < 2000 for r in receiver.requests)


def test_a_subscriber_gets_at_most_its_rate(world: Services, receiver: Receiver) -> None:
    world.settings = world.settings.with_(subscription_rate=0.5)  # one notification per 2 s
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url))
    drain(world)  # accepted (R4: nothing sent)
    relay(world)._next_ok.clear()
    put(world, obs("o1", "Patient/p1"))
    relay(world).run_once()
    put(world, obs("o2", "Patient/p1"))
    relay(world).run_once()  # too soon: waits
    assert len(receiver.wait(2, timeout=0.5)) == 1
    relay(world)._next_ok.clear()  # as if 2 s had passed
    relay(world).run_once()
    assert len(receiver.wait(2)) == 2


def test_each_event_carries_the_version_it_announced(world: Services, receiver: Receiver) -> None:
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url, **with_content("full-resource")))
    drain(world)
    put(world, obs("o1", "Patient/p1"))
    put(world, {**obs("o1", "Patient/p1"), "status": "amended"})  # before the relay runs
    drain(world)
    entries = [e for r in receiver.wait(1) for e in r.json()["entry"][1:]]
    assert [(e["resource"]["meta"]["versionId"], e["resource"]["status"]) for e in entries] == [
        ("1", "final"),
        ("2", "amended"),
    ]
    assert [e["request"]["method"] for e in entries] == ["POST", "PUT"]


def test_each_notification_with_events_leaves_an_audit_event_of_its_owner(world: Services, receiver: Receiver) -> None:
    put(world, subscription("s1", "Observation?code=8867-4", receiver.url, **with_content("id-only")), F1)
    drain(world)
    start = head(world)
    put(world, obs("o1", "Patient/p1"), F1)
    put(world, obs("o2", "Patient/p1"), F1)
    drain(world)
    assert len(receiver.wait(1)) == 1
    sent = [r.event for r in records(world, start) if "notification" in str(r.event.get("entity", ""))]
    assert len(sent) == 1  # one notification carried both events
    event = sent[0]
    assert event["type"]["code"] == "110106" and event["action"] == "R"
    requestor = next(a for a in event["agent"] if a["requestor"])
    assert requestor["who"]["identifier"]["value"] == "his-f1"  # the owner, whose rights it ran with
    assert {"reference": "Organization/F1"} in [a["who"] for a in event["agent"]]
    details = {d["type"]: d["valueString"] for e in event["entity"] for d in e.get("detail", [])}
    assert details == {"Observation": "2"}
