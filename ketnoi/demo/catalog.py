"""Clinical code tables: diagnoses (ICD-10), medications (ATC + RxNorm), labs and vital signs (LOINC),
vaccines (CVX) with Vietnam's expanded programme on immunisation (TCMR) schedule.

Constant CodeableConcepts are built once and shared by every resource that uses them (read-only).
"""

from __future__ import annotations

from typing import Any, NamedTuple

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"

Json = dict[str, Any]


def concept(system: str, code: str, display: str, text: str | None = None) -> Json:
    cc: Json = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        cc["text"] = text
    return cc


class Chronic(NamedTuple):
    code: str
    concept: Json
    prevalence: tuple[tuple[int, float, float], ...]  # (min age, male prevalence, female prevalence), ascending
    meds: tuple[str, ...]  # medication keys prescribed at follow-up
    labs: tuple[tuple[str, float], ...]  # (lab key, probability per follow-up)


def _chronic(
    code: str,
    en: str,
    vi: str,
    prevalence: tuple[tuple[int, float, float], ...],
    meds: tuple[str, ...],
    labs: tuple[tuple[str, float], ...],
) -> Chronic:
    return Chronic(code, concept(ICD10, code, en, vi), prevalence, meds, labs)


CHRONIC: tuple[Chronic, ...] = (
    _chronic(
        "I10",
        "Essential (primary) hypertension",
        "Tăng huyết áp vô căn (nguyên phát)",
        ((25, 0.06, 0.04), (40, 0.17, 0.13), (50, 0.32, 0.28), (60, 0.47, 0.45), (70, 0.58, 0.58)),
        ("amlodipine|losartan",),
        (("creatinine", 0.2), ("cholesterol", 0.2)),
    ),
    _chronic(
        "E11.9",
        "Type 2 diabetes mellitus without complications",
        "Đái tháo đường type 2 không có biến chứng",
        ((30, 0.02, 0.02), (40, 0.06, 0.06), (55, 0.12, 0.13), (70, 0.15, 0.16)),
        ("metformin",),
        (("glucose", 1.0), ("hba1c", 0.4)),
    ),
    _chronic(
        "E78.5",
        "Hyperlipidaemia, unspecified",
        "Tăng lipid máu, không đặc hiệu",
        ((35, 0.06, 0.05), (50, 0.12, 0.14)),
        ("atorvastatin",),
        (("cholesterol", 0.5),),
    ),
    _chronic(
        "J44.9",
        "Chronic obstructive pulmonary disease, unspecified",
        "Bệnh phổi tắc nghẽn mạn tính, không đặc hiệu",
        ((45, 0.04, 0.01), (60, 0.09, 0.02)),
        ("salbutamol",),
        (),
    ),
    _chronic(
        "J45.9",
        "Asthma, unspecified",
        "Hen phế quản, không đặc hiệu",
        ((3, 0.03, 0.03),),
        ("salbutamol",),
        (),
    ),
    _chronic(
        "B18.1",
        "Chronic viral hepatitis B without delta-agent",
        "Viêm gan virus B mạn tính không có đồng nhiễm virus D",
        ((15, 0.06, 0.045),),
        ("tenofovir",),
        (("alt", 0.6),),
    ),
    _chronic(
        "M17.9",
        "Gonarthrosis, unspecified",
        "Thoái hóa khớp gối, không đặc hiệu",
        ((50, 0.06, 0.10), (65, 0.14, 0.22)),
        ("paracetamol",),
        (),
    ),
    _chronic(
        "I25.9",
        "Chronic ischaemic heart disease, unspecified",
        "Bệnh tim thiếu máu cục bộ mạn tính",
        ((55, 0.03, 0.02), (70, 0.07, 0.05)),
        ("aspirin",),
        (("cholesterol", 0.3),),
    ),
    _chronic(
        "N18.9",
        "Chronic kidney disease, unspecified",
        "Bệnh thận mạn, không đặc hiệu",
        ((50, 0.02, 0.02), (70, 0.05, 0.05)),
        (),
        (("creatinine", 1.0),),
    ),
)
CHRONIC_BY_CODE = {c.code: c for c in CHRONIC}


