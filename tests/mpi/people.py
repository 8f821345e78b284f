"""Patient resources for the matching tests: one person, and the ways a desk writes it again."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
BHYT = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
ADMIN = "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-administrative-address"
TODAY = "https://fhir.ketnoi.vn/CodeSystem/vn-admin-unit-2025"
LEGACY = "https://fhir.ketnoi.vn/CodeSystem/vn-admin-unit-legacy"


def patient(
    family: str = "Nguyễn",
    given: tuple[str, ...] = ("Văn", "Bình"),
    birth: str = "1985-03-07",
    gender: str = "male",
    cccd: str | None = None,
    bhyt: str | None = None,
    phone: str | None = None,
    place: tuple[str, str, str | None] | None = ("01", TODAY, "00004"),
) -> Json:
    """A Patient; ``place`` is (province, system, commune)."""
    resource: Json = {
        "resourceType": "Patient",
        "name": [{"use": "official", "text": " ".join((family, *given)), "family": family, "given": list(given)}],
        "gender": gender,
        "birthDate": birth,
    }
    identifiers = [{"system": CCCD, "value": cccd}] if cccd else []
    identifiers += [{"system": BHYT, "value": bhyt}] if bhyt else []
    if identifiers:
        resource["identifier"] = identifiers
    if phone:
        resource["telecom"] = [{"system": "phone", "value": phone}]
    if place:
        province, system, commune = place
        parts = [("state", province)] + ([("ward", commune)] if commune else [])
        resource["address"] = [
            {
                "extension": [
                    {
                        "url": ADMIN,
                        "extension": [
                            {"url": url, "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}
                            for url, code in parts
                        ],
                    }
                ]
            }
        ]
    return resource
