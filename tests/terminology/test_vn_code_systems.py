"""The Vietnamese code systems shipped in ketnoi/terminology/data (docs/vn-code-systems.md): counts, hierarchy,
unique codes, Vietnamese displays and their no-diacritics designations, the former-to-2025 ConceptMap, the
structural validity of every resource, and that the shipped files are what scripts/build_vn_terminology.py
builds now."""

from __future__ import annotations

import gzip
import importlib.util
import re
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ketnoi.search.normalize import fold
from ketnoi.terminology.expand import Hierarchy
from ketnoi.terminology.vn import (
    ADMIN_2025_URL,
    ADMIN_LEGACY_URL,
    ADMIN_MAP_URL,
    DATA_FILES,
    DESIGNATION_USE_URL,
    ETHNIC_GROUP_URL,
    NO_DIACRITICS_USE,
    vn_resources,
)
from ketnoi.validation import validate

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_vn_terminology.py"
DATA = ROOT / "ketnoi" / "terminology" / "data"
SHARED = Path("/work/shared/vn")
XML130 = "https://fhir.ketnoi.vn/CodeSystem/xml130-"

Json = dict[str, Any]


def by_url(url: str) -> Json:
    found = [r for r in vn_resources() if r.get("url") == url]
    assert len(found) == 1, url
    return found[0]


def walk(concepts: list[Json], depth: int = 0) -> Iterator[tuple[int, Json]]:
    for c in concepts:
        yield depth, c
        yield from walk(c.get("concept", []), depth + 1)


def prop(concept: Json, code: str) -> Any:
    values = [p["valueString"] for p in concept.get("property", []) if p["code"] == code]
    return values[0] if values else None


def plain(concept: Json) -> str | None:
    """The no-diacritics designation, if any."""
    for d in concept.get("designation", []):
        if d.get("use", {}).get("code") == NO_DIACRITICS_USE:
            return str(d["value"])
    return None


def english(concept: Json) -> str | None:
    return next((str(d["value"]) for d in concept.get("designation", []) if d.get("language") == "en"), None)


def targets(code: str) -> list[Json]:
    group = by_url(ADMIN_MAP_URL)["group"][0]
    return next(e["target"] for e in group["element"] if e["code"] == code)


# ------------------------------------------------------------------------------------------ counts


def test_the_2025_units_are_34_provinces_and_3321_communes() -> None:
    cs = by_url(ADMIN_2025_URL)
    provinces = cs["concept"]
    communes = [c for p in provinces for c in p["concept"]]
    assert len(provinces) == 34
    assert len(communes) == 3321
    assert cs["count"] == 34 + 3321
    assert {prop(p, "level") for p in provinces} == {"tinh"} and {prop(c, "level") for c in communes} == {"xa"}
    assert Counter(prop(c, "type") for c in communes) == {"Xã": 2621, "Phường": 687, "Đặc khu": 13}
    assert Counter(prop(p, "type") for p in provinces) == {"Tỉnh": 28, "Thành phố": 6}
    assert all(len(p["code"]) == 2 for p in provinces) and all(len(c["code"]) == 5 for c in communes)


def test_the_former_units_are_63_provinces_696_districts_and_10035_communes() -> None:
    cs = by_url(ADMIN_LEGACY_URL)
    levels = Counter(depth for depth, _ in walk(cs["concept"]))
    assert levels == {0: 63, 1: 696, 2: 10035}
    assert cs["count"] == 63 + 696 + 10035
    # the island districts without communes
    empty = {c["display"] for c in cs["concept"] for c in c["concept"] if not c.get("concept")}
    assert empty == {"Huyện Bạch Long Vĩ", "Huyện Cồn Cỏ", "Huyện Hoàng Sa", "Huyện Lý Sơn", "Huyện Côn Đảo"}


