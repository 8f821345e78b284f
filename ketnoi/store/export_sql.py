"""Bulk export's read in storage order, a mixin of ``SqlSession`` for both dialects (ADR 0024, decision 12).

A system-level ``$export`` that the access policy does not narrow reads ``resource_history`` in
``seq`` order (its storage order: versions are appended) instead of one keyset search per type, whose
pages are one random lookup of ``resource_history`` per resource. The export is of the database as of
a *mark*, the highest ``seq`` when it started: a version is written when it is the resource's latest
version at or below the mark and not a deletion, whatever is written after the mark, so a resource
updated or deleted meanwhile is still written once (its version at the mark) and one deleted before
the mark not at all.

PostgreSQL hands out ``seq`` values before the writes commit, so a transaction may still commit a
version at or below the mark after the mark is taken; :meth:`export_mark` also returns the
transactions running then, and the scan starts only once each has ended (:meth:`export_settled`). A
write of a new version of an existing resource locks its ``resource`` row first
(``SqlSession.current(for_update=True)``, ``prefetch``), which gives it a transaction id before it
takes its ``seq``: it is one of those waited for. SQLite has one writer at a time and commits in
``seq`` order: its mark is settled at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

# The latest version at or below the mark: no next version at or below it. Versions of one resource
# take increasing seq values (a new version is written under the resource's lock, after the one
# before it; one flush appends a resource's versions in order). A scalar subquery, not NOT EXISTS:
# PostgreSQL would plan an anti-join as a hash or a parallel join over the whole history; this is one
# probe of the (resource_type, id, version) key per row, which finds nothing (no heap read) for a
# resource never changed since.
_LATEST = (
    "(SELECT 1 FROM resource_history n WHERE n.resource_type = h.resource_type AND n.id = h.id "
    "AND n.version = h.version + 1 AND n.seq <= ?) IS NULL"
)
_SEQUENCE = "pg_get_serial_sequence('resource_history', 'seq')"
# The transactions running now in this database, each by its transaction id: every transaction holds
# the lock of its own id from the moment it has one, and ``pg_locks`` shows every role's (where
# ``pg_stat_activity`` hides another role's ids, and a snapshot's in-progress list leaves out the
# newest). Not this session's; not those of other databases of the cluster, which cannot write this
# history (a long load in another database must not hold the export).
_HELD = "locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted"
_RUNNING = (
    f"SELECT l.transactionid::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE {_HELD} "
    "AND a.datname = current_database() AND l.pid <> pg_backend_pid()"
)
_STILL_RUNNING = f"SELECT count(*) FROM pg_locks WHERE {_HELD} AND transactionid::text = ANY(?)"


class ExportSql:
    """``export_*`` of ``Session``, over the session's connection."""

    _pg: bool
    conn: Any

    if TYPE_CHECKING:  # provided by SqlSession

        def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any: ...

        def flush(self) -> None: ...

    def export_mark(self) -> tuple[int, list[str] | None]:
        """The export's mark (the highest ``seq`` handed out) and, on PostgreSQL, the transactions
        running after it was read (None on SQLite: nothing to wait for)."""
        self.flush()
        if not self._pg:
            return int(self.execute("SELECT COALESCE(MAX(seq), 0) FROM resource_history").fetchone()[0]), None
        # The sequence's value, not MAX(seq): it counts the values of transactions not yet committed,
        # which are then waited for. Read before the running transactions are, in a statement of its own (each
        # statement has a later snapshot), so that every transaction holding a value at or below the
        # mark with a transaction id is among those running at the second.
        mark = self.execute(f"SELECT COALESCE(pg_sequence_last_value({_SEQUENCE}::regclass), 0)").fetchone()[0]
        return int(mark), [row[0] for row in self.execute(_RUNNING).fetchall()]

    def export_settled(self, running: Sequence[str] | None) -> bool:
        """Whether every transaction of ``running`` (:meth:`export_mark`) has ended."""
        if not running or not self._pg:
            return True
        return int(self.execute(_STILL_RUNNING, (list(running),)).fetchone()[0]) == 0

    def export_scan(
        self, types: Sequence[str], after: int, upto: int, mark: int, since: float | None
    ) -> list[tuple[int, str, str, bytes]]:
        """The versions to export with a ``seq`` in ``(after, upto]``, in ``seq`` order:
        ``(seq, resource_type, id, content)`` of each resource of ``types`` whose latest version at or
        below ``mark`` is that one and not a deletion (and, with ``since``, was written after it).

        A range of ``seq``, not a LIMIT: PostgreSQL guesses that few rows pass the latest-version
        test, so with ``ORDER BY seq LIMIT n`` over the rest of the history it planned a bitmap scan
        of all of it and a sort (2.5 s a page at 300k resources); over a range it walks the key."""
        self.flush()
        if not types or upto <= after:
            return []
        where = [
            "h.seq > ?",
            "h.seq <= ?",
            f"h.resource_type IN ({', '.join('?' * len(types))})",
            "h.deleted = ?",
        ]
        params: list[Any] = [after, min(upto, mark), *types, False]
        if since is not None:
            where.append("h.last_updated + 0.001 > ?")  # as _lastUpdated=ge (ketnoi.search.conditions)
            params.append(since)
        where.append(_LATEST)
        params.append(mark)
        sql = f"SELECT h.seq, h.resource_type, h.id, h.content FROM resource_history h WHERE {' AND '.join(where)} "
        sql += "ORDER BY h.seq"
        if not self._pg:
            return [(int(s), t, i, bytes(c)) for s, t, i, c in self.execute(sql, params).fetchall()]
        # Binary results: bytea in the text format is hex, twice the bytes to send and to decode
        # (measured: the fetch of the same rows ran at under half the rate).
        cur = self.conn.cursor(binary=True)
        cur.execute(sql.replace("?", "%s"), params)
        return [(int(s), t, i, bytes(c)) for s, t, i, c in cur.fetchall()]

    def export_late(self, mark: int, before: float) -> float | None:
        """See :meth:`ketnoi.store.base.Session.export_late`: a range of the ``seq`` key from the mark
        (the writes since the export began), each row's time compared."""
        self.flush()
        sql = "SELECT MIN(last_updated) FROM resource_history WHERE seq > ? AND last_updated < ?"
        found = self.execute(sql, (mark, before)).fetchone()[0]
        return None if found is None else float(found)
