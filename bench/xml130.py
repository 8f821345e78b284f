"""Claims XML import (``ketnoi import xml130``) against ``ketnoi load`` of the same FHIR resources.

Per backend, each in a fresh database:

* ``import``: ``python -m ketnoi import xml130 --database URL DIR`` as a subprocess, on the envelopes of
  ``ketnoi demo generate --format xml130`` (about 20 line items per visit); the rate is the visits per
  second it prints (its own loop: start-up and imports excluded), with the resources it wrote.
* ``floor``: ``ketnoi load`` of exactly the resources the import writes (``ketnoi.claims.to_fhir`` of the
  same visits, as NDJSON; one version per resource), in another fresh database: the bulk loader, 5,000
  resources per transaction, is the fastest path into the same tables, so the import can approach it but
  not pass it. Shown as visits per second (its resources per second / resources per visit).

Issue 12's target: at least 200 visits per second on this machine.

Usage: .venv/bin/python bench/xml130.py [--patients N] [--backends sqlite,postgresql]   (default 300)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from load import ketnoi_load

from ketnoi.claims.to_fhir import map_visit
from ketnoi.demo.xml130 import generate_xml130, iter_visits

_DONE = re.compile(r"([\d,]+) visits: ([\d,]+) imported.*?([\d,]+) resources written in ([\d.]+) s")
TARGET = 200.0


def fhir_ndjson(patients: int, seed: int, out: Path) -> tuple[int, int]:
    """The resources the import of these visits writes, one per id (the last visit's Patient), as NDJSON;
    returns (visits, resources)."""
    latest: dict[tuple[str, str], bytes] = {}
    visits = 0
    for facility, tables in iter_visits(patients, seed):
        visits += 1
        for resource in map_visit(facility, tables).resources:
            latest[(resource["resourceType"], resource["id"])] = orjson.dumps(resource)
    out.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[bytes]] = {}
    for (rtype, _), line in latest.items():
        by_type.setdefault(rtype, []).append(line)
    for rtype, lines in by_type.items():
        (out / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return visits, len(latest)


def ketnoi_import(url: str, folder: Path) -> tuple[float, int, int, float]:
    """(visits/s, visits imported, resources written, seconds) as the command prints them."""
    subprocess.run(
        [common.PYTHON, "-m", "ketnoi", "migrate", "--database", url],
        cwd=common.ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    proc = subprocess.run(
        [common.PYTHON, "-m", "ketnoi", "import", "xml130", "--database", url, str(folder)],
        cwd=common.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    match = _DONE.search(proc.stdout)
    if not match:
        raise RuntimeError(f"ketnoi import exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    visits, imported, resources = (int(match.group(i).replace(",", "")) for i in (1, 2, 3))
    seconds = float(match.group(4))
    if imported != visits:
        raise RuntimeError(f"{visits - imported} visits rejected:\n{proc.stdout[-3000:]}")
    return visits / seconds, visits, resources, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    common.print_machine(common.machine_info())
    admin = common.pg_admin_url()
    with tempfile.TemporaryDirectory(prefix="ketnoi-bench-xml130-") as tmp:
        envelopes, ndjson = Path(tmp) / "xml", Path(tmp) / "ndjson"
        generate_xml130(args.patients, args.seed, envelopes)
        visits, resources = fhir_ndjson(args.patients, args.seed, ndjson)
        per_visit = resources / visits
        print(
            f"data:     {args.patients} patients, {visits:,} visits, "
            f"{resources:,} distinct resources ({per_visit:.1f} per visit)"
        )
        rows = []
        for backend in args.backends.split(","):
            if backend == "postgresql" and admin is None:
                print("postgresql: no server (KETNOI_BENCH_POSTGRES_URL or scripts/pg-test-setup.sh); skipped")
                continue
            with common.database(backend, admin) as url:
                rate, _, written, seconds = ketnoi_import(url, envelopes / "xml130")
            with common.database(backend, admin) as url:
                floor = ketnoi_load(url, ndjson)
            floor_visits = floor.rate / per_visit
            rows.append(
                [
                    backend,
                    f"{rate:,.0f}",
                    f"{written / seconds:,.0f}",
                    f"{floor_visits:,.0f} ({floor.rate:,.0f} res/s)",
                    f"{rate / floor_visits:.0%}",
                    "met" if rate >= TARGET else "not met",
                ]
            )
        header = [
            "backend",
            "import, visits/s",
            "import, resources/s",
            "floor: ketnoi load, visits/s",
            "import / floor",
            f"≥ {TARGET:.0f} visits/s",
        ]
        print(common.table(header, rows))
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - start:.0f} s)")
    sys.exit(code)
