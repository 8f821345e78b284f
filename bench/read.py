"""Read-by-id latency over HTTP, beside the HTTP floor and a bare indexed SQL lookup.

Per backend, on the database bench/run.py loaded, one client, sequential requests:

* ``GET /fhir/{Type}/{id}`` of ids drawn at random (uniformly, fixed seed) from every loaded line;
* ``GET /healthz`` of the same server process over the same keep-alive connection: the HTTP floor;
* ``SELECT content FROM bare WHERE id = ?`` through the same driver (sqlite3 / psycopg), on a bare
  ``(id, content)`` table of the same lines with an index on ``id``, in the same database file or
  cluster (created after the load, dropped before the search benchmark): the storage floor.

Each series is run ``runs`` times (interleaved); bench/run.py reports the median of each
percentile over the runs. Run alone: ``.venv/bin/python bench/read.py --scale 500``.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common


def read_ok(response: httpx.Response, key: str) -> bool:
    """A 200 with the resource asked for (``key``: ``Type/id``)."""
    return response.status_code == 200 and f'"id":"{key.split("/", 1)[1]}"' in response.text.replace(" ", "")


def http_reads(
    base: str, keys: list[str], n: int, rng: random.Random, headers: dict[str, str] | None = None
) -> tuple[list[float], int]:
    """n sequential ``GET /fhir/Type/id``; (latencies in s, failures: not 200 or the wrong resource).
    ``headers``: sent with every request (bench/auth.py: ``Authorization: Bearer ...``)."""
    samples, failures = [], 0
    picks = [keys[rng.randrange(len(keys))] for _ in range(n)]
    with common.client(base) as http:
        http.headers.update(headers or {})
        for key in picks[:20]:  # warm-up
            http.get(f"/{key}")
        for key in picks:
            start = time.perf_counter()
            r = http.get(f"/{key}")
            samples.append(time.perf_counter() - start)
            failures += not read_ok(r, key)
    return samples, failures


def healthz(base: str, n: int) -> list[float]:
    root = base.removesuffix("/fhir")
    samples = []
    with common.client(root) as http:
        for _ in range(20):
            http.get("/healthz")
        for _ in range(n):
            start = time.perf_counter()
            http.get("/healthz")
            samples.append(time.perf_counter() - start)
    return samples


def create_bare(backend: str, url: str, rows: list[tuple[str, str]]) -> None:
    """The bare table for lookups, in the loaded database: same lines, an index on id (not timed)."""
    if backend == "postgresql":
        import psycopg

        with psycopg.connect(url) as conn:
            conn.execute("DROP TABLE IF EXISTS bare")
            conn.execute("CREATE TABLE bare (id text, content jsonb)")
            with conn.cursor() as cur, cur.copy("COPY bare (id, content) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.execute("CREATE INDEX bare_id ON bare (id)")
            conn.execute("ANALYZE bare")
    else:
        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        lite.execute("DROP TABLE IF EXISTS bare")
        lite.execute("CREATE TABLE bare (id TEXT, content TEXT)")
        lite.execute("BEGIN")
        lite.executemany("INSERT INTO bare (id, content) VALUES (?, ?)", rows)
        lite.execute("COMMIT")
        lite.execute("CREATE INDEX bare_id ON bare (id)")
        lite.execute("ANALYZE bare")
        lite.close()


def drop_bare(backend: str, url: str) -> None:
    if backend == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bare")
    else:
        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        lite.execute("DROP TABLE IF EXISTS bare")
        lite.close()


def bare_lookups(backend: str, url: str, keys: list[str], n: int, rng: random.Random) -> tuple[list[float], int]:
    """n ``SELECT content FROM bare WHERE id = ?`` (autocommit, one connection); (latencies, misses)."""
    picks = [keys[rng.randrange(len(keys))] for _ in range(n)]
    samples, misses = [], 0
    conn: Any
    if backend == "postgresql":
        import psycopg
        from psycopg.types.json import set_json_loads

        conn = psycopg.connect(url, autocommit=True)
        set_json_loads(lambda data: data, conn)  # hand back the text, as ketnoi does: no JSON parse
        sql = "SELECT content FROM bare WHERE id = %s"
    else:
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
        sql = "SELECT content FROM bare WHERE id = ?"
    try:
        for key in picks[:20]:
            conn.execute(sql, (key,)).fetchone()
        for key in picks:
            start = time.perf_counter()
            row = conn.execute(sql, (key,)).fetchone()
            samples.append(time.perf_counter() - start)
            misses += row is None
    finally:
        conn.close()
    return samples, misses


if __name__ == "__main__":
    import run

    sys.exit(run.main(["--only", "read", *sys.argv[1:]]))
