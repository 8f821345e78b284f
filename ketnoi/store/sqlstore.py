"""The one SQL implementation of ``Session``, shared by the SQLite and PostgreSQL backends.

A backend hands it a DB-API connection already inside a transaction and a placeholder style; all
SQL is written once with ``?`` placeholders and rewritten for psycopg (``%s``). No SQL text here is
ever built from user input: only table/column names from ``schema`` are interpolated.
"""

from __future__ import annotations

from typing import Any

from ketnoi.search.index import IndexRows
from ketnoi.sql import SqlQuery
from ketnoi.store.base import StoredVersion, VersionConflict
from ketnoi.store.schema import INDEX_COLUMNS

_HISTORY_COLUMNS = "seq, resource_type, id, version, last_updated, deleted, content, method"


def _insert_sql(kind: str) -> str:
    cols = ("resource_type", "resource_id", *INDEX_COLUMNS[kind])
    return f"INSERT INTO idx_{kind} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


_INSERT_INDEX = {kind: _insert_sql(kind) for kind in INDEX_COLUMNS}
_DELETE_INDEX = {kind: f"DELETE FROM idx_{kind} WHERE resource_type = ? AND resource_id = ?" for kind in INDEX_COLUMNS}


class SqlSession:
    """A ``Session`` over one open DB-API connection (the backend owns begin/commit/rollback)."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self._pg = dialect == "postgresql"

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
        sql = (
            "SELECT h.seq, h.resource_type, h.id, h.version, h.last_updated, h.deleted, h.content, h.method "
            "FROM resource r JOIN resource_history h ON h.seq = r.seq "
            "WHERE r.resource_type = ? AND r.id = ?"
        )
        if for_update and self._pg:
            sql += " FOR UPDATE OF r"
        row = self.execute(sql, (resource_type, id)).fetchone()
        return _record(row) if row else None

    def version(self, resource_type: str, id: str, version: int) -> StoredVersion | None:
        row = self.execute(
            f"SELECT {_HISTORY_COLUMNS} FROM resource_history WHERE resource_type = ? AND id = ? AND version = ?",
            (resource_type, id, version),
        ).fetchone()
        return _record(row) if row else None

    def write(self, record: StoredVersion, index: IndexRows | None) -> StoredVersion:
        seq = self._append(record)
        self._point(record, seq)
        if record.version > 1:
            for kind in INDEX_COLUMNS:
                self.execute(_DELETE_INDEX[kind], (record.resource_type, record.id))
        if index is not None and not record.deleted:
            self._insert_index(record.resource_type, record.id, index)
        return StoredVersion(
            record.resource_type,
            record.id,
            record.version,
            record.last_updated,
            record.deleted,
            record.content,
            record.method,
            seq,
        )

    def _append(self, r: StoredVersion) -> int:
        # ON CONFLICT DO NOTHING instead of catching the unique violation: PostgreSQL would
        # otherwise abort the whole transaction (or need a savepoint round trip per write).
        row = self.execute(
            "INSERT INTO resource_history (resource_type, id, version, last_updated, method, deleted, content) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (resource_type, id, version) DO NOTHING RETURNING seq",
            (r.resource_type, r.id, r.version, r.last_updated, r.method, r.deleted, r.content),
        ).fetchone()
        if row is None:
            raise VersionConflict(f"{r.resource_type}/{r.id} version {r.version} already exists")
        seq: int = row[0]
        return seq

    def _point(self, r: StoredVersion, seq: int) -> None:
        self.execute(
            "INSERT INTO resource (resource_type, id, version, seq, last_updated, deleted) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (resource_type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq, "
            "last_updated = excluded.last_updated, deleted = excluded.deleted",
            (r.resource_type, r.id, r.version, seq, r.last_updated, r.deleted),
        )

    def _insert_index(self, resource_type: str, id: str, index: IndexRows) -> None:
        for kind in INDEX_COLUMNS:
            rows: list[tuple[Any, ...]] = getattr(index, kind)
            if rows:
                self.executemany(_INSERT_INDEX[kind], [(resource_type, id, *row) for row in rows])

    def query(self, query: SqlQuery) -> list[tuple[Any, ...]]:
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


def _record(row: tuple[Any, ...]) -> StoredVersion:
    seq, rtype, id_, version, updated, deleted, content, method = row
    return StoredVersion(rtype, id_, version, updated, bool(deleted), _bytes(content), method, seq)


def _bytes(content: Any) -> bytes | None:
    if content is None or isinstance(content, bytes):
        return content
    return bytes(content)  # memoryview from psycopg
