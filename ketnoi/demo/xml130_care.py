"""What happens during one synthetic visit: the clinical cases, and the lines and notes (XML2-XML5) they make.

A ``Case`` is a diagnosis of ``ketnoi.demo.catalog`` (its ICD-10 code and Vietnamese name) with what a
Vietnamese facility typically does for it: the complaint (LY_DO_VV), the outpatient prescription and tests,
and for a ward stay the daily drugs, fluids, admission tests, imaging and procedure. ``clinical`` turns a
``Plan`` (who, where, when, which case, which MA_LOAI_KCB) into the rows of XML2-XML5 on a timeline that keeps
every order inside the visit: NGAY_VAO <= NGAY_YL <= NGAY_TH_YL <= NGAY_KQ <= NGAY_RA.

* ``01`` (khám bệnh): one exam, the case's tests and imaging, a prescription for the course; same day.
* ``02`` (điều trị ngoại trú): day 0 as ``01``, then a procedure (dressing, nebuliser, eye wash) and a
  progress note on each treatment day.
* ``03`` (điều trị nội trú): exam (emergency or outpatient department), admission, admission tests, the
  procedure if any, bed-days per department, the drugs and fluids of each day (one XML2 row per drug per
  day, as an HIS lists the daily orders), supplies of the drips, repeat tests, a progress note per day with
  the vital-signs form of QĐ 4750 (``CSST<M80_T37_HA120/80_NT18>``), a consultation for the gravest cases.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple

from ketnoi.demo import catalog
from ketnoi.demo.xml130_lines import (
    BEDS,
    CHILD_FORMS,
    DRUGS,
    EMERGENCY_EXAM,
    EXAMS,
    IMAGING,
    PROCEDURES,
    Lines,
    Row,
    ordered,
    stamp,
)


class Case(NamedTuple):
    code: str  # ICD-10
    name: str  # Vietnamese name (CHAN_DOAN_*)
    complaint: str  # LY_DO_VV
    meds: tuple[str, ...]  # outpatient drugs; "a/b" = one of
    labs: tuple[str, ...]
    imaging: tuple[str, ...]
    procedures: tuple[str, ...]  # outpatient (01/02) procedures
    ward: str  # department of a stay (K code); "" = no stay for this case
    ward_meds: tuple[str, ...]  # drugs of each day of a stay
    ward_day0: tuple[str, ...]  # procedures and drugs of the admission day only
    fluids: bool  # drips during a stay (infusion service and its supplies)
    severe: bool  # consultation (HOI_CHAN), ECG on admission
    stay: tuple[int, int]
    weights: tuple[float, float, float]  # children, adults, elderly
    classes: tuple[float, float, float]  # outpatient, emergency, inpatient
    sex: str  # "F": women 20-39 only, "f": mostly women


# code|complaint (LY_DO_VV)|outpatient drugs ("a/b": one of)|labs|imaging|procedures|ward|drugs of each ward
# day|procedures and drugs of the admission day|flags (fluids, severe)
_PROTOCOLS = """
J06.9|Sốt, sổ mũi, ho|paracetamol chlorpheniramine/loratadine bromhexine|cbc||||||
J02.9|Đau họng, sốt|amoxicillin paracetamol alphachymotrypsin|cbc crp||||||
J20.9|Ho, khạc đờm, sốt nhẹ|amoxicillin paracetamol bromhexine alphachymotrypsin|cbc crp|xray-chest|nebuliser|K03|
    ceftriaxone paracetamol bromhexine||
J18.9|Sốt cao, ho, khó thở|amoxicillin-clavulanate paracetamol bromhexine|cbc crp glucose urea creatinine|xray-chest|
    nebuliser|K03|ceftriaxone paracetamol bromhexine oxygen sodium-chloride||fluids
A09|Tiêu chảy, nôn, đau bụng|ors diosmectite bacillus|cbc electrolytes|||K03|
    ors diosmectite bacillus ringer-lactate sodium-chloride||fluids
