"""Profile validation (ketnoi.validation.profiles / conformance / slicing / extensions): slicing by
each discriminator kind, fixed and pattern values, cardinality in profiles, bindings, invariants,
type and target profiles, chains of profiles, extension definitions and their context."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ketnoi.validation import check_profiles, validate
from ketnoi.validation.profiles import LayeredSource, PackagedSource, ProfileCache, compile_definition

BASE = "http://example.org/fhir/StructureDefinition/"
CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
BHYT = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"


def profile(name: str, rtype: str, elements: list[dict[str, Any]], base: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "url": BASE + name,
        "name": name,
        "status": "draft",
        "kind": "resource" if rtype[0].isupper() and rtype not in ("Extension", "Address") else "complex-type",
        "abstract": False,
        "type": rtype,
        "baseDefinition": base or f"http://hl7.org/fhir/StructureDefinition/{rtype}",
        "derivation": "constraint",
        "differential": {"element": [{"id": rtype, "path": rtype}, *elements]},
    }


def el(id: str, **rest: Any) -> dict[str, Any]:
    path = ".".join(part.partition(":")[0] for part in id.split("."))
    return {"id": id, "path": path, **rest}


PATIENT = profile(
    "vn-patient",
    "Patient",
    [
        el(
            "Patient.identifier",
            slicing={"discriminator": [{"type": "value", "path": "system"}], "rules": "open"},
            min=1,
        ),
        el("Patient.identifier:cccd", sliceName="cccd", min=1, max="1"),
        el("Patient.identifier:cccd.system", min=1, fixedUri=CCCD),
        el("Patient.identifier:cccd.value", min=1),
        el("Patient.identifier:bhyt", sliceName="bhyt", max="1"),
        el("Patient.identifier:bhyt.system", min=1, fixedUri=BHYT),
        el(
            "Patient.identifier:bhyt.type",
            patternCodeableConcept={
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SB"}]
            },
        ),
        el("Patient.name", min=1),
        el("Patient.name.text", min=1),
        el(
            "Patient.gender",
            min=1,
            binding={"strength": "required", "valueSet": "http://hl7.org/fhir/ValueSet/administrative-gender"},
        ),
        el("Patient.birthDate", min=1),
        el("Patient.deceased[x]", type=[{"code": "boolean"}]),
        el(
            "Patient.maritalStatus",
            binding={"strength": "extensible", "valueSet": "http://hl7.org/fhir/ValueSet/marital-status"},
        ),
        el(
            "Patient.managingOrganization",
            type=[{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Organization"]}],
        ),
        el(
            "Patient.telecom",
            constraint=[
                {
                    "key": "vn-tel-1",
                    "severity": "error",
                    "human": "A phone number is 10 digits starting with 0",
                    "expression": "system = 'phone' implies value.matches('^0[0-9]{9}$')",
                }
            ],
        ),
    ],
)


def good_patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "meta": {"profile": [BASE + "vn-patient"]},
        "identifier": [
            {"system": CCCD, "value": "001099012345"},
            {
                "system": BHYT,
                "value": "HS4010120878811",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SB", "display": "x"}
                    ]
                },
            },
            {"system": "urn:oid:1.2.3", "value": "local-1"},
        ],
        "name": [{"text": "Nguyễn Văn An", "family": "Nguyễn"}],
        "gender": "male",
        "birthDate": "1999-05-01",
        "maritalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]
        },
        "telecom": [{"system": "phone", "value": "0912345678"}],
        "managingOrganization": {"reference": "Organization/bv-bach-mai"},
    }


def cache(*extra: dict[str, Any]) -> ProfileCache:
    return ProfileCache(LayeredSource([PATIENT, *extra], PackagedSource()))


def problems(resource: dict[str, Any], *extra: dict[str, Any], profiles: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(severity, English text) of the profile issues, errors and warnings."""
    found = check_profiles(resource, list(profiles), cache=cache(*extra))
    return [(i.severity, i.en) for i in found if i.severity in ("error", "warning")]


def errors(resource: dict[str, Any], *extra: dict[str, Any], profiles: tuple[str, ...] = ()) -> list[str]:
    return [text for severity, text in problems(resource, *extra, profiles=profiles) if severity == "error"]


def test_a_conforming_resource_has_no_profile_issue() -> None:
    assert problems(good_patient()) == []
    assert validate(good_patient(), invariants=True, cache=cache()) == []


