"""Vaccines (CVX and WHO ATC) and Vietnam's expanded programme on immunisation (Tiêm chủng mở rộng, TCMR) schedule."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, NamedTuple

from ketnoi.demo import people
from ketnoi.demo.care import local_time
from ketnoi.demo.catalog import ATC, CVX, IMMUNIZATION_NEED, Json, concept

if TYPE_CHECKING:
    from ketnoi.demo.care import PatientCare

EPI_SERIES = "Tiêm chủng mở rộng (TCMR)"


class Dose(NamedTuple):
    key: str
    concept: Json
    age_days: int
    dose: int
    since: str  # ISO date the vaccine entered the national programme (for this dose)
    replaces: str  # key of the vaccine given instead before ``since`` ("" = nothing)
    station: bool  # given at the commune health station (else at the birth facility)


def _vaccine(cvx: str, display: str, atc: str, atc_display: str, vi: str) -> Json:
    """CVX, then the WHO ATC code: VN Core's vaccine-code value set (a required binding) lists CVX
    codes but not 198 (the 5-in-1), and takes every ATC code."""
    cc = concept(CVX, cvx, display, vi)
    cc["coding"].append({"system": ATC, "code": atc, "display": atc_display})
    return cc


VACCINES: dict[str, Json] = {
    "hepb": _vaccine(
        "08", "Hep B, adolescent or pediatric", "J07BC01", "hepatitis B, purified antigen", "Viêm gan B sơ sinh"
    ),
    "bcg": _vaccine("19", "BCG", "J07AN01", "tuberculosis, live attenuated", "Lao (BCG)"),
    "penta": _vaccine(
        "198",
        "DTP-hepB-Hib Pentavalent Non-US",
        "J07CA11",
        "diphtheria-haemophilus influenzae B-pertussis-tetanus-hepatitis B",
        "Bạch hầu - Ho gà - Uốn ván - Viêm gan B - Hib (5 trong 1)",
    ),
    "dtp": _vaccine(
        "01",
        "DTP",
        "J07AJ51",
        "pertussis, inactivated, whole cell, combinations with toxoids",
        "Bạch hầu - Ho gà - Uốn ván (DPT)",
    ),
    "bopv": _vaccine(
        "178", "OPV bivalent", "J07BF04", "poliomyelitis oral, bivalent, live attenuated", "Bại liệt uống (bOPV)"
    ),
    "topv": _vaccine("02", "OPV", "J07BF02", "poliomyelitis oral, trivalent, live attenuated", "Bại liệt uống (tOPV)"),
    "ipv": _vaccine(
        "10", "IPV", "J07BF03", "poliomyelitis, trivalent, inactivated, whole virus", "Bại liệt tiêm (IPV)"
    ),
    "measles": _vaccine("05", "measles", "J07BD01", "measles, live attenuated", "Sởi"),
    "mr": _vaccine("04", "M/R", "J07BD53", "measles, combinations with rubella, live attenuated", "Sởi - Rubella (MR)"),
    "je": _vaccine(
        "39",
        "Japanese encephalitis SC",
        "J07BA02",
        "encephalitis, Japanese, inactivated, whole virus",
        "Viêm não Nhật Bản",
    ),
}

# Vietnam EPI (Tiêm chủng mở rộng) schedule for children born from 2010 on.
EPI_SCHEDULE: tuple[Dose, ...] = (
    Dose("hepb", VACCINES["hepb"], 0, 1, "2003-01-01", "", False),
    Dose("bcg", VACCINES["bcg"], 3, 1, "1985-01-01", "", False),
    Dose("penta", VACCINES["penta"], 61, 1, "2010-06-01", "dtp", True),
    Dose("bopv", VACCINES["bopv"], 61, 1, "2016-05-01", "topv", True),
    Dose("penta", VACCINES["penta"], 91, 2, "2010-06-01", "dtp", True),
    Dose("bopv", VACCINES["bopv"], 91, 2, "2016-05-01", "topv", True),
    Dose("penta", VACCINES["penta"], 122, 3, "2010-06-01", "dtp", True),
    Dose("bopv", VACCINES["bopv"], 122, 3, "2016-05-01", "topv", True),
    Dose("ipv", VACCINES["ipv"], 152, 1, "2018-01-01", "", True),
    Dose("measles", VACCINES["measles"], 274, 1, "1985-01-01", "", True),
    Dose("je", VACCINES["je"], 366, 1, "2014-01-01", "", True),
    Dose("je", VACCINES["je"], 380, 2, "2014-01-01", "", True),
    Dose("mr", VACCINES["mr"], 548, 1, "2015-01-01", "measles", True),
    Dose("dtp", VACCINES["dtp"], 548, 4, "2011-01-01", "", True),
    Dose("je", VACCINES["je"], 731, 3, "2014-01-01", "", True),
)
EPI_FIRST_BIRTH_YEAR = 2010


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
