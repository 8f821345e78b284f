"""Cross-field and visit rules (ketnoi.xml130.rules; schema §4 and the Req./meaning columns).

Each rule has a failing and a passing case. The visit of ``_visit`` (XML1, one drug line, one exam line) is
consistent, so a test changes one thing and looks for one rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest

from ketnoi.xml130.problems import Problem
from ketnoi.xml130.rules import check_visit as _check_visit
from ketnoi.xml130.rules import count_problem
from ketnoi.xml130.values import check_row, parse_row
from tests.xml130.builders import drug, xml1

Row = dict[str, str]
TENDER = "123/QĐ-BV;G1;N1;2023"


def check_visit(tables: Mapping[str, Sequence[Mapping[str, str]]], ma_lk: str = "") -> list[Problem]:
    """``rules.check_visit``, and every problem it gives is complete: rule, both messages, table, field."""
    problems = _check_visit(tables, ma_lk)
    for p in problems:
        assert p.rule and p.message_vi and p.message_en and p.table and p.field, p
        assert "\n" not in p.message_vi + p.message_en, p
    return problems


def service(ma_lk: str, stt: int, **overrides: str) -> Row:
    """An XML3 row: one outpatient exam at 30,500 đồng, 80% paid by insurance."""
    row = {
        "MA_LK": ma_lk,
        "STT": str(stt),
        "MA_DICH_VU": "02.1896",
        "MA_NHOM": "13",
        "TEN_DICH_VU": "Khám Nội",
        "DON_VI_TINH": "lần",
        "PHAM_VI": "1",
        "SO_LUONG": "1",
        "DON_GIA_BV": "30500",
        "DON_GIA_BH": "30500",
        "TYLE_TT_DV": "100",
        "TYLE_TT_BH": "100",
        "THANH_TIEN_BV": "30500",
        "THANH_TIEN_BH": "30500",
        "MUC_HUONG": "80",
        "T_NGUONKHAC_NSNN": "0",
        "T_NGUONKHAC_VTNN": "0",
        "T_NGUONKHAC_VTTN": "0",
        "T_NGUONKHAC_CL": "0",
        "T_NGUONKHAC": "0",
        "T_BNTT": "0",
        "T_BNCCT": "6100",
        "T_BHTT": "24400",
        "MA_KHOA": "K01",
        "MA_BAC_SI": "000123/HCM-CCHN",
        "MA_BENH": "J02.9",
        "NGAY_YL": "202401150940",
        "MA_PTTT": "1",
    }
    return {**row, **overrides}


def medicine(**overrides: str) -> Row:
    """The drug line of ``_visit``: 6 × 20,576.13 = 123,456.78 đồng, with its tender."""
    amounts = {
        "MA_NHOM": "4",
        "TT_THAU": TENDER,
        "SO_LUONG": "6",
        "DON_GIA": "20576.13",
        "THANH_TIEN_BV": "123456.78",
        "THANH_TIEN_BH": "123456.78",
        "T_NGUONKHAC": "0",
        "T_BNTT": "0",
        "T_BNCCT": "24691.36",
        "T_BHTT": "98765.42",
        "NGAY_YL": "202401150945",
    }
    return drug("LK1", 1, **{**amounts, **overrides})


def summary(**overrides: str) -> Row:
    """The XML1 row of ``_visit``: an exam visit (MA_LOAI_KCB 01) whose totals are the two lines'."""
    totals = {
        "NGAY_VAO": "202401150930",
        "NGAY_RA": "202401151100",
        "MA_LOAI_KCB": "01",
        "SO_NGAY_DTRI": "0",
        "T_THUOC": "123456.78",
        "T_VTYT": "0",
        "T_TONGCHI_BV": "153956.78",
        "T_TONGCHI_BH": "153956.78",
        "T_BNTT": "0",
        "T_BNCCT": "30791.36",
        "T_BHTT": "123165.42",
        "T_NGUONKHAC": "0",
    }
    return xml1("LK1", **{**totals, **overrides})


