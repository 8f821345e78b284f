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

from ketnoi.fhir import resource as res
from ketnoi.interactions.repository import Repository
from ketnoi.mpi.compare import compare
from ketnoi.mpi.model import Match, Model
from ketnoi.runtime import TimedCache
from ketnoi.search.extract_mpi import PatientView, is_golden, lookup_keys, patient_view, view_of_text

__all__ = [
    "Ranked",
    "Scored",
    "candidates",
    "default_model",
    "lookup_keys",
    "model_for",
    "registry_size",
    "score",
    "source_bodies",
]

MAX_CANDIDATES = 500  # compared at most per record (the blocking keys of a common name find many)
_PATIENTS: TimedCache[int] = TimedCache(300.0)  # the registry's size moves slowly; counting it is not free


@dataclass(frozen=True, slots=True)
class Ranked:
    resource: dict[str, Any]
    match: Match


@dataclass(frozen=True, slots=True)
class Scored:
    id: str
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


def score(query: PatientView, candidates: Iterable[tuple[str, PatientView]], model: Model) -> list[Scored]:
    """The candidates, given as (id, view), that may be ``query``'s person, best first (``certainly-not``
    left out; ties by id, so that the order never depends on the database's)."""
    found = []
    for pid, view in candidates:
        match = model.decide(compare(query, view), query)
        if match.grade != "certainly-not":
            found.append(Scored(pid, match))
    found.sort(key=lambda s: (-s.match.probability, s.id))
    return found


def candidates(repo: Repository, query: PatientView, *, leave_out: str | None = None) -> list[tuple[str, PatientView]]:
    """The Patients that share a blocking key with ``query`` (at most :data:`MAX_CANDIDATES`), as (id,
    view), whatever ``repo``'s caller may read: from their ``~mpi-view`` index rows, and for those
    indexed before such rows existed, from the Patients themselves (one query)."""
    found = [(pid, text) for pid, text in repo.mpi_candidates(lookup_keys(query), MAX_CANDIDATES) if pid != leave_out]
    views = {pid: view_of_text(text) for pid, text in found}
    missing = [pid for pid, view in views.items() if view is None]
    for body in source_bodies(repo.privileged("patient-index"), missing) if missing else ():
        views[str(body.get("id"))] = patient_view(body)
    return [(pid, view) for pid, view in views.items() if view is not None]


def source_bodies(repo: Repository, ids: Iterable[str]) -> list[dict[str, Any]]:
    """The current, non-golden Patients among ``ids`` that ``repo`` may read, in one query (not one each)."""
    bodies = (res.loads_object(v.content) for v in repo.read_many("Patient", list(ids)))
    return [body for body in bodies if not is_golden(body)]


def registry_size(repo: Repository) -> int:
    """How many Patients the database holds (the model's prior), counted at most every 5 minutes per
    store: a count of a million rows takes a tenth of a second, and every ``$match`` and linking step
    needs it."""
    key = str(id(repo.services.store))
    found, count = _PATIENTS.get(key)
    if not found or count is None:
        count = max(repo.patient_count(), 2)
        _PATIENTS.put(key, count)
    return count
