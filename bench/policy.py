"""The cost of authorization + access policy + audit together, against an open server (issue 10).

Per backend, one fresh database loaded with the ``--scale`` data as bench/auth.py loads it (``ketnoi
load``, by an operator: no organization owns the data; on PostgreSQL then ``ANALYZE``, not timed,
unless ``--no-analyze``).

**The facility.** The Organization that the most Encounters of the loaded NDJSON name as
``serviceProvider`` (ties: the smallest id), counting only the Encounters that make a care relation
(a ``period``, status neither cancelled nor entered-in-error); its patients are those Encounters'
subjects. A backend client is registered for it as an operator does it: ``ketnoi clients add --name
"bench policy" --scope "system/*.cruds" --jwks FILE --organization Organization/<id>``, and its
tokens come from ``ketnoi token issue`` (bench/auth.py's ``Token``). Such a token reads at the
*facility* level (ADR 0017, ``ketnoi.interactions.reach``): directory types open to all, any other
resource only when the facility owns it or it is in the Patient compartment of a patient with a care
relation at the facility. The data were loaded without ``--organization``, so a care relation is an
Encounter whose ``serviceProvider`` is the facility and whose period ends within
``KETNOI_CARE_WINDOW_DAYS`` of now. The demo data are dated up to 2026-06-30, so the full side runs
with ``KETNOI_CARE_WINDOW_DAYS=36500``: every Encounter of the data counts as a care relation.

**Two sides**, served one after the other, ``--auth-runs`` rounds, the order alternating between
rounds (open/full, full/open, ...) as in bench/auth.py:

* open: ``ketnoi serve --auth off`` with ``KETNOI_AUDIT=off``, no token;
* full: ``ketnoi serve --auth on`` with ``KETNOI_AUDIT=on`` and ``KETNOI_CARE_WINDOW_DAYS=36500``,
  the facility's token on every request.

Against each, the same series with the same draws:

1. reads: ``--reads`` sequential ``GET /fhir/{Type}/{id}`` (read.py's ``http_reads``, 20 warm-up
   reads), ids drawn among the loaded resources in the compartments of the facility's patients
   (the Patients themselves, and the resources whose ``subject``, ``patient`` or ``beneficiary`` is
   one of them): every answer must be 200 with the resource asked for on both sides (a 404 on the
   full side means the policy hid what it should show; the ids that fail are then listed); then
   ``--reads`` reads shared by 4 concurrent clients (auth.py's ``concurrent_reads``): reads/s;
2. ``--auth-bundles`` transaction Bundles of 100 ``PUT`` entries, one client, after one warm-up
   Bundle (auth.py's ``post_bundles``): clinical resources of the facility's patients under fresh
   ids, new for every round and side (on the full side they are written for the organization);
3. the clinician query mix of bench/rest.py (``rest.QUERIES``), ``--search-n`` runs each after 5
   warm-ups, the patient drawn among the facility's patients (alternately the 10 % with the most
   Observations and any of them): p50/p95 per query. Every answer is checked as rest.py checks it
   (200, only that patient's resources, exactly the expected number of entries from the loaded data
   and the Bundles posted so far, the filter on every entry, sorted where asked).

Each side also gets probes: a request without a token (full: 401; open: 200), the read of an
Observation of a patient with no care relation at the facility (full: 404, the policy is on; open:
200), and the AuditEvents the side recorded (``audit_log`` rows, counted before and after the
server process: full at least one per read; open none).

**Paired**, after the rounds, both servers up at once on the same database (whatever else the
machine does hits both alike: the figures to trust on a busy machine):

* reads: auth.py's ``paired_reads``, ``--reads`` ids each read from both back to back, which goes
  first alternating;
* searches: the clinician mix again, ``--search-n`` draws per query, each sent to both servers back
  to back (alternating), both answers checked, and the entries (ids and search modes, in order) of
  the full side must equal the open side's for every draw. This is where the results are compared:
  in the rounds the Bundles of one side change what the next side finds;
* visibility: every loaded resource of the facility's patients' compartments read once from each
  server: any that the open side serves and the full side does not is listed.

The report: per series the median over the rounds (per percentile for latencies), open beside full
and the cost (lower throughput, higher latency), against the issue's targets: at most 20 % lower
throughput for reads and transaction Bundles with authorization, policy and audit together;
clinician searches with the policy on p95 < 10 ms, and < 50 ms. A series with any failed request or
check has no figure. ``--json OUT``: ``results.<backend>.policy``.

``bench/run.py --only policy`` runs this step (``--scale``, ``--reads``, ``--search-n``,
``--search-budget``, ``--auth-runs``, ``--auth-bundles``); run alone, ``bench/policy.py`` is the same:

    .venv/bin/python bench/policy.py --scale 200 --backends sqlite,postgresql --auth-runs 2
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import auth
import common
import ingest
import load
import read
import rest
import search

SIDES = ("open", "full")
AUTH = {"open": "off", "full": "on"}
CARE_WINDOW_DAYS = "36500"  # every Encounter of the demo data (up to 2026-06-30) counts as a care relation
ENV = {
    "open": {"KETNOI_AUDIT": "off"},
    "full": {"KETNOI_AUDIT": "on", "KETNOI_CARE_WINDOW_DAYS": CARE_WINDOW_DAYS},
}
CLIENT_NAME = "bench policy"
TARGET = 0.20  # at most 20 % lower throughput with auth + policy + audit (reads, Bundles)
CLIENTS = 4  # concurrent clients of the second read series (the audit's group commit shares a commit)
SEARCH_TARGETS_MS = (10.0, 50.0)  # clinician searches with the policy on: p95
NOT_CARE = frozenset({"cancelled", "entered-in-error"})  # Encounters that make no care relation
PATIENT_FIELDS = ("subject", "patient", "beneficiary")  # what puts the demo data in a Patient compartment
SERIES = ("reads", "bundles", "search")

Resource = dict[str, Any]


def _log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- the facility and its patients


def _patient_of(resource: Resource) -> str | None:
    """The patient whose compartment holds ``resource`` (a Patient: itself), or None."""
    if resource.get("resourceType") == "Patient":
        return str(resource["id"])
    for name in PATIENT_FIELDS:
        value = resource.get(name)
        reference = value.get("reference", "") if isinstance(value, dict) else ""
        if reference.startswith("Patient/"):
            return reference.removeprefix("Patient/")
    return None


@dataclass
class Facility:
    org: str  # Organization/<id>
    encounters: int  # care Encounters naming it as serviceProvider
    patients: list[str]  # their subjects
    keys: list[str]  # every loaded Type/id in those patients' compartments (Patients included)
    clinical: list[Resource]  # the same without the Patients: the Bundles' resources
    outside: str  # an Observation of a patient with no care relation here (hidden with the policy on)
    facts: rest.Facts  # what the clinician queries must find (loaded data, then every Bundle posted)
    hard: list[str]  # the 10 % of the patients with the most Observations
    types: dict[str, int] = field(default_factory=dict)  # keys per type

    @classmethod
    def of(cls, rows: list[tuple[str, str]]) -> Facility:
        encounters: Counter[str] = Counter()
        subjects: dict[str, set[str]] = {}
        for key, line in rows:
            if not key.startswith("Encounter/"):
                continue
            e = orjson.loads(line)
            provider = (e.get("serviceProvider") or {}).get("reference", "")
            patient = (e.get("subject") or {}).get("reference", "")
            if e.get("status") in NOT_CARE or not e.get("period") or not provider.startswith("Organization/"):
                continue
            encounters[provider] += 1
            if patient.startswith("Patient/"):
                subjects.setdefault(provider, set()).add(patient.removeprefix("Patient/"))
        if not encounters:
            raise RuntimeError("no Encounter with a serviceProvider in the data: no facility to act for")
        org = min(encounters, key=lambda o: (-encounters[o], o))
        patients = subjects.get(org, set())
        facts = rest.Facts()
        keys: list[str] = []
        clinical: list[Resource] = []
        outside: list[str] = []
        for key, line in rows:
            if key.split("/", 1)[0] in auth.SHARED - {"Patient"}:
                continue
            resource = orjson.loads(line)
            pid = _patient_of(resource)
            if pid in patients:
                keys.append(key)
                facts.add(resource)
                if resource["resourceType"] != "Patient":
                    clinical.append(resource)
            elif pid is not None and key.startswith("Observation/"):
                outside.append(key)
        if not clinical or not outside:
            raise RuntimeError(f"{org}: {len(clinical)} clinical resources of its patients, {len(outside)} outside")
        ranked = sorted(patients, key=lambda p: (-facts.observations[p], p))
        return cls(
            org,
            encounters[org],
            sorted(patients),
            keys,
            clinical,
            min(outside),
            facts,
            ranked[: max(1, round(len(ranked) * rest.HARD_SHARE))],
            dict(Counter(k.split("/", 1)[0] for k in keys)),
        )

    def material(self, count: int, rng: random.Random) -> list[Resource]:
        """``count`` of the patients' clinical resources (shuffled, repeated when there are fewer)."""
        pool = list(self.clinical)
        rng.shuffle(pool)
        return list(itertools.islice(itertools.cycle(pool), count))


