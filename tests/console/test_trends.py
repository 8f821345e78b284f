"""The record page's trend series (ketnoi.console.trends): grouping, order, units, ranges."""

from __future__ import annotations

from typing import Any

from ketnoi.console.trends import MAX_SERIES, series

LOINC = "http://loinc.org"


def obs(code: str, when: str, value: Any, unit: str = "mmHg", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "code": {"coding": [{"system": LOINC, "code": code, "display": code}]},
        "effectiveDateTime": when, "valueQuantity": {"value": value, "unit": unit}, **extra,
    }  # fmt: skip


def test_one_series_per_code_and_unit_oldest_first_with_the_range() -> None:
    found = series([
        obs("8480-6", "2026-03-01T08:00:00+07:00", 140, referenceRange=[{"high": {"value": 130}}]),
        obs("8480-6", "2026-01-01", 150),
        obs("8480-6", "2026-02-01T08:00:00Z", 145),
        obs("8480-6", "2026-02-01T08:00:00Z", 19.3, unit="kPa"),  # another unit: not mixed in, and alone
        obs("8867-4", "2026-02-01T08:00:00Z", 70, unit="/min"),  # one point: no trend
    ])  # fmt: skip
    assert len(found) == 1
    one = found[0]
    assert (one.key, one.unit, one.low, one.high) == (f"{LOINC}|8480-6", "mmHg", None, 130.0)
    assert [v for _, v in one.points] == [150.0, 145.0, 140.0]
    data = one.data()
    assert data["t"] == sorted(data["t"]) and data["v"] == [150.0, 145.0, 140.0]


def test_values_that_cannot_be_charted_are_left_out() -> None:
    found = series([
        obs("x", "2026-01-01", "150"),  # a string
        obs("x", "not a date", 1),
        obs("x", "2026-01-01T08:00:00", 2),  # a dateTime without a zone is not an instant
        {"resourceType": "Observation", "code": {"coding": [{"system": LOINC, "code": "x"}]}, "valueString": "a"},
        obs("x", "2026-01-02", 3),
    ])  # fmt: skip
    assert found == []  # a single chartable point left


def test_most_measured_first_and_at_most_max_series() -> None:
    many = [obs(f"c{i}", f"2026-01-{d:02d}", d) for i in range(MAX_SERIES + 2) for d in range(1, 3 + (i == 5))]
    found = series(many)
    assert len(found) == MAX_SERIES and found[0].label == "c5" and len(found[0].points) == 3


def test_a_blood_pressure_panel_is_two_series_its_systolic_and_diastolic() -> None:
    def panel(when: str, systolic: int, diastolic: int) -> dict[str, Any]:
        parts = (("8480-6", "Huyết áp tâm thu", systolic), ("8462-4", "Huyết áp tâm trương", diastolic))
        return {
            "resourceType": "Observation", "effectiveDateTime": when,
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}], "text": "Huyết áp"},
            "component": [{"code": {"coding": [{"system": LOINC, "code": c}], "text": text},
                           "valueQuantity": {"value": v, "unit": "mmHg", "code": "mm[Hg]"}} for c, text, v in parts],
        }  # fmt: skip

    found = series([panel("2026-01-02", 150, 95), panel("2026-01-01", 160, 100)])
    assert sorted((s.label, tuple(v for _, v in s.points)) for s in found) == [
        ("Huyết áp tâm thu", (160.0, 150.0)), ("Huyết áp tâm trương", (100.0, 95.0))
    ]  # fmt: skip
    assert {s.key for s in found} == {f"{LOINC}|8480-6", f"{LOINC}|8462-4"}
