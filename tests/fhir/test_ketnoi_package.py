"""ketnoi's own FHIR package (ketnoi/fhir/packages/ketnoi.fhir.vn-0.1.0.tgz) and the script that builds it."""

from __future__ import annotations

import copy
import gzip
import importlib.util
import random
import sys
import tarfile
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from fhirpathpy import evaluate

from ketnoi.demo import ids, people
from ketnoi.fhir import packages
from ketnoi.validation import validate
from ketnoi.vn.identifier_rules import BHXH_SYSTEM, BHYT_CATEGORIES, BHYT_SYSTEM, LICENCE_SYSTEM

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "ketnoi" / "fhir" / "packages" / "ketnoi.fhir.vn-0.1.0.tgz"
DOC = ROOT / "docs" / "ketnoi-package.md"
BASE = "https://fhir.ketnoi.vn"
PROFILE = f"{BASE}/StructureDefinition/ketnoi-coverage-bhyt"
CATEGORY_CS = f"{BASE}/CodeSystem/bhyt-category"
LEVEL_CS = f"{BASE}/CodeSystem/bhyt-benefit-level"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


@cache
def script() -> ModuleType:
    """scripts/build_ketnoi_package.py, imported by path (registered first, as the VN Core test does)."""
    spec = importlib.util.spec_from_file_location("build_ketnoi_package", ROOT / "scripts" / "build_ketnoi_package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@cache
def members() -> dict[str, bytes]:
    with tarfile.open(SHIPPED, "r:gz") as tar:
        out = {}
        for info in tar.getmembers():
            extracted = tar.extractfile(info)
            assert extracted is not None and info.name.startswith("package/")
            out[info.name.removeprefix("package/")] = extracted.read()
        return out


def resources() -> dict[str, dict[str, Any]]:
    return {name: orjson.loads(data) for name, data in members().items() if name not in ("package.json", ".index.json")}


def shipped_resource(resource_type: str, url: str) -> dict[str, Any]:
    found = packages.find_package(resource_type, url)
    assert found is not None, url
    assert found[0].name == "ketnoi.fhir.vn"
    return found[1]


def benefit_level_rule() -> str:
    root = shipped_resource("StructureDefinition", PROFILE)["differential"]["element"][0]
    (rule,) = [c for c in root["constraint"] if c["key"] == "ketnoi-bhyt-1"]
    assert rule["severity"] == "error"
    return str(rule["expression"])


def demo_coverages(seed: int, count: int) -> list[dict[str, Any]]:
    """What ketnoi.demo writes for the first ``count`` insured people drawn with ``seed``."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    n = 0
    while len(out) < count:
        n += 1
        person = people.draw_person(rng, f"p{n}")
        if person.bhyt:
            out.append(people.coverage_resource(f"c{n}", person, f"Patient/p{n}", "bhxh", "01001"))
    return out


def level_class(coverage: dict[str, Any]) -> dict[str, Any]:
    """The benefit-level class (coverage-class ``class``) of a Coverage."""
    classes: list[dict[str, Any]] = coverage["class"]
    (found,) = [
        c for c in classes if {"system": COVERAGE_CLASS, "code": "class"}.items() <= c["type"]["coding"][0].items()
    ]
    return found


# --- the archive ---------------------------------------------------------------------------------------


def test_shipped_archive_is_what_the_script_builds(tmp_path: Path) -> None:
    built = script().build(tmp_path / "a")
    assert built.name == SHIPPED.name
    data, shipped = built.read_bytes(), SHIPPED.read_bytes()
    # As for VN Core: the tar and the gzip header must be identical; the deflate stream is compared with a
    # second build only, since another zlib build may compress the same bytes differently.
    assert gzip.decompress(data) == gzip.decompress(shipped), (
        "rebuild: .venv/bin/python scripts/build_ketnoi_package.py"
    )
    assert data[:10] == shipped[:10]
    assert script().build(tmp_path / "b").read_bytes() == data


def test_archive_is_reproducible_by_construction() -> None:
    data = SHIPPED.read_bytes()
    assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\0\0\0\0"  # gzip, no timestamp
    with tarfile.open(SHIPPED, "r:gz") as tar:
        infos = tar.getmembers()
    names = [info.name for info in infos]
    assert names == sorted(names)
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {(499162500, 0, 0, "", "", 0o644)}
    assert all(info.isfile() for info in infos)


def test_manifest_and_index() -> None:
    manifest = orjson.loads(members()["package.json"])
    assert (manifest["name"], manifest["version"], manifest["license"]) == ("ketnoi.fhir.vn", "0.1.0", "CC0-1.0")
    assert manifest["canonical"] == BASE
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1", "hl7.fhir.vn.core": "1.0.0"}
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert "English: " in manifest["description"] and "Gói FHIR" in manifest["title"]
    index = orjson.loads(members()[".index.json"])
    assert [entry["filename"] for entry in index["files"]] == sorted(resources())
    for entry in index["files"]:
        res = resources()[entry["filename"]]
        assert entry["filename"] == f"{res['resourceType']}-{res['id']}.json"


# --- the registry ----------------------------------------------------------------------------------------


def test_the_package_loads_as_a_shipped_package_beside_vn_core() -> None:
    found = {package.name: package for package in packages.shipped()}
    assert {"hl7.fhir.vn.core", "ketnoi.fhir.vn"} <= found.keys()
    ours = found["ketnoi.fhir.vn"]
    assert (ours.version, ours.canonical, ours.file) == ("0.1.0", BASE, SHIPPED.name)
    assert ours.dependencies == {"hl7.fhir.r4.core": "4.0.1", "hl7.fhir.vn.core": "1.0.0"}
    assert ours.dependencies["hl7.fhir.vn.core"] == found["hl7.fhir.vn.core"].version
    assert packages.shipped_package("ketnoi.fhir.vn", "0.1.0") is ours
    assert len(ours.resources) == len(resources()) == 8


def test_find_the_coverage_profile() -> None:
    sd = packages.find("StructureDefinition", PROFILE)
    assert sd is not None
    assert packages.find("StructureDefinition", PROFILE + "|0.1.0") is sd
    assert (sd["kind"], sd["type"], sd["derivation"], sd["abstract"], sd["fhirVersion"]) == (
        "resource",
        "Coverage",
        "constraint",
        False,
        "4.0.1",
    )
    assert sd["baseDefinition"] == "http://hl7.org/fhir/StructureDefinition/Coverage"
    assert "snapshot" not in sd
    elements = sd["differential"]["element"]
    by_id = {e["id"]: e for e in elements}
    assert len(by_id) == len(elements)
    assert by_id["Coverage.identifier"]["slicing"] == {
        "discriminator": [{"type": "value", "path": "system"}],
        "rules": "open",
    }
    assert (by_id["Coverage.identifier:bhyt"]["min"], by_id["Coverage.identifier:bhyt"]["max"]) == (1, "1")
    assert by_id["Coverage.identifier:bhyt.system"]["fixedUri"] == BHYT_SYSTEM
    assert by_id["Coverage.type"]["patternCodeableConcept"]["coding"][0]["code"] == "PUBLICPOL"
    assert by_id["Coverage.beneficiary"]["type"][0]["targetProfile"] == [
        "http://hl7.org/fhir/StructureDefinition/Patient",
        "http://fhir.ehealth.gov.vn/core/StructureDefinition/vn-core-patient",
    ]
    assert packages.find("StructureDefinition", by_id["Coverage.beneficiary"]["type"][0]["targetProfile"][1])
    assert by_id["Coverage.class"]["slicing"]["discriminator"] == [{"type": "pattern", "path": "type"}]
    for slice_name, code, value_set in (
        ("category", "plan", "bhyt-category"),
        ("benefitLevel", "class", "bhyt-benefit-level"),
    ):
        assert by_id[f"Coverage.class:{slice_name}.type"]["patternCodeableConcept"]["coding"] == [
            {"system": COVERAGE_CLASS, "code": code}
        ]
        binding = by_id[f"Coverage.class:{slice_name}.value"]["binding"]
        assert binding == {"strength": "required", "valueSet": f"{BASE}/ValueSet/{value_set}"}
        assert packages.find("ValueSet", binding["valueSet"]) is not None


def test_every_element_has_an_id_that_names_its_path() -> None:
    for element in shipped_resource("StructureDefinition", PROFILE)["differential"]["element"]:
        plain = ".".join(step.partition(":")[0] for step in element["id"].split("."))
        assert plain == element["path"], element["id"]


# --- the code systems -------------------------------------------------------------------------------------


def test_every_bhyt_category_is_in_the_code_system() -> None:
    cs = shipped_resource("CodeSystem", CATEGORY_CS)
    concepts = {c["code"]: c for c in cs["concept"]}
    assert concepts.keys() == BHYT_CATEGORIES.keys()
    assert cs["count"] == len(BHYT_CATEGORIES) and cs["content"] == "complete" and cs["caseSensitive"] is True
    for code, category in BHYT_CATEGORIES.items():
        assert concepts[code]["display"] == category.name
        properties = {
            p["code"]: next(v for k, v in p.items() if k.startswith("value")) for p in concepts[code]["property"]
        }
        assert properties["group"] == category.group
        assert properties.get("benefit-level") == (None if category.level is None else str(category.level))
    # the demo writes its own category names, but only codes of the table
    assert set(ids.BHYT_CATEGORIES) <= concepts.keys()


def test_benefit_levels_match_what_the_demo_writes() -> None:
    cs = shipped_resource("CodeSystem", LEVEL_CS)
    concepts = {c["code"]: c for c in cs["concept"]}
    assert list(concepts) == ["1", "2", "3", "4", "5"]
    for level, percent in ids.BENEFIT_PERCENT.items():
        concept = concepts[str(level)]
        assert concept["display"] == f"Mức hưởng {level} ({percent}%)"
        assert concept["designation"] == [{"language": "en", "value": f"Benefit level {level} ({percent}%)"}]
    for coverage in demo_coverages(seed=3, count=20):
        found = level_class(coverage)
        assert concepts[found["value"]]["display"] == found["name"]


def test_value_sets_include_their_whole_code_system() -> None:
    for name in ("bhyt-category", "bhyt-benefit-level"):
        vs = shipped_resource("ValueSet", f"{BASE}/ValueSet/{name}")
        assert vs["compose"] == {"include": [{"system": f"{BASE}/CodeSystem/{name}"}]}
        assert shipped_resource("CodeSystem", f"{BASE}/CodeSystem/{name}")["valueSet"] == vs["url"]
    terminology = {r.get("url") for r in packages.terminology_resources()}
    assert {CATEGORY_CS, LEVEL_CS, f"{BASE}/ValueSet/bhyt-category"} <= terminology


# --- ketnoi-bhyt-1 ------------------------------------------------------------------------------------------


def test_benefit_level_rule_holds_on_demo_coverages_and_fails_when_the_level_changes() -> None:
    rule = benefit_level_rule()
    coverages = demo_coverages(seed=7, count=25)
    assert len({c["class"][0]["value"] for c in coverages}) > 3  # several categories, several levels
    for coverage in coverages:
        assert evaluate(coverage, rule, {}) == [True], coverage["identifier"]
        card_level = coverage["identifier"][0]["value"][2]
        assert level_class(coverage)["value"] == card_level
        for other in "12345":
            changed = copy.deepcopy(coverage)
            level_class(changed)["value"] = other
            assert evaluate(changed, rule, {}) == [other == card_level]


def test_benefit_level_rule_is_true_when_a_part_is_absent() -> None:
    rule = benefit_level_rule()
    (coverage,) = demo_coverages(seed=11, count=1)
    wrong_level = level_class(coverage)
    wrong_level["value"] = "9"  # no level 9: the card's character 3 is 1-5
    assert evaluate(coverage, rule, {}) == [False]
    other_card = {**coverage, "identifier": [{"system": "urn:example:other", "value": "X"}]}
    assert evaluate(other_card, rule, {}) == [True]
    no_level = {**coverage, "class": [c for c in coverage["class"] if c is not wrong_level]}
    assert evaluate(no_level, rule, {}) == [True]


# --- the other resources --------------------------------------------------------------------------------------


def test_naming_systems_are_those_vn_core_lacks() -> None:
    ours = [r for r in resources().values() if r["resourceType"] == "NamingSystem"]
    assert sorted(u["value"] for r in ours for u in r["uniqueId"]) == sorted([BHXH_SYSTEM, LICENCE_SYSTEM])
    assert all(r["kind"] == "identifier" and r["uniqueId"][0]["type"] == "uri" for r in ours)
    vn_core = packages.shipped_package("hl7.fhir.vn.core")
    assert vn_core is not None
    theirs = {u["value"] for r in vn_core.resources if r["resourceType"] == "NamingSystem" for u in r["uniqueId"]}
    assert BHYT_SYSTEM in theirs
    assert not theirs & {BHXH_SYSTEM, LICENCE_SYSTEM}


def test_guide_depends_on_vn_core_and_lists_every_resource() -> None:
    found = resources()
    guide = found.pop("ImplementationGuide-ketnoi.fhir.vn.json")
    assert guide["url"] == f"{BASE}/ImplementationGuide/ketnoi.fhir.vn"
    assert (guide["packageId"], guide["version"], guide["license"]) == ("ketnoi.fhir.vn", "0.1.0", "CC0-1.0")
    assert guide["dependsOn"] == [
        {
            "uri": "http://fhir.ehealth.gov.vn/core/ImplementationGuide/hl7.fhir.vn.core",
            "packageId": "hl7.fhir.vn.core",
            "version": "1.0.0",
        }
    ]
    vn_core_guide = packages.find("ImplementationGuide", guide["dependsOn"][0]["uri"])
    assert vn_core_guide is not None and vn_core_guide["packageId"] == "hl7.fhir.vn.core"
    listed = {entry["reference"]["reference"] for entry in guide["definition"]["resource"]}
    assert listed == {f"{r['resourceType']}/{r['id']}" for r in found.values()}
    assert len(listed) == len(guide["definition"]["resource"]) == 7


def test_every_resource_is_valid_bilingual_and_draft() -> None:
    for name, res in resources().items():
        assert [i.text for i in validate(res, invariants=True) if i.severity in ("error", "fatal")] == [], name
        assert res["status"] == "draft" and res["publisher"] == "ketnoi", name
        assert "\n\nEnglish: " in res["description"], name
        assert res["id"] == res["id"].lower(), name
        if res["resourceType"] != "NamingSystem":
            assert res["url"] == f"{BASE}/{res['resourceType']}/{res['id']}", name
            assert res["version"] == "0.1.0" and res["title"], name


def test_the_doc_describes_every_resource() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert [name for name in (f"`{r['id']}`" for r in resources().values()) if name not in text] == []
    assert "ketnoi-package.md" in (ROOT / "docs" / "vn-core-report.md").read_text(encoding="utf-8")


# --- the build refuses a wrong package ---------------------------------------------------------------------------


def test_an_invalid_resource_stops_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = script()
    good = build.level_code_system

    def wrong() -> dict[str, Any]:
        cs: dict[str, Any] = good()
        cs["content"] = "everything"
        return cs

    monkeypatch.setattr(build, "level_code_system", wrong)
    assert build.main(["--out", str(tmp_path / "out")]) == 1
    assert "'everything'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_rule_that_does_not_hold_on_demo_data_stops_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = script()
    # character 4 (the issuer's first digit) instead of character 3
    monkeypatch.setattr(
        build, "BENEFIT_LEVEL_RULE", build.BENEFIT_LEVEL_RULE.replace("substring(2, 1)", "substring(3, 1)")
    )
    with pytest.raises(build.BuildError, match="ketnoi-bhyt-1 gives"):
        build.build(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_naming_system_vn_core_has_stops_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = script()
    monkeypatch.setattr(build, "BHXH_SYSTEM", BHYT_SYSTEM)
    with pytest.raises(build.BuildError, match="has a NamingSystem for"):
        build.build(tmp_path)
