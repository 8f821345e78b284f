"""Golden records and review Tasks: what the patient index writes (ADR 0023, docs/mpi.md).

A **golden record** is a Patient owned by the platform, tagged ``mpi|golden``, whose ``link`` entries
(type ``seealso``) name every source record of one person; its demographics are those of its most
complete source. Source records are never changed: they keep their ids, their facility and their data,
so linking never deletes or rewrites anything a facility wrote.

For a Patient written by a facility (:func:`link_patient`), every candidate that shares a blocking key is
graded: a ``certain`` match is linked at once (both end in the same golden record), a ``probable`` or
``possible`` one becomes a **review Task** for a data steward. A pair is judged once: a Task names it by
an identifier (``mpi-pair|<a>|<b>``, ids sorted), and a pair with a Task (open, accepted or rejected) is
never suggested again. The steward completes the Task to link the pair, or rejects it to keep them apart
(:func:`on_task`). Two records already in two *different* golden records are never joined automatically
(that would join two groups on the strength of one pair): that too is a review Task.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.repository import Repository
from ketnoi.mpi.matcher import candidates, score, source_bodies
from ketnoi.mpi.model import Match, Model
from ketnoi.search.extract_mpi import MPI_SYSTEM, is_golden, linked_patients, patient_view

GOLDEN: Final = {"system": MPI_SYSTEM, "code": "golden"}
REVIEW: Final = {"system": MPI_SYSTEM, "code": "match-review"}
PAIR_SYSTEM: Final = "https://fhir.ketnoi.vn/sid/mpi-pair"
_DEMOGRAPHICS: Final = ("name", "gender", "birthDate", "telecom", "address", "maritalStatus", "communication")


@dataclass(slots=True)
class Outcome:
    """What one patient's linking did (counted by the job and the dedupe command)."""

    linked: int = 0
    reviews: int = 0
    skipped: int = 0  # pairs judged before

    def count(self, decision: str) -> None:
        if decision == "linked":
            self.linked += 1
        elif decision == "review":
            self.reviews += 1
        else:
            self.skipped += 1


def pair_key(a: str, b: str) -> str:
    return "|".join(sorted((a, b)))


def link_patient(repo: Repository, id: str, model: Model) -> Outcome:
    """Grade the candidates of ``Patient/id`` and link or send to review (``repo``: with the server's rights)."""
    outcome = Outcome()
    body = current(repo, "Patient", id)
    if body is None or is_golden(body):
        return outcome
    view = patient_view(body)
    for scored in score(view, candidates(repo, view, leave_out=id), model):
        outcome.count(decide(repo, id, scored.id, scored.match))
    return outcome


def decide(repo: Repository, a: str, b: str, match: Match) -> str:
    """Act on one graded pair: ``linked``, ``review`` (a Task written) or ``skipped`` (judged before)."""
    if repo.ids_with_token("Task", "identifier", PAIR_SYSTEM, pair_key(a, b), 1):
        return "skipped"  # a Task names the pair
    goldens = golden_of(repo, a), golden_of(repo, b)
    if goldens[0] is not None and goldens[0] == goldens[1]:
        return "skipped"  # one golden record holds both
    if match.grade == "certain" and link(repo, a, b, match, goldens=goldens):
        return "linked"
    review(repo, a, b, match)
    return "review"


def link(
    repo: Repository,
    a: str,
    b: str,
    match: Match | None,
    *,
    join: bool = False,
    goldens: tuple[str | None, str | None] | None = None,
) -> bool:
    """Put ``a`` and ``b`` in one golden record; False (nothing written) when they are in two different
    ones and ``join`` is not set (a steward's decision joins the two: the second is retired into the first).
    ``goldens``: their golden records, when the caller has just looked them up in this transaction."""
    ga, gb = goldens if goldens is not None else (golden_of(repo, a), golden_of(repo, b))
    if ga is not None and ga == gb:
        return True
    if ga is not None and gb is not None:
        if not join:
            return False
        _retire_into(repo, ga, gb)
        return True
    golden = ga or gb
    members = [a, b] if golden is None else [*_members(repo, golden), a, b]
    _write_golden(repo, golden, members)
    return True


def golden_of(repo: Repository, id: str) -> str | None:
    """The active golden record that links ``Patient/id``, if any (through the ``link`` index rows)."""
    for _, gid in sorted(repo.referring(("Patient", id), resource_type="Patient", param="link")):
        body = current(repo, "Patient", gid)
        if body is not None and is_golden(body) and body.get("active", True):
            return gid
    return None


