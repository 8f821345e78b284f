"""Subscriptions inside the write path (ADR 0025): a Subscription written is checked and its state
row kept in the same transaction; every other version written is matched against the active
subscriptions of its type from its index rows, and each match the subscription's owner may see
becomes an outbox row in the writing transaction. After the commit, the relay is woken.

The active subscriptions are cached per process (:class:`Registry`) and reloaded from
``subscription_state`` when this process writes a Subscription, and at least every
:data:`REFRESH_S` seconds for what other processes wrote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError, bad_request
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.search import parse_type_query
from ketnoi.interactions.services import Services
from ketnoi.search.index import IndexRows
from ketnoi.search.normalize import date_range
from ketnoi.search.parse import RESULT_PARAMS
from ketnoi.search.query import Filter, SearchQuery, split_pipe, unescape
from ketnoi.store.base import Session, StoredVersion
from ketnoi.subscriptions import endpoints, matching, spec
from ketnoi.subscriptions.spec import Spec
from ketnoi.subscriptions.topics import TOPICS

KEY: Final = "subscriptions"
REFRESH_S: Final = 1.0
MATCHING: Final = ("requested", "active", "error")  # "off" matches nothing; error keeps events for recovery
SERVER: Final = RequestContext.internal("subscriptions")


@dataclass(frozen=True, slots=True)
class Active:
    spec: Spec
    owner: RequestContext
    queries: tuple[SearchQuery, ...]
    end: float | None
    previous: SearchQuery | None = None  # a topic's: what the version before an update must match


@dataclass(slots=True)
class Watch:
    """The active subscriptions of one resource type. Those with a plain token criterion
    (``code=...``) are filed under each code it names, so a version is compared only with the
    subscriptions one of its own codes can satisfy (a hundred subscriptions on a hundred codes
    cost a dictionary lookup per code of the version, not a hundred evaluations)."""

    keyed: dict[tuple[str, str], list[Active]] = field(default_factory=dict)
    rest: list[Active] = field(default_factory=list)

    def add(self, one: Active) -> None:
        keys = _keys(one.queries)
        if not keys:
            self.rest.append(one)
        for key in keys:
            self.keyed.setdefault(key, []).append(one)

    def candidates(self, index: IndexRows) -> list[Active]:
        if not self.keyed:
            return self.rest
        found: dict[str, Active] = {}
        for row in index.token:
            for one in self.keyed.get((row.param, row.code or ""), ()):
                found[one.spec.id] = one
        return [*self.rest, *found.values()]


def _keys(queries: tuple[SearchQuery, ...]) -> set[tuple[str, str]]:
    """The (parameter, code) pairs of the first plain token criterion, one of which a matching
    version must carry; empty when there is none."""
    for query in queries:
        for crit in query.filters:
            if not isinstance(crit, Filter) or crit.type != "token" or crit.modifier or crit.param == "_id":
                continue
            codes = [_code(v) for v in crit.values]
            if all(codes):
                return {(crit.param, c) for c in codes}
    return set()


def _code(value: str) -> str:
    pair = split_pipe(value)
    return unescape(value) if pair is None else pair[1]


class Registry:
    """The subscriptions that match, by resource type, as this process last loaded them."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.by_type: dict[str, Watch] = {}
        self.specs: dict[str, Spec] = {}
        self._parsed: dict[tuple[str, str], Active] = {}  # by (spec, owner) JSON: kept across reloads
        self._loaded = -REFRESH_S
        self._lock = threading.Lock()
        self.wake: Callable[[], None] = lambda: None  # the relay's, once it runs

    def invalidate(self) -> None:
        self._loaded = -REFRESH_S

    def current(self, session: Session) -> dict[str, Watch]:
        if time.monotonic() - self._loaded >= REFRESH_S:
            with self._lock:
                self._load(session)
        return self.by_type

    def _load(self, session: Session) -> None:
        """Read the states; a subscription whose spec and owner did not change keeps its parsed
        criteria (the reload every second costs one small query, not a parse of every criterion)."""
        repo = Repository(self.services, session, SERVER)
        by_type: dict[str, Watch] = {}
        specs: dict[str, Spec] = {}
        parsed: dict[tuple[str, str], Active] = {}
        for state in session.subscription_states():
            key = (state.spec, state.owner)
            one = self._parsed.get(key)
            spec = one.spec if one is not None else Spec.from_json(state.spec)
            specs[spec.id] = spec
            if spec.status in MATCHING:
                if one is None:
                    one = _active(repo, spec, RequestContext.of_job(orjson.loads(state.owner)))
                parsed[key] = one
                by_type.setdefault(spec.resource_type, Watch()).add(one)
        self.by_type, self.specs, self._parsed, self._loaded = by_type, specs, parsed, time.monotonic()


def _active(repo: Repository, one: Spec, owner: RequestContext) -> Active:
    queries = tuple(parse_type_query(repo, one.resource_type, q, strict=True) for q in one.criteria if q)
    end = date_range(one.end)[0] if one.end else None
    topic = TOPICS.get(one.topic or "")
    previous = (
        parse_type_query(repo, one.resource_type, topic.previous, strict=True) if topic and topic.previous else None
    )
    return Active(one, owner, queries, end, previous)


def registry_of(services: Services) -> Registry:
    registry = services.extras.get(KEY)
    if not isinstance(registry, Registry):
        registry = services.extras[KEY] = Registry(services)
    return registry


