"""One benchmark command: ingest over HTTP, bulk load, read by id and search, SQLite and PostgreSQL.

    .venv/bin/python bench/run.py --quick                 # smoke run: every step, tiny, ~2 minutes
    .venv/bin/python bench/run.py --scale 2000            # ~56k resources, ~15 minutes on 2 cores
    .venv/bin/python bench/run.py --scale 40000 --load-runs 1 --json out.json   # ~1M resources

``--scale N`` is the number of synthetic patients (``ketnoi demo generate --patients N``: about 25
resources each, plus about 6,000 shared Organizations, Practitioners, PractitionerRoles and
Locations). Per backend, each in fresh throwaway databases:

0. **ingest** (bench/ingest.py, on its fixed Synthea data, not --scale): sequential single creates
   over HTTP (``--ingest-runs`` x ``--ingest-n``), beside one row per transaction into a bare
   table; 100-entry transaction Bundles with 1 and 4 clients (``--clients``), beside the bulk raw
   limit of the same resources' JSON (PostgreSQL ``COPY``, SQLite 500 rows per transaction);
1. **bulk load** (bench/load.py): ``ketnoi load`` of the NDJSON folder, ``--load-runs`` times, each
   into a fresh database; the raw limit is the same lines into a bare table (PostgreSQL ``COPY``,
   SQLite 500 rows per transaction), ``--load-runs`` times, in another fresh database; and the
   *schema floor*, once: exactly the rows ``ketnoi load`` writes (history with the JSON, current
   pointer, every search-index row), made beforehand and written straight into a freshly migrated
   ketnoi database with its indexes (COPY / the loader's batch per transaction): what the database
   alone needs, which no loader can beat;
2. **read by id** (bench/read.py), on the last loaded database served by ``ketnoi serve``:
   ``--reads`` random ``GET /fhir/Type/id``, beside ``GET /healthz`` (the HTTP floor) and a bare
   indexed SQL lookup through the same driver, ``--read-runs`` times;
3. **search** (bench/search.py): the fixed query mix, ``--search-n`` runs per query with
   parameters drawn from the data; a query answered with an error status is reported as
   ``unsupported (HTTP 400)``. On PostgreSQL, every query whose p95 is over ``--explain-over``
   ms gets ``EXPLAIN (ANALYZE, BUFFERS)`` of its slowest statements (printed, and in --json);
4. **rest** (bench/rest.py, on its own data, in its own fresh database): ``ketnoi serve`` filled
   over HTTP only with 100-entry transaction Bundles by 4 clients (``--rest-source synthea``:
   the Synthea set x ``--rest-copies``, ids remapped per copy; ``demo``: ``ketnoi demo generate
   --format bundles`` at ``--scale``), no ANALYZE, no load; right after it the clinician query
   mix (``--search-n`` each) beside ``/healthz``, against the p95 target (20 ms below 500,000
   resources, 50 ms from there), and the planner statistics the server kept by itself;
5. **auth** (bench/auth.py, on the --scale data, in its own loaded database): the cost of
   authorization: reads (1 and ``max(--clients)`` clients), 100-entry transaction Bundles and a
   common search against ``ketnoi serve --auth off`` and ``--auth on`` (a real token from
   ``ketnoi token issue`` on every request), one server after the other, ``--auth-runs`` rounds;
   printed as its own table (auth off, auth on, cost, target: at most 10 % lower throughput);
6. **policy** (bench/policy.py, on the --scale data, in its own loaded database): the cost of
   authorization + access policy + audit together: reads of one facility's patients' resources,
   100-entry transaction Bundles and the clinician query mix against an open server (``--auth off``,
   ``KETNOI_AUDIT=off``) and a full one (``--auth on``, ``KETNOI_AUDIT=on``,
   ``KETNOI_CARE_WINDOW_DAYS=36500``: every Encounter of the demo data counts as a care relation),
   with the token of a backend client registered for that facility (``ketnoi clients add
   --organization``), ``--auth-runs`` rounds, then paired reads and searches with both servers up;
   printed as its own table (target: at most 20 % lower throughput; searches p95 < 10 ms and < 50 ms).

Prints the machine, date, commit and command, then one table: operation × backend, the figure,
the raw limit measured in the same run and the ratio. ``--only`` picks steps (ingest,load,read,
search,rest,auth,policy; default all); ``--quick`` is a smoke run of every step (explicit options still win).
``--profile`` adds a cProfile of the load in-process on SQLite. PostgreSQL:
KETNOI_BENCH_POSTGRES_URL or scripts/pg-test-setup.sh (an admin URL that may CREATE DATABASE);
every database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import auth
import common
import ingest
import load
import policy
import read
import rest
import search

STEPS = ("ingest", "load", "read", "search", "rest", "auth", "policy")
SCALED = ("load", "read", "search")  # the steps that use the --scale data (and auth, policy: their own databases)

# --quick: a smoke run of every step (options given explicitly still win)
QUICK = {
    "scale": 50,
    "load_runs": 1,
    "reads": 200,
    "read_runs": 1,
    "search_n": 10,
    "search_budget": 5.0,
    "ingest_n": 100,
    "ingest_runs": 1,
    "bundles": 6,
    "rest_copies": 1,
    "auth_runs": 1,
    "auth_bundles": 3,
}


def _log(message: str) -> None:
    print(message, flush=True)


def run_backend(
    backend: str,
    args: argparse.Namespace,
    folder: Path,
    rows: list[tuple[str, str]],
    admin: str | None,
    out: dict[str, Any],
    dataset: ingest.Dataset | None,
    rest_source: rest.Source | None = None,
) -> None:
    res: dict[str, Any] = out.setdefault(backend, {})
    if "ingest" in args.only and dataset is not None:
        result, failures = ingest.Result(), ingest.Failures()
        ingest.run_backend(
            backend, dataset, admin, result, failures, n=args.ingest_n, runs=args.ingest_runs, clients=args.clients
        )
        res["ingest"] = {
            "rates": result.of(backend),
            "failed": {op: n for (op, b), n in result.failed.items() if b == backend},
            "failures": {"count": failures.count, "resources": failures.resources, "examples": failures.examples},
        }
    if set(args.only) & set(SCALED):
        run_scaled(backend, args, folder, rows, admin, res)
    if "rest" in args.only and rest_source is not None:
        res["rest"] = rest.run_backend(
            backend,
            rest_source,
            admin,
            clients=max(args.clients),
            n=args.search_n,
            budget=args.search_budget,
            healthz_n=args.reads,
            seed=args.seed,
        )
    if "auth" in args.only:
        res["auth"] = auth.run_backend(
            backend,
            admin,
            folder,
            rows,
            runs=args.auth_runs,
            reads=args.reads,
            clients=max(args.clients),
            bundles=args.auth_bundles,
            search_n=args.search_n,
            seed=args.seed,
            analyze=args.analyze,
        )
    if "policy" in args.only:
        res["policy"] = policy.run_backend(
            backend,
            admin,
            folder,
            rows,
            runs=args.auth_runs,
            reads=args.reads,
            bundles=args.auth_bundles,
            search_n=args.search_n,
            budget=args.search_budget,
            seed=args.seed,
            analyze=args.analyze,
            database=dict(d.split("=", 1) for d in args.policy_database).get(backend),
        )


def run_scaled(
    backend: str,
    args: argparse.Namespace,
    folder: Path,
    rows: list[tuple[str, str]],
    admin: str | None,
    res: dict[str, Any],
) -> None:
    """The load, read and search steps, on the --scale data."""
    keys = [key for key, _ in rows]
    if "load" in args.only:
        _log(f"[{backend}] raw limit: {len(rows):,} lines, {args.load_runs} run(s)")
        with common.database(backend, admin) as url:
            res["raw_bulk"] = [load.raw_limit(backend, url, rows) for _ in range(args.load_runs)]
        _log("  " + ", ".join(f"{r:,.0f} rows/s" for r in res["raw_bulk"]))
        _log(f"[{backend}] schema floor: the rows ketnoi writes, straight into its tables (1 run)")
        with common.database(backend, admin) as url:
            res["schema_floor"] = [load.schema_floor(backend, url, folder)]
        _log(f"  {res['schema_floor'][0]:,.0f} resources/s")
    runs = args.load_runs if "load" in args.only else 1
    res["load"] = []
    for index in range(runs):
        with common.database(backend, admin) as url:
            _log(f"[{backend}] ketnoi load, run {index + 1} of {runs}")
            run = load.ketnoi_load(url, folder)
            res["load"].append(vars(run))
            _log(
                f"  {run.rate:,.0f} resources/s ({run.resources:,} in {run.seconds:.1f} s, {run.failed} failed; "
                f"{run.wall:.1f} s with start-up)"
            )
            if index == runs - 1 and ("read" in args.only or "search" in args.only):
                serve_and_measure(backend, args, folder, url, rows, keys, res)


def serve_and_measure(
    backend: str,
    args: argparse.Namespace,
    folder: Path,
    url: str,
    rows: list[tuple[str, str]],
    keys: list[str],
    res: dict[str, Any],
) -> None:
    if backend == "postgresql":
        if args.analyze:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
        res["tables_at_search"] = common.pg_table_stats(url)
    with common.server(url) as srv:
        res["healthz"], res["read"], res["bare"] = [], [], []
        rng = random.Random(args.seed)
        if "read" in args.only:
            read.create_bare(backend, url, rows)
            _log(f"[{backend}] read by id: {args.read_runs} x {args.reads} reads, /healthz and bare lookups")
            failures = misses = 0
            for _ in range(args.read_runs):
                res["healthz"].append(common.percentiles(read.healthz(srv.base, args.reads)))
                samples, failed = read.http_reads(srv.base, keys, args.reads, rng)
                res["read"].append(common.percentiles(samples))
                bare, missed = read.bare_lookups(backend, url, keys, args.reads, rng)
                res["bare"].append(common.percentiles(bare))
                failures, misses = failures + failed, misses + missed
                _log(
                    f"  healthz {common.fmt_pcts(res['healthz'][-1])}; read {common.fmt_pcts(res['read'][-1])}; "
                    f"bare SQL {common.fmt_pcts(res['bare'][-1])} ms (p50/p95/p99)"
                )
            res["read_failures"], res["bare_misses"] = failures, misses
            read.drop_bare(backend, url)
        if "search" in args.only:
            if not res["healthz"]:
                res["healthz"].append(common.percentiles(read.healthz(srv.base, args.reads)))
            _log(
                f"[{backend}] search: {len(search.QUERIES)} queries x {args.search_n} "
                f"(at most {args.search_budget:.0f} s each); parameters from {folder}"
            )
            pools = search.Pools.from_folder(folder)

            def progress(r: search.QueryResult) -> None:
                if r.status != "ok":
                    _log(f"  {r.name}: {r.status} {r.diagnostics[:160]}")
                else:
                    _log(
                        f"  {r.name}: {common.fmt_pcts(common.percentiles(r.samples))} ms, n={len(r.samples)}, "
                        f"{r.check_failures} check failures"
                        + (f" (e.g. {r.check_examples[0]})" if r.check_examples else "")
                    )

            results = search.run_mix(srv.base, pools, args.search_n, args.search_budget, args.seed, progress)
            res["search"] = [r.summary() for r in results]
    if backend == "postgresql" and "search" in args.only:
        res["explain"] = []
        for r in res["search"]:
            p95 = r["latency_ms"].get("p95")
            if r["status"] == "ok" and p95 is not None and p95 > args.explain_over and r["slowest"]:
                _log(f"[{backend}] EXPLAIN (ANALYZE, BUFFERS): {r['name']} (p95 {p95:.1f} ms)")
                try:
                    item = search.explain(url, r["slowest"]["type"], [tuple(p) for p in r["slowest"]["params"]])
                except Exception as exc:  # the plan is a bonus; the figures stand without it
                    item = {"request": r["name"], "error": repr(exc)}
                    _log(f"  failed: {exc!r}")
                item["query"] = r["name"]
                res["explain"].append(item)


# ---------------------------------------------------------------- the table


def _raw_label(backend: str) -> str:
    return "PG COPY" if backend == "postgresql" else f"{load.SQLITE_BATCH} rows/txn"


def ingest_rows(out: dict[str, Any], backends: list[str], args: argparse.Namespace) -> list[list[str]]:
    """Sequential creates beside one row per transaction; transaction Bundles beside the bulk raw limit."""
    series = [(ingest.OPS_SEQ, ingest.OPS_RAW1, "ingest: sequential creates, POST /fhir/T, 1 client, creates/s")]
    series += [
        (ingest.tx_op(c), "", f"ingest: 100-entry transaction Bundles, {c} client{'' if c == 1 else 's'}, resources/s")
        for c in args.clients
    ]
    rows: list[list[str]] = []
    for op, raw_op, label in series:
        for b in backends:
            ing = out.get(b, {}).get("ingest")
            if not ing or not ing["rates"].get(op):
                continue
            raw_key = raw_op or ingest.raw_op(b)
            raw_label = "1 row/txn" if raw_op else _raw_label(b)
            rate = common.median(ing["rates"][op])
            raws = ing["rates"].get(raw_key)
            raw = common.median(raws) if raws else None
            failed = ing["failed"].get(op, 0)
            rows.append(
                [
                    f"{label}, median of {len(ing['rates'][op])}",
                    b,
                    common.fmt_rate(rate),
                    f"{common.fmt_rate(raw)} ({raw_label})" if raw else "n/a",
                    f"{rate / raw:.1%} of raw" if raw else "",
                    "ok" if not failed else f"{failed} failed requests",
                ]
            )
    return rows


def build_table(out: dict[str, Any], backends: list[str], args: argparse.Namespace) -> str:
    header = ["operation", "backend", "result", "raw limit, same run", "ratio", "checks"]
    rows: list[list[str]] = ingest_rows(out, backends, args)
    for b in backends:
        res = out.get(b, {})
        if res.get("raw_bulk") and res.get("load"):
            rate = common.median([r["rate"] for r in res["load"]])
            raw = common.median(res["raw_bulk"])
            failed = sum(r["failed"] for r in res["load"])
            rows.append(
                [
                    f"bulk load (ketnoi load), resources/s, median of {len(res['load'])}",
                    b,
                    common.fmt_rate(rate),
                    f"{common.fmt_rate(raw)} ({_raw_label(b)})",
                    f"{rate / raw:.1%} of raw",
                    "ok" if not failed else f"{failed} failed",
                ]
            )
            if res.get("schema_floor"):
                floor = common.median(res["schema_floor"])
                rows.append(
                    [
                        "  raw: the same rows into ketnoi's tables and indexes, no Python, resources/s",
                        b,
                        common.fmt_rate(floor),
                        f"{floor / raw:.1%} of raw",
                        f"load = {rate / floor:.0%} of it",
                        "",
                    ]
                )
    floor_of = {b: common.median_pcts(out.get(b, {}).get("healthz", [])) for b in backends}
    for b in backends:
        res = out.get(b, {})
        if res.get("read"):
            read_p = common.median_pcts(res["read"])
            bare_p = common.median_pcts(res["bare"])
            rows.append(
                [
                    f"read by id, GET /fhir/T/id, ms p50/p95/p99 (median of {len(res['read'])} x {args.reads})",
                    b,
                    common.fmt_pcts(read_p),
                    f"/healthz {common.fmt_pcts(floor_of[b])}",
                    f"{read_p['p50'] / floor_of[b]['p50']:.1f}x floor",
                    "ok" if not res.get("read_failures") else f"{res['read_failures']} failed",
                ]
            )
            rows.append(
                [
                    "  raw: bare SQL lookup by id, same driver, ms",
                    b,
                    common.fmt_pcts(bare_p),
                    "",
                    "",
                    "ok" if not res.get("bare_misses") else f"{res['bare_misses']} misses",
                ]
            )
    for index, query in enumerate(search.QUERIES):
        for b in backends:
            items = out.get(b, {}).get("search")
            if not items:
                continue
            item = items[index]
            label = f"search: {query.name}" + (" *" if query.goal else "")
            floor = floor_of[b]
            if item["status"] != "ok":
                rows.append([label, b, item["status"], "", "", ""])
                continue
            p = item["latency_ms"]
            n = p.get("n", 0)
            checks = "ok" if not item["check_failures"] else f"{item['check_failures']}/{n} failed"
            rows.append(
                [
                    label,
                    b,
                    common.fmt_pcts(p) + ("" if n >= args.search_n else f" (n={n})"),
                    f"/healthz {common.fmt_pcts(floor)}",
                    f"{p['p50'] / floor['p50']:.1f}x floor" if floor.get("p50") else "",
                    checks,
                ]
            )
    rest_part = rest_rows(out, backends)
    if rest_part:  # a target column, filled for the rest step's rows only
        header.append("target (p95)")
        rows = [[*r, ""] for r in rows] + rest_part
    return common.table(header, rows)


def rest_rows(out: dict[str, Any], backends: list[str]) -> list[list[str]]:
    """The rest step: the fill rate, then each clinician query against its p95 target (7 cells)."""
    rows: list[list[str]] = []
    fills = {b: out[b]["rest"] for b in backends if out.get(b, {}).get("rest")}
    for b, r in fills.items():
        fill, failed = r["fill"], r["failures"]["count"]
        rows.append(
            [
                f"REST fill ({r['source']}, {fill['resources']:,} res): 100-entry transaction Bundles, "
                f"{fill['clients']} clients, resources/s",
                b,
                common.fmt_rate(fill["rate"]),
                "",
                "",
                "ok" if not failed else f"{failed} failed requests",
                "",
            ]
        )
    for index, query in enumerate(rest.QUERIES):
        for b, r in fills.items():
            item, floor = r["search"][index], r["healthz"]
            label = f"REST-filled ({r['fill']['resources']:,} res): {query.name}"
            if item["status"] != "ok":
                rows.append([label, b, item["status"], "", "", "", "not met"])
                continue
            p = item["latency_ms"]
            n, target = p.get("n", 0), item["target_ms"]
            checks = "ok" if not item["check_failures"] else f"{item['check_failures']}/{n} failed"
            rows.append(
                [
                    label,
                    b,
                    common.fmt_pcts(p) + ("" if n >= r["n"] else f" (n={n})"),
                    f"/healthz {common.fmt_pcts(floor)}",
                    f"{p['p50'] / floor['p50']:.1f}x floor" if floor.get("p50") else "",
                    checks,
                    f"< {target:.0f} ms: " + ("met" if p.get("p95", float("inf")) < target else "not met"),
                ]
            )
    return rows


def notes(out: dict[str, Any], backends: list[str], args: argparse.Namespace) -> list[str]:
    lines = [
        "* marks the single-parameter and patient-scoped queries (goal: p95 < 50 ms on PostgreSQL at 1M).",
        *(
            [
                "REST-filled: a database filled only by transaction Bundles over HTTP, measured right after the fill "
                "(bench/rest.py); target p95 < 20 ms below 500,000 resources, < 50 ms from there."
            ]
            if any(out.get(b, {}).get("rest") for b in backends)
            else []
        ),
        "Latencies: one client, sequential, keep-alive; raw limits measured in the same run on the same machine.",
    ]
    if any(out.get(b, {}).get("ingest") for b in backends):
        lines.append(
            "ingest (Synthea data above, not --scale): sequential creates beside one row per transaction into a "
            f"bare table ({args.ingest_n} rows, the commit-latency bound); Bundles beside the bulk insert of the "
            "same resources' JSON."
        )
    for b in backends:
        res = out.get(b, {})
        ing = res.get("ingest")
        if ing:
            for op, values in ing["rates"].items():
                lines.append(f"{b} ingest {op} runs (/s): " + ", ".join(common.fmt_rate(v) for v in values))
            for example in ing["failures"]["examples"]:
                lines.append(f"{b} ingest failure: {example}")
        if res.get("load"):
            lines.append(
                f"{b} ketnoi load runs (resources/s): "
                + ", ".join(common.fmt_rate(r["rate"]) for r in res["load"])
                + "; raw bulk runs (rows/s): "
                + ", ".join(common.fmt_rate(r) for r in res.get("raw_bulk", []))
            )
        if res.get("read"):
            lines.append(f"{b} read p50 per run (ms): " + ", ".join(common.fmt_ms(r["p50"]) for r in res["read"]))
        tables = res.get("tables_at_search", {}).get("tables", {})
        if tables:
            unanalyzed = [t for t, v in tables.items() if not v["analyzed"]]
            lines.append(
                f"{b} after the load: {'ANALYZE run (not timed)' if args.analyze else 'no ANALYZE'}; "
                f"database {res['tables_at_search']['database_size']}; tables without statistics: "
                f"{', '.join(unanalyzed) or 'none'}"
            )
        lines += rest_notes(b, res.get("rest"))
        for item in res.get("search", []):
            if item["check_examples"]:
                lines.append(f"{b} {item['name']}: " + " | ".join(item["check_examples"]))
            if item["status"] != "ok" and item["diagnostics"]:
                lines.append(f"{b} {item['name']}: {item['status']}: {item['diagnostics'][:200]}")
    return lines


def rest_notes(backend: str, r: dict[str, Any] | None) -> list[str]:
    """The rest step: its data, the statistics the server kept, failures and failed checks."""
    if not r:
        return []
    fill = r["fill"]
    lines = [
        f"{backend} REST fill: {r['description']}; {fill['stored']:,} of {fill['entries']:,} entries stored in "
        f"{fill['seconds']:,.1f} s; {r['patients']:,} patients ({r['hard_patients']:,} with the most Observations "
        f"drawn for half the queries); first query {r['first_query_after_fill_s']:.2f} s after the fill ended "
        "(no wait, no ANALYZE, no load)",
        f"{backend} REST statistics at the end of the fill: "
        + rest.describe_statistics(backend, r["stats_at_fill_end"]),
        f"{backend} REST statistics after the queries: " + rest.describe_statistics(backend, r["stats_after_mix"]),
    ]
    if r["server_counts"] != r["posted_counts"]:
        lines.append(f"{backend} REST counts differ: server {r['server_counts']}, posted {r['posted_counts']}")
    lines += [f"{backend} REST fill failure: {example}" for example in r["failures"]["examples"]]
    for item in r["search"]:
        if item["check_examples"]:
            lines.append(f"{backend} REST {item['name']}: " + " | ".join(item["check_examples"]))
        if item["status"] != "ok" and item["diagnostics"]:
            lines.append(f"{backend} REST {item['name']}: {item['status']}: {item['diagnostics'][:200]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=2000, help="synthetic patients (default 2000, ~56k resources)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--only", default=",".join(STEPS), help="steps: ingest,load,read,search,rest,auth,policy (default all)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run of every step (~2 minutes): "
        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()),
    )
    parser.add_argument("--ingest-n", type=int, default=1000, help="ingest: creates per sequential run (default 1000)")
    parser.add_argument("--ingest-runs", type=int, default=3, help="ingest: runs of each series (fresh database each)")
    parser.add_argument("--clients", default="1,4", help="ingest: concurrent clients of the Bundle load (default 1,4)")
    parser.add_argument("--bundles", type=int, default=None, help="ingest: only the first N Synthea patient Bundles")
    parser.add_argument("--load-runs", type=int, default=3, help="ketnoi load runs (fresh database each); median")
    parser.add_argument("--reads", type=int, default=2000, help="reads per run (and /healthz, bare lookups)")
    parser.add_argument("--read-runs", type=int, default=3)
    parser.add_argument("--search-n", type=int, default=200, help="runs per search query (default 200)")
    parser.add_argument("--search-budget", type=float, default=30.0, help="seconds at most per search query")
    parser.add_argument(
        "--explain-over",
        type=float,
        default=50.0,
        help="PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) queries whose p95 exceeds this (ms)",
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="PostgreSQL: do not ANALYZE after the load (default: ANALYZE, not timed, so that "
        "plans do not depend on when autovacuum gets there; ketnoi load does not run it)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile ketnoi.bulk.load in-process on SQLite (min(scale, 1000) patients)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="where the generated NDJSON goes (default: a reused "
        "folder under /tmp/ketnoi-bench-data, per scale and seed)",
    )
    parser.add_argument(
        "--rest-source",
        choices=("synthea", "demo"),
        default="synthea",
        help="rest: the Synthea set x --rest-copies (default), or ketnoi demo generate --format bundles at --scale",
    )
    parser.add_argument(
        "--rest-copies",
        type=int,
        default=11,
        help="rest, synthea: copies of the Synthea set, ids remapped per copy (default 11: ~189k resources)",
    )
    parser.add_argument(
        "--auth-runs", type=int, default=3, help="auth, policy: rounds of off and on (default 3); median"
    )
    parser.add_argument(
        "--auth-bundles", type=int, default=20, help="auth, policy: 100-entry Bundles per side and round"
    )
    parser.add_argument(
        "--policy-database",
        action="append",
        default=[],
        metavar="BACKEND=URL",
        help="policy: use this database, already loaded with the --scale data (e.g. a million resources "
        "loaded once), instead of loading a fresh one; the step adds its Bundles to it, so a second run on "
        "the same database finds more entries than its checks expect",
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := set(args.only) - set(STEPS):
        parser.error(f"unknown step(s): {', '.join(sorted(unknown))}")

    # kill PID: unwind normally, so that the throwaway databases and the server are cleaned up
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    info = common.machine_info()
    admin = common.pg_admin_url() if "postgresql" in args.backends else None
    if "postgresql" in args.backends and not admin:
        _log("PostgreSQL unavailable (no KETNOI_BENCH_POSTGRES_URL, scripts/pg-test-setup.sh failed): skipping it")
        args.backends.remove("postgresql")
    common.print_machine(info)
    data_root = Path("/tmp/ketnoi-bench-data")
    folder = args.data or data_root / f"patients-{args.scale}-seed-{args.seed}"
    started = time.perf_counter()
    dataset: ingest.Dataset | None = None
    synthea_line = ""
    if "ingest" in args.only:
        try:
            dataset = ingest.load_dataset(args.bundles)
            synthea_line = (
                f"{dataset.source}: {len(dataset.patients)} Synthea patient Bundles, {dataset.resource_count:,} "
                f"resources ({sum(len(b) for b in dataset.reference)} Organizations/Practitioners first, not timed)"
            )
            _log(f"synthea:  {synthea_line}")
        except ingest.MissingData as exc:
            _log(f"ingest step skipped: {exc}")
    rest_source: rest.Source | None = None
    rest_line = ""
    if "rest" in args.only:
        try:
            rest_source = rest.source(args.rest_source, args.rest_copies, args.scale, args.seed, data_root)
            rest_line = rest_source.description
            _log(f"rest:     {rest_line}")
        except ingest.MissingData as exc:
            _log(f"rest step skipped: {exc}")
    rows: list[tuple[str, str]] = []
    data_line = "not used (no load, read, search, auth or policy step)"
    if set(args.only) & {*SCALED, "auth", "policy"}:
        common.demo_data(args.scale, args.seed, folder)
        rows = load.raw_rows(folder)
        counts: dict[str, int] = {}
        for key, _ in rows:
            counts[key.split("/", 1)[0]] = counts.get(key.split("/", 1)[0], 0) + 1
        data_line = (
            f"{folder}: {args.scale:,} patients (seed {args.seed}), {len(rows):,} resources "
            f"({counts.get('Observation', 0):,} Observations, {counts.get('Patient', 0):,} Patients, "
            f"{counts.get('Encounter', 0):,} Encounters)"
        )
    _log(f"data:     {data_line} ({time.perf_counter() - started:.0f} s)\n")
    if admin and "postgresql" in args.backends:
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            settings = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in ("server_version", "shared_buffers", "work_mem", "effective_cache_size")
            }
        info["postgresql"] = ", ".join(f"{k}={v}" for k, v in settings.items())
    out: dict[str, Any] = {}
    for backend in args.backends:
        run_backend(backend, args, folder, rows, admin, out, dataset, rest_source)
    profile = None
    if args.profile and "sqlite" in args.backends:
        patients = min(args.scale, 1000)
        sub = common.demo_data(patients, args.seed, data_root / f"patients-{patients}-seed-{args.seed}")
        _log(f"[sqlite] cProfile of ketnoi.bulk.load in-process, {patients} patients")
        with common.database("sqlite", None) as url:
            profile = load.profile_load("sqlite", url, sub)

    print()
    common.print_machine(info)
    if "postgresql" in info:
        print(f"{'postgres:':9} {info['postgresql']}")
    print(f"{'data:':9} {data_line}")
    if synthea_line:
        print(f"{'synthea:':9} {synthea_line}")
    if rest_line:
        print(f"{'rest:':9} {rest_line}")
    print(f"{'elapsed:':9} {time.perf_counter() - started:,.0f} s\n")
    if set(args.only) - {"auth", "policy"}:
        print(build_table(out, args.backends, args))
        print()
        print("\n".join(notes(out, args.backends, args)))
    if "auth" in args.only:
        print("\nCost of authorization (bench/auth.py): the same requests, auth off and on, one server after the other")
        print(auth.table(out, args.backends))
        print()
        print("\n".join(auth.notes(out, args.backends)))
    if "policy" in args.only:
        print(
            "\nCost of authorization + access policy + audit (bench/policy.py): an open server beside the full one, "
            "one after the other, then both at once"
        )
        print(policy.table(out, args.backends))
        print()
        print("\n".join(policy.notes(out, args.backends)))
    missed = {
        p["query"] for b in args.backends for p in out.get(b, {}).get("rest", {}).get("explain", []) if p["over_target"]
    }
    for backend in args.backends:
        for item in out.get(backend, {}).get("explain", []):
            print(f"\n[{backend}] EXPLAIN (ANALYZE, BUFFERS) for '{item['query']}', its slowest run:")
            print(search.format_explain(item) if "plans" in item else item.get("error", ""))
        for item in out.get(backend, {}).get("rest", {}).get("explain", []):
            if item["query"] not in missed:  # plans of the queries over their target on any backend
                continue
            kind = "EXPLAIN (ANALYZE, BUFFERS)" if backend == "postgresql" else "EXPLAIN QUERY PLAN"
            print(
                f"\n[{backend}] REST-filled, {kind} for '{item['query']}' (p95 {item['p95_ms']:.1f} ms here), "
                "its slowest run:"
            )
            print(rest.format_explain(backend, item))
    if profile:
        print()
        print(load.format_profile(profile))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "data": data_line,
                    "synthea": synthea_line,
                    "rest": rest_line,
                    "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "results": out,
                    "profile": profile,
                },
                indent=2,
                default=str,
            )
        )
    failed = any(r["failed"] for b in out.values() for r in b.get("load", []))
    failed = failed or any(b.get("ingest", {}).get("failures", {}).get("count") for b in out.values())
    failed = failed or any(b.get("rest", {}).get("failures", {}).get("count") for b in out.values())
    failed = failed or any(b.get("auth", {}).get("failures", {}).get("count") for b in out.values())
    failed = failed or any(b.get("policy", {}).get("failures", {}).get("count") for b in out.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
