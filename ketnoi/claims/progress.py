"""XML5 (clinical progress) -> a ClinicalImpression per note, and the vital signs a note carries in the
form QĐ 4750 gives them, ``CSST<M75_T37_HA120/70_NT18>``, as vital-sign Observations."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, VisitIds, coding, number, practitioner, staff
from ketnoi.claims.codes import field_bag, kept_if_lost
from ketnoi.claims.row import Row

NOTE_BAG = ("GIAI_DOAN_BENH", "PHAU_THUAT", "DU_PHONG")
_VITALS = re.compile(r"CSST<([^>]*)>")
_ITEM = re.compile(r"^(HA|NT|SPO2|CN|CC|M|T)([0-9.,/]+)$", re.IGNORECASE)
_LOINC = "http://loinc.org"
# prefix -> (LOINC, display, Vietnamese, UCUM unit)
VITALS = {
    "M": ("8867-4", "Heart rate", "Mạch", "/min"),
    "T": ("8310-5", "Body temperature", "Nhiệt độ", "Cel"),
    "NT": ("9279-1", "Respiratory rate", "Nhịp thở", "/min"),
    "SPO2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "SpO2", "%"),
    "CN": ("29463-7", "Body weight", "Cân nặng", "kg"),
    "CC": ("8302-2", "Body height", "Chiều cao", "cm"),
}
_BP = ("85354-9", "Blood pressure panel with all children optional", "Huyết áp")
_VITAL_CATEGORY = {
    "coding": [coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs")]
}


def impression(ids: VisitIds, line: Row) -> Json:
    cid, identifier = ids.line("XML5", line.text("STT") or "")
    found = ids.start("ClinicalImpression", cid)
    bag = field_bag(line, NOTE_BAG)
    if bag:
        found["extension"] = bag
    found["identifier"] = [identifier]
    found["status"] = "completed"
    found["description"] = line.text("DIEN_BIEN_LS") or ""
    found["subject"] = ids.patient_ref
    found["encounter"] = ids.encounter_ref
    when = line.when("THOI_DIEM_DBLS")
    if when:
        found["effectiveDateTime"] = when
    assessors = staff(line.items("NGUOI_THUC_HIEN"))
    if assessors:
        found["assessor"] = assessors[0]
        # the others, in the order written (or a trainee's brackets): the whole text in the bag
        kept = kept_if_lost(line, "NGUOI_THUC_HIEN", assessors[0]["identifier"]["value"])
        if kept:
            found["extension"] = [*found.get("extension", []), *kept]
    consult = line.text("HOI_CHAN")
    if consult:
        found["summary"] = consult
    return found


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _quantity(value: Decimal, unit: str) -> Json:
    return {"value": number(value), "unit": unit, "system": s.UCUM, "code": unit}


def vital_items(note: str) -> list[tuple[str, str]]:
    """(prefix, value) of each vital sign in a note's CSST<...> group(s); unreadable items are skipped."""
    found = []
    for group in _VITALS.findall(note):
        for item in group.split("_"):
            match = _ITEM.match(item.strip())
            if match:
                found.append((match.group(1).upper(), match.group(2)))
    return found


def _vital(ids: VisitIds, line: Row, prefix: str, text: str) -> Json | None:
    oid, identifier = ids.line("XML5", line.text("STT") or "", f"vs/{prefix}")
    found = ids.start("Observation", oid)
    found["identifier"] = [identifier]
    found["status"] = "final"
    found["category"] = [_VITAL_CATEGORY]
    if prefix == "HA":
        high, _, low = text.partition("/")
        systolic, diastolic = _decimal(high), _decimal(low)
        if systolic is None or diastolic is None:
            return None
        found["code"] = {"coding": [coding(_LOINC, _BP[0], _BP[1])], "text": _BP[2]}
        found["component"] = [
            {"code": {"coding": [coding(_LOINC, code, shown)]}, "valueQuantity": _quantity(v, "mm[Hg]")}
            for code, shown, v in (
                ("8480-6", "Systolic blood pressure", systolic),
                ("8462-4", "Diastolic blood pressure", diastolic),
            )
        ]
    else:
        value = _decimal(text)
        if value is None:
            return None
        code, shown, vi, unit = VITALS[prefix]
        found["code"] = {"coding": [coding(_LOINC, code, shown)], "text": vi}
        found["valueQuantity"] = _quantity(value, unit)
    found["subject"] = ids.patient_ref
    found["encounter"] = ids.encounter_ref
    found["effectiveDateTime"] = line.when("THOI_DIEM_DBLS")
    if not found["effectiveDateTime"]:
        return None  # a vital sign needs its time (the vital-signs profile)
    performers = line.items("NGUOI_THUC_HIEN")
    if performers:
        found["performer"] = [practitioner(performers[0])]
    return found


def progress_lines(ids: VisitIds, rows: list[Row]) -> list[Json]:
    found: list[Json] = []
    for line in rows:
        found.append(impression(ids, line))
        seen: set[str] = set()
        for prefix, text in vital_items(line.text("DIEN_BIEN_LS") or ""):
            if prefix not in seen and (vital := _vital(ids, line, prefix, text)) is not None:
                seen.add(prefix)
                found.append(vital)
    return found
