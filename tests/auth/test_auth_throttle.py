"""Account lock-out after failed sign-ins, and the per-key token-bucket rate limiter."""

from __future__ import annotations

import threading
from dataclasses import FrozenInstanceError

import pytest

from ketnoi.auth.throttle import (
    DEFAULT_POLICY,
    Lockout,
    LockoutPolicy,
    LockoutState,
    RateLimiter,
    after_failure,
    after_success,
    retry_after,
)

T0 = 1_700_000_000.0


def fail_times(state: LockoutState, n: int, now: float, policy: LockoutPolicy = DEFAULT_POLICY) -> LockoutState:
    for _ in range(n):
        state = after_failure(state, now, policy)
    return state


# --- lock-out -------------------------------------------------------------------------------


def test_default_policy() -> None:
    assert (DEFAULT_POLICY.threshold, DEFAULT_POLICY.base_delay, DEFAULT_POLICY.max_delay) == (5, 30.0, 3600.0)
    assert LockoutPolicy() == DEFAULT_POLICY


def test_state_is_frozen_and_starts_empty() -> None:
    state = LockoutState()
    assert (state.failures, state.locked_until) == (0, 0.0)
    with pytest.raises(FrozenInstanceError):
        state.failures = 3  # type: ignore[misc]


def test_four_failures_do_not_lock() -> None:
    state = fail_times(LockoutState(), 4, T0)
    assert state == LockoutState(4, 0.0)
    assert retry_after(state, T0) == 0.0


def test_fifth_failure_locks_for_base_delay() -> None:
    state = fail_times(LockoutState(), 5, T0)
    assert state == LockoutState(5, T0 + 30.0)
    assert retry_after(state, T0) == 30.0
    assert retry_after(state, T0 + 10.0) == 20.0
    assert retry_after(state, T0 + 30.0) == 0.0
    assert retry_after(state, T0 + 31.0) == 0.0


def test_failure_during_a_lock_changes_nothing() -> None:
    locked = fail_times(LockoutState(), 5, T0)
    assert after_failure(locked, T0 + 29.0) is locked


def test_each_failure_after_a_lock_doubles_the_next_lock() -> None:
    state = fail_times(LockoutState(), 5, T0)
    now = T0
    delays = []
    for _ in range(6):
        now += retry_after(state, now)  # wait the lock out, then fail again
        state = after_failure(state, now)
        delays.append(retry_after(state, now))
    assert delays == [60.0, 120.0, 240.0, 480.0, 960.0, 1920.0]
    assert state.failures == 11


def test_lock_is_capped_at_max_delay() -> None:
    state = LockoutState(11, 0.0)
    state = after_failure(state, T0)  # would be 3840 s
    assert retry_after(state, T0) == 3600.0
    state = after_failure(LockoutState(10_000, 0.0), T0)  # exponent far beyond a float's range
    assert retry_after(state, T0) == 3600.0


def test_success_resets() -> None:
    assert after_success() == LockoutState(0, 0.0)
    state = fail_times(LockoutState(), 4, T0)
    state = after_success()
    assert fail_times(state, 4, T0) == LockoutState(4, 0.0)


def test_custom_policy() -> None:
    policy = LockoutPolicy(threshold=2, base_delay=1.0, max_delay=5.0)
    state = fail_times(LockoutState(), 2, T0, policy)
    assert state == LockoutState(2, T0 + 1.0)
    delays = []
    now = T0
    for _ in range(4):
        now += retry_after(state, now)
        state = after_failure(state, now, policy)
        delays.append(retry_after(state, now))
    assert delays == [2.0, 4.0, 5.0, 5.0]


def test_lockout_object() -> None:
    lockout = Lockout()
    assert [lockout.fail(T0) for _ in range(5)] == [0.0, 0.0, 0.0, 0.0, 30.0]
    assert lockout.retry_after(T0 + 12.0) == 18.0
    assert lockout.fail(T0 + 30.0) == 60.0
    assert lockout.state == LockoutState(6, T0 + 90.0)
    lockout.succeed()
    assert lockout.state == LockoutState()
    assert lockout.retry_after(T0 + 30.0) == 0.0


