"""Clinician searches on a database filled only over REST, with only the server's own maintenance.

A server filled through its API gets no ``ketnoi load`` and no ANALYZE from anyone: whatever
statistics its planner has, the server took itself (``ketnoi.store.statistics``: the keeper that
``ketnoi serve``'s job runner calls between jobs, every ~2 s). Filled that way, a patient's vital
signs once took 16-22 s on SQLite (issue 8). This step measures that case, per backend, in a
fresh throwaway database:

1. ``ketnoi serve`` as a subprocess (``common.server``), as in production. Nothing else writes to
   the database: no ANALYZE, no load, no manual step. The benchmark only reads the catalogue
   (``sqlite_stat1`` / ``pg_stat_user_tables``) for the report.
2. **The fill**, over HTTP only: 100-entry transaction Bundles of ``PUT``s at ids the client
   assigns (as bench/ingest.py does), posted by 4 concurrent clients (the largest of
   ``--clients``), every resource timed: first the shared Organizations/Practitioners, all
   stored before the patients' resources start (two transactions creating one resource at once
   get 409), then the patients'. Failed requests are counted (must be 0). Sources:

   * ``synthea`` (default): ingest.py's 59 Synthea patient Bundles, ``copies`` times, every id
     remapped per copy (uuid5 of the copy number and the original id; every ``reference`` to it
     rewritten). The hospital and practitioner Bundles are loaded once with their own ids, so
     the copies refer to the same Organizations and Practitioners (the copies those Bundles
     carry are updates of them, as in ingest.py). 11 copies: ~189,000 resources.
   * ``demo``: ``ketnoi demo generate --patients N --format bundles`` (transactions of 250-500
     entries, POSTs with ``urn:uuid:`` references, whole patients per Bundle), re-cut into
     100-entry transactions of PUTs at each ``urn:uuid:`` (references rewritten to
     ``Type/uuid``), one file at a time. 41,000 patients: ~1.0 million resources.

   What the checks expect (a patient's Observations, vital signs, codes, active prescriptions)
   is gathered from the resources as they are posted, not by querying.
3. **Right after the fill**, no wait: the clinician query mix (``QUERIES``), one client, over
   HTTP, ``n`` timed runs of each after 5 warm-ups, patients drawn (fixed seed) alternately from
   the 10 % with the most Observations (the hard case) and from all. Every answer is checked
   (status 200, the right patient, the expected number of entries, sorted by date descending
   where asked). Then ``GET /healthz`` of the same server: the HTTP floor. A query whose p95 is
   over the target (``target_ms``: 20 ms below 500,000 resources, 50 ms from there) on either
   backend gets its plans printed for both; every query's plans are taken once the server has
   stopped, in-process with the parameters of its slowest run, and kept in --json: PostgreSQL
   ``EXPLAIN (ANALYZE, BUFFERS)`` (search.explain), SQLite ``EXPLAIN QUERY PLAN`` of its slowest
   statements.
4. The planner statistics as the server left them, at the end of the fill and after the mix:
   PostgreSQL per table whether it was analysed, by an ``ANALYZE`` command (the keeper) or by
   autovacuum, and the rows changed since; SQLite whether ``sqlite_stat1`` exists and the
   history sequence at the last analysis beside the current one.

bench/run.py runs this as its ``rest`` step (``--rest-source``, ``--rest-copies``, ``--scale``,
``--search-n``). Run alone: ``.venv/bin/python bench/rest.py --quick``.
"""

from __future__ import annotations

import itertools
import queue
import random
import sqlite3
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import ingest
import read
import search

Resource = dict[str, Any]
Params = list[tuple[str, str]]

SINCE = "1990-01-01"
VITAL_SIGNS = "vital-signs"
CHOLESTEROL = "http://loinc.org|2093-3"  # total cholesterol: in the Synthea and the demo data
HEIGHT = "http://loinc.org|8302-2"  # body height: both
PAGE = 20  # the server's default _count
HARD_SHARE = 0.1  # the hard half of the draws: the 10 % of patients with the most Observations
WARMUP = 5
LARGE = 500_000  # from this many resources the target is the 1M one
COPY_NAMESPACE = uuid.UUID("6f1d8f34-5a3e-4c1b-9d2e-8b7a0c4e2f10")


