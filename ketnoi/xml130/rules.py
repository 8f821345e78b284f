"""Cross-field and visit rules of the claims XML (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT; schema §4).

``check_visit`` runs ``check_row`` (as ``parse_row``, which keeps the values) on every row of a visit's
tables, then the rules that look at more than one value: the order of dates, conditional requirements,
closed code lists and code shapes, the CCCD against the patient's birth date and sex, the XML1 totals against
the lines of XML2/XML3, line amounts and treatment days. ``count_problem`` compares the envelope's
SOLUONGHOSO with the number of visits read.

A rule reads only values that parsed cleanly. A value that ``check_row`` found wrong (or that is empty)
already has its problem, and a second problem about the same value would be noise; a total whose lines do not
all parse is not compared at all. Every problem has a stable ``rule`` name (docs/xml130.md lists them), the
table, MA_LK, field and value, and says in Vietnamese and English what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import NamedTuple

from ketnoi.vn.identifiers import validate_cccd
from ketnoi.xml130.fields import FIELDS
from ketnoi.xml130.problems import Problem
from ketnoi.xml130.values import parse_row

Tables = Mapping[str, Sequence[Mapping[str, str]]]

_SPECS: frozenset[tuple[str, str]] = frozenset((table, spec.name) for table, specs in FIELDS.items() for spec in specs)


@dataclass(frozen=True, slots=True)
class _Row:
    """One row of a visit, with the values that parsed cleanly (``values.parse_row``)."""

    table: str
    fields: Mapping[str, str]
    ma_lk: str
    values: Mapping[str, object]

    def text(self, name: str) -> str:
        return self.fields.get(name, "").strip()

    def value(self, name: str) -> object:
        """The parsed value, or ``None`` when the field is empty or wrong (``check_row`` said so)."""
        if (self.table, name) in _SPECS:
            return self.values.get(name)
        return self.text(name) or None  # a field the specs do not know is text

    def items(self, name: str) -> list[str]:
        """The value as text items: a ``;`` list item by item, a whole number without leading zeros."""
        value = self.value(name)
        if value is None:
            return []
        return [str(item) for item in (value if isinstance(value, list) else [value])]

    def decimal(self, name: str) -> Decimal | None:
        value = self.value(name)
        return value if isinstance(value, Decimal) else None

    def integer(self, name: str) -> int | None:
        value = self.value(name)
        return value if isinstance(value, int) else None

    def moment(self, name: str) -> str | None:
        """A date or date-time as FHIR text (``2024``, ``2024-01``, ``2024-01-15``, ``...T09:30:00+07:00``)."""
        value = self.value(name)
        return value if isinstance(value, str) else None

    def problem(self, rule: str, field: str, vi: str, en: str, value: str | None = None) -> Problem:
        shown = self.text(field) if value is None else value
        return Problem(rule, vi, en, table=self.table, ma_lk=self.ma_lk, field=field, value=shown)


RowRule = Callable[[_Row], list[Problem]]


def check_visit(tables: Tables, ma_lk: str = "") -> list[Problem]:
    """Everything wrong with one visit: each row's values (``check_row``), then the cross-field rules.

    ``tables`` maps a table name to its rows, as ``Visit.tables`` has them; an XML0 check-in can be checked
    the same way (``{"XML0": statuses}``). ``ma_lk`` names the visit in problems of rows without a MA_LK and
    in visit-level problems; by default it is XML1's.
    """
    ma_lk = ma_lk or _xml1_ma_lk(tables)
    problems: list[Problem] = []
    rows: dict[str, list[_Row]] = {}
    for table, table_rows in tables.items():
        for fields in table_rows:
            values, found = parse_row(table, fields)
            problems.extend(replace(p, ma_lk=p.ma_lk or ma_lk) for p in found)
            row_ma_lk = fields.get("MA_LK", "").strip() or ma_lk
            rows.setdefault(table, []).append(_Row(table, fields, row_ma_lk, values))
    for table_rows_ in rows.values():
        for row in table_rows_:
            for rule in _ROW_RULES:
                problems.extend(rule(row))
    xml1 = rows.get("XML1", [])
    if len(xml1) == 1:  # otherwise the reader reported "xml1-count": there is no summary to compare with
        problems.extend(_outside_visit(xml1[0], rows))
        problems.extend(_totals(xml1[0], rows))
    return problems


def _xml1_ma_lk(tables: Tables) -> str:
    xml1 = tables.get("XML1", ())
    return xml1[0].get("MA_LK", "").strip() if len(xml1) == 1 else ""


# --- Dates -----------------------------------------------------------------------------------------------

# (later, earlier): in any table that has both fields, the first may not come before the second.
_DATE_ORDER: tuple[tuple[str, str], ...] = (
    ("NGAY_RA", "NGAY_VAO"),
    ("NGAY_VAO_NOI_TRU", "NGAY_VAO"),
    ("NGAY_RA", "NGAY_VAO_NOI_TRU"),
    ("NGAY_TH_YL", "NGAY_YL"),
    ("NGAY_KQ", "NGAY_YL"),
    ("DEN_NGAY", "TU_NGAY"),  # XML10, XML11
    ("NGOAITRU_DENNGAY", "NGOAITRU_TUNGAY"),  # XML7
    ("NGAYKT_DTRI_LAO", "NGAYBD_DTRI_LAO"),  # XML6, XML15
    ("NGAY_KET_THUC_XU_TRI", "NGAY_BAT_DAU_XU_TRI"),  # XML6
    ("NGAY_KQ_XN_PCR", "NGAY_XN_PCR"),  # XML6
    ("NGAY_KQ_XN_TLVR", "NGAY_XN_TLVR"),  # XML6
)
_DAY = len("2024-01-15")


def _before(first: str, second: str, *, by_day: bool = False) -> bool:
    """``first`` strictly before ``second`` at the precision both have (``2024-01`` is not before the 15th).

    All date-times carry the same +07:00 offset, so the text compares as the time does.
    """
    n = min(len(first), len(second), _DAY if by_day else len(first))
    return first[:n] < second[:n]


def _date_order(row: _Row) -> list[Problem]:
    problems = []
    for later, earlier in _DATE_ORDER:
        after, before = row.moment(later), row.moment(earlier)
        if after and before and _before(after, before):
            vi = (
                f"{later} ({row.text(later)}) sớm hơn {earlier} ({row.text(earlier)}); "
                f"{later} không được trước {earlier}: sửa một trong hai"
            )
            en = (
                f"{later} {row.text(later)} is before {earlier} {row.text(earlier)}; "
                f"{later} cannot come first: correct one of them"
            )
            problems.append(row.problem("date-order", later, vi, en))
    return problems


def _outside_visit(xml1: _Row, rows: Mapping[str, list[_Row]]) -> list[Problem]:
    """An order (NGAY_YL of XML2/XML3) falls within the visit of XML1; the same day as either end is fine."""
    start, end = xml1.moment("NGAY_VAO"), xml1.moment("NGAY_RA")
    span = f"NGAY_VAO {xml1.text('NGAY_VAO')} - NGAY_RA {xml1.text('NGAY_RA')}"
    problems = []
    for row in [*rows.get("XML2", []), *rows.get("XML3", [])]:
        order = row.moment("NGAY_YL")
        if order and ((start and _before(order, start, by_day=True)) or (end and _before(end, order, by_day=True))):
            vi = f"NGAY_YL ({row.text('NGAY_YL')}) nằm ngoài đợt điều trị của XML1 ({span}): sửa ngày y lệnh"
            en = f"NGAY_YL {row.text('NGAY_YL')} is outside the visit in XML1 ({span}): correct the order date"
            problems.append(row.problem("date-outside-visit", "NGAY_YL", vi, en))
    return problems


# --- Conditional requirements ------------------------------------------------------------------------------


class _Requirement(NamedTuple):
    """``field`` of ``table`` must be filled when ``on`` is filled (``codes`` None), holds one of ``codes``,
    or, with ``unless``, holds a code that is not one of them."""

    table: str
    field: str
    on: str
    codes: frozenset[str] | None = None
    unless: bool = False


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


# Groups whose service needs a performer and an execution time (XML3 NGUOI_THUC_HIEN and NGAY_TH_YL, Req.
# "bắt buộc MA_NHOM = 1,2,3,8,18"): lab, imaging, function tests, surgery, procedures.
_PERFORMED = _codes("1", "2", "3", "8", "18")

# From the schema's Req. column ("bắt buộc khi ...", "chỉ bắt buộc khi ...", "trừ mã nhóm ...").
_REQUIRED_WHEN: tuple[_Requirement, ...] = (
    _Requirement("XML0", "LY_DO_VNT", "NGAY_VAO_NOI_TRU"),
    _Requirement("XML0", "TEN_DICH_VU", "MA_DICH_VU"),
    _Requirement("XML0", "TEN_THUOC", "MA_THUOC"),
    _Requirement("XML0", "TEN_VAT_TU", "MA_VAT_TU"),
    _Requirement("XML1", "LY_DO_VNT", "NGAY_VAO_NOI_TRU"),
    _Requirement("XML2", "TT_THAU", "MA_NHOM", _codes("7", "17"), unless=True),  # blood has no tender
    _Requirement("XML3", "TEN_DICH_VU", "MA_DICH_VU"),
    _Requirement("XML3", "TEN_VAT_TU", "MA_VAT_TU"),
    _Requirement("XML3", "NGUOI_THUC_HIEN", "MA_NHOM", _PERFORMED),
    _Requirement("XML3", "NGAY_TH_YL", "MA_NHOM", _PERFORMED),
    _Requirement("XML3", "MA_XANG_DAU", "MA_NHOM", _codes("12")),  # transport: the fuel priced
    _Requirement("XML3", "TT_THAU", "MA_NHOM", _codes("10")),  # supplies bought by tender
    _Requirement("XML4", "NGAY_KQ", "GIA_TRI"),
    _Requirement("XML6", "PHACDO_DTRI_LAO", "LOAI_DTRI_LAO", _codes("0"), unless=True),
    _Requirement("XML6", "NGAYBD_DTRI_LAO", "LOAI_DTRI_LAO", _codes("0"), unless=True),
    _Requirement("XML6", "LAN_XN_PCR", "MA_TINH_TRANG_DK", _codes("1")),
    _Requirement("XML6", "NGAY_XN_PCR", "MA_TINH_TRANG_DK", _codes("1")),
    _Requirement("XML6", "NGAY_KQ_XN_PCR", "MA_TINH_TRANG_DK", _codes("1")),
    _Requirement("XML6", "MA_KQ_XN_PCR", "MA_TINH_TRANG_DK", _codes("1")),
    _Requirement("XML6", "NGAY_BAT_DAU_XU_TRI", "MA_XU_TRI", _codes("1")),
    _Requirement("XML6", "NGAY_KET_THUC_XU_TRI", "MA_XU_TRI", _codes("1")),
    _Requirement("XML6", "SO_NGAY_CAP_THUOC_ARV", "MA_XU_TRI", _codes("1")),
    _Requirement("XML7", "NGUYENNHAN_DINHCHI", "MA_DINH_CHI_THAI", _codes("1")),
    _Requirement("XML7", "THOIGIAN_DINHCHI", "MA_DINH_CHI_THAI", _codes("1")),
    _Requirement("XML7", "TUOI_THAI", "MA_DINH_CHI_THAI", _codes("1")),
    _Requirement("XML11", "NGUYENNHAN_DINHCHI", "MA_DINH_CHI_THAI", _codes("1")),
    _Requirement("XML11", "TUOI_THAI", "MA_DINH_CHI_THAI", _codes("1")),
)

# At least one of these identifies what a line (XML3) or a check-in (XML0) is about.
_ONE_OF: dict[str, tuple[str, ...]] = {
    "XML0": ("MA_DICH_VU", "MA_THUOC", "MA_VAT_TU"),
    "XML3": ("MA_DICH_VU", "MA_VAT_TU"),
}


def _shown(codes: Iterable[str]) -> str:
    return ", ".join(sorted(codes, key=lambda code: (len(code), code)))


def _applies(requirement: _Requirement, row: _Row) -> bool:
    if requirement.codes is None:
        return bool(row.text(requirement.on))
    items = row.items(requirement.on)
    if not items:  # empty or wrong: that has its own problem, and the condition cannot be told
        return False
    return any(item in requirement.codes for item in items) != requirement.unless


def _condition(requirement: _Requirement, row: _Row) -> tuple[str, str]:
    on, text = requirement.on, row.text(requirement.on)
    if requirement.codes is None:
        return f"khi có {on}", f"when {on} is filled"
    codes = _shown(requirement.codes)
    if requirement.unless:
        return f"trừ khi {on} là {codes} (ở đây {on} = {text})", f"unless {on} is {codes} (here {on} = {text})"
    return f"khi {on} là {codes} (ở đây {on} = {text})", f"when {on} is {codes} (here {on} = {text})"


def _required_when(row: _Row) -> list[Problem]:
    problems = []
    for requirement in _REQUIRED_WHEN:
        if requirement.table != row.table or row.text(requirement.field) or not _applies(requirement, row):
            continue
        vi, en = _condition(requirement, row)
        field = requirement.field
        problems.append(
            row.problem("required-when", field, f"Thiếu {field}: bắt buộc {vi}", f"missing {field}: required {en}")
        )
    return problems


def _one_of(row: _Row) -> list[Problem]:
    names = _ONE_OF.get(row.table, ())
    if not names or any(row.text(name) for name in names):
        return []
    listed = ", ".join(names)
    vi = f"Phải ghi ít nhất một trong {listed}"
    en = f"at least one of {listed} must be filled"
    return [row.problem("one-of-required", names[0], vi, en)]


# --- Codes -------------------------------------------------------------------------------------------------


class _CodeList(NamedTuple):
    codes: frozenset[str]
    shown: str


def _range(first: int, last: int, width: int = 0) -> _CodeList:
    codes = frozenset(str(n).zfill(width) for n in range(first, last + 1))
    return _CodeList(codes, f"{str(first).zfill(width)}-{str(last).zfill(width)}")


# Closed lists from the fields' meanings in the schema (the CodeSystems of ketnoi.terminology have the same
# codes; they are copied here because this package imports no terminology). Whole-number fields compare
# without leading zeros; MA_LOAI_KCB is text, "01".."09" by QĐ 824, up to "16" by QĐ 1804/QĐ-BYT (2026).
_CODE_LISTS: dict[str, _CodeList] = {
    "GIOI_TINH": _range(1, 3),
    "GIOI_TINH_CON": _range(1, 3),
    "MA_LOAI_KCB": _range(1, 16, width=2),
    "KET_QUA_DTRI": _range(1, 8),
    "MA_LOAI_RV": _range(1, 5),
    "MA_PTTT": _range(1, 3),
    "PHAM_VI": _range(1, 3),
    "NGUON_CTRA": _range(1, 4),
    "MA_NHOM": _range(1, 19),
    "PP_VO_CAM": _range(1, 4),
    "VET_THUONG_TP": _CodeList(_codes("1"), "1"),  # "1" or empty
    "TAI_SU_DUNG": _CodeList(_codes("1"), "1"),  # "1" or empty
}


class _Shape(NamedTuple):
    pattern: re.Pattern[str]
    vi: str
    en: str


_ICD10 = _Shape(
    re.compile(r"[A-Z][0-9]{2}(?:\.?[0-9]{1,2})?"),
    "mã ICD-10: một chữ cái in hoa, 2 chữ số, có thể thêm dấu chấm và 1-2 chữ số (J18.9, J189, B18.00)",
    "an ICD-10 code: an uppercase letter, two digits, optionally a dot and 1-2 more digits (J18.9, J189, B18.00)",
)
_FACILITY = _Shape(re.compile(r"\S{5}"), "mã cơ sở KCB gồm 5 ký tự", "a facility code of 5 characters")
_CARD = _Shape(re.compile(r"\S{15}"), "mã thẻ BHYT gồm 15 ký tự", "an insurance card code of 15 characters")
_ID_NUMBER = _Shape(
    re.compile(r"[0-9]{9}|[0-9]{12}|[A-Z][0-9]{7}"),
    "9 hoặc 12 chữ số (CMND, CCCD), hoặc 1 chữ cái in hoa và 7 chữ số (hộ chiếu)",
    "9 or 12 digits (CMND, CCCD), or an uppercase letter and 7 digits (passport)",
)

# Shapes from the schema's meanings and §4 (each item of a ";" list is checked on its own).
_SHAPES: dict[str, _Shape] = {
    "MA_BENH_CHINH": _ICD10,
    "MA_BENH_KT": _ICD10,
    "MA_BENH": _ICD10,
    "MA_CSKCB": _FACILITY,
    "MA_NOI_DI": _FACILITY,
    "MA_NOI_DEN": _FACILITY,
    "MA_DKBD": _FACILITY,
    "NOI_LAY_MAU_XN": _FACILITY,
    "NOI_XN_KD": _FACILITY,
    "NOI_BDDT_ARV": _FACILITY,
    "MA_GIUONG": _Shape(
        re.compile(r"[HTCK][0-9]{3}"),
        "H, T, C hoặc K và 3 chữ số (H001: giường kế hoạch, T: kê thêm, C: tự chọn, K: khác)",
        "H, T, C or K and 3 digits (H001: planned bed, T: extra, C: chosen, K: other)",
    ),
    "MA_TTDV": _Shape(re.compile(r"[0-9]{10}"), "mã số BHXH gồm 10 chữ số", "a social-insurance number of 10 digits"),
    "MA_THE_BHYT": _CARD,
    "MA_THE_TAM": _CARD,
    "MA_THE_NND": _CARD,
    "SO_CCCD": _ID_NUMBER,
    "SO_CCCD_NND": _ID_NUMBER,
}
_MOST_SECONDARY = 12  # §2: MA_BENH_KT holds at most 12 codes


def _code_lists(row: _Row) -> list[Problem]:
    problems = []
    for name, listed in _CODE_LISTS.items():
        for item in row.items(name):
            if item not in listed.codes:
                vi = f"{name} '{item}' không có trong danh mục (các mã {listed.shown})"
                en = f"{name} '{item}' is not one of its codes ({listed.shown})"
                problems.append(row.problem("code-unknown", name, vi, en, item))
    return problems


def _shapes(row: _Row) -> list[Problem]:
    problems = []
    for name, shape in _SHAPES.items():
        for item in row.items(name):
            if not shape.pattern.fullmatch(item):
                vi = f"{name} '{item}' sai định dạng: phải là {shape.vi}"
                en = f"{name} '{item}' has the wrong form: it must be {shape.en}"
                problems.append(row.problem("code-format", name, vi, en, item))
    return problems


def _secondary_count(row: _Row) -> list[Problem]:
    count = len(row.items("MA_BENH_KT"))
    if count <= _MOST_SECONDARY:
        return []
    vi = f"MA_BENH_KT có {count} mã; tối đa {_MOST_SECONDARY} mã bệnh kèm theo"
    en = f"MA_BENH_KT has {count} codes; at most {_MOST_SECONDARY} secondary diagnoses are allowed"
    return [row.problem("too-many-codes", "MA_BENH_KT", vi, en)]


# --- CCCD against the patient --------------------------------------------------------------------------------

_SEX = {1: "male", 2: "female"}  # GIOI_TINH 3 (undetermined) cannot be compared with the CCCD's sex digit
_CONTRADICTIONS = frozenset({"cccd-birth-century", "cccd-birth-year", "cccd-gender"})
_CCCD = re.compile(r"[0-9]{12}")


def _cccd(row: _Row) -> list[Problem]:
    """A 12-digit CCCD encodes the century, sex and year of birth (digits 4-6): they must agree with the row."""
    number = row.text("SO_CCCD")
    if row.value("SO_CCCD") is None or not _CCCD.fullmatch(number):
        return []
    sex = _SEX.get(row.integer("GIOI_TINH") or 0)
    found = validate_cccd(number, birth_date=row.moment("NGAY_SINH"), gender=sex)
    return [
        row.problem(
            "cccd-contradicts",
            "SO_CCCD",
            f"SO_CCCD không khớp với NGAY_SINH/GIOI_TINH: {p.vi}",
            f"SO_CCCD contradicts NGAY_SINH/GIOI_TINH: {p.en}",
        )
        for p in found
        if p.code in _CONTRADICTIONS
    ]


# --- Amounts -----------------------------------------------------------------------------------------------

_CENT = Decimal("0.01")
# HIS round the product their own way (per unit price, after the ratio, before it): 1 đồng absorbs that. It
# applies to line products only; a total is a plain sum of the lines' own amounts and must match exactly.
LINE_TOLERANCE = Decimal("1.00")
_PRECISION = 60  # exact: 10-digit quantity x 15-digit price x 3-digit ratio has fewer than 30 digits


def _rounded(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _line_products(row: _Row) -> tuple[str, list[Decimal]] | None:
    """What THANH_TIEN_BV may be for this line, and the formula to name, or None if a factor is missing."""
    if row.table not in ("XML2", "XML3"):
        return None
    quantity = row.decimal("SO_LUONG")
    if row.table == "XML2":
        price = row.decimal("DON_GIA")
        if quantity is None or price is None:
            return None
        return "SO_LUONG × DON_GIA", [quantity * price]
    price, ratio = row.decimal("DON_GIA_BV"), row.integer("TYLE_TT_DV")
    if quantity is None or price is None or ratio is None:
        return None
    # QĐ 4750 multiplies by TYLE_TT_DV (shared bed, repeated exam); the schema's meaning still gives the
    # QĐ 130 product without it. Both are accepted: they agree whenever TYLE_TT_DV is 100.
    return "SO_LUONG × DON_GIA_BV × TYLE_TT_DV / 100", [quantity * price * ratio / 100, quantity * price]


def _line_amount(row: _Row) -> list[Problem]:
    amount = row.decimal("THANH_TIEN_BV")
    with localcontext() as context:
        context.prec = _PRECISION
        found = _line_products(row)
        if amount is None or found is None:
            return []
        formula, products = found
        expected = [_rounded(product) for product in products]
    if any(abs(amount - value) <= LINE_TOLERANCE for value in expected):
        return []
    vi = (
        f"THANH_TIEN_BV = {amount} nhưng {formula} = {expected[0]} (lệch quá 1 đồng): "
        "sửa số lượng, đơn giá hoặc thành tiền"
    )
    en = (
        f"THANH_TIEN_BV = {amount} but {formula} = {expected[0]} (off by more than 1): "
        "correct the quantity, the price or the amount"
    )
    return [row.problem("line-amount-mismatch", "THANH_TIEN_BV", vi, en)]


LinePick = Callable[[_Row], bool | None]


def _in_groups(row: _Row, groups: frozenset[str]) -> bool | None:
    group = row.integer("MA_NHOM")
    return None if group is None else str(group) in groups


def _every_line(row: _Row) -> bool | None:
    return True


def _drug_line(row: _Row) -> bool | None:
    # T_THUOC: "drugs, oxygen, fluids, blood". All of XML2 (blood, MA_NHOM 7 and 17, travels there: its
    # TT_THAU exemption says so), and blood lines that an HIS put in XML3 anyway.
    return True if row.table == "XML2" else _in_groups(row, _codes("7", "17"))


def _supply_line(row: _Row) -> bool | None:
    return False if row.table == "XML2" else _in_groups(row, _codes("10", "11"))


class _Total(NamedTuple):
    total: str  # the XML1 field
    field: str  # the line field summed
    pick: LinePick  # which lines count; None: cannot tell
    lines_vi: str
    lines_en: str


_ALL_VI, _ALL_EN = "các dòng XML2 và XML3", "the XML2 and XML3 lines"
# XML1 totals (schema XML1 #44-#51, §4): each is the sum of its lines' amounts.
_TOTALS: tuple[_Total, ...] = (
    _Total("T_TONGCHI_BV", "THANH_TIEN_BV", _every_line, _ALL_VI, _ALL_EN),
    _Total("T_TONGCHI_BH", "THANH_TIEN_BH", _every_line, _ALL_VI, _ALL_EN),
    _Total("T_BNTT", "T_BNTT", _every_line, _ALL_VI, _ALL_EN),
    _Total("T_BNCCT", "T_BNCCT", _every_line, _ALL_VI, _ALL_EN),
    _Total("T_BHTT", "T_BHTT", _every_line, _ALL_VI, _ALL_EN),
    _Total("T_NGUONKHAC", "T_NGUONKHAC", _every_line, _ALL_VI, _ALL_EN),
    _Total(
        "T_THUOC",
        "THANH_TIEN_BV",
        _drug_line,
        "các dòng XML2 và dòng máu (MA_NHOM 7, 17) của XML3",
        "the XML2 lines and the blood lines (MA_NHOM 7, 17) of XML3",
    ),
    _Total(
        "T_VTYT",
        "THANH_TIEN_BV",
        _supply_line,
        "các dòng VTYT (MA_NHOM 10, 11) của XML3",
        "the XML3 supply lines (MA_NHOM 10, 11)",
    ),
)


def _line_sum(lines: Iterable[_Row], field: str, pick: LinePick) -> Decimal | None:
    """The sum of ``field`` over the picked lines, or None when a line cannot be picked or has no clean value."""
    total = Decimal(0)
    for line in lines:
        chosen = pick(line)
        amount = line.decimal(field) if chosen else Decimal(0)
        if chosen is None or amount is None:
            return None
        total += amount
    return total


def _totals(xml1: _Row, rows: Mapping[str, list[_Row]]) -> list[Problem]:
    lines = [*rows.get("XML2", []), *rows.get("XML3", [])]
    problems = []
    with localcontext() as context:
        context.prec = _PRECISION
        for total in _TOTALS:
            declared, summed = xml1.decimal(total.total), _line_sum(lines, total.field, total.pick)
            if declared is None or summed is None or declared == summed:
                continue
            vi = (
                f"{total.total} = {declared} nhưng tổng {total.field} của {total.lines_vi} là {summed:.2f}: "
                "sửa tổng hoặc các dòng"
            )
            en = (
                f"{total.total} = {declared} but the sum of {total.field} over {total.lines_en} is {summed:.2f}: "
                "correct the total or the lines"
            )
            problems.append(xml1.problem("total-mismatch", total.total, vi, en))
    return problems


# --- Treatment days ----------------------------------------------------------------------------------------

_NO_DAYS = _codes("01", "07", "09")  # exam, ... : SO_NGAY_DTRI = 0 (XML1 #38)
_COUNTED_DAYS = _codes("02", "03", "04", "06")  # outpatient and inpatient treatment: NGAY_RA - NGAY_VAO + 1


def _days(row: _Row) -> int | None:
    start, end = row.moment("NGAY_VAO"), row.moment("NGAY_RA")
    if not start or not end or len(start) < _DAY or len(end) < _DAY:
        return None
    days = (date.fromisoformat(end[:_DAY]) - date.fromisoformat(start[:_DAY])).days
    return None if days < 0 else days + 1  # a discharge before arrival is a "date-order" problem


def _treatment_days(row: _Row) -> list[Problem]:
    """XML1 #38: SO_NGAY_DTRI by MA_LOAI_KCB; types 05 and 08 count days of drugs or services, not checked."""
    kind, declared = row.text("MA_LOAI_KCB"), row.integer("SO_NGAY_DTRI")
    if row.table != "XML1" or declared is None or row.value("MA_LOAI_KCB") is None:
        return []
    expected = 0 if kind in _NO_DAYS else _days(row) if kind in _COUNTED_DAYS else None
    if expected is None or expected == declared:
        return []
    how_vi = "0 ngày" if kind in _NO_DAYS else "NGAY_RA - NGAY_VAO + 1"
    how_en = "0 days" if kind in _NO_DAYS else "NGAY_RA - NGAY_VAO + 1"
    vi = f"SO_NGAY_DTRI = {declared} nhưng với MA_LOAI_KCB {kind} phải là {expected} ({how_vi})"
    en = f"SO_NGAY_DTRI = {declared} but MA_LOAI_KCB {kind} needs {expected} ({how_en})"
    return [row.problem("treatment-days-mismatch", "SO_NGAY_DTRI", vi, en)]


