"""Search latency over HTTP for a fixed mix of queries, parameters drawn from the loaded data.

The mix (``QUERIES``): each query is run ``n`` times (default 200, sequential, one client, after
5 warm-up runs) with parameters drawn at random (fixed seed) from the synthetic NDJSON that was
loaded, and each answer gets a light correctness check (e.g. an identifier lookup returns exactly
the patients that carry that identifier). A query the server answers with an error status is
reported as ``unsupported (HTTP 400)`` (its status), not timed, and does not stop the run.
A query that is still slow stops after ``budget`` seconds (at least 5 runs); its ``n`` says so.

``explain``: runs one query in-process (no HTTP) on PostgreSQL with every SQL statement recorded,
then ``EXPLAIN (ANALYZE, BUFFERS)`` of its slowest statements with the same parameters.

Run alone: ``.venv/bin/python bench/search.py --scale 500``.
"""

from __future__ import annotations

import random
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
HEART_RATE = "http://loinc.org|8867-4"
SINCE = "2024-01-01"


def plain(text: str) -> str:
    """Lower case without Vietnamese diacritics ('Nguyễn Văn' -> 'nguyen van')."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).lower()


@dataclass
class Pools:
    """What the parameters are drawn from, with the expected answers for the checks."""

    patients: list[str] = field(default_factory=list)
    by_cccd: dict[str, int] = field(default_factory=dict)  # value -> patients carrying it
    cccds: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # 'nguyen van' (family + first given, plain)
    cities: list[str] = field(default_factory=list)  # of patients with observations
    with_obs: list[str] = field(default_factory=list)  # patient ids with >= 1 Observation
    hr_since: dict[str, int] = field(default_factory=dict)  # patient -> heart rates on/after SINCE
    with_enc: dict[str, int] = field(default_factory=dict)  # patient -> Encounters
    obs_codes: list[str] = field(default_factory=list)  # one per Observation (frequency-weighted)
    code_counts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_folder(cls, folder: Path) -> Pools:
        pools = cls()
        cccd: Counter[str] = Counter()
        city_of: dict[str, str] = {}
        for line in (folder / "Patient.ndjson").open("rb"):
            p = orjson.loads(line)
            pools.patients.append(p["id"])
            for ident in p.get("identifier", []):
                if ident.get("system") == CCCD:
                    cccd[ident["value"]] += 1
            name = (p.get("name") or [{}])[0]
            words = (name.get("text") or " ".join([name.get("family", ""), *name.get("given", [])])).split()
            if len(words) >= 2:  # the first two words as written ('Nguyễn Văn' -> 'nguyen van')
                pools.names.append(plain(" ".join(words[:2])))
            city = (p.get("address") or [{}])[0].get("city")
            if city:
                city_of[p["id"]] = city
        pools.by_cccd, pools.cccds = dict(cccd), sorted(cccd)
        obs: Counter[str] = Counter()
        for line in (folder / "Observation.ndjson").open("rb"):
            o = orjson.loads(line)
            subject = o.get("subject", {}).get("reference", "").removeprefix("Patient/")
            codings = o.get("code", {}).get("coding", [])
            code = f"{codings[0].get('system')}|{codings[0].get('code')}" if codings else ""
            obs[subject] += 1
            pools.obs_codes.append(code)
            if code == HEART_RATE and (o.get("effectiveDateTime") or "")[:10] >= SINCE:
                pools.hr_since[subject] = pools.hr_since.get(subject, 0) + 1
        pools.with_obs = sorted(obs)
        pools.cities = [city_of[p] for p in pools.with_obs if p in city_of]  # cities with observations
        pools.code_counts = Counter(pools.obs_codes)
        enc: Counter[str] = Counter()
        for line in (folder / "Encounter.ndjson").open("rb"):
            e = orjson.loads(line)
            enc[e.get("subject", {}).get("reference", "").removeprefix("Patient/")] += 1
        pools.with_enc = dict(enc)
        return pools


Params = list[tuple[str, str]]
Check = Callable[[dict[str, Any]], str | None]  # the Bundle -> None when fine, else what is wrong


@dataclass(frozen=True)
class Query:
    name: str
    example: str  # the shape, for the table
    goal: bool  # single-parameter or patient-scoped: the p95 < 50 ms goal (PostgreSQL, 1M)
    draw: Callable[[Pools, random.Random], tuple[str, Params, Check]]


def _entries(bundle: dict[str, Any], mode: str | None = None) -> list[dict[str, Any]]:
    out = []
    for e in bundle.get("entry", []):
        if mode is None or e.get("search", {}).get("mode", "match") == mode:
            out.append(e.get("resource", {}))
    return out


def _identifier(pools: Pools, rng: random.Random) -> tuple[str, Params, Check]:
    value = rng.choice(pools.cccds)
    expected = pools.by_cccd[value]

    def check(b: dict[str, Any]) -> str | None:
        got = len(_entries(b, "match"))
        return None if got == expected else f"{got} patients, expected {expected}"

    return "Patient", [("identifier", f"{CCCD}|{value}")], check


def _name(pools: Pools, rng: random.Random) -> tuple[str, Params, Check]:
    def check(b: dict[str, Any]) -> str | None:
        return None if _entries(b, "match") else "no patient"

    return "Patient", [("name", rng.choice(pools.names))], check


def _obs_code_date(pools: Pools, rng: random.Random) -> tuple[str, Params, Check]:
    pid = rng.choice(sorted(pools.hr_since)) if pools.hr_since else rng.choice(pools.with_obs)
    expected = pools.hr_since.get(pid, 0)

    def check(b: dict[str, Any]) -> str | None:
        got = _entries(b, "match")
        if any(o.get("subject", {}).get("reference") != f"Patient/{pid}" for o in got):
            return "an observation of another subject"
        paged = any(link.get("relation") == "next" for link in b.get("link", []))
        # an effective time near midnight may fall on either side of SINCE once zones differ: +-2
        if not got or (not paged and abs(len(got) - expected) > 2):
            return f"{len(got)} observations, expected about {expected}"
        return None

    return "Observation", [("subject", f"Patient/{pid}"), ("code", HEART_RATE), ("date", f"ge{SINCE}")], check


def _include(pools: Pools, rng: random.Random) -> tuple[str, Params, Check]:
    pid = rng.choice(pools.with_obs)

    def check(b: dict[str, Any]) -> str | None:
        if not _entries(b, "match"):
            return "no observation"
        return None if any(r.get("id") == pid for r in _entries(b, "include")) else "patient not included"

    return "Observation", [("subject", f"Patient/{pid}"), ("_include", "Observation:subject")], check


def _revinclude(pools: Pools, rng: random.Random) -> tuple[str, Params, Check]:
    pid = rng.choice(sorted(pools.with_enc))

    def check(b: dict[str, Any]) -> str | None:
        if [r.get("id") for r in _entries(b, "match")] != [pid]:
            return "not exactly the patient"
        return None if _entries(b, "include") else "no encounter included"

    return "Patient", [("_id", pid), ("_revinclude", "Encounter:subject")], check


def _chain(pools: Pools, rng: random.Random) -> tuple[str, Params, Check]:
    def check(b: dict[str, Any]) -> str | None:
        return None if _entries(b, "match") else "no observation"

    return "Observation", [("subject:Patient.address-city", rng.choice(pools.cities))], check


def _has(pools: Pools, rng: random.Random) -> tuple[str, Params, Check]:
    def check(b: dict[str, Any]) -> str | None:
        got = _entries(b, "match")
        return None if got and all(r.get("resourceType") == "Patient" for r in got) else "no patient"

    return "Patient", [("_has:Observation:subject:code", rng.choice(pools.obs_codes))], check


def _sort(pools: Pools, rng: random.Random) -> tuple[str, Params, Check]:
    pid = rng.choice(pools.with_obs)

    def check(b: dict[str, Any]) -> str | None:
        got = _entries(b, "match")
        dates = [o.get("effectiveDateTime") or (o.get("effectivePeriod") or {}).get("start") or "" for o in got]
        if not got or len(got) > 20:
            return f"{len(got)} entries"
        # same-zone ISO strings: string order is time order
        return None if dates == sorted(dates, reverse=True) else "not sorted by -date"

    return "Observation", [("subject", f"Patient/{pid}"), ("_sort", "-date"), ("_count", "20")], check


def _total(pools: Pools, rng: random.Random) -> tuple[str, Params, Check]:
    code = rng.choice([c for c, _ in pools.code_counts.most_common(3)])
    expected = pools.code_counts[code]

    def check(b: dict[str, Any]) -> str | None:
        return None if b.get("total") == expected else f"total {b.get('total')}, expected {expected}"

    return "Observation", [("code", code), ("_total", "accurate"), ("_count", "1")], check


QUERIES: tuple[Query, ...] = (
    Query("patient by identifier", "Patient?identifier=<cccd system>|<value>", True, _identifier),
    Query("patient by name, no diacritics", "Patient?name=nguyen van", True, _name),
    Query(
        "observations: patient + code + date",
        f"Observation?subject=Patient/x&code={HEART_RATE}&date=ge{SINCE}",
        True,
        _obs_code_date,
    ),
    Query("_include of the patient", "Observation?subject=Patient/x&_include=Observation:subject", True, _include),
    Query("_revinclude of encounters", "Patient?_id=x&_revinclude=Encounter:subject", True, _revinclude),
    Query("chain, two levels", "Observation?subject:Patient.address-city=<city>", False, _chain),
    Query("_has", "Patient?_has:Observation:subject:code=<code>", False, _has),
    Query("_sort=-date&_count=20, one patient", "Observation?subject=Patient/x&_sort=-date&_count=20", True, _sort),
    Query("_total=accurate, large result", "Observation?code=<frequent code>&_total=accurate&_count=1", False, _total),
)


@dataclass
class QueryResult:
    name: str
    example: str
    goal: bool
    status: str = "ok"  # or "unsupported (HTTP 400)", "error (HTTP 500)"
    samples: list[float] = field(default_factory=list)
    check_failures: int = 0
    check_examples: list[str] = field(default_factory=list)
    entries: list[int] = field(default_factory=list)
    slowest: tuple[float, str, Params] | None = None  # (seconds, type, params) of the slowest run
    diagnostics: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "example": self.example,
            "goal": self.goal,
            "status": self.status,
            "latency_ms": common.percentiles(self.samples),
            "check_failures": self.check_failures,
            "check_examples": self.check_examples,
            "mean_entries": sum(self.entries) / len(self.entries) if self.entries else None,
            "diagnostics": self.diagnostics,
            "slowest": None
            if not self.slowest
            else {"ms": self.slowest[0] * 1000, "type": self.slowest[1], "params": self.slowest[2]},
        }


def _diagnostics(r: Any) -> str:
    try:
        return "; ".join(str(i.get("diagnostics", "")) for i in r.json().get("issue", []))[:300]
    except Exception:  # not an OperationOutcome
        return str(r.text)[:300]


def run_query(
    http: Any, query: Query, pools: Pools, n: int, budget: float, rng: random.Random, warmup: int = 5
) -> QueryResult:
    result = QueryResult(query.name, query.example, query.goal)
    for _ in range(warmup):
        rtype, params, _check = query.draw(pools, rng)
        r = http.get(f"/{rtype}", params=params)
        if r.status_code >= 400:
            kind = "unsupported" if r.status_code < 500 else "error"
            result.status = f"{kind} (HTTP {r.status_code})"
            result.diagnostics = _diagnostics(r)
            return result
    started = time.perf_counter()
    for i in range(n):
        if i >= 5 and time.perf_counter() - started > budget:
            break
        rtype, params, check = query.draw(pools, rng)
        start = time.perf_counter()
        r = http.get(f"/{rtype}", params=params)
        elapsed = time.perf_counter() - start
        if r.status_code >= 400:
            result.check_failures += 1
            if len(result.check_examples) < 3:
                result.check_examples.append(f"HTTP {r.status_code}: {_diagnostics(r)}")
            continue
        result.samples.append(elapsed)
        if result.slowest is None or elapsed > result.slowest[0]:
            result.slowest = (elapsed, rtype, params)
        bundle = r.json()
        result.entries.append(len(bundle.get("entry", [])))
        problem = check(bundle)
        if problem:
            result.check_failures += 1
            if len(result.check_examples) < 3:
                result.check_examples.append(f"{rtype}?{'&'.join(f'{k}={v}' for k, v in params)}: {problem}")
    return result


def run_mix(
    base: str, pools: Pools, n: int, budget: float, seed: int, progress: Callable[[QueryResult], None] | None = None
) -> list[QueryResult]:
    results = []
    with common.client(base) as http:
        for index, query in enumerate(QUERIES):
            result = run_query(http, query, pools, n, budget, random.Random(seed * 100 + index))
            results.append(result)
            if progress:
                progress(result)
    return results


# ---------------------------------------------------------------- EXPLAIN on PostgreSQL


def explain(url: str, rtype: str, params: Params, statements: int = 2) -> dict[str, Any]:
    """Run one search in-process with its SQL recorded; EXPLAIN (ANALYZE, BUFFERS) the slowest ones."""
    import psycopg

    from ketnoi.app import build_services, close_services
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

    # A pool of one connection, as the server's is after a few requests: psycopg prepares a
    # statement on its 6th execution, and PostgreSQL may switch a prepared statement to a generic
    # plan (planned without the parameter values) after 5 more. Run 1 is planned for its values;
    # run 12 gets whatever the server's long-lived connections get.
    from ketnoi.store.postgres import PostgresStore

    store = PostgresStore(url, min_size=1, max_size=1)
    services = build_services(Settings(database=url), store)
    SqlSession.execute = traced  # type: ignore[method-assign,assignment]
    runs: list[float] = []
    try:
        for _ in range(12):
            recorded.clear()
            start = time.perf_counter()
            response = handle(services, FhirRequest("GET", rtype, list(params)))
            runs.append(time.perf_counter() - start)
        total = runs[-1]
    finally:
        SqlSession.execute = original  # type: ignore[method-assign]
        close_services(services)
    out: dict[str, Any] = {
        "request": f"{rtype}?{'&'.join(f'{k}={v}' for k, v in params)}",
        "status": response.status,
        "in_process_ms": total * 1000,
        "in_process_runs_ms": [round(r * 1000, 2) for r in runs],
        "statements": len(recorded),
        "sql_ms": sum(r[0] for r in recorded) * 1000,
        "plans": [],
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for seconds, sql, args in sorted(recorded, key=lambda r: -r[0])[:statements]:
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", args))
            out["plans"].append(
                {
                    "ms": seconds * 1000,
                    "sql": sql,
                    "params": [str(a) for a in args],
                    "plan": plan,
                    "generic_plan": _generic_plan(conn, sql, args),
                }
            )
    return out


def _generic_plan(conn: Any, sql: str, args: list[Any]) -> str:
    """The same statement PREPAREd and EXPLAIN ANALYZE EXECUTEd with plan_cache_mode=force_generic_plan."""
    from psycopg import sql as pgsql

    parts = sql.split("%s")
    numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
    literals = ", ".join(pgsql.Literal(a).as_string(conn) for a in args)
    try:
        conn.execute(f"PREPARE ketnoi_bench_q AS {numbered}", prepare=False)
        conn.execute("SET plan_cache_mode = force_generic_plan")
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE ketnoi_bench_q({literals})", prepare=False)
        return "\n".join(row[0] for row in rows)
    except Exception as exc:  # the custom plan above stands without it
        return f"(generic plan not available: {exc!r})"
    finally:
        conn.execute("RESET plan_cache_mode")
        conn.execute("DEALLOCATE ALL")


def format_explain(item: dict[str, Any]) -> str:
    lines = [
        f"{item['request']}: in-process (no HTTP), 12 runs on one connection (ms): "
        f"{', '.join(f'{r:.1f}' for r in item['in_process_runs_ms'])}; run 12: {item['statements']} SQL "
        f"statements, {item['sql_ms']:.1f} ms in SQL (status {item['status']})"
    ]
    for plan in item["plans"]:
        lines += [
            f"-- {plan['ms']:.1f} ms in run 12: {plan['sql']}",
            f"-- params: {plan['params']}",
            "-- EXPLAIN (ANALYZE, BUFFERS) with the values (custom plan):",
            plan["plan"],
            "-- the same, PREPAREd, plan_cache_mode=force_generic_plan (what a prepared statement may switch to):",
            plan.get("generic_plan", ""),
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    import run

    sys.exit(run.main(["--only", "search", *sys.argv[1:]]))