# ---------------------------------------------------------------- the client acting for the facility


def register_client(url: str, organization: str) -> str:
    """auth.py's ``register_client``, for ``organization`` (``--organization``): a backend client
    allowed ``system/*.cruds`` with a public P-256 JWK Set made here (its private key is never used)."""
    from joserfc.jwk import ECKey  # a dependency of ketnoi, in the same virtual environment

    key = ECKey.generate_key("P-256")
    jwk = {**key.as_dict(private=False), "kid": key.thumbprint(), "alg": "ES256", "use": "sig"}
    with tempfile.TemporaryDirectory(prefix="ketnoi-bench-jwks-") as tmp:
        path = Path(tmp) / "jwks.json"
        path.write_text(json.dumps({"keys": [jwk]}))
        out = auth._ketnoi(
            "clients",
            "add",
            "--database",
            url,
            "--name",
            CLIENT_NAME,
            "--scope",
            auth.SCOPE,
            "--jwks",
            str(path),
            "--organization",
            organization,
        )
    match = re.search(r"client_id: (\S+)", out)
    if not match:
        raise RuntimeError(f"ketnoi clients add printed no client_id: {out[-300:]}")
    return match.group(1)


def round_tag(index: int, side: str) -> str:
    return f"policy-{index}-{side}"