def test_slice_cardinality_and_fixed_value_by_value_discriminator() -> None:
    patient = good_patient()
    del patient["identifier"][0]  # no CCCD: the cccd slice (min 1) is empty
    assert any("Patient.identifier:cccd: at least 1 required" in e for e in errors(patient))
    twice = good_patient()
    twice["identifier"].append({"system": CCCD, "value": "001099012346"})
    assert any("Patient.identifier:cccd: at most 1 allowed" in e for e in errors(twice))


def test_pattern_inside_a_slice_is_checked_only_on_that_slice() -> None:
    patient = good_patient()
    patient["identifier"][1]["type"]["coding"][0]["code"] = "NI"
    found = errors(patient)
    assert len(found) == 1 and "Patient.identifier[1].type: must contain" in found[0], found
    # The same type on an identifier of another slice is not that slice's business.
    other = good_patient()
    other["identifier"][2]["type"] = {"text": "anything"}
    assert errors(other) == []


def test_min_in_a_profile_on_a_child_and_on_an_element_the_base_makes_optional() -> None:
    patient = good_patient()
    del patient["birthDate"]
    patient["name"] = [{"family": "Nguyễn"}]
    found = errors(patient)
    assert any(e.startswith("Patient.birthDate: at least 1 required") for e in found), found
    assert any(e.startswith("Patient.name.text: at least 1 required") for e in found), found


def test_choice_type_narrowed_by_the_profile() -> None:
    patient = good_patient()
    patient["deceasedDateTime"] = "2020-01-01"
    assert any("type dateTime is not allowed" in e for e in errors(patient))
    patient["deceasedBoolean"] = False
    del patient["deceasedDateTime"]
    assert errors(patient) == []


def test_required_binding_is_an_error_and_extensible_a_warning() -> None:
    def knows_m_and_male(value_set: str, system: str | None, code: str) -> bool | None:
        return code in ("M", "male") if "marital" in value_set or "gender" in value_set else None

    def found(patient: dict[str, Any], codes: Any = knows_m_and_male) -> list[tuple[str, str]]:
        issues = check_profiles(patient, [], cache=cache(), codes=codes)
        return [(i.severity, i.en) for i in issues if i.severity in ("error", "warning")]

    assert found(good_patient()) == []
    patient = good_patient()
    patient["maritalStatus"] = {"coding": [{"system": "http://example.org/marital", "code": "X"}]}
    assert [(s, "extensible binding" in t) for s, t in found(patient)] == [("warning", True)]
    patient["gender"] = "other"
    assert any(s == "error" and "Patient.gender: other is not in the value set" in t for s, t in found(patient))
    preferred = copy.deepcopy(PATIENT)
    for element in preferred["differential"]["element"]:
        if element["id"] == "Patient.maritalStatus":
            element["binding"]["strength"] = "preferred"
    other = good_patient()
    other["maritalStatus"] = {"coding": [{"system": "http://example.org/marital", "code": "X"}]}
    issues = check_profiles(other, [], cache=cache(preferred), codes=knows_m_and_male)
    assert [(i.severity, "preferred binding" in i.en) for i in issues if i.severity != "information"] == [
        ("warning", True)
    ]
    # A value set the code check cannot expand: the code is not judged, and that is said (once).
    unknown = found(good_patient(), codes=lambda vs, system, code: None)
    assert [s for s, t in unknown if "cannot be expanded" in t] == ["warning"]


def test_profile_invariant() -> None:
    patient = good_patient()
    patient["telecom"] = [{"system": "phone", "value": "+84 912 345 678"}]
    found = errors(patient)
    assert found == [found[0]] and "Constraint failed: vn-tel-1" in found[0], found


def test_target_profile_of_a_reference() -> None:
    patient = good_patient()
    patient["managingOrganization"] = {"reference": "Practitioner/p1"}
    assert any("points to a Practitioner" in e and "allows Organization" in e for e in errors(patient))
    patient["managingOrganization"] = {"reference": "https://other.example/fhir/Organization/o1"}
    assert errors(patient) == []


