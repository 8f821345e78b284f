"""Comparison levels for each way the same Vietnamese patient is registered differently (docs/mpi.md)."""

from __future__ import annotations

from ketnoi.mpi.compare import FIELDS, birth_level, compare
from ketnoi.search.extract_mpi import blocking_keys, lookup_keys, national_phone, patient_view
from tests.mpi.people import LEGACY, TODAY, patient


def _levels(a: dict, b: dict) -> dict[str, str | None]:  # type: ignore[type-arg]
    return dict(zip(FIELDS, compare(patient_view(a), patient_view(b)), strict=True))


def test_the_same_record_agrees_everywhere() -> None:
    one = patient(cccd="001085012345", bhyt="DN4010123456789", phone="0912345678")
    assert _levels(one, one) == {
        "cccd": "agree",
        "bhxh": "agree",
        "phone": "agree",
        "family": "exact",
        "given": "exact",
        "middle": "agree",
        "birth": "exact",
        "gender": "agree",
        "place": "commune",
    }


def test_names_without_diacritics_agree_folded() -> None:
    levels = _levels(patient(), patient(family="Nguyen", given=("Van", "Binh")))
    assert (levels["family"], levels["given"], levels["middle"]) == ("folded", "folded", "agree")


def test_same_letters_other_diacritics_are_not_exact() -> None:
    # "Hà" and "Hạ" are two names that fold alike: the level says so, and weighs less than exact.
    assert _levels(patient(given=("Thị", "Hà")), patient(given=("Thị", "Hạ")))["given"] == "folded"


def test_one_keystroke_is_fuzzy_and_a_different_name_is_other() -> None:
    assert _levels(patient(), patient(given=("Văn", "Bìnhh")))["given"] == "fuzzy"
    assert _levels(patient(), patient(family="Nguễyn"))["family"] == "fuzzy"  # two letters swapped
    assert _levels(patient(), patient(given=("Văn", "Cường")))["given"] == "other"


def test_middle_name_dropped_changed_or_misspelt() -> None:
    assert _levels(patient(), patient(given=("Bình",)))["middle"] == "dropped"
    assert _levels(patient(), patient(given=("Hữu", "Bình")))["middle"] == "other"
    assert _levels(patient(), patient(given=("Vna", "Bình")))["middle"] == "fuzzy"
    assert _levels(patient(given=("Bình",)), patient(given=("Bình",)))["middle"] is None  # neither has one


def test_name_written_in_western_order_is_moved() -> None:
    # Family and given fields mixed up: "Bình Nguyễn Văn".
    levels = _levels(patient(), patient(family="Bình", given=("Nguyễn", "Văn")))
    assert (levels["family"], levels["given"]) == ("moved", "moved")


def test_birth_dates() -> None:
    assert birth_level((1985, 3, 7), (1985, 7, 3)) == "swapped"
    assert birth_level((1985, 3, 7), (1985, None, None)) == "partial"
    assert birth_level((1985, 3, 7), (1985, 3, None)) == "partial"
    assert birth_level((1985, 3, 7), (1985, 4, None)) == "year"
    assert birth_level((1985, 3, 7), (1985, 3, 9)) == "month"
    assert birth_level((1985, 3, 7), (1985, 9, 9)) == "year"
    assert birth_level((1985, 3, 7), (1986, 3, 7)) == "close"
    assert birth_level((1985, 3, 7), (1995, 3, 7)) == "close"  # one digit of the year mistyped
    assert birth_level((1985, 3, 7), (1972, 1, 1)) == "other"
    assert birth_level((None, None, None), (1985, 3, 7)) is None
    assert _levels(patient(), patient(birth="1985"))["birth"] == "partial"


def test_old_address_codes_compare_as_todays_units() -> None:
    # Phúc Xá (00001, before the 2025 reform) is part of today's Phường Hồng Hà (00097).
    old = patient(place=("01", LEGACY, "00001"))
    assert _levels(old, patient(place=("01", TODAY, "00097")))["place"] == "commune"
    assert _levels(old, patient(place=("01", TODAY, "00004")))["place"] == "province"
    # Hà Giang (02, before) is in today's Tuyên Quang (08); with no commune on one side the province
    # agreeing says nothing either way (a moved commune, "province", is evidence against).
    assert _levels(patient(place=("02", LEGACY, None)), patient(place=("08", TODAY, "02264")))["place"] is None
    assert _levels(patient(place=("02", LEGACY, None)), patient(place=("01", TODAY, None)))["place"] == "other"
    assert _levels(patient(place=None), patient())["place"] is None


def test_phones_in_any_national_or_international_form() -> None:
    assert national_phone("+84 91 234 5678") == national_phone("0912 345 678") == "0912345678"
    assert national_phone("84912345678") == "0912345678"
    assert national_phone("12345") is None
    assert _levels(patient(phone="+84912345678"), patient(phone="0912345678"))["phone"] == "agree"
    assert _levels(patient(phone="0912345678"), patient(phone="0987654321"))["phone"] == "disagree"


def test_identifiers_read_from_their_systems() -> None:
    view = patient_view(patient(cccd="001085012345", bhyt="DN4010123456789"))
    assert (view.cccd, view.bhxh) == ("001085012345", "0123456789")
    assert patient_view(patient(cccd="12345")).cccd is None  # not a CCCD: not an identifier to match on
    levels = _levels(patient(cccd="001085012345"), patient(cccd="001085099999"))
    assert levels["cccd"] == "disagree"


def test_every_error_keeps_a_blocking_key() -> None:
    original = set(blocking_keys(patient_view(patient())))
    variants = {
        "no diacritics": patient(family="Nguyen", given=("Van", "Binh")),
        "given typo": patient(given=("Văn", "Bìnhh")),
        "family typo": patient(family="Ngyuễn"),
        "middle dropped": patient(given=("Bình",)),
        "day and month swapped": patient(birth="1985-07-03"),
        "year only": patient(birth="1985"),
        "western order": patient(family="Bình", given=("Nguyễn", "Văn")),
        "birth date wrong": patient(birth="1958-01-01"),
    }
    for what, variant in variants.items():
        assert set(lookup_keys(patient_view(variant))) & original, what


def test_the_wide_key_is_looked_up_only_for_a_partial_birth_date() -> None:
    full, partial = patient_view(patient()), patient_view(patient(birth="1985"))
    assert ("gy", "binh|1985") in blocking_keys(full)
    assert ("gy", "binh|1985") not in lookup_keys(full)
    assert ("gy", "binh|1985") in lookup_keys(partial)


def test_a_name_in_text_only_is_split_the_vietnamese_way() -> None:
    view = patient_view({"resourceType": "Patient", "name": [{"text": "Trần Thị Minh Khai"}]})
    assert (view.family, view.middle, view.given) == ("tran", ("thi", "minh"), "khai")
    empty = patient_view({"resourceType": "Patient"})
    assert (empty.family, empty.given, empty.birth, blocking_keys(empty)) == ("", "", (None, None, None), [])