def round_bundles(fac: Facility, bundles: int, seed: int, tag: str) -> list[tuple[bytes, int]]:
    """The transaction Bundles a side's round PUTs (``measure``: its round's seed; ids from ``tag``)."""
    return auth.fresh_bundles(fac.material((bundles + 1) * ingest.CHUNK, random.Random(seed + 1)), tag)


def earlier_posts(backend: str, url: str, fac: Facility, runs: int, bundles: int, seed: int) -> int:
    """A database given again already holds what an earlier run's Bundles PUT: the ids this run PUTs
    too (``measure``'s tags and seeds), which the searches find from the first round on. Those held are
    added to what the checks expect; how many."""
    planned = [
        entry["resource"]
        for index in range(runs)
        for side in SIDES
        for body, _ in round_bundles(fac, bundles, seed + 10 * index, round_tag(index, side))
        for entry in orjson.loads(body)["entry"]
    ]
    ids = sorted({r["id"] for r in planned})
    if backend == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            found_pg = conn.execute("SELECT resource_type, id FROM resource WHERE NOT deleted AND id = ANY(%s)", (ids,))
            held = {f"{t}/{i}" for t, i in found_pg.fetchall()}
    else:
        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            marks = ", ".join("?" * len(ids))
            found_lite = lite.execute(
                f"SELECT resource_type, id FROM resource WHERE NOT deleted AND id IN ({marks})", ids
            )
            held = {f"{t}/{i}" for t, i in found_lite.fetchall()}
        finally:
            lite.close()
    found = [r for r in planned if f"{r['resourceType']}/{r['id']}" in held]
    for resource in found:
        fac.facts.add(resource)
    return len({f"{r['resourceType']}/{r['id']}" for r in found})


def audit_rows(backend: str, url: str) -> int:
    """Rows of ``audit_log`` (one per recorded AuditEvent)."""
    if backend == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()
    else:
        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            row = lite.execute("SELECT COUNT(*) FROM audit_log").fetchone()
        finally:
            lite.close()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------- the series


def probes(base: str, side: str, fac: Facility, headers: dict[str, str], failures: ingest.Failures) -> dict[str, int]:
    """Without a token (full: 401, open: 200); a resource out of the facility's reach (full: 404,
    open: 200). The statuses."""
    expected = {"no_token": 401 if side == "full" else 200, "outside": 404 if side == "full" else 200}
    with common.client(base) as http:
        got = {
            "no_token": http.get(f"/{fac.keys[0]}").status_code,
            "outside": http.get(f"/{fac.outside}", headers=headers).status_code,
        }
    for name, status in got.items():
        if status != expected[name]:
            key = fac.keys[0] if name == "no_token" else fac.outside
            what = "without a token" if name == "no_token" else "of a patient with no care relation at the facility"
            failures.add(f"{side}: GET /fhir/{key} {what}, expected {expected[name]}", status, b"", 0)
    return got


def unreadable(base: str, keys: list[str], headers: dict[str, str]) -> list[tuple[str, int]]:
    """The ids among ``keys`` not answered with 200 and the resource (each read once): (key, status)."""
    out = []
    with common.client(base) as http:
        http.headers.update(headers)
        for key in dict.fromkeys(keys):
            r = http.get(f"/{key}")
            if not read.read_ok(r, key):
                out.append((key, r.status_code))
    return out


