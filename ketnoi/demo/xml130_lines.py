"""The billable lines of a synthetic claim (XML2 drugs, XML3 services and supplies) and the XML4 results.

Every amount is a ``decimal.Decimal`` and follows the formulas of the schema (XML2 #20-30, XML3 #19-30), with
TYLE_TT_DV 100 and DON_GIA_BH = DON_GIA_BV::

    THANH_TIEN_BV = round2(SO_LUONG * DON_GIA)           T_BNTT  = THANH_TIEN_BV - THANH_TIEN_BH
    THANH_TIEN_BH = round2(THANH_TIEN_BV * TYLE_TT_BH / 100)
    T_BHTT        = round2(THANH_TIEN_BH * MUC_HUONG / 100)   T_BNCCT = THANH_TIEN_BH - T_BHTT
    T_NGUONKHAC*  = 0

(round2: two decimals, half up), so that the visit totals of XML1 are exact sums of the lines. Amounts are
written with two decimals, or none when whole ("123500", "1898.63"); quantities and unit prices with up to
three (§2). Prices are in the range of the 2024 price lists; the codes have the shapes of the Ministry's lists
(MA_DICH_VU ``XX.YYYY.ZZZZ``, exam ``XX.YYYY``, MA_VAT_TU ``Nxx.yy.zzz``, MA_THUOC ``group.number``, SO_DANG_KY
``VD-NNNNN-YY``) but, except oxygen's 40.17 and the oral route 1.01 (both from the schema), they are ketnoi's
own and checked against no official list. MA_CHI_SO are ketnoi's mnemonics (GLU, CRE, ...), not QĐ 7603 codes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from ketnoi.xml130.fields import FIELDS

Row = dict[str, str]
CENT = Decimal("0.01")
MILLI = Decimal("0.001")
HUNDRED = Decimal(100)
ZERO = Decimal(0)


def stamp(moment: datetime) -> str:
    """``yyyyMMddHHmm`` (§2)."""
    return moment.strftime("%Y%m%d%H%M")


def amount(value: Decimal) -> str:
    """An amount: two decimals, or none when whole."""
    value = value.quantize(CENT, ROUND_HALF_UP)
    return f"{value:.0f}" if value == value.to_integral_value() else f"{value:.2f}"


def number(value: Decimal) -> str:
    """A quantity or unit price: up to three decimals, no trailing zeros."""
    text = f"{value.quantize(MILLI, ROUND_HALF_UP):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def ordered(table: str, values: Row) -> Row:
    """A row with every field of the table, in the schema's order (empty when not given)."""
    names = [spec.name for spec in FIELDS[table]]
    unknown = set(values) - set(names)
    assert not unknown, f"{table}: {sorted(unknown)}"
    return {name: values.get(name, "") for name in names}


class Drug(NamedTuple):
    code: str  # MA_THUOC
    name: str  # TEN_THUOC
    strength: str  # HAM_LUONG
    unit: str  # DON_VI_TINH
    route: str  # DUONG_DUNG code
    form: str  # DANG_BAO_CHE
    price: Decimal  # DON_GIA
    dose: Decimal  # units per dose
    per_day: int
    days: int  # outpatient course
    registration: str  # SO_DANG_KY


ROUTES = {
    "1.01": "Uống",
    "2.10": "Tiêm tĩnh mạch",
    "2.15": "Tiêm truyền tĩnh mạch",
    "5.01": "Hít",
    "3.05": "Dùng ngoài",
}