def test_the_ethnic_groups_are_the_54_of_the_gso_plus_two_extras() -> None:
    cs = by_url(ETHNIC_GROUP_URL)
    codes = [c["code"] for c in cs["concept"]]
    assert codes == [f"{n:02d}" for n in range(1, 55)] + ["55", "99"]
    assert cs["count"] == 56
    names = {c["code"]: c["display"] for c in cs["concept"]}
    assert names["01"] == "Kinh" and names["08"] == "HMông" and names["54"] == "Rơ măm"
    assert names["55"] == "Người nước ngoài" and names["99"] == "Không rõ"


def test_every_code_system_has_the_required_metadata_and_a_true_count() -> None:
    code_systems = [r for r in vn_resources() if r["resourceType"] == "CodeSystem"]
    assert len(code_systems) == 1 + 2 + 1 + 34
    for cs in code_systems:
        assert cs["status"] == "active" and cs["language"] == "vi", cs["url"]
        assert cs["content"] in ("complete", "fragment") and cs["caseSensitive"] is True
        assert cs["publisher"] and cs["copyright"] and cs["description"], cs["url"]
        assert cs["count"] == sum(1 for _ in walk(cs["concept"])), cs["url"]
        assert cs["url"].endswith("/" + cs["id"])
        if cs["content"] == "fragment":
            assert "fragment" in cs["description"], cs["url"]


def test_the_claims_tables_cover_the_required_fields() -> None:
    tables = {r["url"][len(XML130) :]: r for r in vn_resources() if r["url"].startswith(XML130)}
    assert len(tables) == 34
    for field in ("ma-doituong-kcb", "ma-loai-kcb", "ket-qua-dtri", "ma-loai-rv"):
        assert field in tables
    assert [c["code"] for c in tables["ket-qua-dtri"]["concept"]] == [str(n) for n in range(1, 9)]
    assert tables["ket-qua-dtri"]["content"] == "complete"
    assert [c["display"] for c in tables["ma-loai-rv"]["concept"]] == [
        "Ra viện",
        "Chuyển tuyến theo yêu cầu chuyên môn",
        "Trốn viện",
        "Xin ra viện",
        "Chuyển tuyến theo yêu cầu người bệnh",
    ]
    assert [c["code"] for c in tables["ma-loai-kcb"]["concept"]] == [f"{n:02d}" for n in range(1, 10)]
    assert tables["ma-loai-kcb"]["content"] == "fragment"  # QĐ 1804/2026 has 16 codes, not in the source
    assert {"1.1", "2", "7.1"} <= {c["code"] for c in tables["ma-doituong-kcb"]["concept"]}
    for cs in tables.values():
        assert "4750/QĐ-BYT" in cs["description"] and "130/QĐ-BYT" in cs["description"]


# ---------------------------------------------------------------------------------- structure


@pytest.mark.parametrize("url", [ADMIN_2025_URL, ADMIN_LEGACY_URL])
def test_every_commune_has_an_existing_parent(url: str) -> None:
    cs = by_url(url)
    tree = Hierarchy(cs)
    top = {p["code"] for p in cs["concept"]}
    for depth, c in walk(cs["concept"]):
        parents = tree.parents.get(c["code"], set())
        if depth == 0:
            assert not parents
        else:
            assert len(parents) == 1 and next(iter(parents)) in tree.concepts
        if prop(c, "level") == "xa":
            assert tree.ancestors(c["code"]) & top, c["code"]


def test_codes_are_unique_in_every_code_system() -> None:
    for cs in (r for r in vn_resources() if r["resourceType"] == "CodeSystem"):
        codes = [c["code"] for _, c in walk(cs["concept"])]
        assert len(codes) == len(set(codes)), cs["url"]


def test_every_resource_passes_structural_validation() -> None:
    resources = vn_resources()
    assert {r["resourceType"] for r in resources} == {"CodeSystem", "ConceptMap"}
    for resource in resources:
        assert validate(resource) == [], resource["url"]


def test_the_shipped_files_are_json_arrays_of_resources() -> None:
    assert sorted(p.name for p in DATA.glob("*.json.gz")) == sorted(DATA_FILES)
    assert vn_resources() == vn_resources() and vn_resources() is not vn_resources()
    assert vn_resources()[0] is vn_resources()[0]  # loaded once


