"""The one SQL implementation of ``Session``, shared by the SQLite and PostgreSQL backends.

A backend hands it a DB-API connection already inside a transaction and a placeholder style; all
SQL is written once with ``?`` placeholders and rewritten for psycopg (``%s``). No SQL text here is
ever built from user input: only table/column names from ``schema`` are interpolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ketnoi.search.index import IndexRows
from ketnoi.sql import SqlQuery
from ketnoi.store import statistics
from ketnoi.store.audit_sql import AuditSql
from ketnoi.store.base import JobRecord, StoredVersion, VersionConflict, chunks
from ketnoi.store.export_sql import ExportSql
from ketnoi.store.schema import INDEX_COLUMNS
from ketnoi.store.subscription_sql import SubscriptionSql

_HISTORY_COLUMNS = "seq, resource_type, id, version, last_updated, deleted, content, method, org"


def _insert_sql(kind: str) -> str:
    cols = ("resource_type", "resource_id", *INDEX_COLUMNS[kind])
    return f"INSERT INTO idx_{kind} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


_INSERT_INDEX = {kind: _insert_sql(kind) for kind in INDEX_COLUMNS}
_CURRENT_COLUMNS = "h.seq, h.resource_type, h.id, h.version, h.last_updated, h.deleted, h.content, h.method, h.org"
_CURRENT = f"SELECT {_CURRENT_COLUMNS} FROM resource r JOIN resource_history h ON h.seq = r.seq"
_HISTORY_TYPES = ("text", "text", "int4", "float8", "text", "bool", "bytea", "text")
_POINTER_TYPES = ("text", "text", "int4", "int8", "float8", "bool", "text")
_KEY_TYPES = ("text", "text")
_COPY_AT = 20  # versions in one flush from which PostgreSQL gets COPY instead of INSERT
_RESERVE_SEQ = "SELECT nextval(pg_get_serial_sequence('resource_history', 'seq')) FROM generate_series(1, ?)"
_UNIQUE_VIOLATION = "23505"
# References to local resources that do not exist, from versions written since a time.
_DANGLING = (
    "SELECT DISTINCT x.resource_type, x.resource_id, x.target_type, x.target_id FROM idx_reference x "
    "JOIN resource r ON r.resource_type = x.resource_type AND r.id = x.resource_id AND r.last_updated >= ? "
    "LEFT JOIN resource t ON t.resource_type = x.target_type AND t.id = x.target_id AND t.deleted = ? "
    "WHERE x.target_id IS NOT NULL AND x.url IS NULL AND t.id IS NULL "
    "ORDER BY x.resource_type, x.resource_id, x.target_type, x.target_id LIMIT ?"
)
_LIVE = "(expires IS NULL OR expires > ?)"  # a security record not yet expired
_FLUSH_AT = 2000  # versions buffered before an early flush (bounds memory in bulk loads)


class SqlSession(AuditSql, SubscriptionSql, ExportSql):
    """A ``Session`` over one open DB-API connection (the backend owns begin/commit/rollback).
    The audit log's SQL is in the ``AuditSql`` mixin (``ketnoi.store.audit_sql``), the Subscriptions'
    outbox in ``SubscriptionSql`` (``ketnoi.store.subscription_sql``), bulk export's read in storage
    order in ``ExportSql`` (``ketnoi.store.export_sql``)."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self._pg = dialect == "postgresql"
        # Write-behind buffer: versions written but not yet sent, and current versions known
        # without a query (prefetched under lock, or written by this transaction).
        self._pending: list[tuple[StoredVersion, IndexRows | None]] = []
        self._pending_by_key: dict[tuple[str, str], StoredVersion] = {}
        self._cache: dict[tuple[str, str], StoredVersion | None] = {}
        self._outbox: list[tuple[str, float, str, str, int]] = []  # SubscriptionSql's buffered rows

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        cur = self.conn.cursor()
        cur.execute(self._sql(sql), params)
        return cur

    def executemany(self, sql: str, rows: list[Any]) -> None:
        if rows:
            self.conn.cursor().executemany(self._sql(sql), rows)

    def current(self, resource_type: str, id: str, *, for_update: bool = False) -> StoredVersion | None:
        key = (resource_type, id)
        if key in self._pending_by_key:
            return self._pending_by_key[key]
        if key in self._cache:
            return self._cache[key]
        if for_update and self._pg:
            self._lock_rows([key])
        row = self.execute(f"{_CURRENT} WHERE r.resource_type = ? AND r.id = ?", key).fetchone()
        return _record(row) if row else None

    def current_with(self, resource_type: str, id: str, query: SqlQuery) -> tuple[StoredVersion | None, Any]:
        key = (resource_type, id)
        if key in self._pending_by_key or key in self._cache:
            return self.current(resource_type, id), None
        self.flush()  # ``query`` must see this transaction's own writes, as a search does
        row = self.execute(query.sql, query.params).fetchone()
        return (_record(row[:-1]), row[-1]) if row else (None, None)

    def version(self, resource_type: str, id: str, version: int) -> StoredVersion | None:
        self.flush()
        row = self.execute(
            f"SELECT {_HISTORY_COLUMNS} FROM resource_history WHERE resource_type = ? AND id = ? AND version = ?",
            (resource_type, id, version),
        ).fetchone()
        return _record(row) if row else None

    def write(self, record: StoredVersion, index: IndexRows | None) -> StoredVersion:
        """Buffer the version; it reaches the database at the next flush (a read that could see
        it, or the commit), in a few multi-row statements for the whole buffer."""
        key = (record.resource_type, record.id)
        pending = self._pending_by_key.get(key)
        if pending is not None and pending.version >= record.version:
            raise VersionConflict(f"{record.resource_type}/{record.id} version {record.version} written twice")
        self._pending.append((record, index))
        self._pending_by_key[key] = record
        if len(self._pending) >= _FLUSH_AT:
            self.flush()
        return record

    def prefetch(self, keys: list[tuple[str, str]], *, for_update: bool = True) -> None:
        """Load the current versions of many resources in one query, for ``current`` to answer."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self._pending_by_key and k not in self._cache]
        for chunk in chunks(wanted, 400):
            if for_update and self._pg:
                self._lock_rows(chunk)
            found = self._read_current(chunk)
            for key in chunk:
                self._cache[key] = found.get(key)

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredVersion | None]:
        found: dict[tuple[str, str], StoredVersion | None] = {}
        wanted = []
        for key in dict.fromkeys(keys):
            if key in self._pending_by_key or key in self._cache:  # this transaction's own view first
                found[key] = self._pending_by_key.get(key) or self._cache[key]
            else:
                wanted.append(key)
        for chunk in chunks(wanted, 400):
            rows = self._read_current(chunk)
            found |= {key: rows.get(key) for key in chunk}
        return found

    def analyze(self, tables: Sequence[str] | None = None) -> None:
        self.flush()
        statistics.analyze(self.execute, self.dialect, tables)

    def dangling_references(self, since: float, limit: int) -> list[tuple[str, str, str, str]]:
        rows = self.execute(_DANGLING, (since, False, limit)).fetchall()
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    # ---- security records ------------------------------------------------------------------------
    def security_get(self, kind: str, key: str, now: float, *, for_update: bool = False) -> str | None:
        lock = " FOR UPDATE" if for_update and self._pg else ""
        row = self.execute(
            f"SELECT value FROM security_record WHERE kind = ? AND key = ? AND {_LIVE}{lock}", (kind, key, now)
        ).fetchone()
        return str(row[0]) if row else None

    def security_put(self, kind: str, key: str, value: str, expires: float | None, now: float) -> None:
        self.execute(
            "INSERT INTO security_record (kind, key, value, expires, updated) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires = excluded.expires, "
            "updated = excluded.updated",
            (kind, key, value, expires, now),
        )

    def security_add(self, kind: str, key: str, value: str, expires: float | None, now: float) -> bool:
        # An expired record with the key no longer counts: clear it, then insert unless present.
        self.execute(
            "DELETE FROM security_record WHERE kind = ? AND key = ? AND expires IS NOT NULL AND expires <= ?",
            (kind, key, now),
        )
        row = self.execute(
            "INSERT INTO security_record (kind, key, value, expires, updated) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO NOTHING RETURNING kind",
            (kind, key, value, expires, now),
        ).fetchone()
        return row is not None

    def security_take(self, kind: str, key: str, now: float) -> str | None:
        row = self.execute(
            f"DELETE FROM security_record WHERE kind = ? AND key = ? AND {_LIVE} RETURNING value", (kind, key, now)
        ).fetchone()
        return str(row[0]) if row else None

    def security_delete(self, kind: str, key: str) -> bool:
        cur = self.execute("DELETE FROM security_record WHERE kind = ? AND key = ?", (kind, key))
        return bool(cur.rowcount)

    def security_list(self, kind: str, now: float) -> list[tuple[str, str]]:
        rows = self.execute(
            f"SELECT key, value FROM security_record WHERE kind = ? AND {_LIVE} ORDER BY key", (kind, now)
        ).fetchall()
        return [(str(k), str(v)) for k, v in rows]

    def security_purge(self, now: float) -> int:
        cur = self.execute("DELETE FROM security_record WHERE expires IS NOT NULL AND expires <= ?", (now,))
        return int(cur.rowcount or 0)

    def statistics_due(self, min_age_s: float = 0.0) -> list[str]:
        return statistics.due(self.execute, self.dialect, min_age_s)

    def _lock_rows(self, keys: Sequence[tuple[str, str]]) -> None:
        # Lock the pointer rows alone, then read them with a fresh statement: a FOR UPDATE over
        # the resource⋈history join would, after waiting for a concurrent writer, re-check the
        # join against the old history row and find nothing (the resource would look new).
        self.execute(
            f"SELECT 1 FROM resource WHERE (resource_type, id) IN ({self._rows_source(keys, _KEY_TYPES)}) FOR UPDATE",
            self._rows_params(keys),
        )

    def flush(self) -> None:
        """Write every buffered version (history, current pointers, index rows) and outbox row."""
        self._flush_outbox()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        self._pending_by_key = {}
        # In order, so that a later chunk's pointer replaces an earlier one's for the same key.
        for chunk in chunks(pending, 500):
            self._append_history([r for r, _ in chunk])
        last: dict[tuple[str, str], tuple[StoredVersion, IndexRows | None]] = {}
        first_version: dict[tuple[str, str], int] = {}
        for record, index in pending:
            key = (record.resource_type, record.id)
            last[key] = (record, index)
            first_version.setdefault(key, record.version)
        finals = list(last.values())
        stale = [key for key, version in first_version.items() if version > 1]
        for start in range(0, len(stale), 400):
            self._delete_index(stale[start : start + 400])
        self._insert_index(finals)
        for key, (record, _) in last.items():
            self._cache[key] = record

    def _append_history(self, records: list[StoredVersion]) -> None:
        if self._pg and len(records) >= _COPY_AT:
            self._copy_history(records)
            return
        # ON CONFLICT DO NOTHING instead of catching the unique violation: PostgreSQL would
        # otherwise abort the whole transaction; a missing RETURNING row means a conflict.
        rows = [
            (r.resource_type, r.id, r.version, r.last_updated, r.method, r.deleted, r.content, r.org) for r in records
        ]
        returned = self.execute(
            "INSERT INTO resource_history (resource_type, id, version, last_updated, method, deleted, content, org) "
            f"{self._rows_source(rows, _HISTORY_TYPES)} "
            "ON CONFLICT (resource_type, id, version) DO NOTHING RETURNING resource_type, id, version, seq",
            self._rows_params(rows),
        ).fetchall()
        seq_of = {(t, i, n): seq for t, i, n, seq in returned}
        lost = next((r for r in records if (r.resource_type, r.id, r.version) not in seq_of), None)
        if lost is not None:
            raise VersionConflict(f"{lost.resource_type}/{lost.id} version {lost.version} already exists")
        self._point([replace(r, seq=seq_of[(r.resource_type, r.id, r.version)]) for r in records])

    def _copy_history(self, records: list[StoredVersion]) -> None:
        """Many versions at once on PostgreSQL: COPY, with ``seq`` values reserved first (COPY
        writes given identity values), so the pointers can name them.

        Why: the unnest() insert sends the JSON of each version as a bytea array element, which
        psycopg escapes in Python (~25 µs a resource); COPY sends it as it is. A version that
        already exists (a concurrent writer) is a unique violation, which aborts the transaction:
        the same outcome as the insert path's VersionConflict, which rolls back too."""
        seqs = sorted(row[0] for row in self.execute(_RESERVE_SEQ, (len(records),)).fetchall())
        try:
            with self.conn.cursor().copy(f"COPY resource_history ({_HISTORY_COLUMNS}) FROM STDIN") as copy:
                for seq, r in zip(seqs, records, strict=True):
                    row = (seq, r.resource_type, r.id, r.version, r.last_updated, r.deleted, r.content, r.method, r.org)
                    copy.write_row(row)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) == _UNIQUE_VIOLATION:
                detail = getattr(getattr(exc, "diag", None), "message_detail", None) or str(exc)
                raise VersionConflict(f"a version being written already exists: {detail}") from exc
            raise
        self._point([replace(r, seq=seq) for seq, r in zip(seqs, records, strict=True)])

    def _point(self, records: list[StoredVersion]) -> None:
        """Point ``resource`` at the last of ``records`` (whose history ``seq`` is known) per key.

        ``resource.org`` is the owner: the organization of the latest version that records one (a
        version written for none, e.g. a national correction, leaves it), hence the COALESCEs."""
        last = {(r.resource_type, r.id): r for r in records}
        owner = {(r.resource_type, r.id): r.org for r in records if r.org is not None}
        rows = [(*key, r.version, r.seq, r.last_updated, r.deleted, owner.get(key)) for key, r in last.items()]
        self.execute(
            f"WITH v(t, i, n, s, u, d, o) AS ({self._rows_source(rows, _POINTER_TYPES)}) "
            "INSERT INTO resource (resource_type, id, version, seq, last_updated, deleted, org) "
            "SELECT v.t, v.i, v.n, v.s, v.u, v.d, v.o FROM v "
            "WHERE true ON CONFLICT (resource_type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq, "
            "last_updated = excluded.last_updated, deleted = excluded.deleted, "
            "org = COALESCE(excluded.org, resource.org)",
            self._rows_params(rows),
        )

    def _pointers_of(self, keys: Sequence[tuple[str, str]]) -> str:
        """``(resource_type, id, version, deleted)`` of the current pointers of ``keys`` (see
        :meth:`_current_of` for SQLite's form)."""
        source = self._rows_source(keys, _KEY_TYPES)
        if self._pg:
            return f"SELECT resource_type, id, version, deleted FROM resource WHERE (resource_type, id) IN ({source})"
        return (
            f"SELECT r.resource_type, r.id, r.version, r.deleted FROM ({source}) AS k CROSS JOIN resource r "
            "ON r.resource_type = k.column1 AND r.id = k.column2"
        )

    def _read_current(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredVersion]:
        rows = self.execute(self._current_of(keys), self._rows_params(keys))
        return {(row[1], row[2]): _record(row) for row in rows}

    def _current_of(self, keys: Sequence[tuple[str, str]]) -> str:
        """The current versions of ``keys`` (their params: ``_rows_params(keys)``). SQLite plans a
        row-value ``IN (VALUES ...)`` of more than one row as a scan of the whole table (a million
        Patients: 120 ms for 50 keys), so there the keys drive a join through the primary key."""
        source = self._rows_source(keys, _KEY_TYPES)
        if self._pg:
            return f"{_CURRENT} WHERE (r.resource_type, r.id) IN ({source})"
        return (
            f"SELECT {_CURRENT_COLUMNS} FROM ({source}) AS k CROSS JOIN resource r ON r.resource_type = k.column1 "
            "AND r.id = k.column2 JOIN resource_history h ON h.seq = r.seq"
        )

    def _delete_index(self, keys: list[tuple[str, str]]) -> None:
        source = self._rows_source(keys, _KEY_TYPES)
        params = self._rows_params(keys)
        for kind in INDEX_COLUMNS:
            if self._pg:
                self.execute(f"DELETE FROM idx_{kind} WHERE (resource_type, resource_id) IN ({source})", params)
            else:  # as in _current_of: the keys drive the owner index (a scan of every index row otherwise)
                self.execute(
                    f"DELETE FROM idx_{kind} WHERE rowid IN (SELECT t.rowid FROM ({source}) AS k CROSS JOIN "
                    f"idx_{kind} t INDEXED BY idx_{kind}_owner ON t.resource_type = k.column1 AND "
                    "t.resource_id = k.column2)",
                    params,
                )

    def _rows_source(self, rows: Sequence[tuple[Any, ...]], types: tuple[str, ...]) -> str:
        """A row source for many rows: ``SELECT * FROM unnest(?::t[], ...)`` on PostgreSQL (one
        fixed statement, parsed once, whatever the row count), ``VALUES (?, ...), ...`` on SQLite."""
        if self._pg:
            return "SELECT * FROM unnest(" + ", ".join(f"?::{t}[]" for t in types) + ")"
        one = "(" + ", ".join("?" * len(types)) + ")"
        return "VALUES " + ", ".join(one for _ in rows)

    def _rows_params(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        if self._pg:
            return [list(column) for column in zip(*rows, strict=True)]
        return [v for row in rows for v in row]

    def _insert_index(self, finals: list[tuple[StoredVersion, IndexRows | None]]) -> None:
        for kind in INDEX_COLUMNS:
            rows = [
                (record.resource_type, record.id, *row)
                for record, index in finals
                if index is not None and not record.deleted
                for row in getattr(index, kind)
            ]
            if not rows:
                continue
            if self._pg:
                columns = ", ".join(("resource_type", "resource_id", *INDEX_COLUMNS[kind]))
                with self.conn.cursor().copy(f"COPY idx_{kind} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                self.executemany(_INSERT_INDEX[kind], rows)

    def query(self, query: SqlQuery) -> list[tuple[Any, ...]]:
        self.flush()  # a search must see this transaction's own writes
        rows: list[tuple[Any, ...]] = self.execute(query.sql, query.params).fetchall()
        return rows

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        *,
        since: float | None,
        at: tuple[float, float] | None,
        before_seq: int | None,
        limit: int,
    ) -> list[StoredVersion]:
        self.flush()
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("resource_type = ?", resource_type),
            ("id = ?", id),
            ("last_updated >= ?", since),
            ("seq < ?", before_seq),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if at is not None:
            # _at: versions that were current at some point during [low, high): written before
            # the period ends, and not replaced by a later version before it starts.
            where.append(
                "last_updated < ? AND NOT EXISTS (SELECT 1 FROM resource_history n WHERE "
                "n.resource_type = resource_history.resource_type AND n.id = resource_history.id "
                "AND n.version = resource_history.version + 1 AND n.last_updated <= ?)"
            )
            params.extend((at[1], at[0]))
        sql = f"SELECT {_HISTORY_COLUMNS} FROM resource_history"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        return [_record(row) for row in self.execute(sql, params).fetchall()]

    def lock(self, key: str) -> None:
        # SQLite already has a single writer; PostgreSQL takes a transaction-scoped advisory lock.
        if self._pg:
            self.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))

    # ---- reindexing ----------------------------------------------------------------------------
    def current_page(
        self, resource_types: Sequence[str] | None, after: tuple[str, str] | None, limit: int
    ) -> list[StoredVersion]:
        self.flush()
        where = ["r.deleted = ?"]
        params: list[Any] = [False]
        if resource_types is not None:
            if not resource_types:
                return []
            where.append(f"r.resource_type IN ({', '.join('?' * len(resource_types))})")
            params.extend(resource_types)
        if after is not None:
            where.append("(r.resource_type, r.id) > (?, ?)")
            params.extend(after)
        sql = f"{_CURRENT} WHERE {' AND '.join(where)} ORDER BY r.resource_type, r.id LIMIT ?"
        params.append(limit)
        return [_record(row) for row in self.execute(sql, params).fetchall()]

    def replace_indexes(self, entries: Sequence[tuple[StoredVersion, IndexRows]]) -> list[bool]:
        self.flush()
        keys = [(stored.resource_type, stored.id) for stored, _ in entries]
        found: dict[tuple[str, str], tuple[int, bool]] = {}
        for chunk in chunks(list(dict.fromkeys(keys)), 400):
            if self._pg:
                self._lock_rows(chunk)  # a concurrent write of one of them waits (or we see its version)
            rows = self.execute(self._pointers_of(chunk), self._rows_params(chunk)).fetchall()
            found |= {(t, i): (int(v), bool(d)) for t, i, v, d in rows}
        current = [found.get(key) == (stored.version, False) for key, (stored, _) in zip(keys, entries, strict=True)]
        kept = [(stored, index) for (stored, index), ok in zip(entries, current, strict=True) if ok]
        for chunk in chunks(kept, 400):
            self._delete_index([(stored.resource_type, stored.id) for stored, _ in chunk])
            self._insert_index([(stored, index) for stored, index in chunk])
        return current

    def latest_seq(self, resource_type: str) -> int:
        self.flush()
        row = self.execute("SELECT MAX(seq) FROM resource WHERE resource_type = ?", (resource_type,)).fetchone()
        return int(row[0] or 0)

    # ---- jobs ----------------------------------------------------------------------------------
    def add_job(self, kind: str, params: str, progress: str, now: float) -> JobRecord:
        row = self.execute(
            "INSERT INTO job (kind, params, state, progress, created, updated) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (kind, params, "queued", progress, now, now),
        ).fetchone()
        return JobRecord(int(row[0]), kind, params, "queued", progress, None, None, None, now, now)

    def job(self, id: int) -> JobRecord | None:
        row = self.execute(f"SELECT {_JOB_COLUMNS} FROM job WHERE id = ?", (id,)).fetchone()
        return _job(row) if row else None

    def jobs(self, kind: str, states: Sequence[str]) -> list[JobRecord]:
        if not states:
            return []
        rows = self.execute(
            f"SELECT {_JOB_COLUMNS} FROM job WHERE kind = ? AND state IN ({', '.join('?' * len(states))}) ORDER BY id",
            (kind, *states),
        ).fetchall()
        return [_job(row) for row in rows]

    def recent_jobs(self, before_id: int | None, limit: int) -> list[JobRecord]:
        where, args = ("WHERE id < ?", (before_id,)) if before_id is not None else ("", ())
        rows = self.execute(f"SELECT {_JOB_COLUMNS} FROM job {where} ORDER BY id DESC LIMIT ?", (*args, limit))
        return [_job(row) for row in rows.fetchall()]

    def job_counts(self) -> dict[str, int]:
        rows = self.execute("SELECT state, COUNT(*) FROM job GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}

    def claim_job(
        self, kinds: Sequence[str], worker: str, now: float, lease_until: float, *, job_id: int | None = None
    ) -> JobRecord | None:
        if not kinds:
            return None
        sql = (
            f"SELECT id FROM job WHERE kind IN ({', '.join('?' * len(kinds))}) "
            "AND (state = ? OR (state = ? AND (lease_until IS NULL OR lease_until < ?)))"
        )
        params: list[Any] = [*kinds, "queued", "running", now]
        if job_id is not None:
            sql += " AND id = ?"
            params.append(job_id)
        sql += " ORDER BY id LIMIT 1"
        if self._pg:
            sql += " FOR UPDATE SKIP LOCKED"  # SQLite: the write transaction is the single writer
        row = self.execute(sql, params).fetchone()
        if row is None:
            return None
        self.execute(
            "UPDATE job SET state = ?, worker = ?, lease_until = ?, updated = ? WHERE id = ?",
            ("running", worker, lease_until, now, row[0]),
        )
        return self.job(int(row[0]))

    def update_job(
        self,
        id: int,
        worker: str | None,
        *,
        state: str,
        progress: str,
        error: str | None,
        lease_until: float | None,
        now: float,
    ) -> bool:
        sql = "UPDATE job SET state = ?, progress = ?, error = ?, lease_until = ?, updated = ? WHERE id = ?"
        params: list[Any] = [state, progress, error, lease_until, now, id]
        if worker is not None:
            sql += " AND worker = ? AND state = ?"
            params.extend((worker, "running"))
        return bool(self.execute(sql, params).rowcount == 1)


_JOB_COLUMNS = "id, kind, params, state, progress, error, worker, lease_until, created, updated"


def _job(row: tuple[Any, ...]) -> JobRecord:
    id_, kind, params, state, progress, error, worker, lease, created, updated = row
    return JobRecord(int(id_), kind, params, state, progress, error, worker, lease, created, updated)


def _record(row: tuple[Any, ...]) -> StoredVersion:
    seq, rtype, id_, version, updated, deleted, content, method, org = row
    return StoredVersion(rtype, id_, version, updated, bool(deleted), _bytes(content), method, seq, org)


def _bytes(content: Any) -> bytes | None:
    if content is None or isinstance(content, bytes):
        return content
    return bytes(content)  # memoryview from psycopg