def run_mix(
    base: str, fac: Facility, n: int, budget: float, seed: int, headers: dict[str, str]
) -> list[search.QueryResult]:
    """rest.py's ``run_mix`` with a token and the facility's patients as the draws."""
    results = []
    with common.client(base) as http:
        http.headers.update(headers)
        for index, clinical in enumerate(rest.QUERIES):
            query = rest.as_search_query(clinical, fac.facts, fac.hard, fac.patients)
            rng = random.Random(seed * 100 + 50 + index)
            results.append(search.run_query(http, query, search.Pools(), n, budget, rng, warmup=rest.WARMUP))
    return results


def _search_failed(item: dict[str, Any]) -> int:
    return int(item["check_failures"]) + int(item["status"] != "ok")


def measure(
    base: str,
    side: str,
    fac: Facility,
    token: auth.Token | None,
    *,
    reads: int,
    bundles: int,
    search_n: int,
    budget: float,
    tag: str,
    seed: int,
    failures: ingest.Failures,
) -> dict[str, Any]:
    """Every series against one server; the same draws (seed) whichever side it is."""

    def headers() -> dict[str, str]:
        return token.headers() if token is not None else {}

    out: dict[str, Any] = {"probes": probes(base, side, fac, headers(), failures)}
    samples, failed = read.http_reads(base, fac.keys, reads, random.Random(seed), headers())
    if failed:  # which ids, and what the server answers (each distinct id read once more)
        out["unreadable"] = unreadable(base, fac.keys, headers())
        for key, status in out["unreadable"][:3]:
            failures.add(f"{side}: GET /fhir/{key} (a resource of the facility's patients)", status, b"", 1)
    out["reads"] = {**common.percentiles(samples), "rate": len(samples) / sum(samples), "failed": failed}
    rate, failed = auth.concurrent_reads(base, fac.keys, reads, CLIENTS, random.Random(seed + 5), headers(), failures)
    out["reads_concurrent"] = {"rate": rate, "clients": CLIENTS, "failed": failed}
    posted = round_bundles(fac, bundles, seed, tag)
    rate, stored, failed = auth.post_bundles(base, posted, headers(), failures)
    out["bundles"] = {"rate": rate, "stored": stored, "failed": failed}
    if not failed:  # the database now holds them: the clinician queries must find them too
        for body, _ in posted:
            for entry in orjson.loads(body)["entry"]:
                fac.facts.add(entry["resource"])
    results = run_mix(base, fac, search_n, budget, seed + 2, headers())
    out["search"] = [r.summary() for r in results]
    for item in out["search"]:
        if _search_failed(item):
            failures.add(
                f"{side}: search {item['name']}: {item['check_failures']} failed checks, status {item['status']}; "
                + " | ".join(item["check_examples"] or [item["diagnostics"]]),
                0,
                b"",
                0,
            )
    return out


def _entries(r: httpx.Response) -> tuple[list[tuple[str, str]], dict[str, Any] | None]:
    """(search mode, Type/id) of every entry, in order, and the Bundle (None when not JSON)."""
    try:
        bundle = orjson.loads(r.content)
    except orjson.JSONDecodeError:
        return [], None
    return [
        (
            str(e.get("search", {}).get("mode", "")),
            f"{e.get('resource', {}).get('resourceType')}/{e.get('resource', {}).get('id')}",
        )
        for e in bundle.get("entry", [])
    ], bundle


def paired_searches(
    open_base: str,
    full_base: str,
    fac: Facility,
    n: int,
    seed: int,
    headers: dict[str, str],
    failures: ingest.Failures,
) -> list[dict[str, Any]]:
    """Both servers at once: each clinician query ``n`` times (after the warm-ups), every draw sent to
    both back to back (which goes first alternates). Per query: latency percentiles per side, failed
    answers (status or rest.py's check), and the draws whose entries differ between the sides."""
    out = []
    with common.client(open_base) as open_http, common.client(full_base) as full_http:
        full_http.headers.update(headers)
        sides = [("open", open_http), ("full", full_http)]
        for index, clinical in enumerate(rest.QUERIES):
            query = rest.as_search_query(clinical, fac.facts, fac.hard, fac.patients)
            rng = random.Random(seed * 100 + 50 + index)
            samples: dict[str, list[float]] = {"open": [], "full": []}
            failed = {"open": 0, "full": 0}
            same = differ = 0
            for i in range(rest.WARMUP + n):
                rtype, params, check = query.draw(search.Pools(), rng)
                answers: dict[str, httpx.Response] = {}
                for side, http in sides if i % 2 == 0 else sides[::-1]:
                    start = time.perf_counter()
                    answers[side] = http.get(f"/{rtype}", params=list(params))
                    if i >= rest.WARMUP:
                        samples[side].append(time.perf_counter() - start)
                if i < rest.WARMUP:
                    continue
                request = f"{rtype}?{'&'.join(f'{k}={v}' for k, v in params)}"
                found = {}
                for side, r in answers.items():
                    entries, bundle = _entries(r)
                    found[side] = entries
                    problem = "not JSON" if bundle is None else check(bundle)
                    if r.status_code != 200 or problem:
                        failed[side] += 1
                        failures.add(
                            f"paired search, {side}: {request}: {problem or 'status'}", r.status_code, r.content, 0
                        )
                if found["open"] == found["full"]:
                    same += 1
                    continue
                differ += 1
                missing = [k for k in found["open"] if k not in found["full"]]
                extra = [k for k in found["full"] if k not in found["open"]]
                failures.add(
                    f"paired search: {request}: full side {len(found['full'])} entries, open side "
                    f"{len(found['open'])}; missing on the full side {missing[:3]}, extra {extra[:3]}",
                    answers["full"].status_code,
                    b"",
                    0,
                )
            out.append(
                {
                    "name": clinical.name,
                    "example": clinical.example,
                    **{side: common.percentiles(s) for side, s in samples.items()},
                    "failed": failed,
                    "same": same,
                    "differ": differ,
                }
            )
    return out


