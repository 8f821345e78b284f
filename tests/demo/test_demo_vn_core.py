"""The demo data speak VN Core: its identifier systems, its ethnic-group and administrative-address
extensions, with codes that exist in the code systems ketnoi ships and identifiers that pass the
Vietnamese identifier rules (issue 11); and every resource conforms, with no error, to the VN Core
profile of its kind (ketnoi's own BHYT profile for Coverage)."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from ketnoi.demo import people, places
from ketnoi.demo.duplicates import ERROR_KINDS
from ketnoi.demo.generate import iter_blocks_truth
from ketnoi.demo.profiles import CONDITION_PROFILES, PROFILES, VN_CORE, codes_of, profile_for
from ketnoi.terminology.membership import packaged
from ketnoi.terminology.vn import vn_resources
from ketnoi.validation import check_profiles
from ketnoi.vn.identifiers import rule_for

NATIONAL_ID = "http://fhir.ehealth.gov.vn/core/sid/national_id"
INSURANCE = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
PROVIDER_CODE = "http://fhir.ehealth.gov.vn/core/sid/provider-code"


def _code_system(url: str) -> dict[str, Any]:
    return next(r for r in vn_resources() if r.get("resourceType") == "CodeSystem" and r.get("url") == url)


def _units() -> dict[str, str]:
    """Code → display of every province and commune of 2025."""
    found: dict[str, str] = {}
    for province in _code_system(people.ADMIN_UNIT_SYSTEM)["concept"]:
        found[province["code"]] = province["display"]
        for commune in province.get("concept", []):
            found[commune["code"]] = commune["display"]
    return found


def test_every_listed_commune_is_a_2025_commune_of_its_province() -> None:
    for province in _code_system(people.ADMIN_UNIT_SYSTEM)["concept"]:
        listed = places.PROVINCE_BY_CODE.get(province["code"])
        if listed is None:
            continue
        members = {c["code"]: c["display"] for c in province.get("concept", [])}
        for name, code in zip(listed.communes, listed.commune_codes, strict=True):
            assert members.get(code) == name, (province["display"], name, code)
    assert {p.code for p in places.PROVINCES} <= set(_units())


def test_coded_extensions_use_shipped_codes(ndjson_resources: list[dict[str, Any]]) -> None:
    units = _units()
    ethnic = {c["code"]: c["display"] for c in _code_system(people.ETHNICITY_SYSTEM)["concept"]}
    patients = [r for r in ndjson_resources if r["resourceType"] == "Patient"]
    addresses = [
        a for r in ndjson_resources if r["resourceType"] in ("Patient", "Organization") for a in r.get("address", [])
    ]
    addresses += [r["address"] for r in ndjson_resources if r["resourceType"] == "Location" and "address" in r]
    assert patients and addresses
    for patient in patients:
        (race,) = [e for e in patient["extension"] if e["url"] == people.ETHNICITY_URL]
        (coding,) = race["valueCodeableConcept"]["coding"]
        assert coding["system"] == people.ETHNICITY_SYSTEM and ethnic[coding["code"]] == coding["display"]
    legacy = {p["code"]: p["display"] for p in _code_system(people.ADMIN_LEGACY_SYSTEM)["concept"]}
    for address in addresses:
        (admin,) = [e for e in address["extension"] if e["url"] == people.ADMIN_ADDRESS_URL]
        parts = {p["url"]: p["valueCodeableConcept"]["coding"][0] for p in admin["extension"]}
        assert set(parts) <= {"state", "ward"} and "state" in parts
        if parts["state"]["system"] == people.ADMIN_LEGACY_SYSTEM:  # a duplicate's old_address_codes
            assert set(parts) == {"state"} and legacy[parts["state"]["code"]] == parts["state"]["display"]
            continue
        for coding in parts.values():
            assert coding["system"] == people.ADMIN_UNIT_SYSTEM and units[coding["code"]] == coding["display"]
        if "ward" in parts:
            assert parts["ward"]["display"] == address["city"]


def test_identifiers_use_vn_core_systems_and_pass_the_rules(ndjson_resources: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for resource in ndjson_resources:
        for identifier in resource.get("identifier", []):
            system = identifier.get("system", "")
            rule = rule_for(system)
            if rule is None:
                continue
            seen[system] = seen.get(system, 0) + 1
            assert rule.validate(identifier["value"]) == [], (system, identifier["value"])
    assert {NATIONAL_ID, INSURANCE, PROVIDER_CODE} <= set(seen), seen


# ---- VN Core profiles: every demo resource conforms to the profile of its kind --------------------------


def profile_errors(resource: dict[str, Any], profile: str | None) -> list[str]:
    issues = check_profiles(resource, [profile] if profile else [], codes=packaged())
    return [i.en for i in issues if i.severity in ("error", "fatal")]


def test_every_resource_conforms_to_its_vn_core_profile(ndjson_resources: list[dict[str, Any]]) -> None:
    checked: Counter[str] = Counter()
    failures = []
    for resource in ndjson_resources:
        profile = profile_for(resource)
        checked[profile or resource["resourceType"]] += 1
        errors = profile_errors(resource, profile)
        if errors:
            failures.append((resource["resourceType"], resource["id"], errors[:3]))
    assert not failures, (len(failures), failures[:5])
    assert set(PROFILES.values()) | set(CONDITION_PROFILES.values()) | {VN_CORE + "vn-core-provider"} <= set(checked)
    assert checked[VN_CORE + "vn-core-healthcare-department"] > 0
    assert checked["Organization"] == 36  # only the Ministry, the 34 Sở Y tế and the payer have no profile


def test_hard_duplicates_and_twins_conform_too() -> None:
    """Every error kind (a year-only birthDate, the legacy province code system, +84 phones, missing
    identifiers, names in the wrong order) and the twins still conform to VN Core's Patient profile."""
    patients, kinds, twins = [], set(), 0
    for block in iter_blocks_truth(400, 34, 1.0, hard=True):
        assert block.duplicate is not None
        kinds.update(block.duplicate.errors)
        twins += block.twin is not None
        patients += [r for r in block.resources[1:] if r["resourceType"] == "Patient"]
    assert kinds == set(ERROR_KINDS) and twins > 0
    failures = [(p["id"], errors) for p in patients if (errors := profile_errors(p, profile_for(p)))]
    assert not failures, failures[:3]


