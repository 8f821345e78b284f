"""The duplicate pairs of a set of patients, in memory: blocking, comparison, grading.

Used by ``ketnoi mpi dedupe`` / ``train`` over a database read in batches, and by the accuracy benchmark
over the synthetic population. Pairs come from the same blocking keys that are written as index rows
with every Patient (:mod:`ketnoi.search.extract_mpi`), so what a whole-database run finds and what
``$match`` finds for one patient agree.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from ketnoi.mpi.compare import compare
from ketnoi.mpi.model import Match, Model
from ketnoi.search.extract_mpi import PARTIAL_ONLY, PatientView, blocking_keys

MAX_BUCKET: Final = 1000  # a key shared by more records is not a key (a desk's placeholder phone)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pair:
    a: int
    b: int
    match: Match


def key_buckets(views: Sequence[PatientView]) -> dict[tuple[str, str], list[int]]:
    """Blocking key -> the indexes of the records that have it."""
    buckets: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, view in enumerate(views):
        for key in blocking_keys(view):
            buckets[key].append(i)
    return buckets


def candidate_pairs(
    views: Sequence[PatientView],
    buckets: dict[tuple[str, str], list[int]] | None = None,
    kinds: frozenset[str] | None = None,
) -> Iterator[tuple[int, int]]:
    """Each pair sharing a blocking key (of ``kinds``, default all), once. The wide ``gy`` key pairs only a
    partial birth date with anything (as :func:`~ketnoi.search.extract_mpi.lookup_keys` looks it up only
    for those)."""
    seen: set[tuple[int, int]] = set()
    for key, members in (buckets if buckets is not None else key_buckets(views)).items():
        if kinds is not None and key[0] not in kinds:
            continue
        if len(members) > MAX_BUCKET:
            log.warning("blocking key %s shared by %d records: skipped", key[0], len(members))
            continue
        for pair in _bucket_pairs(key[0], members, views):
            if pair not in seen:
                seen.add(pair)
                yield pair


def _bucket_pairs(kind: str, members: list[int], views: Sequence[PatientView]) -> Iterator[tuple[int, int]]:
    for x, i in enumerate(members):
        partial_i = views[i].birth[2] is None
        for j in members[x + 1 :]:
            if kind not in PARTIAL_ONLY or partial_i or views[j].birth[2] is None:
                yield (i, j) if i < j else (j, i)


def scored_pairs(views: Sequence[PatientView], model: Model, pairs: Iterator[tuple[int, int]]) -> Iterator[Pair]:
    """Every candidate pair with its grade (``certainly-not`` ones included: the caller filters)."""
    for i, j in pairs:
        yield Pair(i, j, model.decide(compare(views[i], views[j]), views[i]))


@dataclass(slots=True)
class Confusion:
    """Counts of one decision ("linked" or not) against the ground truth."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positive + self.false_negative
        return self.true_positive / wanted if wanted else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> Confusion:
    """``found`` and ``truth`` are pairs of record ids, each pair sorted."""
    hits = len(found & truth)
    return Confusion(hits, len(found) - hits, len(truth) - hits)
