"""Planner statistics that keep themselves current (ADR 0009).

Both databases plan a search from statistics about the tables. Without them, or with ones taken
when the tables were nearly empty, a patient-scoped search can read every row of a common code
for each of the patient's resources: a patient's vital signs took 16-22 s on a database filled
over REST (issue 8), 7 ms after one ANALYZE. A server that is fast only after a bulk load is not
fast, so the store checks, every few seconds while idle, whether the data has changed enough
since the last analysis and analyses it then:

- **SQLite** has no change counters. ``resource_history.seq`` grows with every version written, so
  the writes since the last analysis are ``MAX(seq)`` minus the value recorded in ``store_state``
  at that analysis. ``ANALYZE`` is sampled (``analysis_limit``): milliseconds at any size. It
  changes the schema cookie, so every other connection reloads the statistics on its next
  statement.
- **PostgreSQL** counts changes per table (``pg_stat_user_tables.n_mod_since_analyze``);
  autovacuum analyzes at 10 % after up to a minute's nap, and not at all where it is switched
  off. The keeper analyzes exactly the tables past the same share, within seconds.

A table is due when its changes reach ``MIN_CHANGES + SHARE * rows``: every doubling of the data
is analyzed about seven times, and a steady trickle of updates rarely.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ketnoi.runtime import Throttled
from ketnoi.store.base import Store
from ketnoi.store.schema import INDEX_COLUMNS

TABLES = ("resource", "resource_history", *(f"idx_{kind}" for kind in INDEX_COLUMNS))
MIN_CHANGES = 500
SHARE = 0.1
# PostgreSQL: a table is analysed at most this often. ANALYZE samples up to 150,000 rows of
# idx_token (its code column has statistics target 500, migration 7): about 5 s at 1.2M rows, so
# during a long fill the keeper takes at most about a sixth of one core.
SPACING_S = 30.0
_ANALYZED_SEQ = "analyzed_seq"  # store_state: resource_history.seq at the last SQLite ANALYZE

Execute = Callable[[str, tuple[Any, ...]], Any]


def _threshold(rows: float) -> float:
    return MIN_CHANGES + SHARE * max(rows, 0.0)


def due(execute: Execute, dialect: str, min_age_s: float = 0.0) -> list[str]:
    """The tables whose statistics are out of date (SQLite: all of them, or none). PostgreSQL: not
    a table analysed (by anyone) less than ``min_age_s`` ago."""
    if dialect == "postgresql":
        rows = execute(
            "SELECT relname, n_mod_since_analyze, GREATEST(n_live_tup, 0) FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = ANY(?) AND COALESCE(GREATEST(last_analyze, "
            "last_autoanalyze), 'epoch') < now() - make_interval(secs => ?)",
            (list(TABLES), min_age_s),
        ).fetchall()
        return sorted(name for name, changed, live in rows if changed >= _threshold(float(live)))
    written = int(execute("SELECT COALESCE(MAX(seq), 0) FROM resource_history", ()).fetchone()[0])
    analyzed = _analyzed_seq(execute)
    return list(TABLES) if written - analyzed >= _threshold(analyzed) else []


def _analyzed_seq(execute: Execute) -> int:
    row = execute("SELECT value FROM store_state WHERE name = ?", (_ANALYZED_SEQ,)).fetchone()
    return int(row[0]) if row else 0


def analyze(execute: Execute, dialect: str, tables: Sequence[str] | None = None) -> None:
    """Refresh the statistics of ``tables`` (default: every table). Inside the caller's transaction."""
    if dialect == "postgresql":
        targets = [t for t in (tables or TABLES) if t in TABLES]  # names are interpolated: ours only
        execute(f"ANALYZE {', '.join(targets)}", ())
        return
    # SQLite: a sampled ANALYZE of the whole file (its per-table form saves nothing measurable).
    execute("PRAGMA analysis_limit = 1000", ())
    execute("ANALYZE", ())
    written = int(execute("SELECT COALESCE(MAX(seq), 0) FROM resource_history", ()).fetchone()[0])
    execute("DELETE FROM store_state WHERE name = ?", (_ANALYZED_SEQ,))
    execute("INSERT INTO store_state (name, value) VALUES (?, ?)", (_ANALYZED_SEQ, str(written)))


class StatisticsKeeper:
    """The idle task that keeps statistics current: at most one check every ``interval_s``.

    The check is a read (one indexed ``MAX`` on SQLite, one catalogue view on PostgreSQL); a write
    transaction is opened only when something is due, so SQLite's single writer is not taken
    every few seconds for nothing."""

    def __init__(
        self,
        store: Store,
        interval_s: float = 2.0,
        spacing_s: float = SPACING_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.interval_s, self.spacing_s, self.clock = store, interval_s, spacing_s, clock
        self._throttle = Throttled(self.refresh, interval_s, clock)
        self.analyzed = 0  # how many analyses it ran (tests and logs)

    def __call__(self) -> None:
        self._throttle()

    def refresh(self) -> list[str]:
        """Analyze what is due now, whatever the interval; returns the tables analyzed."""
        with self.store.session(write=False) as session:
            if not session.statistics_due(self.spacing_s):
                return []
        with self.store.session(write=True) as session:
            tables = session.statistics_due(self.spacing_s)  # again: another process may have just done it
            if tables:
                session.analyze(tables)
                self.analyzed += 1
        return tables
