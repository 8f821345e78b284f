"""Focused tests of each structural rule of ketnoi.validation.validate."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ketnoi.fhir.outcome import Issue
from ketnoi.validation import validate

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "bp-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2024-05-01T08:30:00+07:00",
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
}

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "active": True,
    "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
    "birthDate": "1990-02-03",
    "contact": [{"name": {"text": "Trần Thị B"}}],
}


def errors(resource: object, *, strict: bool = True) -> list[Issue]:
    return [i for i in validate(resource, strict=strict) if i.severity == "error"]


def one_error(resource: object) -> Issue:
    found = errors(resource)
    assert len(found) == 1, found
    return found[0]


def patient(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(PATIENT)
    result.update(changes)
    return result


def observation(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(OBSERVATION)
    result.update(changes)
    return result


def test_valid_resources_have_no_issues() -> None:
    assert validate(PATIENT) == []
    assert validate(OBSERVATION) == []


# --- resourceType -------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", [[], "Patient", None, 3])
def test_resource_must_be_an_object(resource: object) -> None:
    issue = one_error(resource)
    assert issue.code == "structure"
    assert "JSON object" in issue.en and "đối tượng JSON" in issue.vi


def test_resource_type_is_required() -> None:
    issue = one_error({"id": "x"})
    assert issue.code == "required" and "resourceType" in issue.en


@pytest.mark.parametrize("rtype", ["Patiente", "DomainResource", "Resource", "patient"])
def test_resource_type_must_be_a_concrete_type(rtype: str) -> None:
    issue = one_error({"resourceType": rtype})
    assert issue.code == "invalid" and rtype in issue.en and rtype in issue.vi


def test_resource_type_must_be_a_string() -> None:
    assert one_error({"resourceType": ["Patient"]}).code == "structure"


def test_resource_type_only_at_the_root_of_a_resource() -> None:
    resource = patient(name=[{"family": "X", "resourceType": "HumanName"}])
    issue = one_error(resource)
    assert issue.code == "structure" and issue.expression == ("Patient.name[0]",)


# --- unknown elements -----------------------------------------------------------------------------


def test_unknown_element_is_an_error_with_bilingual_message() -> None:
    resource = patient(name=[{"family": "X", "foo": "bar"}])
    issue = one_error(resource)
    assert issue == Issue(
        "error",
        "structure",
        "Unknown element 'foo' at Patient.name[0]",
        "Phần tử 'foo' không tồn tại tại Patient.name[0]",
        ("Patient.name[0]",),
    )


def test_unknown_element_is_a_warning_when_not_strict() -> None:
    resource = patient(foo=1, birthDate="03/02/1990")
    issues = validate(resource, strict=False)
    assert {(i.severity, i.expression) for i in issues} == {
        ("warning", ("Patient",)),  # the unknown element
        ("error", ("Patient.birthDate",)),  # a bad value still rejects the resource
    }
    assert len(issues) == 2


def test_contents_of_unknown_elements_are_not_visited() -> None:
    issue = one_error(patient(foo={"bar": [{}, None, ""]}))
    assert "'foo'" in issue.en


def test_backbone_elements_are_inline() -> None:
    assert validate(patient(contact=[{"name": {"text": "B"}, "gender": "female"}])) == []
    issue = one_error(patient(contact=[{"nickname": "B"}]))
    assert issue.expression == ("Patient.contact[0]",) and "'nickname'" in issue.en


def test_content_reference_reuses_the_referenced_definition() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string"}]}],
    }
    assert validate(questionnaire) == []
    questionnaire["item"][0]["item"][0]["colour"] = "red"
    issue = one_error(questionnaire)
    assert issue.expression == ("Questionnaire.item[0].item[0]",)
    del questionnaire["item"][0]["item"][0]["colour"]
    del questionnaire["item"][0]["item"][0]["linkId"]
    issue = one_error(questionnaire)
    assert issue.code == "required" and issue.expression == ("Questionnaire.item[0].item[0]",)


def test_extensions_are_allowed_everywhere_and_need_a_url() -> None:
    extension = {"url": "http://example.org/x", "valueString": "y"}
    resource = patient(
        extension=[extension],
        modifierExtension=[extension],
        name=[{"family": "X", "extension": [{"url": "http://example.org/n", "extension": [extension]}]}],
        contact=[{"name": {"text": "B"}, "modifierExtension": [extension]}],
    )
    assert validate(resource) == []
    issue = one_error(patient(extension=[{"valueString": "y"}]))
    assert issue.code == "required" and issue.expression == ("Patient.extension[0]",) and "'url'" in issue.en


# --- choice types ---------------------------------------------------------------------------------


def test_wrong_choice_suffix_names_the_allowed_types() -> None:
    resource = observation()
    del resource["valueQuantity"]
    resource["valueFoo"] = "x"
    issue = one_error(resource)
    assert issue.code == "structure" and issue.expression == ("Observation",)
    assert "'valueFoo'" in issue.en and "valueQuantity" in issue.en and "valueString" in issue.vi


def test_choice_type_accepts_each_allowed_suffix() -> None:
    for key, value in [
        ("valueString", "high"),
        ("valueBoolean", True),
        ("valueInteger", 3),
        ("valueCodeableConcept", {"text": "positive"}),
        ("valuePeriod", {"start": "2024"}),
    ]:
        resource = observation()
        del resource["valueQuantity"]
        resource[key] = value
        assert validate(resource) == [], key


def test_choice_type_checks_the_suffix_type() -> None:
    issue = one_error(observation(effectiveDateTime="yesterday"))
    assert issue.code == "value" and issue.expression == ("Observation.effectiveDateTime",)


def test_only_one_choice_may_be_present() -> None:
    issue = one_error(observation(valueString="72"))
    assert issue.code == "structure" and "valueQuantity" in issue.en and "valueString" in issue.en


# --- shape ----------------------------------------------------------------------------------------


def test_array_where_single_value_expected() -> None:
    issue = one_error(patient(birthDate=["1990-02-03"]))
    assert issue.code == "structure" and issue.expression == ("Patient.birthDate",)
    assert "must not be an array" in issue.en


def test_single_value_where_array_expected() -> None:
    issue = one_error(patient(name={"family": "X"}))
    assert issue.code == "structure" and issue.expression == ("Patient.name",)
    assert "JSON array" in issue.en and "mảng JSON" in issue.vi


def test_primitive_array_item_of_wrong_shape() -> None:
    issue = one_error(patient(name=[{"given": ["A", {"value": "B"}]}]))
    assert issue.expression == ("Patient.name[0].given[1]",) and "must be a string" in issue.en


def test_complex_type_must_be_an_object() -> None:
    issue = one_error(observation(code="8867-4"))
    assert issue.code == "structure" and "CodeableConcept" in issue.en


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("active", "true", "true or false"),
        ("birthDate", 19900203, "a string"),
        ("multipleBirthInteger", "2", "a number"),
    ],
)
def test_primitive_json_kind(key: str, value: object, kind: str) -> None:
    issue = one_error(patient(**{key: value}))
    assert issue.code == "structure" and kind in issue.en


def test_boolean_is_not_a_number() -> None:
    assert one_error(patient(multipleBirthInteger=True)).code == "structure"


@pytest.mark.parametrize(
    ("changes", "expression", "code"),
    [
        ({"name": []}, "Patient.name", "structure"),
        ({"name": [{}]}, "Patient.name[0]", "structure"),
        ({"contact": [{"name": {}}]}, "Patient.contact[0].name", "structure"),
        ({"birthDate": None}, "Patient.birthDate", "structure"),
        ({"name": [None]}, "Patient.name[0]", "structure"),
        ({"birthDate": ""}, "Patient.birthDate", "value"),
        ({"name": [{"given": [""]}]}, "Patient.name[0].given[0]", "value"),
    ],
)
def test_nothing_empty_or_null(changes: dict[str, Any], expression: str, code: str) -> None:
    issue = one_error(patient(**changes))
    assert (issue.code, issue.expression) == (code, (expression,))


def test_empty_resource_is_reported() -> None:
    assert one_error({}).code == "required"  # no resourceType, nothing else to say


# --- primitive extensions (_x) --------------------------------------------------------------------

_EXT = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}


def test_single_primitive_extension() -> None:
    assert validate(patient(_birthDate=_EXT)) == []
    resource = patient(_birthDate=_EXT)
    del resource["birthDate"]  # extensions without a value are allowed
    assert validate(resource) == []
    issue = one_error(patient(_birthDate=[_EXT]))
    assert issue.expression == ("Patient._birthDate",)
    issue = one_error(patient(_birthDate={"foo": 1}))
    assert issue.expression == ("Patient.birthDate",) and "'foo'" in issue.en


def test_primitive_array_aligned_with_extensions() -> None:
    resource = patient(name=[{"given": ["A", None, "C"], "_given": [None, _EXT, None]}])
    assert validate(resource) == []


def test_given_null_without_extension() -> None:
    issue = one_error(patient(name=[{"given": ["A", None], "_given": [_EXT, None]}]))
    assert issue.expression == ("Patient.name[0].given[1]",) and "_given" in issue.en
    assert len(errors(patient(name=[{"given": ["A", None]}]))) == 1


def test_given_and_extensions_of_different_lengths() -> None:
    issue = one_error(patient(name=[{"given": ["A", "B"], "_given": [_EXT]}]))
    assert issue.expression == ("Patient.name[0].given",) and "align" in issue.en


def test_both_null_at_the_same_index() -> None:
    found = errors(patient(name=[{"given": ["A", None], "_given": [_EXT, None]}]))
    assert [i.expression for i in found] == [("Patient.name[0].given[1]",)]


def test_underscore_on_a_complex_element() -> None:
    issue = one_error(patient(_name=[_EXT]))
    assert issue.code == "structure" and "primitive" in issue.en


# --- required elements ----------------------------------------------------------------------------


def test_missing_required_elements() -> None:
    resource = observation()
    del resource["status"]
    del resource["code"]
    found = errors(resource)
    assert [(i.code, i.expression) for i in found] == [("required", ("Observation",))] * 2
    assert {"'status'" in i.en or "'code'" in i.en for i in found} == {True}


def test_required_primitive_satisfied_by_its_extension() -> None:
    resource = observation(_status=_EXT)
    del resource["status"]
    assert validate(resource) == []


# --- nested resources ------------------------------------------------------------------------------


def test_contained_resource_is_validated_with_its_own_type() -> None:
    contained = {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Lê"}], "birthDate": "1970"}
    assert validate(patient(contained=[contained])) == []
    contained["gender"] = "male"  # a Practitioner element with an allowed code
    contained["status"] = "final"  # an Observation element, unknown on Practitioner
    found = errors(patient(contained=[contained]))
    assert [i.expression for i in found] == [("Patient.contained[0]",)]
    assert "'status'" in found[0].en
    issue = one_error(patient(contained=[{"resourceType": "Practitioner", "id": "bad id"}]))
    assert issue.expression == ("Patient.contained[0].id",)


def test_contained_resource_needs_a_resource_type() -> None:
    issue = one_error(patient(contained=[{"id": "x"}]))
    assert issue.code == "required" and issue.expression == ("Patient.contained[0]",)


def test_bundle_entries_are_validated() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": PATIENT}, {"resource": OBSERVATION}],
    }
    assert validate(bundle) == []
    bundle["entry"][1]["resource"] = observation(effectiveDateTime="2024-05-01T08:30:00")
    issue = one_error(bundle)
    assert issue.expression == ("Bundle.entry[1].resource.effectiveDateTime",)
    assert "timezone" in issue.en


def test_parameters_resources_are_validated() -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "p", "resource": patient(gender=["male"])},
            {"name": "q", "part": [{"name": "r", "valueInteger": 2147483648}]},
        ],
    }
    found = errors(parameters)
    assert [i.expression for i in found] == [
        ("Parameters.parameter[0].resource.gender",),
        ("Parameters.parameter[1].part[0].valueInteger",),
    ]


def test_resource_id_must_be_an_id_but_element_ids_are_strings() -> None:
    assert one_error(patient(id="p 1")).expression == ("Patient.id",)
    assert validate(patient(name=[{"id": "any string / really", "family": "X"}])) == []


def test_absurdly_deep_data_is_rejected_not_crashed() -> None:
    resource: dict[str, Any] = {"resourceType": "Patient"}
    node = resource
    for _ in range(5000):
        child: dict[str, Any] = {"url": "http://example.org/x"}
        node["extension"] = [child]
        node = child
    (issue,) = validate(resource)
    assert issue.severity == "error" and "too deeply" in issue.en
