"""Validation throughput, one core, in-process: the structural gate alone, then with the base R4
invariants and extension definitions (what ``KETNOI_VALIDATION`` strict/lenient run on every
write), then also against the VN Core profile of each resource (``ketnoi.demo.profiles``, bindings decided
by the packaged terminology), on three sets of data: the 819 official R4 examples, the entries of
the Synthea patient Bundles in ../shared/synthea, and a demo population (the data ``make run``
loads). Issue 11's target: at least 3,000 resources per second per core with profiles and
invariants.

Usage: .venv/bin/python bench/validate.py [--rounds N] [--patients N]   (defaults 3, 200)
Prints a Markdown table; docs/validation.md keeps the latest figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ketnoi.demo.generate import iter_blocks
from ketnoi.demo.profiles import profile_for
from ketnoi.terminology.membership import packaged
from ketnoi.validation import validate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests/data/fhir-r4-examples/json"
SYNTHEA = ROOT.parent / "shared" / "synthea" / "dev"

Resource = dict[str, Any]


def examples() -> list[Resource]:
    return [orjson.loads(p.read_bytes()) for p in sorted(EXAMPLES.glob("*.json"))]


def synthea() -> list[Resource]:
    out: list[Resource] = []
    for path in sorted(SYNTHEA.glob("*.json")):
        bundle = orjson.loads(path.read_bytes())
        out.extend(e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict))
    return out


def demo(patients: int) -> list[Resource]:
    return [r for block, _ in iter_blocks(patients, 1, 0.0) for r in block]


def rate(resources: list[Resource], check: Callable[[Resource], object], rounds: int) -> float:
    """Resources per second, the median of ``rounds`` passes after a warm-up pass."""
    for resource in resources:
        check(resource)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for resource in resources:
            check(resource)
        rates.append(len(resources) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--patients", type=int, default=200)
    args = parser.parse_args()
    sets = {
        "R4 examples": examples(),
        "Synthea entries": synthea() if SYNTHEA.is_dir() else [],
        "demo": demo(args.patients),
    }
    codes = packaged()

    def with_vn_core(resource: Resource) -> object:
        wanted = profile_for(resource)
        return validate(resource, invariants=True, profiles=[wanted] if wanted else (), codes=codes)

    print("| data | resources | structure only, /s | + invariants, /s | + VN Core profile, /s | target ≥ 3,000/s |")
    print("|---|--:|--:|--:|--:|---|")
    for name, resources in sets.items():
        if not resources:
            print(f"| {name} | 0 | | | | not found |")
            continue
        plain = rate(resources, validate, args.rounds)
        full = rate(resources, lambda r: validate(r, invariants=True, codes=codes), args.rounds)
        profiled = rate(resources, with_vn_core, args.rounds)
        met = "met" if profiled >= 3000 else "not met"
        print(f"| {name} | {len(resources):,} | {plain:,.0f} | {full:,.0f} | {profiled:,.0f} | {met} |")


if __name__ == "__main__":
    main()