def _visit(
    xml1_row: Row | None = None, drugs: list[Row] | None = None, services: list[Row] | None = None
) -> dict[str, list[Row]]:
    """The consistent visit, with one of its parts replaced."""
    return {
        "XML1": [xml1_row or summary()],
        "XML2": [medicine()] if drugs is None else drugs,
        "XML3": [service("LK1", 1)] if services is None else services,
    }


def _found(problems: list[Problem], rule: str) -> list[tuple[str, str, str]]:
    return [(p.table, p.field, p.value) for p in problems if p.rule == rule]


def test_a_consistent_visit_has_no_problems() -> None:
    assert check_visit(_visit()) == []


def test_problems_name_the_visit() -> None:
    problems = check_visit(_visit(summary(GIOI_TINH="4")))
    assert [(p.rule, p.table, p.ma_lk, p.field, p.value) for p in problems] == [
        ("code-unknown", "XML1", "LK1", "GIOI_TINH", "4")
    ]
    # A row without MA_LK (an XML4 row a HIS left it out of) is named by the visit's MA_LK.
    problems = check_visit({"XML4": [{"STT": "1", "TEN_CHI_SO": "Glucose", "GIA_TRI": "5.6"}]}, ma_lk="LK7")
    assert {p.ma_lk for p in problems} == {"LK7"}


def test_value_problems_of_check_row_come_first_and_are_not_repeated() -> None:
    problems = check_visit(_visit(summary(MA_CSKCB="790012", GIOI_TINH="M")))
    # too-long and integer-format only: the shape and code-list rules do not read a value already wrong.
    assert [(p.rule, p.field) for p in problems] == [("integer-format", "GIOI_TINH"), ("too-long", "MA_CSKCB")]


def test_parse_row_keeps_the_clean_values_for_the_rules() -> None:
    row = summary(GIOI_TINH="M", MA_BENH_KT="J18.9;I10", TRUONG_MOI_3176="x")
    values, problems = parse_row("XML1", row)
    assert problems == check_row("XML1", row)
    assert (values["NGAY_VAO"], values["T_THUOC"], values["MA_BENH_KT"]) == (
        "2024-01-15T09:30:00+07:00",
        Decimal("123456.78"),
        ["J18.9", "I10"],
    )
    assert "GIOI_TINH" not in values and "TRUONG_MOI_3176" not in values and "LY_DO_VNT" not in values


# --- Dates ---


@pytest.mark.parametrize(
    ("table", "row", "field"),
    [
        ("XML1", summary(NGAY_RA="202401150900"), "NGAY_RA"),
        ("XML1", summary(NGAY_VAO_NOI_TRU="202401150800", LY_DO_VNT="Sốt cao"), "NGAY_VAO_NOI_TRU"),
        ("XML2", medicine(NGAY_TH_YL="202401150944"), "NGAY_TH_YL"),
        ("XML3", service("LK1", 1, NGAY_TH_YL="202401150939"), "NGAY_TH_YL"),
        ("XML3", service("LK1", 1, NGAY_KQ="202401150900"), "NGAY_KQ"),
        ("XML11", {"MA_LK": "LK1", "TU_NGAY": "20240115", "DEN_NGAY": "20240114"}, "DEN_NGAY"),
    ],
)
def test_date_order(table: str, row: Row, field: str) -> None:
    assert _found(check_visit({table: [row]}), "date-order") == [(table, field, row[field])]


@pytest.mark.parametrize(
    ("table", "row"),
    [
        ("XML1", summary(NGAY_RA="202401150930")),  # the same minute
        ("XML1", summary(NGAY_RA="202401000000")),  # known to the month only: cannot be told apart
        ("XML1", summary(NGAY_VAO_NOI_TRU="202401151000", LY_DO_VNT="Sốt cao")),
        ("XML2", medicine(NGAY_TH_YL="202401150945")),
        ("XML3", service("LK1", 1, NGAY_TH_YL="202401150941", NGAY_KQ="202401151030")),
        ("XML11", {"MA_LK": "LK1", "TU_NGAY": "20240115", "DEN_NGAY": "20240115"}),
    ],
)
def test_date_order_passes(table: str, row: Row) -> None:
    assert _found(check_visit({table: [row]}), "date-order") == []


