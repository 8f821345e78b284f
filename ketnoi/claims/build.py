"""Small FHIR shapes the claims mapping repeats: codings, money, quantities, references, the visit's ids."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ketnoi.claims import systems as s

Json = dict[str, Any]


def coding(system: str, code: str, display: str | None = None) -> Json:
    found: Json = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(system: str, code: str | None, text: str | None = None, display: str | None = None) -> Json:
    """A CodeableConcept of one coding (when there is a code) and the text as written."""
    found: Json = {}
    if code:
        found["coding"] = [coding(system, code, display)]
    if text:
        found["text"] = text
    return found


def number(value: Decimal) -> int | float:
    """A JSON number with the decimal's value. Claims amounts have at most 15 digits, which a double holds
    exactly and prints back the same (shortest round-trip form), so nothing is lost: 123456.78 stays it."""
    return int(value) if value == value.to_integral_value() else float(value)


def money(value: Decimal) -> Json:
    return {"value": number(value), "currency": "VND"}


def quantity(value: Decimal, unit: str | None) -> Json:
    found: Json = {"value": number(value)}
    if unit:
        found["unit"] = unit
    return found


def by_identifier(rtype: str, system: str, value: str, display: str | None = None) -> Json:
    """A logical reference: the claims XML names facilities and staff by code, not by a stored id."""
    found: Json = {"type": rtype, "identifier": {"system": system, "value": value}}
    if display:
        found["display"] = display
    return found


def practitioner(code: str) -> Json:
    """A member of staff by practising-certificate number (a trainee is written "(...)")."""
    return by_identifier("Practitioner", s.LICENCE_SYSTEM, code.strip().strip("()"))


def staff(codes: list[str]) -> list[Json]:
    return [practitioner(c) for c in codes if c.strip("() ")]


@dataclass(frozen=True, slots=True)
class VisitIds:
    """The ids and references of one visit's resources, all derived from business identifiers."""

    facility: str
    ma_lk: str
    patient: str
    facility_ref: Json

    @property
    def encounter(self) -> str:
        return s.stable_id(s.visit_system(self.facility), self.ma_lk)

    @property
    def patient_ref(self) -> Json:
        return {"reference": f"Patient/{self.patient}"}

    @property
    def encounter_ref(self) -> Json:
        return {"reference": f"Encounter/{self.encounter}"}

    def visit_identifier(self) -> Json:
        return {"use": "official", "system": s.visit_system(self.facility), "value": self.ma_lk}

    def line(self, table: str, stt: str, part: str = "") -> tuple[str, Json]:
        """(id, identifier) of a resource made from one line of a table (``part`` when a line makes two)."""
        value = f"{self.ma_lk}/{table}/{stt}" + (f"/{part}" if part else "")
        system = s.line_system(self.facility)
        return s.stable_id(system, value), {"system": system, "value": value}

    def tag(self) -> Json:
        return {"system": s.VISIT_TAG, "code": f"{self.facility}/{self.ma_lk}"}

    def start(self, rtype: str, id: str) -> Json:
        """A resource's first keys: type, id, and the visit tag that finds it again on re-import."""
        return {"resourceType": rtype, "id": id, "meta": {"tag": [self.tag()]}}
