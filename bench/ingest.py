"""Ingest throughput of a ketnoi server over HTTP, on SQLite and PostgreSQL, against the raw limit.

Measures, per backend, each series in a fresh database and a fresh server process:

1. sequential single creates: POST one Synthea Patient or Observation at a time over one
   keep-alive connection (median of --runs runs of -n creates, after a short warm-up);
2. Synthea patient Bundles split into 100-entry transaction Bundles (entries turned into PUT at
   the urn:uuid's id, references rewritten to ``Type/id``; see bench/README.md), with 1 client
   and with 4 concurrent clients (median of --runs full loads, each in a fresh database);
3. the raw limit of the same resources' JSON into a bare table: PostgreSQL ``COPY`` and SQLite
   inserts of 500 rows per transaction (same WAL/synchronous=FULL settings as the server), plus
   one row per transaction, the commit-latency bound that sequential creates face.

Usage: .venv/bin/python bench/ingest.py [--quick] [-n 1000] [--runs 3] [--backends sqlite,postgresql]
(bench/run.py runs the same measurements as its ``ingest`` step, through ``load_dataset`` and
``run_backend``, and puts them in its one table.)
PostgreSQL: KETNOI_BENCH_POSTGRES_URL (an admin URL that may CREATE DATABASE) or
scripts/pg-test-setup.sh is used; each run creates and drops its own database.
"""

from __future__ import annotations

import argparse
import gzip
import json
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

DATA = common.ROOT / "bench/data/synthea"
SHARED = common.ROOT.parent / "shared/synthea"
REFERENCE_FILES = ("hospitalInformation*.json", "practitionerInformation*.json")
CHUNK = 100
SQLITE_BATCH = 500

Resource = dict[str, Any]


# ---------------------------------------------------------------- Synthea data


class MissingData(Exception):
    """The Synthea files are not there (bench/ingest.py stops; bench/run.py skips its ingest step)."""


def _data_dir() -> Path:
    for root in (DATA, SHARED):
        if (root / "dev").is_dir():
            return root
    raise MissingData(
        f"no Synthea data: expected {DATA}/dev/*.json.gz (in the repository) "
        f"or {SHARED}/dev/*.json (the shared data checkout)"
    )


def _read(path: Path) -> Any:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return orjson.loads(raw)


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted([*root.glob(pattern), *root.glob(pattern + ".gz")])


def _rewrite(value: Any, mapping: dict[str, str]) -> Any:
    """Replace every ``reference`` that is a mapped ``urn:uuid:`` fullUrl by its ``Type/id``."""
    if isinstance(value, dict):
        return {
            k: (mapping.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, mapping))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, mapping) for v in value]
    return value


@dataclass
class Dataset:
    reference: list[list[Resource]]  # Organizations, Practitioners: load first
    patients: list[list[Resource]]  # one list per Synthea patient Bundle, references rewritten
    source: Path

    @property
    def resource_count(self) -> int:
        return sum(len(b) for b in self.patients)


def load_dataset(limit_bundles: int | None = None) -> Dataset:
    root = _data_dir()
    bundles = [_read(p) for p in _files(root / "dev", "*.json")]
    if limit_bundles:
        bundles = bundles[:limit_bundles]
    reference = [_read(p) for pattern in REFERENCE_FILES for p in _files(root, pattern)]
    if not reference:
        raise MissingData(f"{root} has no hospitalInformation*/practitionerInformation* files")
    mapping: dict[str, str] = {}
    for bundle in [*reference, *bundles]:
        for entry in bundle["entry"]:
            full_url, rtype = entry["fullUrl"], entry["resource"]["resourceType"]
            if not full_url.startswith("urn:uuid:"):
                raise ValueError(f"unexpected fullUrl {full_url}")
            mapping[full_url] = f"{rtype}/{full_url.removeprefix('urn:uuid:')}"

    def convert(bundle: dict[str, Any]) -> list[Resource]:
        out = []
        for entry in bundle["entry"]:
            resource = _rewrite(entry["resource"], mapping)
            resource["id"] = entry["fullUrl"].removeprefix("urn:uuid:")  # a valid FHIR id (36 chars)
            out.append(resource)
        return out

    return Dataset([convert(b) for b in reference], [convert(b) for b in bundles], root)


