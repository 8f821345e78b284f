"""XML2 (drugs) -> MedicationRequest (VN Core) per line, and MedicationAdministration (VN Core) when the
order was carried out (NGAY_TH_YL, given on the ward)."""

from __future__ import annotations

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, VisitIds, concept, quantity, staff
from ketnoi.claims.codes import field_bag, kept_if_lost
from ketnoi.claims.row import Row

# Line fields with no element in MedicationRequest, kept verbatim (docs/xml130.md).
DRUG_BAG = (
    "MA_PP_CHEBIEN",
    "MA_CSKCB_THUOC",
    "SO_DANG_KY",
    "DANG_BAO_CHE",
    "HAM_LUONG",
    "MA_KHOA",
    "VET_THUONG_TP",
    "MA_DICH_VU",
    "DU_PHONG",
)


def medication(line: Row) -> Json:
    """The drug as coded (active-ingredient code) with the name and strength as written."""
    name = " ".join(filter(None, (line.text("TEN_THUOC"), line.text("HAM_LUONG"))))
    return concept(s.DRUG_CODE, line.text("MA_THUOC"), name or None, line.text("TEN_THUOC"))


def _dosage(line: Row) -> Json:
    dosage: Json = {}
    text = line.text("LIEU_DUNG")
    if text:
        dosage["text"] = text
    instructions = line.text("CACH_DUNG")
    if instructions:
        dosage["patientInstruction"] = instructions
    route = line.text("DUONG_DUNG")
    if route:
        dosage["route"] = concept(s.ROUTE_CODE, route)
    return dosage


def request(ids: VisitIds, line: Row, inpatient: bool) -> Json:
    rid, identifier = ids.line("XML2", line.text("STT") or "", "")
    found = ids.start("MedicationRequest", rid)
    doctors = staff(line.items("MA_BAC_SI"))
    first = doctors[0]["identifier"]["value"] if doctors else None
    bag = field_bag(line, DRUG_BAG) + kept_if_lost(line, "MA_BAC_SI", first)  # several doctors: all in the bag
    if bag:
        found["extension"] = bag
    found["identifier"] = [identifier]
    found["status"] = "completed"
    found["intent"] = "order"
    found["medicationCodeableConcept"] = medication(line)
    found["subject"] = ids.patient_ref
    found["encounter"] = ids.encounter_ref
    ordered = line.when("NGAY_YL")
    if ordered:
        found["authoredOn"] = ordered
    if doctors:
        found["requester"] = doctors[0]
    # Who gives the drug (VN Core wants a performer): the ward of the facility for a patient in a bed,
    # the patient at home otherwise.
    found["performer"] = ids.facility_ref if inpatient else ids.patient_ref
    dosage = _dosage(line)
    if dosage:
        found["dosageInstruction"] = [dosage]
    amount = line.decimal("SO_LUONG")
    if amount is not None:
        found["dispenseRequest"] = {"quantity": quantity(amount, line.text("DON_VI_TINH"))}
    return found


def administration(ids: VisitIds, line: Row, request_id: str) -> Json | None:
    given = line.when("NGAY_TH_YL")
    if not given:
        return None
    aid, identifier = ids.line("XML2", line.text("STT") or "", "given")
    found = ids.start("MedicationAdministration", aid)
    found["identifier"] = [identifier]
    found["status"] = "completed"
    found["medicationCodeableConcept"] = medication(line)
    found["subject"] = ids.patient_ref
    found["context"] = ids.encounter_ref
    found["effectiveDateTime"] = given
    found["request"] = {"reference": f"MedicationRequest/{request_id}"}
    dosage: Json = {"text": line.text("LIEU_DUNG") or line.text("TEN_THUOC") or ""}
    route = line.text("DUONG_DUNG")
    if route:
        dosage["route"] = concept(s.ROUTE_CODE, route)
    amount = line.decimal("SO_LUONG")
    if amount is not None:
        dosage["dose"] = quantity(amount, line.text("DON_VI_TINH"))
    found["dosage"] = dosage
    return found


def drug_lines(ids: VisitIds, rows: list[Row], inpatient: bool) -> list[Json]:
    found: list[Json] = []
    for line in rows:
        req = request(ids, line, inpatient)
        found.append(req)
        given = administration(ids, line, req["id"])
        if given is not None:
            found.append(given)
    return found
