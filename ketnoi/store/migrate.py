"""Applying the numbered migrations of ``schema`` to a connection, recording each one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ketnoi.store.schema import migrations

_TRACKING = (
    "CREATE TABLE IF NOT EXISTS ketnoi_schema "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
)


def current_version(execute: Callable[[str, tuple[Any, ...]], Any]) -> int:
    execute(_TRACKING, ())
    row = execute("SELECT MAX(version) FROM ketnoi_schema", ()).fetchone()
    return int(row[0] or 0)


def apply(execute: Callable[[str, tuple[Any, ...]], Any], dialect: str) -> list[str]:
    """Apply, in order, every migration not yet recorded (caller owns the transaction).

    Recorded versions are compared one by one, not against the highest: a migration merged later
    with a lower number than one already applied is still applied."""
    current_version(execute)  # creates the tracking table if needed
    done = {int(row[0]) for row in execute("SELECT version FROM ketnoi_schema", ()).fetchall()}
    applied: list[str] = []
    for migration in migrations(dialect):
        if migration.version in done:
            continue
        for statement in migration.statements:
            execute(statement, ())
        execute(
            "INSERT INTO ketnoi_schema (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, time.time()),
        )
        applied.append(f"{migration.version:04d} {migration.name}")
    return applied
