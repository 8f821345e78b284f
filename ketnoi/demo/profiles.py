"""Which profile each demo resource conforms to: VN Core's, and ketnoi's BHYT Coverage where VN Core
has none (tests/demo/test_demo_vn_core.py checks every resource against it; bench/validate.py
measures validation with it). The demo data do not claim these in ``meta.profile`` (ADR 0021)."""

from __future__ import annotations

from typing import Any

VN_CORE = "http://fhir.ehealth.gov.vn/core/StructureDefinition/"
PROFILES: dict[str, str] = {
    "Patient": VN_CORE + "vn-core-patient",
    "Encounter": VN_CORE + "vn-core-encounter",
    "MedicationRequest": VN_CORE + "vn-core-medication-request",
    "Immunization": VN_CORE + "vn-core-immunization",
    "Observation": VN_CORE + "vn-core-obervation-result-base",  # sic: the IG's id
    "Practitioner": VN_CORE + "vn-core-practitioner",
    "PractitionerRole": VN_CORE + "vn-core-practitioner-role",
    "Location": VN_CORE + "vn-core-location",
    "Coverage": "https://fhir.ketnoi.vn/StructureDefinition/ketnoi-coverage-bhyt",  # VN Core has none
}
CONDITION_PROFILES: dict[str, str] = {
    "problem-list-item": VN_CORE + "vn-core-condition-problemlist",
    "encounter-diagnosis": VN_CORE + "vn-core-condition-encounter-diagnosis",
}
ORGANIZATION_PROFILES: dict[str, str | None] = {
    "prov": VN_CORE + "vn-core-provider",  # facilities
    "dept": VN_CORE + "vn-core-healthcare-department",  # hospital departments
    "govt": None,  # Bộ Y tế and the Sở Y tế: no VN Core profile fits a health authority
    "pay": None,  # Bảo hiểm xã hội Việt Nam: nor a payer
}


def codes_of(concepts: list[dict[str, Any]]) -> list[str]:
    """The codes of a list of CodeableConcepts, in order."""
    return [c.get("code", "") for cc in concepts for c in cc.get("coding", [])]


def profile_for(resource: dict[str, Any]) -> str | None:
    """The profile ``resource`` conforms to; None for a type or kind no profile here fits (the
    Ministry, the Sở Y tế and the payer among the demo's organizations; other data's types)."""
    rtype = resource["resourceType"]
    if rtype == "Condition":
        found = [CONDITION_PROFILES[c] for c in codes_of(resource.get("category", [])) if c in CONDITION_PROFILES]
        return found[0] if found else None
    if rtype == "Organization":
        kinds = [ORGANIZATION_PROFILES[c] for c in codes_of(resource.get("type", [])) if c in ORGANIZATION_PROFILES]
        return kinds[0] if kinds else None
    return PROFILES.get(rtype)