# key|MA_THUOC|TEN_THUOC|HAM_LUONG|DON_VI_TINH|DUONG_DUNG|DANG_BAO_CHE|DON_GIA|dose|per day|days
_DRUG_ROWS = """
paracetamol|40.48|Paracetamol|500mg|viên|1.01|Viên nén|126.575|1|3|5
paracetamol-child|40.49|Paracetamol|250mg|gói|1.01|Thuốc bột pha hỗn dịch uống|1450|1|3|5
paracetamol-iv|40.50|Paracetamol|1g/100ml|chai|2.15|Dung dịch tiêm truyền|19950|1|2|1
ibuprofen|40.31|Ibuprofen|400mg|viên|1.01|Viên nén bao phim|520|1|3|5
amoxicillin|40.152|Amoxicilin|500mg|viên|1.01|Viên nang cứng|735|1|3|7
amoxicillin-child|40.153|Amoxicilin|250mg|gói|1.01|Thuốc bột pha hỗn dịch uống|1200|1|3|7
amoxicillin-clavulanate|40.155|Amoxicilin + acid clavulanic|875mg + 125mg|viên|1.01|Viên nén bao phim|4180|1|2|7
ceftriaxone|40.178|Ceftriaxon|1g|lọ|2.10|Bột pha tiêm|14700|1|2|5
metronidazole-iv|40.210|Metronidazol|500mg/100ml|chai|2.15|Dung dịch tiêm truyền|9870|1|3|5
ciprofloxacin|40.225|Ciprofloxacin|500mg|viên|1.01|Viên nén bao phim|890|1|2|7
amlodipine|40.367|Amlodipin|5mg|viên|1.01|Viên nén|215.25|1|1|30
losartan|40.392|Losartan|50mg|viên|1.01|Viên nén bao phim|735|1|1|30
metformin|40.592|Metformin|500mg|viên|1.01|Viên nén bao phim|310|1|2|30
atorvastatin|40.410|Atorvastatin|20mg|viên|1.01|Viên nén bao phim|598.5|1|1|30
aspirin|40.370|Acid acetylsalicylic|81mg|viên|1.01|Viên nén bao tan trong ruột|189|1|1|30
clopidogrel|40.376|Clopidogrel|75mg|viên|1.01|Viên nén bao phim|1365|1|1|30
enoxaparin|40.381|Enoxaparin natri|40mg/0,4ml|bơm tiêm|2.10|Dung dịch tiêm|84500|1|2|5
salbutamol|40.790|Salbutamol (dưới dạng salbutamol sulfat)|100mcg/liều|bình|5.01|Thuốc phun mù định liều|72450|1|1|1
budesonide-formoterol|40.795|Budesonid + formoterol|160mcg + 4,5mcg/liều|bình|5.01|Thuốc bột để hít|289000|1|1|1
tenofovir|40.262|Tenofovir disoproxil fumarat|300mg|viên|1.01|Viên nén bao phim|4620|1|1|30
omeprazole|40.652|Omeprazol|20mg|viên|1.01|Viên nang cứng|378|1|2|14
omeprazole-iv|40.653|Omeprazol|40mg|lọ|2.10|Bột đông khô pha tiêm|28350|1|1|1
antacid|40.640|Nhôm hydroxyd + magnesi hydroxyd|400mg + 800,4mg|gói|1.01|Hỗn dịch uống|3150|1|3|7
domperidone|40.660|Domperidon|10mg|viên|1.01|Viên nén|210|1|3|7
ors|40.980|Natri clorid + kali clorid + natri citrat + glucose khan|4,1g|gói|1.01|Thuốc bột uống|1575|1|3|3
diosmectite|40.670|Diosmectit|3g|gói|1.01|Thuốc bột pha hỗn dịch uống|2890|1|2|3
zinc|40.1011|Kẽm gluconat|70mg|gói|1.01|Thuốc cốm|1850|1|1|10
bacillus|40.701|Bacillus clausii|2 tỷ bào tử/5ml|ống|1.01|Hỗn dịch uống|6300|1|2|5
bromhexine|40.880|Bromhexin hydroclorid|8mg|viên|1.01|Viên nén|168|1|3|5
alphachymotrypsin|40.1021|Alphachymotrypsin|4200 IU|viên|1.01|Viên nén|420|2|3|5
loratadine|40.110|Loratadin|10mg|viên|1.01|Viên nén|157.5|1|1|7
chlorpheniramine|40.104|Clorpheniramin maleat|4mg|viên|1.01|Viên nén|52.5|1|2|5
eperisone|40.900|Eperison hydroclorid|50mg|viên|1.01|Viên nén bao đường|1260|1|3|10
meloxicam|40.42|Meloxicam|7,5mg|viên|1.01|Viên nén|294|1|1|10
vitamin-b|40.1046|Vitamin B1 + B6 + B12|100mg + 200mg + 200mcg|viên|1.01|Viên nén bao phim|651|1|2|10
glucosamine|40.1030|Glucosamin sulfat|500mg|viên|1.01|Viên nang cứng|1365|1|2|30
acyclovir|40.242|Aciclovir|800mg|viên|1.01|Viên nén|2100|1|5|7
tobramycin-eye|40.1101|Tobramycin|0,3% 5ml|lọ|3.05|Dung dịch nhỏ mắt|13650|1|1|1
betamethasone-cream|40.1140|Betamethason dipropionat|0,05% 15g|tuýp|3.05|Kem bôi da|16800|1|1|1
povidone|40.1150|Povidon iod|10% 90ml|chai|3.05|Dung dịch dùng ngoài|18900|1|1|1
furosemide|40.610|Furosemid|40mg|viên|1.01|Viên nén|157.5|1|1|30
calcium|40.1060|Calci carbonat|1250mg|viên|1.01|Viên nén|840|1|1|30
isosorbide|40.372|Isosorbid mononitrat|60mg|viên|1.01|Viên nén giải phóng kéo dài|2310|1|1|30
sodium-chloride|40.996|Natri clorid|0,9% 500ml|chai|2.15|Dung dịch tiêm truyền|10290|1|2|1
glucose-5|40.990|Glucose|5% 500ml|chai|2.15|Dung dịch tiêm truyền|11025|1|1|1
ringer-lactate|40.1000|Ringer lactat|500ml|chai|2.15|Dung dịch tiêm truyền|11550|1|2|1
oxytocin|40.820|Oxytocin|5 IU/1ml|ống|2.10|Dung dịch tiêm|4830|2|1|1
lidocaine|40.1|Lidocain hydroclorid|2% 2ml|ống|2.10|Dung dịch tiêm|651|2|1|1
iron-folate|40.1070|Sắt fumarat + acid folic|162mg + 0,75mg|viên|1.01|Viên nang mềm|987|1|1|30
oxygen|40.17|Oxy dược dụng|Khí nén 99,5%|lít|5.01|Khí|15.225|2880|1|1
"""


