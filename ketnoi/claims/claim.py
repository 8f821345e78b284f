"""XML1's totals and the lines of XML2 and XML3 -> one Claim: what the facility asks the social insurance
to pay for the visit, line by line, with the split between insurance, patient and other sources.

R4's Claim has elements for the total and for each line's quantity, unit price and net; the split
(T_BHTT, T_BNCCT, T_BNTT, T_NGUONKHAC, ...) is in ``xml130-amount`` extensions (kind + Money), because
only a ClaimResponse, written by the payer after adjudication, has adjudication amounts.
"""

from __future__ import annotations

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, VisitIds, by_identifier, coding, concept, money, quantity
from ketnoi.claims.codes import amounts, coded, field_bag
from ketnoi.claims.encounter import INPATIENT
from ketnoi.claims.medication import medication
from ketnoi.claims.patient import BHXH_NAME
from ketnoi.claims.row import Row
from ketnoi.claims.services import service_code

TOTALS = ("T_THUOC", "T_VTYT", "T_TONGCHI_BH", "T_BNTT", "T_BNCCT", "T_BHTT", "T_NGUONKHAC", "T_BHTT_GDV")
LINE_AMOUNTS = (
    "THANH_TIEN_BH",
    "T_NGUONKHAC_NSNN",
    "T_NGUONKHAC_VTNN",
    "T_NGUONKHAC_VTTN",
    "T_NGUONKHAC_CL",
    "T_NGUONKHAC",
    "T_BNTT",
    "T_BNCCT",
    "T_BHTT",
)
# Payment fields of a line and of the visit with no Claim element, kept verbatim (docs/xml130.md).
LINE_BAG = ("MA_NHOM", "PHAM_VI", "TYLE_TT_BH", "MUC_HUONG", "MA_PTTT", "NGUON_CTRA", "TT_THAU", "DON_GIA_BH")
CLAIM_BAG = (
    "MA_DOITUONG_KCB",
    "MA_KHUVUC",
    "NGAY_MIEN_CCT",
    "NAM_NAM_LIEN_TUC",
    "NAM_QT",
    "THANG_QT",
    "DU_PHONG",
)
SOURCE_URL = s.SOURCE_URL
_CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"


def _item(sequence: int, table: str, line: Row, encounter: Json) -> Json:
    item: Json = {"extension": [{"url": SOURCE_URL, "valueString": f"{table}/{line.text('STT') or ''}"}]}
    item["extension"] += amounts(line, LINE_AMOUNTS) + field_bag(line, LINE_BAG)
    item["sequence"] = sequence
    item["productOrService"] = medication(line) if table == "XML2" else service_code(line)
    served = line.when("NGAY_YL")
    if served:  # a date only here; the time is on the order (authoredOn, enteredDate)
        item["servicedDate"] = served[:10]
    amount = line.decimal("SO_LUONG")
    if amount is not None:
        item["quantity"] = quantity(amount, line.text("DON_VI_TINH"))
    price = line.decimal("DON_GIA" if table == "XML2" else "DON_GIA_BV")
    if price is not None:
        item["unitPrice"] = money(price)
    net = line.decimal("THANH_TIEN_BV")
    if net is not None:
        item["net"] = money(net)
    item["encounter"] = [encounter]
    return item


def _diagnoses(diagnoses: list[tuple[str, Json]]) -> list[Json]:
    kinds = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
    found = []
    coded_ones = [(role, c) for role, c in diagnoses if "coding" in c["code"]]
    for i, (role, condition) in enumerate(coded_ones, 1):
        kind = "principal" if role == "CC" else "secondary"
        found.append(
            {
                "sequence": i,
                "diagnosisReference": {"reference": f"Condition/{condition['id']}"},
                "type": [{"coding": [coding(kinds, kind)]}],
            }
        )
    return found


def claim(
    ids: VisitIds, xml1: Row, lines: list[tuple[str, Row]], diagnoses: list[tuple[str, Json]], coverages: list[str]
) -> Json:
    """``coverages``: the ids of the visit's Coverages, one per card in the order written (the first is focal)."""
    found = ids.start("Claim", ids.line("XML1", "1", "claim")[0])
    fallback = xml1.when("NGAY_RA") or xml1.when("NGAY_VAO")
    paid = xml1.when("NGAY_TTOAN")
    # created falls back on NGAY_RA: when NGAY_TTOAN is that same instant, only the bag says it was written
    kept = field_bag(xml1, ("NGAY_TTOAN",)) if paid is not None and paid == fallback else []
    extensions = amounts(xml1, TOTALS) + field_bag(xml1, CLAIM_BAG) + kept
    payment = coded(s.MA_PTTT, xml1.code("MA_PTTT"))
    if payment:
        extensions.append({"url": s.EXT + "claim-payment-method", "valueCodeableConcept": payment})
    if extensions:
        found["extension"] = extensions
    found["identifier"] = [ids.visit_identifier()]
    found["status"] = "active"
    kind = "institutional" if (xml1.code("MA_LOAI_KCB") or "") in INPATIENT else "professional"
    found["type"] = {"coding": [coding(_CLAIM_TYPE, kind)]}
    found["use"] = "claim"
    found["patient"] = ids.patient_ref
    period = {k: v for k, v in (("start", xml1.when("NGAY_VAO")), ("end", xml1.when("NGAY_RA"))) if v}
    if period:
        found["billablePeriod"] = period
    found["created"] = paid or fallback or ""
    signer = xml1.text("MA_TTDV")
    if signer:
        found["enterer"] = by_identifier("Practitioner", s.SID + "bhxh", signer)
    found["insurer"] = by_identifier("Organization", s.ORG_SYSTEM, "BHXH", BHXH_NAME)
    found["provider"] = ids.facility_ref
    found["priority"] = {"coding": [coding("http://terminology.hl7.org/CodeSystem/processpriority", "normal")]}
    found["insurance"] = [
        {"sequence": i, "focal": i == 1, "coverage": {"reference": f"Coverage/{coverage}"}}
        for i, coverage in enumerate(coverages, 1)
    ]
    cause = xml1.code("MA_TAI_NAN")
    if cause:
        found["accident"] = {
            "date": (xml1.when("NGAY_VAO") or found["created"])[:10],
            "type": concept(s.CS + "xml130-ma-tai-nan", cause),
        }
    dx = _diagnoses(diagnoses)
    if dx:
        found["diagnosis"] = dx
    procedures = [
        {"sequence": i, "procedureCodeableConcept": concept(s.ICD9CM, code)}
        for i, code in enumerate(xml1.items("MA_PTTT_QT"), 1)
    ]
    if procedures:
        found["procedure"] = procedures
    if lines:
        found["item"] = [_item(i, table, line, ids.encounter_ref) for i, (table, line) in enumerate(lines, 1)]
    total = xml1.decimal("T_TONGCHI_BV")
    if total is not None:
        found["total"] = money(total)
    return found