@pytest.mark.parametrize(
    ("order", "outside"),
    [
        ("202401140800", True),  # the day before arrival
        ("202401150800", False),  # the same day, before the arrival time: HIS clocks differ
        ("202401152300", False),  # the same day, after discharge
        ("202401160000", True),  # the day after discharge
        ("202401000000", False),  # known to the month: cannot be told
    ],
)
def test_order_date_within_the_visit(order: str, outside: bool) -> None:
    problems = check_visit(_visit(drugs=[medicine(NGAY_YL=order)]))
    assert _found(problems, "date-outside-visit") == ([("XML2", "NGAY_YL", order)] if outside else [])


# --- Conditional requirements ---


@pytest.mark.parametrize(
    ("table", "row", "missing"),
    [
        ("XML1", summary(NGAY_VAO_NOI_TRU="202401151000"), "LY_DO_VNT"),
        ("XML0", {"MA_LK": "LK1", "NGAY_VAO_NOI_TRU": "202401151000", "MA_THUOC": "40.17"}, "LY_DO_VNT"),
        ("XML0", {"MA_LK": "LK1", "MA_THUOC": "40.17", "LY_DO_VNT": "x"}, "TEN_THUOC"),
        ("XML2", medicine(TT_THAU=""), "TT_THAU"),
        ("XML3", service("LK1", 1, TEN_DICH_VU=""), "TEN_DICH_VU"),
        ("XML3", service("LK1", 1, MA_VAT_TU="N07.01.020"), "TEN_VAT_TU"),
        ("XML3", service("LK1", 1, MA_NHOM="8", NGAY_TH_YL="202401151000"), "NGUOI_THUC_HIEN"),
        ("XML3", service("LK1", 1, MA_NHOM="18", NGUOI_THUC_HIEN="000123/HCM-CCHN"), "NGAY_TH_YL"),
        ("XML3", service("LK1", 1, MA_NHOM="12"), "MA_XANG_DAU"),
        ("XML3", service("LK1", 1, MA_NHOM="10", MA_VAT_TU="N07.01.020", TEN_VAT_TU="Kim"), "TT_THAU"),
        ("XML4", {"MA_LK": "LK1", "STT": "1", "TEN_CHI_SO": "Glucose", "GIA_TRI": "5.6"}, "NGAY_KQ"),
        ("XML6", {"MA_LK": "LK1", "LOAI_DTRI_LAO": "2", "PHACDO_DTRI_LAO": "1"}, "NGAYBD_DTRI_LAO"),
        ("XML6", {"MA_LK": "LK1", "MA_TINH_TRANG_DK": "2;1", "LAN_XN_PCR": "1"}, "NGAY_XN_PCR"),
        (
            "XML7",
            {"MA_LK": "LK1", "MA_DINH_CHI_THAI": "1", "NGUYENNHAN_DINHCHI": "x", "TUOI_THAI": "8"},
            "THOIGIAN_DINHCHI",
        ),
    ],
)
def test_required_when(table: str, row: Row, missing: str) -> None:
    problems = check_visit({table: [row]})
    assert (table, missing, "") in _found(problems, "required-when")
    problem = next(p for p in problems if p.rule == "required-when" and p.field == missing)
    assert "bắt buộc" in problem.message_vi and "required" in problem.message_en


@pytest.mark.parametrize(
    ("table", "row"),
    [
        ("XML1", summary(NGAY_VAO_NOI_TRU="202401151000", LY_DO_VNT="Sốt cao")),
        ("XML2", medicine(MA_NHOM="7", TT_THAU="")),  # blood: no tender
        ("XML2", medicine(MA_NHOM="17", TT_THAU="")),
        ("XML3", service("LK1", 1)),  # an exam (13) needs no performer
        ("XML3", service("LK1", 1, MA_NHOM="8", NGUOI_THUC_HIEN="000123/HCM-CCHN", NGAY_TH_YL="202401151000")),
        ("XML3", service("LK1", 1, MA_NHOM="12", MA_XANG_DAU="DO")),
        ("XML4", {"MA_LK": "LK1", "STT": "1", "TEN_CHI_SO": "Glucose", "GIA_TRI": "", "NGAY_KQ": ""}),
        ("XML6", {"MA_LK": "LK1", "LOAI_DTRI_LAO": "0", "MA_TINH_TRANG_DK": "2;3"}),
        ("XML7", {"MA_LK": "LK1", "MA_DINH_CHI_THAI": "0"}),
    ],
)
def test_required_when_passes(table: str, row: Row) -> None:
    assert _found(check_visit({table: [row]}), "required-when") == []


