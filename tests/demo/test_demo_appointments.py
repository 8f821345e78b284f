"""The demo's appointments: a follow-up for each patient with a chronic condition, the next vaccination
for each child under two, booked after the data set's "today", at the patient's commune station, and
drawn apart from the rest so that adding them changed no other resource."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from ketnoi.demo import appointments, people
from ketnoi.demo.generate import iter_resources


def test_follow_ups_and_vaccinations_after_today(ndjson_resources: list[dict[str, Any]]) -> None:
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in ndjson_resources:
        by_type[resource["resourceType"]].append(resource)
    found = by_type["Appointment"]
    kinds = {a["appointmentType"]["coding"][0]["code"] for a in found}
    assert found and kinds == {"FOLLOWUP", "ROUTINE"}
    chronic = {
        c["subject"]["reference"]
        for c in by_type["Condition"]
        if c["category"][0]["coding"][0]["code"] == "problem-list-item"
    }
    patients = {p["id"]: p for p in by_type["Patient"]}
    locations = {loc["id"] for loc in by_type["Location"]}
    follow_ups = [a for a in found if a["appointmentType"] == appointments.FOLLOW_UP]
    assert {a["participant"][0]["actor"]["reference"] for a in follow_ups} == chronic  # one each
    assert len(follow_ups) == len(chronic)
    for appointment in found:
        assert appointment["status"] == "booked" and appointment["start"] > people.AS_OF_ISO
        assert appointment["start"] < appointment["end"] and appointment["patientInstruction"]
        actors = [p["actor"]["reference"] for p in appointment["participant"]]
        assert actors[0].removeprefix("Patient/") in patients and actors[2].removeprefix("Location/") in locations
    for vaccination in (a for a in found if a["appointmentType"] == appointments.ROUTINE):
        child = patients[vaccination["participant"][0]["actor"]["reference"].removeprefix("Patient/")]
        assert child["birthDate"] > "2024-06-30"  # under two on the data set's today


def test_appointments_leave_the_other_resources_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    # Their RNG is the patient's own: without them, the data set is what it was before they were added.
    with_them = [r for r in iter_resources(40, 3) if r["resourceType"] != "Appointment"]
    monkeypatch.setattr(appointments, "appointments", lambda care: None)
    assert with_them == list(iter_resources(40, 3))
