"""The cost of authorization: the same requests to ``ketnoi serve --auth off`` and ``--auth on``.

Per backend, one fresh database loaded with the ``--scale`` data as the read step loads it
(``ketnoi load``; on PostgreSQL then ``ANALYZE``, not timed, unless ``--no-analyze``). Then
``--auth-runs`` rounds; each round serves that database twice, one server process after the
other, ``--auth off`` and ``--auth on`` (the order alternates between rounds: off/on, on/off, ...,
so that drift on a busy machine hits both sides alike), and runs the same series against each:

1. reads: ``--reads`` sequential ``GET /fhir/{Type}/{id}`` over one keep-alive connection
   (read.py's ``http_reads``: ids drawn with the same seed on both sides, 20 warm-up reads):
   p50/p95 latency and reads/s (reads over the sum of their latencies);
2. reads, ``max(--clients)`` concurrent clients: ``--reads`` reads shared between them, one
   keep-alive connection each: reads/s over the wall time;
3. transaction Bundles: ``--auth-bundles`` Bundles of 100 ``PUT`` entries (ingest.py's
   ``transaction``), one client, sequential, after one warm-up Bundle: resources/s. The resources
   are clinical ones of the loaded data (no Patients and no shared Organizations, Practitioners,
   Locations) under fresh ids, new for every round and side, so every Bundle creates new
   resources; their references point at the loaded resources;
4. one common search, ``Observation?patient=P&_count=20``: ``--search-n`` requests after 5
   warm-ups, P drawn among the patients with Observations: p50/p95.

With auth on every request carries a real token, made as an operator makes one: a backend client
registered with ``ketnoi clients add --jwks FILE`` (a public P-256 JWK Set made here), then
``ketnoi token issue --client ID --scope "system/*.cruds" --lifetime 3600 --audience <the
server's FHIR base>`` for each auth-on server (its port changes), issued again before a series
when it is older than 50 minutes. Every answer is checked (reads: 200 and the resource asked
for; Bundles: 200 and a 200/201 for every entry; search: 200, at most 20 entries, at least as
many as the loaded data gives the patient up to 20, all of that patient); each auth-on server must
also refuse a request without a token (401), and each auth-off server must answer one (200). A
series with any failed request or check has no figure (a 401 would make "auth on" look fast).

After the rounds, **paired reads**: both servers up at once on the same database, ``--reads`` ids
each read from both back to back (which goes first alternates), so that whatever else the machine
does hits both sides alike: the figure to trust on a busy machine.

The report: per series the median over the rounds (per percentile for latencies), auth off beside
auth on and the cost (lower throughput, higher latency), against the target: at most 10 % lower
throughput for reads and Bundles; then the paired reads. Then, in-process with the last token,
what the bearer check alone costs (``ketnoi.api.bearer.Authenticator.context``: the first call,
which checks the signature, and the cached calls), and a cProfile of the cached calls.

``bench/run.py --only auth`` runs this step (``--scale``, ``--reads``, ``--search-n``,
``--clients``, ``--auth-runs``, ``--auth-bundles``); run alone, ``bench/auth.py`` is the same.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import pstats
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import ingest
import load
import read

SIDES = ("off", "on")
SCOPE = "system/*.cruds"
LIFETIME = 3600  # seconds: the longest token ketnoi issues
REISSUE_AFTER = 3000  # seconds: a token older than this is replaced before the next series
TARGET = 0.10  # at most 10 % lower throughput with auth on (reads, Bundles)
SHARED = frozenset({"Patient", "Organization", "Practitioner", "PractitionerRole", "Location"})
SEARCH_WARMUP = 5
PAGE = 20
ID_NAMESPACE = uuid.UUID("0b6c1f3e-8d0a-4f57-a2a4-5f2f3f7d9a11")
SERIES = ("reads", "reads_concurrent", "bundles", "search")

Resource = dict[str, Any]


def _log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- a real token, as an operator gets one


def _ketnoi(*args: str) -> str:
    """``python -m ketnoi ARGS`` (the project's interpreter); its stdout, or RuntimeError with stderr."""
    proc = subprocess.run(
        [common.PYTHON, "-m", "ketnoi", *args], cwd=common.ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ketnoi {' '.join(args[:2])} exited {proc.returncode}: {proc.stderr.strip()[-600:]}")
    return proc.stdout


def register_client(url: str) -> str:
    """``ketnoi clients add`` of a backend client allowed ``system/*.cruds``, with a public P-256 JWK
    Set made here (its private key is never used: the tokens come from ``ketnoi token issue``)."""
    from joserfc.jwk import ECKey  # a dependency of ketnoi, in the same virtual environment

    key = ECKey.generate_key("P-256")
    jwk = {**key.as_dict(private=False), "kid": key.thumbprint(), "alg": "ES256", "use": "sig"}
    with tempfile.TemporaryDirectory(prefix="ketnoi-bench-jwks-") as tmp:
        path = Path(tmp) / "jwks.json"
        path.write_text(json.dumps({"keys": [jwk]}))
        out = _ketnoi(
            "clients", "add", "--database", url, "--name", "bench auth", "--scope", SCOPE, "--jwks", str(path)
        )
    match = re.search(r"client_id: (\S+)", out)
    if not match:
        raise RuntimeError(f"ketnoi clients add printed no client_id: {out[-300:]}")
    return match.group(1)


@dataclass
class Token:
    """``ketnoi token issue`` for one server (its FHIR base is the audience), renewed when old."""

    database: str
    client_id: str
    audience: str
    value: str = ""
    issued: float = float("-inf")

    def headers(self) -> dict[str, str]:
        if time.monotonic() - self.issued > REISSUE_AFTER:
            out = _ketnoi(
                "token",
                "issue",
                "--database",
                self.database,
                "--client",
                self.client_id,
                "--scope",
                SCOPE,
                "--lifetime",
                str(LIFETIME),
                "--audience",
                self.audience,
            )
            self.value, self.issued = out.strip().splitlines()[-1], time.monotonic()
        return {"authorization": f"Bearer {self.value}"}


# ---------------------------------------------------------------- what the series use


@dataclass
class Material:
    keys: list[str]  # every loaded Type/id (reads)
    clinical: list[Resource]  # the resources the Bundles send, under fresh ids each time
    observations: dict[str, int]  # patient id -> Observations loaded (the search's check)
    patients: list[str] = field(default_factory=list)  # with >= 1 Observation (the search's draws)

    @classmethod
    def of(cls, rows: list[tuple[str, str]], folder: Path, bundles: int, seed: int) -> Material:
        rng = random.Random(seed)
        clinical_rows = [line for key, line in rows if key.split("/", 1)[0] not in SHARED]
        picked = rng.sample(clinical_rows, min(len(clinical_rows), (bundles + 1) * ingest.CHUNK))
        counts: Counter[str] = Counter()
        with (folder / "Observation.ndjson").open("rb") as lines:
            for line in lines:
                reference = orjson.loads(line).get("subject", {}).get("reference", "")
                counts[reference.removeprefix("Patient/")] += 1
        return cls(
            [key for key, _ in rows],
            [orjson.loads(line) for line in picked],
            dict(counts),
            sorted(counts),
        )


def fresh_bundles(resources: list[Resource], tag: str) -> list[tuple[bytes, int]]:
    """100-entry transactions of PUTs of ``resources`` at new ids (uuid5 of ``tag`` and the position)."""
    renamed = [{**r, "id": str(uuid.uuid5(ID_NAMESPACE, f"{tag}/{i}"))} for i, r in enumerate(resources)]
    return [(ingest.transaction(part), len(part)) for part in ingest.chunks(renamed)]


# ---------------------------------------------------------------- the series


def concurrent_reads(
    base: str,
    keys: list[str],
    n: int,
    clients: int,
    rng: random.Random,
    headers: dict[str, str],
    failures: ingest.Failures,
) -> tuple[float, int]:
    """n reads shared by ``clients`` threads, one keep-alive connection each; (reads/s, failed)."""
    picks = [keys[rng.randrange(len(keys))] for _ in range(n)]
    parts = [picks[i::clients] for i in range(clients)]
    failed = [0] * clients
    errors: list[BaseException] = []
    ready = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        try:
            with common.client(base) as http:
                http.headers.update(headers)
                for key in parts[index][:5]:  # warm-up: the connection, the server's caches
                    http.get(f"/{key}")
                ready.wait()
                for key in parts[index]:
                    r = http.get(f"/{key}")
                    if not read.read_ok(r, key):
                        failed[index] += 1
                        failures.add(f"GET /fhir/{key}", r.status_code, r.content, 1)
        except BaseException as exc:  # reported below
            errors.append(exc)
            ready.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a worker failed: raised below
        ready.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return n / elapsed, sum(failed)


def _bundle_ok(content: bytes, entries: int) -> bool:
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False
    items = answer.get("entry", []) if isinstance(answer, dict) else []
    return len(items) == entries and all(
        str(e.get("response", {}).get("status", "")).split(" ", 1)[0] in ("200", "201") for e in items
    )


def post_bundles(
    base: str, bundles: list[tuple[bytes, int]], headers: dict[str, str], failures: ingest.Failures
) -> tuple[float, int, int]:
    """The first Bundle as a warm-up, the others timed, one client; (resources/s, stored, failed)."""
    with common.client(base) as http:
        http.headers.update(headers)
        warm = http.post("", content=bundles[0][0])
        start = time.perf_counter()
        answers = [(http.post("", content=body), size) for body, size in bundles[1:]]
        elapsed = time.perf_counter() - start
    failed = stored = 0
    for index, (r, size) in enumerate([(warm, bundles[0][1]), *answers]):  # checked after the clock stopped
        if r.status_code == 200 and _bundle_ok(r.content, size):
            stored += size if index else 0
        else:
            failed += 1
            failures.add(f"POST /fhir transaction of {size} PUT entries", r.status_code, r.content, size)
    return stored / elapsed, stored, failed


def searches(
    base: str, material: Material, n: int, rng: random.Random, headers: dict[str, str], failures: ingest.Failures
) -> tuple[list[float], int]:
    """n ``GET Observation?patient=P&_count=20``, checked; (latencies in s, failed)."""
    picks = [material.patients[rng.randrange(len(material.patients))] for _ in range(n + SEARCH_WARMUP)]
    samples, failed = [], 0
    with common.client(base) as http:
        http.headers.update(headers)
        for index, patient in enumerate(picks):
            params = {"patient": patient, "_count": str(PAGE)}
            start = time.perf_counter()
            r = http.get("/Observation", params=params)
            if index >= SEARCH_WARMUP:
                samples.append(time.perf_counter() - start)
            problem = _search_problem(r, patient, material.observations.get(patient, 0))
            if problem and index >= SEARCH_WARMUP:
                failed += 1
                failures.add(
                    f"GET /fhir/Observation?patient={patient}&_count={PAGE}: {problem}", r.status_code, r.content, 0
                )
    return samples, failed


def _search_problem(r: httpx.Response, patient: str, loaded: int) -> str | None:
    if r.status_code != 200:
        return "status"
    try:
        bundle = orjson.loads(r.content)
    except orjson.JSONDecodeError:
        return "not JSON"
    found = [e.get("resource", {}) for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]
    # The Bundles of this step add Observations to some patients: at least what was loaded, at most a page.
    if not min(loaded, PAGE) <= len(found) <= PAGE:
        return f"{len(found)} entries, expected {min(loaded, PAGE)} to {PAGE}"
    if any(o.get("subject", {}).get("reference") != f"Patient/{patient}" for o in found):
        return "an Observation of another patient"
    return None


def probe(base: str, key: str, side: str, failures: ingest.Failures) -> int:
    """Auth on: a request without a token must be refused (401); auth off: answered (200). The status."""
    with common.client(base) as http:
        r = http.get(f"/{key}")
    expected = 401 if side == "on" else 200
    if r.status_code != expected:
        failures.add(f"auth {side}: GET /fhir/{key} without a token, expected {expected}", r.status_code, r.content, 0)
    return r.status_code


def measure(
    base: str,
    side: str,
    material: Material,
    token: Token | None,
    *,
    reads: int,
    clients: int,
    search_n: int,
    tag: str,
    seed: int,
    failures: ingest.Failures,
) -> dict[str, Any]:
    """Every series against one server; the same draws (seed) whichever side it is."""

    def headers() -> dict[str, str]:
        return token.headers() if token is not None else {}

    out: dict[str, Any] = {"unauthenticated_status": probe(base, material.keys[0], side, failures)}
    samples, failed = read.http_reads(base, material.keys, reads, random.Random(seed), headers())
    if failed:  # http_reads only counts: one more read for an example of what the server answers
        with common.client(base) as http:
            r = http.get(f"/{material.keys[0]}", headers=headers())
        failures.add(
            f"auth {side}: {failed} of {reads} reads failed; e.g. GET /fhir/{material.keys[0]}",
            r.status_code,
            r.content,
            0,
        )
    out["reads"] = {**common.percentiles(samples), "rate": len(samples) / sum(samples), "failed": failed}
    rate, failed = concurrent_reads(base, material.keys, reads, clients, random.Random(seed + 1), headers(), failures)
    out["reads_concurrent"] = {"rate": rate, "clients": clients, "n": reads, "failed": failed}
    rate, stored, failed = post_bundles(base, fresh_bundles(material.clinical, tag), headers(), failures)
    out["bundles"] = {"rate": rate, "stored": stored, "failed": failed}
    samples, failed = searches(base, material, search_n, random.Random(seed + 2), headers(), failures)
    out["search"] = {**common.percentiles(samples), "failed": failed}
    return out


def paired_reads(
    off: str, on: str, keys: list[str], n: int, rng: random.Random, headers: dict[str, str], failures: ingest.Failures
) -> dict[str, Any]:
    """Both servers at once: n reads of the same ids, each read once from each server, back to back
    (which goes first alternates), so that whatever the machine does hits both sides alike. Latency
    percentiles and reads/s (reads over the sum of their latencies) per side, the median of the
    per-read differences (on minus off, ms), and the failures."""
    picks = [keys[rng.randrange(len(keys))] for _ in range(n)]
    samples: dict[str, list[float]] = {"off": [], "on": []}
    failed = 0
    with common.client(off) as open_http, common.client(on) as token_http:
        token_http.headers.update(headers)
        sides = [("off", open_http), ("on", token_http)]
        for key in picks[:20]:  # warm-up
            for _, http in sides:
                http.get(f"/{key}")
        for index, key in enumerate(picks):
            for side, http in sides if index % 2 == 0 else sides[::-1]:
                start = time.perf_counter()
                r = http.get(f"/{key}")
                samples[side].append(time.perf_counter() - start)
                if not read.read_ok(r, key):
                    failed += 1
                    failures.add(f"paired reads, auth {side}: GET /fhir/{key}", r.status_code, r.content, 1)
    return {
        **{side: {**common.percentiles(s), "rate": len(s) / sum(s)} for side, s in samples.items()},
        "difference_ms": common.median([b - a for a, b in zip(samples["off"], samples["on"], strict=True)]) * 1000,
        "failed": failed,
    }


# ---------------------------------------------------------------- the bearer check alone, in-process


def bearer_check(url: str, token: Token, calls: int = 2000) -> dict[str, Any]:
    """``Authenticator.context`` as the server calls it for each request, on this database and token:
    the first call (signature checked, ring read), then ``calls`` cached ones timed, then profiled."""
    from ketnoi.api.bearer import Authenticator
    from ketnoi.app import open_store
    from ketnoi.config import Settings
    from ketnoi.interactions.context import RequestContext
    from ketnoi.security.grants import Revocations
    from ketnoi.security.keystore import KeyStore

    authorization = token.headers()["authorization"]
    store = open_store(url)
    try:
        settings = Settings(database=url, base_url=token.audience)
        authenticator = Authenticator(settings, KeyStore(store), Revocations(store))
        base = RequestContext(source="rest", remote_addr="127.0.0.1")
        start = time.perf_counter()
        context = authenticator.context(authorization, base)
        first = time.perf_counter() - start
        if context.scopes is None or not context.authenticated:
            raise RuntimeError("the bearer check gave no scopes")
        start = time.perf_counter()
        for _ in range(calls):
            authenticator.context(authorization, base)
        cached = (time.perf_counter() - start) / calls
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            authenticator.context(authorization, base)
        profiler.disable()
    finally:
        store.close()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(12)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    top = sorted(raw.items(), key=lambda item: -item[1][3])
    functions = [
        (f"{Path(file).parent.name}/{Path(file).name}:{fn}" if file.endswith(".py") else fn, cumulative / calls * 1e6)
        for (file, _line, fn), (_cc, _nc, _tt, cumulative, _callers) in top
        if "bench/auth.py" not in file and "profiler" not in fn
    ][:8]
    return {
        "first_ms": first * 1000,
        "cached_us": cached * 1e6,
        "calls": calls,
        "profile": text.getvalue(),
        "top_us_per_call": functions,  # (function, cumulative µs per request, under cProfile)
    }


# ---------------------------------------------------------------- one backend


def run_backend(
    backend: str,
    admin: str | None,
    folder: Path,
    rows: list[tuple[str, str]],
    *,
    runs: int,
    reads: int,
    clients: int,
    bundles: int,
    search_n: int,
    seed: int,
    analyze: bool = True,
) -> dict[str, Any]:
    """Load a fresh database, then ``runs`` rounds of auth off and on; what bench/run.py keeps under
    ``results.<backend>.auth``."""
    material = Material.of(rows, folder, bundles, seed)
    failures = ingest.Failures()
    out: dict[str, Any] = {
        "runs": runs,
        "reads": reads,
        "clients": clients,
        "bundles": bundles,
        "search_n": search_n,
        "scope": SCOPE,
        "rounds": [],
    }
    with common.database(backend, admin) as url:
        _log(f"[{backend}] auth: ketnoi load of {folder} (not timed)")
        loaded = load.ketnoi_load(url, folder)
        out["loaded"] = loaded.resources
        if backend == "postgresql" and analyze:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
        client_id = register_client(url)
        _log(
            f"[{backend}] auth: {runs} rounds of auth off and on, {loaded.resources:,} resources; backend client "
            f"{client_id[:8]}..., scope {SCOPE}; {reads} reads, {reads} reads by {clients} clients, "
            f"{bundles} Bundles of {ingest.CHUNK}, {search_n} searches per side"
        )
        for index in range(runs):
            order = SIDES if index % 2 == 0 else SIDES[::-1]
            round_: dict[str, Any] = {"order": list(order)}
            for side in order:
                with common.server(url, auth=side) as srv:
                    token = Token(url, client_id, srv.base) if side == "on" else None
                    round_[side] = measure(
                        srv.base,
                        side,
                        material,
                        token,
                        reads=reads,
                        clients=clients,
                        search_n=search_n,
                        tag=f"{index}-{side}",
                        seed=seed + 10 * index,
                        failures=failures,
                    )
                _log(f"  round {index + 1}, auth {side}: {_line(round_[side])}")
            out["rounds"].append(round_)
        if runs:
            _log(f"[{backend}] auth: paired reads, both servers at once, {reads} reads each, alternating")
            with common.server(url, auth="off") as off, common.server(url, auth="on") as on:
                token = Token(url, client_id, on.base)
                out["paired"] = paired_reads(
                    off.base, on.base, material.keys, reads, random.Random(seed + 3), token.headers(), failures
                )
                out["paired"]["unauthenticated_status"] = probe(on.base, material.keys[0], "on", failures)
            paired = out["paired"]
            _log(
                f"  off {common.fmt_pcts(paired['off'])} ms, on {common.fmt_pcts(paired['on'])} ms; "
                f"median difference {paired['difference_ms']:+.3f} ms; {paired['failed']} failed"
            )
            out["bearer_check"] = bearer_check(url, token)
    out["failures"] = {"count": failures.count, "examples": failures.examples}
    out["summary"] = summarize(out["rounds"])
    if out.get("bearer_check"):
        b = out["bearer_check"]
        _log(f"  bearer check in-process: first call {b['first_ms']:.2f} ms, then {b['cached_us']:.1f} µs per call")
    return out


def _line(m: dict[str, Any]) -> str:
    failed = sum(m[s]["failed"] for s in SERIES)
    return (
        f"reads {common.fmt_rate(m['reads']['rate'])}/s (p50 {common.fmt_ms(m['reads']['p50'])} ms), "
        f"{m['reads_concurrent']['clients']} clients {common.fmt_rate(m['reads_concurrent']['rate'])}/s, "
        f"Bundles {common.fmt_rate(m['bundles']['rate'])} resources/s, search p50 {common.fmt_ms(m['search']['p50'])} "
        f"ms; without a token: {m['unauthenticated_status']}; {failed} failed"
    )


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per side: the median over the rounds of each figure, and the failures of each series."""
    out: dict[str, Any] = {}
    for side in SIDES:
        ms = [r[side] for r in rounds]
        if not ms:
            continue
        failed = {s: sum(m[s]["failed"] for m in ms) for s in SERIES}
        expected = 401 if side == "on" else 200
        failed["probe"] = sum(m["unauthenticated_status"] != expected for m in ms)
        out[side] = {
            "reads_rate": common.median([m["reads"]["rate"] for m in ms]),
            "reads_ms": common.median_pcts([m["reads"] for m in ms]),
            "reads_concurrent_rate": common.median([m["reads_concurrent"]["rate"] for m in ms]),
            "bundles_rate": common.median([m["bundles"]["rate"] for m in ms]),
            "search_ms": common.median_pcts([m["search"] for m in ms]),
            "failed": failed,
        }
    return out


# ---------------------------------------------------------------- the table


def _lower(off: float, on: float) -> str:
    cost = 1 - on / off
    return f"{cost:.1%} lower" if cost >= 0 else f"{-cost:.1%} higher"


def _higher(off: dict[str, float], on: dict[str, float]) -> str:
    return ", ".join(f"{k} {on[k] / off[k] - 1:+.1%}" for k in ("p50", "p95"))


def _pcts(p: dict[str, float]) -> str:
    return " / ".join(common.fmt_ms(p[k]) for k in ("p50", "p95"))


def rows(out: dict[str, Any], backends: list[str]) -> list[list[str]]:
    table: list[list[str]] = []
    for b in backends:
        a = out.get(b, {}).get("auth")
        if not a or not a["summary"]:
            continue
        off, on = a["summary"]["off"], a["summary"]["on"]
        probe_failed = off["failed"]["probe"] + on["failed"]["probe"]
        n = f"median of {a['runs']}"
        series = [
            (f"reads, GET /fhir/T/id, 1 client, reads/s ({n} x {a['reads']})", "reads", "reads_rate", True),
            (f"  the same reads, ms p50 / p95 ({n})", "reads", "reads_ms", False),
            (
                f"reads, {a['clients']} clients, reads/s ({n} x {a['reads']})",
                "reads_concurrent",
                "reads_concurrent_rate",
                True,
            ),
            (
                f"transaction Bundles, 100 PUT entries, 1 client, resources/s ({n} x {a['bundles']})",
                "bundles",
                "bundles_rate",
                True,
            ),
            (
                f"search Observation?patient=P&_count=20, ms p50 / p95 ({n} x {a['search_n']})",
                "search",
                "search_ms",
                False,
            ),
        ]
        for label, name, key, rate in series:
            failed = off["failed"][name] + on["failed"][name] + probe_failed
            if failed:
                checks = f"{failed} failed" + (f" ({probe_failed} token checks)" if probe_failed else "")
                table.append([label, b, "n/a", "n/a", "not reported", checks, ""])
                continue
            if rate:
                cells = [common.fmt_rate(off[key]), common.fmt_rate(on[key]), _lower(off[key], on[key])]
                target = "" if name == "search" else ("met" if 1 - on[key] / off[key] <= TARGET else "not met")
            else:
                cells = [_pcts(off[key]), _pcts(on[key]), _higher(off[key], on[key])]
                target = ""
            table.append([label, b, *cells, "ok", target])
        paired = a.get("paired")
        if paired:
            label = f"paired reads, both servers at once, alternating, 1 client, reads/s ({a['reads']} each)"
            if paired["failed"] or paired["unauthenticated_status"] != 401:
                table.append([label, b, "n/a", "n/a", "not reported", f"{paired['failed']} failed", ""])
                continue
            off_p, on_p = paired["off"], paired["on"]
            cost = 1 - on_p["rate"] / off_p["rate"]
            table += [
                [
                    label,
                    b,
                    common.fmt_rate(off_p["rate"]),
                    common.fmt_rate(on_p["rate"]),
                    _lower(off_p["rate"], on_p["rate"]),
                    "ok",
                    "met" if cost <= TARGET else "not met",
                ],
                [
                    "  the same reads, ms p50 / p95; median difference per read",
                    b,
                    _pcts(off_p),
                    _pcts(on_p),
                    f"{_higher(off_p, on_p)}; {paired['difference_ms']:+.2f} ms",
                    "ok",
                    "",
                ],
            ]
    return table


def table(out: dict[str, Any], backends: list[str]) -> str:
    header = ["series", "backend", "auth off", "auth on", "cost of auth on", "checks", "target (<= 10% lower)"]
    return common.table(header, rows(out, backends))


def notes(out: dict[str, Any], backends: list[str]) -> list[str]:
    lines = []
    for b in backends:
        a = out.get(b, {}).get("auth")
        if not a:
            continue
        lines.append(
            f"{b} auth: {a['loaded']:,} resources loaded; token: backend client, scope {a['scope']}, from "
            "`ketnoi token issue`; a request without a token to each auth-on server got "
            + ", ".join(str(r["on"]["unauthenticated_status"]) for r in a["rounds"])
            + " (must be 401)"
        )
        for index, r in enumerate(a["rounds"]):
            for side in r["order"]:
                lines.append(f"{b} auth round {index + 1}, {side}: {_line(r[side])}")
        check = a.get("bearer_check")
        if check:
            lines.append(
                f"{b} bearer check in-process (Authenticator.context, as each request calls it): first call "
                f"{check['first_ms']:.2f} ms (key ring read, signature, scopes parsed; the first backend also loads "
                f"the FHIR definitions), then {check['cached_us']:.1f} "
                "µs per call (verified-token cache); under cProfile, cumulative µs per call: "
                + ", ".join(f"{fn} {us:.1f}" for fn, us in check["top_us_per_call"])
            )
        lines += [f"{b} auth failure: {example}" for example in a["failures"]["examples"]]
    return lines


if __name__ == "__main__":
    import run

    sys.exit(run.main(["--only", "auth", *sys.argv[1:]]))