class Acute(NamedTuple):
    code: str
    concept: Json
    weights: tuple[float, float, float]  # relative frequency for children (<15), adults, elderly (60+)
    classes: tuple[float, float, float]  # AMB, EMER, IMP
    meds: tuple[str, ...]  # "a|b" = one of
    labs: tuple[str, ...]
    fever: bool
    stay: tuple[int, int]  # inpatient days
    sex: str = ""  # "F" = women aged 20-39 only (delivery), "f" = mostly women


def _acute(
    code: str,
    en: str,
    vi: str,
    weights: tuple[float, float, float],
    classes: tuple[float, float, float],
    meds: tuple[str, ...] = (),
    labs: tuple[str, ...] = (),
    fever: bool = False,
    stay: tuple[int, int] = (2, 6),
    sex: str = "",
) -> Acute:
    return Acute(code, concept(ICD10, code, en, vi), weights, classes, meds, labs, fever, stay, sex)


ACUTE: tuple[Acute, ...] = (
    _acute(
        "J06.9",
        "Acute upper respiratory infection, unspecified",
        "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu",
        (30, 20, 12),
        (97, 3, 0),
        ("paracetamol",),
        fever=True,
    ),
    _acute(
        "J02.9",
        "Acute pharyngitis, unspecified",
        "Viêm họng cấp, không đặc hiệu",
        (8, 8, 5),
        (99, 1, 0),
        ("amoxicillin", "paracetamol"),
        fever=True,
    ),
    _acute(
        "J20.9",
        "Acute bronchitis, unspecified",
        "Viêm phế quản cấp, không đặc hiệu",
        (6, 5, 6),
        (95, 3, 2),
        ("amoxicillin", "paracetamol"),
        fever=True,
    ),
    _acute(
        "J18.9",
        "Pneumonia, unspecified",
        "Viêm phổi, không đặc hiệu",
        (5, 1.5, 5),
        (40, 15, 45),
        ("amoxicillin-clavulanate|ceftriaxone", "paracetamol"),
        ("wbc", "hemoglobin"),
        True,
        (4, 10),
    ),
    _acute(
        "A09",
        "Diarrhoea and gastroenteritis of presumed infectious origin",
        "Tiêu chảy và viêm dạ dày ruột do nhiễm trùng",
        (12, 5, 4),
        (85, 8, 7),
        ("ors",),
        fever=True,
        stay=(2, 4),
    ),
    _acute(
        "B08.4",
        "Enteroviral vesicular stomatitis with exanthem",
        "Bệnh tay chân miệng",
        (3, 0, 0),
        (85, 5, 10),
        ("paracetamol",),
        fever=True,
        stay=(3, 6),
    ),
    _acute(
        "B01.9",
        "Varicella without complication",
        "Thủy đậu không biến chứng",
        (2, 0.3, 0),
        (100, 0, 0),
        ("paracetamol",),
        fever=True,
    ),
    _acute(
        "A90",
        "Dengue fever [classical dengue]",
        "Sốt Dengue",
        (3, 3, 1.5),
        (60, 20, 20),
        ("paracetamol",),
        ("platelets", "hemoglobin"),
        True,
        (3, 6),
    ),
    _acute(
        "A91",
        "Dengue haemorrhagic fever",
        "Sốt xuất huyết Dengue",
        (1, 0.8, 0.5),
        (0, 30, 70),
        ("paracetamol",),
        ("platelets", "hemoglobin", "wbc"),
        True,
        (4, 8),
    ),
    _acute(
        "R50.9",
        "Fever, unspecified",
        "Sốt, không đặc hiệu",
        (6, 2, 1),
        (95, 5, 0),
        ("paracetamol",),
        fever=True,
    ),
    _acute(
        "K29.7",
        "Gastritis, unspecified",
        "Viêm dạ dày, không đặc hiệu",
        (1, 10, 8),
        (97, 3, 0),
        ("omeprazole",),
    ),
    _acute("M54.5", "Low back pain", "Đau vùng thắt lưng", (0.2, 8, 10), (99, 1, 0), ("ibuprofen|paracetamol",)),
    _acute(
        "N39.0",
        "Urinary tract infection, site not specified",
        "Nhiễm khuẩn đường tiết niệu, vị trí không xác định",
        (1, 4, 4),
        (95, 2, 3),
        ("ciprofloxacin",),
        fever=True,
        sex="f",
    ),
    _acute("H10.9", "Conjunctivitis, unspecified", "Viêm kết mạc, không đặc hiệu", (3, 2, 1), (100, 0, 0)),
    _acute("L30.9", "Dermatitis, unspecified", "Viêm da, không đặc hiệu", (3, 3, 2), (100, 0, 0)),
    _acute(
        "S93.4",
        "Sprain and strain of ankle",
        "Bong gân và căng cơ khớp cổ chân",
        (2, 3, 1),
        (60, 40, 0),
        ("paracetamol",),
    ),
    _acute(
        "S52.5",
        "Fracture of lower end of radius",
        "Gãy đầu dưới xương quay",
        (1.5, 1, 2),
        (10, 60, 30),
        ("paracetamol",),
        stay=(2, 5),
    ),
    _acute(
        "S01.9",
        "Open wound of head, part unspecified",
        "Vết thương hở ở đầu, phần không xác định",
        (1, 1.5, 0.8),
        (20, 75, 5),
        ("paracetamol",),
        stay=(1, 3),
    ),
    _acute(
        "S06.0",
        "Concussion",
        "Chấn động não",
        (0.5, 1, 0.6),
        (0, 60, 40),
        ("paracetamol",),
        ("hemoglobin",),
        stay=(2, 5),
    ),
    _acute(
        "K35.8",
        "Acute appendicitis, other and unspecified",
        "Viêm ruột thừa cấp",
        (0.6, 0.6, 0.2),
        (0, 10, 90),
        ("ceftriaxone",),
        ("wbc", "hemoglobin"),
        True,
        (3, 6),
    ),
    _acute(
        "I63.9",
        "Cerebral infarction, unspecified",
        "Nhồi máu não, không đặc hiệu",
        (0, 0.1, 1.5),
        (0, 10, 90),
        ("aspirin",),
        ("glucose", "cholesterol", "creatinine"),
        stay=(7, 16),
    ),
    _acute(
        "I21.9",
        "Acute myocardial infarction, unspecified",
        "Nhồi máu cơ tim cấp, không đặc hiệu",
        (0, 0.1, 0.5),
        (0, 5, 95),
        ("aspirin",),
        ("glucose", "cholesterol", "creatinine"),
        stay=(5, 12),
    ),
    _acute(
        "O80",
        "Single spontaneous delivery",
        "Đẻ thường một thai",
        (0, 9, 0),
        (0, 0, 100),
        (),
        ("hemoglobin",),
        stay=(2, 4),
        sex="F",
    ),
)