# ------------------------------------------------------------------------- Vietnamese and folding


def test_displays_keep_their_diacritics_and_have_plain_and_english_designations() -> None:
    hanoi = next(p for p in by_url(ADMIN_2025_URL)["concept"] if p["code"] == "01")
    assert hanoi["display"] == "Thành phố Hà Nội"
    assert plain(hanoi) == "Thanh pho Ha Noi"
    assert english(hanoi) == "Ha Noi City"
    hcmc = next(p for p in by_url(ADMIN_2025_URL)["concept"] if p["code"] == "79")
    assert hcmc["display"] == "Thành phố Hồ Chí Minh" and english(hcmc) == "Ho Chi Minh City"
    tuyen_quang = next(p for p in by_url(ADMIN_2025_URL)["concept"] if p["code"] == "08")
    assert english(tuyen_quang) == "Tuyen Quang Province"
    ethnic = {c["code"]: c for c in by_url(ETHNIC_GROUP_URL)["concept"]}
    assert ethnic["12"]["display"] == "Ê-đê" and plain(ethnic["12"]) == "E-de"
    assert plain(ethnic["01"]) is None  # "Kinh" has no diacritics to drop


def test_every_plain_designation_is_ascii_and_folds_like_its_display() -> None:
    checked = 0
    for url in (ADMIN_2025_URL, ADMIN_LEGACY_URL, ETHNIC_GROUP_URL):
        for _, c in walk(by_url(url)["concept"]):
            value = plain(c)
            if value is None:
                assert c["display"].isascii(), c
                continue
            assert value.isascii() and value != c["display"]
            assert fold(value) == fold(c["display"]), c
            checked += 1
    assert checked > 13_000


def test_the_designation_use_code_is_defined() -> None:
    use = by_url(DESIGNATION_USE_URL)
    assert [c["code"] for c in use["concept"]] == [NO_DIACRITICS_USE]


def test_type_ahead_without_diacritics_finds_the_commune() -> None:
    query = fold("thanh xuan")
    hits = [
        c
        for c in by_url(ADMIN_2025_URL)["concept"][0]["concept"]  # Hà Nội's communes
        if query in fold(c["display"]) or query in fold(plain(c) or "")
    ]
    assert [(c["code"], c["display"]) for c in hits] == [("00367", "Phường Thanh Xuân")]
    assert fold("Thanh Xuân") == fold("THANH XUAN") == "thanh xuan"


# -------------------------------------------------------------------------------------- ConceptMap


def test_the_concept_map_maps_former_provinces_to_the_merged_ones() -> None:
    # Resolution 202/2025/QH15: Hà Giang (02) and Tuyên Quang (08) became the new Tuyên Quang (08);
    # Bình Dương (74) went into Hồ Chí Minh City (79); Hà Nội (01) was not merged.
    assert [(t["code"], t["equivalence"]) for t in targets("02")] == [("08", "wider")]
    assert [(t["code"], t["equivalence"]) for t in targets("08")] == [("08", "wider")]
    assert [(t["code"], t["equivalence"]) for t in targets("74")] == [("79", "wider")]
    assert [(t["code"], t["equivalence"]) for t in targets("01")] == [("01", "equivalent")]
    assert targets("02")[0]["display"] == "Tỉnh Tuyên Quang"


def test_the_concept_map_maps_former_communes_to_the_new_ones() -> None:
    # Hà Nội, 2025: the whole of Phường Hàng Bạc went into the new Phường Hoàn Kiếm (with other wards)
    assert [(t["code"], t["display"], t["equivalence"]) for t in targets("00061")] == [
        ("00070", "Phường Hoàn Kiếm", "wider")
    ]
    # Phường Hàng Trống (old code 00070!) was split between Phường Cửa Nam and Phường Hoàn Kiếm
    split = {t["code"]: t for t in targets("00070")}
    assert set(split) == {"00070", "00082"}
    assert {t["equivalence"] for t in split.values()} == {"inexact"}
    assert "Mặc định" in split["00070"]["comment"] and "Mặc định" not in split["00082"]["comment"]
    # an island district without communes became a special zone
    assert [(t["code"], t["display"], t["equivalence"]) for t in targets("755")] == [
        ("26732", "Đặc khu Côn Đảo", "equivalent")
    ]


