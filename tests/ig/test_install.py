"""Installing FHIR NPM packages (ketnoi.ig.install, ``ketnoi ig``) on both backends, and conformance
resources written through the API."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ketnoi.fhir import packages
from ketnoi.ig.install import InstallRefused, derived_id, install, installed
from ketnoi.ig.npm import read_package
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from tests.ig import archive, code_system, manifest, package, search_parameter, value_set

ROOT = Path(__file__).resolve().parents[2]
CS = "http://example.org/CodeSystem/colour"
VS = "http://example.org/ValueSet/colours"
SHIPPED_CS = "http://fhir.ehealth.gov.vn/core/CodeSystem/vn-core-administrative-address"


def structure_definition(id: str, url: str) -> dict[str, Any]:
    """A differential profile, made from one the shipped VN Core package has."""
    shipped = next(r for r in packages.shipped_resources() if r["resourceType"] == "StructureDefinition")
    sd = copy.deepcopy(shipped)
    sd.update(id=id, url=url, name=id.replace("-", "").capitalize())
    return sd


def valid_resources() -> list[dict[str, Any]]:
    return [
        code_system("colour", CS),
        value_set("colours", VS, CS),
        structure_definition("test-profile", "http://example.org/StructureDefinition/test-profile"),
        search_parameter("test-nickname"),
        {
            "resourceType": "NamingSystem",
            "id": "test-ids",
            "name": "TestIds",
            "status": "active",
            "kind": "identifier",
            "date": "2024-01-01",
            "uniqueId": [{"type": "uri", "value": "http://example.org/ids"}],
        },
        {"resourceType": "Patient", "id": "example"},  # not a conformance resource: ignored
    ]


def get(services: Services, path: str, **query: str) -> FhirResponse:
    return handle(services, FhirRequest("GET", path, list(query.items())))


def found(services: Services, rtype: str, **query: str) -> list[dict[str, Any]]:
    response = get(services, rtype, **query)
    assert response.status == 200, response.resource
    assert response.resource is not None
    return [entry["resource"] for entry in response.resource.get("entry", [])]


def versions(services: Services, rtype: str, id: str) -> int:
    response = get(services, f"{rtype}/{id}/_history")
    assert response.resource is not None
    return int(response.resource["total"])


# ---- the install, in process, on both backends ---------------------------------------------------


def test_install_registers_through_the_write_path_and_twice_changes_nothing(
    fresh_services: Services, tmp_path: Path
) -> None:
    pkg = read_package(package(tmp_path / "p.tgz", valid_resources()))
    report = install(fresh_services, pkg, by="tester")
    assert sorted(report.written) == [
        "CodeSystem/colour",
        "NamingSystem/test-ids",
        "SearchParameter/test-nickname",
        "StructureDefinition/test-profile",
        "ValueSet/colours",
    ]
    assert report.ignored == ["Patient (Patient-example.json)"] and not report.already_installed
    # ordinary resources: searchable by url, tagged with their package
    [cs] = found(fresh_services, "CodeSystem", url=CS)
    assert {"system": "https://fhir.ketnoi.vn/CodeSystem/ig-package", "code": "example.fhir.test#1.0.0"} in cs["meta"][
        "tag"
    ]
    assert [r["id"] for r in found(fresh_services, "ValueSet", url=VS)] == ["colours"]
    assert (
        len(found(fresh_services, "StructureDefinition", url="http://example.org/StructureDefinition/test-profile"))
        == 1
    )
    assert (
        len(
            found(
                fresh_services,
                "CodeSystem",
                _tag="https://fhir.ketnoi.vn/CodeSystem/ig-package|example.fhir.test#1.0.0",
            )
        )
        == 1
    )
    # the SearchParameter is live
    put = handle(
        fresh_services,
        FhirRequest("PUT", "Patient/p1", body={"resourceType": "Patient", "id": "p1", "name": [{"given": ["Tí"]}]}),
    )
    assert put.status in (200, 201)
    assert [r["id"] for r in found(fresh_services, "Patient", **{"test-nickname": "Tí"})] == ["p1"]
    # the record
    [record] = installed(fresh_services.store)
    assert (record.label, record.resources, record.installed_by) == ("example.fhir.test#1.0.0", 5, "tester")
    assert record.dependencies == {"hl7.fhir.r4.core": "4.0.1"} and record.canonical == pkg.canonical
    # again: nothing written, no new version, the record as it was
    again = install(fresh_services, pkg, by="someone else")
    assert again.written == [] and len(again.unchanged) == 5 and again.already_installed
    assert versions(fresh_services, "CodeSystem", "colour") == 1
    assert versions(fresh_services, "NamingSystem", "test-ids") == 1
    assert [r.installed_by for r in installed(fresh_services.store)] == ["tester"]


def test_an_id_taken_by_another_resource_is_never_overwritten(fresh_services: Services, tmp_path: Path) -> None:
    mine = code_system("colour", "http://example.org/CodeSystem/mine")
    assert handle(fresh_services, FhirRequest("PUT", "CodeSystem/colour", body=mine)).status == 201
    pkg = read_package(package(tmp_path / "p.tgz", [code_system("colour", CS)]))
    report = install(fresh_services, pkg, by="tester")
    derived = derived_id(pkg, "CodeSystem", "colour")
    assert report.written == [f"CodeSystem/{derived}"] and derived.startswith("colour-") and len(derived) == 15
    assert found(fresh_services, "CodeSystem", url="http://example.org/CodeSystem/mine")[0]["id"] == "colour"
    assert versions(fresh_services, "CodeSystem", "colour") == 1
    assert install(fresh_services, pkg, by="tester").unchanged == [f"CodeSystem/{derived}"]
    # two versions of one package: both kept, the second at a derived id
    newer = read_package(package(tmp_path / "p2.tgz", [code_system("colour", CS, version="2.0")], version="2.0.0"))
    assert install(fresh_services, newer, by="tester").written == [
        f"CodeSystem/{derived_id(newer, 'CodeSystem', 'colour')}"
    ]
    assert {r["version"] for r in found(fresh_services, "CodeSystem", url=CS)} == {"1.0", "2.0"}


def test_conflicts_are_refused_naming_both_and_write_nothing(fresh_services: Services, tmp_path: Path) -> None:
    first = read_package(package(tmp_path / "a.tgz", [code_system("colour", CS)], name="example.fhir.first"))
    install(fresh_services, first, by="tester")
    other = [value_set("other", "http://example.org/ValueSet/other", CS), code_system("colour", CS, code="b")]
    second = read_package(package(tmp_path / "b.tgz", other, name="example.fhir.second"))
    with pytest.raises(InstallRefused) as caught:
        install(fresh_services, second, by="tester")
    message = str(caught.value)
    assert f"CodeSystem {CS}|1.0 of example.fhir.second#1.0.0 (CodeSystem-colour.json) differs from" in message
    assert "CodeSystem/colour of package example.fhir.first#1.0.0" in message
    assert found(fresh_services, "ValueSet", url="http://example.org/ValueSet/other") == []  # rolled back
    assert [r.name for r in installed(fresh_services.store)] == ["example.fhir.first"]
    # against a shipped package (never written into the database)
    shipped = copy.deepcopy(packages.find("CodeSystem", SHIPPED_CS, "1.0"))
    assert shipped is not None
    shipped["title"] = "Changed"
    third = read_package(package(tmp_path / "c.tgz", [shipped], name="example.fhir.third"))
    with pytest.raises(
        InstallRefused, match=r"differs from the one of the shipped package hl7\.fhir\.vn\.core#1\.0\.0"
    ):
        install(fresh_services, third, by="tester")
    # an invalid resource: refused, naming its file
    bad = read_package(package(tmp_path / "d.tgz", [{"resourceType": "ValueSet", "id": "bad", "status": "nonsense"}]))
    with pytest.raises(InstallRefused, match=r"example\.fhir\.test#1\.0\.0 \(ValueSet-bad\.json\)"):
        install(fresh_services, bad, by="tester")


def test_dependencies(fresh_services: Services, tmp_path: Path) -> None:
    needs = {"hl7.fhir.r4.core": "4.0.1", "example.fhir.base": "1.0.0", "hl7.fhir.vn.core": "1.0.0"}
    dependent = read_package(package(tmp_path / "d.tgz", [code_system("x", CS)], dependencies=needs))
    with pytest.raises(InstallRefused, match=r"depends on example\.fhir\.base#1\.0\.0, which is neither"):
        install(fresh_services, dependent, by="tester")
    base = read_package(package(tmp_path / "b.tgz", [], name="example.fhir.base"))
    install(fresh_services, base, by="tester")
    assert install(fresh_services, dependent, by="tester").missing_allowed == []  # installed and shipped ones count
    other = read_package(
        package(tmp_path / "o.tgz", [], name="example.fhir.other", dependencies={"example.fhir.absent": "2.0.0"})
    )
    report = install(fresh_services, other, by="tester", allow_missing=["example.fhir.absent"])
    assert report.missing_allowed == ["example.fhir.absent#2.0.0"]
    recorded = {r.name: r.missing_dependencies for r in installed(fresh_services.store)}
    assert recorded["example.fhir.other"] == ["example.fhir.absent#2.0.0"]


def test_conformance_resources_written_through_the_api_are_found_by_url(fresh_services: Services) -> None:
    sd = structure_definition("api-profile", "http://example.org/StructureDefinition/api-profile")
    del sd["id"]
    vs = value_set("x", "http://example.org/ValueSet/api", CS)
    del vs["id"]
    for body in (sd, vs):
        response = handle(fresh_services, FhirRequest("POST", body["resourceType"], body=body))
        assert response.status == 201, response.resource
    assert (
        len(found(fresh_services, "StructureDefinition", url="http://example.org/StructureDefinition/api-profile")) == 1
    )
    assert len(found(fresh_services, "ValueSet", url="http://example.org/ValueSet/api")) == 1


# ---- the command line, on a SQLite database ------------------------------------------------------


def ketnoi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ketnoi", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=120,
    )


def test_the_ig_commands(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ig.db'}"
    assert ketnoi("migrate", "--database", database).returncode == 0
    valid = package(tmp_path / "valid.tgz", valid_resources())
    done = ketnoi("ig", "install", str(valid), "--database", database)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "example.fhir.test#1.0.0: 5 resources written, 0 unchanged, 1 ignored"
    assert "ignored (not a registered type): 1 Patient" in done.stdout
    again = ketnoi("ig", "install", str(valid), "--database", database)
    assert again.stdout.splitlines()[0].startswith(
        "example.fhir.test#1.0.0: already installed, 0 resources written, 5 unchanged"
    )

    def refused(path: Path, *extra: str) -> str:
        result = ketnoi("ig", "install", str(path), "--database", database, *extra)
        assert result.returncode == 2 and result.stdout == ""
        errors = [line for line in result.stderr.splitlines() if " INFO " not in line]  # logging aside
        assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
        return errors[0]

    missing = package(tmp_path / "m.tgz", [], name="example.fhir.needy", dependencies={"example.fhir.gone": "1.0.0"})
    assert "depends on example.fhir.gone#1.0.0" in refused(missing)
    evil = archive(tmp_path / "evil.tgz", {"package/package.json": manifest(), "../evil": b"x"})
    assert "unsafe file name '../evil'" in refused(evil)
    assert not (tmp_path / "evil").exists()
    clash = package(tmp_path / "clash.tgz", [code_system("colour", CS, code="z")], name="example.fhir.clash")
    assert "of package example.fhir.test#1.0.0" in refused(clash)
    allowed = ketnoi(
        "ig", "install", str(missing), "--database", database, "--allow-missing-dependency", "example.fhir.gone"
    )
    assert (
        allowed.returncode == 0
        and "missing dependencies allowed and recorded: example.fhir.gone#1.0.0" in allowed.stdout
    )

    listed = ketnoi("ig", "list", "--database", database)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("hl7.fhir.vn.core#1.0.0  shipped (available in every database)  105 resources")
    assert lines[1].startswith("ketnoi.fhir.vn#0.1.0  shipped (available in every database)  8 resources")
    assert lines[2].startswith("example.fhir.needy#1.0.0  installed ") and lines[2].endswith(
        "missing: example.fhir.gone#1.0.0"
    )
    assert lines[3].startswith("example.fhir.test#1.0.0  installed ") and "5 resources" in lines[3]
    assert len(lines) == 4