def visibility(
    open_base: str, full_base: str, keys: list[str], headers: dict[str, str], failures: ingest.Failures
) -> dict[str, Any]:
    """Every one of ``keys`` read once from each server: those the open side serves and the full
    side does not (the policy hid them), and those the open side does not serve either."""
    hidden: list[tuple[str, int]] = []
    open_failed: list[tuple[str, int]] = []
    with common.client(open_base) as open_http, common.client(full_base) as full_http:
        full_http.headers.update(headers)
        for key in keys:
            o = open_http.get(f"/{key}")
            if not read.read_ok(o, key):
                open_failed.append((key, o.status_code))
                continue
            f = full_http.get(f"/{key}")
            if not read.read_ok(f, key):
                hidden.append((key, f.status_code))
    for key, status in hidden[:3]:
        failures.add(f"visibility: GET /fhir/{key} served by the open side, not by the full side", status, b"", 1)
    for key, status in open_failed[:3]:
        failures.add(f"visibility: GET /fhir/{key} not served by the open side", status, b"", 1)
    return {"keys": len(keys), "hidden": hidden[:50], "hidden_count": len(hidden), "open_failed": open_failed[:50]}


# ---------------------------------------------------------------- one backend


def run_backend(
    backend: str,
    admin: str | None,
    folder: Path,
    rows: list[tuple[str, str]],
    *,
    runs: int,
    reads: int,
    bundles: int,
    search_n: int,
    budget: float,
    seed: int,
    analyze: bool = True,
    database: str | None = None,
) -> dict[str, Any]:
    """Load a fresh database (or use ``database``, already loaded with the same data), then ``runs``
    rounds of the open and the full server, then the paired series; what bench/run.py keeps under
    ``results.<backend>.policy``."""
    fac = Facility.of(rows)
    failures = ingest.Failures()
    out: dict[str, Any] = {
        "runs": runs,
        "reads": reads,
        "bundles": bundles,
        "search_n": search_n,
        "scope": auth.SCOPE,
        "care_window_days": int(CARE_WINDOW_DAYS),
        "facility": {
            "organization": fac.org,
            "encounters": fac.encounters,
            "patients": len(fac.patients),
            "hard_patients": len(fac.hard),
            "resources": len(fac.keys),
            "types": fac.types,
            "outside": fac.outside,
        },
        "rounds": [],
    }
    with common.database(backend, admin) if database is None else contextlib.nullcontext(database) as url:
        if database is None:
            _log(f"[{backend}] policy: ketnoi load of {folder} (not timed)")
            out["loaded"] = load.ketnoi_load(url, folder).resources
        else:
            _log(f"[{backend}] policy: the database given, loaded with {folder} before")
            out["loaded"] = len(rows)
            earlier = earlier_posts(backend, url, fac, runs, bundles, seed)
            if earlier:
                _log(f"[{backend}] policy: {earlier} resources an earlier run's Bundles PUT are there already")
        loaded_count = out["loaded"]
        if backend == "postgresql" and analyze:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
        client_id = register_client(url, fac.org)
        out["client_id"] = client_id
        _log(
            f"[{backend}] policy: facility {fac.org} ({fac.encounters} Encounters, {len(fac.patients)} patients, "
            f"{len(fac.keys):,} resources of theirs of {loaded_count:,}); backend client {client_id[:8]}..., "
            f"scope {auth.SCOPE}; {runs} rounds of open and full; {reads} reads, {bundles} Bundles of "
            f"{ingest.CHUNK}, {len(rest.QUERIES)} clinician queries x {search_n} per side"
        )
        for index in range(runs):
            order = SIDES if index % 2 == 0 else SIDES[::-1]
            round_: dict[str, Any] = {"order": list(order)}
            for side in order:
                before = audit_rows(backend, url)
                with common.server(url, auth=AUTH[side], env=ENV[side]) as srv:
                    token = auth.Token(url, client_id, srv.base) if side == "full" else None
                    m = measure(
                        srv.base,
                        side,
                        fac,
                        token,
                        reads=reads,
                        bundles=bundles,
                        search_n=search_n,
                        budget=budget,
                        tag=round_tag(index, side),
                        seed=seed + 10 * index,
                        failures=failures,
                    )
                m["audit_rows"] = audit_rows(backend, url) - before
                if (m["audit_rows"] < reads) if side == "full" else m["audit_rows"]:
                    failures.add(
                        f"{side}: {m['audit_rows']} AuditEvents recorded for {reads} reads and the rest "
                        f"(expected {'at least one per read' if side == 'full' else 'none'})",
                        0,
                        b"",
                        0,
                    )
                round_[side] = m
                _log(f"  round {index + 1}, {side}: {_line(m)}")
            out["rounds"].append(round_)
        if runs:
            _log(f"[{backend}] policy: both servers at once: paired reads, paired searches, visibility")
            with (
                common.server(url, auth=AUTH["open"], env=ENV["open"]) as open_srv,
                common.server(url, auth=AUTH["full"], env=ENV["full"]) as full_srv,
            ):
                token = auth.Token(url, client_id, full_srv.base)
                rng = random.Random(seed + 3)
                paired = auth.paired_reads(
                    open_srv.base, full_srv.base, fac.keys, reads, rng, token.headers(), failures
                )
                out["paired"] = {
                    "open": paired["off"],
                    "full": paired["on"],
                    "difference_ms": paired["difference_ms"],
                    "failed": paired["failed"],
                    "probes": probes(full_srv.base, "full", fac, token.headers(), failures),
                }
                _log(
                    f"  reads: open {common.fmt_pcts(paired['off'])} ms, full {common.fmt_pcts(paired['on'])} ms; "
                    f"median difference {paired['difference_ms']:+.3f} ms; {paired['failed']} failed"
                )
                out["paired_search"] = paired_searches(
                    open_srv.base, full_srv.base, fac, search_n, seed + 4, token.headers(), failures
                )
                for q in out["paired_search"]:
                    _log(
                        f"  {q['name']}: open {common.fmt_pcts(q['open'])} ms, full {common.fmt_pcts(q['full'])} ms; "
                        f"{q['same']} of {q['same'] + q['differ']} draws with the same entries; failed "
                        f"{q['failed']['open']} open, {q['failed']['full']} full"
                    )
                out["visibility"] = visibility(open_srv.base, full_srv.base, fac.keys, token.headers(), failures)
                v = out["visibility"]
                _log(
                    f"  visibility: {v['keys']:,} resources of the facility's patients, {v['hidden_count']} hidden by "
                    f"the full side, {len(v['open_failed'])} not served by the open side"
                )
    out["failures"] = {"count": failures.count, "examples": failures.examples}
    out["summary"] = summarize(out["rounds"])
    return out