def test_a_line_names_a_service_or_a_supply() -> None:
    problems = check_visit({"XML3": [service("LK1", 1, MA_DICH_VU="", TEN_DICH_VU="")]})
    assert _found(problems, "one-of-required") == [("XML3", "MA_DICH_VU", "")]
    supply = service("LK1", 1, MA_DICH_VU="", TEN_DICH_VU="", MA_VAT_TU="N07.01.020", TEN_VAT_TU="Kim")
    assert _found(check_visit({"XML3": [supply]}), "one-of-required") == []
    assert _found(check_visit({"XML0": [{"MA_LK": "LK1"}]}), "one-of-required") == [("XML0", "MA_DICH_VU", "")]
    assert _found(check_visit({"XML0": [{"MA_LK": "LK1", "MA_VAT_TU": "V1"}]}), "one-of-required") == []


# --- Codes ---


@pytest.mark.parametrize(
    ("table", "field", "bad", "good"),
    [
        ("XML1", "GIOI_TINH", "4", "3"),
        ("XML1", "MA_LOAI_KCB", "1", "09"),  # a string code: its leading zero is part of it
        ("XML1", "MA_LOAI_KCB", "17", "16"),  # 16 codes since QĐ 1804/QĐ-BYT
        ("XML1", "KET_QUA_DTRI", "9", "8"),
        ("XML1", "MA_LOAI_RV", "6", "5"),
        ("XML2", "MA_PTTT", "4", "3"),
        ("XML2", "PHAM_VI", "0", "3"),
        ("XML2", "NGUON_CTRA", "5", "4"),
        ("XML3", "MA_NHOM", "20", "19"),
        ("XML3", "PP_VO_CAM", "5", "4"),
        ("XML2", "VET_THUONG_TP", "0", "1"),
        ("XML3", "TAI_SU_DUNG", "2", "1"),
    ],
)
def test_closed_code_lists(table: str, field: str, bad: str, good: str) -> None:
    assert _found(check_visit({table: [{"MA_LK": "LK1", field: bad}]}), "code-unknown") == [(table, field, bad)]
    assert _found(check_visit({table: [{"MA_LK": "LK1", field: good}]}), "code-unknown") == []


@pytest.mark.parametrize(
    ("table", "field", "bad", "good"),
    [
        ("XML1", "MA_BENH_CHINH", "J18.", "J18.9"),
        ("XML1", "MA_BENH_CHINH", "j18.9", "J189"),
        ("XML1", "MA_BENH_CHINH", "189", "B18.00"),
        ("XML1", "MA_BENH_KT", "J18.9;I1O", "J18.9;I10"),
        ("XML3", "MA_BENH", "J02.9;X", "J02.9;E11.9"),
        ("XML1", "MA_CSKCB", "7900", "79001"),
        ("XML1", "MA_NOI_DI", "0100", "01001"),
        ("XML1", "MA_DKBD", "79001;7900", "79001;79000"),
        ("XML3", "MA_GIUONG", "H001;X001", "H001;K012"),
        ("XML1", "MA_TTDV", "791234567O", "7912345670"),
        ("XML1", "MA_THE_BHYT", "DN479791234567", "DN4797912345678"),
        ("XML1", "SO_CCCD", "12345678", "B1234567"),
        ("XML1", "SO_CCCD", "01234567890", "012345678"),
    ],
)
def test_code_shapes(table: str, field: str, bad: str, good: str) -> None:
    wrong = _found(check_visit({table: [{"MA_LK": "LK1", field: bad}]}), "code-format")
    assert [(t, f) for t, f, _ in wrong] == [(table, field)]
    assert wrong[0][2] in bad.split(";")  # the value is the item at fault
    assert _found(check_visit({table: [{"MA_LK": "LK1", field: good}]}), "code-format") == []


