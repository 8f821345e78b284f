"""The clinician's forms checked before any write (ketnoi.console.clinical_forms), and a download's
file name (ketnoi.console.clinical.disposition): pure functions, no server."""

from __future__ import annotations

from datetime import datetime, timedelta

from ketnoi.claims.progress import VITALS
from ketnoi.console import i18n, show
from ketnoi.console.clinical import disposition
from ketnoi.console.clinical_forms import check_blood_pressure, check_lab, check_note, check_observation, parse_number
from ketnoi.console.measures import LAB_TESTS, VITAL_SIGNS

VI = i18n.translator("vi")
EN = i18n.translator("en")


def _now() -> str:
    return datetime.now(show.VIETNAM).strftime("%Y-%m-%dT%H:%M")


def test_every_vital_sign_of_the_trend_charts_is_offered_with_limits() -> None:
    assert set(VITAL_SIGNS) == {code for code, _, _, _ in VITALS.values()}
    assert all(v.low < v.high for v in VITAL_SIGNS.values())
    assert (VITAL_SIGNS["8310-5"].low, VITAL_SIGNS["8310-5"].high, VITAL_SIGNS["8310-5"].unit) == (25, 45, "Cel")


def test_numbers_take_a_decimal_comma_and_nothing_else() -> None:
    assert parse_number("37,5") == 37.5 and parse_number(" 38.0 ") == 38.0 and parse_number("72") == 72
    for text in ("abc", "", "37,5,1", "1e3", "37.", "٣٧"):
        assert parse_number(text) is None, text


def test_an_observation_outside_the_limits_or_in_the_future_is_refused_in_the_users_language() -> None:
    checked, _ = check_observation({"code": "8310-5", "value": "60", "when": _now()}, VI, set())
    assert [m.text for m in checked.messages["value"]] == [
        "Nhiệt độ phải trong khoảng 25–45 Cel: hãy kiểm tra lại giá trị."
    ]
    later = (datetime.now(show.VIETNAM) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    checked, _ = check_observation({"code": "8867-4", "value": "72", "when": later}, EN, set())
    assert list(checked.messages) == ["when"] and "future" in checked.messages["when"][0].text
    checked, _ = check_observation({"code": "8867-4", "value": "72", "when": _now(), "encounter": "Encounter/x"}, EN,
                                   set())  # fmt: skip
    assert list(checked.messages) == ["encounter"]  # not one of the patient's encounters offered


def test_a_good_observation_is_a_final_vital_sign_in_vietnam_time() -> None:
    checked, resource = check_observation({"code": "29463-7", "value": "3,25", "when": "2026-01-02T08:30"}, VI, set())
    assert checked.ok
    assert resource["valueQuantity"] == {"value": 3.25, "unit": "kg", "system": "http://unitsofmeasure.org",
                                         "code": "kg"}  # fmt: skip
    assert resource["effectiveDateTime"] == "2026-01-02T08:30:00+07:00"
    assert resource["status"] == "final" and resource["category"][0]["coding"][0]["code"] == "vital-signs"


def test_a_note_needs_its_text_and_a_listed_status() -> None:
    checked, start = check_note({"status": "planned", "class": "AMB", "start": "2026-01-02T08:30", "note": " "}, VI)
    assert sorted(checked.messages) == ["note", "status"] and start == "2026-01-02T08:30:00+07:00"


def test_a_download_is_named_safely_in_ascii_and_in_utf8() -> None:
    header = disposition('giấy "ra viện".txt\r\nX-Evil: 1')
    assert header.startswith("attachment; filename=\"gi_y _ra vi_n_.txt__X-Evil_ 1\"; filename*=UTF-8''")
    assert "\r" not in header and "\n" not in header and header.count('"') == 2


def test_a_blood_pressure_is_the_vital_signs_panel_with_its_two_components_in_mm_hg() -> None:
    checked, resource = check_blood_pressure({"systolic": "135", "diastolic": "85", "when": "2026-01-02T08:30"}, VI,
                                             set())  # fmt: skip
    assert checked.ok
    assert resource["code"]["coding"][0]["code"] == "85354-9" and "valueQuantity" not in resource
    assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
    parts = [(c["code"]["coding"][0]["code"], c["valueQuantity"]) for c in resource["component"]]
    unit = {"unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    assert parts == [("8480-6", {"value": 135, **unit}), ("8462-4", {"value": 85, **unit})]


def test_a_blood_pressure_needs_both_numbers_within_limits_the_systolic_above() -> None:
    checked, resource = check_blood_pressure({"systolic": "", "diastolic": "9000", "when": _now()}, EN, set())
    assert checked.messages["systolic"][0].text == "This field is required."
    assert checked.messages["diastolic"][0].text.startswith("Diastolic pressure must be between 20 and 200 mmHg")
    assert resource == {}
    checked, resource = check_blood_pressure({"systolic": "80", "diastolic": "120", "when": _now()}, VI, set())
    assert list(checked.messages) == ["diastolic"] and resource == {}
    assert checked.messages["diastolic"][0].text.startswith("Huyết áp tâm trương (120) phải thấp hơn")


def test_a_laboratory_result_carries_its_vietnamese_unit_and_reference_range() -> None:
    assert {"14749-6", "4548-4", "14682-9", "14647-2", "718-7"} <= set(LAB_TESTS)
    assert all(lab.low < lab.high for lab in LAB_TESTS.values())
    checked, resource = check_lab({"code": "14749-6", "value": "7,8", "when": "2026-01-02T08:30"}, VI, set())
    assert checked.ok
    assert resource["category"][0]["coding"][0]["code"] == "laboratory"
    assert resource["valueQuantity"] == {"value": 7.8, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                         "code": "mmol/L"}  # fmt: skip
    assert (
        resource["referenceRange"][0]["low"]["value"] == 3.9 and resource["referenceRange"][0]["high"]["value"] == 6.4
    )
    checked, _ = check_lab({"code": "14682-9", "value": "90000", "when": _now()}, VI, set())
    assert checked.messages["value"][0].text.startswith("Creatinin máu phải trong khoảng 5–3000 µmol/L")
    checked, _ = check_lab({"code": "8310-5", "value": "37", "when": _now()}, VI, set())
    assert list(checked.messages) == ["code"]  # a vital sign is not a laboratory test
    _, alt = check_lab({"code": "1742-6", "value": "35", "when": _now()}, VI, set())
    assert alt["referenceRange"] == [{"high": {"value": 40, "unit": "U/L", "system": "http://unitsofmeasure.org",
                                                "code": "U/L"}}]  # fmt: skip