B08.4|Sốt, loét miệng, phát ban tay chân|paracetamol vitamin-b|cbc|||K24|paracetamol ors||
B01.9|Sốt, nổi mụn nước toàn thân|paracetamol chlorpheniramine povidone|cbc||||||
A90|Sốt cao liên tục, đau đầu, đau mỏi người|paracetamol ors|cbc ast alt|||K03|paracetamol ors ringer-lactate||fluids
A91|Sốt, xuất huyết dưới da, chảy máu chân răng|paracetamol ors|cbc ast alt electrolytes|ultrasound||K03|
    paracetamol ringer-lactate sodium-chloride omeprazole-iv||fluids severe
R50.9|Sốt|paracetamol|cbc crp||||||
K29.7|Đau thượng vị, ợ chua|omeprazole antacid domperidone||ultrasound|||||
M54.5|Đau vùng thắt lưng|ibuprofen/paracetamol eperisone vitamin-b meloxicam|||||||
N39.0|Tiểu buốt, tiểu rắt|ciprofloxacin paracetamol|urine cbc crp|ultrasound||K03|
    ceftriaxone paracetamol sodium-chloride||fluids
H10.9|Đỏ mắt, chảy nước mắt|tobramycin-eye loratadine|||eye-wash||||
L30.9|Ngứa, nổi ban đỏ trên da|loratadine betamethasone-cream|||||||
S93.4|Đau, sưng cổ chân sau ngã|paracetamol alphachymotrypsin meloxicam||xray-ankle|||||
S52.5|Đau, biến dạng cổ tay sau ngã|paracetamol alphachymotrypsin|cbc|xray-forearm|cast|K19|
    paracetamol alphachymotrypsin|cast|
S01.9|Vết thương vùng đầu chảy máu|amoxicillin paracetamol alphachymotrypsin povidone|||suture dressing|K19|
    paracetamol amoxicillin|suture|
S06.0|Đau đầu, chóng mặt sau chấn thương đầu|paracetamol vitamin-b|cbc|ct-head||K19|
    paracetamol vitamin-b sodium-chloride||fluids
K35.8|Đau bụng hố chậu phải, sốt|paracetamol|cbc crp glucose urea creatinine|ultrasound||K19|
    ceftriaxone metronidazole-iv paracetamol-iv ringer-lactate omeprazole-iv|appendectomy|fluids
I63.9|Yếu nửa người, nói khó|aspirin atorvastatin|cbc glucose cholesterol triglyceride creatinine electrolytes|
    ct-head ecg||K03|aspirin atorvastatin sodium-chloride omeprazole-iv vitamin-b||fluids severe
I21.9|Đau ngực trái dữ dội, vã mồ hôi|aspirin clopidogrel atorvastatin|
    cbc glucose cholesterol creatinine electrolytes|ecg xray-chest||K03|
    aspirin clopidogrel atorvastatin enoxaparin isosorbide oxygen||severe