def test_at_most_twelve_secondary_diagnoses() -> None:
    twelve = ";".join(f"J{n:02d}" for n in range(12))
    assert _found(check_visit({"XML1": [summary(MA_BENH_KT=twelve)]}), "too-many-codes") == []
    problems = check_visit({"XML1": [summary(MA_BENH_KT=twelve + ";K29")]})
    assert _found(problems, "too-many-codes") == [("XML1", "MA_BENH_KT", twelve + ";K29")]


# --- CCCD against the patient ---


@pytest.mark.parametrize(
    ("birth", "sex", "contradicts"),
    [
        ("198005150000", "1", False),  # digit 4 = 0: male, 1900s; digits 5-6 = 80
        ("198000000000", "1", False),  # the year alone is enough
        ("198005150000", "3", False),  # undetermined sex cannot be compared
        ("198005150000", "2", True),  # digit 4 says male
        ("198105150000", "1", True),  # digits 5-6 say 1980
        ("208005150000", "1", True),  # digit 4 says the 1900s
    ],
)
def test_cccd_agrees_with_birth_and_sex(birth: str, sex: str, contradicts: bool) -> None:
    problems = check_visit({"XML1": [summary(SO_CCCD="079080012345", NGAY_SINH=birth, GIOI_TINH=sex)]})
    found = [p for p in problems if p.rule == "cccd-contradicts"]
    assert [(p.table, p.field, p.value) for p in found] == (
        [("XML1", "SO_CCCD", "079080012345")] if contradicts else []
    )
    assert all("SO_CCCD" in p.message_vi and "SO_CCCD" in p.message_en for p in found)


def test_cccd_check_needs_twelve_digits() -> None:
    # A 9-digit CMND or a passport number encodes nothing of the person: only the shape is checked.
    for number in ("012345678", "B1234567"):
        problems = check_visit({"XML1": [summary(SO_CCCD=number, NGAY_SINH="208005150000", GIOI_TINH="2")]})
        assert _found(problems, "cccd-contradicts") == []


# --- Amounts ---


@pytest.mark.parametrize(
    ("quantity", "price", "amount", "wrong"),
    [
        ("6", "20576.13", "123456.78", False),
        ("3", "1000.005", "3000.02", False),  # 3000.015 rounded half up
        ("3", "1000.005", "3001.02", False),  # within 1 đồng: HIS round differently
        ("3", "1000.005", "3001.03", True),
        ("0.5", "20576.13", "10288.07", False),  # 10288.065 half up
        ("-2", "1000", "-2000", False),  # a refund line
    ],
)
def test_drug_line_amount(quantity: str, price: str, amount: str, wrong: bool) -> None:
    row = medicine(SO_LUONG=quantity, DON_GIA=price, THANH_TIEN_BV=amount)
    found = _found(check_visit({"XML2": [row]}), "line-amount-mismatch")
    assert found == ([("XML2", "THANH_TIEN_BV", amount)] if wrong else [])


@pytest.mark.parametrize(
    ("ratio", "amount", "wrong"),
    [
        ("100", "200000", False),
        ("50", "100000", False),  # a shared bed: QĐ 4750 multiplies by TYLE_TT_DV
        ("50", "200000", False),  # the QĐ 130 product, still the schema's meaning text
        ("50", "150000", True),
    ],
)
def test_service_line_amount(ratio: str, amount: str, wrong: bool) -> None:
    row = service("LK1", 1, SO_LUONG="2", DON_GIA_BV="100000", TYLE_TT_DV=ratio, THANH_TIEN_BV=amount)
    assert _found(check_visit({"XML3": [row]}), "line-amount-mismatch") == (
        [("XML3", "THANH_TIEN_BV", amount)] if wrong else []
    )


