"""The patient index's speed (issue 13): ``Patient/$match`` latency, whole-database dedupe, linking on create.

Per backend, in a fresh database loaded with the Patients of the synthetic population (and its planted
duplicates) by ``ketnoi load``:

* ``$match``: a server (``ketnoi serve``, auth off) answers ``POST Patient/$match`` for the duplicates'
  records (each a realistic query: the same person typed again), one client, keep-alive; p50/p95/p99.
  Beside it, the raw limit of the same round trip: ``GET Patient?identifier=<CCCD>`` (one index lookup
  and one read) for the originals' CCCDs in the same run.
* ``dedupe``: ``ketnoi mpi dedupe`` as a subprocess (read every Patient, block, grade, write golden
  records and review Tasks); wall time, beside ``ketnoi mpi dedupe --dry-run`` (the reading and grading
  alone).
* ``create``: ``POST Patient`` of new look-alike records, with background linking on (one ``mpi-link`` job
  queued per create) and off, requests per second; then the time until the queue is empty (the linking
  throughput), read from the jobs table.

Issue 13's targets: ``$match`` p95 under 50 ms on PostgreSQL at 1,000,000 patients; dedupe of
1,000,000 under 15 minutes.

Usage: .venv/bin/python bench/mpi.py [--patients N] [--queries Q] [--backends sqlite,postgresql]
       .venv/bin/python bench/mpi.py --patients N --backends B --database URL   # a database loaded before
       ... --steps match,create   # leave out the dedupe (a quarter of an hour at a million)

Loading is the long part at a million (Patients are index-heavy: about 450 a second on PostgreSQL on
the reference machine, 40 minutes), so ``--database`` measures a database an earlier run (or ``ketnoi
load`` of the same ``--patients`` and ``--seed``) filled, and each backend's row is printed as it is done.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from load import ketnoi_load

from ketnoi.demo.generate import iter_blocks

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
_DONE = re.compile(r"in ([\d.]+) s")


def population(patients: int, seed: int, out: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Write the Patients as NDJSON; return the duplicates (the queries) and the originals' CCCDs."""
    lines, queries, cccds = [], [], []
    for block, dup in iter_blocks(patients, seed):
        people = [r for r in block if r["resourceType"] == "Patient"]
        lines += [orjson.dumps(p) for p in people]
        if dup is not None:
            queries += [p for p in people if p["id"] == dup.duplicate_id]
        cccds += [i["value"] for i in people[0].get("identifier", []) if i.get("system") == CCCD]
    out.mkdir(parents=True, exist_ok=True)
    (out / "Patient.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return queries, cccds


def sample(patients: int, seed: int, wanted: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The first ``wanted`` duplicates and originals' CCCDs of the population, without generating all of it
    (the generator is a stream: the first blocks are the same whatever ``patients`` is)."""
    queries: list[dict[str, Any]] = []
    cccds: list[str] = []
    for block, dup in iter_blocks(patients, seed):
        people = [r for r in block if r["resourceType"] == "Patient"]
        if dup is not None:
            queries += [p for p in people if p["id"] == dup.duplicate_id]
        cccds += [i["value"] for i in people[0].get("identifier", []) if i.get("system") == CCCD]
        if len(queries) >= wanted and len(cccds) >= wanted:
            break
    return queries, cccds


def latency(base: str, queries: list[dict[str, Any]], cccds: list[str], count: int) -> tuple[dict[str, float], ...]:
    match_s, raw_s = [], []
    with common.client(base) as http:
        for query in (queries * (count // max(len(queries), 1) + 1))[:count]:
            query = {k: v for k, v in query.items() if k not in ("id", "meta")}
            body = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": query}]}
            started = time.perf_counter()
            r = http.post("/Patient/$match", content=orjson.dumps(body))
            match_s.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text[:300]
        for cccd in (cccds * (count // max(len(cccds), 1) + 1))[:count]:
            started = time.perf_counter()
            r = http.get("/Patient", params={"identifier": f"{CCCD}|{cccd}"})
            raw_s.append(time.perf_counter() - started)
            assert r.status_code == 200
    return common.percentiles(match_s), common.percentiles(raw_s)


def dedupe(url: str, dry_run: bool) -> float:
    cmd = [common.PYTHON, "-m", "ketnoi", "mpi", "dedupe", "--database", url, *(["--dry-run"] if dry_run else [])]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=common.ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    print(f"    {proc.stdout.strip().splitlines()[-1]}", flush=True)
    return time.perf_counter() - started


def creates(url: str, queries: list[dict[str, Any]], link: bool, count: int) -> tuple[float, float | None]:
    """Creates per second, and (with linking on) patients linked per second by the queue after them."""
    env = {"KETNOI_MPI_LINK": "on" if link else "off"}
    with common.server(url, env=env) as srv, common.client(srv.base) as http:
        started = time.perf_counter()
        for i, query in enumerate((queries * (count // max(len(queries), 1) + 1))[:count]):
            body = {k: v for k, v in query.items() if k not in ("id", "meta")}
            kept = [x for x in body.pop("identifier", []) if x.get("system") != CCCD]  # no CCCD clash
            if kept:
                body["identifier"] = kept
            body["telecom"] = [{"system": "phone", "value": f"09{i:08d}"}]
            r = http.post("/Patient", content=orjson.dumps(body))
            assert r.status_code == 201, r.text[:500]
        rate = count / (time.perf_counter() - started)
        if not link:
            return rate, None
        while _pending_jobs(url) > 0:  # the queue works beside the creates; done when it is empty
            time.sleep(0.2)
        return rate, count / (time.perf_counter() - started)


def _pending_jobs(url: str) -> int:
    from ketnoi.app import open_store

    store = open_store(url)
    try:
        with store.session(write=False) as session:
            return len(session.jobs("mpi-link", ("queued", "running")))
    finally:
        store.close()


HEADER = ["backend", "patients", "$match p50/p95/p99 ms", "raw: identifier search", "dedupe dry-run", "dedupe",
          "creates/s link off / on", "linked/s after"]  # fmt: skip


def run_backend(backend: str, folder: Path, data: tuple[list[dict[str, Any]], list[str]], args: Any) -> list[str]:
    with common.database(backend, common.pg_admin_url()) as url:
        loaded = ketnoi_load(url, folder)
        print(f"  [{backend}] loaded {loaded.resources:,} Patients at {loaded.rate:,.0f}/s", flush=True)
        return measure(backend, url, data, args)


def measure(backend: str, url: str, data: tuple[list[dict[str, Any]], list[str]], args: Any) -> list[str]:
    queries, cccds = data
    patients = _patients(url)
    with common.server(url, env={"KETNOI_MPI_LINK": "off"}) as srv:
        match, raw = latency(srv.base, queries, cccds, args.queries)
    print(f"  [{backend}] $match p50/p95/p99 {common.fmt_pcts(match)} ms; raw {common.fmt_pcts(raw)} ms", flush=True)
    steps = set(args.steps.split(","))
    dry = dedupe(url, dry_run=True) if "dedupe" in steps else None
    full = dedupe(url, dry_run=False) if "dedupe" in steps else None
    off, _ = creates(url, queries, False, args.creates) if "create" in steps else (None, None)
    on, linked = creates(url, queries, True, args.creates) if "create" in steps else (None, None)
    row = [backend, f"{patients:,}", common.fmt_pcts(match), common.fmt_pcts(raw), _s(dry), _s(full),
           f"{off:,.0f} / {on:,.0f}" if off and on else "n/a", f"{linked:,.0f}" if linked else "n/a"]  # fmt: skip
    print(common.table(HEADER, [row]), flush=True)
    return row


def _s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f} s"


def _patients(url: str) -> int:
    from ketnoi.app import open_store
    from ketnoi.sql import SqlQuery

    store = open_store(url)
    try:
        with store.session(write=False) as session:
            sql = "SELECT count(*) FROM resource WHERE resource_type = 'Patient' AND deleted = ?"
            return int(session.query(SqlQuery(sql, (False,)))[0][0])
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--database", help="measure this database, loaded before with the same --patients/--seed")
    parser.add_argument("--steps", default="match,dedupe,create", help="what to measure after $match (default all)")
    args = parser.parse_args(argv)
    common.print_machine(common.machine_info())
    if args.database:
        data = sample(args.patients, args.seed, max(args.queries, args.creates))
        print(common.table(HEADER, [measure(args.backends, args.database, data, args)]))
        return 0
    with tempfile.TemporaryDirectory(prefix="ketnoi-bench-mpi-") as tmp:
        folder = Path(tmp) / "patients"
        started = time.perf_counter()
        data = population(args.patients, args.seed, folder)
        print(f"generated {args.patients:,} patients + {len(data[0]):,} duplicates in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        rows = [run_backend(b, folder, data, args) for b in args.backends.split(",")]
    print(common.table(HEADER, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
