"""Appointments of the synthetic population: what the patient portal's "My appointments" shows.

Two kinds, both booked after the data set's "today" (``people.AS_OF``):

* a **follow-up visit** for a patient with a chronic condition, at the commune station, with one of
  its doctors, two to eight weeks on, for the conditions on the problem list;
* the **next vaccination** of a child under two, at the commune station's morning session on the day
  the expanded programme's schedule (``vaccines.EPI_SCHEDULE``) next has doses due.

Each patient's appointments draw from an RNG of their own (seeded from the patient's id), not from the
patient's stream: adding them leaves every other resource of the data set byte-identical.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from ketnoi.demo import ids, people, vaccines
from ketnoi.demo.care import PatientCare, local_time

Resource = dict[str, Any]

_V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
FOLLOW_UP = {"coding": [{"system": _V2_0276, "code": "FOLLOWUP", "display": "A follow up visit"}], "text": "Tái khám"}
ROUTINE = {"coding": [{"system": _V2_0276, "code": "ROUTINE", "display": "Routine appointment"}], "text": "Tiêm chủng"}
FOLLOW_UP_INSTRUCTION = (
    "Mang theo thẻ BHYT, sổ khám bệnh và đơn thuốc đang dùng. Nhịn ăn sáng nếu được hẹn xét nghiệm máu."
)
VACCINATION_INSTRUCTION = (
    "Mang theo sổ tiêm chủng của trẻ. Cho trẻ ăn no trước khi tiêm; ở lại trạm 30 phút sau tiêm để theo dõi."
)
_CHILD_DAYS = 731  # the schedule's last doses are due at two years


def appointments(care: PatientCare) -> None:
    """The patient's booked appointments, appended to ``care.out`` (after their care, which they follow)."""
    rng = random.Random(f"ketnoi-demo:appointment:{care.p.id}")
    if care.chronic:
        _follow_up(care, rng)
    _next_vaccination(care, rng)


def _follow_up(care: PatientCare, rng: random.Random) -> None:
    station = care.station
    doctor = rng.choice(station.doctors)
    day = _weekday(people.AS_OF + timedelta(days=rng.randrange(14, 57)))
    minute = rng.randrange(7 * 60, 11 * 60, 15)
    reasons = [pr.ref for pr in care.chronic]
    names = ", ".join(str(pr.chronic.concept.get("text") or "") for pr in care.chronic)
    care.out.append(
        {
            "resourceType": "Appointment",
            "id": ids.rng_uuid(rng),
            "status": "booked",
            "appointmentType": FOLLOW_UP,
            "reasonReference": reasons,
            "description": f"Tái khám định kỳ: {names}" if names else "Tái khám định kỳ",
            "start": _instant(day, minute),
            "end": _instant(day, minute + 20),
            "minutesDuration": 20,
            "created": _instant(people.AS_OF, 9 * 60),
            "patientInstruction": FOLLOW_UP_INSTRUCTION,
            "participant": _participants(care, doctor, station.loc_id),
        }
    )


def _next_vaccination(care: PatientCare, rng: random.Random) -> None:
    """The next session of the schedule after today, for a child under two born in the programme's years."""
    birth = care.p.birth
    age = (people.AS_OF - birth).days
    if birth.year < vaccines.EPI_FIRST_BIRTH_YEAR or not 0 <= age < _CHILD_DAYS:
        return
    due = sorted({d.age_days for d in vaccines.EPI_SCHEDULE if d.age_days > age and d.station})
    if not due:
        return
    doses = [d for d in vaccines.EPI_SCHEDULE if d.age_days == due[0]]
    day = _weekday(max(birth + timedelta(days=due[0]), people.AS_OF + timedelta(days=1)))
    minute = rng.randrange(7 * 60 + 30, 10 * 60 + 30, 15)
    keys = [d.key for d in doses]
    care.out.append(
        {
            "resourceType": "Appointment",
            "id": ids.rng_uuid(rng),
            "status": "booked",
            "appointmentType": ROUTINE,
            "reasonCode": [vaccines.need_for(keys)],
            "description": "Tiêm chủng mở rộng: " + ", ".join(vaccines.VACCINES[k]["text"] for k in keys),
            "start": _instant(day, minute),
            "end": _instant(day, minute + 30),
            "minutesDuration": 30,
            "created": _instant(people.AS_OF, 9 * 60),
            "patientInstruction": VACCINATION_INSTRUCTION,
            "participant": _participants(care, rng.choice(care.station.nurses), care.station.loc_id),
        }
    )


def _participants(care: PatientCare, practitioner: str, location: str) -> list[Resource]:
    return [
        {"actor": care.patient_ref, "required": "required", "status": "accepted"},
        {"actor": {"reference": f"Practitioner/{practitioner}"}, "required": "required", "status": "accepted"},
        {"actor": {"reference": f"Location/{location}"}, "required": "required", "status": "accepted"},
    ]


def _weekday(day: date) -> date:
    """``day``, or the Monday after when it falls on a weekend (stations book on working days)."""
    return day + timedelta(days=(7 - day.weekday()) % 7) if day.weekday() >= 5 else day


def _instant(day: date, minute: int) -> str:
    return local_time(day, minute)
