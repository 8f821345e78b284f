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

__all__ = ["SQLITE_BATCH", "LoadRun", "ketnoi_load", "profile_load", "raw_limit", "raw_rows"]

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


def profile_load(backend: str, url: str, folder: Path, top: int = 10) -> dict[str, Any]:
    """``load_paths`` in-process under cProfile: rate, top functions by cumulative time, areas."""
    import cProfile
    import pstats

    from ketnoi.app import build_services, open_store
    from ketnoi.bulk.load import load_paths
    from ketnoi.config import Settings

    store = open_store(url)
    store.migrate()
    services = build_services(Settings(database=url), store)
    profiler = cProfile.Profile()
    profiler.enable()
    report = load_paths(services, [folder])
    profiler.disable()
    store.close()
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
