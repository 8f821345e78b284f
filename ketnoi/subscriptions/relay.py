"""The relay: delivers the outbox (ADR 0025).

One thread per server process, woken after every commit and at least once a second (for what other
processes wrote), hands each subscription with due events to a small pool of senders. A sender
takes the subscription's lease, numbers its new events and reads the oldest pending ones (one
transaction), sends one notification outside any transaction, then records the outcome (another):

- delivered (HTTP 2xx, or a bound websocket took it): the events are ``sent``, failures reset; a
  Subscription in ``error`` (or still ``requested``) becomes ``active``;
- failed: the subscription waits ``retry_s * 2^(failures-1)`` (at most ``retry_max_s``) before the
  next attempt, its status becomes ``error`` after ``error_after`` consecutive failures, and a
  notification tried ``attempts`` times goes to the dead letters so the next one can go.

Events go out in number order, one notification at a time per subscription (the lease), at least
once: a relay that dies after sending and before recording leaves the events pending, and the
next relay sends them again with the same event numbers (a duplicate the subscriber can detect).
Every notification that carried events leaves an AuditEvent (DICOM 110106 "Export").

The relay's own transactions are not durable one by one (``Store.session(durable=False)``: kept
through a crash of the process at once, through power loss at the database's next sync): what such
a loss can undo is a lease, the numbering of events not yet recorded as sent, or the record that
they were sent, and each only makes the relay send the same events again with the same numbers, the
duplicate at-least-once delivery allows. The outbox rows themselves commit with the change, durably.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, Final

import httpx
import orjson

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository, unit_of_work
from ketnoi.interactions.services import Services
from ketnoi.store.auditlog import AuditEntry
from ketnoi.store.base import SubscriptionEvent, SubscriptionState
from ketnoi.subscriptions import endpoints, notify
from ketnoi.subscriptions.service import SERVER, Registry, allow_list
from ketnoi.subscriptions.sockets import Hub
from ketnoi.subscriptions.spec import Spec

log = logging.getLogger("ketnoi.subscriptions")
BUNDLES: Final = ("empty", "id-only", "full-resource")
POLL_S: Final = 1.0
LINGER_S: Final = 0.2
SENDERS: Final = 8
LEASE_S: Final = 90.0  # longer than any send (backport-timeout is at most 60 s)
ROUND_S: Final = 2.0  # a round waits this long for its sends; slower ones are recorded when they end
PURGE_S: Final = 3600.0


class Undelivered(Exception):
    """A notification the subscriber did not take (why, for the delivery log)."""


@dataclass(frozen=True, slots=True)
class Batch:
    spec: Spec
    state: SubscriptionState
    last: int  # events since the subscription started
    events: list[SubscriptionEvent]
    resources: dict[int, dict[str, Any]]


class Relay:
    def __init__(
        self, services: Services, registry: Registry, hub: Hub, channels: tuple[str, ...] = ("rest-hook", "websocket")
    ) -> None:
        self.services, self.registry, self.hub = services, registry, hub
        # What this relay delivers: a server whose rest-hooks go out from `ketnoi relay` (another
        # process, Settings.subscription_relay) keeps only its own websockets.
        self.channels = channels
        self.worker = f"relay-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None  # made at the first rest-hook (an SSL context costs ~30 ms)
        self._client_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="ketnoi-notify")
        self._next_ok: dict[str, float] = {}  # per subscription: not before (the rate cap)
        self._in_flight: set[str] = set()  # subscriptions whose notification is being sent
        self._flight_lock = threading.Lock()
        self._beat_at = 0.0
        self._purged_at = 0.0
        registry.wake = self.wake

    # ---- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="ketnoi-relay", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=True, cancel_futures=True)  # sends under way finish (their timeout)
        if self._client is not None:
            self._client.close()

    @property
    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(trust_env=False, follow_redirects=False)
            return self._client

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:  # a database outage: try again at the next poll
                log.exception("subscription relay round failed")
            self._wake.wait(self._pause())
            # Rounds at most every LINGER_S: under a stream of writes, the events of many commits
            # go out together (one notification per subscriber per round, not one per commit, each
            # costing two transactions and a request); an idle server's first event goes at once.
            self._stop.wait(max(0.0, LINGER_S - (time.monotonic() - started)))

    def _pause(self) -> float:
        now = time.time()
        # list(): a sender thread may add an entry meanwhile (losing it only loosens one rate cap once)
        self._next_ok = {s: t for s, t in list(self._next_ok.items()) if t > now}
        return max(0.01, min([POLL_S, *(t - now for t in self._next_ok.values())]))

    # ---- one round ---------------------------------------------------------------------------
    def run_once(self) -> int:
        """Deliver what is due now; the number of notifications delivered (tests call it directly)."""
        now = time.time()
        with self.services.store.session(write=False) as session:
            self.registry.current(session)
            due = session.subscription_due(now, 100)
        mine = self.registry.specs
        waiting = [s for s, spec in mine.items() if spec.status == "requested" and spec.channel in self.channels]
        waiting = [s for s in waiting if s not in due]
        due = [s for s in [*waiting, *due] if self._next_ok.get(s, 0.0) <= now and self._mine(s)]
        delivered = self._deliver_all(due) if due else 0
        if now - self._beat_at >= 1.0:
            self._beat_at = now
            delivered += self._heartbeats(now)
        if now - self._purged_at >= PURGE_S:
            self._purged_at = now
            self._purge(now)
        return delivered

    def _mine(self, subscription: str) -> bool:
        """Whether this relay sends for the subscription (its channel, as last loaded: a relay never
        leases, even for a moment, what another relay sends)."""
        spec = self.registry.specs.get(subscription)
        return spec is not None and spec.channel in self.channels

    def _deliver_all(self, subscriptions: list[str]) -> int:
        """One transaction takes every due subscription (lease, numbers, events, resources); the
        senders send them in parallel; outcomes that complete together are recorded in one
        transaction. The round waits at most :data:`ROUND_S` for its sends: a subscriber that is
        slow to answer (up to its timeout) finishes on its own, recorded when it does, and holds
        back neither the other subscribers' records nor the next round."""
        with self._flight_lock:
            subscriptions = [s for s in subscriptions if s not in self._in_flight]
        if not subscriptions:
            return 0
        batches = self._take_all(subscriptions, time.time())
        with self._flight_lock:
            self._in_flight.update(b.spec.id for b in batches)
        pending = {self._pool.submit(self._attempt, b) for b in batches}
        delivered = 0
        deadline = time.monotonic() + ROUND_S
        while pending:
            done, pending = wait(pending, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED)
            if not done:
                break
            if pending:  # those finishing within a moment share the record's transaction
                more, pending = wait(pending, timeout=0.02)
                done |= more
            delivered += self._finish([f.result() for f in done])
        for future in pending:
            future.add_done_callback(lambda f: self._finish([f.result()]))
        return delivered

    def _finish(self, outcomes: list[tuple[Batch, str | None]]) -> int:
        try:
            self._record_all(outcomes)
        except Exception:  # the lease runs out and the events go again: at least once
            log.exception("recording subscription deliveries failed")
        finally:
            with self._flight_lock:
                self._in_flight.difference_update(b.spec.id for b, _ in outcomes)
        return sum(1 for _, error in outcomes if error is None)

    def _attempt(self, batch: Batch) -> tuple[Batch, str | None]:
        error = None
        # A topic rest-hook is activated by a handshake; the others have nothing to send until an event.
        if batch.events or (batch.spec.topic is not None and batch.spec.channel == "rest-hook"):
            try:
                self._send(batch, "event-notification" if batch.events else "handshake")
            except Undelivered as exc:
                error = str(exc)[:500]
        self._next_ok[batch.spec.id] = time.time() + 1.0 / self.services.settings.subscription_rate
        return batch, error

    def _take(self, subscription: str) -> Batch | None:
        taken = self._take_all([subscription], time.time())
        return taken[0] if taken else None

    def _take_all(self, subscriptions: list[str], now: float) -> list[Batch]:
        """Lease and number in one short write transaction; read the events and their resources in
        a read transaction (the leases keep other relays off them), so SQLite's one writer is held
        only for the leases, not for the reads."""
        with unit_of_work(self.services, SERVER, write=True, durable=False) as repo:
            leased = [t for t in (self._lease(repo, s, now) for s in subscriptions) if t is not None]
        if not leased:
            return []
        with unit_of_work(self.services, SERVER, write=False) as repo:
            batches = [self._read(repo, spec, state, last) for spec, state, last in leased]
        idle = [spec.id for (spec, _, _), batch in zip(leased, batches, strict=True) if batch is None]
        if idle:
            with self.services.store.session(write=True, durable=False) as session:
                for subscription in idle:
                    session.subscription_release(subscription, self.worker)
        return [b for b in batches if b is not None]

    def _lease(self, repo: Repository, subscription: str, now: float) -> tuple[Spec, SubscriptionState, int] | None:
        session = repo.session
        state = session.subscription_lease(subscription, self.worker, now, now + LEASE_S)
        if state is None:
            return None
        spec = Spec.from_json(state.spec)
        unbound = spec.channel == "websocket" and not self.hub.bound(subscription)
        if spec.channel not in self.channels or spec.status == "off" or unbound:
            if unbound and spec.status == "requested":  # accepted now; its events wait for a socket
                set_status(repo, subscription, "active", None)
            session.subscription_release(subscription, self.worker)
            return None
        return spec, state, session.subscription_number(subscription, state.events)

    def _read(self, repo: Repository, spec: Spec, state: SubscriptionState, last: int) -> Batch | None:
        limit = spec.max_count if spec.content in BUNDLES else 1
        events = repo.session.subscription_head(spec.id, limit)
        if not events and spec.status != "requested":
            return None
        owner = RequestContext.of_job(orjson.loads(state.owner))
        resources = _resources(Repository(self.services, repo.session, owner), spec, events)
        return Batch(spec, state, last, events, resources)

    def _record_all(self, outcomes: list[tuple[Batch, str | None]]) -> None:
        with unit_of_work(self.services, SERVER, write=True, durable=False) as repo:
            for batch, error in outcomes:
                self._record_one(repo, batch, error)
            entries = [_audit_entry(self.services, b) for b, error in outcomes if error is None]
            audit.append(repo, [e for e in entries if e is not None])  # one append for the group

    def _record_one(self, repo: Repository, batch: Batch, error: str | None) -> None:
        spec, settings = batch.spec, self.services.settings
        numbers = [e.number for e in batch.events if e.number is not None]
        now = time.time()
        session = repo.session
        if error is None:
            session.subscription_sent(spec.id, numbers, now)
            if spec.status in ("requested", "error"):
                set_status(repo, spec.id, "active", None)
        else:
            failures = batch.state.failures + 1
            wait_s = min(settings.subscription_retry_s * 2 ** (failures - 1), settings.subscription_retry_max_s)
            dead = bool(batch.events) and batch.events[0].attempts + 1 >= settings.subscription_attempts
            session.subscription_failed(spec.id, numbers, error, now + wait_s, dead=dead, now=now)
            if failures >= settings.subscription_error_after and spec.status != "error":
                set_status(repo, spec.id, "error", error)
        session.subscription_release(spec.id, self.worker)

    # ---- sending -------------------------------------------------------------------------------
    def _send(self, batch: Batch, kind: str) -> None:
        spec = batch.spec
        state = "active" if spec.status == "requested" else spec.status
        if spec.content == "ping" or (spec.content == "put" and not batch.resources):
            self._ping(spec)
            return
        if spec.content == "put":
            self._put(spec, batch)
            return
        body = notify.bundle(spec, kind, batch.last, batch.events, batch.resources, self._base(), state)
        text = orjson.dumps(body)
        if len(text) > self.services.settings.subscription_max_payload and batch.resources:
            text = orjson.dumps(notify.bundle(spec, kind, batch.last, batch.events, {}, self._base(), state))
        self._post(spec, text)

    def _ping(self, spec: Spec) -> None:
        if spec.channel == "websocket":
            self._socket(spec, f"ping {spec.id}")
        else:
            self._http_send(spec, "POST", spec.endpoint, None)

    def _put(self, spec: Spec, batch: Batch) -> None:
        event = batch.events[0]
        resource = batch.resources[event.number or 0]
        if spec.channel == "websocket":
            self._socket(spec, f"ping {spec.id}")
            return
        url = f"{spec.endpoint.rstrip('/')}/{event.focus_type}/{event.focus_id}"
        self._http_send(spec, "PUT", url, orjson.dumps(resource))

    def _post(self, spec: Spec, body: bytes) -> None:
        if spec.channel == "websocket":
            self._socket(spec, body.decode())
        else:
            self._http_send(spec, "POST", spec.endpoint, body)

    def _socket(self, spec: Spec, message: str) -> None:
        if not self.hub.send(spec.id, message):
            raise Undelivered("no bound websocket took the notification")

    def _http_send(self, spec: Spec, method: str, url: str, body: bytes | None) -> None:
        try:
            target = endpoints.target(url, allow_list(self.services))
        except endpoints.Refused as exc:
            raise Undelivered(exc.en) from None
        headers = {"Host": target.host, "User-Agent": "ketnoi-subscriptions"}
        for header in spec.headers:
            name, _, value = header.partition(":")
            headers[name.strip()] = value.strip()
        if body is not None:
            headers["Content-Type"] = spec.payload or "application/fhir+json"
        try:
            request = self._http.build_request(
                method,
                target.url,
                headers=headers,
                content=body,
                timeout=spec.timeout,
                extensions={"sni_hostname": target.sni},
            )
            response = self._http.send(request, stream=True)
            response.close()  # the subscriber's answer is not read: only its status counts
        except httpx.HTTPError as exc:
            raise Undelivered(f"{type(exc).__name__}: {exc}"[:300]) from None
        if not 200 <= response.status_code < 300:
            raise Undelivered(f"the endpoint answered HTTP {response.status_code}")

    # ---- heartbeats and housekeeping -------------------------------------------------------------
    def _heartbeats(self, now: float) -> int:
        """A heartbeat notification to each active topic subscription silent for its heartbeat period."""
        with self.services.store.session(write=False) as session:
            states = session.subscription_states()
        sent = 0
        for state in states:
            spec = Spec.from_json(state.spec)
            quiet = now - (state.last_sent or 0.0)
            if spec.heartbeat and spec.status == "active" and quiet >= spec.heartbeat and spec.channel in self.channels:
                sent += self._beat(spec, state, now)
        return sent

    def _beat(self, spec: Spec, state: SubscriptionState, now: float) -> int:
        if spec.channel == "websocket" and not self.hub.bound(spec.id):
            return 0
        batch = Batch(spec, state, state.events, [], {})
        try:
            self._send(batch, "heartbeat")
        except Undelivered:
            return 0
        with self.services.store.session(write=True) as session:
            session.subscription_touch(spec.id, now)
        return 1

    def _purge(self, now: float) -> None:
        keep = self.services.settings.subscription_keep_days * 86400
        with self.services.store.session(write=True) as session:
            session.subscription_purge(now - keep)

    def _base(self) -> str:
        return self.services.settings.public_base()