def test_the_concept_map_covers_every_former_commune_with_existing_codes() -> None:
    old = {c["code"]: depth for depth, c in walk(by_url(ADMIN_LEGACY_URL)["concept"])}
    new = {c["code"] for _, c in walk(by_url(ADMIN_2025_URL)["concept"])}
    cm = by_url(ADMIN_MAP_URL)
    group = cm["group"][0]
    assert (group["source"], group["target"]) == (ADMIN_LEGACY_URL, ADMIN_2025_URL)
    sources = [e["code"] for e in group["element"]]
    assert len(sources) == len(set(sources))
    assert {c for c, depth in old.items() if depth != 1} <= set(sources)  # every province and commune
    assert all(c in old for c in sources)
    equivalences: Counter[str] = Counter()
    for element in group["element"]:
        for t in element["target"]:
            assert t["code"] in new
            equivalences[t["equivalence"]] += 1
            if t["equivalence"] in ("narrower", "inexact"):
                assert t["comment"]
        if len(element["target"]) > 1:
            assert sum("Mặc định" in t.get("comment", "") for t in element["target"]) == 1
    assert set(equivalences) <= {"equivalent", "wider", "narrower", "inexact"}
    # every new commune is reached from at least one former unit
    assert {t["code"] for e in group["element"] for t in e["target"]} == new


# ----------------------------------------------------------------------------------------- sources


@pytest.mark.skipif(
    importlib.util.find_spec("vietnamadminunits") is None,
    reason="vietnamadminunits (build-time dependency of scripts/build_vn_terminology.py) is not installed",
)
def test_the_shipped_files_are_what_the_script_builds(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, timeout=120)
    for name in DATA_FILES:
        built, shipped = (tmp_path / name).read_bytes(), (DATA / name).read_bytes()
        assert gzip.decompress(built) == gzip.decompress(shipped), f"{name}: rebuild the data"
        assert built == shipped, f"{name}: same JSON, different gzip bytes (another zlib?)"


@pytest.mark.skipif(not (SHARED / "vn-core-ig").is_dir(), reason="the VN Core IG sources are not at /work/shared")
def test_the_ethnic_groups_match_the_vn_core_ig() -> None:
    path = SHARED / "vn-core-ig/input/resources/CodeSystem-vn-core-race-v1.0.xml"
    ns = {"f": "http://hl7.org/fhir"}
    root = ET.parse(path).getroot()
    assert root.find("f:url", ns).get("value") == ETHNIC_GROUP_URL  # type: ignore[union-attr]
    ig = {
        c.find("f:code", ns).get("value"): c.find("f:display", ns).get("value")  # type: ignore[union-attr]
        for c in root.findall("f:concept", ns)
    }
    assert ig == {c["code"]: c["display"] for c in by_url(ETHNIC_GROUP_URL)["concept"]}


@pytest.mark.skipif(not (SHARED / "xml130_schema.md").is_file(), reason="xml130_schema.md is not at /work/shared")
def test_the_partial_claims_tables_quote_the_schema() -> None:
    # NFC: the XML15 rows of the schema are written with combining marks
    schema = unicodedata.normalize("NFC", (SHARED / "xml130_schema.md").read_text(encoding="utf-8")).casefold()
    for cs in (r for r in vn_resources() if r["url"].startswith(XML130)):
        if cs["content"] != "fragment" or cs["id"] in ("xml130-ma-loai-kcb", "xml130-ma-doituong-kcb"):
            continue
        field = re.search(r"trường (\w+)", cs["description"])
        assert field is not None and f"`{field.group(1)}`".casefold() in schema
        for c in cs["concept"]:
            assert c["display"].casefold() in schema, (cs["id"], c["display"])
