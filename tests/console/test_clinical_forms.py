"""The clinician's forms checked before any write (ketnoi.console.clinical_forms), and a download's
file name (ketnoi.console.clinical.disposition): pure functions, no server."""

from __future__ import annotations

from datetime import datetime, timedelta

from ketnoi.claims.progress import VITALS
from ketnoi.console import i18n, show
from ketnoi.console.clinical import disposition
from ketnoi.console.clinical_forms import VITAL_SIGNS, check_note, check_observation, parse_number

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
