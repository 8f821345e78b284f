"""The cost of the audit trail: the same requests to ``ketnoi serve`` with ``KETNOI_AUDIT=off`` and ``on``.

Per backend, one fresh database loaded with ``--scale`` demo patients (``ketnoi load``, not timed).
Then, with both servers up at once on that database (auth off on both, so that only the audit
differs; ADR 0015):

1. **paired reads**: ``--reads`` ids, each read from both servers back to back (which goes first
   alternates), one keep-alive connection per side: latency percentiles and reads/s (reads over
   the sum of their latencies). Sequential reads are the worst case of group commit: every read
   pays a write transaction (and its fsync) of its own;
2. **concurrent reads**: ``--clients`` clients share ``--reads`` reads, one side after the other,
   ``--rounds`` rounds alternating the order: reads/s over the wall time (here group commit
   gathers the clients' records into shared transactions);
3. **transaction Bundles**: ``--bundles`` Bundles of 100 ``PUT`` entries (fresh ids per side and
   round), one client: resources/s (each entry's AuditEvent is appended in its transaction).

Every answer is checked as bench/auth.py checks it. The report: each series off beside on and
the cost (lower throughput), against the issue's target for auth + policy + audit together: at
most 20 % lower read and Bundle throughput.

    .venv/bin/python bench/audit.py --scale 100 --reads 2000 --clients 8 --backends sqlite
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import auth
import common
import ingest
import load

TARGET = 0.20


def _cost(off: float, on: float) -> str:
    return f"{(off - on) / off * 100:+.1f} %" if off else "-"


def run_backend(backend: str, admin: str | None, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    rows = load.raw_rows(folder)
    material = auth.Material.of(rows, folder, args.bundles * args.rounds, args.seed)
    failures = ingest.Failures()
    out: dict[str, Any] = {"concurrent": {"off": [], "on": []}, "bundles": {"off": [], "on": []}}
    with common.database(backend, admin) as url:
        out["loaded"] = load.ketnoi_load(url, folder).resources
        env_off, env_on = {"KETNOI_AUDIT": "off"}, {"KETNOI_AUDIT": "on"}
        with common.server(url, env=env_off) as off, common.server(url, env=env_on) as on:
            bases = {"off": off.base, "on": on.base}
            rng = random.Random(args.seed)
            paired = auth.paired_reads(off.base, on.base, material.keys, args.reads, rng, {}, failures)
            out["paired"] = paired
            print(
                f"[{backend}] paired reads: off {common.fmt_pcts(paired['off'])} ms {paired['off']['rate']:.0f}/s, "
                f"on {common.fmt_pcts(paired['on'])} ms {paired['on']['rate']:.0f}/s "
                f"(cost {_cost(paired['off']['rate'], paired['on']['rate'])}, "
                f"median difference {paired['difference_ms']:+.3f} ms)",
                flush=True,
            )
            for index in range(args.rounds):
                order = ("off", "on") if index % 2 == 0 else ("on", "off")
                for side in order:
                    rng = random.Random(args.seed + index)
                    keys, clients = material.keys, args.clients
                    rate, _ = auth.concurrent_reads(bases[side], keys, args.reads, clients, rng, {}, failures)
                    out["concurrent"][side].append(rate)
                    picked = material.clinical[index * args.bundles * ingest.CHUNK :][: args.bundles * ingest.CHUNK]
                    bundles = auth.fresh_bundles(picked, f"audit-{index}-{side}")
                    if len(bundles) > 1:
                        b_rate, _, _ = auth.post_bundles(bases[side], bundles, {}, failures)
                        out["bundles"][side].append(b_rate)
    for series in ("concurrent", "bundles"):
        off_m = common.median(out[series]["off"]) if out[series]["off"] else 0.0
        on_m = common.median(out[series]["on"]) if out[series]["on"] else 0.0
        out[series]["median"] = {"off": off_m, "on": on_m}
        print(f"[{backend}] {series}: off {off_m:.0f}/s, on {on_m:.0f}/s (cost {_cost(off_m, on_m)})", flush=True)
    out["failures"] = {"count": failures.count, "examples": failures.examples}
    if failures.count:
        print(f"[{backend}] {failures.count} failed requests: {failures.examples[:3]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=100, help="demo patients loaded")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bundles", type=int, default=4, help="transaction Bundles of 100 entries per side and round")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    common.print_machine(common.machine_info())
    admin = common.pg_admin_url()
    with tempfile.TemporaryDirectory(prefix="ketnoi-bench-audit-") as tmp:
        folder = common.demo_data(args.scale, args.seed, Path(tmp) / "demo")
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "postgresql" and admin is None:
                print("[postgresql] skipped: no PostgreSQL (KETNOI_BENCH_POSTGRES_URL)", flush=True)
                continue
            result = run_backend(backend, admin, folder, args)
            rates = [result["paired"]["off"]["rate"], result["paired"]["on"]["rate"]]
            rates += [result["concurrent"]["median"]["off"], result["concurrent"]["median"]["on"]]
            worst = max((a - b) / a for a, b in zip(rates[::2], rates[1::2], strict=True) if a)
            print(f"[{backend}] worst read cost {worst * 100:.1f} % (target for auth+policy+audit: {TARGET:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
