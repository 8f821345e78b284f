"""Build the Vietnamese CodeSystems and ConceptMap that ketnoi ships (docs/vn-code-systems.md).

Writes one gzip'd JSON array of FHIR R4 resources per group into ``ketnoi/terminology/data/``:

* ``vn-admin-units.json.gz``: the administrative units in force since 01/07/2025 (34 provinces, 3,321
  communes), the former three-level units (63 provinces, 696 districts, 10,035 communes), the ConceptMap
  from the former codes to the new ones, and the small CodeSystem of ketnoi's designation use codes.
  Source: the data files of the PyPI package ``vietnamadminunits`` (MIT), read without importing it.
* ``vn-ethnic-groups.json.gz``: the 54 ethnic groups of Decision 121-TCTK/PPCĐ (General Statistics
  Office) plus the two extra codes of the Ministry of Health's draft VN Core IG, under the IG's URL.
* ``vn-claims-tables.json.gz``: the code lists of the claims XML of QĐ 130/QĐ-BYT as amended by
  QĐ 4750/QĐ-BYT.

The ethnic-group and claims tables are transcribed below (each with its source); only the administrative
units need the package, which is a build-time dependency: the shipped files need nothing. The output is
deterministic (fixed key order, concepts sorted by code, gzip mtime 0), so a rebuild gives identical bytes
and ``tests/terminology/test_vn_code_systems.py`` checks that the shipped files are what this builds.

Usage: ``python scripts/build_vn_terminology.py [--out DIR]`` (default: the package data folder).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sqlite3
import sys
import unicodedata
from collections import defaultdict
from importlib.metadata import version as dist_version
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path (the tests)

from vn_claims_tables import CLAIMS_TABLES, ClaimsTable

BASE = "https://fhir.ketnoi.vn"
PUBLISHER = "ketnoi"
DATA_DIR = Path(__file__).resolve().parent.parent / "ketnoi" / "terminology" / "data"

ADMIN_2025_URL = f"{BASE}/CodeSystem/vn-admin-unit-2025"
ADMIN_LEGACY_URL = f"{BASE}/CodeSystem/vn-admin-unit-legacy"
ADMIN_MAP_URL = f"{BASE}/ConceptMap/vn-admin-unit-legacy-to-2025"
DESIGNATION_USE_URL = f"{BASE}/CodeSystem/designation-use"
ETHNIC_URL = "http://fhir.ehealth.gov.vn/core/CodeSystem/vn-core-race"  # the VN Core IG's ethnic-group list

NO_DIACRITICS = {"system": DESIGNATION_USE_URL, "code": "khong-dau", "display": "Không dấu"}

Json = dict[str, Any]


# ------------------------------------------------------------------------------------------ helpers


def strip_diacritics(text: str) -> str:
    """Vietnamese text without tone marks and diacritics, case kept: ``"Phường Đống Đa"`` → ``"Phuong Dong Da"``."""
    text = text.replace("đ", "d").replace("Đ", "D")
    kept = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", kept)


def designations(display: str, english: str | None = None) -> list[Json]:
    """The no-diacritics Vietnamese designation (when it differs from the display) and an English one."""
    out: list[Json] = []
    plain = strip_diacritics(display)
    if plain != display:
        out.append({"language": "vi", "use": NO_DIACRITICS, "value": plain})
    if english:
        out.append({"language": "en", "value": english})
    return out


def concept(code: str, display: str, *, definition: str | None = None, **extra: Any) -> Json:
    """A CodeSystem concept with its keys in a fixed order; empty parts left out."""
    out: Json = {"code": code, "display": display}
    if definition:
        out["definition"] = definition
    for key in ("designation", "property", "concept"):
        if extra.get(key):
            out[key] = extra[key]
    return out


def vn_int(n: int) -> str:
    """An integer written the Vietnamese way: 3321 → "3.321"."""
    return f"{n:,}".replace(",", ".")


def count_concepts(concepts: list[Json]) -> int:
    return sum(1 + count_concepts(c.get("concept", [])) for c in concepts)


def code_system(
    *,
    id_: str,
    url: str,
    version: str,
    name: str,
    title: str,
    description: str,
    copyright_: str,
    concepts: list[Json],
    content: str = "complete",
    hierarchy: bool = False,
    properties: list[Json] | None = None,
    publisher: str = PUBLISHER,
) -> Json:
    cs: Json = {
        "resourceType": "CodeSystem",
        "id": id_,
        "language": "vi",
        "url": url,
        "version": version,
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": publisher,
        "description": description,
        "copyright": copyright_,
        "caseSensitive": True,
    }
    if hierarchy:
        cs["hierarchyMeaning"] = "part-of"
    cs["content"] = content
    cs["count"] = count_concepts(concepts)
    if properties:
        cs["property"] = properties
    cs["concept"] = concepts
    return cs


# --------------------------------------------------------------------------- administrative units

# Unit types, longest first so that "Thành phố" wins over nothing shorter; the prefix of the official name
# is authoritative (the package's type column disagrees with the name for 5 units, see docs).
PROVINCE_TYPES = ("Thành phố", "Tỉnh")
DISTRICT_TYPES = ("Thành phố", "Thị xã", "Quận", "Huyện")
COMMUNE_TYPES = ("Thị trấn", "Đặc khu", "Phường", "Xã")

ADMIN_PROPERTIES = [
    {
        "code": "level",
        "description": "Cấp hành chính: tinh (cấp tỉnh), huyen (cấp huyện, chỉ trước 01/07/2025), xa (cấp xã)",
        "type": "string",
    },
    {
        "code": "type",
        "description": "Loại đơn vị: Tỉnh, Thành phố, Quận, Huyện, Thị xã, Phường, Xã, Thị trấn, Đặc khu",
        "type": "string",
    },
]


def split_type(name: str, types: tuple[str, ...]) -> tuple[str, str]:
    """``(type, display)`` of an official name; the type prefix is matched regardless of case and written
    in its usual case (the source has "Thị Trấn Ái Tử" beside "Thị trấn ...")."""
    for kind in types:
        if name.casefold().startswith(kind.casefold() + " "):
            return kind, kind + name[len(kind) :]
    raise ValueError(f"no unit type in {name!r}")


def short_name(name: str, types: tuple[str, ...]) -> str:
    """The name without its type: "Tỉnh Bà Rịa - Vũng Tàu" → "Bà Rịa - Vũng Tàu"."""
    kind, display = split_type(name, types)
    return display[len(kind) + 1 :]


def english_province(display: str, kind: str) -> str:
    """English name in the form of Circular 03/2009/TT-BNG: "Ha Noi City", "Cao Bang Province"."""
    short = strip_diacritics(short_name(display, PROVINCE_TYPES))
    return f"{short} City" if kind == "Thành phố" else f"{short} Province"


def admin_concept(code: str, name: str, level: str, types: tuple[str, ...], children: list[Json]) -> Json:
    kind, display = split_type(name, types)
    english = english_province(display, kind) if level == "tinh" else None
    props = [{"code": "level", "valueString": level}, {"code": "type", "valueString": kind}]
    return concept(code, display, designation=designations(display, english), property=props, concept=children)


class AdminData(NamedTuple):
    new_rows: list[sqlite3.Row]
    old_rows: list[sqlite3.Row]
    converter: Json
    package_version: str


def load_admin_data() -> AdminData:
    spec = find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("vietnamadminunits is not installed: pip install vietnamadminunits")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    with sqlite3.connect(f"file:{data / 'dataset.db'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        new_rows = db.execute(
            "SELECT provinceCode, province, provinceKey, wardCode, ward, wardKey FROM admin_units"
        ).fetchall()
        old_rows = db.execute(
            "SELECT provinceCode, province, provinceKey, districtCode, district, districtKey,"
            " wardCode, ward, wardKey FROM admin_units_legacy"
        ).fetchall()
    converter = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))
    return AdminData(new_rows, old_rows, converter, dist_version("vietnamadminunits"))


def package_citation(pkg: str) -> str:
    return (
        f"Dữ liệu từ gói PyPI vietnamadminunits {pkg} (giấy phép MIT, Copyright (c) 2025 Tran Ngoc Minh Hieu; "
        "nguồn gốc: danhmuchanhchinh.gso.gov.vn của Tổng cục Thống kê). Tên và mã đơn vị hành chính là dữ liệu "
        "của Nhà nước (văn bản quy phạm pháp luật, văn bản hành chính không thuộc đối tượng bảo hộ quyền tác giả, "
        "Điều 15 Luật Sở hữu trí tuệ)."
    )


def build_admin_2025(data: AdminData) -> Json:
    provinces: dict[str, str] = {}
    communes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in data.new_rows:
        provinces[row["provinceCode"]] = row["province"]
        communes[row["provinceCode"]].append((row["wardCode"], row["ward"]))
    concepts = [
        admin_concept(
            pcode,
            provinces[pcode],
            "tinh",
            PROVINCE_TYPES,
            [admin_concept(c, n, "xa", COMMUNE_TYPES, []) for c, n in sorted(communes[pcode])],
        )
        for pcode in sorted(provinces)
    ]
    kinds: dict[str, int] = defaultdict(int)
    for province in concepts:
        for commune in province["concept"]:
            kinds[commune["property"][1]["valueString"]] += 1
    n_communes = sum(kinds.values())
    breakdown = ", ".join(f"{vn_int(n)} {k.lower()}" for k, n in sorted(kinds.items()))
    return code_system(
        id_="vn-admin-unit-2025",
        url=ADMIN_2025_URL,
        version="2025-07-01",
        name="VnAdminUnit2025",
        title="Danh mục đơn vị hành chính Việt Nam từ 01/07/2025 (34 tỉnh, thành phố; cấp xã)",
        description=(
            f"Đơn vị hành chính hai cấp áp dụng từ 01/07/2025: {len(concepts)} đơn vị cấp tỉnh và "
            f"{vn_int(n_communes)} đơn vị cấp xã ({breakdown}); không còn cấp huyện. "
            "Sắp xếp đơn vị cấp tỉnh theo Nghị quyết 202/2025/QH15 của Quốc hội; sắp xếp đơn vị cấp xã theo "
            "các nghị quyết năm 2025 của Ủy ban Thường vụ Quốc hội (một nghị quyết cho mỗi tỉnh, thành phố); mã "
            "số theo Quyết định 19/2025/QĐ-TTg của Thủ tướng Chính phủ (bảng danh mục và mã số các đơn vị hành "
            "chính Việt Nam). Mã tỉnh 2 chữ số, mã xã 5 chữ số; mỗi xã nằm trong tỉnh của nó (concept lồng "
            "nhau, hierarchyMeaning part-of). Tên hiển thị là tên chính thức có dấu; designation 'khong-dau' "
            "là tên không dấu, designation tiếng Anh (chỉ cấp tỉnh) theo cách viết của Thông tư 03/2009/TT-BNG. "
            "Lưu ý: nhiều mã mới trùng mã của một đơn vị cũ đã sáp nhập nhưng chỉ đơn vị khác, vì vậy danh mục "
            f"cũ là CodeSystem riêng ({ADMIN_LEGACY_URL}); chuyển đổi mã cũ sang mã mới bằng ConceptMap "
            f"{ADMIN_MAP_URL}. Dựng bằng scripts/build_vn_terminology.py."
        ),
        copyright_=package_citation(data.package_version),
        concepts=concepts,
        hierarchy=True,
        properties=ADMIN_PROPERTIES,
    )


def legacy_keys(row: sqlite3.Row) -> str:
    """The package's key of a former unit: ``province_district_ward`` (ward empty for island districts)."""
    return f"{row['provinceKey']}_{row['districtKey']}_{row['wardKey'] or ''}"


