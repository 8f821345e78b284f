"""The Subscriptions' outbox in the storage contract, on both backends (ketnoi/store/subscription_sql.py):
rows written at flush and only on commit, numbers given by the lease holder in row order and without
gaps, leases that exclude, delivery marks, the dead letters, ranges for $events, the purge."""

from __future__ import annotations

import time

import pytest

from ketnoi.interactions.services import Services


def _events(n: int, sub: str, start: int = 0) -> list[tuple[str, float, str, str, int]]:
    return [(sub, time.time(), "Observation", f"o{start + i}", 1) for i in range(n)]


def test_outbox_numbers_leases_marks_and_purge(fresh_services: Services) -> None:
    store = fresh_services.store
    with store.session(write=True) as s:
        s.subscription_put("a", "{}", "{}", time.time())
        s.subscription_put("b", "{}", "{}", time.time())
        s.subscription_enqueue(_events(3, "a"))
    with pytest.raises(RuntimeError), store.session(write=True) as s:
        s.subscription_enqueue(_events(5, "a", 100))
        raise RuntimeError("rolled back: its outbox rows with it")
    with store.session(write=True) as s:
        s.subscription_enqueue([*_events(2, "a", 3), *_events(1, "b")])
    now = time.time()
    with store.session(write=True) as s:
        assert sorted(s.subscription_due(now, 10)) == ["a", "b"]
        assert s.subscription_lease("a", "w1", now, now + 60)
        assert not s.subscription_lease("a", "w2", now, now + 60)  # held by w1
        assert s.subscription_due(now, 10) == ["b"]
        assert s.subscription_number("a") == 5
        head = s.subscription_head("a", 10)
    assert [(e.number, e.focus_id) for e in head] == [(1, "o0"), (2, "o1"), (3, "o2"), (4, "o3"), (5, "o4")]
    with store.session(write=True) as s:
        s.subscription_sent("a", [1, 2], now)
        s.subscription_failed("a", [3], "HTTP 503", now + 5, dead=False, now=now)
        s.subscription_failed("a", [3], "HTTP 503", now + 10, dead=True, now=now)
        state = s.subscription_state("a")
        s.subscription_release("a", "w1")
        assert not s.subscription_lease("a", "w2", now, now + 60)  # free, but backing off until now + 10
        leased = s.subscription_lease("a", "w2", now + 11, now + 60)
        assert leased is not None and leased.worker == "w2" and leased.events == 5
        s.subscription_enqueue(_events(1, "a", 5))
    with store.session(write=True) as s:
        assert s.subscription_number("a") == 6  # the new event follows, no gap
        assert [e.number for e in s.subscription_head("a", 10)] == [4, 5, 6]
        events = s.subscription_events("a", 2, 4, 10)
    assert state is not None and state.failures == 2 and state.error == "HTTP 503" and state.next_at == now + 10
    assert [(e.number, e.state, e.attempts) for e in events] == [(2, "sent", 1), (3, "dead", 2), (4, "pending", 0)]
    with store.session(write=True) as s:
        assert s.subscription_purge(now + 1) == 3  # sent and dead ones before then; pending kept
        assert [e.number for e in s.subscription_events("a", 1, 10, 10)] == [4, 5, 6]
        s.subscription_drop("a")
        assert s.subscription_state("a") is None and s.subscription_events("a", 1, 10, 10) == []
