"""Profiles on the write path and in $validate, on both backends: a profile installed from a package
or created through the API, claimed in meta.profile (refused under KETNOI_VALIDATION=strict, stored
with warnings under lenient), a binding decided by the terminology service over the database's
ValueSets, and $validate's profile= and mode= (ADR 0021)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ketnoi.app import build_services, stop_services
from ketnoi.ig.install import install
from ketnoi.ig.npm import read_package
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from tests.ig import code_system, package, value_set

PROFILE = "http://example.org/fhir/StructureDefinition/colour-patient"
CS = "http://example.org/CodeSystem/colour"
VS = "http://example.org/ValueSet/colours"


def colour_profile(url: str = PROFILE, min_birth: int = 1) -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "id": url.rpartition("/")[2],
        "url": url,
        "version": "1.0",
        "name": "ColourPatient",
        "status": "draft",
        "kind": "resource",
        "abstract": False,
        "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "derivation": "constraint",
        "differential": {
            "element": [
                {"id": "Patient", "path": "Patient"},
                {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": min_birth},
                {
                    "id": "Patient.maritalStatus",
                    "path": "Patient.maritalStatus",
                    "binding": {"strength": "required", "valueSet": VS},
                },
            ]
        },
    }


def send(services: Services, method: str, path: str, body: Any = None, **query: str) -> FhirResponse:
    request = FhirRequest(method, path, list(query.items()), {"prefer": "return=OperationOutcome"}, body)
    return handle(services, request)


def patient(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "meta": {"profile": [PROFILE]}, "gender": "female", **extra}


def texts(response: FhirResponse, severity: str) -> list[str]:
    assert response.resource is not None
    return [str(i.get("diagnostics")) for i in response.resource.get("issue", []) if i["severity"] == severity]


def test_claimed_profile_from_an_installed_package(fresh_services: Services, tmp_path: Path) -> None:
    pkg = read_package(
        package(tmp_path / "p.tgz", [colour_profile(), code_system("colour", CS), value_set("colours", VS, CS)])
    )
    install(fresh_services, pkg, by="tester")
    good = patient(birthDate="2001-02-03", maritalStatus={"coding": [{"system": CS, "code": "a"}]})
    assert send(fresh_services, "POST", "Patient", good).status == 201
    broken = patient(maritalStatus={"coding": [{"system": CS, "code": "zz"}]})
    # lenient (the default): stored, the profile's errors come back as warnings
    stored = send(fresh_services, "POST", "Patient", broken)
    assert stored.status == 201
    warnings = texts(stored, "warning")
    assert any("Patient.birthDate: at least 1 required by profile ColourPatient" in w for w in warnings), warnings
    assert any(f"{CS}|zz is not in the value set {VS}" in w for w in warnings), warnings
    # strict: refused, nothing stored
    strict = build_services(replace(fresh_services.settings, validation="strict"), fresh_services.store)
    try:
        before = send(strict, "GET", "Patient", _summary="count").resource
        refused = send(strict, "POST", "Patient", broken)
        assert refused.status == 400
        assert any("birthDate: at least 1 required" in e for e in texts(refused, "error"))
        assert send(strict, "POST", "Patient", good).status == 201
        after = send(strict, "GET", "Patient", _summary="count").resource
        assert before is not None and after is not None and after["total"] == before["total"] + 1
    finally:
        stop_services(strict)


def test_a_profile_created_through_the_api_applies_to_the_next_write(fresh_services: Services) -> None:
    url = "http://example.org/fhir/StructureDefinition/api-patient"
    first = patient(meta={"profile": [url]})
    unknown = send(fresh_services, "POST", "Patient", first)
    assert unknown.status == 201
    assert any("is not known to this server" in w for w in texts(unknown, "warning"))
    assert send(fresh_services, "PUT", "StructureDefinition/api-patient", colour_profile(url)).status in (200, 201)
    now = send(fresh_services, "POST", "Patient", first)
    assert any("birthDate: at least 1 required" in w for w in texts(now, "warning")), texts(now, "warning")
    # A changed profile is used at once (the write hook drops the compiled one).
    assert (
        send(fresh_services, "PUT", "StructureDefinition/api-patient", colour_profile(url, min_birth=0)).status == 200
    )
    assert not any("birthDate" in w for w in texts(send(fresh_services, "POST", "Patient", first), "warning"))


def test_validate_with_profile_and_mode(fresh_services: Services) -> None:
    assert send(fresh_services, "PUT", "StructureDefinition/colour-patient", colour_profile()).status in (200, 201)
    plain = {"resourceType": "Patient", "gender": "male"}
    checked = send(fresh_services, "POST", "Patient/$validate", plain, profile=PROFILE)
    assert checked.status == 200
    assert any("birthDate: at least 1 required" in e for e in texts(checked, "error"))  # asked: an error
    assert texts(send(fresh_services, "POST", "Patient/$validate", plain), "error") == []
    unknown = send(fresh_services, "POST", "Patient/$validate", plain, profile="http://example.org/nothing")
    assert any("is not known to this server" in e for e in texts(unknown, "error"))
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": plain},
            {"name": "profile", "valueCanonical": PROFILE},
            {"name": "mode", "valueCode": "update"},
        ],
    }
    both = send(fresh_services, "POST", "Patient/$validate", params)
    assert any("An update needs the resource's id" in e for e in texts(both, "error"))
    assert any("birthDate" in e for e in texts(both, "error"))
    created = send(fresh_services, "POST", "Patient", {"resourceType": "Patient"})
    assert created.status == 201
    pid = created.headers["Location"].split("/Patient/")[1].split("/")[0]
    mismatch = send(fresh_services, "POST", f"Patient/{pid}/$validate", {**plain, "id": "other"}, mode="update")
    assert any(f"id to be '{pid}'" in e for e in texts(mismatch, "error"))
    stored = send(fresh_services, "POST", f"Patient/{pid}/$validate", None, profile=PROFILE)  # the stored one
    assert any("birthDate: at least 1 required" in e for e in texts(stored, "error"))
    deletable = send(fresh_services, "POST", f"Patient/{pid}/$validate", None, mode="delete")
    assert deletable.status == 200 and any("can be deleted" in t for t in texts(deletable, "information"))
    assert send(fresh_services, "POST", "Patient/nope/$validate", None, mode="delete").status == 404
    assert send(fresh_services, "POST", "Patient/$validate", plain, mode="remove").status == 400
    noted = send(fresh_services, "POST", "Patient/$validate", {**plain, "id": "x"}, mode="create")
    assert any("would be ignored" in t for t in texts(noted, "information"))
