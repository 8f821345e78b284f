"""Vietnam's expanded programme on immunisation (Tiêm chủng mở rộng, TCMR): its vaccines (CVX and WHO ATC
codes, Vietnamese names) and its childhood schedule (which dose at which age, since when).

Data plus small pure functions, used by the console's record (the schedule table) and by the demo data
generator (the doses it gives). The schedule is the one for children born from 2010 on; a vaccine that
entered the programme later (IPV in 2018, JE in 2014 ...) carries its ``since`` date, and the vaccine
given instead before it (DTP before the 5-in-1) its ``replaces``.
"""

from __future__ import annotations

from datetime import date, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple

CVX = "http://hl7.org/fhir/sid/cvx"
ATC = "http://www.whocc.no/atc"
SERIES = "Tiêm chủng mở rộng (TCMR)"  # Immunization.protocolApplied.series of a programme dose
FIRST_BIRTH_YEAR = 2010  # the schedule below is the one of children born from this year on


class Vaccine(NamedTuple):
    key: str
    cvx: str
    cvx_display: str
    atc: str
    atc_display: str
    vi: str  # the Vietnamese name, the concept's text

    def concept(self) -> dict[str, Any]:
        """The vaccineCode: CVX, then the WHO ATC code (VN Core's vaccine-code value set, a required
        binding, lists CVX codes but not 198, the 5-in-1, and takes every ATC code)."""
        return {
            "coding": [
                {"system": CVX, "code": self.cvx, "display": self.cvx_display},
                {"system": ATC, "code": self.atc, "display": self.atc_display},
            ],
            "text": self.vi,
        }

    def codes(self) -> frozenset[tuple[str, str]]:
        """(system, code) pairs an Immunization's vaccineCode may carry for this vaccine."""
        return frozenset({(CVX, self.cvx), (ATC, self.atc)})


def _vaccines(*items: Vaccine) -> MappingProxyType[str, Vaccine]:
    return MappingProxyType({v.key: v for v in items})


VACCINES = _vaccines(
    Vaccine("hepb", "08", "Hep B, adolescent or pediatric", "J07BC01", "hepatitis B, purified antigen",
            "Viêm gan B sơ sinh"),
    Vaccine("bcg", "19", "BCG", "J07AN01", "tuberculosis, live attenuated", "Lao (BCG)"),
    Vaccine("penta", "198", "DTP-hepB-Hib Pentavalent Non-US", "J07CA11",
            "diphtheria-haemophilus influenzae B-pertussis-tetanus-hepatitis B",
            "Bạch hầu - Ho gà - Uốn ván - Viêm gan B - Hib (5 trong 1)"),
    Vaccine("dtp", "01", "DTP", "J07AJ51", "pertussis, inactivated, whole cell, combinations with toxoids",
            "Bạch hầu - Ho gà - Uốn ván (DPT)"),
    Vaccine("bopv", "178", "OPV bivalent", "J07BF04", "poliomyelitis oral, bivalent, live attenuated",
            "Bại liệt uống (bOPV)"),
    Vaccine("topv", "02", "OPV", "J07BF02", "poliomyelitis oral, trivalent, live attenuated",
            "Bại liệt uống (tOPV)"),
    Vaccine("ipv", "10", "IPV", "J07BF03", "poliomyelitis, trivalent, inactivated, whole virus",
            "Bại liệt tiêm (IPV)"),
    Vaccine("measles", "05", "measles", "J07BD01", "measles, live attenuated", "Sởi"),
    Vaccine("mr", "04", "M/R", "J07BD53", "measles, combinations with rubella, live attenuated",
            "Sởi - Rubella (MR)"),
    Vaccine("je", "39", "Japanese encephalitis SC", "J07BA02", "encephalitis, Japanese, inactivated, whole virus",
            "Viêm não Nhật Bản"),
)  # fmt: skip


class Dose(NamedTuple):
    key: str  # the vaccine (a key of VACCINES)
    age_days: int  # the age it is due at
    dose: int  # its number in the vaccine's series
    since: str  # ISO date the vaccine entered the national programme (for this dose)
    replaces: str  # key of the vaccine given instead before ``since`` ("" = nothing)
    station: bool  # given at the commune health station (else at the birth facility)

    def due(self, birth: date) -> date:
        return birth + timedelta(days=self.age_days)

    def vaccine_for(self, birth: date) -> str | None:
        """The vaccine a child born on ``birth`` was due for this dose: this one, the one it replaced
        when the dose fell due before ``since``, or None (not in the programme for that child)."""
        if self.due(birth).isoformat() >= self.since:
            return self.key
        return self.replaces or None


SCHEDULE: tuple[Dose, ...] = (
    Dose("hepb", 0, 1, "2003-01-01", "", False),
    Dose("bcg", 3, 1, "1985-01-01", "", False),
    Dose("penta", 61, 1, "2010-06-01", "dtp", True),
    Dose("bopv", 61, 1, "2016-05-01", "topv", True),
    Dose("penta", 91, 2, "2010-06-01", "dtp", True),
    Dose("bopv", 91, 2, "2016-05-01", "topv", True),
    Dose("penta", 122, 3, "2010-06-01", "dtp", True),
    Dose("bopv", 122, 3, "2016-05-01", "topv", True),
    Dose("ipv", 152, 1, "2018-01-01", "", True),
    Dose("measles", 274, 1, "1985-01-01", "", True),
    Dose("je", 366, 1, "2014-01-01", "", True),
    Dose("je", 380, 2, "2014-01-01", "", True),
    Dose("mr", 548, 1, "2015-01-01", "measles", True),
    Dose("dtp", 548, 4, "2011-01-01", "", True),
    Dose("je", 731, 3, "2014-01-01", "", True),
)


def vaccine_of(concept: Any) -> str | None:
    """The programme vaccine a vaccineCode names (by any CVX or ATC coding), or None."""
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings or ():
        if isinstance(coding, dict):
            pair = (str(coding.get("system") or ""), str(coding.get("code") or ""))
            for vaccine in VACCINES.values():
                if pair in vaccine.codes():
                    return vaccine.key
    return None


def in_cohort(birth: date) -> bool:
    """Whether the schedule applies to a child born on ``birth``."""
    return birth.year >= FIRST_BIRTH_YEAR