def test_lockout_object_resumes_a_stored_state() -> None:
    lockout = Lockout(LockoutPolicy(threshold=1), LockoutState(3, 0.0))
    assert lockout.fail(T0) == 240.0  # 30 s doubled three times: failures continue from the row
    assert lockout.state == LockoutState(4, T0 + 240.0)


# --- rate limiter ----------------------------------------------------------------------------


def test_burst_then_wait_matching_the_rate() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.take("ip:10.0.0.1", T0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("ip:10.0.0.1", T0) == 0.5  # one token at 2 per second
    assert limiter.take("ip:10.0.0.1", T0 + 0.25) == 0.25  # half a token has come back


def test_refused_takes_do_not_spend() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.take("k", T0) == 0.0
    assert [limiter.take("k", T0) for _ in range(5)] == [1.0] * 5
    assert limiter.take("k", T0 + 1.0) == 0.0


def test_refills_over_time_up_to_burst() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    for _ in range(3):
        limiter.take("k", T0)
    assert limiter.take("k", T0 + 0.5) == 0.0
    assert limiter.take("k", T0 + 0.5) == 0.5
    # A long idle time refills to burst, not beyond.
    assert [limiter.take("k", T0 + 1000.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


def test_clock_going_backwards_adds_nothing() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.take("k", T0) == 0.0
    assert limiter.take("k", T0 - 100.0) == 1.0
    assert limiter.take("k", T0 + 1.0) == 0.0


def test_keys_are_independent() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=2)
    assert [limiter.take("user:lan", T0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert [limiter.take("user:an", T0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert len(limiter) == 2


def test_bounded_at_max_keys() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_keys=100)
    for i in range(1000):
        limiter.take(f"ip:{i}", T0)
        assert len(limiter) <= 100
    assert "ip:999" in limiter
    assert "ip:0" not in limiter


def test_idle_keys_are_dropped_before_the_oldest() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=2, max_keys=3)
    limiter.take("a", T0)  # oldest, still spending
    limiter.take("b", T0 - 10.0)  # last used long ago: full again by T0
    limiter.take("c", T0)
    limiter.take("d", T0)
    assert ("a" in limiter, "b" in limiter, "c" in limiter, "d" in limiter) == (True, False, True, True)


def test_least_recently_used_key_goes_when_none_is_idle() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=2, max_keys=3)
    for key in ("a", "b", "c"):
        limiter.take(key, T0)
    limiter.take("a", T0)  # "a" is now the most recently used; "b" the least
    limiter.take("d", T0)
    assert ("a" in limiter, "b" in limiter, "c" in limiter, "d" in limiter) == (True, False, True, True)
    assert limiter.take("a", T0) == 1.0  # kept its spent bucket


def test_pruning_frees_a_tenth_at_once() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=2, max_keys=20)
    for i in range(20):
        limiter.take(str(i), T0)
    limiter.take("new", T0)
    assert len(limiter) == 19  # pruned to 18, then "new" added


def test_max_keys_one() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_keys=1)
    assert limiter.take("a", T0) == 0.0
    assert limiter.take("b", T0) == 0.0
    assert (len(limiter), "b" in limiter) == (1, True)


@pytest.mark.parametrize(("rate", "burst", "max_keys"), [(0.0, 1, 1), (-1.0, 1, 1), (1.0, 0, 1), (1.0, 1, 0)])
def test_bad_settings(rate: float, burst: int, max_keys: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst, max_keys)


def test_thread_safe_under_contention() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=50)
    allowed = [0] * 8
    start = threading.Barrier(8)

    def hammer(i: int) -> None:
        start.wait()
        for _ in range(500):
            if limiter.take("client:shared", T0) == 0.0:
                allowed[i] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 50