@pytest.mark.parametrize(
    ("rtype", "mutate", "expected"),
    [
        ("Encounter", lambda r: r.pop("diagnosis"), "Encounter.diagnosis:ChiefComplaint_CDBenhChinh"),
        ("Encounter", lambda r: r["diagnosis"][0].update(rank=1), "rank"),
        ("Immunization", lambda r: r.pop("encounter"), "Immunization.encounter"),
        ("MedicationRequest", lambda r: r.pop("performer"), "MedicationRequest.performer"),
        ("Patient", lambda r: r["identifier"][0]["type"].update(text="CCCD"), "Patient.identifier[0].type"),
        ("Organization", lambda r: r["type"].append(r["type"][0]), "Organization.type"),
    ],
)
def test_the_check_catches_a_broken_resource(
    ndjson_resources: list[dict[str, Any]], rtype: str, mutate: Callable[[dict[str, Any]], object], expected: str
) -> None:
    """Negative control: the profile check above does fail, on one resource broken the way VN Core forbids."""
    resource = copy.deepcopy(next(r for r in ndjson_resources if r["resourceType"] == rtype and profile_for(r)))
    profile = profile_for(resource)
    assert profile_errors(resource, profile) == []
    mutate(resource)
    errors = profile_errors(resource, profile)
    assert errors and any(expected in e for e in errors), errors


def test_encounters_and_their_conditions_point_at_each_other(ndjson_resources: list[dict[str, Any]]) -> None:
    """Each Condition's encounter lists it; each Encounter has one chief complaint; a vaccination visit's
    is the ICD-10 need for immunization (Z23-Z27)."""
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in ndjson_resources}
    listed: dict[str, set[str]] = {}
    for encounter in (r for r in ndjson_resources if r["resourceType"] == "Encounter"):
        uses = [codes_of([d["use"]]) for d in encounter["diagnosis"]]
        assert uses[0] == ["CC"] and all(u == ["CM"] for u in uses[1:])
        listed[f"Encounter/{encounter['id']}"] = {d["condition"]["reference"] for d in encounter["diagnosis"]}
    for condition in (r for r in ndjson_resources if r["resourceType"] == "Condition"):
        assert f"Condition/{condition['id']}" in listed[condition["encounter"]["reference"]]
    for immunization in (r for r in ndjson_resources if r["resourceType"] == "Immunization"):
        encounter = by_ref[immunization["encounter"]["reference"]]
        chief = by_ref[encounter["diagnosis"][0]["condition"]["reference"]]
        assert chief["code"]["coding"][0]["code"][:3] in ("Z23", "Z24", "Z25", "Z26", "Z27")
        assert encounter["period"]["start"][:10] == immunization["occurrenceDateTime"]
        assert encounter["location"][0]["location"] == immunization["location"]
