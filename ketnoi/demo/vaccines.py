"""Vaccines (CVX and WHO ATC) and Vietnam's expanded programme on immunisation (Tiêm chủng mở rộng, TCMR) schedule."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from ketnoi.demo import people
from ketnoi.demo.care import local_time
from ketnoi.demo.catalog import IMMUNIZATION_NEED, Json
from ketnoi.vn import epi_schedule
from ketnoi.vn.epi_schedule import Dose

if TYPE_CHECKING:
    from ketnoi.demo.care import PatientCare

# The programme's vaccines and schedule are platform data (ketnoi.vn.epi_schedule, also read by the
# console's record); the demo gives the doses of that schedule.
EPI_SERIES = epi_schedule.SERIES
VACCINES: dict[str, Json] = {key: vaccine.concept() for key, vaccine in epi_schedule.VACCINES.items()}
EPI_SCHEDULE: tuple[Dose, ...] = epi_schedule.SCHEDULE
EPI_FIRST_BIRTH_YEAR = epi_schedule.FIRST_BIRTH_YEAR


# The ICD-10 "need for immunization" (Z23-Z27) of each vaccine given alone: the chief complaint of the
# vaccination visit. A visit that gives several is DTP with polio (Z27.3) or another combination (Z27.8).
NEED: dict[str, str] = {
    "hepb": "Z24.6",
    "bcg": "Z23.2",
    "penta": "Z27.8",
    "dtp": "Z27.1",
    "bopv": "Z24.0",
    "topv": "Z24.0",
    "ipv": "Z24.0",
    "measles": "Z24.4",
    "mr": "Z27.8",
    "je": "Z24.1",
}
_POLIO = frozenset(("bopv", "topv", "ipv"))


def need_for(keys: list[str]) -> Json:
    """The reason (ICD-10 Z23-Z27) of a visit that gives the vaccines ``keys``."""
    if len(keys) == 1:
        code = NEED[keys[0]]
    elif len(keys) == 2 and "dtp" in keys and _POLIO & set(keys):
        code = "Z27.3"
    else:
        code = "Z27.8"
    return IMMUNIZATION_NEED[code]


def immunizations(care: PatientCare) -> None:
    """The childhood EPI history of a patient born from 2010 on (doses given up to ``people.AS_OF``).

    The doses due at the same age are given at one visit (a morning vaccination session, with the
    30 minutes' watch after the injection): an outpatient Encounter attended by the vaccinating nurse,
    whose chief complaint is the need for immunization (ICD-10 Z23-Z27); VN Core wants every
    Immunization to have its Encounter.
    """
    rng, p = care.rng, care.p
    as_of = people.AS_OF.toordinal()
    if p.birth.year < EPI_FIRST_BIRTH_YEAR:
        return
    birth_ord = p.birth.toordinal()
    skipped = {d.key for d in EPI_SCHEDULE if rng.random() < 0.03}
    birth_fac = care.hs.regional_for(p.province, p.commune)
    sessions: dict[int, list[Dose]] = {}
    for dose in EPI_SCHEDULE:
        sessions.setdefault(dose.age_days, []).append(dose)
    for age_days, doses in sessions.items():
        delay = 0 if age_days == 0 and rng.random() < 0.9 else rng.randrange(0, 21)
        day_ord = birth_ord + age_days + delay
        if day_ord > as_of:
            continue
        day = date.fromordinal(day_ord)
        iso = day.isoformat()
        given: list[tuple[Dose, str]] = []
        for dose in doses:
            if dose.key in skipped or rng.random() < 0.02:
                continue
            key = dose.key
            if iso < dose.since:
                if not dose.replaces:
                    continue
                key = dose.replaces
            given.append((dose, key))
        if not given:
            continue
        fac = care.station if doses[0].station else birth_fac
        nurse = rng.choice(fac.nurses)
        minute = rng.randrange(7 * 60 + 30, 10 * 60 + 30)
        start, end = local_time(day, minute), local_time(day, minute + 30 + rng.randrange(0, 16))
        enc_ref = care.visit(fac, nurse, start, end, need_for([key for _, key in given]))
        for dose, key in given:
            concept = VACCINES[key]
            care.out.append(
                {
                    "resourceType": "Immunization",
                    "id": care.new_id(),
                    "status": "completed",
                    "vaccineCode": concept,
                    "patient": care.patient_ref,
                    "encounter": enc_ref,
                    "occurrenceDateTime": iso,
                    "primarySource": True,
                    "location": {"reference": f"Location/{fac.loc_id}"},
                    "lotNumber": f"{concept['coding'][0]['code']}{day.year % 100:02d}{rng.randrange(10000):04d}",
                    "performer": [{"actor": {"reference": f"Practitioner/{nurse}"}}],
                    "protocolApplied": [{"series": EPI_SERIES, "doseNumberPositiveInt": dose.dose}],
                }
            )