# Medications: key → (ATC code, ATC display, RxNorm ingredient or "", text, dose mg, unit, per day, days,
# route, as needed)
_ORAL = concept("http://snomed.info/sct", "26643006", "Oral route", "Uống")
_IV = concept("http://snomed.info/sct", "47625008", "Intravenous route", "Tiêm tĩnh mạch")
_INHALED = {"text": "Xịt đường hô hấp"}


class Med(NamedTuple):
    concept: Json
    dose: float
    unit: str
    per_day: int
    days: int
    route: Json
    as_needed: bool
    text: str

    @property
    def injected(self) -> bool:
        return self.route is _IV


def _med(
    atc: str,
    display: str,
    rxnorm: str,
    text: str,
    dose: float,
    unit: str,
    per_day: int,
    days: int,
    route: Json = _ORAL,
    as_needed: bool = False,
) -> Med:
    cc: Json = {"coding": [{"system": ATC, "code": atc, "display": display}]}
    if rxnorm:
        cc["coding"].append({"system": RXNORM, "code": rxnorm, "display": display})
    cc["text"] = text
    how = "khi cần" if as_needed else f"{per_day} lần/ngày"
    verb = "Tiêm" if route is _IV else "Xịt" if route is _INHALED else "Uống"
    return Med(cc, dose, unit, per_day, days, route, as_needed, f"{verb} {dose:g} {unit}, {how}, trong {days} ngày")