def target_ms(resources: int) -> float:
    """p95 target of a clinician query: 20 ms at the Synthea size (~191k), 50 ms at one million."""
    return 20.0 if resources < LARGE else 50.0


def _log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- the data


def remap(value: Any, mapping: dict[str, str]) -> Any:
    """A copy of ``value`` with every ``reference`` found in ``mapping`` replaced by its image."""
    if isinstance(value, dict):
        return {
            k: (mapping.get(v, v) if k == "reference" and isinstance(v, str) else remap(v, mapping))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [remap(v, mapping) for v in value]
    return value


def synthea_groups(data: ingest.Dataset, copies: int) -> Iterator[list[Resource]]:
    """Every patient Bundle ``copies`` times, ids remapped per copy except the shared resources'."""
    shared = {f"{r['resourceType']}/{r['id']}" for b in data.reference for r in b}
    own = [f"{r['resourceType']}/{r['id']}" for b in data.patients for r in b]
    own = [key for key in dict.fromkeys(own) if key not in shared]
    for copy in range(copies):
        mapping = {key: f"{key.split('/', 1)[0]}/{uuid.uuid5(COPY_NAMESPACE, f'{copy}/{key}')}" for key in own}
        for bundle in data.patients:
            out = []
            for resource in bundle:
                new = remap(resource, mapping)
                key = f"{resource['resourceType']}/{resource['id']}"
                new["id"] = mapping[key].split("/", 1)[1] if key in mapping else resource["id"]
                out.append(new)
            yield out


def demo_groups(folder: Path, shared: bool) -> Iterator[list[Resource]]:
    """Each ``ketnoi demo generate --format bundles`` file, its entries as resources with ids, references
    to ``urn:uuid:`` fullUrls rewritten to ``Type/uuid`` (the Bundles hold whole patients). ``shared``:
    the first files, all PUTs of the shared Organizations, Practitioners, roles, Locations; else the rest."""
    for path in sorted((folder / "bundles").glob("bundle-*.json")):
        entries = orjson.loads(path.read_bytes())["entry"]
        if all(e["request"]["method"] == "PUT" for e in entries) != shared:
            if shared:
                return  # the shared Bundles come first
            continue
        mapping = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['fullUrl'].split(':')[-1]}" for e in entries}
        out = []
        for entry in entries:
            resource = remap(entry["resource"], mapping)
            resource["id"] = entry["fullUrl"].split(":")[-1]
            out.append(resource)
        yield out


@dataclass
class Source:
    name: str  # synthea | demo
    description: str
    shared: Callable[[], Iterator[list[Resource]]]  # posted first, and all answered before...
    groups: Callable[[], Iterator[list[Resource]]]  # ...the patients' resources


def source(kind: str, copies: int, scale: int, seed: int, data_root: Path) -> Source:
    """The fill's data (raises ingest.MissingData when the Synthea files are not there)."""
    if kind == "synthea":
        data = ingest.load_dataset()
        shared = sum(len(b) for b in data.reference)
        return Source(
            kind,
            f"{data.source}: {len(data.patients)} Synthea patient Bundles ({data.resource_count:,} resources) "
            f"x {copies} copies, ids remapped per copy, + {shared} Organizations/Practitioners once",
            lambda: iter(data.reference),
            lambda: synthea_groups(data, copies),
        )
    if kind == "demo":
        folder = common.demo_data(scale, seed, data_root / f"bundles-{scale}-seed-{seed}", fmt="bundles")
        files = len(list((folder / "bundles").glob("bundle-*.json")))
        return Source(
            kind,
            f"{folder}: ketnoi demo generate --patients {scale:,} --seed {seed} --format bundles ({files:,} "
            "Bundles), re-cut into 100-entry PUT transactions",
            lambda: demo_groups(folder, shared=True),
            lambda: demo_groups(folder, shared=False),
        )
    raise ValueError(f"unknown --rest-source {kind!r}: synthea or demo")


