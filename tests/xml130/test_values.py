"""Value rules of the claims XML (ketnoi.xml130.values; schema §2 "Format conventions")."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ketnoi.xml130.fields import FIELDS, LAYOUTS
from ketnoi.xml130.values import (
    check_row,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_integer,
    parse_value,
    split_multi,
)
from tests.xml130.builders import drug, xml1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20240115", "2024-01-15"),
        ("20240100", "2024-01"),  # unknown day written as 00
        ("20240000", "2024"),  # unknown month and day
        ("20240229", "2024-02-29"),  # leap year
    ],
)
def test_dates_keep_the_precision_the_source_has(text: str, expected: str) -> None:
    assert parse_date(text) == (expected, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("202401150930", "2024-01-15T09:30:00+07:00"),
        ("202401150000", "2024-01-15T00:00:00+07:00"),  # midnight is a real time for an admission
        ("202401000000", "2024-01"),
        ("202400000000", "2024"),
        ("202412312359", "2024-12-31T23:59:00+07:00"),
    ],
)
def test_datetimes_get_the_vietnam_offset(text: str, expected: str) -> None:
    assert parse_datetime(text) == (expected, None)


def test_birth_time_0000_means_unknown_not_midnight() -> None:
    assert parse_datetime("198005150000", zero_time_unknown=True) == ("1980-05-15", None)
    assert parse_datetime("198005150730", zero_time_unknown=True) == ("1980-05-15T07:30:00+07:00", None)
    assert parse_datetime("198000000000", zero_time_unknown=True) == ("1980", None)


@pytest.mark.parametrize(
    "text",
    ["20241301", "20240230", "20230229", "00000101", "20240015", "2024011", "2024-01-", "2024O115"],
)
def test_impossible_or_malformed_dates_are_problems(text: str) -> None:
    value, problem = parse_date(text)
    assert value is None
    assert problem is not None
    assert problem.value == text
    assert problem.message_vi and problem.message_en


@pytest.mark.parametrize(
    "text",
    ["202401152400", "202401150960", "202402300930", "202401000930", "20240115093", "2024011509300"],
)
def test_impossible_datetimes_are_problems(text: str) -> None:
    value, problem = parse_datetime(text)
    assert value is None
    assert problem is not None


def test_empty_is_neither_value_nor_problem() -> None:
    assert parse_date("") == (None, None)
    assert parse_datetime("") == (None, None)
    assert parse_decimal("") == (None, None)
    assert parse_integer("") == (None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123456.78", Decimal("123456.78")),
        ("0", Decimal("0")),
        ("0.10", Decimal("0.10")),
        ("-5000", Decimal("-5000")),
        ("99999999999999.99", Decimal("99999999999999.99")),
    ],
)
def test_amounts_are_exact_decimals(text: str, expected: Decimal) -> None:
    value, problem = parse_decimal(text, scale=2)
    assert problem is None
    assert isinstance(value, Decimal)
    assert value == expected
    assert str(value) == text  # exactly as written: no float on the way


@pytest.mark.parametrize("text", ["12,5", "12a", "1 000", "1e5", "+5", ".5", "5.", "NaN", "Infinity", "１２"])
def test_amounts_that_are_not_plain_decimals_are_refused(text: str) -> None:
    value, problem = parse_decimal(text)
    assert value is None
    assert problem is not None
    assert problem.rule == "decimal-format"


def test_too_many_decimals() -> None:
    assert parse_decimal("1.234", scale=3) == (Decimal("1.234"), None)
    value, problem = parse_decimal("1.234", scale=2)
    assert value is None
    assert problem is not None
    assert problem.rule == "decimal-scale"


def test_integers() -> None:
    assert parse_integer("007") == (7, None)
    for text in ("-1", "1.0", "x", "١"):
        assert parse_integer(text)[1] is not None


def test_multi_value_fields_split_on_semicolon() -> None:
    assert split_multi("K01;K02; K03;") == ["K01", "K02", "K03"]
    spec = next(s for s in FIELDS["XML1"] if s.name == "GT_THE_DEN")
    assert parse_value(spec, "20241231;20251231") == (["2024-12-31", "2025-12-31"], [])
    values, problems = parse_value(spec, "20241231;20251331")
    assert values == ["2024-12-31", None]
    assert [p.rule for p in problems] == ["date-invalid"]


def test_specs_cover_every_table_with_the_schema_counts() -> None:
    # Rows of the schema tables: XML1 has 65 numbered fields plus NHOM_MAU (new in 4750), XML2 38 plus NGAY_TH_YL.
    counts = {table: len(specs) for table, specs in FIELDS.items()}
    assert counts == {
        **{"XML0": 26, "XML1": 66, "XML2": 39, "XML3": 47, "XML4": 12, "XML5": 9, "XML6": 47, "XML7": 26},
        **{"XML8": 22, "XML9": 35, "XML10": 13, "XML11": 23, "XML13": 39, "XML14": 22, "XML15": 20},
    }
    for table, specs in FIELDS.items():
        assert table in LAYOUTS
        assert len({s.name for s in specs}) == len(specs)
        assert specs[0].name == "MA_LK" and specs[0].mandatory


def test_a_complete_row_has_no_problems() -> None:
    assert check_row("XML1", xml1("LK1")) == []
    assert check_row("XML2", drug("LK1", 1)) == []


def test_missing_mandatory_field_is_reported_with_table_visit_and_field() -> None:
    row = xml1("LK1")
    del row["HO_TEN"]
    row["MA_BN"] = "   "  # blank counts as missing
    problems = check_row("XML1", row)
    assert {(p.table, p.ma_lk, p.field, p.rule) for p in problems} == {
        ("XML1", "LK1", "HO_TEN", "required"),
        ("XML1", "LK1", "MA_BN", "required"),
    }


def test_too_long_and_wrong_type_are_reported() -> None:
    row = xml1("LK1", MA_CSKCB="790012", GIOI_TINH="M", T_BHTT="12,5", NGAY_VAO="202402300930")
    found = {(p.field, p.rule) for p in check_row("XML1", row)}
    assert found == {
        ("MA_CSKCB", "too-long"),
        ("GIOI_TINH", "integer-format"),
        ("T_BHTT", "decimal-format"),
        ("NGAY_VAO", "date-invalid"),
    }


def test_numeric_size_counts_digits_not_the_point() -> None:
    # SO_LUONG is "Số 10" with up to 3 decimals: 10 digits plus the "." fit.
    assert check_row("XML2", drug("LK1", 1, SO_LUONG="1234567.891")) == []
    problems = check_row("XML2", drug("LK1", 1, SO_LUONG="12345678.901"))
    assert [(p.field, p.rule) for p in problems] == [("SO_LUONG", "too-long")]


def test_leading_zeros_of_string_codes_are_kept() -> None:
    spec = next(s for s in FIELDS["XML1"] if s.name == "MA_LOAI_KCB")
    assert parse_value(spec, "01") == ("01", [])


def test_unknown_fields_and_tables_are_let_through() -> None:
    assert check_row("XML1", {**xml1("LK1"), "TRUONG_MOI_3176": "x"}) == []
    assert check_row("XML12", {"MA_LK": "LK1"}) == []  # no file structure, no specs