O80|Chuyển dạ đẻ||cbc urine|ultrasound||K26|amoxicillin paracetamol iron-folate|delivery oxytocin lidocaine|
I10|Khám lại tăng huyết áp, lĩnh thuốc|amlodipine/losartan|creatinine cholesterol urine|ecg|||||
E11.9|Khám lại đái tháo đường, lĩnh thuốc|metformin|glucose hba1c creatinine urine||||||
E78.5|Khám lại rối loạn lipid máu|atorvastatin|cholesterol triglyceride hdl ldl ast alt||||||
J44.9|Khó thở, ho kéo dài|salbutamol budesonide-formoterol||xray-chest|nebuliser||||
J45.9|Khò khè, khó thở từng cơn|salbutamol budesonide-formoterol|||nebuliser||||
B18.1|Khám lại viêm gan B mạn, lĩnh thuốc|tenofovir|ast alt creatinine|ultrasound|||||
M17.9|Đau khớp gối hai bên|paracetamol glucosamine meloxicam|||||||
I25.9|Đau tức ngực khi gắng sức|aspirin atorvastatin isosorbide|cholesterol glucose|ecg|||||
N18.9|Khám lại bệnh thận mạn, lĩnh thuốc|furosemide calcium|creatinine urea electrolytes cbc urine|ultrasound|||||
"""


def _cases() -> dict[str, Case]:
    acute = {a.code: a for a in catalog.ACUTE}
    chronic = {c.code: c for c in catalog.CHRONIC}
    cases: dict[str, Case] = {}
    for line in _PROTOCOLS.strip().replace("\n    ", "").splitlines():  # an indented line continues a row
        code, complaint, meds, labs, imaging, procedures, ward, ward_meds, day0, flags = line.split("|")
        a = acute.get(code)
        name = (a or chronic[code]).concept["text"]
        cases[code] = Case(
            code,
            name,
            complaint,
            tuple(meds.split()),
            tuple(labs.split()),
            tuple(imaging.split()),
            tuple(procedures.split()),
            ward,
            tuple(ward_meds.split()),
            tuple(day0.split()),
            "fluids" in flags.split(),
            "severe" in flags.split(),
            a.stay if a else (2, 5),
            a.weights if a else (0.0, 0.0, 0.0),
            a.classes if a else (100.0, 0.0, 0.0),
            a.sex if a else "",
        )
    assert set(acute) <= set(cases) and set(chronic) <= set(cases)
    for case in cases.values():
        for key in (*case.meds, *case.ward_meds, *case.ward_day0):
            assert all(k in DRUGS or k in PROCEDURES for k in key.split("/")), (case.code, key)
        assert all(k in IMAGING for k in case.imaging) and all(k in PROCEDURES for k in case.procedures)
    return cases


CASES = _cases()
ACUTE_CODES = tuple(a.code for a in catalog.ACUTE)
CHRONIC_CODES = tuple(c.code for c in catalog.CHRONIC)
# Cases treated over several days as outpatients (MA_LOAI_KCB 02), with the procedure of each later day.
OUTPATIENT_TREATMENT = {"S01.9": "dressing", "H10.9": "eye-wash", "J20.9": "nebuliser"}
BED_CODES = ("H", "T")
# Drugs often added to an acute outpatient prescription (one of).
SUPPORTIVE = ("vitamin-b/alphachymotrypsin",)
# Tests an outpatient department adds for an adult (a general check of blood, liver, kidneys, lipids, urine).
ROUTINE = (
    "cbc",
    "glucose",
    "urea",
    "creatinine",
    "ast",
    "alt",
    "cholesterol",
    "triglyceride",
    "urine",
)


@dataclass(slots=True)
class Plan:
    """One visit, decided before its lines are drawn."""

    kind: str  # MA_LOAI_KCB: "01", "02", "03"
    level: str  # facility level: commune, regional, provincial
    start: datetime  # NGAY_VAO
    days: int  # treatment days after the first (0 for "01")
    case: Case
    others: list[Case]  # MA_BENH_KT
    emergency: bool
    doctor: str  # MA_BAC_SI: practising-certificate number
    reader: str  # who performs tests and reads results
    age: float
    female: bool


@dataclass(slots=True)
class Outcome:
    """What the lines tell XML1: departments in order, admission time, end, procedures, notes."""

    khoa: list[str] = field(default_factory=list)
    admitted: datetime | None = None
    end: datetime | None = None
    icd9: list[str] = field(default_factory=list)
    xml5: list[Row] = field(default_factory=list)


def _minutes(moment: datetime, low: int, high: int, rng: random.Random) -> datetime:
    return moment + timedelta(minutes=rng.randint(low, high))


def _drug_key(key: str, age: float, rng: random.Random) -> str:
    key = rng.choice(key.split("/"))
    return CHILD_FORMS.get(key, key) if age < 6 else key


def _dose(key: str, age: float) -> Decimal:
    drug = DRUGS[key]
    return Decimal("0.5") if 6 <= age < 12 and key in ("paracetamol", "amoxicillin", "ibuprofen") else drug.dose


def _course(key: str, age: float, days: int | None) -> tuple[Decimal, str]:
    """(SO_LUONG, LIEU_DUNG) of a prescription: a whole course, or one day of a stay (``days`` None)."""
    drug = DRUGS[key]
    dose = _dose(key, age)
    if drug.unit in ("bình", "tuýp") or (drug.unit in ("lọ", "chai") and drug.route == "3.05"):
        return Decimal(1), f"Dùng {drug.per_day * 2} lần/ngày"
    if key == "oxygen":
        return dose, "2 lít/phút * 24 giờ/ngày"
    per_day = f"{dose.normalize():f} {drug.unit}/lần * {drug.per_day} lần/ngày"
    if days is None:
        return dose * drug.per_day, per_day
    return dose * drug.per_day * days, f"{per_day} * {days} ngày"


def _vitals(plan: Plan, rng: random.Random, fever: bool) -> str:
    """The vital-signs form of QĐ 4750 (schema XML5 #3): CSST<M.._T.._HA../.._NT..>."""
    child = plan.age < 12
    pulse = rng.randint(95, 130) if child else rng.randint(64, 96) + (12 if fever else 0)
    temp = f"{rng.uniform(38.0, 39.5):.1f}" if fever else rng.choice(("36.5", "36.8", "37"))
    breath = rng.randint(22, 32) if child else rng.randint(16, 22)
    parts = [f"M{pulse}", f"T{temp}"]
    if plan.age >= 16:
        systolic = rng.randrange(100, 160, 5) + (15 if any(o.code == "I10" for o in plan.others) else 0)
        parts.append(f"HA{systolic}/{rng.randrange(60, min(100, systolic - 30), 5)}")
    parts.append(f"NT{breath}")
    return f"CSST<{'_'.join(parts)}>"


def _note(lines: Lines, plan: Plan, at: datetime, text: str, rng: random.Random, fever: bool, **extra: str) -> Row:
    return ordered(
        "XML5",
        {
            "MA_LK": lines.ma_lk,
            "STT": "",
            "DIEN_BIEN_LS": f"{text} {_vitals(plan, rng, fever)}",
            "GIAI_DOAN_BENH": extra.get("stage", ""),
            "HOI_CHAN": extra.get("consult", ""),
            "PHAU_THUAT": extra.get("surgery", ""),
            "THOI_DIEM_DBLS": stamp(at),
            "NGUOI_THUC_HIEN": plan.doctor,
        },
    )


def _tests(lines: Lines, plan: Plan, keys: tuple[str, ...], order: datetime, khoa: str, rng: random.Random) -> datetime:
    """Labs and imaging ordered at ``order``; the time of the last result."""
    last = order
    for key in keys:
        done = _minutes(order, 5, 40, rng)
        result = _minutes(done, 20, 90, rng)
        if key in IMAGING:
            lines.reading(key, (order, done, result), khoa, plan.doctor, plan.reader)
        else:
            lines.lab(key, (order, done, result), khoa, plan.doctor, plan.reader)
        last = max(last, result)
    return last


def _picked(keys: tuple[str, ...], rng: random.Random, keep: float) -> tuple[str, ...]:
    chosen = tuple(k for k in keys if rng.random() < keep)
    return chosen or keys[:1]


def clinical(lines: Lines, plan: Plan, rng: random.Random) -> Outcome:
    """Draw the visit's XML2-XML5 rows into ``lines``; what XML1 needs to know about them."""
    case, outcome = plan.case, Outcome()
    fever = "sốt" in case.complaint.lower()
    ward = case.ward if plan.kind == "03" else ""
    if ward == "K03" and plan.age < 15:
        ward = "K24"
    front = "K02" if plan.emergency else "K01"
    outcome.khoa.append(front)
    exam = EMERGENCY_EXAM if plan.emergency else EXAMS[plan.level]
    order = _minutes(plan.start, 3, 15, rng)
    lines.service(exam, Decimal(1), (order, order, None), front, plan.doctor)
    tests = case.labs + case.imaging
    for other in plan.others:
        tests += tuple(k for k in other.labs if k not in tests and rng.random() < 0.3)
    if plan.kind == "03":
        admin = ("cbc", "glucose", "urea", "creatinine", "ast", "alt", "urine")
        tests = tuple(dict.fromkeys((*tests, *(k for k in admin if rng.random() < 0.6))))
        if plan.age >= 40 and "ecg" not in tests:
            tests += ("ecg",)
    else:
        tests = _picked(tests, rng, 0.4 if plan.level == "commune" else 0.8) if tests else ()
        if plan.level != "commune" and plan.age >= 15 and rng.random() < 0.7:
            tests = tuple(dict.fromkeys((*tests, *(k for k in ROUTINE if rng.random() < 0.75))))
    last = _tests(lines, plan, tests, _minutes(order, 5, 20, rng), front, rng)
    if plan.kind == "03":
        _ward(lines, plan, rng, outcome, ward, last, fever)
    else:
        _outpatient(lines, plan, rng, outcome, last, fever)
    for number, note in enumerate(outcome.xml5, 1):
        note["STT"] = str(number)
    return outcome


def _outpatient(lines: Lines, plan: Plan, rng: random.Random, outcome: Outcome, last: datetime, fever: bool) -> None:
    case, khoa = plan.case, outcome.khoa[0]
    for key in case.procedures if plan.kind == "02" or rng.random() < 0.5 else ():
        procedure = PROCEDURES[key]
        begin = _minutes(last, 5, 20, rng)
        last = _minutes(begin, 10, 30, rng)
        lines.service(procedure, Decimal(1), (begin, begin, last), khoa, plan.doctor, plan.reader)
        outcome.icd9.append(procedure.icd9)
        _procedure_supplies(lines, key, begin, khoa, plan.doctor)
    prescribed = _minutes(last, 5, 20, rng)
    meds = [case.meds] + [o.meds for o in plan.others if rng.random() < 0.7]
    if case.code not in CHRONIC_CODES and rng.random() < 0.4:
        meds.append(SUPPORTIVE)
    seen: set[str] = set()
    for group in meds:
        for raw in group:
            key = _drug_key(raw, plan.age, rng)
            if key in seen:
                continue
            seen.add(key)
            course = 30 if case.code in CHRONIC_CODES else DRUGS[key].days
            qty, dose = _course(key, plan.age, course)
            lines.drug(key, qty, prescribed, _minutes(prescribed, 5, 30, rng), khoa, plan.doctor, dose)
            last = max(last, prescribed + timedelta(minutes=30))
    if plan.kind == "02":
        outcome.xml5.append(_note(lines, plan, prescribed, f"Khám: {case.complaint.lower()}.", rng, fever))
        day = plan.start.date()
        for k in range(1, plan.days + 1):
            begin = datetime.combine(day + timedelta(days=k), time(8)) + timedelta(minutes=rng.randint(0, 90))
            key = OUTPATIENT_TREATMENT[case.code]
            last = _minutes(begin, 10, 25, rng)
            lines.service(PROCEDURES[key], Decimal(1), (begin, begin, last), khoa, plan.doctor, plan.reader)
            _procedure_supplies(lines, key, begin, khoa, plan.doctor)
            text = "Tình trạng ổn định, đáp ứng điều trị." if k < plan.days else "Ổn định, kết thúc đợt điều trị."
            outcome.xml5.append(_note(lines, plan, last, f"Ngày điều trị thứ {k + 1}: {text}", rng, fever and k < 2))
    outcome.end = _minutes(last, 5, 15, rng)


def _procedure_supplies(lines: Lines, key: str, at: datetime, khoa: str, doctor: str) -> None:
    used = {"suture": ("N06.03.020", "N02.01.040"), "cast": ("N07.01.050",), "dressing": ("N01.02.010",)}
    for code in used.get(key, ()):
        lines.supply(code, Decimal(1 if code != "N07.01.050" else 3), at, khoa, doctor)


def _ward(
    lines: Lines, plan: Plan, rng: random.Random, outcome: Outcome, ward: str, last: datetime, fever: bool
) -> None:
    case, days = plan.case, plan.days
    admitted = _minutes(last, 10, 60, rng)
    outcome.admitted = admitted
    outcome.khoa.append(ward)
    discharge = datetime.combine(plan.start.date() + timedelta(days=days), time(8)) + timedelta(
        minutes=rng.randint(30, 180)
    )
    discharge = max(discharge, admitted + timedelta(hours=4))
    # Bed-days: a day of emergency care first when admitted through the emergency department.
    bed = f"{rng.choice(BED_CODES)}{rng.randint(1, 60):03d}"
    nights = max(1, (discharge.date() - plan.start.date()).days)
    segments = [(ward, admitted, nights)]
    if plan.emergency and nights > 1:
        segments = [("K02", plan.start, 1), (ward, admitted + timedelta(days=1), nights - 1)]
    for khoa, begin, count in segments:
        lines.service(BEDS[khoa], Decimal(count), (begin, begin, None), khoa, plan.doctor, bed=bed)
    surgery = ""
    for key in case.ward_day0:
        begin = _minutes(admitted, 30, 150, rng)
        if key in PROCEDURES:
            procedure = PROCEDURES[key]
            end = _minutes(begin, 30, 120, rng)
            lines.service(procedure, Decimal(1), (begin, begin, end), ward, plan.doctor, plan.reader)
            outcome.icd9.append(procedure.icd9)
            _procedure_supplies(lines, key, begin, ward, plan.doctor)
            surgery = f"{procedure.name}: thành công, không tai biến."
        else:
            qty, dose = _course(key, plan.age, None)
            lines.drug(key, qty, begin, _minutes(begin, 5, 20, rng), ward, plan.doctor, dose)
    meds = [_drug_key(k, plan.age, rng) for k in case.ward_meds]
    for other in plan.others:
        meds += [_drug_key(k, plan.age, rng) for k in other.meds]
    meds = list(dict.fromkeys(meds))
    cannula = None
    for day in range(days):
        morning = (
            _minutes(admitted, 20, 60, rng)
            if day == 0
            else datetime.combine(plan.start.date() + timedelta(days=day), time(7, 30))
        )
        injections = 0
        for key in meds:
            if DRUGS[key].unit in ("bình",) and day > 0:
                continue
            qty, dose = _course(key, plan.age, None)
            lines.drug(key, qty, morning, _minutes(morning, 10, 60, rng), ward, plan.doctor, dose)
            injections += int(qty) if DRUGS[key].route == "2.10" else 0
        lines.supply("N02.01.040", Decimal(2), morning, ward, plan.doctor)
        if injections:
            lines.supply("N03.02.070", Decimal(injections), morning, ward, plan.doctor)
        if case.fluids:
            drip = _minutes(morning, 30, 90, rng)
            lines.service(
                PROCEDURES["infusion"],
                Decimal(1),
                (drip, drip, _minutes(drip, 60, 180, rng)),
                ward,
                plan.doctor,
                plan.reader,
            )
            if cannula is None or day - cannula >= 3:
                cannula = day
                lines.supply("N03.06.030", Decimal(1), drip, ward, plan.doctor)
            lines.supply("N03.05.010", Decimal(1), drip, ward, plan.doctor)
            lines.supply("N03.02.070", Decimal(2), drip, ward, plan.doctor)
        if day and day % 2 == 0 and case.labs:
            _tests(lines, plan, case.labs[:3], morning, ward, rng)  # control tests every other day
        if day and any(o.code == "E11.9" for o in plan.others):
            _tests(lines, plan, ("glucose",), morning, ward, rng)
        text = "Bệnh tỉnh, tiếp xúc tốt." if day else f"Vào viện vì {case.complaint.lower()}."
        extra = {}
        if day == 0 and surgery:
            extra["surgery"] = surgery
        if day == 1 and case.severe:
            extra["consult"] = "Hội chẩn khoa: thống nhất chẩn đoán, tiếp tục phác đồ điều trị hiện tại."
        stage = "Giai đoạn cấp" if day < 2 else "Giai đoạn ổn định"
        outcome.xml5.append(
            _note(lines, plan, morning + timedelta(minutes=5), text, rng, fever and day < 2, stage=stage, **extra)
        )
    outcome.xml5.append(
        _note(lines, plan, discharge - timedelta(minutes=30), "Ổn định, đủ điều kiện ra viện.", rng, False)
    )
    outcome.end = discharge