def test_closed_slicing_and_the_type_and_exists_discriminators() -> None:
    obs = profile(
        "obs-closed",
        "Observation",
        [
            el(
                "Observation.category",
                slicing={"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "closed"},
            ),
            el(
                "Observation.category:vs",
                sliceName="vs",
                min=1,
                max="1",
                patternCodeableConcept={
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                    ]
                },
            ),
            el(
                "Observation.value[x]",
                slicing={"discriminator": [{"type": "type", "path": "$this"}], "rules": "closed"},
            ),
            el("Observation.value[x]:valueQuantity", sliceName="valueQuantity", type=[{"code": "Quantity"}]),
            el("Observation.value[x]:valueQuantity.unit", min=1),
            el(
                "Observation.component",
                slicing={"discriminator": [{"type": "exists", "path": "dataAbsentReason"}], "rules": "open"},
            ),
            el("Observation.component:missing", sliceName="missing", max="0"),
            el("Observation.component:missing.dataAbsentReason", min=1),
        ],
    )
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"text": "x"},
        "valueQuantity": {"value": 1, "unit": "kg"},
        "component": [{"code": {"text": "a"}, "valueString": "x"}],
    }
    url = (BASE + "obs-closed",)
    assert errors(resource, obs, profiles=url) == []
    extra = copy.deepcopy(resource)
    extra["category"].append({"text": "laboratory"})
    assert any("matches none of the slices" in e and "closed slicing" in e for e in errors(extra, obs, profiles=url))
    no_unit = copy.deepcopy(resource)
    del no_unit["valueQuantity"]["unit"]
    assert any("valueQuantity.unit: at least 1 required" in e for e in errors(no_unit, obs, profiles=url))
    other_type = copy.deepcopy(resource)
    del other_type["valueQuantity"]
    other_type["valueString"] = "heavy"
    assert any("matches none of the slices" in e for e in errors(other_type, obs, profiles=url))
    absent = copy.deepcopy(resource)
    absent["component"][0]["dataAbsentReason"] = {"text": "lost"}
    assert any("Observation.component:missing: at most 0 allowed" in e for e in errors(absent, obs, profiles=url))


def test_a_profile_on_a_profile_constrains_the_slice_its_parent_defined() -> None:
    child = profile(
        "vn-patient-strict",
        "Patient",
        [el("Patient.identifier:bhyt", sliceName="bhyt", min=1), el("Patient.identifier:bhyt.period", min=1)],
        base=BASE + "vn-patient",
    )
    patient = good_patient()
    patient["meta"]["profile"] = [BASE + "vn-patient-strict"]
    expected = "Patient.identifier:bhyt.period: at least 1 required by profile vn-patient-strict, found 0"
    assert errors(patient, child) == [f"{expected} (at Patient.identifier[1].period)"]
    del patient["identifier"][0]  # the parent's cccd slice still applies
    assert any("identifier:cccd: at least 1" in e for e in errors(patient, child))
    compiled = compile_definition(child, LayeredSource([PATIENT, child], PackagedSource()))
    assert set(compiled.root.children["identifier"].slices) == {"cccd", "bhyt"}


def test_differential_without_ids_keeps_slice_context_from_the_element_order() -> None:
    old_style = profile("old", "Patient", [])
    old_style["differential"]["element"] = [
        {"path": "Patient"},
        {
            "path": "Patient.identifier",
            "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"},
        },
        {"path": "Patient.identifier", "sliceName": "cccd", "min": 1},
        {"path": "Patient.identifier.system", "fixedUri": CCCD},
        {"path": "Patient.identifier.value", "min": 1},
        {"path": "Patient.active", "min": 1},
    ]
    patient = good_patient()
    patient["meta"]["profile"] = [BASE + "old"]
    assert errors(patient, old_style) == [
        "Patient.active: at least 1 required by profile old, found 0 (at Patient.active)"
    ]


def test_unknown_profiles_claimed_warn_and_asked_for_fail() -> None:
    patient = good_patient()
    patient["meta"]["profile"].append("http://example.org/unknown")
    assert [s for s, t in problems(patient) if "not known to this server" in t] == ["warning"]
    assert [s for s, t in problems(good_patient(), profiles=("http://example.org/unknown",)) if "not known" in t] == [
        "error"
    ]


def test_wrong_profile_type() -> None:
    assert any(
        "is a Patient, but profile" in e
        for e in errors(good_patient(), profiles=("http://hl7.org/fhir/StructureDefinition/bodytemp",))
    )


