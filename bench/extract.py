"""Benchmark search-index extraction: resources/second and µs/resource.

Run: ``.venv/bin/python bench/extract.py`` (from the repository root). Measures
1. every official R4 example (819 resources, 145 types), repeated 5 times;
2. a batch of Observations (the official Observation examples, cycled to 5,000);
3. single representative resources (Patient, Observation, Encounter examples).
Plans are built before timing (first use of a type compiles its expressions once per process).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ketnoi.search.extract import default_extractor

EXAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "fhir-r4-examples" / "json"


def load(prefix: str = "") -> list[dict[str, Any]]:
    return [orjson.loads(p.read_bytes()) for p in sorted(EXAMPLES.glob(f"{prefix}*.json"))]


def measure(resources: list[dict[str, Any]], repeat: int, extract: Callable[[dict[str, Any]], Any]) -> float:
    """Best-of-3 seconds for ``repeat`` passes over ``resources``."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            for resource in resources:
                extract(resource)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    extractor = default_extractor()
    everything = load()
    observations = load("Observation-")
    batch = [observations[i % len(observations)] for i in range(5000)]
    for resource in everything:  # build every type's plan outside the timed loops
        extractor.extract(resource)

    cases = [
        ("all official examples ×5", everything, 5),
        ("Observation batch (5,000)", batch, 1),
    ]
    for name in ("Patient-example.json", "Observation-example.json", "Encounter-example.json"):
        cases.append((name, [orjson.loads((EXAMPLES / name).read_bytes())], 2000))

    # stdout is the report (ruff's T20 forbids print in library code; this is a script).
    out = sys.stdout
    out.write(f"{'case':<32}{'resources':>10}{'seconds':>10}{'res/s':>12}{'µs/res':>10}\n")
    for label, resources, repeat in cases:
        seconds = measure(resources, repeat, extractor.extract)
        count = len(resources) * repeat
        rate, micros = count / seconds, seconds / count * 1e6
        out.write(f"{label:<32}{count:>10}{seconds:>10.3f}{rate:>12,.0f}{micros:>10.1f}\n")


if __name__ == "__main__":
    main()
