"""The storage interface every backend implements, and the records it speaks in.

The FHIR rules (versioning, conditional logic, bundles) live in ``ketnoi.interactions``; a store
only persists versions and index rows atomically and runs compiled searches. A ``Session`` is one
database transaction: everything written through it commits together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ketnoi.search.index import IndexRows
from ketnoi.sql import SqlQuery


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version of one resource as stored. ``content`` is the JSON text (None when deleted)."""

    resource_type: str
    id: str
    version: int
    last_updated: float  # epoch seconds, UTC
    deleted: bool
    content: bytes | None
    method: str = "PUT"  # the interaction that produced it: POST, PUT, PATCH or DELETE
    seq: int = 0  # global, increasing order of writes (system history)


class VersionConflict(Exception):
    """Another writer created the same version first (a concurrent update)."""


class Session(Protocol):
    """One database transaction. Reads see the transaction's own writes."""

    def current(self, resource_type: str, id: str, *, for_update: bool = False) -> StoredVersion | None:
        """The latest version (possibly a deletion), or None if the id never existed."""

    def version(self, resource_type: str, id: str, version: int) -> StoredVersion | None: ...

    def write(self, record: StoredVersion, index: IndexRows | None) -> StoredVersion:
        """Append a version and replace the resource's index rows; returns it with ``seq`` set.

        Raises VersionConflict if that version already exists."""

    def query(self, query: SqlQuery) -> list[tuple[Any, ...]]:
        """Run a compiled (read-only) query; rows as tuples."""

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
        """Versions newest first (by ``seq``), optionally bounded; ``before_seq`` pages backwards."""

    def lock(self, key: str) -> None:
        """Serialise writers on a key until the transaction ends (conditional create/update races)."""


class Store(Protocol):
    """A database holding resources: opens sessions and manages its schema."""

    dialect: str  # "sqlite" or "postgresql"

    def session(self, *, write: bool) -> AbstractContextManager[Session]: ...

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""

    def schema_version(self) -> int: ...

    def close(self) -> None: ...


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
