"""A read's policy facts in the read's own statement (issue 10; ADR 0017, decision of 2026-12-03).

On PostgreSQL a facility's read selects ``ketnoi_row_facts`` beside the resource row, so that the
openness of the row's patients needs no second statement. These tests hold that path to the same
answers as the separate query: the function gives each patient's facts exactly as
``ketnoi_patient_facts`` does, a change of a Consent or a care relation applies to the very next
read (nothing is kept across requests), and a read whose patients the index does not name still
asks for them. On SQLite the read is unchanged; the same rules are checked there too.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ketnoi.interactions.repository import Repository
from ketnoi.interactions.services import Services
from ketnoi.store.base import StoredVersion
from ketnoi.store.sqlstore import SqlSession
from tests.interactions.test_reach import (
    BACKEND,
    CLINICIAN,
    DAY,
    F1,
    OPERATOR,
    consent,
    give_care,
    obs,
    put,
    visible,
    world,  # noqa: F401  (the fixture)
)


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The patients whose facts were asked in a statement of their own (``Repository.patient_facts``)."""
    patients: list[str] = []
    separate = Repository.patient_facts

    def counting(self: Repository, org: str, patient: str, cutoff: float) -> list[tuple[str, str, str, str]]:
        patients.append(patient)
        return separate(self, org, patient, cutoff)

    monkeypatch.setattr(Repository, "patient_facts", counting)
    return patients


def test_row_facts_are_each_patients_facts(world: Services) -> None:  # noqa: F811
    """``ketnoi_read_facts`` (migration 18, over ``ketnoi_row_facts`` of 17) gives the row and, per
    patient of the row, the rows of
    ``ketnoi_patient_facts``; NULL for a row the organization owns, or one without a patient."""
    s = world
    if s.store.dialect != "postgresql":
        pytest.skip("ketnoi_row_facts is PostgreSQL's")
    from ketnoi.interactions.policy import compartment_params
    from ketnoi.search.reach import patient_facts_call, read_with_facts
    from ketnoi.sql import SqlQuery

    give_care(s)
    put(s, OPERATOR, consent("c1", "A", "deny", code=[{"coding": [{"system": "http://x", "code": "y"}]}]))
    now, cutoff = time.time(), time.time() - 30 * DAY

    def beside(rtype: str, id: str, org: str) -> Any:
        params = None if rtype == "Patient" else compartment_params(rtype)
        frag = read_with_facts(rtype, id, params, org, cutoff, "glass:p1", now)
        with s.store.session(write=False) as session:
            return session.current_with(rtype, id, SqlQuery(frag.text, frag.params))[1]

    def alone(patient: str, org: str) -> list[tuple[Any, ...]]:
        frag = patient_facts_call(patient, org, cutoff, "glass:p1", now)
        with s.store.session(write=False) as session:
            return sorted(session.query(SqlQuery(frag.text, frag.params)))

    def grouped(value: list[list[Any]]) -> dict[str, list[tuple[Any, ...]]]:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for patient, *fact in value:
            out.setdefault(patient, [])
            if fact[0] is not None:
                out[patient].append(tuple(fact))
        return {p: sorted(f) for p, f in out.items()}

    assert grouped(beside("Observation", "a-f2", "F1")) == {"A": alone("A", "F1")}
    for org in ("F1", "F2"):
        assert grouped(beside("Patient", "A", org)) == {"A": alone("A", org)}
        assert grouped(beside("Patient", "B", org)) == {"B": alone("B", org)}
    assert grouped(beside("Observation", "a-f1", "F2")) == {"A": alone("A", "F2"), "B": alone("B", "F2")}
    assert alone("A", "F1") and not alone("B", "F1")  # the comparison is not between empty lists
    assert beside("Observation", "a-f1", "F1") is None  # F1 owns it: no patient matters
    assert beside("Observation", "a-f2", "F2") is None  # and F2 this one
    assert beside("Observation", "nothing", "F1") is None


def test_a_read_asks_no_second_statement_on_postgresql(world: Services, asked: list[str]) -> None:  # noqa: F811
    s = world
    give_care(s)
    assert visible(s, BACKEND, "Observation/a-f2") and visible(s, BACKEND, "Patient/A")
    assert not visible(s, BACKEND, "Observation/b-obs")
    assert asked == ([] if s.store.dialect == "postgresql" else ["A", "A", "B"])


def test_a_change_of_consent_or_care_applies_to_the_very_next_read(world: Services) -> None:  # noqa: F811
    """No fact outlives its request: each read after a write decides on the database as it is."""
    s = world
    give_care(s)
    assert visible(s, CLINICIAN, "Observation/a-f2")
    put(s, OPERATOR, consent("no-f1", "A", "deny", actor=F1))
    assert not visible(s, CLINICIAN, "Observation/a-f2") and not visible(s, CLINICIAN, "Patient/A")
    put(s, OPERATOR, consent("no-f1", "A", "deny", actor=F1, status="inactive"))  # withdrawn
    assert visible(s, CLINICIAN, "Observation/a-f2") and visible(s, CLINICIAN, "Patient/A")
    give_care(s, days_ago=50, ended=40)  # the same Encounter, now ended before the window
    assert not visible(s, CLINICIAN, "Observation/a-f2") and not visible(s, CLINICIAN, "Patient/A")
    give_care(s)  # reopened
    assert visible(s, CLINICIAN, "Observation/a-f2")


def test_a_patient_the_index_does_not_name_is_still_asked(
    world: Services,  # noqa: F811
    asked: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The facts beside the row cover the patients of its index rows; the policy takes the
    patients from the content. One the index missed (here: the facts say nothing) is asked apart."""
    s = world
    give_care(s)
    put(s, OPERATOR, obs("a-new", "A"))

    def nothing_beside(self: Any, rtype: str, id: str, query: Any) -> tuple[StoredVersion | None, Any]:
        return self.current(rtype, id), None

    monkeypatch.setattr(SqlSession, "current_with", nothing_beside)
    assert visible(s, CLINICIAN, "Observation/a-new") and not visible(s, CLINICIAN, "Observation/b-obs")
    assert asked == ["A", "B"]
