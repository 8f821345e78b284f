"""XML1's visit fields -> Encounter (VN Core) and its diagnoses as Conditions (VN Core encounter-diagnosis)."""

from __future__ import annotations

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, VisitIds, by_identifier, coding, concept, number
from ketnoi.claims.codes import coded, field_bag
from ketnoi.claims.row import Row

_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
# MA_LOAI_KCB (QĐ 824 App. 1) -> the encounter class: exams and outpatient treatment are ambulatory,
# inpatient care is IMP, day care and stays under four hours are short stays, a commune station's
# observation stay is an observation encounter.
_CLASS = {
    "01": ("AMB", "ambulatory"),
    "02": ("AMB", "ambulatory"),
    "03": ("IMP", "inpatient encounter"),
    "04": ("SS", "short stay"),
    "05": ("AMB", "ambulatory"),
    "06": ("OBSENC", "observation encounter"),
    "07": ("AMB", "ambulatory"),
    "08": ("AMB", "ambulatory"),
    "09": ("SS", "short stay"),
}
INPATIENT = frozenset({"03", "04", "06", "09"})
# Fields of XML1 kept on the Encounter verbatim (no FHIR element holds them; docs/xml130.md).
ENCOUNTER_BAG = (
    "CHAN_DOAN_VAO",
    "NGAY_VAO_NOI_TRU",
    "LY_DO_VNT",
    "MA_LY_DO_VNT",
    "PP_DIEU_TRI",
    "GHI_CHU",
    "NGAY_TAI_KHAM",
    "CAN_NANG_CON",
)
_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
_CATEGORY = {
    "coding": [
        coding("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "Encounter Diagnosis")
    ]
}
OUTCOME_URL = s.EXT + "encounter-outcome"


def icd10(code: str) -> str:
    """An ICD-10 code in its dotted form: HIS write "J189" or "J18.9"; the list has "J18.9"."""
    code = code.strip().upper()
    return code if "." in code or len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def _condition(ids: VisitIds, part: str, code: Json, when: str | None, status: str) -> Json:
    cid, identifier = ids.line("XML1", "1", part)
    found = ids.start("Condition", cid)
    found["identifier"] = [identifier]
    found["verificationStatus"] = {
        "coding": [coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", status)]
    }
    found["category"] = [_CATEGORY]
    found["code"] = code
    found["subject"] = ids.patient_ref
    found["encounter"] = ids.encounter_ref
    if when:
        found["recordedDate"] = when
    return found


def conditions(ids: VisitIds, xml1: Row) -> list[tuple[str, Json]]:
    """(diagnosis role, Condition): the main disease (VN Core's "chief complaint" slice, CC) and the
    secondary ICD-10 and traditional-medicine codes (comorbidities, CM). The admission diagnosis is free
    text (CHAN_DOAN_VAO), which VN Core's required code binding cannot take: it stays on the Encounter."""
    when = xml1.when("NGAY_RA")
    found: list[tuple[str, Json]] = []
    main = xml1.text("MA_BENH_CHINH")
    if main:
        code = concept(s.ICD10, icd10(main), xml1.text("CHAN_DOAN_RV"))
        found.append(("CC", _condition(ids, "main", code, when, "confirmed")))
    for other in dict.fromkeys(icd10(c) for c in xml1.items("MA_BENH_KT")):
        found.append(("CM", _condition(ids, f"kt/{other}", concept(s.ICD10, other), when, "confirmed")))
    for other in dict.fromkeys(xml1.items("MA_BENH_YHCT")):
        found.append(("CM", _condition(ids, f"yhct/{other}", concept(s.YHCT_CODE, other), when, "confirmed")))
    return found


_ROLES = {"CC": "Chief complaint", "CM": "Comorbidity diagnosis"}


def _diagnosis(role: str, condition: Json, rank: int) -> Json:
    """VN Core slices Encounter.diagnosis by use; its main-disease slice carries no rank."""
    use: Json = {"coding": [coding(_ROLE, role, _ROLES[role])]}
    entry: Json = {"condition": {"reference": f"Condition/{condition['id']}"}, "use": use}
    if role == "CC":
        use["text"] = _ROLES[role]
    else:
        entry["rank"] = rank + 1
    return entry


def _hospitalization(xml1: Row) -> Json:
    found: Json = {}
    letter = xml1.text("GIAY_CHUYEN_TUYEN")
    if letter:
        found["preAdmissionIdentifier"] = {"system": s.SID + "giay-chuyen-tuyen", "value": letter}
    origin = xml1.text("MA_NOI_DI")
    if origin:
        found["origin"] = by_identifier("Organization", s.FACILITY_SYSTEM, origin)
        found["admitSource"] = {
            "coding": [
                coding(
                    "http://terminology.hl7.org/CodeSystem/admit-source",
                    "hosp-trans",
                    "Transferred from other hospital",
                )
            ]
        }
    disposition = coded(s.LOAI_RV, xml1.code("MA_LOAI_RV"))
    if disposition:
        found["dischargeDisposition"] = disposition
    destination = xml1.text("MA_NOI_DEN")
    if destination:
        found["destination"] = by_identifier("Organization", s.FACILITY_SYSTEM, destination)
    return found


def encounter(ids: VisitIds, xml1: Row, diagnoses: list[tuple[str, Json]]) -> Json:
    found = ids.start("Encounter", ids.encounter)
    extensions = field_bag(xml1, ENCOUNTER_BAG)
    weight = xml1.decimal("CAN_NANG")
    if weight is not None and weight <= 0:  # no body-weight Observation is made of it: kept as written
        extensions += field_bag(xml1, ("CAN_NANG",))
    outcome = coded(s.KET_QUA_DTRI, xml1.code("KET_QUA_DTRI"))
    if outcome:
        extensions.insert(0, {"url": OUTCOME_URL, "valueCodeableConcept": outcome})
    if extensions:
        found["extension"] = extensions
    found["identifier"] = [ids.visit_identifier()]
    record = xml1.text("MA_HSBA")
    if record:  # VN Core's medical-record slice (MaBenhAn)
        found["identifier"].append(
            {
                "use": "official",
                "type": {"coding": [coding(_V2_0203, "MR", "Medical record number")]},
                "system": s.MRN,
                "value": record,
            }
        )
    found["status"] = "finished"
    kind = xml1.code("MA_LOAI_KCB") or ""
    klass = _CLASS.get(kind, ("AMB", "ambulatory"))
    found["class"] = coding(_ACT, *klass)
    care_type = coded(s.LOAI_KCB, kind)
    if care_type:
        found["type"] = [care_type]
    if xml1.code("MA_DOITUONG_KCB") == "2":  # "Cấp cứu": an emergency
        found["priority"] = {"coding": [coding(_ACT, "EM", "emergency")]}
    found["subject"] = ids.patient_ref
    period = {k: v for k, v in (("start", xml1.when("NGAY_VAO")), ("end", xml1.when("NGAY_RA"))) if v}
    if period:
        found["period"] = period
    days = xml1.integer("SO_NGAY_DTRI")
    if days is not None:
        found["length"] = {"value": days, "unit": "days", "system": s.UCUM, "code": "d"}
    reason = xml1.text("LY_DO_VV")
    if reason:
        found["reasonCode"] = [{"text": reason}]
    if diagnoses:
        found["diagnosis"] = [_diagnosis(role, c, i) for i, (role, c) in enumerate(diagnoses)]
    hospitalization = _hospitalization(xml1)
    if hospitalization:
        found["hospitalization"] = hospitalization
    departments = xml1.items("MA_KHOA")
    if departments:
        found["location"] = [
            {"location": by_identifier("Location", s.SID + "khoa/" + ids.facility, code)} for code in departments
        ]
    found["serviceProvider"] = ids.facility_ref
    return found


def body_weight(ids: VisitIds, xml1: Row) -> Json | None:
    """CAN_NANG (kg, XML1 #59) as a vital-sign Observation at admission."""
    weight = xml1.decimal("CAN_NANG")
    if weight is None or weight <= 0:
        return None
    oid, identifier = ids.line("XML1", "1", "can-nang")
    found = ids.start("Observation", oid)
    found["identifier"] = [identifier]
    found["status"] = "final"
    found["category"] = [
        {"coding": [coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs")]}
    ]
    found["code"] = {"coding": [coding("http://loinc.org", "29463-7", "Body weight")], "text": "Cân nặng"}
    found["subject"] = ids.patient_ref
    found["encounter"] = ids.encounter_ref
    found["effectiveDateTime"] = xml1.when("NGAY_VAO")
    found["valueQuantity"] = {"value": number(weight), "unit": "kg", "system": s.UCUM, "code": "kg"}
    if not found["effectiveDateTime"]:
        del found["effectiveDateTime"]
    return found
