"""Throughput of ketnoi.validation.validate over the 819 official R4 examples.

Usage: .venv/bin/python bench/validate.py [rounds]   (default 10 rounds)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from ketnoi.validation import validate

EXAMPLES = Path(__file__).resolve().parent.parent / "tests/data/fhir-r4-examples/json"


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    resources = [orjson.loads(p.read_bytes()) for p in sorted(EXAMPLES.glob("*.json"))]
    total_bytes = sum(len(p.read_bytes()) for p in EXAMPLES.glob("*.json"))
    for resource in resources:  # compile every table first: the steady state is what matters
        validate(resource)
    start = time.perf_counter()
    for _ in range(rounds):
        for resource in resources:
            validate(resource)
    elapsed = time.perf_counter() - start
    count = rounds * len(resources)
    print(
        f"{count} validations in {elapsed:.2f} s: {count / elapsed:,.0f} resources/s, "
        f"{elapsed / count * 1e6:.0f} µs mean, {total_bytes * rounds / elapsed / 1e6:.1f} MB/s"
    )
    for name in (
        "Observation-eye-color.json",
        "Observation-body-temperature.json",
        "Observation-example.json",
    ):
        raw = (EXAMPLES / name).read_bytes()
        observation = orjson.loads(raw)
        n = 20000
        start = time.perf_counter()
        for _ in range(n):
            validate(observation)
        per = (time.perf_counter() - start) / n
        print(f"{name} ({len(raw)} bytes): {per * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
