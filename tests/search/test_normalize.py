"""Normalisation rules shared by extraction and query compilation: fold, date_range, number_range."""

from __future__ import annotations

import random
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ketnoi.search.index import DATE_MAX
from ketnoi.search.normalize import date_range, fold, number_range, ucum_canonical


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# ---------------------------------------------------------------------------------------------- fold


def test_fold_vietnamese_name() -> None:
    assert fold("Nguyễn Văn Đặng") == "nguyen van dang"


@pytest.mark.parametrize("variant", ["Nguyễn", "NGUYỄN", "NGUYEN", "nguyen", "nguyễn", " Nguyen "])
def test_fold_variants_are_equal(variant: str) -> None:
    assert fold(variant) == "nguyen"


def test_fold_d_with_stroke() -> None:
    assert fold("Đặng") == "dang"
    assert fold("đường") == "duong"
    assert fold("ĐÀ NẴNG") == "da nang"


def test_fold_full_name_with_all_tones() -> None:
    assert fold("Hoàng Thị Thu Hà") == "hoang thi thu ha"
    assert fold("Trần Quốc Tuấn") == "tran quoc tuan"
    assert fold("Lý Ngọc Ẩn Ỷ Ữ") == "ly ngoc an y u"


def test_fold_decomposed_input_equals_composed() -> None:
    composed = "Nguyễn Thị Hương"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert fold(decomposed) == fold(composed) == "nguyen thi huong"


def test_fold_collapses_whitespace() -> None:
    assert fold("  Hà \t Nội\n ") == "ha noi"
    assert fold("534 Erewhon St  3999") == "534 erewhon st 3999"


def test_fold_other_scripts_casefold_and_keep_letters() -> None:
    assert fold("Straße") == "strasse"
    assert fold("Ångström") == "angstrom"
    assert fold("東京") == "東京"


# ---------------------------------------------------------------------------------------- date_range


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2020", "2020-01-01T00:00:00", "2021-01-01T00:00:00"),
        ("2020-02", "2020-02-01T00:00:00", "2020-03-01T00:00:00"),
        ("2020-12", "2020-12-01T00:00:00", "2021-01-01T00:00:00"),
        ("2020-02-29", "2020-02-29T00:00:00", "2020-03-01T00:00:00"),
        ("2020-01-01T10:30", "2020-01-01T10:30:00", "2020-01-01T10:31:00"),
        ("2020-01-01T10:30:15", "2020-01-01T10:30:15", "2020-01-01T10:30:16"),
        ("2020-01-01T10:30:15Z", "2020-01-01T10:30:15", "2020-01-01T10:30:16"),
        ("2020-01-01T23:59:59+00:00", "2020-01-01T23:59:59", "2020-01-02T00:00:00"),
    ],
)
def test_date_range_precisions(value: str, low: str, high: str) -> None:
    assert date_range(value) == (ts(low), ts(high))


def test_date_range_fraction_precision() -> None:
    low, high = date_range("2020-01-01T10:30:15.5Z")
    assert low == pytest.approx(ts("2020-01-01T10:30:15") + 0.5)
    assert high - low == pytest.approx(0.1)
    low, high = date_range("2020-01-01T10:30:15.123Z")
    # Epoch-second doubles resolve ~0.2 µs today, hence the absolute tolerance.
    assert low == pytest.approx(ts("2020-01-01T10:30:15") + 0.123, abs=1e-6)
    assert high - low == pytest.approx(0.001, abs=1e-6)


def test_date_range_timezone_plus_seven_shifts_to_utc() -> None:
    # 08:00 in Hà Nội (+07:00) is 01:00 UTC.
    assert date_range("2024-05-01T08:00:00+07:00") == (ts("2024-05-01T01:00:00"), ts("2024-05-01T01:00:01"))
    # Crossing midnight backwards: 06:30 +07:00 is 23:30 UTC the day before.
    assert date_range("2024-05-01T06:30+07:00")[0] == ts("2024-04-30T23:30:00")


def test_date_range_negative_timezone() -> None:
    assert date_range("2013-06-08T10:57:34-05:30")[0] == ts("2013-06-08T16:27:34")


