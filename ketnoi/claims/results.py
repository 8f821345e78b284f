"""XML4 (paraclinical results) -> an Observation (VN Core result) per line and a DiagnosticReport (VN Core)
per service (MA_DICH_VU) that groups its results."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, VisitIds, coding, concept, number, practitioner
from ketnoi.claims.codes import field_bag
from ketnoi.claims.row import Row

RESULT_BAG = ("MA_DICH_VU", "KET_LUAN", "DU_PHONG")
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_LAB = {"coding": [coding(_CATEGORY, "laboratory", "Laboratory")]}


def _value(text: str) -> tuple[Json | None, bool]:
    """(valueQuantity when the result is a plain number, whether the text is also kept: "5.60" prints
    back as 5.6, and a result's written precision matters)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, True
    if not value.is_finite():
        return None, True
    kept = number(value)
    return {"value": kept}, str(kept) != text


def observation(ids: VisitIds, line: Row) -> Json:
    oid, identifier = ids.line("XML4", line.text("STT") or "")
    found = ids.start("Observation", oid)
    raw = line.text("GIA_TRI")
    unit = line.text("DON_VI_DO")
    quantity, keep_text = _value(raw) if raw else (None, False)
    kept: tuple[str, ...] = RESULT_BAG
    if raw and keep_text and quantity is not None:
        kept += ("GIA_TRI",)
    if unit and quantity is None:  # a unit with a text result has no element of its own
        kept += ("DON_VI_DO",)
    reader = line.text("MA_BS_DOC_KQ")
    if reader and reader != practitioner(reader)["identifier"]["value"]:  # a trainee's brackets
        kept += ("MA_BS_DOC_KQ",)
    bag = field_bag(line, kept)
    if bag:
        found["extension"] = bag
    found["identifier"] = [identifier]
    found["status"] = "final" if raw else "registered"
    found["category"] = [_LAB]
    found["code"] = concept(s.TEST_CODE, line.text("MA_CHI_SO"), line.text("TEN_CHI_SO"))
    found["subject"] = ids.patient_ref
    found["encounter"] = ids.encounter_ref
    when = line.when("NGAY_KQ")
    if when:
        found["effectiveDateTime"] = when
    if reader:
        found["performer"] = [practitioner(reader)]
    if quantity is not None:
        found["valueQuantity"] = {**quantity, **({"unit": unit} if unit else {})}
    elif raw:
        found["valueString"] = raw
    note = line.text("MO_TA")
    if note:
        found["note"] = [{"text": note}]
    return found


def reports(ids: VisitIds, rows: list[Row], observations: list[Json]) -> list[Json]:
    """One DiagnosticReport per service code, in the order the services first appear."""
    groups: dict[str, list[tuple[Row, Json]]] = {}
    for line, obs in zip(rows, observations, strict=True):
        groups.setdefault(line.text("MA_DICH_VU") or f"STT {line.text('STT')}", []).append((line, obs))
    found = []
    for key, members in groups.items():
        rid, identifier = ids.line("XML4", key, "report")
        report = ids.start("DiagnosticReport", rid)
        report["identifier"] = [identifier]
        report["status"] = "final" if all(o["status"] == "final" for _, o in members) else "partial"
        report["category"] = [_LAB]
        code = members[0][0].text("MA_DICH_VU")
        report["code"] = concept(s.SERVICE_CODE, code, None if code else members[0][0].text("TEN_CHI_SO"))
        if "coding" not in report["code"] and "text" not in report["code"]:
            report["code"]["text"] = key
        report["subject"] = ids.patient_ref
        report["encounter"] = ids.encounter_ref
        times = sorted(o["effectiveDateTime"] for _, o in members if "effectiveDateTime" in o)
        if times:
            report["effectiveDateTime"] = times[0]
        readers = list(dict.fromkeys(r for line, _ in members if (r := line.text("MA_BS_DOC_KQ"))))
        if readers:
            report["resultsInterpreter"] = [practitioner(r) for r in readers]
        report["result"] = [{"reference": f"Observation/{o['id']}"} for _, o in members]
        conclusions = list(dict.fromkeys(c for line, _ in members if (c := line.text("KET_LUAN"))))
        if conclusions:
            report["conclusion"] = "\n".join(conclusions)
        found.append(report)
    return found


def result_lines(ids: VisitIds, rows: list[Row]) -> list[Json]:
    observations = [observation(ids, line) for line in rows]
    return [*observations, *reports(ids, rows, observations)]