def current(repo: Repository, resource_type: str, id: str) -> dict[str, Any] | None:
    """The current content, or None when missing, deleted or out of ``repo``'s reach (the index's own
    writes run with the server's rights, so for them nothing is out of reach)."""
    try:
        return res.loads_object(repo.read(resource_type, id).content)
    except FhirError:
        return None


def review(repo: Repository, a: str, b: str, match: Match) -> str:
    """A review Task for the pair (``a`` the record just written); returns its id."""
    first, second = sorted((a, b))
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "proposal",
        "priority": "urgent" if match.grade == "certain" else "routine",
        "code": {"coding": [REVIEW], "text": "Are these two records the same person?"},
        "description": f"Patient/{first} and Patient/{second}: {match.grade} match "
        f"(probability {match.probability:.4f}){'; ' + match.reason if match.reason else ''}",
        "identifier": [{"system": PAIR_SYSTEM, "value": pair_key(a, b)}],
        "focus": {"reference": f"Patient/{a}"},
        "for": {"reference": f"Patient/{a}"},
        "authoredOn": res.instant(res.now()),
        "input": [
            {"type": {"text": "candidate"}, "valueReference": {"reference": f"Patient/{b}"}},
            {"type": {"text": "grade"}, "valueCode": match.grade},
            {"type": {"text": "probability"}, "valueDecimal": round(match.probability, 6)},
        ],
    }
    return repo.create(task).id


def on_task(repo: Repository, task: dict[str, Any]) -> bool:
    """A steward's decision on a review Task: ``completed`` links the pair (joining two golden records if
    need be); ``rejected`` keeps them apart for good (the Task itself is the memory). True if it linked."""
    if not _is_review(task) or task.get("status") != "completed":
        return False
    pair = task_pair(task)
    if pair is None:
        return False
    return link(repo, pair[0], pair[1], None, join=True)


def task_pair(task: dict[str, Any]) -> tuple[str, str] | None:
    for identifier in task.get("identifier") or ():
        if isinstance(identifier, dict) and identifier.get("system") == PAIR_SYSTEM:
            parts = str(identifier.get("value", "")).split("|")
            if len(parts) == 2 and all(res.is_valid_id(p) for p in parts):
                return parts[0], parts[1]
    return None


def _is_review(task: dict[str, Any]) -> bool:
    codings = (task.get("code") or {}).get("coding") or ()
    return any(
        isinstance(c, dict) and c.get("system") == MPI_SYSTEM and c.get("code") == "match-review" for c in codings
    )


def _members(repo: Repository, golden: str) -> list[str]:
    return linked_patients(current(repo, "Patient", golden) or {})


def _write_golden(repo: Repository, golden: str | None, members: Iterable[str]) -> str:
    ids = list(dict.fromkeys(members))  # in order, once
    sources = source_bodies(repo, ids)
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"tag": [GOLDEN]},
        "active": True,
        **_demographics(sources),
        "link": [{"other": {"reference": f"Patient/{pid}"}, "type": "seealso"} for pid in ids],
    }
    if golden is None:
        return repo.create(resource).id
    repo.update("Patient", golden, {**resource, "id": golden})
    return golden


def _retire_into(repo: Repository, keep: str, retire: str) -> None:
    """Join two golden records on a steward's word: ``keep`` gains ``retire``'s sources, and ``retire``
    stays as an inactive record replaced by ``keep`` (nothing deleted: its history tells what it was)."""
    _write_golden(repo, keep, [*_members(repo, keep), *_members(repo, retire)])
    body = current(repo, "Patient", retire) or {}
    body.update(active=False, link=[{"other": {"reference": f"Patient/{keep}"}, "type": "replaced-by"}])
    repo.update("Patient", retire, body)


def _demographics(sources: list[dict[str, Any]]) -> dict[str, Any]:
    """The most complete source's demographics (ties: the latest written), identifiers of all of them."""
    best = max(sources, key=lambda s: (sum(1 for k in _DEMOGRAPHICS if s.get(k)), _updated(s)), default={})
    chosen = {k: best[k] for k in _DEMOGRAPHICS if best.get(k)}
    identifiers: dict[tuple[str, str], dict[str, Any]] = {}
    for source in sources:
        for identifier in source.get("identifier") or ():
            if isinstance(identifier, dict) and identifier.get("value"):
                key = (str(identifier.get("system", "")), str(identifier["value"]))
                identifiers.setdefault(key, {k: v for k, v in identifier.items() if k in ("system", "value", "type")})
    return {**chosen, **({"identifier": list(identifiers.values())} if identifiers else {})}


def _updated(resource: dict[str, Any]) -> str:
    return str((resource.get("meta") or {}).get("lastUpdated", ""))