_ROW_RULES: tuple[RowRule, ...] = (
    _date_order,
    _required_when,
    _one_of,
    _code_lists,
    _shapes,
    _secondary_count,
    _cccd,
    _line_amount,
    _treatment_days,
)


# --- The envelope ------------------------------------------------------------------------------------------

_COUNT = re.compile(r"[0-9]+")


def count_problem(header: Mapping[str, str], visits: int) -> Problem | None:
    """SOLUONGHOSO (filled by ``read_envelope(..., header=...)``) against the number of visits read.

    A difference means a file cut short or put together wrongly, which the per-visit checks cannot see.
    """
    text = header.get("SOLUONGHOSO", "").strip()
    if _COUNT.fullmatch(text) and int(text) == visits:
        return None
    if not text:
        vi = f"Thiếu SOLUONGHOSO trong THONGTINHOSO (tệp có {visits} hồ sơ)"
        en = f"SOLUONGHOSO is missing from THONGTINHOSO (the file has {visits} visits)"
    elif not _COUNT.fullmatch(text):
        vi = f"SOLUONGHOSO '{text}' không phải số nguyên (tệp có {visits} hồ sơ)"
        en = f"SOLUONGHOSO '{text}' is not a whole number (the file has {visits} visits)"
    else:
        vi = f"SOLUONGHOSO = {text} nhưng tệp có {visits} hồ sơ (HOSO): tệp bị cắt hoặc ghép sai?"
        en = f"SOLUONGHOSO = {text} but the file has {visits} visits (HOSO): cut short or wrongly assembled?"
    return Problem("count-mismatch", vi, en, table="", field="SOLUONGHOSO", value=text)