def _drugs() -> dict[str, Drug]:
    drugs: dict[str, Drug] = {}
    for index, line in enumerate(_DRUG_ROWS.strip().splitlines()):
        key, code, name, strength, unit, route, form, price, dose, per_day, days = line.split("|")
        imported = key in ("tenofovir", "salbutamol", "budesonide-formoterol", "enoxaparin", "acyclovir")
        registration = f"{'VN' if imported else 'VD'}-{10007 + index * 1777:05d}-{19 + index % 6}"
        if key == "oxygen":
            registration = ""  # medical gases are dispensed without a marketing authorisation number
        drugs[key] = Drug(
            code,
            name,
            strength,
            unit,
            route,
            form,
            Decimal(price),
            Decimal(dose),
            int(per_day),
            int(days),
            registration,
        )
    assert all(drug.route in ROUTES for drug in drugs.values())
    return drugs


DRUGS = _drugs()
CHILD_FORMS = {"paracetamol": "paracetamol-child", "amoxicillin": "amoxicillin-child", "ibuprofen": "paracetamol-child"}


class Service(NamedTuple):
    code: str  # MA_DICH_VU
    name: str  # TEN_DICH_VU
    group: int  # MA_NHOM: 1 lab, 2 imaging, 3 function tests, 8 procedures, 13 exam, 15 inpatient bed
    price: Decimal
    icd9: str = ""  # MA_PTTT_QT of a procedure
    anaesthesia: str = ""  # PP_VO_CAM: 1 general, 2 regional/local, 4 other


def _service(code: str, name: str, group: int, price: str, icd9: str = "", anaesthesia: str = "") -> Service:
    return Service(code, name, group, Decimal(price), icd9, anaesthesia)


