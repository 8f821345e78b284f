"""The Subscriptions' outbox and delivery state, a mixin of ``SqlSession`` for both dialects (ADR 0025).

A write that matches a subscription inserts an outbox row in its own transaction
(:meth:`subscription_enqueue`): the notification is decided exactly when the change commits, and a
rolled-back write leaves none. Writers never update a shared counter (two transactions matching the
same subscriptions would otherwise serialise, or deadlock on PostgreSQL when they meet them in
different orders); the relay that holds a subscription's lease numbers its events in the order of
their rows (:meth:`subscription_number`) before sending them, so numbers are contiguous and each
subscription's events go out in one order. A lease is a conditional UPDATE, atomic on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ketnoi.store.base import SubscriptionEvent, SubscriptionState, chunks

_STATE_COLUMNS = "subscription, spec, owner, events, failures, next_at, worker, lease_until, last_sent, error"
_EVENT_COLUMNS = "seq, subscription, number, recorded, focus_type, focus_id, focus_version, state, attempts, error"
_FREE = "(lease_until IS NULL OR lease_until < ?)"
_OUTBOX_TYPES = ("text", "float8", "text", "text", "int4")


class SubscriptionSql:
    """``subscription_*`` of ``Session``, over the session's connection."""

    _pg: bool
    _outbox: list[tuple[str, float, str, str, int]]  # set by SqlSession.__init__

    if TYPE_CHECKING:  # provided by SqlSession

        def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any: ...

        def executemany(self, sql: str, rows: list[Any]) -> None: ...

        def _rows_source(self, rows: Sequence[tuple[Any, ...]], types: tuple[str, ...]) -> str: ...

        def _rows_params(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]: ...

    def subscription_put(self, subscription: str, spec: str, owner: str, now: float) -> None:
        self.execute(
            "INSERT INTO subscription_state (subscription, spec, owner, events, failures, next_at, updated) "
            "VALUES (?, ?, ?, 0, 0, 0, ?) ON CONFLICT (subscription) DO UPDATE SET "
            "spec = excluded.spec, owner = excluded.owner, updated = excluded.updated",
            (subscription, spec, owner, now),
        )

    def subscription_drop(self, subscription: str) -> None:
        self.execute("DELETE FROM subscription_event WHERE subscription = ?", (subscription,))
        self.execute("DELETE FROM subscription_state WHERE subscription = ?", (subscription,))

    def subscription_states(self) -> list[SubscriptionState]:
        rows = self.execute(f"SELECT {_STATE_COLUMNS} FROM subscription_state ORDER BY subscription").fetchall()
        return [_state(row) for row in rows]

    def subscription_state(self, subscription: str) -> SubscriptionState | None:
        row = self.execute(
            f"SELECT {_STATE_COLUMNS} FROM subscription_state WHERE subscription = ?", (subscription,)
        ).fetchone()
        return _state(row) if row else None

    def subscription_enqueue(self, events: Sequence[tuple[str, float, str, str, int]]) -> None:
        # Buffered like the versions (write-behind): a transaction Bundle of 100 matching resources
        # sends its outbox rows in one batch at flush, before the commit, not 100 statements.
        self._outbox.extend(events)

    def _flush_outbox(self) -> None:
        """One statement per 500 rows (PostgreSQL: ``unnest`` of arrays, parsed once whatever the
        count; executemany would run one INSERT per row)."""
        if not self._outbox:
            return
        rows, self._outbox = self._outbox, []
        for chunk in chunks(rows, 500):
            source = self._rows_source(chunk, _OUTBOX_TYPES)
            self.execute(
                "INSERT INTO subscription_event (subscription, recorded, focus_type, focus_id, focus_version, "
                f"state, attempts) SELECT s.*, 'pending', 0 FROM ({source}) AS s",
                self._rows_params(chunk),
            )

    def subscription_due(self, now: float, limit: int) -> list[str]:
        rows = self.execute(
            f"SELECT s.subscription FROM subscription_state s WHERE s.next_at <= ? AND {_FREE} "
            "AND EXISTS (SELECT 1 FROM subscription_event e WHERE e.subscription = s.subscription "
            "AND e.state = 'pending') ORDER BY s.next_at, s.subscription LIMIT ?",
            (now, now, limit),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def subscription_lease(self, subscription: str, worker: str, now: float, until: float) -> SubscriptionState | None:
        row = self.execute(
            f"UPDATE subscription_state SET worker = ?, lease_until = ? WHERE subscription = ? "
            f"AND ({_FREE} OR worker = ?) AND next_at <= ? RETURNING {_STATE_COLUMNS}",
            (worker, until, subscription, now, worker, now),
        ).fetchone()
        return _state(row) if row else None

    def subscription_release(self, subscription: str, worker: str) -> None:
        self.execute(
            "UPDATE subscription_state SET worker = NULL, lease_until = NULL WHERE subscription = ? AND worker = ?",
            (subscription, worker),
        )

    def subscription_number(self, subscription: str, last: int | None = None) -> int:
        if last is None:
            row = self.execute(
                "SELECT events FROM subscription_state WHERE subscription = ?", (subscription,)
            ).fetchone()
            last = int(row[0]) if row else 0
        seqs = self.execute(
            "SELECT seq FROM subscription_event WHERE subscription = ? AND number IS NULL ORDER BY seq",
            (subscription,),
        ).fetchall()
        if not seqs:
            return last
        numbered = [(int(seq), last + i + 1) for i, (seq,) in enumerate(seqs)]
        for chunk in chunks(numbered, 500):  # one statement per 500 (PostgreSQL ran one UPDATE per row)
            self.execute(
                f"UPDATE subscription_event SET number = v.n FROM ({self._pairs(chunk)}) AS v "
                "WHERE subscription_event.seq = v.seq",
                self._rows_params(chunk),
            )
        last += len(numbered)
        self.execute("UPDATE subscription_state SET events = ? WHERE subscription = ?", (last, subscription))
        return last

    def subscription_head(self, subscription: str, limit: int) -> list[SubscriptionEvent]:
        rows = self.execute(
            f"SELECT {_EVENT_COLUMNS} FROM subscription_event WHERE subscription = ? AND state = 'pending' "
            "AND number IS NOT NULL ORDER BY number LIMIT ?",
            (subscription, limit),
        ).fetchall()
        return [_event(row) for row in rows]

    def _pairs(self, rows: Sequence[tuple[int, int]]) -> str:
        """A row source of (seq, n) pairs with those column names on both dialects."""
        if self._pg:
            return "SELECT * FROM unnest(?::int8[], ?::int8[]) AS p(seq, n)"
        values = ", ".join("(?, ?)" for _ in rows)
        return f"SELECT column1 AS seq, column2 AS n FROM (VALUES {values})"

    def _numbers(self, subscription: str, numbers: Sequence[int]) -> list[tuple[str, list[Any]]]:
        """``subscription = ? AND number IN (...)`` per 500 numbers, with its parameters."""
        out = []
        for chunk in chunks(list(numbers), 500):
            marks = "?" if self._pg else ", ".join("?" * len(chunk))
            cond = (
                "subscription = ? AND number = ANY(?::int8[])"
                if self._pg
                else f"subscription = ? AND number IN ({marks})"
            )
            out.append((cond, [subscription, list(chunk)] if self._pg else [subscription, *chunk]))
        return out

    def subscription_sent(self, subscription: str, numbers: Sequence[int], now: float) -> None:
        for cond, params in self._numbers(subscription, numbers):
            self.execute(
                f"UPDATE subscription_event SET state = 'sent', sent = ?, attempts = attempts + 1, error = NULL "
                f"WHERE {cond}",
                [now, *params],
            )
        self.subscription_touch(subscription, now)

    def subscription_failed(
        self, subscription: str, numbers: Sequence[int], error: str, next_at: float, *, dead: bool, now: float
    ) -> None:
        state = "dead" if dead else "pending"
        for cond, params in self._numbers(subscription, numbers):
            self.execute(
                f"UPDATE subscription_event SET state = ?, attempts = attempts + 1, error = ?, sent = ? WHERE {cond}",
                [state, error, now if dead else None, *params],
            )
        self.execute(
            "UPDATE subscription_state SET failures = failures + 1, next_at = ?, error = ?, updated = ? "
            "WHERE subscription = ?",
            (next_at, error, now, subscription),
        )

    def subscription_touch(self, subscription: str, now: float) -> None:
        self.execute(
            "UPDATE subscription_state SET failures = 0, next_at = 0, error = NULL, last_sent = ?, updated = ? "
            "WHERE subscription = ?",
            (now, now, subscription),
        )

    def subscription_events(self, subscription: str, first: int, last: int, limit: int) -> list[SubscriptionEvent]:
        rows = self.execute(
            f"SELECT {_EVENT_COLUMNS} FROM subscription_event WHERE subscription = ? AND number >= ? "
            "AND number <= ? ORDER BY number LIMIT ?",
            (subscription, first, last, limit),
        ).fetchall()
        return [_event(row) for row in rows]

    def subscription_purge(self, before: float) -> int:
        cur = self.execute("DELETE FROM subscription_event WHERE state <> 'pending' AND sent < ?", (before,))
        return int(cur.rowcount or 0)


def _state(row: tuple[Any, ...]) -> SubscriptionState:
    sub, spec, owner, events, failures, next_at, worker, lease, last_sent, error = row
    return SubscriptionState(
        str(sub), str(spec), str(owner), int(events), int(failures), float(next_at), worker, lease, last_sent, error
    )


def _event(row: tuple[Any, ...]) -> SubscriptionEvent:
    seq, sub, number, recorded, ftype, fid, fversion, state, attempts, error = row
    return SubscriptionEvent(
        int(seq),
        str(sub),
        None if number is None else int(number),
        float(recorded),
        str(ftype),
        str(fid),
        int(fversion),
        str(state),
        int(attempts),
        error,
    )