def test_r4_core_profile_bodytemp() -> None:
    obs = {
        "resourceType": "Observation",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bodytemp"]},
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2020-01-01",
        "valueQuantity": {"value": 37, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"},
    }
    assert errors(obs) == []
    wrong = copy.deepcopy(obs)
    wrong["code"]["coding"][0]["code"] = "8867-4"  # heart rate
    wrong["effectiveDateTime"] = "2020"
    found = errors(wrong)
    assert any("BodyTempCode: at least 1 required" in e for e in found), found
    assert any("vs-1" in e for e in found), found


EXT = {
    "resourceType": "StructureDefinition",
    "url": BASE + "ext-occupation",
    "name": "Occupation",
    "status": "draft",
    "kind": "complex-type",
    "abstract": False,
    "context": [{"type": "element", "expression": "Patient"}, {"type": "element", "expression": "RelatedPerson"}],
    "type": "Extension",
    "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
    "derivation": "constraint",
    "differential": {
        "element": [
            {"id": "Extension", "path": "Extension"},
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": BASE + "ext-occupation"},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1, "type": [{"code": "CodeableConcept"}]},
        ]
    },
}


def test_extensions_are_checked_against_their_definition_wherever_they_are() -> None:
    patient = good_patient()
    patient["extension"] = [{"url": BASE + "ext-occupation", "valueCodeableConcept": {"text": "Nông dân"}}]
    assert errors(patient, EXT) == []
    patient["extension"][0] = {"url": BASE + "ext-occupation", "valueString": "Nông dân"}
    assert any("type string is not allowed" in e for e in errors(patient, EXT))
    misplaced = good_patient()
    misplaced["name"][0]["extension"] = [{"url": BASE + "ext-occupation", "valueCodeableConcept": {"text": "x"}}]
    found = errors(misplaced, EXT)
    assert any("is not allowed on Patient.name (HumanName)" in e and "element Patient" in e for e in found), found
    unknown = good_patient()
    unknown["extension"] = [{"url": "http://example.org/never-defined", "valueString": "x"}]
    assert errors(unknown, EXT) == []  # R4 allows extensions the server cannot resolve


def test_r4_core_extension_definition() -> None:
    patient = good_patient()
    patient["extension"] = [
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueString": "Hà Nội"}
    ]
    assert any("type string is not allowed" in e for e in errors(patient))
    patient["extension"] = [
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": "Hà Nội"}}
    ]
    assert errors(patient) == []


@pytest.mark.parametrize("name", ["patient", "coverage"])
def test_shipped_packages_profiles_compile(name: str) -> None:
    url = {
        "patient": "http://fhir.ehealth.gov.vn/core/StructureDefinition/vn-core-patient",
        "coverage": "https://fhir.ketnoi.vn/StructureDefinition/ketnoi-coverage-bhyt",
    }[name]
    compiled = ProfileCache(PackagedSource()).get(url)
    assert compiled is not None and compiled.root.children


def test_max_length_and_min_max_values() -> None:
    limits = profile(
        "limits",
        "Observation",
        [
            el("Observation.code.text", maxLength=5),
            el("Observation.valueQuantity", minValueQuantity={"value": 30}, maxValueQuantity={"value": 45}),
            el("Observation.effectiveDateTime", minValueDateTime="2000-01-01"),
        ],
    )
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "temp"},
        "valueQuantity": {"value": 37.5, "unit": "Cel"},
        "effectiveDateTime": "2020-05-05",
    }
    url = (BASE + "limits",)
    assert errors(obs, limits, profiles=url) == []
    bad = copy.deepcopy(obs)
    bad["code"]["text"] = "temperature"
    bad["valueQuantity"]["value"] = 50
    bad["effectiveDateTime"] = "1999-12-31"
    found = errors(bad, limits, profiles=url)
    assert any("is longer than 5 characters" in e for e in found), found
    assert any("is above the maximum 45" in e for e in found), found
    assert any("is below the minimum 2000-01-01" in e for e in found), found


def test_official_examples_conform_to_their_claimed_profiles_and_extension_definitions() -> None:
    """Every official example (but the few the spec ships invalid) passes the profiles it claims
    (the vital signs ones among them) and the definitions of the core extensions it carries, context
    included (contentReference elements such as PlanDefinition.action.action count as the element
    they name)."""
    import orjson

    from ketnoi.terminology.membership import packaged
    from tests.support.fhir_examples import EXAMPLES, FILES, KNOWN_INVALID

    checked = claimed = 0
    for name in FILES:
        if name in KNOWN_INVALID:
            continue
        resource = orjson.loads((EXAMPLES / name).read_bytes())
        claimed += bool((resource.get("meta") or {}).get("profile"))
        found = [i for i in check_profiles(resource, codes=packaged()) if i.severity == "error"]
        assert not found, (name, found[:3])
        checked += 1
    assert checked > 800 and claimed > 10