# Exam (MA_NHOM 13) by facility level: the exam price differs by hospital grade.
EXAMS = {
    "commune": _service("02.1896", "Khám Nội", 13, "30500"),
    "regional": _service("02.1896", "Khám Nội", 13, "34500"),
    "provincial": _service("02.1896", "Khám Nội", 13, "42100"),
    "central": _service("02.1896", "Khám Nội", 13, "50600"),
}
EMERGENCY_EXAM = _service("01.1895", "Khám Cấp cứu", 13, "42100")
# Inpatient bed-days (MA_NHOM 15), by department kind.
BEDS = {
    "K02": _service("K02.1901", "Giường Hồi sức cấp cứu Hạng II", 15, "420700"),
    "K03": _service("K03.1926", "Giường Nội khoa loại 1 Hạng II", 15, "214800"),
    "K19": _service("K19.1940", "Giường Ngoại khoa loại 3 Hạng II - Sau phẫu thuật loại 2", 15, "275600"),
    "K24": _service("K24.1929", "Giường Nhi khoa loại 1 Hạng II", 15, "214800"),
    "K26": _service("K26.1935", "Giường Phụ sản loại 2 Hạng II", 15, "187100"),
}
IMAGING = {
    "xray-chest": _service("18.0119.0028", "Chụp X-quang ngực thẳng", 2, "97200"),
    "xray-forearm": _service("18.0073.0028", "Chụp X-quang xương cẳng tay thẳng nghiêng", 2, "97200"),
    "xray-ankle": _service("18.0089.0028", "Chụp X-quang khớp cổ chân thẳng nghiêng", 2, "97200"),
    "ultrasound": _service("18.0015.0001", "Siêu âm ổ bụng (gan mật, tụy, lách, thận, bàng quang)", 2, "43900"),
    "ct-head": _service("18.0165.0041", "Chụp cắt lớp vi tính sọ não không tiêm thuốc cản quang", 2, "536000"),
    "ecg": _service("02.0085.1778", "Điện tim thường", 3, "32800"),
}
PROCEDURES = {
    "dressing": _service("10.0902.0200", "Thay băng vết thương chiều dài dưới 15cm", 8, "57600", "93.57", "4"),
    "suture": _service("10.0905.0554", "Khâu vết thương phần mềm dài dưới 10cm", 8, "178000", "86.59", "2"),
    "cast": _service("10.0945.0515", "Nắn, bó bột gãy đầu dưới xương quay", 8, "353000", "79.02", "2"),
    "appendectomy": _service("10.0451.0422", "Phẫu thuật nội soi cắt ruột thừa", 8, "2766000", "47.01", "1"),
    "delivery": _service("13.0168.0640", "Đỡ đẻ thường ngôi chỏm", 8, "706000", "73.59", "4"),
    "infusion": _service("01.0217.0215", "Truyền tĩnh mạch", 8, "21400", "99.18", "4"),
    "nebuliser": _service("01.0081.0131", "Khí dung thuốc giãn phế quản", 8, "21400", "93.94", "4"),
    "eye-wash": _service("14.0213.0842", "Rửa mắt", 8, "32600", "96.51", "4"),
}


class Supply(NamedTuple):
    code: str  # MA_VAT_TU
    name: str  # TEN_VAT_TU
    unit: str
    price: Decimal


SUPPLIES = {
    s.code: s
    for s in (
        Supply("N03.02.070", "Bơm tiêm nhựa dùng một lần 5ml", "cái", Decimal("1050")),
        Supply("N03.05.010", "Dây truyền dịch", "bộ", Decimal("4725")),
        Supply("N03.06.030", "Kim luồn tĩnh mạch 22G", "cái", Decimal("9450")),
        Supply("N02.01.040", "Găng tay khám", "đôi", Decimal("1890")),
        Supply("N01.02.010", "Bông y tế thấm nước", "gói", Decimal("3150")),
        Supply("N06.03.020", "Chỉ khâu phẫu thuật không tiêu", "sợi", Decimal("18900")),
        Supply("N07.01.050", "Băng bột bó 10cm", "cuộn", Decimal("24150")),
    )
}


