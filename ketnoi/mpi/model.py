"""Fellegi–Sunter weights, term frequencies and match grades (ADR 0023).

For each field level, ``m`` is the probability of that level when the two records are the same person
and ``u`` when they are not; the level adds ``log2(m / u)`` to the match weight. For an exact (or
diacritic-free) agreement of the family or given name, ``u`` is the share of records with *that* name
(term-frequency adjustment): two records agreeing on "Nguyễn", the family name of about 38 % of people,
say little; agreeing on "Lò" says much. The prior is the share of all pairs of records that are the same
person (:meth:`Model.for_records` scales it to the registry's size). The weight becomes a match
probability, and the probability a grade.

Identifiers are rules before weights: two different valid CCCDs are two people, whatever the names say
(``certainly-not``); the same CCCD or social-insurance number is the same person when the birth date and
sex do not contradict it (``certain``), and goes to review when they do (a CCCD typed into the wrong
record happens; a wrong merge is a patient-safety incident, so it is never automatic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

from ketnoi.mpi.compare import FIELDS, LEVELS, Vector
from ketnoi.search.extract_mpi import PatientView

GRADES: Final = ("certain", "probable", "possible", "certainly-not")
_TF_LEVELS: Final = frozenset({"exact", "folded"})
_CONSISTENT_BIRTH: Final = frozenset({"exact", "swapped", "partial", "month"})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Lowest match probability of each grade (the grade below ``possible`` is ``certainly-not``)."""

    certain: float = 0.999
    probable: float = 0.9
    possible: float = 0.1


@dataclass(frozen=True, slots=True)
class Match:
    probability: float
    grade: str
    weight: float
    reason: str = ""


@dataclass(slots=True)
class Model:
    prior: float
    m: dict[str, dict[str, float]]
    u: dict[str, dict[str, float]]
    tf: dict[str, dict[str, float]] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    trained: dict[str, Any] = field(default_factory=dict)  # how and on what the weights were estimated

    def for_records(self, records: int) -> Model:
        """The same weights for a database of ``records`` patients. The prior is the share of all pairs that
        are the same person; duplicates per record stay about constant as a registry grows, so the prior
        falls as 1/N: the more people, the likelier a stranger with the same name and birth date."""
        trained = int(self.trained.get("records", 0))
        if trained < 2 or records < 2:
            return self
        prior = min(self.prior * (trained - 1) / (records - 1), 0.5)
        return Model(prior, self.m, self.u, self.tf, self.thresholds, self.trained)

    def level_weight(self, name: str, level: str) -> float:
        return math.log2(self.m[name][level] / self.u[name][level])

    def weight(self, vector: Vector, a: PatientView | None = None) -> float:
        """log2 of the odds that the pair is a match; ``a`` (one of the two) gives the names for the
        term-frequency adjustment."""
        total = math.log2(self.prior / (1.0 - self.prior))
        for name, level in zip(FIELDS, vector, strict=True):
            if level is not None:
                total += self._weight(name, level, a)
        return total

    def _weight(self, name: str, level: str, a: PatientView | None) -> float:
        table = self.tf.get(name)
        if a is not None and table and level in _TF_LEVELS:
            # A name never seen in training is at least as rare as the rarest one seen.
            share = table.get(a.family if name == "family" else a.given) or min(table.values())
            return math.log2(self.m[name][level] / max(share, self.u[name][level] / 100))
        return self.level_weight(name, level)

    def decide(self, vector: Vector, a: PatientView) -> Match:
        """The grade of a compared pair (``a`` is either of the two)."""
        weight = self.weight(vector, a)
        probability = 1.0 / (1.0 + 2.0**-weight) if weight > -1000 else 0.0
        cccd, bhxh = vector[0], vector[1]
        if cccd == "disagree":
            return Match(0.0, "certainly-not", weight, "two different CCCD numbers")
        if "agree" in (cccd, bhxh):
            return _identifier_rule(vector, probability, weight, self.thresholds)
        return Match(probability, self.grade(probability), weight)

    def grade(self, probability: float) -> str:
        t = self.thresholds
        if probability >= t.certain:
            return "certain"
        if probability >= t.probable:
            return "probable"
        return "possible" if probability >= t.possible else "certainly-not"

    def to_json(self) -> dict[str, Any]:
        t = self.thresholds
        return {
            "prior": self.prior,
            "m": self.m,
            "u": self.u,
            "tf": self.tf,
            "thresholds": {"certain": t.certain, "probable": t.probable, "possible": t.possible},
            "trained": self.trained,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model:
        model = cls(
            prior=float(data["prior"]),
            m=data["m"],
            u=data["u"],
            tf=data.get("tf", {}),
            thresholds=Thresholds(**data.get("thresholds", {})),
            trained=data.get("trained", {}),
        )
        model.check()
        return model

    def check(self) -> None:
        """Refuse a model that cannot weigh every level (a hand-edited file, a newer field)."""
        if not 0.0 < self.prior < 1.0:
            raise ValueError(f"prior must be between 0 and 1, not {self.prior}")
        for name in FIELDS:
            for level in LEVELS[name]:
                for table, label in ((self.m, "m"), (self.u, "u")):
                    value = table.get(name, {}).get(level)
                    if not isinstance(value, float | int) or not 0.0 < value <= 1.0:
                        raise ValueError(f"{label}[{name}][{level}] must be a probability above 0, not {value!r}")


def _identifier_rule(vector: Vector, probability: float, weight: float, thresholds: Thresholds) -> Match:
    birth, gender = vector[6], vector[7]
    if birth in (None, *_CONSISTENT_BIRTH) and gender != "disagree":
        return Match(max(probability, thresholds.certain), "certain", weight, "same identifier")
    # The same identifier on records whose birth date or sex contradict: a typing error or a shared card.
    capped = min(max(probability, thresholds.probable), thresholds.certain - 1e-6)
    return Match(capped, "probable", weight, "same identifier, birth date or sex differ")
