"""Vaccines (CVX) and Vietnam's expanded programme on immunisation (Tiêm chủng mở rộng, TCMR) schedule."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, NamedTuple

from ketnoi.demo import people
from ketnoi.demo.catalog import CVX, Json, concept

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


def _vaccine(cvx: str, display: str, vi: str) -> Json:
    return concept(CVX, cvx, display, vi)


VACCINES: dict[str, Json] = {
    "hepb": _vaccine("08", "Hep B, adolescent or pediatric", "Viêm gan B sơ sinh"),
    "bcg": _vaccine("19", "BCG", "Lao (BCG)"),
    "penta": _vaccine(
        "198", "DTP-hepB-Hib Pentavalent Non-US", "Bạch hầu - Ho gà - Uốn ván - Viêm gan B - Hib (5 trong 1)"
    ),
    "dtp": _vaccine("01", "DTP", "Bạch hầu - Ho gà - Uốn ván (DPT)"),
    "bopv": _vaccine("178", "OPV bivalent", "Bại liệt uống (bOPV)"),
    "topv": _vaccine("02", "OPV", "Bại liệt uống (tOPV)"),
    "ipv": _vaccine("10", "IPV", "Bại liệt tiêm (IPV)"),
    "measles": _vaccine("05", "measles", "Sởi"),
    "mr": _vaccine("04", "M/R", "Sởi - Rubella (MR)"),
    "je": _vaccine("39", "Japanese encephalitis SC", "Viêm não Nhật Bản"),
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


def immunizations(care: PatientCare) -> None:
    """The childhood EPI history of a patient born from 2010 on (doses given up to ``people.AS_OF``)."""
    rng, p = care.rng, care.p
    as_of = people.AS_OF.toordinal()
    if p.birth.year < EPI_FIRST_BIRTH_YEAR:
        return
    birth_ord = p.birth.toordinal()
    skipped = {d.key for d in EPI_SCHEDULE if rng.random() < 0.03}
    birth_fac = care.hs.regional_for(p.province, p.commune)
    for dose in EPI_SCHEDULE:
        delay = 0 if dose.age_days == 0 and rng.random() < 0.9 else rng.randrange(0, 21)
        day_ord = birth_ord + dose.age_days + delay
        if day_ord > as_of:
            continue
        if dose.key in skipped or rng.random() < 0.02:
            continue
        day = date.fromordinal(day_ord)
        concept = dose.concept
        iso = day.isoformat()
        if iso < dose.since:
            if not dose.replaces:
                continue
            concept = VACCINES[dose.replaces]
        fac = care.station if dose.station else birth_fac
        nurse = rng.choice(fac.nurses)
        care.out.append(
            {
                "resourceType": "Immunization",
                "id": care.new_id(),
                "status": "completed",
                "vaccineCode": concept,
                "patient": care.patient_ref,
                "occurrenceDateTime": iso,
                "primarySource": True,
                "location": {"reference": f"Location/{fac.loc_id}"},
                "lotNumber": f"{concept['coding'][0]['code']}{day.year % 100:02d}{rng.randrange(10000):04d}",
                "performer": [{"actor": {"reference": f"Practitioner/{nurse}"}}],
                "protocolApplied": [{"series": EPI_SERIES, "doseNumberPositiveInt": dose.dose}],
            }
        )