def build_admin_legacy(data: AdminData) -> Json:
    provinces: dict[str, str] = {}
    districts: dict[str, dict[str, str]] = defaultdict(dict)
    communes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in data.old_rows:
        provinces[row["provinceCode"]] = row["province"]
        districts[row["provinceCode"]][row["districtCode"]] = row["district"]
        if row["wardCode"] is not None:
            communes[row["districtCode"]].append((row["wardCode"], row["ward"]))
    concepts = []
    for pcode in sorted(provinces):
        district_concepts = [
            admin_concept(
                dcode,
                dname,
                "huyen",
                DISTRICT_TYPES,
                [admin_concept(c, n, "xa", COMMUNE_TYPES, []) for c, n in sorted(communes[dcode])],
            )
            for dcode, dname in sorted(districts[pcode].items())
        ]
        concepts.append(admin_concept(pcode, provinces[pcode], "tinh", PROVINCE_TYPES, district_concepts))
    n_districts = sum(len(d) for d in districts.values())
    n_communes = sum(len(c) for c in communes.values())
    no_commune = sorted(
        f"{row['district']} ({short_name(row['province'], PROVINCE_TYPES)})"
        for row in data.old_rows
        if row["wardCode"] is None
    )
    return code_system(
        id_="vn-admin-unit-legacy",
        url=ADMIN_LEGACY_URL,
        version="2025-06-30",
        name="VnAdminUnitLegacy",
        title="Danh mục đơn vị hành chính Việt Nam đến 30/06/2025 (63 tỉnh, cấp huyện, cấp xã)",
        description=(
            f"Đơn vị hành chính ba cấp áp dụng đến 30/06/2025: {len(concepts)} tỉnh, thành phố trực thuộc trung "
            f"ương, {n_districts} đơn vị cấp huyện và {vn_int(n_communes)} đơn vị cấp xã "
            "(trạng thái ngay trước khi sắp xếp năm 2025). Mã theo Quyết định 124/2004/QĐ-TTg và các văn bản "
            "cập nhật (danhmuchanhchinh.gso.gov.vn): tỉnh 2 chữ số, huyện 3 chữ số, xã 5 chữ số; concept lồng "
            "nhau tỉnh > huyện > xã (hierarchyMeaning part-of). Các huyện không có đơn vị cấp xã: "
            + "; ".join(no_commune)
            + ". Đây là các mã mà bảng XML1 của QĐ 130/QĐ-BYT (sửa đổi bởi QĐ 4750/QĐ-BYT) ghi ở MATINH_CU_TRU, "
            f"MAHUYEN_CU_TRU, MAXA_CU_TRU trước 01/07/2025; chuyển sang mã mới bằng ConceptMap {ADMIN_MAP_URL}. "
            "Dựng bằng scripts/build_vn_terminology.py."
        ),
        copyright_=package_citation(data.package_version),
        concepts=concepts,
        hierarchy=True,
        properties=ADMIN_PROPERTIES,
    )