def _instant(value: str | None) -> float | None:
    """A FHIR dateTime as epoch seconds (UTC when it has no zone; partial dates at their start)."""
    if not value:
        return None
    if len(value) == 4:
        value += "-01-01"
    elif len(value) == 7:
        value += "-01"
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _effective(resource: Resource) -> float | None:
    return _instant(
        resource.get("effectiveDateTime")
        or resource.get("effectiveInstant")
        or (resource.get("effectivePeriod") or {}).get("start")
    )


def _codes(concept: dict[str, Any] | None) -> set[str]:
    return {f"{c.get('system')}|{c.get('code')}" for c in (concept or {}).get("coding", [])}


def _is_vital(resource: Resource) -> bool:
    return any(c.get("code") == VITAL_SIGNS for cat in resource.get("category", []) for c in cat.get("coding", []))


def _patient_of(resource: Resource) -> str:
    return str((resource.get("subject") or {}).get("reference", "")).removeprefix("Patient/")


SINCE_S = _instant(SINCE) or 0.0


@dataclass
class Facts:
    """What the checks expect, gathered from every resource posted (the client knows what it sent)."""

    keys: set[str] = field(default_factory=set)  # Type/id posted: the resources in the database
    entries: int = 0  # entries posted (updates of the shared resources count again)
    patients: set[str] = field(default_factory=set)
    observations: Counter[str] = field(default_factory=Counter)  # patient -> Observations
    vitals: dict[str, list[float]] = field(default_factory=dict)  # patient -> vital-signs times >= SINCE
    coded: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (patient, code) -> times
    active_meds: Counter[str] = field(default_factory=Counter)  # patient -> active MedicationRequests

    def add(self, resource: Resource) -> None:
        rtype = resource["resourceType"]
        self.entries += 1
        key = f"{rtype}/{resource['id']}"
        if key in self.keys:
            return  # the same resource PUT again: the database holds it once
        self.keys.add(key)
        if rtype == "Patient":
            self.patients.add(resource["id"])
        elif rtype == "Observation":
            pid, when = _patient_of(resource), _effective(resource)
            self.observations[pid] += 1
            if _is_vital(resource) and when is not None and when >= SINCE_S:
                self.vitals.setdefault(pid, []).append(when)
            for code in _codes(resource.get("code")) & {CHOLESTEROL, HEIGHT}:
                self.coded.setdefault((pid, code), []).append(when if when is not None else 0.0)
        elif rtype == "MedicationRequest" and resource.get("status") == "active":
            self.active_meds[_patient_of(resource)] += 1

    @property
    def resources(self) -> int:
        return len(self.keys)

    def hard_patients(self) -> list[str]:
        """The 10 % of patients with the most Observations (at least one patient)."""
        ranked = sorted(self.patients, key=lambda p: (-self.observations[p], p))
        return ranked[: max(1, round(len(ranked) * HARD_SHARE))]


# ---------------------------------------------------------------- the fill


@dataclass
class Fill:
    entries: int = 0  # entries posted
    stored: int = 0  # entries in transactions the server accepted
    seconds: float = 0.0
    clients: int = 0

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0


def _post(http: httpx.Client, part: list[Resource], failures: ingest.Failures) -> int:
    what = f"POST /fhir transaction of {len(part)} PUT entries (first {part[0]['resourceType']}/{part[0]['id']})"
    try:
        r = http.post("", content=ingest.transaction(part))
    except httpx.HTTPError as exc:  # counted as a failure; the fill goes on
        failures.add(what, 0, repr(exc).encode(), len(part))
        return 0
    if r.status_code == 200:
        return len(part)
    failures.add(what, r.status_code, r.content, len(part))
    return 0