def _line(m: dict[str, Any]) -> str:
    searches = ", ".join(f"{s['name']} {common.fmt_ms(s['latency_ms'].get('p95'))}" for s in m["search"])
    failed = m["reads"]["failed"] + m["reads_concurrent"]["failed"] + m["bundles"]["failed"]
    failed += sum(_search_failed(s) for s in m["search"])
    return (
        f"reads {common.fmt_rate(m['reads']['rate'])}/s (p50 {common.fmt_ms(m['reads']['p50'])} ms), "
        f"{CLIENTS} clients {common.fmt_rate(m['reads_concurrent']['rate'])}/s, Bundles "
        f"{common.fmt_rate(m['bundles']['rate'])} resources/s; search p95 (ms): {searches}; without a token "
        f"{m['probes']['no_token']}, outside the facility {m['probes']['outside']}; {m['audit_rows']:,} "
        f"AuditEvents; {failed} failed"
    )


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per side: the median over the rounds of each figure, and the failures of each series."""
    out: dict[str, Any] = {}
    for side in SIDES:
        ms = [r[side] for r in rounds]
        if not ms:
            continue
        expected = {"no_token": 401, "outside": 404} if side == "full" else {"no_token": 200, "outside": 200}
        probes_failed = sum(m["probes"][k] != v for m in ms for k, v in expected.items())
        audit_failed = sum((m["audit_rows"] < m["reads"]["n"]) if side == "full" else bool(m["audit_rows"]) for m in ms)
        queries = len(ms[0]["search"])
        out[side] = {
            "reads_rate": common.median([m["reads"]["rate"] for m in ms]),
            "reads_ms": common.median_pcts([m["reads"] for m in ms]),
            "reads_concurrent_rate": common.median([m["reads_concurrent"]["rate"] for m in ms]),
            "bundles_rate": common.median([m["bundles"]["rate"] for m in ms]),
            "search_ms": [common.median_pcts([m["search"][q]["latency_ms"] for m in ms]) for q in range(queries)],
            "failed": {
                "reads": sum(m["reads"]["failed"] for m in ms),
                "reads_concurrent": sum(m["reads_concurrent"]["failed"] for m in ms),
                "bundles": sum(m["bundles"]["failed"] for m in ms),
                "search": [sum(_search_failed(m["search"][q]) for m in ms) for q in range(queries)],
                "probes": probes_failed + audit_failed,
            },
        }
    return out


# ---------------------------------------------------------------- the table


def _higher(a: dict[str, float], b: dict[str, float]) -> str:
    return ", ".join(f"{k} {b[k] - a[k]:+.2f} ms ({b[k] / a[k] - 1:+.0%})" for k in ("p50", "p95"))


def _search_target(p95: float | None) -> str:
    if p95 is None:
        return ""
    return "; ".join(f"< {t:.0f} ms: {'met' if p95 < t else 'not met'}" for t in SEARCH_TARGETS_MS)


def _failed_row(label: str, backend: str, failed: int, probe_failed: int) -> list[str]:
    checks = f"{failed} failed" + (f" ({probe_failed} probes)" if probe_failed else "")
    return [label, backend, "n/a", "n/a", "not reported", checks, ""]


def rows(out: dict[str, Any], backends: list[str]) -> list[list[str]]:
    table: list[list[str]] = []
    for b in backends:
        a = out.get(b, {}).get("policy")
        if not a or not a["summary"]:
            continue
        open_, full = a["summary"]["open"], a["summary"]["full"]
        probe_failed = open_["failed"]["probes"] + full["failed"]["probes"]
        n = f"median of {a['runs']}"

        label = f"reads of the facility's patients, GET /fhir/T/id, 1 client, reads/s ({n} x {a['reads']})"
        failed = open_["failed"]["reads"] + full["failed"]["reads"] + probe_failed
        if failed:
            table.append(_failed_row(label, b, failed, probe_failed))
        else:
            cost = 1 - full["reads_rate"] / open_["reads_rate"]
            table += [
                [
                    label,
                    b,
                    common.fmt_rate(open_["reads_rate"]),
                    common.fmt_rate(full["reads_rate"]),
                    auth._lower(open_["reads_rate"], full["reads_rate"]),
                    "ok",
                    f"<= 20% lower: {'met' if cost <= TARGET else 'not met'}",
                ],
                [
                    "  the same reads, ms p50 / p95",
                    b,
                    auth._pcts(open_["reads_ms"]),
                    auth._pcts(full["reads_ms"]),
                    _higher(open_["reads_ms"], full["reads_ms"]),
                    "ok",
                    "",
                ],
            ]
        label = f"the same reads, {CLIENTS} concurrent clients, reads/s ({n} x {a['reads']})"
        failed = open_["failed"]["reads_concurrent"] + full["failed"]["reads_concurrent"] + probe_failed
        if failed:
            table.append(_failed_row(label, b, failed, probe_failed))
        else:
            rate_open, rate_full = open_["reads_concurrent_rate"], full["reads_concurrent_rate"]
            table.append(
                [
                    label,
                    b,
                    common.fmt_rate(rate_open),
                    common.fmt_rate(rate_full),
                    auth._lower(rate_open, rate_full),
                    "ok",
                    f"<= 20% lower: {'met' if 1 - rate_full / rate_open <= TARGET else 'not met'}",
                ]
            )
        label = f"transaction Bundles, 100 PUT entries, 1 client, resources/s ({n} x {a['bundles']})"
        failed = open_["failed"]["bundles"] + full["failed"]["bundles"] + probe_failed
        if failed:
            table.append(_failed_row(label, b, failed, probe_failed))
        else:
            cost = 1 - full["bundles_rate"] / open_["bundles_rate"]
            table.append(
                [
                    label,
                    b,
                    common.fmt_rate(open_["bundles_rate"]),
                    common.fmt_rate(full["bundles_rate"]),
                    auth._lower(open_["bundles_rate"], full["bundles_rate"]),
                    "ok",
                    f"<= 20% lower: {'met' if cost <= TARGET else 'not met'}",
                ]
            )
        for index, query in enumerate(rest.QUERIES):
            label = f"search {query.example}, ms p50 / p95 ({n} x {a['search_n']})"
            failed = open_["failed"]["search"][index] + full["failed"]["search"][index] + probe_failed
            o, f = open_["search_ms"][index], full["search_ms"][index]
            if failed or not o.get("n") or not f.get("n"):
                table.append(_failed_row(label, b, failed, probe_failed))
                continue
            table.append([label, b, auth._pcts(o), auth._pcts(f), _higher(o, f), "ok", _search_target(f["p95"])])
        paired = a.get("paired")
        if paired:
            label = f"paired reads, both servers at once, alternating, 1 client, reads/s ({a['reads']} each)"
            p = paired["probes"]
            if paired["failed"] or p["no_token"] != 401 or p["outside"] != 404:
                table.append([label, b, "n/a", "n/a", "not reported", f"{paired['failed']} failed", ""])
            else:
                o, f = paired["open"], paired["full"]
                cost = 1 - f["rate"] / o["rate"]
                table += [
                    [
                        label,
                        b,
                        common.fmt_rate(o["rate"]),
                        common.fmt_rate(f["rate"]),
                        auth._lower(o["rate"], f["rate"]),
                        "ok",
                        f"<= 20% lower: {'met' if cost <= TARGET else 'not met'}",
                    ],
                    [
                        "  the same reads, ms p50 / p95; median difference per read",
                        b,
                        auth._pcts(o),
                        auth._pcts(f),
                        f"{_higher(o, f)}; {paired['difference_ms']:+.2f} ms",
                        "ok",
                        "",
                    ],
                ]
        for q in a.get("paired_search", []):
            label = f"paired search {q['example']}, ms p50 / p95 ({q['same'] + q['differ']} each)"
            failed = q["failed"]["open"] + q["failed"]["full"]
            if failed or q["differ"] or not q["open"].get("n"):
                checks = f"{failed} failed, {q['differ']} differ"
                table.append([label, b, "n/a", "n/a", "not reported", checks, ""])
                continue
            o, f = q["open"], q["full"]
            same = f"ok, {q['same']} same entries"
            table.append([label, b, auth._pcts(o), auth._pcts(f), _higher(o, f), same, _search_target(f["p95"])])
    return table


def table(out: dict[str, Any], backends: list[str]) -> str:
    header = ["series", "backend", "open", "auth + policy + audit", "cost", "checks", "target"]
    return common.table(header, rows(out, backends))


def notes(out: dict[str, Any], backends: list[str]) -> list[str]:
    lines = [
        "open: ketnoi serve --auth off, KETNOI_AUDIT=off, no token. auth + policy + audit: --auth on, "
        f"KETNOI_AUDIT=on, KETNOI_CARE_WINDOW_DAYS={CARE_WINDOW_DAYS} (the demo data are dated up to 2026-06-30: "
        "every Encounter of the data counts as a care relation), every request with the token of a backend client "
        f"registered for the facility (ketnoi clients add --organization, scope {auth.SCOPE}).",
        "Targets (issue 10): at most 20 % lower throughput for reads and transaction Bundles with authorization, "
        "policy and audit together; clinician searches with the policy on p95 < 10 ms, and < 50 ms. On a busy "
        "machine the paired rows (both servers at once) are the ones to trust.",
    ]
    for b in backends:
        a = out.get(b, {}).get("policy")
        if not a:
            continue
        fac = a["facility"]
        lines.append(
            f"{b} policy: {a['loaded']:,} resources loaded; facility {fac['organization']} (serviceProvider of "
            f"{fac['encounters']} Encounters), {fac['patients']} patients ({fac['hard_patients']} with the most "
            f"Observations drawn for half the searches), {fac['resources']:,} resources of theirs ("
            + ", ".join(f"{t} {c}" for t, c in sorted(fac["types"].items()))
            + f"); outside probe {fac['outside']}"
        )
        for index, r in enumerate(a["rounds"]):
            for side in r["order"]:
                lines.append(f"{b} policy round {index + 1}, {side}: {_line(r[side])}")
                if r[side].get("unreadable"):
                    lines.append(
                        f"{b} policy round {index + 1}, {side}: not readable: "
                        + ", ".join(f"{k} ({s})" for k, s in r[side]["unreadable"][:10])
                    )
        v = a.get("visibility")
        if v:
            lines.append(
                f"{b} policy visibility: {v['keys']:,} resources of the facility's patients read from both servers; "
                f"{v['hidden_count']} hidden by the full side"
                + (": " + ", ".join(f"{k} ({s})" for k, s in v["hidden"][:10]) if v["hidden"] else "")
                + f"; {len(v['open_failed'])} not served by the open side"
            )
        lines += [f"{b} policy failure: {example}" for example in a["failures"]["examples"]]
    return lines


if __name__ == "__main__":
    import run

    sys.exit(run.main(["--only", "policy", *sys.argv[1:]]))
