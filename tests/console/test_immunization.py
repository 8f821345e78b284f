"""A child's immunisations against the national schedule (ketnoi.console.immunization): pure matching of
Immunization resources to the doses of ketnoi.vn.epi_schedule, by CVX or ATC code and dose number/order."""

from __future__ import annotations

from datetime import date
from typing import Any

from ketnoi.console.immunization import DUE_WINDOW_DAYS, schedule
from ketnoi.vn.epi_schedule import ATC, CVX, SCHEDULE

FLU = "141"  # influenza, not in the programme


def _shot(
    cvx: str | None, on: str, number: int | None = None, *, atc: str | None = None, status: str = "completed"
) -> dict[str, Any]:
    coding = [{"system": CVX, "code": cvx}] if cvx else []
    coding += [{"system": ATC, "code": atc}] if atc else []
    shot: dict[str, Any] = {"resourceType": "Immunization", "status": status, "vaccineCode": {"coding": coding},
                            "occurrenceDateTime": on}  # fmt: skip
    if number is not None:
        shot["protocolApplied"] = [{"doseNumberPositiveInt": number}]
    return shot


def _states(rows: list[Any]) -> list[tuple[str, int, str]]:
    return [(r.vaccine.key, r.dose.dose, r.state) for r in rows]


def test_given_due_overdue_and_upcoming_for_an_infant() -> None:
    birth, today = date(2024, 1, 10), date(2024, 6, 15)  # 157 days old
    shots = [
        _shot("08", "2024-01-10", 1),
        _shot(None, "2024-01-14", atc="J07AN01"),  # BCG named by its ATC code only, no dose number
        _shot("198", "2024-03-12", 1),
        _shot("198", "2024-04-11"),  # no number: the next open dose, by date
        _shot("198", "2024-05-12", 3, status="entered-in-error"),  # not a dose given
        _shot(FLU, "2024-05-01"),
    ]
    rows, others = schedule(birth, today, shots)
    assert len(rows) == len(SCHEDULE)
    states = _states(rows)
    assert states[:9] == [
        ("hepb", 1, "given"), ("bcg", 1, "given"),
        ("penta", 1, "given"), ("bopv", 1, "overdue"),  # due 11/03, more than a month ago
        ("penta", 2, "given"), ("bopv", 2, "overdue"),
        ("penta", 3, "overdue"), ("bopv", 3, "overdue"),  # due 10/05
        ("ipv", 1, "due"),  # due 10/06: within the month
    ]  # fmt: skip
    assert all(state == "upcoming" for _, _, state in states[9:])
    assert rows[1].when == "2024-01-14" and rows[4].when == "2024-04-11"
    assert [o["vaccineCode"]["coding"][0]["code"] for o in others] == [FLU]


def test_the_due_window_ends_in_overdue() -> None:
    birth = date(2024, 1, 10)
    ipv = next(n for n, d in enumerate(SCHEDULE) if d.key == "ipv")
    due = SCHEDULE[ipv].due(birth)
    on_time, _ = schedule(birth, date.fromordinal(due.toordinal() + DUE_WINDOW_DAYS), [])
    late, _ = schedule(birth, date.fromordinal(due.toordinal() + DUE_WINDOW_DAYS + 1), [])
    assert on_time[ipv].state == "due" and late[ipv].state == "overdue"


def test_a_vaccine_that_entered_the_programme_later_is_not_applicable_unless_given() -> None:
    birth, today = date(2012, 3, 1), date(2026, 6, 30)
    rows, _ = schedule(birth, today, [_shot("39", "2014-03-05", 3)])  # JE dose 3 (due 2014-03-01)
    by = {(r.dose.key, r.dose.dose): r for r in rows}
    assert by["ipv", 1].state == "not_applicable"  # IPV since 2018
    assert by["je", 1].state == "not_applicable" and by["je", 2].state == "not_applicable"  # JE since 2014
    assert by["je", 3].state == "given"
    assert by["penta", 1].vaccine.key == "penta" and by["penta", 1].state == "overdue"


def test_a_replaced_vaccine_is_the_one_due_and_matched_by_number_then_order() -> None:
    # Born early 2010: the 5-in-1 came in June 2010, so doses 1-3 were DTP; MR (2015) came after
    # 18 months of age, so that dose was a second measles dose, numbered 1 like the first.
    birth, today = date(2010, 1, 5), date(2026, 6, 30)
    shots = [
        _shot("01", "2010-07-20", 4),  # stated as the booster: not taken for an earlier DTP dose
        _shot("01", "2010-03-08", 1), _shot("01", "2010-04-07", 2), _shot("01", "2010-05-08", 3),
        _shot("05", "2010-10-05", 1), _shot("05", "2011-07-10", 1),
        _shot("05", "2012-01-01"),  # a third measles dose: none left in the schedule
        _shot("02", "2010-03-08", 1),  # tOPV before bOPV (2016)
    ]  # fmt: skip
    rows, others = schedule(birth, today, shots)
    by = {(r.dose.key, r.dose.dose, r.dose.age_days): r for r in rows}
    penta = [by["penta", n, age] for n, age in ((1, 61), (2, 91), (3, 122))]
    assert [(r.vaccine.key, r.state, r.when) for r in penta] == [
        ("dtp", "given", "2010-03-08"), ("dtp", "given", "2010-04-07"), ("dtp", "given", "2010-05-08")
    ]  # fmt: skip
    assert by["dtp", 4, 548].when == "2010-07-20"
    assert (by["measles", 1, 274].when, by["mr", 1, 548].vaccine.key, by["mr", 1, 548].when) == (
        "2010-10-05", "measles", "2011-07-10"
    )  # fmt: skip
    assert (by["bopv", 1, 61].vaccine.key, by["bopv", 1, 61].state) == ("topv", "given")
    assert (by["bopv", 2, 91].vaccine.key, by["bopv", 2, 91].state) == ("topv", "overdue")
    assert [o["occurrenceDateTime"] for o in others] == ["2012-01-01"]
