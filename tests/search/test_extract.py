"""Exact index rows for representative parameters of every search type."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from ketnoi.fhir.definitions import search_parameters
from ketnoi.search.extract import Extractor, default_extractor
from ketnoi.search.extract_paths import split_union
from ketnoi.search.index import (
    DATE_MAX,
    DATE_MIN,
    DateRow,
    IndexRows,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)

UCUM = "http://unitsofmeasure.org"
Row = Any


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(search_parameters(), strict=True)


def rows_of(rows: IndexRows, param: str) -> list[Row]:
    out: list[Row] = []
    for kind in ("string", "token", "date", "number", "quantity", "reference", "uri"):
        out.extend(r for r in getattr(rows, kind) if r.param == param)
    return out


PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "vn1",
    "meta": {
        "tag": [{"system": "http://ketnoi.vn/tags", "code": "demo", "display": "Dữ liệu mẫu"}],
        "profile": ["http://fhir.ketnoi.vn/StructureDefinition/vn-patient|1.0"],
        "source": "http://his.benhvien.vn",
    },
    "identifier": [
        {
            "system": "http://moh.gov.vn/cccd",
            "value": "001088012345",
            "type": {"text": "Căn cước công dân"},
        }
    ],
    "active": True,
    "name": [{"use": "official", "family": "Nguyễn", "given": ["Văn", "Đặng"], "text": "Nguyễn Văn Đặng"}],
    "telecom": [{"system": "email", "value": "dang@example.vn"}, {"system": "phone", "value": "0912345678"}],
    "gender": "male",
    "birthDate": "1988-02-29",
    "_birthDate": {"extension": [{"url": "http://example.org/x", "valueString": "kept out"}]},
    "address": [{"line": ["12 Phố Huế"], "city": "Hà Nội", "district": "Hai Bà Trưng", "country": "VN"}],
    "generalPractitioner": [
        {"reference": "Practitioner/bs-an"},
        {"reference": "https://fhir.other.vn/r4/Organization/bv1/_history/3"},
        {"reference": "#contained-gp"},
        {"identifier": {"system": "http://moh.gov.vn/cchn", "value": "CCHN-1"}, "display": "BS. An"},
    ],
}


def test_patient_name_family_given(extractor: Extractor) -> None:
    rows = extractor.extract(PATIENT)
    assert rows_of(rows, "family") == [StringRow("family", "nguyen", "Nguyễn")]
    assert rows_of(rows, "given") == [StringRow("given", "van", "Văn"), StringRow("given", "dang", "Đặng")]
    assert rows_of(rows, "name") == [
        StringRow("name", "nguyen", "Nguyễn"),
        StringRow("name", "van", "Văn"),
        StringRow("name", "dang", "Đặng"),
        StringRow("name", "nguyen van dang", "Nguyễn Văn Đặng"),
    ]


def test_patient_identifier_gender_active_birthdate(extractor: Extractor) -> None:
    rows = extractor.extract(PATIENT)
    assert rows_of(rows, "identifier") == [
        TokenRow("identifier", "http://moh.gov.vn/cccd", "001088012345", "can cuoc cong dan")
    ]
    assert rows_of(rows, "gender") == [TokenRow("gender", None, "male", None)]
    assert rows_of(rows, "active") == [TokenRow("active", None, "true", None)]
    assert rows_of(rows, "birthdate") == [DateRow("birthdate", ts("1988-02-29"), ts("1988-03-01"))]


def test_patient_address_and_telecom(extractor: Extractor) -> None:
    rows = extractor.extract(PATIENT)
    assert rows_of(rows, "address-city") == [StringRow("address-city", "ha noi", "Hà Nội")]
    assert rows_of(rows, "address") == [
        StringRow("address", "12 pho hue", "12 Phố Huế"),
        StringRow("address", "ha noi", "Hà Nội"),
        StringRow("address", "hai ba trung", "Hai Bà Trưng"),
        StringRow("address", "vn", "VN"),
    ]
    assert rows_of(rows, "email") == [TokenRow("email", "email", "dang@example.vn", None)]
    assert rows_of(rows, "phone") == [TokenRow("phone", "phone", "0912345678", None)]


def test_patient_general_practitioner_reference_forms(extractor: Extractor) -> None:
    rows = extractor.extract(PATIENT)
    # Relative, absolute with history (url without _history, version kept); contained "#x" skipped;
    # an identifier-only reference gives a token row under "<code>:identifier".
    assert rows_of(rows, "general-practitioner") == [
        ReferenceRow("general-practitioner", "Practitioner", "bs-an", None, None),
        ReferenceRow("general-practitioner", "Organization", "bv1", "https://fhir.other.vn/r4/Organization/bv1", "3"),
    ]
    assert rows_of(rows, "general-practitioner:identifier") == [
        TokenRow("general-practitioner:identifier", "http://moh.gov.vn/cchn", "CCHN-1", None)
    ]


def test_resource_level_parameters(extractor: Extractor) -> None:
    rows = extractor.extract(PATIENT)
    assert rows_of(rows, "_tag") == [TokenRow("_tag", "http://ketnoi.vn/tags", "demo", "du lieu mau")]
    # _profile is a uri parameter: the canonical as written plus its unversioned url.
    assert rows_of(rows, "_profile") == [
        UriRow("_profile", "http://fhir.ketnoi.vn/StructureDefinition/vn-patient|1.0"),
        UriRow("_profile", "http://fhir.ketnoi.vn/StructureDefinition/vn-patient"),
    ]
    assert rows_of(rows, "_source") == [UriRow("_source", "http://his.benhvien.vn")]
    assert rows_of(rows, "_id") == rows_of(rows, "_lastUpdated") == []


def test_extraction_does_not_mutate_the_resource(extractor: Extractor) -> None:
    before = copy.deepcopy(PATIENT)
    extractor.extract(PATIENT)
    assert before == PATIENT


OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "basedOn": [{"identifier": {"system": "http://bv.vn/orders", "value": "XN-42"}}],
    "code": {
        "coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose [Mass/volume] in Blood"}],
        "text": "Đường huyết",
    },
    "subject": {"reference": "Patient/vn1"},
    "effectivePeriod": {"start": "2024-05-01T08:00:00+07:00", "end": "2024-05-01T09:00:00+07:00"},
    "valueQuantity": {"value": 95, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
}


def test_observation_code_with_folded_display_and_text(extractor: Extractor) -> None:
    assert rows_of(extractor.extract(OBSERVATION), "code") == [
        TokenRow("code", "http://loinc.org", "2339-0", "glucose [mass/volume] in blood"),
        TokenRow("code", None, None, "duong huyet"),
    ]


def test_observation_value_quantity_adds_canonical_ucum_row(extractor: Extractor) -> None:
    extracted = extractor.extract(OBSERVATION)
    assert rows_of(extracted, "value-quantity") == [QuantityRow("value-quantity", UCUM, "mg/dL", 95.0, 94.5, 95.5)]
    canonical = rows_of(extracted, "value-quantity:canonical")
    assert len(canonical) == 1
    assert canonical[0].code == "g/L"
    assert (canonical[0].value, canonical[0].low, canonical[0].high) == (
        pytest.approx(0.95),
        pytest.approx(0.945),
        pytest.approx(0.955),
    )


def test_observation_date_from_period(extractor: Extractor) -> None:
    assert rows_of(extractor.extract(OBSERVATION), "date") == [
        DateRow("date", ts("2024-05-01T01:00:00"), ts("2024-05-01T02:00:01"))
    ]
    open_ended = {**OBSERVATION, "effectivePeriod": {"start": "2024-05-01"}}
    assert rows_of(extractor.extract(open_ended), "date") == [DateRow("date", ts("2024-05-01"), DATE_MAX)]
    open_start = {**OBSERVATION, "effectivePeriod": {"end": "2024"}}
    assert rows_of(extractor.extract(open_start), "date") == [DateRow("date", DATE_MIN, ts("2025-01-01"))]


def test_observation_subject_and_patient(extractor: Extractor) -> None:
    rows = extractor.extract(OBSERVATION)
    assert rows_of(rows, "subject") == [ReferenceRow("subject", "Patient", "vn1", None, None)]
    assert rows_of(rows, "patient") == [ReferenceRow("patient", "Patient", "vn1", None, None)]


def test_observation_about_a_group_has_no_patient_rows(extractor: Extractor) -> None:
    rows = extractor.extract({**OBSERVATION, "subject": {"reference": "Group/ho-gia-dinh"}})
    assert rows_of(rows, "subject") == [ReferenceRow("subject", "Group", "ho-gia-dinh", None, None)]
    assert rows_of(rows, "patient") == []


def test_reference_identifier_becomes_token(extractor: Extractor) -> None:
    rows = extractor.extract(OBSERVATION)
    assert rows_of(rows, "based-on") == []
    assert rows_of(rows, "based-on:identifier") == [
        TokenRow("based-on:identifier", "http://bv.vn/orders", "XN-42", None)
    ]


def test_observation_value_choice_types(extractor: Extractor) -> None:
    concept = {**OBSERVATION, "valueCodeableConcept": {"text": "Dương tính"}}
    del concept["valueQuantity"]
    rows = extractor.extract(concept)
    assert rows_of(rows, "value-concept") == [TokenRow("value-concept", None, None, "duong tinh")]
    assert rows_of(rows, "value-string") == [StringRow("value-string", "duong tinh", "Dương tính")]
    assert rows_of(rows, "value-quantity") == []


def test_quantity_comparator_opens_the_range(extractor: Extractor) -> None:
    obs = {**OBSERVATION, "valueQuantity": {"value": 5, "comparator": "<", "system": UCUM, "code": "mmol/L"}}
    extracted = extractor.extract(obs)
    written = QuantityRow("value-quantity", UCUM, "mmol/L", 5.0, float("-inf"), 5.5)
    assert rows_of(extracted, "value-quantity") == [written]
    canonical = rows_of(extracted, "value-quantity:canonical")
    assert canonical[0][1:3] == (UCUM, "mol/L")
    assert canonical[0].low == float("-inf")


ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "status": "finished",
    "class": {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "AMB",
        "display": "ambulatory",
    },
    "subject": {"reference": "Patient/vn1"},
    "participant": [
        {"individual": {"reference": "Practitioner/bs-an"}},
        {"individual": {"reference": "RelatedPerson/me"}},
    ],
    "period": {"start": "2024-05-01T08:00:00+07:00", "end": "2024-05-01T08:30:00+07:00"},
    "length": {"value": 30, "unit": "min", "system": UCUM, "code": "min"},
}


def test_encounter(extractor: Extractor) -> None:
    rows = extractor.extract(ENCOUNTER)
    assert rows_of(rows, "class") == [
        TokenRow("class", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory")
    ]
    assert rows_of(rows, "status") == [TokenRow("status", None, "finished", None)]
    assert rows_of(rows, "date") == [DateRow("date", ts("2024-05-01T01:00:00"), ts("2024-05-01T01:30:01"))]
    assert rows_of(rows, "participant") == [
        ReferenceRow("participant", "Practitioner", "bs-an", None, None),
        ReferenceRow("participant", "RelatedPerson", "me", None, None),
    ]
    assert rows_of(rows, "practitioner") == [ReferenceRow("practitioner", "Practitioner", "bs-an", None, None)]
    assert rows_of(rows, "patient") == [ReferenceRow("patient", "Patient", "vn1", None, None)]
    assert rows_of(rows, "length") == [QuantityRow("length", UCUM, "min", 30.0, 29.5, 30.5)]
    assert rows_of(rows, "length:canonical") == [QuantityRow("length:canonical", UCUM, "s", 1800.0, 1770.0, 1830.0)]


def test_canonical_reference_with_version(extractor: Extractor) -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "http://fhir.ketnoi.vn/Questionnaire/phq9|2.0",
    }
    assert rows_of(extractor.extract(qr), "questionnaire") == [
        ReferenceRow("questionnaire", "Questionnaire", "phq9", "http://fhir.ketnoi.vn/Questionnaire/phq9", "2.0")
    ]


def test_reference_to_urn_keeps_url_only(extractor: Extractor) -> None:
    obs = {**OBSERVATION, "subject": {"reference": "urn:uuid:2a6e0b1c-5b7b-4c4e-9a43-0f4c3c1d2e3f"}}
    rows = extractor.extract(obs)
    assert rows_of(rows, "subject") == [
        ReferenceRow("subject", None, None, "urn:uuid:2a6e0b1c-5b7b-4c4e-9a43-0f4c3c1d2e3f", None)
    ]
    assert rows_of(rows, "patient") == []


def test_money_quantity(extractor: Extractor) -> None:
    invoice = {
        "resourceType": "Invoice",
        "status": "issued",
        "totalNet": {"value": 150000, "currency": "VND"},
    }
    assert rows_of(extractor.extract(invoice), "totalnet") == [
        QuantityRow("totalnet", "urn:iso:std:iso:4217", "VND", 150000.0, 149999.5, 150000.5)
    ]


def test_boolean_token_false_and_deceased_expression(extractor: Extractor) -> None:
    patient = {"resourceType": "Patient", "active": False}
    rows = extractor.extract(patient)
    assert rows_of(rows, "active") == [TokenRow("active", None, "false", None)]
    # "Patient.deceased.exists() and Patient.deceased != false"
    assert rows_of(rows, "deceased") == [TokenRow("deceased", None, "false", None)]
    died = extractor.extract({"resourceType": "Patient", "deceasedDateTime": "2020-03-01"})
    assert rows_of(died, "deceased") == [TokenRow("deceased", None, "true", None)]
    assert rows_of(died, "death-date") == [DateRow("death-date", ts("2020-03-01"), ts("2020-03-02"))]


def test_timing_indexes_outer_limits(extractor: Extractor) -> None:
    timing = {
        "event": ["2024-05-03", "2024-05-01"],
        "repeat": {"boundsPeriod": {"start": "2024-05-02", "end": "2024-06"}},
    }
    care_plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/vn1"},
        "activity": [{"detail": {"status": "scheduled", "scheduledTiming": timing}}],
    }
    # CarePlan.activity.detail.scheduled is a Timing: one row spanning events and bounds.
    assert rows_of(extractor.extract(care_plan), "activity-date") == [
        DateRow("activity-date", ts("2024-05-01"), ts("2024-07-01"))
    ]
    free_text = {
        **care_plan,
        "activity": [{"detail": {"status": "scheduled", "scheduledString": "sáng mai"}}],
    }
    assert rows_of(extractor.extract(free_text), "activity-date") == []


def test_medication_request_events_and_choice_cast(extractor: Extractor) -> None:
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/vn1"},
        "medicationCodeableConcept": {"text": "Paracetamol"},
        "dosageInstruction": [{"timing": {"event": ["2024-05-03"]}}],
    }
    rows = extractor.extract(request)
    # MedicationRequest.dosageInstruction.timing.event selects the dateTimes themselves.
    assert rows_of(rows, "date") == [DateRow("date", ts("2024-05-03"), ts("2024-05-04"))]
    assert rows_of(rows, "code") == [TokenRow("code", None, None, "paracetamol")]
    assert rows_of(rows, "medication") == []


def test_where_equality_filter(extractor: Extractor) -> None:
    plan = {
        "resourceType": "ActivityDefinition",
        "status": "active",
        "relatedArtifact": [
            {"type": "composed-of", "resource": "http://x.vn/ActivityDefinition/a|3"},
            {"type": "depends-on", "resource": "http://x.vn/Library/lib"},
        ],
    }
    rows = extractor.extract(plan)
    assert rows_of(rows, "composed-of") == [
        ReferenceRow("composed-of", "ActivityDefinition", "a", "http://x.vn/ActivityDefinition/a", "3")
    ]
    assert rows_of(rows, "depends-on") == [
        ReferenceRow("depends-on", "Library", "lib", "http://x.vn/Library/lib", None)
    ]


def test_invalid_values_are_skipped_not_fatal() -> None:
    lenient = default_extractor()
    obs = {
        **OBSERVATION,
        "effectiveDateTime": "không phải ngày",
        "issued": 12,
        "valueQuantity": {"value": "nhiều", "code": "mg"},
        "code": "not-a-codeable-concept",
        "subject": ["not", "a", "reference"],
    }
    del obs["effectivePeriod"]
    rows = lenient.extract(obs)
    assert rows_of(rows, "date") == rows_of(rows, "value-quantity") == []
    assert rows_of(rows, "status") == [TokenRow("status", None, "final", None)]
    assert lenient.extract({"resourceType": "NoSuchType"}) == IndexRows()
    assert lenient.extract({}) == IndexRows()


def test_custom_search_parameter_with_extension_uses_fhirpath_fallback() -> None:
    ethnicity = {
        "resourceType": "SearchParameter",
        "code": "dan-toc",
        "base": ["Patient"],
        "type": "token",
        "expression": "Patient.extension('http://fhir.ketnoi.vn/StructureDefinition/ethnicity').value",
    }
    extractor = Extractor([*search_parameters(), ethnicity], strict=True)
    plan = next(p for p in extractor.plans("Patient") if p.code == "dan-toc")
    assert plan.fast_parts == 0 and len(plan.parts) == 1
    patient = {
        "resourceType": "Patient",
        "extension": [
            {
                "url": "http://fhir.ketnoi.vn/StructureDefinition/ethnicity",
                "valueCoding": {"system": "http://fhir.ketnoi.vn/dan-toc", "code": "01", "display": "Kinh"},
            }
        ],
    }
    assert rows_of(extractor.extract(patient), "dan-toc") == [
        TokenRow("dan-toc", "http://fhir.ketnoi.vn/dan-toc", "01", "kinh")
    ]
    assert "dan-toc" in extractor.params_for("Patient")


def test_params_for_includes_resource_level_and_own_parameters(extractor: Extractor) -> None:
    params = extractor.params_for("Patient")
    assert {"_id", "_lastUpdated", "_tag", "_profile", "_text", "name", "birthdate"} <= params.keys()
    assert "code" not in params
    assert "_text" not in extractor.params_for("Bundle")  # Bundle is not a DomainResource


def test_only_own_branch_of_shared_expression_is_compiled(extractor: Extractor) -> None:
    plan = next(p for p in extractor.plans("Condition") if p.code == "code")
    assert [part for part, _ in plan.parts] == ["Condition.code"]
    assert plan.fast_parts == 1
    assert len(split_union(extractor.params_for("Condition")["code"]["expression"])) > 5