def build_admin_map(data: AdminData, new_cs: Json, old_cs: Json) -> Json:
    """Former province, island-district and commune codes → 2025 codes.

    Equivalence (R4 ConceptMapEquivalence, read from the former unit to the new one): ``equivalent`` when
    the new unit is exactly the former one; ``wider`` when the whole former unit went into a new unit that
    also took in other land; ``narrower`` when the former unit was split and this new unit is made of a
    part of it only; ``inexact`` when a part of the former unit went into a new unit that also took in
    other land (both sides have more). The split mapping is the package's (``DICT_PROVINCE_WARD_DIVIDED``);
    its default target (``isDefaultNewWard``) is said in the target's comment.
    """
    new_code = {(r["provinceKey"], r["wardKey"]): r["wardCode"] for r in data.new_rows}
    new_province = {r["provinceKey"]: r["provinceCode"] for r in data.new_rows}
    old_code = {}
    for r in data.old_rows:
        old_code[legacy_keys(r)] = r["wardCode"] or r["districtCode"]
    old_province = {r["provinceKey"]: r["provinceCode"] for r in data.old_rows}

    new_display = {c["code"]: c["display"] for p in new_cs["concept"] for c in [p, *p["concept"]]}
    old_display: dict[str, str] = {}
    stack = list(old_cs["concept"])
    while stack:
        c = stack.pop()
        old_display[c["code"]] = c["display"]
        stack.extend(c.get("concept", []))

    # (old code, new code) → (whole?, default?); and every contributor of each new code
    links: dict[tuple[str, str], tuple[bool, bool]] = {}
    contributors: dict[str, set[str]] = defaultdict(set)
    conv = data.converter
    for npk, wards in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for nwk, olds in wards.items():
            for key in olds:
                links[(old_code[key], new_code[(npk, nwk)])] = (True, True)
    for npk, divided in conv["DICT_PROVINCE_WARD_DIVIDED"].items():
        for key, targets in divided.items():
            for t in targets:
                links[(old_code[key], new_code[(npk, t["newWardKey"])])] = (False, bool(t["isDefaultNewWard"]))
    for old, new in links:
        contributors[new].add(old)
    for npk, olds in conv["DICT_PROVINCE"].items():
        for opk in olds:
            links[(old_province[opk], new_province[npk])] = (True, True)
            contributors[new_province[npk]].add(old_province[opk])

    by_source: dict[str, list[Json]] = defaultdict(list)
    for (old, new), (whole, default) in sorted(links.items()):
        alone = contributors[new] == {old}
        target: Json = {"code": new, "display": new_display[new]}
        if whole:
            target["equivalence"] = "equivalent" if alone else "wider"
        else:
            target["equivalence"] = "narrower" if alone else "inexact"
            target["comment"] = (
                "Chỉ một phần đơn vị cũ thuộc đơn vị mới này"
                + ("" if alone else "; đơn vị mới còn gồm đơn vị khác")
                + (". Mặc định khi không rõ địa chỉ chi tiết" if default else "")
                + "."
            )
        by_source[old].append(target)
    elements = [
        {"code": old, "display": old_display[old], "target": by_source[old]}
        for old in sorted(by_source, key=lambda c: (len(c), c))
    ]
    return {
        "resourceType": "ConceptMap",
        "id": "vn-admin-unit-legacy-to-2025",
        "language": "vi",
        "url": ADMIN_MAP_URL,
        "version": "2025-07-01",
        "name": "VnAdminUnitLegacyTo2025",
        "title": "Chuyển đổi mã đơn vị hành chính cũ (đến 30/06/2025) sang mã mới (từ 01/07/2025)",
        "status": "active",
        "experimental": False,
        "publisher": PUBLISHER,
        "description": (
            "Mã tỉnh cũ (63) và mã xã cũ (cùng 5 huyện đảo không có đơn vị cấp xã) sang mã tỉnh, mã xã mới. "
            "equivalence: equivalent = đơn vị mới đúng bằng đơn vị cũ; wider = toàn bộ đơn vị cũ thuộc đơn vị "
            "mới và đơn vị mới còn gồm đơn vị khác; narrower = đơn vị cũ bị chia, đơn vị mới chỉ gồm một phần "
            "của nó; inexact = một phần đơn vị cũ thuộc đơn vị mới và đơn vị mới còn gồm đơn vị khác. Một xã cũ "
            "bị chia có nhiều target; comment ghi target mặc định khi không rõ địa chỉ chi tiết. Mã huyện cũ "
            "(trừ 5 huyện đảo) không có đích: cấp huyện đã bỏ. Quan hệ sáp nhập, chia tách lấy từ bảng chuyển "
            "đổi của gói vietnamadminunits (converter_2025.json). Dựng bằng scripts/build_vn_terminology.py."
        ),
        "copyright": package_citation(data.package_version),
        "group": [{"source": ADMIN_LEGACY_URL, "target": ADMIN_2025_URL, "element": elements}],
    }


