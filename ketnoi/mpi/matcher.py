"""Ranking the candidates of one patient: what ``Patient/$match`` and the background linking share.

The weights are those ``ketnoi mpi train`` wrote (``KETNOI_MPI_MODEL``), or else the model shipped in the package
(``ketnoi/mpi/model.json``, estimated by EM on the synthetic population: docs/mpi.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ketnoi.mpi.compare import compare
from ketnoi.mpi.model import Match, Model
from ketnoi.search.extract_mpi import PatientView, lookup_keys, patient_view

__all__ = ["Ranked", "default_model", "lookup_keys", "model_for", "rank"]


@dataclass(frozen=True, slots=True)
class Ranked:
    resource: dict[str, Any]
    match: Match


@cache
def default_model() -> Model:
    text = resources.files("ketnoi.mpi").joinpath("model.json").read_text(encoding="utf-8")
    return Model.from_json(json.loads(text))


@cache
def model_for(path: str) -> Model:
    """The model ``ketnoi mpi train`` wrote to ``path`` (``Settings.mpi_model``), or the shipped one for "";
    read once per process (a new model takes effect on restart)."""
    if not path:
        return default_model()
    return Model.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def rank(query: dict[str, Any] | PatientView, candidates: Iterable[dict[str, Any]], model: Model) -> list[Ranked]:
    """The candidates that may be ``query``'s person, best first (``certainly-not`` left out; ties by id,
    so that the order never depends on the database's)."""
    view = query if isinstance(query, PatientView) else patient_view(query)
    found = []
    for candidate in candidates:
        match = model.decide(compare(view, patient_view(candidate)), view)
        if match.grade != "certainly-not":
            found.append(Ranked(candidate, match))
    found.sort(key=lambda r: (-r.match.probability, str(r.resource.get("id", ""))))
    return found
