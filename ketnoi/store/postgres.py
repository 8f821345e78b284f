"""PostgreSQL backend: psycopg 3 with a connection pool.

Each session is one transaction on a pooled connection. Concurrent updates of one resource are
serialised by ``SELECT ... FOR UPDATE`` on its ``resource`` row; racing creates of the same
version are caught by the history table's unique key (see ``SqlSession._append``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from psycopg_pool import ConnectionPool

from ketnoi.store import migrate
from ketnoi.store.auditlog import AuditEntry
from ketnoi.store.sqlstore import SqlSession


class PostgresStore:
    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self.location = "postgresql://" + url.split("@", 1)[-1]  # Store.location: no credentials
        # psycopg prepares a statement server-side after a few runs, and PostgreSQL may then switch
        # to a generic plan made without the parameter values: for searches that turned a 2 ms
        # query into 3 s at a million resources. Custom plans always (the planning cost is small).
        options = "-c plan_cache_mode=force_custom_plan"
        self.pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, open=True, kwargs={"autocommit": False, "options": options}
        )
        self.pool.wait(timeout=30)

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        return cls(url)

    @contextmanager
    def session(self, *, write: bool, durable: bool = True) -> Iterator[SqlSession]:
        del write  # every session is a transaction; PostgreSQL needs no writer queue
        with self.pool.connection() as conn:
            # pool.connection() commits on normal exit and rolls back on an exception.
            if not durable:
                # The commit returns before its WAL is flushed (the WAL writer does it within
                # about 3 x wal_writer_delay); other transactions keep synchronous_commit.
                conn.execute("SET LOCAL synchronous_commit TO off")
            session = SqlSession(conn, self.dialect)
            yield session
            session.flush()  # buffered writes go out before the commit

    def audit_append_alone(
        self, entries: Sequence[AuditEntry], *, durable: bool, mark: tuple[str, int] | None = None
    ) -> list[int]:
        """One round trip: the append statement (with the journal's mark) in autocommit, its own
        transaction. A session would cost five (BEGIN, SET LOCAL, the append, the mark, COMMIT), and a
        read waits for this one, or the journal's thread takes the GIL for them (ADR 0018)."""
        with self.pool.connection() as conn:
            conn.autocommit = True
            try:
                return SqlSession(conn, self.dialect).audit_append(entries, asynchronous=not durable, mark=mark)
            finally:
                conn.autocommit = False

    def _run(self, fn: Any) -> Any:
        with self.pool.connection() as conn:

            def execute(sql: str, params: tuple[Any, ...]) -> Any:
                return conn.execute(sql.replace("?", "%s"), params)

            return fn(execute)

    def migrate(self) -> list[str]:
        def run(execute: Any) -> list[str]:
            # One migrator at a time across processes (several nodes starting together).
            execute("SELECT pg_advisory_xact_lock(4242)", ())
            return migrate.apply(execute, self.dialect)

        result: list[str] = self._run(run)
        return result

    def schema_version(self) -> int:
        version: int = self._run(migrate.current_version)
        return version

    def close(self) -> None:
        self.pool.close()
