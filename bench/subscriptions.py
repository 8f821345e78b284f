"""Ingest with active Subscriptions beside none, and the notification lag, over HTTP (issue 14).

Per backend, each series in a fresh database and a fresh server process:

1. **none**: POST --bundles transaction Bundles of 100 Observations (100 LOINC-like codes, 100
   patients) with no Subscription; resources per second.
2. **100 subscriptions**: the same, after creating 100 active rest-hook Subscriptions
   ``Observation?code=http://loinc.org|C`` (one per code, so every Observation matches exactly one),
   full-resource Bundles to a receiver on loopback. Resources per second, and the lag of each event
   from its ``timestamp`` (the version's commit time, set by the server) to its arrival at the
   receiver: p50/p95/max, with the count of events received (all must arrive).

Usage: .venv/bin/python bench/subscriptions.py [--bundles 50] [--runs 3] [--backends sqlite,postgresql]
    [--relay thread|process]  (KETNOI_SUBSCRIPTION_RELAY of the server; default: both, one row each)
Target (issue 14): ingest with 100 subscriptions at most 10% slower than without.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

CODES = 100
PER_BUNDLE = 100
CONTENT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"


class Receiver:
    """Records (event timestamp, arrival) of every event in the notifications it receives."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.events = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.take(orjson.loads(body), arrived)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, bundle: dict[str, Any], arrived: float) -> None:
        head = bundle["entry"][0]["resource"]["parameter"]
        stamps = [
            p["valueInstant"]
            for e in head
            if e["name"] == "notification-event"
            for p in e["part"]
            if p["name"] == "timestamp"
        ]
        with self._lock:
            for stamp in stamps:
                self.lags.append(arrived - _epoch(stamp))
            self.events += len(stamps)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _epoch(instant: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()


def _bundle(run: int, n: int) -> dict[str, Any]:
    entries = []
    for i in range(PER_BUNDLE):
        k = n * PER_BUNDLE + i
        obs = {
            "resourceType": "Observation",
            "id": f"r{run}-o{k}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": f"{10000 + k % CODES}-0"}]},
            "subject": {"reference": f"Patient/p{k % 100}"},
            "valueQuantity": {"value": k % 200, "unit": "mg/dL"},
        }
        entries.append({"resource": obs, "request": {"method": "PUT", "url": f"Observation/{obs['id']}"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _subscription(code: int, endpoint: str) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "id": f"s{code}",
        "status": "requested",
        "reason": "bench",
        "criteria": f"Observation?code=http://loinc.org|{10000 + code}-0",
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": CONTENT, "valueCode": "full-resource"}]},
        },
    }


def one_run(backend: str, admin: str | None, bundles: int, subscribed: bool, run: int, relay: str) -> dict[str, Any]:
    receiver = Receiver() if subscribed else None
    env = {"KETNOI_SUBSCRIPTION_ENDPOINTS": "127.0.0.1", "KETNOI_MPI_LINK": "off", "KETNOI_SUBSCRIPTION_RELAY": relay}
    with common.database(backend, admin) as url, common.server(url, env=env) as srv, common.client(srv.base) as http:
        for p in range(100):
            http.put(f"/Patient/p{p}", json={"resourceType": "Patient", "id": f"p{p}"}).raise_for_status()
        if receiver is not None:
            for code in range(CODES):
                http.put(f"/Subscription/s{code}", json=_subscription(code, receiver.url)).raise_for_status()
            if relay != "off":  # with no relay, nothing activates them (they match while requested)
                _wait_active(http)
        payloads = [orjson.dumps(_bundle(run, n)) for n in range(bundles)]
        start = time.perf_counter()
        for body in payloads:
            http.post("", content=body).raise_for_status()
        elapsed = time.perf_counter() - start
        out: dict[str, Any] = {"rate": bundles * PER_BUNDLE / elapsed}
        if receiver is not None and relay == "off":
            out["events"], out["lag"], out["lag_max"] = None, None, None
            receiver.stop()
        elif receiver is not None:
            deadline = time.monotonic() + 120
            while receiver.events < bundles * PER_BUNDLE and time.monotonic() < deadline:
                time.sleep(0.1)
            out["events"] = receiver.events
            out["lag"] = common.percentiles(receiver.lags) if receiver.lags else None
            out["lag_max"] = max(receiver.lags) if receiver.lags else None
            receiver.stop()
    return out


def _wait_active(http: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = http.get("/Subscription", params={"status": "active", "_summary": "count"}).json()
        if found.get("total") == CODES:
            return
        time.sleep(0.2)
    raise RuntimeError("the subscriptions did not become active")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--relay",
        default="thread,process",
        help="KETNOI_SUBSCRIPTION_RELAY values to compare (off: matching and outbox only)",
    )
    args = parser.parse_args()
    common.print_machine(common.machine_info())
    admin = common.pg_admin_url()
    rows = []
    cases = [(b, r) for b in args.backends.split(",") for r in args.relay.split(",")]
    for backend, relay in cases:
        if backend == "postgresql" and admin is None:
            print("PostgreSQL: no admin URL (KETNOI_BENCH_POSTGRES_URL), skipped")
            continue
        plain, subscribed = [], []
        for run in range(args.runs):  # alternate, so drift on a noisy machine hits both alike
            plain.append(one_run(backend, admin, args.bundles, False, run, relay))
            subscribed.append(one_run(backend, admin, args.bundles, True, run, relay))
        none_rate = common.median([r["rate"] for r in plain])
        with_rate = common.median([r["rate"] for r in subscribed])
        lags = [r["lag"] for r in subscribed if r.get("lag")]
        counts = [r["events"] for r in subscribed if r["events"] is not None]
        rows.append(
            [
                backend,
                relay,
                common.fmt_rate(none_rate),
                common.fmt_rate(with_rate),
                f"{(1 - with_rate / none_rate) * 100:+.1f} %",
                common.fmt_pcts(common.median_pcts(lags)) if lags else "n/a",
                f"{min(counts):,} / {args.bundles * PER_BUNDLE:,}" if counts else "not sent (relay off)",
            ]
        )
    print(f"\nIngest: {args.bundles} transaction Bundles of {PER_BUNDLE} Observations, median of {args.runs} runs")
    header = [
        "backend",
        "relay",
        "res/s, none",
        "res/s, 100 subscriptions",
        "slower by",
        "lag p50/p95/p99 ms",
        "events received",
    ]
    print(common.table(header, rows))


if __name__ == "__main__":
    main()