def test_line_amount_needs_every_factor() -> None:
    problems = check_visit({"XML2": [medicine(SO_LUONG="6,0", THANH_TIEN_BV="1")]})
    assert [p.rule for p in problems] == ["decimal-format"]


@pytest.mark.parametrize(
    "total", ["T_TONGCHI_BV", "T_TONGCHI_BH", "T_BNTT", "T_BNCCT", "T_BHTT", "T_NGUONKHAC", "T_THUOC", "T_VTYT"]
)
def test_totals_match_the_lines_to_the_cent(total: str) -> None:
    declared = summary()[total]
    off = f"{float(declared) + 0.01:.2f}"
    problems = check_visit(_visit(summary(**{total: off})))
    assert _found(problems, "total-mismatch") == [("XML1", total, off)]
    message = next(p.message_en for p in problems if p.rule == "total-mismatch")
    assert f"is {Decimal(declared):.2f}:" in message  # the sum the lines give, to the cent


def test_blood_and_supply_lines_of_xml3_go_to_their_totals() -> None:
    blood = service("LK1", 2, MA_DICH_VU="", TEN_DICH_VU="", MA_VAT_TU="M.01", TEN_VAT_TU="Khối hồng cầu")
    blood |= {"MA_NHOM": "7", "THANH_TIEN_BV": "1000", "THANH_TIEN_BH": "1000", "T_BNCCT": "200", "T_BHTT": "800"}
    blood |= {"DON_GIA_BV": "1000", "DON_GIA_BH": "1000"}
    supply = {**blood, "STT": "3", "MA_NHOM": "10", "TEN_VAT_TU": "Kim luồn", "TT_THAU": TENDER}
    xml1_row = summary(
        T_THUOC="124456.78",
        T_VTYT="1000.00",
        T_TONGCHI_BV="155956.78",
        T_TONGCHI_BH="155956.78",
        T_BNCCT="31191.36",
        T_BHTT="124765.42",
    )
    assert check_visit(_visit(xml1_row, services=[service("LK1", 1), blood, supply])) == []


def test_a_total_is_not_compared_when_a_line_did_not_parse() -> None:
    problems = check_visit(_visit(drugs=[medicine(THANH_TIEN_BV="123456,78")]))
    assert {p.rule for p in problems} == {"decimal-format"}  # T_TONGCHI_BV, T_THUOC: not compared


# --- Treatment days ---


@pytest.mark.parametrize(
    ("kind", "arrival", "discharge", "days", "wrong"),
    [
        ("01", "202401150930", "202401151100", "0", False),
        ("01", "202401150930", "202401151100", "1", True),
        ("07", "202401150930", "202401160100", "0", False),
        ("03", "202401100800", "202401151000", "6", False),  # 15 - 10 + 1
        ("03", "202401100800", "202401151000", "5", True),
        ("02", "202401312200", "202402010700", "2", False),  # across a month
        ("05", "202401100800", "202401151000", "30", False),  # days of drugs: not checked
    ],
)
def test_treatment_days(kind: str, arrival: str, discharge: str, days: str, wrong: bool) -> None:
    row = summary(MA_LOAI_KCB=kind, NGAY_VAO=arrival, NGAY_RA=discharge, SO_NGAY_DTRI=days)
    found = _found(check_visit({"XML1": [row]}), "treatment-days-mismatch")
    assert found == ([("XML1", "SO_NGAY_DTRI", days)] if wrong else [])


# --- The envelope's count ---


def test_count_problem() -> None:
    assert count_problem({"SOLUONGHOSO": "2"}, 2) is None
    assert count_problem({"SOLUONGHOSO": " 2 "}, 2) is None
    for header, value in (({"SOLUONGHOSO": "3"}, "3"), ({}, ""), ({"SOLUONGHOSO": "hai"}, "hai")):
        problem = count_problem(header, 2)
        assert problem is not None
        assert (problem.rule, problem.table, problem.field, problem.value) == (
            "count-mismatch",
            "",
            "SOLUONGHOSO",
            value,
        )
        assert "2" in problem.message_vi and "2" in problem.message_en
