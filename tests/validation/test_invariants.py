"""FHIRPath invariants of the base R4 definitions (ketnoi.validation.invariants)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from ketnoi.validation import check_invariants, validate
from ketnoi.validation import invariants as inv
from tests.support.fhir_examples import EXAMPLES, FILES

# Official examples that break a base invariant, checked by hand (file → key):
KNOWN_BROKEN_EXAMPLES: dict[str, str] = {
    # Logical models of the spec's patterns: abstract=false and no baseDefinition.
    "StructureDefinition-Definition.json": "sdf-4",
    "StructureDefinition-Event.json": "sdf-4",
    "StructureDefinition-FiveWs.json": "sdf-4",
    "StructureDefinition-Request.json": "sdf-4",
    # Narrative div holding only whitespace (or an empty <pre>).
    "ActivityDefinition-blood-tubes-supply.json": "txt-2",
    "ActivityDefinition-heart-valve-replacement.json": "txt-2",
    "EventDefinition-example.json": "txt-2",
    "Questionnaire-zika-virus-exposure-assessment.json": "txt-2",
}


def keys(issues: list[Any], severity: str = "error") -> list[tuple[str, str]]:
    return [(i.en.split(":")[1].strip(), i.expression[0]) for i in issues if i.severity == severity]


def test_per_1_period_end_before_start() -> None:
    enc = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "period": {"start": "2024-05-02T10:00:00+07:00", "end": "2024-05-01T10:00:00+07:00"},
    }
    assert keys(check_invariants(enc)) == [("per-1", "Encounter.period")]
    (issue,) = [i for i in check_invariants(enc) if i.severity == "error"]
    assert issue.code == "invariant" and issue.en.startswith("Constraint failed: per-1: ")
    assert issue.vi.startswith("Ràng buộc per-1 không thỏa: ")
    enc["period"]["end"] = "2024-05-03"
    assert keys(check_invariants(enc)) == []
    # Only an issue when asked for: validate() is structural by default.
    assert validate(enc) == []
    assert keys(validate(enc | {"period": {"start": "2024-05-02", "end": "2024-05-01"}}, invariants=True)) == [
        ("per-1", "Encounter.period")
    ]


def test_dom_3_and_dom_4_contained() -> None:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "contained": [{"resourceType": "Organization", "id": "org", "name": "BV", "meta": {"versionId": "1"}}],
    }
    assert sorted(keys(check_invariants(patient))) == [("dom-3", "Patient"), ("dom-4", "Patient")]
    patient["managingOrganization"] = {"reference": "#org"}
    del patient["contained"][0]["meta"]
    assert keys(check_invariants(patient)) == []


def test_ref_1_local_reference_must_resolve() -> None:
    patient = {"resourceType": "Patient", "managingOrganization": {"reference": "#nowhere"}}
    assert keys(check_invariants(patient)) == [("ref-1", "Patient.managingOrganization")]


def test_obs_6_and_obs_7() -> None:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "valueQuantity": {"value": 120},
        "dataAbsentReason": {"text": "x"},
    }
    assert keys(check_invariants(obs)) == [("obs-6", "Observation")]
    del obs["dataAbsentReason"]
    obs["component"] = [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}}]
    assert keys(check_invariants(obs)) == [("obs-7", "Observation")]
    obs["component"][0]["code"]["coding"][0]["code"] = "8462-4"
    assert keys(check_invariants(obs)) == []


def test_pat_1_contact_needs_details() -> None:
    patient = {"resourceType": "Patient", "contact": [{"gender": "male"}, {"name": {"family": "Nguyễn"}}]}
    assert keys(check_invariants(patient)) == [("pat-1", "Patient.contact[0]")]


def test_questionnaire_invariants() -> None:
    q: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [
            {"linkId": "1", "type": "group"},  # que-1: a group needs items
            {"linkId": "2", "type": "display", "required": True},  # que-6: display is not required
        ],
    }
    found = keys(check_invariants(q))
    assert ("que-1", "Questionnaire.item[0]") in found
    assert ("que-6", "Questionnaire.item[1]") in found
    q["item"] = [
        {
            "linkId": "1",
            "type": "boolean",
            "enableWhen": [
                {"question": "0", "operator": "exists", "answerBoolean": True},
                {"question": "0", "operator": "=", "answerBoolean": True},
            ],
        }
    ]
    # que-12 with its R4 technical correction (more than one enableWhen needs enableBehavior).
    assert keys(check_invariants(q)) == [("que-12", "Questionnaire.item[0]")]
    q["item"][0]["enableBehavior"] = "all"
    assert keys(check_invariants(q)) == []


def test_datatype_constraint_inside_a_bundle_entry() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b8ad4a1-8d2f-4c1d-9d7e-2f4b0c3a1e11",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "weight"},
                    "valueQuantity": {"value": 70, "code": "kg"},  # qty-3: a code needs a system
                },
            }
        ],
    }
    assert keys(check_invariants(bundle)) == [("qty-3", "Bundle.entry[0].resource.valueQuantity")]


def test_warnings_only_on_request() -> None:
    patient = {"resourceType": "Patient", "active": True}
    assert keys(check_invariants(patient), "warning") == [("dom-6", "Patient")]
    assert validate(patient, invariants=True) == []
    assert [i.severity for i in validate(patient, invariants=True, invariant_warnings=True)] == ["warning"]


def test_unsupported_and_failing_invariants_never_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "txt-1" in inv.UNSUPPORTED or not any(i.key == "txt-1" for i in inv.all_invariants())
    check_invariants({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>x</div>"}})
    assert "txt-1" in inv.UNSUPPORTED  # htmlChecks(): detected before any evaluation
    broken = inv.Invariant("zzz-1", "error", "always broken", "1 +", "Patient")
    monkeypatch.setitem(inv._index(), "Patient", [*inv._index()["Patient"], broken])
    inv._type_invariants.cache_clear()
    try:
        assert check_invariants({"resourceType": "Patient", "active": True}) is not None
        assert "zzz-1" in inv.UNSUPPORTED
    finally:
        monkeypatch.undo()
        inv._type_invariants.cache_clear()
        inv.UNSUPPORTED.pop("zzz-1", None)
    assert check_invariants("not a resource") == []  # type: ignore[arg-type]


def test_data_is_not_modified() -> None:
    resource = orjson.loads((EXAMPLES / "Observation-blood-pressure.json").read_bytes())
    before = copy.deepcopy(resource)
    check_invariants(resource)
    assert resource == before


def test_known_broken_examples_exist() -> None:
    assert set(KNOWN_BROKEN_EXAMPLES) <= set(FILES)


def _structurally_valid(name: str) -> bool:
    """The examples the spec ships structurally broken are test_validation_examples' business."""
    return not any(i.severity == "error" for i in validate(orjson.loads((EXAMPLES / name).read_bytes())))


@pytest.mark.parametrize("name", [n for n in FILES if _structurally_valid(n)])
def test_official_example_invariants(name: str) -> None:
    resource = orjson.loads((EXAMPLES / name).read_bytes())
    found = {key for key, _ in keys(check_invariants(resource))}
    expected = {KNOWN_BROKEN_EXAMPLES[name]} if name in KNOWN_BROKEN_EXAMPLES else set()
    assert found == expected
