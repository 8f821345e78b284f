"""The population looks like Vietnam: family-name frequencies, NFC names, age pyramid, ethnicity."""

from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Any

import pytest

from ketnoi.demo import names, places
from ketnoi.demo.generate import iter_blocks

ETHNICITY = "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-race"


@pytest.fixture(scope="module")
def patients() -> list[dict[str, Any]]:
    return [block[0] for block, _ in iter_blocks(20_000, 2024, 0.0)]


@pytest.mark.slow
@pytest.mark.parametrize(("family", "target"), [("Nguyễn", 38.0), ("Trần", 11.0), ("Lê", 9.5)])
def test_family_name_frequencies(patients: list[dict[str, Any]], family: str, target: float) -> None:
    counts = Counter(p["name"][0]["family"] for p in patients)
    share = 100 * counts[family] / len(patients)
    assert abs(share - target) <= 2.0, (family, share)


@pytest.mark.slow
def test_regional_spellings_and_tail(patients: list[dict[str, Any]]) -> None:
    counts = Counter(p["name"][0]["family"] for p in patients)
    hoang = 100 * (counts["Hoàng"] + counts["Huỳnh"]) / len(patients)
    vu = 100 * (counts["Vũ"] + counts["Võ"]) / len(patients)
    assert abs(hoang - 5.1) < 1.0 and abs(vu - 3.9) < 1.0
    assert counts["Huỳnh"] > 0 and counts["Võ"] > 0
    assert counts.most_common(4)[0][0] == "Nguyễn"
    assert len(counts) > 40


@pytest.mark.slow
def test_names_are_nfc_and_consistent(patients: list[dict[str, Any]]) -> None:
    for p in patients[:5000]:
        name = p["name"][0]
        for part in [name["family"], *name["given"], name["text"]]:
            assert unicodedata.normalize("NFC", part) == part
        assert all(part in name["text"] for part in [name["family"], *name["given"]])
    females = [p for p in patients if p["gender"] == "female"]
    thi = sum(1 for p in females if p["name"][0]["given"][0] == "Thị")
    assert 0.2 < thi / len(females) < 0.6
    males = [p for p in patients if p["gender"] == "male"]
    assert not any(
        p["name"][0]["given"][0] == "Thị"
        for p in males
        if len(p["name"][0]["given"]) > 1 and p["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "01"
    )


@pytest.mark.slow
def test_age_pyramid_and_sex_ratio(patients: list[dict[str, Any]]) -> None:
    ages = [2026 - int(p["birthDate"][:4]) for p in patients]
    n = len(ages)
    children = sum(1 for a in ages if a < 15) / n
    elderly = sum(1 for a in ages if a >= 60) / n
    assert 0.21 < children < 0.27  # ~23.5 % under 15
    assert 0.11 < elderly < 0.16  # ~13.4 % aged 60+
    assert max(ages) <= 100
    males = sum(1 for p in patients if p["gender"] == "male") / n
    assert 0.48 < males < 0.52


@pytest.mark.slow
def test_ethnicity_and_address(patients: list[dict[str, Any]]) -> None:
    eth = Counter(
        next(e["valueCodeableConcept"]["coding"][0]["code"] for e in p["extension"] if e["url"] == ETHNICITY)
        for p in patients
    )
    kinh = eth["01"] / len(patients)
    assert 0.82 < kinh < 0.90
    assert {"02", "03", "05", "06", "08"} <= set(eth)
    for p in patients[:3000]:
        addr = p["address"][0]
        province = next(x for x in places.PROVINCES if x.name == addr["state"])
        assert addr["city"] in province.communes
        assert addr["country"] == "VN"
    states = Counter(p["address"][0]["state"] for p in patients)
    assert len(states) == 34
    assert states.most_common(2)[0][0] in {"Hồ Chí Minh", "Hà Nội"}


def test_strip_diacritics() -> None:
    assert names.strip_diacritics("Nguyễn Văn Đức") == "Nguyen Van Duc"
    assert names.strip_diacritics("Trần Thị Thủy") == "Tran Thi Thuy"