def fill(base: str, src: Source, facts: Facts, clients: int, failures: ingest.Failures) -> Fill:
    """The shared resources, then, once all are stored, the patients' (two transactions that both
    create one resource conflict: 409, retry; updates of it wait for each other), all timed."""
    start = time.perf_counter()
    stored = post_all(base, src.shared(), facts, clients, failures, start)
    stored += post_all(base, src.groups(), facts, clients, failures, start)
    return Fill(facts.entries, stored, time.perf_counter() - start, clients)


def post_all(
    base: str, groups: Iterator[list[Resource]], facts: Facts, clients: int, failures: ingest.Failures, start: float
) -> int:
    """Every group cut into 100-entry transactions, posted by ``clients`` threads from one bounded
    queue that a producer thread fills (memory stays flat at any size); facts gathered on the way.
    Returns the entries stored; logs progress every minute (rates since ``start``)."""
    work: queue.Queue[list[Resource] | None] = queue.Queue(maxsize=clients * 4)
    stored = [0] * clients
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for group in groups:
                for resource in group:
                    facts.add(resource)
                for part in ingest.chunks(group):
                    work.put(part)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            for _ in range(clients):
                work.put(None)

    def worker(index: int) -> None:
        with common.client(base) as http:
            while (part := work.get()) is not None:
                stored[index] += _post(http, part, failures)

    threads = [threading.Thread(target=produce), *(threading.Thread(target=worker, args=(i,)) for i in range(clients))]
    for t in threads:
        t.start()
    last = time.perf_counter()
    while alive := [t for t in threads if t.is_alive()]:
        alive[0].join(timeout=1.0)
        if (now := time.perf_counter()) - last >= 60:
            last = now
            _log(f"  ... {facts.entries:,} entries posted, {facts.entries / (now - start):,.0f}/s")
    if errors:
        raise errors[0]
    return sum(stored)


# ---------------------------------------------------------------- the clinician queries


@dataclass(frozen=True)
class Clinical:
    name: str
    example: str
    rtype: str
    params: Callable[[str], Params]
    expect: Callable[[Facts, str], list[float]]  # the matching resources' dates (count; newest first)
    entry_ok: Callable[[Resource], bool] | None = None  # every entry must pass
    entry_rule: str = ""
    sorted_desc: bool = False
    count: int = PAGE


def _has_code(code: str) -> Callable[[Resource], bool]:
    return lambda r: code in _codes(r.get("code"))


QUERIES: tuple[Clinical, ...] = (
    Clinical(
        "vitals",
        f"Observation?patient=P&category={VITAL_SIGNS}&date=ge{SINCE}&_sort=-date&_count=20",
        "Observation",
        lambda p: [
            ("patient", p),
            ("category", VITAL_SIGNS),
            ("date", f"ge{SINCE}"),
            ("_sort", "-date"),
            ("_count", "20"),
        ],
        lambda f, p: f.vitals.get(p, []),
        _is_vital,
        "category vital-signs",
        sorted_desc=True,
    ),
    Clinical(
        "code + sort",
        f"Observation?patient=P&code={CHOLESTEROL}&_sort=-date",
        "Observation",
        lambda p: [("patient", p), ("code", CHOLESTEROL), ("_sort", "-date")],
        lambda f, p: f.coded.get((p, CHOLESTEROL), []),
        _has_code(CHOLESTEROL),
        f"code {CHOLESTEROL}",
        sorted_desc=True,
    ),
    Clinical(
        "code",
        f"Observation?patient=P&code={HEIGHT}",
        "Observation",
        lambda p: [("patient", p), ("code", HEIGHT)],
        lambda f, p: f.coded.get((p, HEIGHT), []),
        _has_code(HEIGHT),
        f"code {HEIGHT}",
    ),
    Clinical(
        "active meds",
        "MedicationRequest?patient=P&status=active",
        "MedicationRequest",
        lambda p: [("patient", p), ("status", "active")],
        lambda f, p: [0.0] * f.active_meds[p],
        lambda r: r.get("status") == "active",
        "status active",
    ),
    Clinical(
        "patient's observations",
        "Observation?patient=P&_count=20",
        "Observation",
        lambda p: [("patient", p), ("_count", "20")],
        lambda f, p: [0.0] * f.observations[p],
    ),
)


