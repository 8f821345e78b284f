"""Slowing down guessing: account lock-out after failed sign-ins, and per-key rate limits.

* Lock-out (NIST SP 800-63B-4 §3.2.2, "rate limiting (throttling)"): after ``threshold``
  consecutive failures an account is locked for ``base_delay``, and each failure after a lock
  doubles the next lock, up to ``max_delay``. The state is two numbers kept in the account's row
  (:class:`LockoutState`); the transitions are pure functions so the caller reads the row, applies
  one, and writes it back in the same transaction.
* :class:`RateLimiter`: a token bucket per key (client id, IP address, user name) in this
  process's memory. Its waits feed the ``Retry-After`` header of 429 responses (RFC 6585 §4,
  RFC 9110 §10.2.3).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int = 5  # consecutive failures before the first lock
    base_delay: float = 30.0  # seconds of the first lock
    max_delay: float = 3600.0  # no lock is longer than this


DEFAULT_POLICY = LockoutPolicy()


@dataclass(frozen=True, slots=True)
class LockoutState:
    """What is stored per account: consecutive failures, and the Unix time the lock ends (0: none)."""

    failures: int = 0
    locked_until: float = 0.0


def retry_after(state: LockoutState, now: float) -> float:
    """Seconds until sign-in may be tried again; 0.0 when the account is not locked."""
    return max(0.0, state.locked_until - now)


def _lock_delay(failures: int, policy: LockoutPolicy) -> float:
    # failures == threshold → base_delay; each further one doubles. The exponent is bounded
    # before use so that a long-hammered account cannot overflow the float.
    doublings = min(failures - policy.threshold, 64)
    return min(policy.max_delay, policy.base_delay * 2.0**doublings)


def after_failure(state: LockoutState, now: float, policy: LockoutPolicy = DEFAULT_POLICY) -> LockoutState:
    """The state after a failed sign-in at ``now``.

    While a lock is running the password is not even checked, so a failure reported then changes
    nothing: otherwise an attacker could push a victim's lock to ``max_delay`` within seconds.
    """
    if retry_after(state, now) > 0:
        return state
    failures = state.failures + 1
    if failures < policy.threshold:
        return LockoutState(failures, 0.0)
    return LockoutState(failures, now + _lock_delay(failures, policy))


def after_success() -> LockoutState:
    """The state after a successful sign-in: no failures, no lock."""
    return LockoutState()


class Lockout:
    """The lock-out state machine of one account kept in memory (tests, the demo, a CLI prompt)."""

    def __init__(self, policy: LockoutPolicy = DEFAULT_POLICY, state: LockoutState | None = None) -> None:
        self.policy = policy
        self.state = state if state is not None else LockoutState()

    def fail(self, now: float) -> float:
        """Record a failure; returns the seconds until the next try is allowed."""
        self.state = after_failure(self.state, now, self.policy)
        return retry_after(self.state, now)

    def succeed(self) -> None:
        self.state = after_success()

    def retry_after(self, now: float) -> float:
        return retry_after(self.state, now)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float  # when ``tokens`` was last brought up to date


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, then ``rate_per_s`` on average.

    In memory and per process: with several workers each has its own buckets, so the real limit
    is the configured one times the number of workers, which is acceptable for a brake on
    guessing and abuse (the durable guard against password guessing is :class:`LockoutState`).
    """

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_s must be > 0, burst and max_keys ≥ 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        # Pruning frees a tenth of the table at once, so that a flood of new keys (user names
        # are chosen by the caller) costs one scan per max_keys/10 keys, not one per key.
        self._low_water = max_keys - max(1, max_keys // 10)
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()  # take() is called from the server's thread pool

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def take(self, key: str, now: float) -> float:
        """Spend one token of ``key`` at ``now``: 0.0 when allowed, else the seconds to wait."""
        with self._lock:
            bucket = self._bucket(key, now)
            self._refill(bucket, now)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate_per_s

    def _refill(self, bucket: _Bucket, now: float) -> None:
        # A clock that steps backwards adds nothing rather than removing tokens.
        elapsed = max(0.0, now - bucket.stamp)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
        bucket.stamp = max(bucket.stamp, now)

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets.move_to_end(key)
            return bucket
        if len(self._buckets) >= self.max_keys:
            self._prune(now)
        bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        return bucket

    def _is_full(self, bucket: _Bucket, now: float) -> bool:
        return bucket.tokens + max(0.0, now - bucket.stamp) * self.rate_per_s >= self.burst

    def _prune(self, now: float) -> None:
        # Full (idle) buckets all go, and for free: a key that comes back gets a full bucket,
        # exactly what it had. Only if that is not enough do the least recently used keys go;
        # each of those regains a full burst when it returns — the price of bounded memory,
        # at most one extra burst per evicted key.
        for key in [k for k, b in self._buckets.items() if self._is_full(b, now)]:
            del self._buckets[key]
        while len(self._buckets) > self._low_water:
            self._buckets.popitem(last=False)
