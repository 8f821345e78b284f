"""SQLite backend: one file, WAL, ``synchronous=FULL``, a single writer.

Writes are serialised by one lock around one writer connection (``BEGIN IMMEDIATE``), the
Datasette pattern: SQLite allows one writer anyway, and queuing in-process avoids SQLITE_BUSY
retries. Readers use a connection per thread and see a consistent snapshot per session (WAL).
See docs/adr/0004-sqlite-writes.md.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ketnoi.store import migrate
from ketnoi.store.auditlog import AuditEntry
from ketnoi.store.sqlstore import SqlSession

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",  # an acknowledged write survives power loss, not only a crash
    "PRAGMA busy_timeout=30000",
    "PRAGMA cache_size=-65536",
    "PRAGMA temp_store=MEMORY",
)


def path_from_url(url: str) -> str:
    """``sqlite:///var/k.db`` → ``var/k.db``; ``sqlite:////abs/k.db`` → ``/abs/k.db``."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not an SQLite URL (sqlite:///path.db): {url}")
    return url[len("sqlite:///") :]


class SqliteStore:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.location = path  # where the data lives (Store.location)
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        return cls(path_from_url(url))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in _PRAGMAS:
            conn.execute(pragma)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def session(self, *, write: bool, durable: bool = True) -> Iterator[SqlSession]:
        if write and not durable:
            with self._write_lock:
                # WAL + NORMAL: the commit reaches the WAL file (a crash of this process keeps it)
                # but is fsynced only with the next FULL commit or checkpoint. The level can only
                # change between transactions, so it is set around this one.
                self._writer.execute("PRAGMA synchronous=NORMAL")
                try:
                    yield from self._transaction(self._writer, "BEGIN IMMEDIATE")
                finally:
                    self._writer.execute("PRAGMA synchronous=FULL")
        elif write:
            with self._write_lock:
                yield from self._transaction(self._writer, "BEGIN IMMEDIATE")
        else:
            reader = self._reader()
            if reader.in_transaction:
                # A read inside a read of the same thread (validation looking up a profile while
                # $validate reads): it shares that transaction, which its owner ends.
                yield SqlSession(reader, self.dialect)
                return
            yield from self._transaction(reader, "BEGIN")

    def audit_append_alone(
        self, entries: Sequence[AuditEntry], *, durable: bool, mark: tuple[str, int] | None = None
    ) -> list[int]:
        with self.session(write=True, durable=durable) as session:
            return session.audit_append(entries, mark=mark)

    def _transaction(self, conn: sqlite3.Connection, begin: str) -> Iterator[SqlSession]:
        conn.execute(begin)
        try:
            session = SqlSession(conn, self.dialect)
            yield session
            session.flush()  # buffered writes, before the commit makes them durable
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _execute(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._writer.execute(sql, params)

    def migrate(self) -> list[str]:
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                applied = migrate.apply(self._execute, self.dialect)
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")
        return applied

    def schema_version(self) -> int:
        with self._write_lock:
            return migrate.current_version(self._execute)

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()
