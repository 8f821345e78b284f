"""The claims XML → FHIR mapping (docs/xml130-mapping.md): every resource conforms to its VN Core profile,
and says what the source XML said, field by field, for generated visits of the synthetic population."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ketnoi.claims import places
from ketnoi.claims import systems as s
from ketnoi.claims.codes import bag_of
from ketnoi.claims.encounter import icd10
from ketnoi.claims.patient import id_system, split_name
from ketnoi.claims.progress import vital_items
from ketnoi.claims.to_fhir import map_visit
from ketnoi.demo.xml130 import iter_visits
from ketnoi.terminology.membership import packaged
from ketnoi.validation import examine
from ketnoi.xml130.rules import check_visit
from ketnoi.xml130.values import parse_date, parse_datetime

Json = dict[str, Any]
VN = "http://fhir.ehealth.gov.vn/core/StructureDefinition/"
PROFILES = {
    "Patient": VN + "vn-core-patient",
    "Encounter": VN + "vn-core-encounter",
    "Condition": VN + "vn-core-condition-encounter-diagnosis",
    "MedicationRequest": VN + "vn-core-medication-request",
    "MedicationAdministration": VN + "vn-core-medication-administration",
    "Procedure": VN + "vn-core-procedure",
    "Observation": VN + "vn-core-obervation-result-base",  # sic: the IG's id
    "DiagnosticReport": VN + "vn-core-diagnostic-report",
    "Coverage": "https://fhir.ketnoi.vn/StructureDefinition/ketnoi-coverage-bhyt",
}


@pytest.fixture(scope="module")
def visits() -> list[tuple[str, dict[str, list[dict[str, str]]]]]:
    return list(iter_visits(40, 7))


def _by(resources: list[Json], rtype: str) -> list[Json]:
    return [r for r in resources if r["resourceType"] == rtype]


def _line(resources: list[Json], rtype: str, ma_lk: str, table: str, stt: str) -> Json:
    value = f"{ma_lk}/{table}/{stt}"
    (found,) = [r for r in _by(resources, rtype) if any(i.get("value") == value for i in r.get("identifier", []))]
    return found


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _errors(resource: Json) -> list[str]:
    rtype = resource["resourceType"]
    profile = PROFILES.get(rtype)
    if rtype == "Coverage" and resource["type"]["coding"][0]["code"] == "pay":
        profile = None  # self-pay: not a BHYT card
    found = examine(resource, invariants=True, profiles=[profile] if profile else [], codes=packaged())
    return [i.en for i in found.all() if i.severity == "error"]


def test_generated_visits_pass_the_checks(visits: list[tuple[str, Any]]) -> None:
    assert len(visits) >= 40
    for _, tables in visits:
        assert [p for p in check_visit(tables) if p.rule != "code-unknown"] == []


def test_every_resource_conforms_to_its_profile(visits: list[tuple[str, Any]]) -> None:
    checked: dict[str, int] = {}
    for facility, tables in visits:
        for resource in map_visit(facility, tables).resources:
            assert _errors(resource) == [], (resource["resourceType"], resource["id"])
            checked[resource["resourceType"]] = checked.get(resource["resourceType"], 0) + 1
    assert {"Patient", "Coverage", "Encounter", "Condition", "MedicationRequest", "ChargeItem", "Claim"} <= set(checked)
    assert {"Observation", "DiagnosticReport", "ClinicalImpression", "MedicationAdministration"} <= set(checked)


def test_the_mapping_is_deterministic(visits: list[tuple[str, Any]]) -> None:
    facility, tables = visits[0]
    assert map_visit(facility, tables).resources == map_visit(facility, tables).resources


def test_patient_and_coverage_say_what_xml1_says(visits: list[tuple[str, Any]]) -> None:
    for facility, tables in visits:
        xml1 = tables["XML1"][0]
        mapped = map_visit(facility, tables)
        patient = mapped.patient
        assert patient["name"][0]["text"] == xml1["HO_TEN"]
        words = xml1["HO_TEN"].split()
        assert patient["name"][0]["family"] == words[0] and patient["name"][0]["given"] == words[1:]
        ids = {i["system"]: i["value"] for i in patient["identifier"]}
        assert ids[s.patient_system(facility)] == xml1["MA_BN"]
        if xml1.get("SO_CCCD"):
            assert ids[id_system(xml1["SO_CCCD"]) or ""] == xml1["SO_CCCD"]
        assert patient["birthDate"] == parse_datetime(xml1["NGAY_SINH"], zero_time_unknown=True)[0][:10]  # type: ignore[index]
        assert patient["gender"] == {"1": "male", "2": "female", "3": "unknown"}[xml1["GIOI_TINH"]]
        admin = {
            p["url"]: p["valueCodeableConcept"]["coding"][0]["code"]
            for p in patient["address"][0]["extension"][0]["extension"]
        }
        assert admin["state"] == places.province(xml1["MATINH_CU_TRU"]).code  # type: ignore[union-attr]
        assert admin["ward"] == places.commune(xml1["MAXA_CU_TRU"]).code  # type: ignore[union-attr]
        cards = [c for c in xml1.get("MA_THE_BHYT", "").split(";") if c]
        assert [c["subscriberId"] for c in mapped.coverages if "subscriberId" in c] == cards
        for coverage, start in zip(
            mapped.coverages, [d for d in xml1.get("GT_THE_TU", "").split(";") if d], strict=False
        ):
            assert coverage["period"]["start"] == parse_date(start)[0]
            assert coverage["network"] == xml1["MA_DKBD"].split(";")[0]


def test_encounter_conditions_and_claim_say_what_xml1_says(visits: list[tuple[str, Any]]) -> None:
    for facility, tables in visits:
        xml1 = tables["XML1"][0]
        resources = map_visit(facility, tables).resources
        (encounter,) = _by(resources, "Encounter")
        assert encounter["identifier"][0] == {
            "use": "official",
            "system": s.visit_system(facility),
            "value": xml1["MA_LK"],
        }
        assert encounter["period"] == {
            "start": parse_datetime(xml1["NGAY_VAO"])[0],
            "end": parse_datetime(xml1["NGAY_RA"])[0],
        }
        assert encounter["type"][0]["coding"][0]["code"] == xml1["MA_LOAI_KCB"]
        assert encounter["length"]["value"] == int(xml1["SO_NGAY_DTRI"])
        assert encounter["serviceProvider"]["identifier"] == {"system": s.FACILITY_SYSTEM, "value": facility}
        codes = {c["code"]["coding"][0]["code"] for c in _by(resources, "Condition")}
        wanted = {icd10(xml1["MA_BENH_CHINH"])} | {icd10(c) for c in xml1.get("MA_BENH_KT", "").split(";") if c}
        assert wanted <= codes
        main = next(d for d in encounter["diagnosis"] if d["use"]["coding"][0]["code"] == "CC")
        main_condition = next(
            c for c in _by(resources, "Condition") if f"Condition/{c['id']}" == main["condition"]["reference"]
        )
        assert main_condition["code"]["coding"][0]["code"] == icd10(xml1["MA_BENH_CHINH"])
        (claim,) = _by(resources, "Claim")
        assert _decimal(claim["total"]["value"]) == Decimal(xml1["T_TONGCHI_BV"])
        amounts = {
            e["extension"][0]["valueCoding"]["code"]: _decimal(e["extension"][1]["valueMoney"]["value"])
            for e in claim["extension"]
            if e["url"] == s.AMOUNT_URL
        }
        for name in ("T_BHTT", "T_BNCCT", "T_BNTT", "T_THUOC", "T_TONGCHI_BH"):
            assert amounts[name] == Decimal(xml1[name]), name
        assert bag_of(claim)["NAM_QT"] == xml1["NAM_QT"] and bag_of(claim)["THANG_QT"] == xml1["THANG_QT"]
        items = claim.get("item", [])
        assert len(items) == len(tables.get("XML2", [])) + len(tables.get("XML3", []))
        assert sum((_decimal(i["net"]["value"]) for i in items), Decimal(0)) == Decimal(xml1["T_TONGCHI_BV"])


def test_lines_say_what_xml2_to_xml5_say(visits: list[tuple[str, Any]]) -> None:
    seen = set()
    for facility, tables in visits:
        resources = map_visit(facility, tables).resources
        ma_lk = tables["XML1"][0]["MA_LK"]
        for row in tables.get("XML2", []):
            request = _line(resources, "MedicationRequest", ma_lk, "XML2", row["STT"])
            assert request["medicationCodeableConcept"]["coding"][0]["code"] == row["MA_THUOC"]
            assert request["authoredOn"] == parse_datetime(row["NGAY_YL"])[0]
            assert _decimal(request["dispenseRequest"]["quantity"]["value"]) == Decimal(row["SO_LUONG"])
            assert request["dosageInstruction"][0]["text"] == row["LIEU_DUNG"]
            assert request["requester"]["identifier"]["value"] == row["MA_BAC_SI"].split(";")[0].strip("()")
            seen.add("XML2")
        for row in tables.get("XML3", []):
            item = _line(resources, "ChargeItem", ma_lk, "XML3", row["STT"])
            code = row.get("MA_DICH_VU") or row.get("MA_VAT_TU")
            assert item["code"]["coding"][0]["code"] == code
            assert _decimal(item["quantity"]["value"]) == Decimal(row["SO_LUONG"])
            assert _decimal(item["priceOverride"]["value"]) == Decimal(row["DON_GIA_BV"])
            assert bag_of(item)["MA_NHOM"] == row["MA_NHOM"]
            if row["MA_NHOM"] in ("8", "18"):
                _line(resources, "Procedure", ma_lk, "XML3", row["STT"] + "/procedure")
                seen.add("procedure")
            seen.add("XML3")
        for row in tables.get("XML4", []):
            obs = _line(resources, "Observation", ma_lk, "XML4", row["STT"])
            assert obs["code"]["text"] == row["TEN_CHI_SO"]
            if row.get("MA_CHI_SO"):
                assert obs["code"]["coding"][0]["code"] == row["MA_CHI_SO"]
            if "valueQuantity" in obs:
                assert _decimal(obs["valueQuantity"]["value"]) == Decimal(row["GIA_TRI"])
            elif row.get("GIA_TRI"):
                assert obs["valueString"] == row["GIA_TRI"]
            seen.add("XML4")
        for row in tables.get("XML5", []):
            note = _line(resources, "ClinicalImpression", ma_lk, "XML5", row["STT"])
            assert note["description"] == row["DIEN_BIEN_LS"]
            assert note["effectiveDateTime"] == parse_datetime(row["THOI_DIEM_DBLS"])[0]
            seen.add("XML5")
    assert seen == {"XML2", "XML3", "XML4", "XML5", "procedure"}


def test_names_ids_codes_and_vital_signs() -> None:
    assert split_name("  Nguyễn   Thị Minh  Khai ") == {
        "use": "official",
        "text": "Nguyễn Thị Minh Khai",
        "family": "Nguyễn",
        "given": ["Thị", "Minh", "Khai"],
    }
    assert split_name("Sùng")["given"] == ["Sùng"]
    assert id_system("001080012345") == s.CCCD_SYSTEM
    assert id_system("123456789") == s.CMND_SYSTEM
    assert id_system("B1234567") == s.PASSPORT_SYSTEM
    assert id_system("12345") is None
    assert icd10("J189") == "J18.9" and icd10("j18.9") == "J18.9" and icd10("I10") == "I10"
    assert vital_items("Tỉnh CSST<M75_T37.5_HA120/70_NT18_SPO2 98> ăn được") == [
        ("M", "75"),
        ("T", "37.5"),
        ("HA", "120/70"),
        ("NT", "18"),
    ]


def test_old_administrative_codes_reach_todays_units() -> None:
    assert places.province("02").code == "08"  # type: ignore[union-attr]  # Hà Giang → Tuyên Quang (2025)
    assert places.commune("00001").code == "00097"  # type: ignore[union-attr]  # Phúc Xá → Phường Hồng Hà
    assert places.district("001", "01").display == "Quận Ba Đình"  # type: ignore[union-attr]
    assert places.district("001", "79") is None  # a district of another province is not used
    assert places.district("000", "01") is None
    assert places.province("99") is None and places.commune("99999") is None


def test_card_dates_with_unknown_parts_keep_their_precision(visits: list[tuple[str, Any]]) -> None:
    # A card valid "from January 2024, day not known" (20240100): the Coverage says 2024-01, never 2024-01-00,
    # and still conforms to its profile, so the visit is not refused.
    facility, tables = next((f, t) for f, t in visits if t["XML1"][0].get("MA_THE_BHYT"))
    xml1 = dict(tables["XML1"][0], GT_THE_TU="20240100", GT_THE_DEN="20250000")
    (coverage, *_) = map_visit(facility, {**tables, "XML1": [xml1]}).coverages
    assert coverage["period"] == {"start": "2024-01", "end": "2025"}
    assert _errors(coverage) == []