def _matches(bundle: dict[str, Any]) -> list[Resource]:
    return [
        e.get("resource", {}) for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"
    ]


def _check(query: Clinical, facts: Facts, pid: str) -> search.Check:
    dates = sorted(query.expect(facts, pid), reverse=True)
    want = min(len(dates), query.count)

    def check(bundle: dict[str, Any]) -> str | None:
        got = _matches(bundle)
        if len(got) != want:
            return f"{len(got)} entries, expected {want}"
        if any(_patient_of(r) != pid for r in got):
            return "an entry of another patient"
        if query.entry_ok and not all(query.entry_ok(r) for r in got):
            return f"an entry without {query.entry_rule}"
        if query.sorted_desc and got:
            times = [_effective(r) or 0.0 for r in got]
            if times != sorted(times, reverse=True):
                return "not sorted by -date"
            if times[0] != dates[0]:
                return "the newest is not first"
        return None

    return check


def as_search_query(query: Clinical, facts: Facts, hard: list[str], everyone: list[str]) -> search.Query:
    """search.Query whose draws alternate between a hard patient and any patient."""
    turn = itertools.cycle((True, False))

    def draw(_pools: search.Pools, rng: random.Random) -> tuple[str, Params, search.Check]:
        pid = rng.choice(hard if next(turn) else everyone)
        return query.rtype, query.params(pid), _check(query, facts, pid)

    return search.Query(query.name, query.example, True, draw)


def run_mix(
    base: str, facts: Facts, n: int, budget: float, seed: int, progress: Callable[[search.QueryResult], None]
) -> list[search.QueryResult]:
    hard, everyone = facts.hard_patients(), sorted(facts.patients)
    results = []
    with common.client(base) as http:
        for index, clinical in enumerate(QUERIES):
            query = as_search_query(clinical, facts, hard, everyone)
            rng = random.Random(seed * 100 + 50 + index)
            result = search.run_query(http, query, search.Pools(), n, budget, rng, warmup=WARMUP)
            results.append(result)
            progress(result)
    return results


# ---------------------------------------------------------------- statistics and plans


