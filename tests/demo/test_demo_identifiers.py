"""CCCD and BHYT identifiers are consistent with the patient's data (REFERENCE.md §2b)."""

from __future__ import annotations

import functools
import re
from typing import Any

from ketnoi.demo import ids, places
from ketnoi.demo.generate import iter_blocks

CCCD_SYSTEM = "http://fhir.ehealth.gov.vn/core/sid/national_id"
BHYT_SYSTEM = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
BIRTHPLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
# Categories this generator may issue, with their benefit level (docs/demo-data.md).
KNOWN_CATEGORIES = {
    "DN": 4,
    "HC": 4,
    "HT": 3,
    "TE": 1,
    "HS": 4,
    "HN": 2,
    "CN": 3,
    "TN": 4,
    "CC": 1,
    "GD": 4,
    "QN": 5,
    "CA": 5,
    "CY": 5,
}
NEW_PROVINCE_CODES = {
    "01",
    "04",
    "08",
    "11",
    "12",
    "14",
    "15",
    "19",
    "20",
    "22",
    "24",
    "25",
    "31",
    "33",
    "37",
    "38",
    "40",
    "42",
    "44",
    "46",
    "48",
    "51",
    "52",
    "56",
    "66",
    "68",
    "75",
    "79",
    "80",
    "82",
    "86",
    "91",
    "92",
    "96",
}


@functools.cache
def _patients(n: int = 2000) -> list[dict[str, Any]]:
    return [block[0] for block, _ in iter_blocks(n, 21, 0.0)]


def _ident(patient: dict[str, Any], system: str) -> str | None:
    values = [i["value"] for i in patient.get("identifier", []) if i["system"] == system]
    assert len(values) <= 1
    return values[0] if values else None


def test_province_tables() -> None:
    assert {p.code for p in places.PROVINCES} == NEW_PROVINCE_CODES
    assert len(places.LEGACY_PROVINCES) == 63
    assert all(len(p.communes) >= 5 for p in places.PROVINCES)
    assert places.LEGACY_BY_CODE["74"].new_code == "79"  # Bình Dương → Hồ Chí Minh
    assert places.LEGACY_BY_CODE["27"].new_code == "24"  # Bắc Ninh (old) → Bắc Ninh (new, code of Bắc Giang)


def test_cccd_matches_birth_province_sex_and_year() -> None:
    checked = 0
    for patient in _patients():
        cccd = _ident(patient, CCCD_SYSTEM)
        assert cccd is not None  # originals always carry one
        assert re.fullmatch(r"\d{12}", cccd)
        birth = patient["birthDate"]
        year = int(birth[:4])
        [place] = [e["valueAddress"] for e in patient["extension"] if e["url"] == BIRTHPLACE]
        code = places.birth_province_code(place["state"], birth)
        assert code is not None, place
        assert cccd[:3] == "0" + code
        female = patient["gender"] == "female"
        digit = int(cccd[3])
        assert digit % 2 == (1 if female else 0)
        assert 1900 + 100 * (digit // 2) + int(cccd[4:6]) == year
        assert ids.decode_cccd(cccd) == (code, year, female)
        checked += 1
    assert checked == 2000


def test_post_merger_births_use_new_codes() -> None:
    late = [p for p in _patients() if p["birthDate"] >= places.MERGER_DATE_ISO]
    assert late  # about 1.5 % of the population is born after 01/07/2025
    for p in late:
        assert _ident(p, CCCD_SYSTEM)[1:3] in NEW_PROVINCE_CODES  # type: ignore[index]


def test_bhyt_card_structure() -> None:
    insured = 0
    patients = _patients()
    for patient in patients:
        card = _ident(patient, BHYT_SYSTEM)
        if card is None:
            continue
        insured += 1
        m = re.fullmatch(r"([A-Z]{2})([1-5])(\d{2})(\d{10})", card)
        assert m, card
        category, level, province, bhxh = m.groups()
        assert category in KNOWN_CATEGORIES
        assert int(level) == KNOWN_CATEGORIES[category]
        assert province in NEW_PROVINCE_CODES
        state = patient["address"][0]["state"]
        assert places.PROVINCE_BY_CODE[province].name == state
        assert bhxh[:2] == province
        age = 2026 - int(patient["birthDate"][:4])
        if category == "TE":
            assert age <= 6
        if category == "HT":
            assert age >= 59
    assert 0.88 < insured / len(patients) < 0.98


def test_phone_numbers_use_vietnamese_mobile_prefixes() -> None:
    phones = [t["value"] for p in _patients(500) for t in p.get("telecom", [])]
    assert len(phones) > 300
    for phone in phones:
        assert re.fullmatch(r"0\d{9}", phone)
        assert phone[:3] in ids.MOBILE_PREFIXES
