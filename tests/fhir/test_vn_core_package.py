"""The VN Core package ketnoi ships (ketnoi/fhir/packages) and the script that builds it."""

from __future__ import annotations

import copy
import gzip
import importlib.util
import io
import sys
import tarfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from ketnoi.fhir.definitions import load
from ketnoi.validation import validate

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "ketnoi" / "fhir" / "packages"
SHIPPED = PACKAGES / "hl7.fhir.vn.core-1.0.0.tgz"
REPORT = ROOT / "docs" / "vn-core-report.md"
IPS = "http://hl7.org/fhir/uv/ips/"  # the canonical base of the declared hl7.fhir.uv.ips dependency
CANONICAL_TYPES = {"StructureDefinition", "CodeSystem", "ValueSet", "ImplementationGuide"}


@cache
def script() -> ModuleType:
    """scripts/build_vn_core.py, imported (registered first: its dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location("build_vn_core", ROOT / "scripts" / "build_vn_core.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@cache
def members() -> dict[str, bytes]:
    """Name (below package/) → content of every file in the shipped archive."""
    with tarfile.open(SHIPPED, "r:gz") as tar:
        out = {}
        for info in tar.getmembers():
            extracted = tar.extractfile(info)
            assert extracted is not None and info.name.startswith("package/")
            out[info.name.removeprefix("package/")] = extracted.read()
        return out


def resources() -> dict[str, dict[str, Any]]:
    return {name: orjson.loads(data) for name, data in members().items() if name not in ("package.json", ".index.json")}


def source_folder() -> Path:
    source: Path = script().DEFAULT_SOURCE
    if not (source / "input").is_dir():
        pytest.skip(f"the draft IG sources are not at {source}")
    return source


# --- the archive ------------------------------------------------------------------------------------


def test_shipped_archive_is_what_the_script_builds(tmp_path: Path) -> None:
    built = script().build(source_folder(), tmp_path / "a")
    assert built.name == SHIPPED.name
    data, shipped = built.read_bytes(), SHIPPED.read_bytes()
    # The tar inside and the gzip header must be identical. The deflate stream itself is compared only
    # against a second build: another zlib build (zlib-ng...) may compress the same bytes differently.
    assert gzip.decompress(data) == gzip.decompress(shipped), "rebuild: .venv/bin/python scripts/build_vn_core.py"
    assert data[:10] == shipped[:10]
    assert script().build(source_folder(), tmp_path / "b").read_bytes() == data


def test_archive_is_reproducible_by_construction() -> None:
    data = SHIPPED.read_bytes()
    assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\0\0\0\0"  # gzip, no timestamp
    with tarfile.open(SHIPPED, "r:gz") as tar:
        infos = tar.getmembers()
    names = [info.name for info in infos]
    assert names == sorted(names)
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {
        (script().TAR_MTIME, 0, 0, "", "", 0o644)
    }
    assert all(info.isfile() for info in infos)


def test_a_correction_that_no_longer_applies_stops_the_build() -> None:
    build = script()
    corrected = build.read_sources(source_folder())
    build.correct(corrected)
    with pytest.raises(build.BuildError):
        build.correct(corrected)


# --- package.json and .index.json -------------------------------------------------------------------


def test_manifest() -> None:
    manifest = orjson.loads(members()["package.json"])
    assert manifest["name"] == "hl7.fhir.vn.core"
    assert manifest["version"] == "1.0.0"
    assert SHIPPED.name == f"{manifest['name']}-{manifest['version']}.tgz"
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["canonical"] == "http://fhir.ehealth.gov.vn/core"
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1", "hl7.fhir.uv.ips": "1.0.0"}
    assert manifest["description"]
    guide = resources()["ImplementationGuide-hl7.fhir.vn.core.json"]
    assert (guide["packageId"], guide["version"]) == (manifest["name"], manifest["version"])
    assert {d["packageId"]: d["version"] for d in guide["dependsOn"]}.items() <= manifest["dependencies"].items()


def test_index_lists_every_resource_file_consistently() -> None:
    index = orjson.loads(members()[".index.json"])
    assert index["index-version"] == 1
    entries = {entry["filename"]: entry for entry in index["files"]}
    assert len(entries) == len(index["files"])
    assert entries.keys() == resources().keys()
    for filename, res in resources().items():
        entry = entries[filename]
        assert filename == f"{res['resourceType']}-{res['id']}.json"
        assert (entry["resourceType"], entry["id"]) == (res["resourceType"], res["id"])
        for key in ("url", "version", "kind", "type"):
            if key in entry:
                assert entry[key] == res[key], (filename, key)
        if res["resourceType"] == "StructureDefinition":
            assert (entry["url"], entry["kind"], entry["type"]) == (res["url"], res["kind"], res["type"])


# --- the resources ------------------------------------------------------------------------------------


def test_resources_have_type_id_and_url() -> None:
    found = resources()
    assert len(found) == 105
    urls = [res["url"] for res in found.values() if "url" in res]
    assert len(urls) == len(set(urls))
    for filename, res in found.items():
        assert res["resourceType"] and res["id"], filename
        if res["resourceType"] in CANONICAL_TYPES:
            assert res["url"].startswith("http"), filename
            assert res["status"] in ("draft", "active"), filename
        if res["resourceType"] == "NamingSystem":
            assert res["uniqueId"] and res["kind"] == "identifier", filename
    unique_ids = [
        u["value"] for res in found.values() if res["resourceType"] == "NamingSystem" for u in res["uniqueId"]
    ]
    assert len(unique_ids) == len(set(unique_ids))


def test_structure_definitions_are_complete() -> None:
    definitions = [res for res in resources().values() if res["resourceType"] == "StructureDefinition"]
    assert len(definitions) == 65
    for sd in definitions:
        assert "snapshot" in sd or "differential" in sd, sd["id"]
        assert sd["baseDefinition"].startswith("http"), sd["id"]
        assert sd["fhirVersion"] == "4.0.1" and sd["kind"] and sd["type"] and sd["derivation"] == "constraint"
        paths = [element["path"] for element in sd["differential"]["element"]]
        assert all(path.split(".")[0] == sd["type"] for path in paths), sd["id"]


def test_every_resource_passes_structural_validation() -> None:
    problems = {
        name: [issue.text for issue in validate(res) if issue.severity in ("error", "fatal")]
        for name, res in resources().items()
    }
    assert {name: found for name, found in problems.items() if found} == {}


@cache
def core_urls() -> frozenset[str]:
    return frozenset(
        entry["resource"]["url"]
        for bundle in ("profiles-types", "profiles-resources", "valuesets")
        for entry in load(bundle)["entry"]
        if "url" in entry["resource"]
    )


def canonical_references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("baseDefinition", "profile", "targetProfile", "valueSet"):
                yield from (value if isinstance(value, list) else [value])
            else:
                yield from canonical_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from canonical_references(item)


def test_profile_and_value_set_references_resolve() -> None:
    found = resources()
    known = core_urls() | {res["url"] for res in found.values() if "url" in res}
    unresolved = {
        (name, url)
        for name, res in found.items()
        for url in canonical_references(res)
        if url.partition("|")[0] not in known and not url.startswith(IPS)
    }
    assert unresolved == set()


def test_the_script_check_passes_the_shipped_package_and_catches_a_broken_reference() -> None:
    check = script().check
    assert check(resources()) == []
    broken = copy.deepcopy(resources())
    patient = broken["StructureDefinition-vn-core-patient.json"]
    patient["baseDefinition"] = "http://example.org/StructureDefinition/nowhere"
    broken["NamingSystem-insurance-number.json"]["id"] = "insurance_number"
    found = check(broken)
    assert any("nowhere" in problem for problem in found)
    assert any("invalid or missing id" in problem for problem in found)


def test_corrections_are_applied() -> None:
    found = resources()
    assert "NamingSystem-insurance-number.json" in found
    assert "StructureDefinition-vn-core-medication-statement.json" in found
    assert "CodeSystem-snomedct.json" not in found  # a copy of the R4 core resource
    provider = found["NamingSystem-provider-code.json"]
    assert provider["uniqueId"][0]["value"] == "http://fhir.ehealth.gov.vn/core/sid/provider-code"
    guide = found["ImplementationGuide-hl7.fhir.vn.core.json"]
    assert len(guide["definition"]["resource"]) == len(found) - 1
    assert b"http://hl7.org/fhir/ValueSet/observation-category" not in b"".join(members().values())


def test_every_correction_is_in_the_report() -> None:
    build = script()
    report = REPORT.read_text(encoding="utf-8")
    names = [fix.name for fix in (*build.TEXT_FIXES, *build.DROPS, *build.FIXES)]
    assert [name for name in names if f"`{name}`" not in report] == []


def test_list_fixes_prints_a_markdown_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert script().main(["--list-fixes"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| name |") and "`ig-definition-resources`" in table


def test_main_reports_a_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert script().main([str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "no IG resources" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_archive_members_are_json_objects() -> None:
    with tarfile.open(fileobj=io.BytesIO(SHIPPED.read_bytes()), mode="r:gz") as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info)
            assert data is not None
            assert isinstance(orjson.loads(data.read()), dict)
