"""Accuracy of the master patient index on the synthetic population's planted duplicates (issue 13).

For each set (``normal``: the generator's default error model; ``hard``: ``--hard-duplicates``, more
errors per duplicate, fewer identifiers, and twins: different people with the same family name, birth
date, sex and address), the Patients of ``ketnoi.demo.generate.iter_blocks`` are read into patient views
and deduplicated in memory the way ``ketnoi mpi dedupe`` does (``ketnoi.mpi.dedupe``): blocking keys,
candidate pairs, comparison, grades. The weights are estimated by EM on the set itself (unsupervised, as
``ketnoi mpi train`` does on a deployment's data; the ground truth is never shown to it), and also taken
from the model shipped in the package (estimated on another seed) to show the thresholds carry over.

Reported against the ground truth (duplicates.csv): blocking recall (true pairs that share a key), and for
auto-links (``certain``) and for review-or-better (``certain``, ``probable``, ``possible``) the confusion
counts, precision, recall and F1. Issue 13's targets: auto-link precision >= 0.995, review-or-better
recall >= 0.97. A pair of twins linked is a false positive like any other (counted apart as well).

Usage: .venv/bin/python bench/mpi_accuracy.py [--patients N] [--seed S] [--sets normal,hard]   (100,000)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from ketnoi.demo.generate import iter_blocks_truth
from ketnoi.mpi.dedupe import Confusion, Pair, candidate_pairs, evaluate, key_buckets, scored_pairs
from ketnoi.mpi.matcher import default_model
from ketnoi.mpi.model import Model
from ketnoi.mpi.train import train
from ketnoi.search.extract_mpi import PatientView, patient_view

AUTO = frozenset({"certain"})
REVIEW = frozenset({"certain", "probable", "possible"})
TARGET_PRECISION, TARGET_RECALL = 0.995, 0.97

IdPair = tuple[str, str]


@dataclass
class Population:
    ids: list[str] = field(default_factory=list)
    views: list[PatientView] = field(default_factory=list)
    truth: dict[IdPair, tuple[str, ...]] = field(default_factory=dict)  # pair -> error kinds
    twins: set[IdPair] = field(default_factory=set)


def sorted_pair(a: str, b: str) -> IdPair:
    return (a, b) if a < b else (b, a)


def population(patients: int, seed: int, hard: bool) -> Population:
    pop = Population()
    for block, dup, twin in _blocks(patients, seed, hard):
        for resource in block:
            if resource["resourceType"] == "Patient":
                pop.ids.append(str(resource["id"]))
                pop.views.append(patient_view(resource))
        if dup is not None:
            pop.truth[sorted_pair(dup.duplicate_id, dup.original_id)] = tuple(dup.errors)
        if twin is not None:
            pop.twins.add(sorted_pair(twin.twin_id, twin.sibling_id))
    return pop


def _blocks(patients: int, seed: int, hard: bool) -> Iterator[tuple[list[dict[str, Any]], Any, Any]]:
    """(resources, duplicate record, twin record) per patient."""
    for block in iter_blocks_truth(patients, seed, hard=hard):
        yield block.resources, block.duplicate, block.twin


@dataclass
class Result:
    label: str
    blocking_recall: float
    candidates: int
    auto: Confusion
    review: Confusion
    twins_linked: int
    missed_by_kind: Counter[str]
    seconds: float


def assess(pop: Population, model: Model, label: str, pairs: list[tuple[int, int]]) -> Result:
    started = time.perf_counter()
    scored = [p for p in scored_pairs(pop.views, model, iter(pairs)) if p.match.grade != "certainly-not"]
    elapsed = time.perf_counter() - started
    keyed = {sorted_pair(pop.ids[i], pop.ids[j]) for i, j in pairs}
    truth = set(pop.truth)
    auto, review = _found(pop, scored, AUTO), _found(pop, scored, REVIEW)
    missed: Counter[str] = Counter()
    for pair in truth - review:
        missed.update(pop.truth[pair])
    return Result(
        label,
        len(keyed & truth) / len(truth) if truth else 1.0,
        len(pairs),
        evaluate(auto, truth),
        evaluate(review, truth),
        len(auto & pop.twins),
        missed,
        elapsed,
    )


def _found(pop: Population, scored: Sequence[Pair], grades: frozenset[str]) -> set[IdPair]:
    return {sorted_pair(pop.ids[p.a], pop.ids[p.b]) for p in scored if p.match.grade in grades}


def run_set(name: str, patients: int, seed: int) -> list[Result]:
    started = time.perf_counter()
    pop = population(patients, seed, hard=name == "hard")
    print(f"[{name}] {len(pop.views):,} records, {len(pop.truth):,} planted duplicate pairs, "
          f"{len(pop.twins):,} twin pairs, generated in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    started = time.perf_counter()
    pairs = list(candidate_pairs(pop.views, key_buckets(pop.views)))
    print(f"[{name}] blocking: {len(pairs):,} candidate pairs in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    trained = train(pop.views)
    print(f"[{name}] EM training in {time.perf_counter() - started:.1f} s", flush=True)
    shipped = default_model().for_records(len(pop.views))
    return [assess(pop, trained, f"{name}, trained on it", pairs), assess(pop, shipped, f"{name}, shipped", pairs)]


def report(results: Sequence[Result]) -> str:
    header = ["set, weights", "block recall", "candidates", "decision", "TP", "FP", "FN", "precision", "recall", "F1"]
    rows = []
    for r in results:
        for decision, c in (("auto-link", r.auto), ("review+", r.review)):
            rows.append([r.label, f"{r.blocking_recall:.4f}", f"{r.candidates:,}", decision,
                         f"{c.true_positive:,}", f"{c.false_positive:,}", f"{c.false_negative:,}",
                         f"{c.precision:.4f}", f"{c.recall:.4f}", f"{c.f1:.4f}"])  # fmt: skip
    return common.table(header, rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sets", default="normal,hard")
    args = parser.parse_args(argv)
    common.print_machine(common.machine_info())
    results = [r for name in args.sets.split(",") for r in run_set(name, args.patients, args.seed)]
    print(report(results))
    for r in results:
        kinds = ", ".join(f"{k} {n}" for k, n in r.missed_by_kind.most_common()) or "none"
        print(f"{r.label}: twins auto-linked {r.twins_linked}; duplicates missed (review+) by error kind: {kinds}")
    ok = all(r.auto.precision >= TARGET_PRECISION and r.review.recall >= TARGET_RECALL for r in results)
    print(f"targets (auto-link precision >= {TARGET_PRECISION}, review+ recall >= {TARGET_RECALL}): "
          f"{'met' if ok else 'NOT met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