def build_designation_use() -> Json:
    return code_system(
        id_="designation-use",
        url=DESIGNATION_USE_URL,
        version="1.0.0",
        name="KetnoiDesignationUse",
        title="Cách dùng tên gọi (designation.use) của ketnoi",
        description=("Mã designation.use mà ketnoi dùng trong các CodeSystem tiếng Việt (docs/vn-code-systems.md)."),
        copyright_="ketnoi, Apache-2.0.",
        concepts=[
            concept(
                "khong-dau",
                "Không dấu",
                definition=(
                    'Tên viết không dấu: bỏ dấu thanh và dấu phụ, đ thành d, giữ chữ hoa ("Phường Đống Đa" → '
                    '"Phuong Dong Da"), để tìm được khi người dùng gõ không dấu.'
                ),
            )
        ],
    )


# --------------------------------------------------------------------------------- ethnic groups

# Transcribed from the draft VN Core IG (hl7vn/vn-core-ig 8e6b6e0, CC0),
# input/resources/CodeSystem-vn-core-race-v1.0.xml: code, display, other names (the IG's definition).
# Codes 01-54 and their names are those of Decision 121-TCTK/PPCĐ (02/03/1979, General Statistics Office);
# 55 and 99 are the IG's own additions. Corrections: code 13's "Giơ-lar. Tơ-lô" has a comma for the full
# stop; 47 and 54 have an empty definition in the IG (invalid in FHIR), left out.
ETHNIC_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("01", "Kinh", "Việt"),
    ("02", "Tày", "Thổ, Ngạn, Phén, Thù Lao, Pa Dí, Tày Khao"),
    ("03", "Thái", "Tày Đăm, Tày Mười, Tày Thanh, Mán Thanh, Hàng Bông, Tày Mường, Pa Thay, Thổ Đà Bắc"),
    ("04", "Hoa", "Hán, Triều Châu, Phúc Kiến, Quảng Đông, Hải Nam, Hạ, Xạ Phạng"),
    ("05", "Khơ-me", "Cur, Cul, Cu, Thổ, Việt gốc Miên, Krôm"),
    ("06", "Mường", "Mol, Mual, Mọi, Mọi Bi, Ao Tá, Ậu Tá"),
    ("07", "Nùng", "Xuồng, Giang, Nùng An, Phàn Sinh, Nùng Cháo, Nùng Lòi, Quý Rim, Khèn Lài"),
    ("08", "HMông", "Mèo, Hoa, Mèo Xanh, Mèo Đỏ, Mèo Đen, Ná Mẻo, Mán Trắng"),
    (
        "09",
        "Dao",
        "Mán, Động, Trại, Xá, Dìu, Miên, Kiềm, Miền, Quần Trắng, Dao Đỏ, Quần Chẹt, Lô Giang, Dao Tiền, Thanh Y, "
        "Lan Tẻn, Đại Bản, Tiểu Bản, Cóc Ngáng, Cóc Mùn, Sơn Đầu",
    ),
    ("10", "Gia-rai", "Giơ-rai, Tơ-buăn, Chơ-rai, Hơ-bau, Hđrung, Chor"),
    ("11", "Ngái", "Xín, Lê, Đản, Khách Gia"),
    ("12", "Ê-đê", "Ra-đê, Đê, Kpạ, A-đham, Krung, Ktul, Đliê Ruê, Blô, Epan, Mđhur, Bih"),
    (
        "13",
        "Ba na",
        "Giơ-lar, Tơ-lô, Giơ-lâng, Y-lăng, Rơ-ngao, Krem, Roh, ConKđe, A-la Công, Kpăng Công, Bơ-nâm",
    ),
    ("14", "Xơ-Đăng", "Xơ-teng, Hđang, Tơ-đra, Mơ-nâm, Ha-lăng, Ca-dong, Kmrâng, ConLan, Bri-la, Tang"),
    ("15", "Sán Chay", "Cao Lan, Sán Chỉ, Mán Cao Lan, Hờn Bạn, Sơn Tử"),
    ("16", "Cơ-ho", "Xrê, Nốp, Tu-lốp, Cơ-don, Chil, Lat, Lach, Trinh"),
    ("17", "Chăm", "Chàm, Chiêm Thành, Hroi"),
    ("18", "Sán Dìu", "Sán Dẻo, Trại, Trại Đất, Mán, Quần Cộc"),
    ("19", "Hrê", "Chăm Rê, Chom, Krẹ Luỹ"),
    ("20", "Mnông", "Pnông, Nông, Pré, Bu-đâng, ĐiPri, Biat, Gar, Rơ-lam, Chil"),
    ("21", "Ra-glai", "Ra-clây, Rai, Noang, La-oang"),
    ("22", "Xtiêng", "Xa-điêng"),
    ("23", "Bru-Vân Kiều", "Bru, Vân Kiều, Măng Coong, Tri Khùa"),
    ("24", "Thổ", "Kẹo, Mọn, Cuối, Họ, Đan Lai, Ly Hà, Tày Pọng, Con Kha, Xá Lá Vàng"),
    ("25", "Giáy", "Nhắng, Dẩng, Pầu Thìn Nu Nà, Cùi Chu, Xa"),
    ("26", "Cơ-tu", "Ca-tu, Cao, Hạ, Phương, Ca-tang"),
    ("27", "Gié Triêng", "Đgiéh, Tareb, Giang Rẫy Pin, Triêng, Treng, Ta-riêng, Ve, Veh, La-ve, Ca-tang"),
    ("28", "Mạ", "Châu Mạ, Mạ Ngăn, Mạ Xóp, Mạ Tô, Mạ Krung"),
    ("29", "Khơ-mú", "Xá Cẩu, Mứn Xen, Pu Thênh, Tềnh, Tày Hay"),
    ("30", "Co", "Cor, Col, Cùa, Trầu"),
    ("31", "Tà-ôi", "Tôi-ôi, Pa-co, Pa-hi, Ba-hi"),
    ("32", "Chơ-ro", "Dơ-ro, Châu-ro"),
    ("33", "Kháng", "Xá Khao, Xá Súa, Xá Dón, Xá Dẩng, Xá Hốc, Xá Ái, Xá Bung, Quảng Lâm"),
    ("34", "Xinh-mun", "Puộc, Pụa"),
    ("35", "Hà Nhì", "U Ni, Xá U Ni"),
    ("36", "Chu ru", "Chơ-ru, Chu"),
    ("37", "Lào", "Là Bốc, Lào Nọi"),
    ("38", "La Chí", "Cù Tê, La Quả"),
    ("39", "La Ha", "Xá Khao, Khlá Phlạo"),
    ("40", "Phù Lá", "Bồ Khô Pạ, Mu Di Pạ Xá, Phó, Phổ, Va Xơ"),
    ("41", "La Hủ", "Lao, Pu Đang, Khù Xung, Cò Xung, Khả Quy"),
    ("42", "Lự", "Lừ, Nhuồn, Duôn"),
    ("43", "Lô Lô", "Mun Di"),
    (
        "44",
        "Chứt",
        "Sách, Máy, Rục, Mã-liêng, A-rem, Tu vang, Pa-leng, Xơ-Lang, Tơ-hung, Chà-củi, Tắc-củi, U-mo, Xá Lá Vàng",
    ),
    ("45", "Mảng", "Mảng Ư, Xá Lá Vàng"),
    ("46", "Pà Thẻn", "Pà Hưng, Tống"),
    ("47", "Co Lao", ""),
    ("48", "Cống", "Xắm Khống, Mấng Nhé, Xá Xeng"),
    ("49", "Bố Y", "Chủng Chá, Trọng Gia, Tu Di, Tu Din"),
    ("50", "Si La", "Cù Dề Xừ, Khả pẻ"),
    ("51", "Pu Péo", "Ka Pèo, Pen Ti Lô Lô"),
    ("52", "Brâu", "Brao"),
    ("53", "Ơ Đu", "Tày Hạt"),
    ("54", "Rơ măm", ""),
    ("55", "Người nước ngoài", ""),
    ("99", "Không rõ", ""),
)


