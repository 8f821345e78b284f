"""The demo data speak VN Core: its identifier systems, its ethnic-group and administrative-address
extensions, with codes that exist in the code systems ketnoi ships and identifiers that pass the
Vietnamese identifier rules (issue 11)."""

from __future__ import annotations

from typing import Any

from ketnoi.demo import people, places
from ketnoi.terminology.vn import vn_resources
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
    for address in addresses:
        (admin,) = [e for e in address["extension"] if e["url"] == people.ADMIN_ADDRESS_URL]
        parts = {p["url"]: p["valueCodeableConcept"]["coding"][0] for p in admin["extension"]}
        assert set(parts) <= {"state", "ward"} and "state" in parts
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