def test_date_range_no_timezone_is_utc() -> None:
    assert date_range("2024-05-01T08:00:00") == date_range("2024-05-01T08:00:00Z")


def test_date_range_extremes() -> None:
    assert date_range("9999")[1] == DATE_MAX
    assert date_range("1900-01-01")[0] == ts("1900-01-01T00:00:00")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "yesterday",
        "2020-13",
        "2020-02-30",
        "2019-02-29",
        "20200101",
        "2020-01-01T25:00",
        "2020-1-1",
        "2020-01-01T10:00:00+15:00",
        "0000",
        "2020-01-01 10:00",
        "2020-01-01T10",
    ],
)
def test_date_range_rejects_garbage(garbage: str) -> None:
    with pytest.raises(ValueError):
        date_range(garbage)


# -------------------------------------------------------------------------------------- number_range


def test_number_range_integer_has_unit_precision() -> None:
    assert number_range("100") == (100.0, 99.5, 100.5)
    assert number_range(100) == (100.0, 99.5, 100.5)


def test_number_range_trailing_zero_is_significant() -> None:
    value, low, high = number_range("1.50")
    assert value == 1.5
    assert (low, high) == pytest.approx((1.495, 1.505))
    assert number_range(Decimal("100.00"))[1:] == pytest.approx((99.995, 100.005))


def test_number_range_exponent_form_one_significant_figure() -> None:
    # 1e2: one significant figure, half a unit of 10^2 either side.
    assert number_range("1e2") == (100.0, 50.0, 150.0)
    assert number_range("1.0e2") == (100.0, 95.0, 105.0)


def test_number_range_float_uses_shortest_repr() -> None:
    assert number_range(1.5) == (1.5, 1.45, 1.55)
    assert number_range(-0.25)[1:] == pytest.approx((-0.255, -0.245))


@pytest.mark.parametrize("garbage", ["abc", "", "1,5", "NaN", "Infinity", True, float("nan")])
def test_number_range_rejects_garbage(garbage: object) -> None:
    with pytest.raises(ValueError):
        number_range(garbage)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- ucum


def test_ucum_canonical_converts_with_precision() -> None:
    unit, value, low, high = ucum_canonical("mg", 5)  # type: ignore[misc]
    assert unit == "g"
    assert (value, low, high) == (pytest.approx(0.005), pytest.approx(0.0045), pytest.approx(0.0055))
    assert ucum_canonical("mmol/L", "5.4")[:2] == ("mol/L", pytest.approx(0.0054))  # type: ignore[index]
    assert ucum_canonical("cm", 180)[:2] == ("m", pytest.approx(1.8))  # type: ignore[index]


def test_ucum_canonical_leaves_unknown_and_canonical_units() -> None:
    assert ucum_canonical("g", 5) is None
    assert ucum_canonical("Cel", 37) is None
    assert ucum_canonical("mm[Hg]", 120) is None


def _reference_fold(text: str) -> str:
    """fold as the docs define it, written out plainly: casefold, đ → d, drop combining marks."""
    text = text.casefold().translate(str.maketrans({"đ": "d", "ð": "d"}))
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(unicodedata.normalize("NFC", stripped).split())


def test_fold_fast_latin_path_equals_the_definition_on_every_latin_letter() -> None:
    points = [*range(0x20, 0x7F), *range(0xA0, 0x250), *range(0x300, 0x370), *range(0x1E00, 0x1F00)]
    mismatches = [hex(p) for p in points if fold(chr(p)) != _reference_fold(chr(p))]
    assert mismatches == []


def test_fold_fast_latin_path_equals_the_definition_on_mixed_text() -> None:
    rng = random.Random(20261127)
    alphabet = [
        chr(p) for p in (*range(0x20, 0x7F), *range(0xA0, 0x250), *range(0x300, 0x370), *range(0x1E00, 0x1F00))
    ] + ["\u3000", "\u2003", "年", "가", "\u0645", "ǅ", "ẞ"]
    samples = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16))) for _ in range(20_000)]
    samples += ["Nguyễn Thị Ánh Tuyết", "ĐẶNG   văn\tĐỨC", "Huỳnh Ðức", "Trần\u00a0Lê", "Phạm 日本 Hòa"]
    assert [s for s in samples if fold(s) != _reference_fold(s)] == []