class Test(NamedTuple):
    """A result item of a lab service: MA_CHI_SO, TEN_CHI_SO, unit, reference range, healthy mean/sd."""

    code: str
    name: str
    unit: str
    low: float | None
    high: float | None
    mean: float
    sd: float
    decimals: int


def _test(
    code: str, name: str, unit: str, low: float | None, high: float | None, mean: float, sd: float, d: int
) -> Test:
    return Test(code, name, unit, low, high, mean, sd, d)


# Lab services (MA_NHOM 1) and their result items (XML4).
LABS: dict[str, tuple[Service, tuple[Test, ...]]] = {
    "cbc": (
        _service("22.0120.1370", "Tổng phân tích tế bào máu ngoại vi (bằng máy đếm laser)", 1, "46200"),
        (
            _test("WBC", "Số lượng bạch cầu", "G/L", 4.0, 10.0, 7.0, 1.5, 1),
            _test("RBC", "Số lượng hồng cầu", "T/L", 3.8, 5.5, 4.6, 0.4, 2),
            _test("HGB", "Lượng huyết sắc tố", "g/L", 120, 170, 138, 11, 0),
            _test("HCT", "Hematocrit", "%", 36, 50, 42, 3.5, 1),
            _test("PLT", "Số lượng tiểu cầu", "G/L", 150, 450, 260, 50, 0),
        ),
    ),
    "glucose": (
        _service("23.0075.1494", "Định lượng Glucose [Máu]", 1, "21500"),
        (_test("GLU", "Glucose", "mmol/L", 3.9, 6.4, 5.2, 0.5, 1),),
    ),
    "urea": (
        _service("23.0166.1494", "Định lượng Urê máu [Máu]", 1, "21500"),
        (_test("URE", "Urê", "mmol/L", 2.5, 7.5, 5.0, 1.2, 1),),
    ),
    "creatinine": (
        _service("23.0051.1494", "Định lượng Creatinin [Máu]", 1, "21500"),
        (_test("CRE", "Creatinin", "µmol/L", 53, 115, 80, 14, 0),),
    ),
    "ast": (
        _service("23.0020.1493", "Đo hoạt độ AST (GOT) [Máu]", 1, "21500"),
        (_test("AST", "AST (GOT)", "U/L", None, 37, 24, 7, 0),),
    ),
    "alt": (
        _service("23.0019.1493", "Đo hoạt độ ALT (GPT) [Máu]", 1, "21500"),
        (_test("ALT", "ALT (GPT)", "U/L", None, 40, 24, 8, 0),),
    ),
    "cholesterol": (
        _service("23.0041.1506", "Định lượng Cholesterol toàn phần [Máu]", 1, "26900"),
        (_test("CHOL", "Cholesterol toàn phần", "mmol/L", 3.9, 5.2, 4.7, 0.7, 2),),
    ),
    "triglyceride": (
        _service("23.0158.1506", "Định lượng Triglycerid [Máu]", 1, "26900"),
        (_test("TG", "Triglycerid", "mmol/L", 0.46, 1.88, 1.5, 0.5, 2),),
    ),
    "hdl": (
        _service("23.0084.1506", "Định lượng HDL-C [Máu]", 1, "26900"),
        (_test("HDL", "HDL-C", "mmol/L", 0.9, None, 1.25, 0.25, 2),),
    ),
    "ldl": (
        _service("23.0112.1506", "Định lượng LDL-C [Máu]", 1, "26900"),
        (_test("LDL", "LDL-C", "mmol/L", None, 3.4, 2.9, 0.6, 2),),
    ),
    "hba1c": (
        _service("23.0083.1523", "Định lượng HbA1c [Máu]", 1, "101000"),
        (_test("HBA1C", "HbA1c", "%", 4.0, 6.4, 5.4, 0.4, 1),),
    ),
    "electrolytes": (
        _service("23.0058.1487", "Điện giải đồ (Na, K, Cl) [Máu]", 1, "29000"),
        (
            _test("NA", "Natri", "mmol/L", 135, 145, 139, 2.5, 0),
            _test("K", "Kali", "mmol/L", 3.5, 5.0, 4.1, 0.3, 1),
            _test("CL", "Clo", "mmol/L", 98, 106, 102, 2, 0),
        ),
    ),
    "crp": (
        _service("23.0050.1497", "Định lượng CRP", 1, "53800"),
        (_test("CRP", "CRP", "mg/L", None, 5, 3, 1.5, 1),),
    ),
    "urine": (
        _service("23.0206.1596", "Tổng phân tích nước tiểu (bằng máy tự động)", 1, "27400"),
        (
            _test("PH", "pH nước tiểu", "", 5.0, 8.0, 6.0, 0.5, 1),
            _test("SG", "Tỷ trọng nước tiểu", "", 1.005, 1.030, 1.015, 0.005, 3),
        ),
    ),
}
# Values of a result item for a patient with one of these diagnoses: (mean, sd).
ABNORMAL: dict[tuple[str, str], tuple[float, float]] = {
    ("GLU", "E11.9"): (9.0, 2.0),
    ("HBA1C", "E11.9"): (7.6, 1.0),
    ("CHOL", "E78.5"): (6.3, 0.7),
    ("LDL", "E78.5"): (4.2, 0.6),
    ("TG", "E78.5"): (2.8, 0.8),
    ("CRE", "N18.9"): (190, 50),
    ("URE", "N18.9"): (12.5, 3),
    ("ALT", "B18.1"): (62, 25),
    ("AST", "B18.1"): (55, 20),
    ("WBC", "J18.9"): (14.5, 2.5),
    ("WBC", "K35.8"): (15.0, 2.5),
    ("CRP", "J18.9"): (80, 30),
    ("CRP", "K35.8"): (90, 30),
    ("CRP", "N39.0"): (25, 10),
    ("PLT", "A90"): (95, 30),
    ("PLT", "A91"): (45, 20),
    ("HGB", "O80"): (114, 10),
}
IMAGING_FINDINGS: dict[str, tuple[str, str]] = {
    "J18.9": ("Đám mờ không đều thùy dưới phổi phải, bờ không rõ.", "Hình ảnh viêm phổi thùy dưới phải"),
    "J20.9": ("Rốn phổi hai bên đậm, không thấy tổn thương nhu mô.", "Hình ảnh viêm phế quản"),
    "J44.9": ("Phổi tăng sáng, cơ hoành dẹt, khoang liên sườn giãn rộng.", "Hình ảnh khí phế thũng"),
    "S52.5": ("Đường gãy ngang đầu dưới xương quay, di lệch ít.", "Gãy đầu dưới xương quay"),
    "I63.9": ("Vùng giảm tỷ trọng nhánh sâu động mạch não giữa trái.", "Nhồi máu não bán cầu trái"),
    "K35.8": ("Ruột thừa đường kính 9mm, thành dày, thâm nhiễm mỡ xung quanh.", "Viêm ruột thừa cấp"),
    "I10": ("Nhịp xoang đều, tần số 78 lần/phút, dày thất trái nhẹ.", "Dày thất trái"),
    "I21.9": ("ST chênh lên ở DII, DIII, aVF.", "Nhồi máu cơ tim cấp thành dưới"),
}


