"""A child's immunisations against Vietnam's national schedule (TCMR, :mod:`ketnoi.vn.epi_schedule`).

Pure: the patient's Immunization resources (as the interactions returned them to the caller) and two
dates in, one row per scheduled dose out. A dose is *given* when an Immunization of its vaccine (any
CVX or ATC coding) is matched to it: first by the dose number the Immunization states
(``protocolApplied.doseNumber``), then, for those without one, by order of date. Otherwise it is *due*
(from its age for up to :data:`DUE_WINDOW_DAYS`), *overdue* after that, *upcoming* before it, or *not
applicable*: the vaccine entered the programme after the child's age for it, with nothing given instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from ketnoi.vn.epi_schedule import SCHEDULE, VACCINES, Dose, Vaccine, vaccine_of

#: How long after its age a dose counts as "due now" before it is "overdue" (the programme's monthly
#: vaccination day at the commune station comes round within this).
DUE_WINDOW_DAYS: Final = 30
STATES: Final = ("given", "due", "overdue", "upcoming", "not_applicable")


@dataclass(frozen=True, slots=True)
class ScheduledDose:
    dose: Dose
    vaccine: Vaccine  # the one due for this child (the replaced one before ``since``), else the dose's own
    due: date
    state: str  # one of STATES
    given: dict[str, Any] | None = None  # the Immunization matched to it

    @property
    def when(self) -> str:
        """The date the dose was given (FHIR date or dateTime), or ""."""
        return occurrence(self.given) if self.given else ""


def occurrence(immunization: dict[str, Any]) -> str:
    return str(immunization.get("occurrenceDateTime") or immunization.get("occurrenceString") or "")


def dose_number(immunization: dict[str, Any]) -> int | None:
    """The dose number the Immunization states (positiveInt, or a string of digits), or None."""
    for applied in immunization.get("protocolApplied") or ():
        if not isinstance(applied, dict):
            continue
        number = applied.get("doseNumberPositiveInt")
        if isinstance(number, int) and not isinstance(number, bool):
            return number
        text = str(applied.get("doseNumberString") or "").strip()
        if text.isdigit():
            return int(text)
    return None


def schedule(
    birth: date, today: date, immunizations: list[dict[str, Any]]
) -> tuple[list[ScheduledDose], list[dict[str, Any]]]:
    """Each dose of the schedule for a child born on ``birth`` as of ``today``, in the schedule's order,
    and the Immunizations matched to none (another vaccine, an extra dose), oldest first."""
    completed = sorted(
        (i for i in immunizations if i.get("status") == "completed" and vaccine_of(i.get("vaccineCode"))),
        key=occurrence,
    )
    doses = [(dose, dose.vaccine_for(birth)) for dose in SCHEDULE]
    # The vaccine each dose is matched on: the one due for this child, else (not applicable) its own, so
    # that a dose given anyway (a catch-up) still shows as given.
    keys = [due_key or dose.key for dose, due_key in doses]
    matched: dict[int, dict[str, Any]] = {}
    used: set[int] = set()
    for key in dict.fromkeys(keys):
        slots = [n for n, k in enumerate(keys) if k == key]
        given = [n for n, imm in enumerate(completed) if vaccine_of(imm.get("vaccineCode")) == key]
        _match(slots, given, doses, completed, matched, used)
    rows = []
    for n, (dose, due_key) in enumerate(doses):
        due = dose.due(birth)
        vaccine = VACCINES[due_key or dose.key]
        rows.append(ScheduledDose(dose, vaccine, due, _state(due, today, n in matched, due_key), matched.get(n)))
    others = [imm for n, imm in enumerate(completed) if n not in used]
    others += [i for i in immunizations if i.get("status") == "completed" and not vaccine_of(i.get("vaccineCode"))]
    return rows, sorted(others, key=occurrence)


def _match(
    slots: list[int],
    given: list[int],
    doses: list[tuple[Dose, str | None]],
    completed: list[dict[str, Any]],
    matched: dict[int, dict[str, Any]],
    used: set[int],
) -> None:
    """Match one vaccine's Immunizations (``given``, by date) to its doses (``slots``, by age): those
    stating a dose number to the earliest open dose of that number, then the rest in order."""
    for n in given:
        number = dose_number(completed[n])
        slot = next((s for s in slots if s not in matched and doses[s][0].dose == number), None)
        if slot is not None:
            matched[slot] = completed[n]
            used.add(n)
    for n in given:
        if n in used:
            continue
        slot = next((s for s in slots if s not in matched), None)
        if slot is None:
            return  # more doses than the schedule has: the rest are "other immunizations"
        matched[slot] = completed[n]
        used.add(n)


def _state(due: date, today: date, given: bool, due_key: str | None) -> str:
    if given:
        return "given"
    if due_key is None:
        return "not_applicable"
    if today < due:
        return "upcoming"
    return "due" if today <= due + timedelta(days=DUE_WINDOW_DAYS) else "overdue"