def transaction(resources: list[Resource]) -> bytes:
    """A transaction Bundle that PUTs each resource at its own id."""
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": f"urn:uuid:{r['id']}",
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in resources
            ],
        }
    )


def chunks(resources: list[Resource], size: int = CHUNK) -> Iterator[list[Resource]]:
    for start in range(0, len(resources), size):
        yield resources[start : start + size]


def single_create_bodies(data: Dataset, n: int) -> list[tuple[str, bytes]]:
    """n POST bodies: every tenth a Patient, the rest Observations, round-robin over the patients."""
    patients = [r for b in data.patients for r in b if r["resourceType"] == "Patient"]
    observations = [r for b in data.patients for r in b if r["resourceType"] == "Observation"]
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        pool = patients if i % 10 == 0 else observations
        resource = {k: v for k, v in pool[(i // 10 if i % 10 == 0 else i) % len(pool)].items() if k != "id"}
        out.append((resource["resourceType"], orjson.dumps(resource)))
    return out


# ---------------------------------------------------------------- errors the server answered


@dataclass
class Failures:
    count: int = 0
    resources: int = 0
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, status: int, body: bytes, resources: int) -> None:
        try:
            outcome = orjson.loads(body)
            text = "; ".join(
                f"{i.get('severity')}/{i.get('code')}: {i.get('diagnostics', '')}" for i in outcome.get("issue", [])
            )
        except (orjson.JSONDecodeError, AttributeError):
            text = body[:300].decode(errors="replace")
        with self.lock:
            self.count += 1
            self.resources += resources
            if len(self.examples) < 8:
                self.examples.append(f"{what} -> {status}: {text[:600]}")


# ---------------------------------------------------------------- the HTTP measurements


def sequential_creates(base: str, bodies: list[tuple[str, bytes]], runs: int, failures: Failures) -> list[float]:
    rates = []
    with common.client(base) as http:
        for rtype, body in bodies[:50]:  # warm-up: imports, caches, connection
            http.post(f"/{rtype}", content=body)
        for _ in range(runs):
            ok = 0
            start = time.perf_counter()
            for rtype, body in bodies:
                r = http.post(f"/{rtype}", content=body)
                if r.status_code == 201:
                    ok += 1
                else:
                    what = f"POST /fhir/{rtype} {body[:120].decode(errors='replace')}..."
                    failures.add(what, r.status_code, r.content, 1)
            rates.append(ok / (time.perf_counter() - start))
    return rates


def _post_transaction(http: Any, resources: list[Resource], failures: Failures) -> int:
    r = http.post("", content=transaction(resources))
    if r.status_code == 200:
        return len(resources)
    first = resources[0]
    failures.add(
        f"POST /fhir transaction of {len(resources)} PUT entries (first {first['resourceType']}/{first['id']})",
        r.status_code,
        r.content,
        len(resources),
    )
    return 0


def load_reference(base: str, data: Dataset, failures: Failures) -> None:
    with common.client(base) as http:
        for bundle in data.reference:
            for part in chunks(bundle):
                _post_transaction(http, part, failures)


def bundle_load(base: str, data: Dataset, clients: int, failures: Failures) -> tuple[float, int]:
    """All patient Bundles as 100-entry transactions from `clients` threads; (resources/s, stored)."""
    work: queue.SimpleQueue[list[Resource] | None] = queue.SimpleQueue()
    for bundle in data.patients:
        for part in chunks(bundle):
            work.put(part)
    for _ in range(clients):
        work.put(None)
    stored = [0] * clients
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            with common.client(base) as http:
                while (part := work.get()) is not None:
                    stored[index] += _post_transaction(http, part, failures)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(stored) / elapsed, sum(stored)


def count(base: str, rtype: str) -> int | None:
    try:
        r = common.client(base).get(f"/{rtype}", params={"_summary": "count"})
        return int(r.json().get("total")) if r.status_code == 200 else None
    except Exception:  # a sanity check only
        return None


# ---------------------------------------------------------------- the raw limit


def raw_rows(data: Dataset) -> list[tuple[str, str]]:
    return [(f"{r['resourceType']}/{r['id']}", orjson.dumps(r).decode()) for b in data.patients for r in b]


def raw_postgres(url: str, rows: list[tuple[str, str]], per_commit: int | None) -> float:
    """COPY of all rows in one transaction (per_commit None) or INSERT, commit every per_commit rows."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS raw")
        conn.execute("CREATE TABLE raw (id text, content jsonb)")
        conn.commit()
        start = time.perf_counter()
        if per_commit is None:
            with conn.cursor() as cur, cur.copy("COPY raw (id, content) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
        else:
            with conn.cursor() as cur:
                for part in range(0, len(rows), per_commit):
                    cur.executemany("INSERT INTO raw (id, content) VALUES (%s, %s)", rows[part : part + per_commit])
                    conn.commit()
        return len(rows) / (time.perf_counter() - start)


def raw_sqlite(path: str, rows: list[tuple[str, str]], per_commit: int) -> float:
    """Inserts into a bare table, per_commit rows per transaction, with the server's durability pragmas."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA cache_size=-65536"):
        conn.execute(pragma)
    conn.execute("DROP TABLE IF EXISTS raw")
    conn.execute("CREATE TABLE raw (id TEXT, content TEXT)")  # SQLite has no jsonb type
    start = time.perf_counter()
    for part in range(0, len(rows), per_commit):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO raw (id, content) VALUES (?, ?)", rows[part : part + per_commit])
        conn.execute("COMMIT")
    rate = len(rows) / (time.perf_counter() - start)
    conn.close()
    return rate


# ---------------------------------------------------------------- in-process profile

_GROUPS: tuple[tuple[str, Callable[[str, str], bool]], ...] = (  # (label, test(file, function)): first wins
    (
        "database driver (sqlite3 / psycopg, incl. waiting on PostgreSQL)",
        lambda f, fn: "psycopg" in f or "sqlite3" in fn or "psycopg" in fn or "select" in fn or "poll" in fn,
    ),
    ("validation (ketnoi.validation)", lambda f, fn: "ketnoi/validation" in f),
    (
        "search-index extraction (ketnoi.search, fhirpathpy, antlr4)",
        lambda f, fn: "ketnoi/search" in f or "fhirpathpy" in f or "antlr4" in f,
    ),
    ("JSON (orjson, json)", lambda f, fn: "orjson" in fn or "/json/" in f),
    ("bundle processing, repository, store glue (other ketnoi)", lambda f, fn: "ketnoi/" in f),
)


def profile_in_process(backend: str, data: Dataset, admin: str | None) -> None:
    """The Bundle load without HTTP: rate, then a cProfile breakdown of own time by area."""
    import cProfile
    import pstats

    from ketnoi.app import build_services, close_services, open_store
    from ketnoi.config import Settings
    from ketnoi.interactions.request import FhirRequest
    from ketnoi.interactions.router import handle

    def load(services: Any, bundles: list[list[Resource]]) -> int:
        stored = 0
        for bundle in bundles:
            for part in chunks(bundle):
                request = FhirRequest(
                    "POST",
                    "",
                    [],
                    {"content-type": "application/fhir+json"},
                    orjson.loads(transaction(part)),
                    "http://127.0.0.1/fhir",
                )
                response = handle(services, request)
                if response.status != 200:
                    print(f"  {response.status}: {orjson.dumps(response.resource)[:300]!r}")
                else:
                    stored += len(part)
                    orjson.dumps(response.resource)  # the HTTP edge serialises the answer too
        return stored

    for profiled in (False, True):
        with common.database(backend, admin) as url:
            store = open_store(url)
            store.migrate()
            services = build_services(Settings(database=url), store)
            load(services, data.reference)
            profiler = cProfile.Profile()
            start = time.perf_counter()
            if profiled:
                profiler.enable()
            stored = load(services, data.patients)
            profiler.disable()
            elapsed = time.perf_counter() - start
            close_services(services)
        label = "under cProfile" if profiled else "in-process, 1 thread, no HTTP"
        print(f"[{backend}] {label}: {stored / elapsed:,.0f} resources/s ({stored} in {elapsed:.1f} s)")
    stats = pstats.Stats(profiler)
    raw_stats: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    for (file, _line, fn), (_cc, _nc, tottime, _ct, _callers) in raw_stats.items():
        group = next((label for label, test in _GROUPS if test(file, fn)), "other (stdlib, uuid, ...)")
        totals[group] = totals.get(group, 0.0) + tottime
    grand = sum(totals.values())
    print(f"[{backend}] own time by area (cProfile, {grand:.1f} s):")
    for group, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / grand:6.1%}  {group}")
    print(f"[{backend}] top functions by own time:")
    stats.sort_stats("tottime").print_stats(15)


# ---------------------------------------------------------------- the driver


@dataclass
class Result:
    rates: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    failed: dict[tuple[str, str], int] = field(default_factory=dict)  # failed requests per series
    notes: list[str] = field(default_factory=list)

    def count_failed(self, op: str, backend: str, failures: Failures, before: int) -> None:
        key = (op, backend)
        self.failed[key] = self.failed.get(key, 0) + failures.count - before

    def add(self, op: str, backend: str, rate: float) -> None:
        self.rates.setdefault((op, backend), []).append(rate)

    def median(self, op: str, backend: str) -> float | None:
        values = self.rates.get((op, backend))
        return common.median(values) if values else None

    def of(self, backend: str) -> dict[str, list[float]]:
        """Every run of one backend, by operation (what bench/run.py keeps)."""
        return {op: values for (op, b), values in self.rates.items() if b == backend}


OPS_SEQ = "sequential single creates, 1 client"
OPS_TX = "100-entry transaction Bundles, {} client{}"
OPS_RAW = "raw limit: bulk ({})"
OPS_RAW1 = "raw: 1 row per transaction"


def tx_op(clients: int) -> str:
    return OPS_TX.format(clients, "" if clients == 1 else "s")


def raw_op(backend: str) -> str:
    return OPS_RAW.format("COPY" if backend == "postgresql" else f"{SQLITE_BATCH} rows/transaction")


def run_backend(
    backend: str,
    data: Dataset,
    admin: str | None,
    result: Result,
    failures: Failures,
    *,
    n: int,
    runs: int,
    clients: Sequence[int],
) -> None:
    """Every ingest series of one backend into `result`: sequential creates (`runs` x `n`), the
    transaction-Bundle load with each number of `clients` (`runs` full loads), and the raw limits
    (bulk and one row per transaction, `runs` times). Used by bench/run.py's ``ingest`` step too."""
    bodies = single_create_bodies(data, n)
    print(f"[{backend}] sequential creates: {runs} x {n}", flush=True)
    before = failures.count
    with common.database(backend, admin) as url, common.server(url) as srv:
        for rate in sequential_creates(srv.base, bodies, runs, failures):
            result.add(OPS_SEQ, backend, rate)
            print(f"  {rate:,.1f} creates/s", flush=True)
    result.count_failed(OPS_SEQ, backend, failures, before)
    for count_clients in clients:
        op = tx_op(count_clients)
        print(
            f"[{backend}] transaction Bundles, {count_clients} client(s): {runs} full loads "
            f"of {data.resource_count} resources",
            flush=True,
        )
        before = failures.count
        for _ in range(runs):
            with common.database(backend, admin) as url, common.server(url) as srv:
                load_reference(srv.base, data, failures)
                rate, stored = bundle_load(srv.base, data, count_clients, failures)
                result.add(op, backend, rate)
                patients, observations = count(srv.base, "Patient"), count(srv.base, "Observation")
                print(
                    f"  {rate:,.1f} resources/s ({stored} stored; the server counts {patients} Patients, "
                    f"{observations} Observations)",
                    flush=True,
                )
        result.count_failed(op, backend, failures, before)
    rows = raw_rows(data)
    print(f"[{backend}] raw limit: {len(rows)} rows", flush=True)
    single = rows[:n]
    with common.database(backend, admin) as url:
        for _ in range(runs):
            if backend == "postgresql":
                rate, rate1 = raw_postgres(url, rows, None), raw_postgres(url, single, 1)
            else:
                path = url.removeprefix("sqlite:///")
                rate, rate1 = raw_sqlite(path, rows, SQLITE_BATCH), raw_sqlite(path, single, 1)
            result.add(raw_op(backend), backend, rate)
            result.add(OPS_RAW1, backend, rate1)
            print(f"  bulk {rate:,.0f} rows/s; 1 row per transaction {rate1:,.0f} rows/s", flush=True)


def report(result: Result, args: argparse.Namespace, data: Dataset) -> str:
    backends = args.backends
    raw_ops = {b: raw_op(b) for b in backends}
    ops = [OPS_SEQ, *(tx_op(c) for c in args.clients)]
    header = [f"operation (median of {args.runs}, resources/s)"]
    for b in backends:
        header += [b, f"{b} / raw bulk"]
    rows = []
    for op in ops:
        row = [op]
        for b in backends:
            rate, raw = result.median(op, b), result.median(raw_ops[b], b)
            row += [common.fmt_rate(rate), f"{rate / raw:.1%}" if rate and raw else "n/a"]
        rows.append(row)
    for label, per_backend in (
        ("raw limit: bulk (PG COPY; SQLite 500 rows/txn)", raw_ops),
        (OPS_RAW1 + f" ({args.n} rows)", dict.fromkeys(backends, OPS_RAW1)),
    ):
        row = [label]
        for b in backends:
            rate, raw = result.median(per_backend[b], b), result.median(raw_ops[b], b)
            row += [common.fmt_rate(rate), f"{rate / raw:.1%}" if rate and raw else "n/a"]
        rows.append(row)
    spread = ["", "every run (resources/s):"]
    for (op, b), values in result.rates.items():
        spread.append(f"  {b:10} {op}: " + ", ".join(common.fmt_rate(v) for v in values))
    return common.table(header, rows) + "\n" + "\n".join(spread)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="creates per sequential run (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--clients", default="1,4", help="concurrent clients, Bundle load (default 1,4)")
    parser.add_argument("--bundles", type=int, default=None, help="use only the first N patient Bundles")
    parser.add_argument("--quick", action="store_true", help="smoke run: -n 100, 1 run, 6 patient Bundles")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: load the patient Bundles in-process (no HTTP) through "
        "ketnoi.interactions.router.handle, timed, then again under cProfile",
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.runs, args.bundles = min(args.n, 100), 1, args.bundles or 6
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.clients = [int(c) for c in args.clients.split(",")]

    info = common.machine_info()
    try:
        data = load_dataset(args.bundles)
    except MissingData as exc:
        sys.exit(f"error: {exc}")
    admin = common.pg_admin_url() if "postgresql" in args.backends else None
    if "postgresql" in args.backends and not admin:
        print("PostgreSQL unavailable (no KETNOI_BENCH_POSTGRES_URL, scripts/pg-test-setup.sh failed): skipping it")
        args.backends.remove("postgresql")
    common.print_machine(info)
    print(
        f"data:     {data.source}: {len(data.patients)} patient Bundles, {data.resource_count} resources "
        f"({sum(len(b) for b in data.reference)} Organizations/Practitioners loaded first, not timed)\n",
        flush=True,
    )

    if args.profile:
        for backend in args.backends:
            profile_in_process(backend, data, admin)
        return 0
    result, failures = Result(), Failures()
    for backend in args.backends:
        run_backend(backend, data, admin, result, failures, n=args.n, runs=args.runs, clients=args.clients)

    print()
    common.print_machine(info)
    print()
    print(report(result, args, data))
    if failures.count:
        print(f"\n{failures.count} failed requests ({failures.resources} resources); examples:")
        for example in failures.examples:
            print("  " + example)
    else:
        print("\nno failed requests")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "rates": {f"{b}: {op}": v for (op, b), v in result.rates.items()},
                    "failures": {
                        "count": failures.count,
                        "resources": failures.resources,
                        "examples": failures.examples,
                    },
                },
                indent=2,
            )
        )
    return 1 if failures.count else 0


if __name__ == "__main__":
    sys.exit(main())