@dataclass(frozen=True, slots=True)
class Payer:
    """Who pays what: the insured share of a line (TYLE_TT_BH) and the card's benefit level (MUC_HUONG)."""

    ratio: int  # TYLE_TT_BH: 100 insured, 0 without a card
    level: int  # MUC_HUONG: 80, 95 or 100; 0 without a card


@dataclass(slots=True)
class Totals:
    """XML1's sums of the lines: T_THUOC (XML2), T_VTYT (supplies), and the split of every line."""

    drugs: Decimal = ZERO
    supplies: Decimal = ZERO
    hospital: Decimal = ZERO  # T_TONGCHI_BV
    insured: Decimal = ZERO  # T_TONGCHI_BH
    patient: Decimal = ZERO  # T_BNTT
    copay: Decimal = ZERO  # T_BNCCT
    fund: Decimal = ZERO  # T_BHTT

    def add(self, hospital: Decimal, insured: Decimal, patient: Decimal, copay: Decimal, fund: Decimal) -> None:
        self.hospital += hospital
        self.insured += insured
        self.patient += patient
        self.copay += copay
        self.fund += fund


def _q2(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


@dataclass(slots=True)
class Lines:
    """The XML2/XML3/XML4 rows of one visit, numbered from 1 in each table, and their totals."""

    ma_lk: str
    payer: Payer
    diagnoses: str  # MA_BENH of XML3: the ICD-10 codes the services are for
    tender: str  # TT_THAU of drugs and supplies
    rng: random.Random
    female: bool = False
    xml2: list[Row] = field(default_factory=list)
    xml3: list[Row] = field(default_factory=list)
    xml4: list[Row] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)

    def _money(self, qty: Decimal, price: Decimal) -> Row:
        hospital = _q2(qty * price)
        insured = _q2(hospital * self.payer.ratio / HUNDRED)
        fund = _q2(insured * self.payer.level / HUNDRED)
        copay, patient = insured - fund, hospital - insured
        self.totals.add(hospital, insured, patient, copay, fund)
        zero = amount(ZERO)
        return {
            "THANH_TIEN_BV": amount(hospital),
            "THANH_TIEN_BH": amount(insured),
            "T_NGUONKHAC_NSNN": zero,
            "T_NGUONKHAC_VTNN": zero,
            "T_NGUONKHAC_VTTN": zero,
            "T_NGUONKHAC_CL": zero,
            "T_NGUONKHAC": zero,
            "MUC_HUONG": str(self.payer.level),
            "T_BNTT": amount(patient),
            "T_BNCCT": amount(copay),
            "T_BHTT": amount(fund),
        }

    def drug(self, key: str, qty: Decimal, order: datetime, done: datetime, khoa: str, doctor: str, dose: str) -> None:
        drug = DRUGS[key]
        before = self.totals.hospital
        money = self._money(qty, drug.price)
        self.totals.drugs += self.totals.hospital - before
        values = {
            "MA_LK": self.ma_lk,
            "STT": str(len(self.xml2) + 1),
            "MA_THUOC": drug.code,
            "MA_NHOM": "4",
            "TEN_THUOC": drug.name,
            "DON_VI_TINH": drug.unit,
            "HAM_LUONG": drug.strength,
            "DUONG_DUNG": drug.route,
            "DANG_BAO_CHE": drug.form,
            "LIEU_DUNG": dose,
            "CACH_DUNG": ROUTES[drug.route] + (" sau ăn" if drug.route == "1.01" else ""),
            "SO_DANG_KY": drug.registration,
            "TT_THAU": self.tender,
            "PHAM_VI": "1",
            "TYLE_TT_BH": str(self.payer.ratio),
            "SO_LUONG": number(qty),
            "DON_GIA": number(drug.price),
            **money,
            "MA_KHOA": khoa,
            "MA_BAC_SI": doctor,
            "NGAY_YL": stamp(order),
            "NGAY_TH_YL": stamp(done),
            "MA_PTTT": "1",
            "NGUON_CTRA": "1",
        }
        self.xml2.append(ordered("XML2", values))

    def service(
        self,
        service: Service,
        qty: Decimal,
        times: tuple[datetime, datetime, datetime | None],
        khoa: str,
        doctor: str,
        performer: str = "",
        bed: str = "",
    ) -> None:
        """A technical service, exam or bed-day (XML3). ``times``: ordered, done, result (or None)."""
        order, done, result = times
        self._xml3(
            {
                "MA_DICH_VU": service.code,
                "MA_PTTT_QT": service.icd9,
                "MA_NHOM": str(service.group),
                "TEN_DICH_VU": service.name,
                "DON_VI_TINH": "ngày" if service.group == 15 else "lần",
                "MA_GIUONG": bed,
                "NGUOI_THUC_HIEN": performer,
                "NGAY_TH_YL": stamp(done),
                "NGAY_KQ": stamp(result) if result else "",
                "PP_VO_CAM": service.anaesthesia,
            },
            qty,
            service.price,
            order,
            khoa,
            doctor,
        )

    def supply(self, code: str, qty: Decimal, order: datetime, khoa: str, doctor: str) -> None:
        supply = SUPPLIES[code]
        before = self.totals.hospital
        self._xml3(
            {
                "MA_VAT_TU": supply.code,
                "MA_NHOM": "10",
                "TEN_VAT_TU": supply.name,
                "DON_VI_TINH": supply.unit,
                "TT_THAU": self.tender,
                "NGAY_TH_YL": stamp(order),
            },
            qty,
            supply.price,
            order,
            khoa,
            doctor,
        )
        self.totals.supplies += self.totals.hospital - before

    def _xml3(self, values: Row, qty: Decimal, price: Decimal, order: datetime, khoa: str, doctor: str) -> None:
        row = {
            "MA_LK": self.ma_lk,
            "STT": str(len(self.xml3) + 1),
            **values,
            "PHAM_VI": "1",
            "SO_LUONG": number(qty),
            "DON_GIA_BV": number(price),
            "DON_GIA_BH": number(price),
            "TYLE_TT_DV": "100",
            "TYLE_TT_BH": str(self.payer.ratio),
            **self._money(qty, price),
            "MA_KHOA": khoa,
            "MA_BAC_SI": doctor,
            "MA_BENH": self.diagnoses,
            "NGAY_YL": stamp(order),
            "MA_PTTT": "1",
        }
        self.xml3.append(ordered("XML3", row))

    def lab(self, key: str, times: tuple[datetime, datetime, datetime], khoa: str, doctor: str, reader: str) -> None:
        """A lab service (XML3) and its results (XML4), drawn around the healthy mean or the diagnosis's."""
        service, tests = LABS[key]
        self.service(service, Decimal(1), times, khoa, doctor, reader)
        codes = self.diagnoses.split(";")
        for test in tests:
            mean, sd = next((ABNORMAL[test.code, c] for c in codes if (test.code, c) in ABNORMAL), (test.mean, test.sd))
            if test.code == "HGB" and self.female:
                mean -= 12
            value = max(self.rng.gauss(mean, sd), mean / 4)
            text = f"{value:.{test.decimals}f}"
            shown = float(text)
            verdict = ""
            if test.high is not None and shown > test.high:
                verdict = "Tăng"
            elif test.low is not None and shown < test.low:
                verdict = "Giảm"
            elif self.rng.random() < 0.3:
                verdict = "Bình thường"
            self._result(service.code, test.code, test.name, text, test.unit, "", verdict, times[2], reader)

    def reading(
        self, key: str, times: tuple[datetime, datetime, datetime], khoa: str, doctor: str, reader: str
    ) -> None:
        """An imaging or function test (XML3) and its reading (XML4: description and conclusion)."""
        service = IMAGING[key]
        self.service(service, Decimal(1), times, khoa, doctor, reader)
        found = next((IMAGING_FINDINGS[c] for c in self.diagnoses.split(";") if c in IMAGING_FINDINGS), None)
        if key == "ecg" and (found is None or not found[1].startswith(("Dày", "Nhồi máu cơ tim"))):
            found = ("Nhịp xoang đều, trục trung gian.", "Điện tim trong giới hạn bình thường")
        description, conclusion = found or ("Không thấy hình ảnh bất thường.", "Chưa phát hiện bất thường")
        self._result(service.code, "", service.name, "", "", description, conclusion, times[2], reader)

    def _result(
        self, code: str, test: str, name: str, value: str, unit: str, text: str, verdict: str, at: datetime, by: str
    ) -> None:
        values = {
            "MA_LK": self.ma_lk,
            "STT": str(len(self.xml4) + 1),
            "MA_DICH_VU": code,
            "MA_CHI_SO": test,
            "TEN_CHI_SO": name,
            "GIA_TRI": value,
            "DON_VI_DO": unit,
            "MO_TA": text,
            "KET_LUAN": verdict,
            "NGAY_KQ": stamp(at),
            "MA_BS_DOC_KQ": by,
        }
        self.xml4.append(ordered("XML4", values))
