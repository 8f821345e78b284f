"""Estimating the weights from the data itself (expectation–maximisation, the way Splink does).

No labelled pairs are needed, which matters: a national registry has none.

1. ``u`` (how often two *different* people agree by chance) from random pairs: nearly every random pair
   is two different people, so the level frequencies among them are the ``u`` probabilities.
2. ``m`` (how often the *same* person's two records agree) and the prior by EM over the candidate pairs
   (pairs sharing a blocking key), with ``u`` held fixed. Pairs are counted by their comparison vector,
   so an iteration costs the number of distinct vectors (hundreds), not the number of pairs (millions).
3. Term frequencies of family and given names (folded) from the records.

Blocking biases EM a little: a candidate pair shares at least one key, so it agrees more often than a
random pair on the keyed fields. The keys are many and overlap, so most true pairs are found through
several; docs/mpi.md compares the estimates with the ground truth of the synthetic population.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ketnoi.mpi.compare import FIELDS, LEVELS, Vector, compare
from ketnoi.mpi.dedupe import candidate_pairs, key_buckets
from ketnoi.mpi.model import Model, Thresholds
from ketnoi.search.extract_mpi import PatientView

ITERATIONS: Final = 40
MIN_SESSION_PAIRS: Final = 50  # fewer candidate pairs than this: the session estimates nothing
# Training sessions (Splink's): the candidate pairs of one kind of blocking key, and the fields that key
# is made of, which those pairs agree on by construction and whose m the session therefore cannot tell.
SESSIONS: Final = (
    ("c", frozenset({"cccd"})),
    ("s", frozenset({"bhxh"})),
    ("t", frozenset({"phone"})),
    ("gm", frozenset({"given", "birth"})),
    ("fd", frozenset({"family", "birth"})),
)
TF_KEEP: Final = 5000  # the most common names kept in the term-frequency tables
# Where EM starts: agreement likely for the same person. Any sensible start converges to the same place;
# these only keep the first iterations from labelling the wrong cluster "match".
_M_START: Final = {
    "cccd": (0.95, 0.05),
    "bhxh": (0.95, 0.05),
    "phone": (0.9, 0.1),
    "family": (0.7, 0.15, 0.05, 0.05, 0.05),
    "given": (0.7, 0.15, 0.05, 0.05, 0.05),
    "middle": (0.7, 0.1, 0.1, 0.1),
    "birth": (0.7, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05),
    "gender": (0.98, 0.02),
    "place": (0.6, 0.3, 0.1),
}


def estimate_u(views: Sequence[PatientView], pairs: int, rng: random.Random) -> dict[str, dict[str, float]]:
    """Level frequencies among random pairs, smoothed so that no level is impossible."""
    counts = {name: Counter[str]() for name in FIELDS}
    n = len(views)
    for _ in range(pairs if n > 1 else 0):
        i, j = rng.randrange(n), rng.randrange(n)
        if i != j:
            for name, level in zip(FIELDS, compare(views[i], views[j]), strict=True):
                if level is not None:
                    counts[name][level] += 1
    return {name: _smoothed(counts[name], LEVELS[name]) for name in FIELDS}


def estimate_m(
    vectors: Counter[Vector], u: dict[str, dict[str, float]], iterations: int = ITERATIONS
) -> tuple[dict[str, dict[str, float]], float]:
    """(m, prior) by EM over counted comparison vectors, ``u`` fixed."""
    m = {name: dict(zip(LEVELS[name], _M_START[name], strict=True)) for name in FIELDS}
    prior = 0.1
    for _ in range(iterations):
        expected: dict[str, dict[str, float]] = {name: {} for name in FIELDS}
        matches = total = 0.0
        for vector, count in vectors.items():
            p = _match_share(vector, m, u, prior)
            matches += p * count
            total += count
            for name, level in zip(FIELDS, vector, strict=True):
                if level is not None:
                    expected[name][level] = expected[name].get(level, 0.0) + p * count
        prior = min(max(matches / total, 1e-9), 1 - 1e-9) if total else prior
        m = {name: _smoothed(expected[name], LEVELS[name]) for name in FIELDS}
    return m, prior


def term_frequencies(views: Iterable[PatientView]) -> dict[str, dict[str, float]]:
    family, given = Counter[str](), Counter[str]()
    for view in views:
        if view.family:
            family[view.family] += 1
        if view.given:
            given[view.given] += 1
    return {"family": _shares(family), "given": _shares(given)}


def train(
    views: Sequence[PatientView],
    *,
    random_pairs: int = 200_000,
    seed: int = 0,
    thresholds: Thresholds | None = None,
) -> Model:
    """A model estimated from ``views`` alone."""
    u = estimate_u(views, random_pairs, random.Random(seed))
    buckets = key_buckets(views)
    estimates: dict[str, list[dict[str, float]]] = {name: [] for name in FIELDS}
    sessions: dict[str, int] = {}
    for kind, masked in SESSIONS:
        vectors = _masked_vectors(views, candidate_pairs(views, buckets, frozenset({kind})), masked)
        sessions[kind] = sum(vectors.values())
        if sessions[kind] >= MIN_SESSION_PAIRS:
            m, _ = estimate_m(vectors, u)
            for name in FIELDS:
                if name not in masked:
                    estimates[name].append(m[name])
    m = {name: _mean(estimates[name], name) for name in FIELDS}
    everything = Counter(compare(views[i], views[j]) for i, j in candidate_pairs(views, buckets))
    prior = estimate_prior(everything, m, u, len(views) * (len(views) - 1) // 2)
    info: dict[str, Any] = {
        "records": len(views),
        "candidate_pairs": sum(everything.values()),
        "session_pairs": sessions,
        "random_pairs": random_pairs,
        "iterations": ITERATIONS,
    }
    return Model(prior, m, u, term_frequencies(views), thresholds or Thresholds(), info)


def estimate_prior(
    vectors: Counter[Vector], m: dict[str, dict[str, float]], u: dict[str, dict[str, float]], all_pairs: int
) -> float:
    """The probability that two random records are the same person: the expected matches among the
    candidate pairs (pairs sharing no key are taken as non-matches) over every pair, by EM on it alone."""
    prior = 1.0 / max(all_pairs, 2)
    for _ in range(ITERATIONS):
        matches = sum(_match_share(vector, m, u, prior) * count for vector, count in vectors.items())
        prior = min(max(matches / max(all_pairs, 1), 1e-12), 0.5)
    return prior


def _masked_vectors(
    views: Sequence[PatientView], pairs: Iterable[tuple[int, int]], masked: frozenset[str]
) -> Counter[Vector]:
    """The vectors with the session's blocked fields set to None: a pair found through a key agrees on
    that key's fields by construction, so they say nothing about m there."""
    keep = [name not in masked for name in FIELDS]
    counted: Counter[Vector] = Counter()
    for i, j in pairs:
        vector = compare(views[i], views[j])
        counted[tuple(level if k else None for level, k in zip(vector, keep, strict=True))] += 1
    return counted


def _mean(found: list[dict[str, float]], name: str) -> dict[str, float]:
    if not found:  # no session could estimate it: keep the starting guess
        return dict(zip(LEVELS[name], _M_START[name], strict=True))
    return {level: sum(m[level] for m in found) / len(found) for level in LEVELS[name]}


def _match_share(vector: Vector, m: dict[str, dict[str, float]], u: dict[str, dict[str, float]], prior: float) -> float:
    pm, pu = prior, 1.0 - prior
    for name, level in zip(FIELDS, vector, strict=True):
        if level is not None:
            pm *= m[name][level]
            pu *= u[name][level]
    return pm / (pm + pu) if pm + pu > 0 else 0.0


def _smoothed(counts: Mapping[str, float], levels: tuple[str, ...]) -> dict[str, float]:
    """Frequencies with half a count added to every level (a level never seen is rare, not impossible)."""
    total = sum(counts.values()) + 0.5 * len(levels)
    return {level: (counts.get(level, 0.0) + 0.5) / total for level in levels}


def _shares(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    return {value: count / total for value, count in counts.most_common(TF_KEEP)} if total else {}