def install(services: Services) -> Registry:
    registry = registry_of(services)
    services.after_write.append(_on_subscription)
    services.after_index.append(_on_change)
    services.after_commit.append(lambda context, written: _after_commit(registry, written))
    return registry


# ---- a Subscription written --------------------------------------------------------------------
def _on_subscription(repo: Repository, stored: StoredVersion, body: dict[str, Any] | None) -> None:
    if stored.resource_type != "Subscription":
        return
    if stored.deleted or body is None:
        repo.session.subscription_drop(stored.id)
        return
    one = check(repo, body)
    owner = _owner(repo, stored.id)
    repo.session.subscription_put(stored.id, one.to_json(), orjson.dumps(owner.to_json()).decode(), res.now())


def check(repo: Repository, body: dict[str, Any]) -> Spec:
    """The Spec of a Subscription being written, or a 400: its criteria parse against this server's
    search parameters (unknown ones included), and a rest-hook's endpoint is an allowed destination."""
    one = spec.read(body)
    if one.status not in ("requested", "active", "error", "off"):
        raise bad_request(
            f"Unknown Subscription.status '{one.status[:40]}'", f"Trạng thái '{one.status[:40]}' không hợp lệ"
        )
    for query in one.criteria:
        try:
            parsed = parse_type_query(repo, one.resource_type, query, strict=True)
        except FhirError as exc:
            raise bad_request(
                f"Subscription.criteria: {exc.issues[0].en}", f"Subscription.criteria: {exc.issues[0].vi}"
            ) from None
        names = {key.partition(":")[0] for key, _ in parse_qsl(query, keep_blank_values=True)}
        if parsed.includes or parsed.sort or parsed.ignored or names & RESULT_PARAMS:
            raise bad_request(
                "Subscription.criteria may hold search criteria only (no _include, _sort, _count, ...)",
                "Subscription.criteria chỉ chứa tiêu chí tìm kiếm (không _include, _sort, _count, ...)",
            )
    # The server's own status changes are not checked again: an allow-list changed since must not
    # stop the relay from recording that the endpoint now fails.
    if one.channel == "rest-hook" and one.status != "off" and repo.context.source != "internal":
        try:
            endpoints.admissible(one.endpoint, allow_list(repo.services))
        except endpoints.Refused as exc:
            raise bad_request(
                f"Subscription.channel.endpoint: {exc.en}", f"Subscription.channel.endpoint: {exc.vi}"
            ) from None
    return one


def allow_list(services: Services) -> endpoints.AllowList:
    return endpoints.AllowList.parse(services.settings.subscription_endpoints)


def _owner(repo: Repository, id: str) -> RequestContext:
    """Whose rights the subscription runs with: whoever wrote it, except the server itself (a status
    change by the relay keeps the owner it had)."""
    if repo.context.source == "internal":
        state = repo.session.subscription_state(id)
        if state is not None:
            return RequestContext.of_job(orjson.loads(state.owner))
    return replace(repo.context, request_id="subscription")


# ---- any other version written ------------------------------------------------------------------
def _on_change(repo: Repository, stored: StoredVersion, index: IndexRows | None) -> None:
    if stored.resource_type == "Subscription" or index is None or stored.deleted:
        return
    registry = registry_of(repo.services)
    watch = registry.current(repo.session).get(stored.resource_type)
    candidates = watch.candidates(index) if watch is not None else None
    if not candidates:
        return
    interaction = "create" if stored.version == 1 else "update"
    base = repo.services.settings.public_base()
    events = [
        (one.spec.id, stored.last_updated, stored.resource_type, stored.id, stored.version)
        for one in candidates
        if interaction in one.spec.interactions
        and (one.end is None or stored.last_updated < one.end)
        and _matches(Repository(repo.services, repo.session, one.owner), one, stored, index, base)
        and _was_not_yet(repo, one, stored, base)
    ]
    if events:
        repo.session.subscription_enqueue(events)


def _matches(as_owner: Repository, one: Active, stored: StoredVersion, index: IndexRows, base: str) -> bool:
    """The criteria hold, and the subscription's owner may read this version now: a subscriber sees
    only what its own authorization allows, so nothing is queued for what it may not see."""
    if not all(matching.matches(as_owner, stored, index, q, base) for q in one.queries):
        return False
    return as_owner._visible(stored, "r", current=True)


def _was_not_yet(repo: Repository, one: Active, stored: StoredVersion, base: str) -> bool:
    """A topic's ``previous`` test: the version before this one matches it (a create, or an update of a
    deleted resource, passes). Only then is the version before read and indexed: for the few topics that
    have the test, on updates that already passed every other one."""
    if one.previous is None or stored.version == 1:
        return True
    try:  # with the server's rights: what the owner may see was decided on the new version
        before = repo.privileged("subscriptions").vread(stored.resource_type, stored.id, str(stored.version - 1))
    except FhirError:  # gone, or a deletion: the resource did not exist before (a create passes)
        return True
    if before.content is None:
        return True
    index = repo.services.extractor.extract(orjson.loads(before.content))
    # From the index rows only: the database holds the new version now (each topic's test is one that
    # the rows decide, tests/subscriptions/test_topics.py).
    return all(matching.holds(crit, before, index, base) for crit in one.previous.filters)


def _after_commit(registry: Registry, written: list[StoredVersion]) -> None:
    if any(v.resource_type == "Subscription" for v in written):
        registry.invalidate()
    registry.wake()