def _resources(repo: Repository, spec: Spec, events: Sequence[SubscriptionEvent]) -> dict[int, dict[str, Any]]:
    """The focus of each event for full-resource and R4 payloads, read with the owner's rights now:
    what the owner may no longer see goes out without its resource."""
    return notify.focus_resources(repo, events) if spec.content in ("full-resource", "put") else {}


def _audit_entry(services: Services, batch: Batch) -> AuditEntry | None:
    """One AuditEvent per notification that carried events: what went out, to whose subscription."""
    if not batch.events:
        return None
    owner = RequestContext.of_job(orjson.loads(batch.state.owner))
    counts = Counter(e.focus_type for e in batch.events)
    return audit.notification_entry(services, owner, batch.spec.id, dict(counts))


def set_status(repo: Repository, subscription: str, status: str, error: str | None) -> None:
    """Write the Subscription's new status (and ``error``) as the server, keeping its organization."""
    try:
        current = repo.read("Subscription", subscription)
    except FhirError:
        return  # deleted meanwhile
    body = res.loads_object(current.content)
    body["status"] = status
    if error is not None:
        body["error"] = error
    else:
        body.pop("error", None)
    writer = Repository(repo.services, repo.session, replace(SERVER, organization=current.org))
    writer.written = repo.written
    writer.update("Subscription", subscription, body)