MEDS: dict[str, Med] = {
    "amlodipine": _med("C08CA01", "amlodipine", "17767", "Amlodipin 5 mg", 5, "mg", 1, 30),
    "losartan": _med("C09CA01", "losartan", "52175", "Losartan 50 mg", 50, "mg", 1, 30),
    "metformin": _med("A10BA02", "metformin", "6809", "Metformin 500 mg", 500, "mg", 2, 30),
    "atorvastatin": _med("C10AA05", "atorvastatin", "83367", "Atorvastatin 20 mg", 20, "mg", 1, 30),
    "salbutamol": _med(
        "R03AC02", "salbutamol", "435", "Salbutamol 100 mcg/liều (bình xịt)", 200, "ug", 4, 30, _INHALED, True
    ),
    "tenofovir": _med("J05AF07", "tenofovir disoproxil", "", "Tenofovir disoproxil fumarat 300 mg", 300, "mg", 1, 30),
    "aspirin": _med("B01AC06", "acetylsalicylic acid", "1191", "Aspirin 81 mg", 81, "mg", 1, 30),
    "paracetamol": _med("N02BE01", "paracetamol", "161", "Paracetamol 500 mg", 500, "mg", 3, 5, as_needed=True),
    "amoxicillin": _med("J01CA04", "amoxicillin", "723", "Amoxicilin 500 mg", 500, "mg", 3, 7),
    "amoxicillin-clavulanate": _med(
        "J01CR02",
        "amoxicillin and beta-lactamase inhibitor",
        "",
        "Amoxicilin + acid clavulanic 875/125 mg",
        1000,
        "mg",
        2,
        7,
    ),
    "ceftriaxone": _med("J01DD04", "ceftriaxone", "2193", "Ceftriaxon 1 g (tiêm)", 1, "g", 1, 5, _IV),
    "ors": _med("A07CA", "oral rehydration salt formulations", "", "Oresol (ORS) gói 4,1 g", 4.1, "g", 3, 3),
    "omeprazole": _med("A02BC01", "omeprazole", "7646", "Omeprazol 20 mg", 20, "mg", 1, 14),
    "ibuprofen": _med("M01AE01", "ibuprofen", "5640", "Ibuprofen 400 mg", 400, "mg", 3, 5, as_needed=True),
    "ciprofloxacin": _med("J01MA02", "ciprofloxacin", "2551", "Ciprofloxacin 500 mg", 500, "mg", 2, 7),
}
CHILD_DOSE = {"paracetamol": 250.0, "amoxicillin": 250.0, "ibuprofen": 200.0}

# Reasons for encounter without a disease (ICD-10 chapter XXI, Z00-Z99): the chief-complaint diagnosis
# of a check-up and of a vaccination visit (VN Core wants one on every Encounter).
CHECKUP_ADULT = concept(ICD10, "Z00.0", "General medical examination", "Khám sức khỏe tổng quát")
CHECKUP_CHILD = concept(ICD10, "Z00.1", "Routine child health examination", "Khám sức khỏe định kỳ trẻ em")
IMMUNIZATION_NEED: dict[str, Json] = {
    code: concept(ICD10, code, en, vi)
    for code, en, vi in (
        ("Z23.2", "Need for immunization against tuberculosis [BCG]", "Cần tiêm chủng phòng bệnh lao [BCG]"),
        ("Z24.0", "Need for immunization against poliomyelitis", "Cần tiêm chủng phòng bệnh bại liệt"),
        (
            "Z24.1",
            "Need for immunization against arthropod-borne viral encephalitis",
            "Cần tiêm chủng phòng viêm não do virus truyền qua côn trùng",
        ),
        ("Z24.4", "Need for immunization against measles alone", "Cần tiêm chủng phòng bệnh sởi đơn thuần"),
        ("Z24.6", "Need for immunization against viral hepatitis", "Cần tiêm chủng phòng viêm gan virus"),
        (
            "Z27.1",
            "Need for immunization against diphtheria-tetanus-pertussis, combined [DTP]",
            "Cần tiêm chủng phối hợp phòng bạch hầu - ho gà - uốn ván [DTP]",
        ),
        (
            "Z27.3",
            "Need for immunization against diphtheria-tetanus-pertussis with poliomyelitis [DTP + polio]",
            "Cần tiêm chủng phối hợp phòng bạch hầu - ho gà - uốn ván và bại liệt [DTP + bại liệt]",
        ),
        (
            "Z27.8",
            "Need for immunization against other combinations of infectious diseases",
            "Cần tiêm chủng phối hợp phòng các bệnh nhiễm trùng khác",
        ),
    )
}