def sqlite_stats(url: str) -> dict[str, Any]:
    """Whether ``sqlite_stat1`` exists, its rows, and the history sequence at the last analysis
    (``store_state``, written by the server's keeper) beside the current one."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None
        rows = conn.execute("SELECT COUNT(*) FROM sqlite_stat1").fetchone()[0] if exists else 0
        analyzed = conn.execute("SELECT value FROM store_state WHERE name = 'analyzed_seq'").fetchone()
        written = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM resource_history").fetchone()[0]
    finally:
        conn.close()
    return {
        "sqlite_stat1": exists,
        "stat1_rows": rows,
        "analyzed_seq": int(analyzed[0]) if analyzed else None,
        "max_seq": int(written),
    }


def statistics(backend: str, url: str) -> dict[str, Any]:
    return common.pg_table_stats(url) if backend == "postgresql" else sqlite_stats(url)


def describe_statistics(backend: str, stats: dict[str, Any]) -> str:
    """One line: who analysed what, and how stale it is."""
    if backend == "sqlite":
        if not stats["sqlite_stat1"]:
            return "no sqlite_stat1 (never analysed)"
        return (
            f"sqlite_stat1 present ({stats['stat1_rows']} rows); last analysis by the server at history seq "
            f"{stats['analyzed_seq']:,} of {stats['max_seq']:,}"
            if stats["analyzed_seq"] is not None
            else f"sqlite_stat1 present ({stats['stat1_rows']} rows), no analysis recorded by the server"
        )
    tables = stats.get("tables", {})
    keeper = [t for t, v in tables.items() if v["analyze_count"]]
    auto = [t for t, v in tables.items() if v["autoanalyze_count"]]
    never = [t for t, v in tables.items() if not v["analyzed"]]
    share, table = max(
        ((v["mod_since_analyze"] / max(v["live_rows"], 1), t) for t, v in tables.items()), default=(0, "")
    )
    return (
        f"{len(tables) - len(never)} of {len(tables)} tables analysed ({len(keeper)} by an ANALYZE command, i.e. the "
        f"server's keeper; {len(auto)} by autovacuum); without statistics: {', '.join(never) or 'none'}; "
        f"most changed since its last analysis: {table or '-'} ({share:.0%} of its rows); "
        f"database {stats['database_size']}"
    )


def explain_sqlite(url: str, rtype: str, params: Params, statements: int = 2) -> dict[str, Any]:
    """Run one search in-process (no HTTP) with its SQL recorded; EXPLAIN QUERY PLAN of the slowest."""
    from ketnoi.app import build_services, close_services, open_store
    from ketnoi.config import Settings
    from ketnoi.interactions.request import FhirRequest
    from ketnoi.interactions.router import handle
    from ketnoi.store.sqlstore import SqlSession

    recorded: list[tuple[float, str, Any]] = []
    original = SqlSession.execute

    def traced(self: Any, sql: str, args: Any = ()) -> Any:
        start = time.perf_counter()
        cursor = original(self, sql, args)
        recorded.append((time.perf_counter() - start, self._sql(sql), list(args)))
        return cursor

    store = open_store(url)
    services = build_services(Settings(database=url), store)
    SqlSession.execute = traced  # type: ignore[method-assign,assignment]
    runs: list[float] = []
    try:
        for _ in range(3):
            recorded.clear()
            start = time.perf_counter()
            response = handle(services, FhirRequest("GET", rtype, list(params)))
            runs.append(time.perf_counter() - start)
    finally:
        SqlSession.execute = original  # type: ignore[method-assign]
        close_services(services)
    out: dict[str, Any] = {
        "request": f"{rtype}?{'&'.join(f'{k}={v}' for k, v in params)}",
        "status": response.status,
        "in_process_runs_ms": [round(r * 1000, 2) for r in runs],
        "statements": len(recorded),
        "sql_ms": sum(r[0] for r in recorded) * 1000,
        "plans": [],
    }
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        for seconds, sql, args in sorted(recorded, key=lambda r: -r[0])[:statements]:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()
            depth: dict[int, int] = {0: 0}
            lines = []
            for node, parent, _unused, detail in rows:
                depth[node] = depth.get(parent, 0) + 1
                lines.append("  " * (depth[node] - 1) + detail)
            out["plans"].append(
                {"ms": seconds * 1000, "sql": sql, "params": [str(a) for a in args], "plan": "\n".join(lines)}
            )
    finally:
        conn.close()
    return out


def explain(backend: str, url: str, rtype: str, params: Params) -> dict[str, Any]:
    if backend == "postgresql":
        return search.explain(url, rtype, params)
    return explain_sqlite(url, rtype, params)


def format_explain(backend: str, item: dict[str, Any]) -> str:
    if "plans" not in item:
        return item.get("error", "")
    if backend == "postgresql":
        return search.format_explain(item)
    lines = [
        f"{item['request']}: in-process (no HTTP), 3 runs (ms): "
        f"{', '.join(f'{r:.1f}' for r in item['in_process_runs_ms'])}; run 3: {item['statements']} SQL "
        f"statements, {item['sql_ms']:.1f} ms in SQL (status {item['status']})"
    ]
    for plan in item["plans"]:
        lines += [
            f"-- {plan['ms']:.1f} ms in run 3: {plan['sql']}",
            f"-- params: {plan['params']}",
            "-- EXPLAIN QUERY PLAN:",
            plan["plan"],
            "",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------- one backend


def run_backend(
    backend: str,
    src: Source,
    admin: str | None,
    *,
    clients: int,
    n: int,
    budget: float,
    healthz_n: int,
    seed: int,
) -> dict[str, Any]:
    """Fill a fresh database over REST, measure the clinician mix at once, record the statistics.
    Returns what bench/run.py keeps under ``results.<backend>.rest``."""
    out: dict[str, Any] = {"source": src.name, "description": src.description, "n": n}
    facts, failures = Facts(), ingest.Failures()
    with common.database(backend, admin) as url:
        with common.server(url) as srv:
            _log(f"[{backend}] REST fill: {src.description}; 100-entry transactions, {clients} clients")
            result = fill(srv.base, src, facts, clients, failures)
            filled = time.perf_counter()
            out["stats_at_fill_end"] = statistics(backend, url)
            target = target_ms(facts.resources)
            out["fill"] = {**vars(result), "rate": result.rate, "resources": facts.resources}
            out["failures"] = {"count": failures.count, "resources": failures.resources, "examples": failures.examples}
            out["target_ms"] = target
            out["patients"] = len(facts.patients)
            out["hard_patients"] = len(facts.hard_patients())
            _log(
                f"  {result.rate:,.0f} resources/s ({result.stored:,} of {result.entries:,} entries stored in "
                f"{result.seconds:.1f} s; {facts.resources:,} resources, {len(facts.patients):,} patients; "
                f"{failures.count} failed requests)"
            )
            for example in failures.examples[:3]:
                _log(f"  failed: {example[:300]}")
            _log(f"  statistics at the end of the fill: {describe_statistics(backend, out['stats_at_fill_end'])}")
            _log(
                f"[{backend}] clinician queries, at once: {len(QUERIES)} x {n} after {WARMUP} warm-ups, patients "
                f"alternately from the {out['hard_patients']} with the most Observations and from all; "
                f"target p95 < {target:.0f} ms"
            )

            def progress(r: search.QueryResult) -> None:
                if r.status != "ok":
                    _log(f"  {r.name}: {r.status} {r.diagnostics[:160]}")
                    return
                _log(
                    f"  {r.name}: {common.fmt_pcts(common.percentiles(r.samples))} ms, n={len(r.samples)}, "
                    f"{r.check_failures} check failures"
                    + (f" (e.g. {r.check_examples[0]})" if r.check_examples else "")
                )

            out["first_query_after_fill_s"] = time.perf_counter() - filled
            results = run_mix(srv.base, facts, n, budget, seed, progress)
            out["search"] = [{**r.summary(), "target_ms": target} for r in results]
            out["healthz"] = common.percentiles(read.healthz(srv.base, healthz_n))
            out["stats_after_mix"] = statistics(backend, url)
            _log(
                f"  /healthz {common.fmt_pcts(out['healthz'])} ms; statistics after the mix: "
                f"{describe_statistics(backend, out['stats_after_mix'])}"
            )
            # a sanity check of the fill: what the server counts against what was posted
            out["server_counts"] = {t: ingest.count(srv.base, t) for t in ("Patient", "Observation")}
            out["posted_counts"] = {"Patient": len(facts.patients), "Observation": sum(facts.observations.values())}
        out["explain"] = plans(backend, url, out["search"], target)
    return out


def plans(backend: str, url: str, items: list[dict[str, Any]], target: float) -> list[dict[str, Any]]:
    """The plans of every clinician query, with the parameters of its slowest run (in-process, the
    server stopped; a few seconds in all). ``over_target`` marks those whose p95 missed the target;
    bench/run.py prints the plans of a query that missed it on any backend, on every backend."""
    out = []
    for item in items:
        if item["status"] != "ok" or not item["slowest"]:
            continue
        p95 = item["latency_ms"].get("p95", 0.0)
        slowest = item["slowest"]
        try:
            plan = explain(backend, url, slowest["type"], [tuple(p) for p in slowest["params"]])
        except Exception as exc:  # the plan is a bonus; the figures stand without it
            plan = {"request": item["name"], "error": repr(exc)}
            _log(f"[{backend}] plans of '{item['name']}' failed: {exc!r}")
        plan["query"], plan["p95_ms"], plan["over_target"] = item["name"], p95, p95 > target
        out.append(plan)
    _log(
        f"[{backend}] plans of the clinician queries: {len(out)} (over the target: "
        f"{', '.join(p['query'] for p in out if p['over_target']) or 'none'})"
    )
    return out


if __name__ == "__main__":
    import run

    sys.exit(run.main(["--only", "rest", *sys.argv[1:]]))
