"""Bulk load (``ketnoi load``) of synthetic NDJSON against the raw limit of the same lines.

* ``ketnoi_load``: ``python -m ketnoi migrate`` then ``python -m ketnoi load --database URL DIR`` as
  a subprocess (what an operator runs); the rate is the one ``ketnoi load`` prints (resources per
  second of its own load loop, interpreter start-up and imports excluded).
* ``raw_limit``: the same NDJSON lines into a bare table, with bench/ingest.py's helpers:
  PostgreSQL ``COPY raw (id, content) FROM STDIN`` into ``(id text, content jsonb)``, one
  transaction; SQLite 500 rows per transaction into ``(id TEXT, content TEXT)`` with the server's
  ``journal_mode=WAL, synchronous=FULL``.
* ``profile_load``: ``ketnoi.bulk.load.load_paths`` in this process under cProfile: the top
  functions by cumulative time and own time grouped by area (bench/ingest.py's groups).

Run alone: ``.venv/bin/python bench/load.py --scale 500`` (same options as bench/run.py; only
the bulk-load rows of its table).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from ingest import _GROUPS, SQLITE_BATCH, raw_postgres, raw_sqlite

__all__ = ["SQLITE_BATCH", "LoadRun", "ketnoi_load", "profile_load", "raw_limit", "raw_rows", "schema_floor"]

_LOADED = re.compile(r"loaded ([\d,]+) resources \(([\d,]+) unchanged, ([\d,]+) failed\) in ([\d.]+) s")


@dataclass
class LoadRun:
    rate: float  # resources/s as `ketnoi load` reports it
    resources: int
    failed: int
    seconds: float  # its own timing
    wall: float  # the subprocess, start-up included


def ketnoi_load(url: str, folder: Path) -> LoadRun:
    """migrate (not timed), then ``ketnoi load`` in a subprocess."""
    subprocess.run(
        [common.PYTHON, "-m", "ketnoi", "migrate", "--database", url],
        cwd=common.ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [common.PYTHON, "-m", "ketnoi", "load", "--database", url, str(folder)],
        cwd=common.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    match = _LOADED.search(proc.stdout + proc.stderr)
    if not match:
        raise RuntimeError(f"ketnoi load exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    written, unchanged, failed = (int(match.group(i).replace(",", "")) for i in (1, 2, 3))
    seconds = float(match.group(4))
    return LoadRun((written + unchanged) / seconds, written + unchanged, failed, seconds, wall)


def raw_rows(folder: Path) -> list[tuple[str, str]]:
    """(Type/id, the NDJSON line as it is in the file) for every line of every file."""
    rows = []
    for path in common.ndjson_files(folder):
        with path.open("rb") as lines:
            for line in lines:
                if line.strip():
                    head = orjson.loads(line)
                    rows.append((f"{head['resourceType']}/{head['id']}", line.rstrip(b"\n").decode()))
    return rows


def raw_limit(backend: str, url: str, rows: list[tuple[str, str]]) -> float:
    """Rows/s of the bare bulk insert: PostgreSQL COPY, SQLite 500 rows per transaction."""
    if backend == "postgresql":
        return raw_postgres(url, rows, None)
    return raw_sqlite(url.removeprefix("sqlite:///"), rows, SQLITE_BATCH)


def schema_floor(backend: str, url: str, folder: Path, chunk: int = 20_000) -> float:
    """Resources/s of writing exactly the rows ``ketnoi load`` writes for these lines (a history
    row with the JSON, the current pointer, every search-index row) into a freshly migrated
    ketnoi database, with its indexes, with no Python work in between: what the database alone
    needs. Rows are made ``chunk`` resources at a time (parse + extraction, not timed), then
    written (timed). PostgreSQL: COPY per table, one transaction; SQLite: as many resources per
    transaction as ``ketnoi load`` puts in one (its BATCH_SIZE)."""
    from ketnoi.app import open_store

    store = open_store(url)
    store.migrate()
    store.close()
    lines = raw_rows(folder)
    writer = _PgFloorWriter(url) if backend == "postgresql" else _SqliteFloorWriter(url)
    seconds = 0.0
    for part in range(0, len(lines), chunk):
        history, index = _floor_rows(lines[part : part + chunk])
        start = time.perf_counter()
        writer.write(history, index)
        seconds += time.perf_counter() - start
    start = time.perf_counter()
    writer.close()
    seconds += time.perf_counter() - start
    return len(lines) / seconds


_HISTORY_COLUMNS = "resource_type, id, version, last_updated, method, deleted, content"
_POINT = (
    "INSERT INTO resource (resource_type, id, version, seq, last_updated, deleted) "
    "SELECT resource_type, id, version, seq, last_updated, deleted FROM resource_history WHERE seq > ?"
)


def _floor_rows(lines: list[tuple[str, str]]) -> tuple[list[tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]]:
    """History rows and index rows (by kind, grouped by resource, in line order) of these lines."""
    from ketnoi.search.extract import default_extractor
    from ketnoi.store.schema import INDEX_COLUMNS

    extractor, now = default_extractor(), time.time()
    history: list[tuple[Any, ...]] = []
    index: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in INDEX_COLUMNS}
    for _, line in lines:
        resource = orjson.loads(line)
        rtype, id_ = resource["resourceType"], resource["id"]
        history.append((rtype, id_, 1, now, "PUT", False, line.encode()))
        rows = extractor.extract(resource)
        for kind, out in index.items():
            out.extend((rtype, id_, *row) for row in getattr(rows, kind))
    return history, index


class _PgFloorWriter:
    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url)

    def write(self, history: list[tuple[Any, ...]], index: dict[str, list[tuple[Any, ...]]]) -> None:
        from ketnoi.store.schema import INDEX_COLUMNS

        last = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM resource_history").fetchone()[0]  # type: ignore[index]
        with self.conn.cursor().copy(f"COPY resource_history ({_HISTORY_COLUMNS}) FROM STDIN") as copy:
            for row in history:
                copy.write_row(row)
        self.conn.execute(_POINT.replace("?", "%s"), (last,))
        for kind, rows in index.items():
            columns = ", ".join(("resource_type", "resource_id", *INDEX_COLUMNS[kind]))
            with self.conn.cursor().copy(f"COPY idx_{kind} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()


class _SqliteFloorWriter:
    def __init__(self, url: str) -> None:
        import sqlite3

        self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA cache_size=-65536"):
            self.conn.execute(pragma)

    def write(self, history: list[tuple[Any, ...]], index: dict[str, list[tuple[Any, ...]]]) -> None:
        from ketnoi.bulk.load import BATCH_SIZE

        by_owner = {kind: _group(rows) for kind, rows in index.items()}
        for part in range(0, len(history), BATCH_SIZE):
            chunk = history[part : part + BATCH_SIZE]
            self.conn.execute("BEGIN")
            last = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM resource_history").fetchone()[0]
            insert = f"INSERT INTO resource_history ({_HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            self.conn.executemany(insert, chunk)
            self.conn.execute(_POINT, (last,))
            for kind, groups in by_owner.items():
                rows = [row for r in chunk for row in groups.get((r[0], r[1]), ())]
                if rows:
                    marks = ", ".join("?" * len(rows[0]))
                    self.conn.executemany(f"INSERT INTO idx_{kind} VALUES ({marks})", rows)
            self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def _group(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    out: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        out.setdefault((row[0], row[1]), []).append(row)
    return out


def profile_load(backend: str, url: str, folder: Path, top: int = 10) -> dict[str, Any]:
    """``load_paths`` in-process under cProfile: rate, top functions by cumulative time, areas."""
    import cProfile
    import pstats

    from ketnoi.app import build_services, close_services, open_store
    from ketnoi.bulk.load import load_paths
    from ketnoi.config import Settings

    store = open_store(url)
    store.migrate()
    services = build_services(Settings(database=url), store)
    profiler = cProfile.Profile()
    profiler.enable()
    report = load_paths(services, [folder])
    profiler.disable()
    close_services(services)
    stats = pstats.Stats(profiler)
    raw_stats: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = max(report.seconds, 1e-9)
    functions = []
    for (file, line, fn), (_cc, ncalls, tottime, cumtime, _callers) in raw_stats.items():
        functions.append({"function": _short(file, line, fn), "ncalls": ncalls, "tottime": tottime, "cumtime": cumtime})
    # The load loop's own frames sit at the top of every cumulative list: show what is under them.
    functions.sort(key=lambda f: -f["cumtime"])
    areas: dict[str, float] = {}
    for (file, _line, fn), (_cc, _nc, tottime, _ct, _callers) in raw_stats.items():
        group = next((label for label, test in _GROUPS if test(file, fn)), "other (stdlib, uuid, ...)")
        areas[group] = areas.get(group, 0.0) + tottime
    grand = sum(areas.values()) or 1.0
    return {
        "backend": backend,
        "resources": report.written + report.unchanged,
        "seconds_under_profiler": report.seconds,
        "rate_under_profiler": (report.written + report.unchanged) / total,
        "top_cumulative": functions[:top],
        "top_own": sorted(functions, key=lambda f: -f["tottime"])[:top],
        "areas": {k: v / grand for k, v in sorted(areas.items(), key=lambda kv: -kv[1])},
    }


def _short(file: str, line: int, fn: str) -> str:
    if file == "~":
        return fn
    for marker in ("/ketnoi/", "/site-packages/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1] if marker != "/ketnoi/" else "ketnoi/" + file.split(marker, 1)[1]
            break
    return f"{file}:{line}({fn})"


def format_profile(profile: dict[str, Any]) -> str:
    lines = [
        f"[{profile['backend']}] cProfile of load_paths in-process: {profile['resources']:,} resources in "
        f"{profile['seconds_under_profiler']:.1f} s ({profile['rate_under_profiler']:,.0f}/s under the profiler)",
        f"  top {len(profile['top_cumulative'])} by cumulative time:",
        "     cumtime   tottime     ncalls  function",
    ]
    for f in profile["top_cumulative"]:
        lines.append(f"  {f['cumtime']:9.2f} {f['tottime']:9.2f} {f['ncalls']:10,}  {f['function']}")
    lines.append(f"  top {len(profile['top_own'])} by own time:")
    for f in profile["top_own"]:
        lines.append(f"  {f['cumtime']:9.2f} {f['tottime']:9.2f} {f['ncalls']:10,}  {f['function']}")
    lines.append("  own time by area:")
    for label, share in profile["areas"].items():
        lines.append(f"    {share:6.1%}  {label}")
    return "\n".join(lines)


if __name__ == "__main__":
    import run

    sys.exit(run.main(["--only", "load", *sys.argv[1:]]))