def build_ethnic_groups() -> Json:
    concepts = [
        concept(code, display, definition=other, designation=designations(display))
        for code, display, other in ETHNIC_GROUPS
    ]
    return code_system(
        id_="vn-core-race",
        url=ETHNIC_URL,
        version="1.0",
        name="VnCoreRace",
        title="Danh mục Dân tộc - theo ban hành của Tổng cục thống kê",
        description=(
            "Mã 01-54: 54 dân tộc Việt Nam theo Danh mục các dân tộc Việt Nam ban hành kèm Quyết định "
            "121-TCTK/PPCĐ ngày 02/03/1979 của Tổng cục Thống kê (danh mục mà trường MA_DANTOC của QĐ 130/QĐ-BYT, "
            "sửa đổi bởi QĐ 4750/QĐ-BYT, dùng). Mã 55 (Người nước ngoài) và 99 (Không rõ) không thuộc QĐ 121: do "
            "VN Core IG dự thảo của Bộ Y tế bổ sung. URL, mã, tên và tên gọi khác (definition) giữ như CodeSystem "
            "vn-core-race của VN Core IG dự thảo (hl7vn/vn-core-ig, commit 8e6b6e0), là danh mục mà extension "
            "'Dân tộc' (VN-Core Extension-Race) của IG dùng; trong IG, CodeSystem 'vn-core-ethic' là danh mục tôn "
            "giáo, không phải dân tộc. ketnoi bổ sung: designation 'khong-dau' (tên không dấu); sửa dấu chấm thành "
            "dấu phẩy trong tên gọi khác của mã 13; bỏ definition rỗng của IG (mã 47, 54, 55, 99). Không có tên "
            "tiếng Anh: QĐ 121 không cho. Dựng bằng scripts/build_vn_terminology.py."
        ),
        copyright_=(
            "Danh mục của Tổng cục Thống kê (QĐ 121-TCTK/PPCĐ); văn bản hành chính không thuộc đối tượng bảo hộ "
            "quyền tác giả (Điều 15 Luật Sở hữu trí tuệ). Bản FHIR theo VN Core IG dự thảo của Bộ Y tế "
            "(hl7vn/vn-core-ig, CC0)."
        ),
        concepts=concepts,
    )


