"""XML3 (technical services, beds, supplies) -> a ChargeItem per line, and a Procedure (VN Core) for the
lines that are procedures: cost groups 8 and 18 (thủ thuật, phẫu thuật) or a line with ICD-9-CM codes."""

from __future__ import annotations

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, VisitIds, concept, money, quantity, staff
from ketnoi.claims.codes import coded, field_bag, kept_if_lost
from ketnoi.claims.encounter import icd10
from ketnoi.claims.row import Row

PROCEDURE_GROUPS = frozenset({"8", "18"})
# Line fields with no element in ChargeItem, kept verbatim (docs/xml130.md).
SERVICE_BAG = (
    "MA_NHOM",
    "GOI_VTYT",
    "MA_XANG_DAU",
    "TT_THAU",
    "TYLE_TT_DV",
    "T_TRANTT",
    "MA_KHOA",
    "MA_GIUONG",
    "NGAY_KQ",
    "MA_BENH_YHCT",
    "VET_THUONG_TP",
    "VI_TRI_TH_DVKT",
    "MA_MAY",
    "MA_HIEU_SP",
    "TAI_SU_DUNG",
    "DU_PHONG",
)


def service_code(line: Row) -> Json:
    """The service (or, for a supply alone, the supply) as coded, with its name as written."""
    code = line.text("MA_DICH_VU")
    if code:
        return concept(s.SERVICE_CODE, code, line.text("TEN_DICH_VU"))
    return concept(s.SUPPLY_CODE, line.text("MA_VAT_TU"), line.text("TEN_VAT_TU"))


def _reasons(line: Row) -> list[Json]:
    return [concept(s.ICD10, icd10(code)) for code in line.items("MA_BENH")]


def _codes(refs: list[Json]) -> str | None:
    return ";".join(r["identifier"]["value"] for r in refs) or None


def _kept(line: Row, doctors: list[Json], performers: list[Json]) -> list[Json]:
    """What the elements alone would not give back: several doctors or a trainee's brackets, a performance
    time equal to the order's (``occurrenceDateTime`` falls back on NGAY_YL), an anaesthesia without a
    Procedure to carry it."""
    kept = kept_if_lost(line, "MA_BAC_SI", _codes(doctors[:1])) + kept_if_lost(
        line, "NGUOI_THUC_HIEN", _codes(performers)
    )
    done = line.when("NGAY_TH_YL")
    if done is not None and done == line.when("NGAY_YL"):
        kept += field_bag(line, ("NGAY_TH_YL",))
    if not is_procedure(line):
        kept += field_bag(line, ("PP_VO_CAM",))
    return kept


def charge_item(ids: VisitIds, line: Row) -> Json:
    cid, identifier = ids.line("XML3", line.text("STT") or "")
    found = ids.start("ChargeItem", cid)
    doctors, performers = staff(line.items("MA_BAC_SI")), staff(line.items("NGUOI_THUC_HIEN"))
    bag = field_bag(line, SERVICE_BAG) + _kept(line, doctors, performers)
    if bag:
        found["extension"] = bag
    found["identifier"] = [identifier]
    found["status"] = "billed"
    found["code"] = service_code(line)
    found["subject"] = ids.patient_ref
    found["context"] = ids.encounter_ref
    when = line.when("NGAY_TH_YL") or line.when("NGAY_YL")
    if when:
        found["occurrenceDateTime"] = when
    if performers:
        found["performer"] = [{"actor": p} for p in performers]
    amount = line.decimal("SO_LUONG")
    if amount is not None:
        found["quantity"] = quantity(amount, line.text("DON_VI_TINH"))
    price = line.decimal("DON_GIA_BV")
    if price is not None:
        found["priceOverride"] = money(price)
    if doctors:
        found["enterer"] = doctors[0]
    ordered = line.when("NGAY_YL")
    if ordered:
        found["enteredDate"] = ordered
    reasons = _reasons(line)
    if reasons:
        found["reason"] = reasons
    if line.text("MA_DICH_VU") and line.text("MA_VAT_TU"):  # a service with the supply it used
        found["productCodeableConcept"] = concept(s.SUPPLY_CODE, line.text("MA_VAT_TU"), line.text("TEN_VAT_TU"))
    return found


def is_procedure(line: Row) -> bool:
    return (line.code("MA_NHOM") or "") in PROCEDURE_GROUPS or bool(line.items("MA_PTTT_QT"))


def procedure(ids: VisitIds, line: Row) -> Json:
    pid, identifier = ids.line("XML3", line.text("STT") or "", "procedure")
    found = ids.start("Procedure", pid)
    found["identifier"] = [identifier]
    found["status"] = "completed"
    code = service_code(line)
    icd9 = [{"system": s.ICD9CM, "code": c} for c in line.items("MA_PTTT_QT")]
    if icd9:
        code["coding"] = [*code.get("coding", []), *icd9]
    found["code"] = code
    found["subject"] = ids.patient_ref
    found["encounter"] = ids.encounter_ref
    start, end = line.when("NGAY_TH_YL") or line.when("NGAY_YL"), line.when("NGAY_KQ")
    if start and end:
        found["performedPeriod"] = {"start": start, "end": end}
    elif start:
        found["performedDateTime"] = start
    performers = staff(line.items("NGUOI_THUC_HIEN"))
    if performers:
        found["performer"] = [{"actor": p} for p in performers]
    reasons = _reasons(line)
    if reasons:
        found["reasonCode"] = reasons
    anaesthesia = coded(s.PP_VO_CAM, line.code("PP_VO_CAM"))
    if anaesthesia:
        found["extension"] = [{"url": s.EXT + "procedure-anaesthesia", "valueCodeableConcept": anaesthesia}]
    if line.text("MA_VAT_TU") and line.text("MA_DICH_VU"):
        found["usedCode"] = [concept(s.SUPPLY_CODE, line.text("MA_VAT_TU"), line.text("TEN_VAT_TU"))]
    return found


def service_lines(ids: VisitIds, rows: list[Row]) -> list[Json]:
    found: list[Json] = []
    for line in rows:
        found.append(charge_item(ids, line))
        if is_procedure(line):
            found.append(procedure(ids, line))
    return found