# ---------------------------------------------------------------------------- claims XML (QĐ 130/4750)
# The lists themselves: scripts/vn_claims_tables.py.


def claims_id(field: str) -> str:
    """Resource id (and URL tail) of a claims table: ``MA_LOAI_KCB`` → ``xml130-ma-loai-kcb`` (ids have no "_")."""
    return "xml130-" + field.lower().replace("_", "-")


def build_claims_table(table: ClaimsTable) -> Json:
    id_ = claims_id(table.field)
    content = "fragment" if table.fragment else "complete"
    description = (
        f"Danh mục của trường {table.field} trong chuẩn dữ liệu đầu ra phục vụ giám định, thanh toán chi phí khám "
        "bệnh, chữa bệnh BHYT: Quyết định 130/QĐ-BYT (18/01/2023) của Bộ Y tế, các bảng được thay thế bởi "
        f"Quyết định 4750/QĐ-BYT (29/12/2023), phụ lục, {table.where}. Tên hiển thị: {table.wording}."
        + (f" Danh sách chưa đủ (content fragment): {table.fragment}." if table.fragment else "")
        + " Thay đổi tạm thời của QĐ 3176/QĐ-BYT (29/10/2024) không được áp dụng (nguồn không có văn bản)."
        " Dựng bằng scripts/build_vn_terminology.py."
    )
    concepts = [concept(code, display, definition=definition) for code, display, definition in table.concepts]
    return code_system(
        id_=id_,
        url=f"{BASE}/CodeSystem/{id_}",
        version="4750-2023",
        name="Xml130" + "".join(part.capitalize() for part in table.field.split("_")),
        title=table.title,
        description=description,
        copyright_=(
            "Danh mục của Bộ Y tế (QĐ 130/QĐ-BYT, QĐ 4750/QĐ-BYT); văn bản hành chính không thuộc đối tượng bảo hộ "
            "quyền tác giả (Điều 15 Luật Sở hữu trí tuệ)."
        ),
        concepts=concepts,
        content=content,
    )


# ---------------------------------------------------------------------------------------- output


def build_groups() -> dict[str, list[Json]]:
    """File name → the resources it holds, sorted by (resourceType, url)."""
    admin = load_admin_data()
    new_cs = build_admin_2025(admin)
    old_cs = build_admin_legacy(admin)
    groups = {
        "vn-admin-units.json.gz": [build_designation_use(), new_cs, old_cs, build_admin_map(admin, new_cs, old_cs)],
        "vn-ethnic-groups.json.gz": [build_ethnic_groups()],
        "vn-claims-tables.json.gz": [build_claims_table(t) for t in CLAIMS_TABLES],
    }
    return {name: sorted(res, key=lambda r: (r["resourceType"], r["url"])) for name, res in groups.items()}


def encode(resources: list[Json]) -> bytes:
    """Compact UTF-8 JSON, gzip'd with a fixed header (no name, mtime 0): the same input gives the same bytes."""
    payload = json.dumps(resources, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help=f"output folder (default {DATA_DIR})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, resources in build_groups().items():
        (args.out / name).write_bytes(encode(resources))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
