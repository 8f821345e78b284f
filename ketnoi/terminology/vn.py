"""The Vietnamese code systems ketnoi ships (docs/vn-code-systems.md).

:func:`vn_resources` returns every resource of the files in ``ketnoi/terminology/data`` (built by
``scripts/build_vn_terminology.py``): the administrative units since 01/07/2025 and before, the ConceptMap
between them, the ethnic groups and the code lists of the claims XML (QĐ 130/QĐ-BYT, QĐ 4750/QĐ-BYT).
They are read once and cached; the resources are shared, so callers must not modify them.

Type-ahead without diacritics needs no helper of its own: :func:`ketnoi.search.normalize.fold` folds
Vietnamese (``fold("Phường Thanh Xuân") == "phuong thanh xuan"``), and every concept whose display has
diacritics also carries its no-diacritics designation (use ``khong-dau`` of :data:`DESIGNATION_USE_URL`).
"""

from __future__ import annotations

import gzip
from functools import cache
from importlib.resources import files
from typing import Any, Final

import orjson

__all__ = [
    "ADMIN_2025_URL",
    "ADMIN_LEGACY_URL",
    "ADMIN_MAP_URL",
    "DATA_FILES",
    "DESIGNATION_USE_URL",
    "ETHNIC_GROUP_URL",
    "NO_DIACRITICS_USE",
    "vn_resources",
]

ADMIN_2025_URL: Final = "https://fhir.ketnoi.vn/CodeSystem/vn-admin-unit-2025"
ADMIN_LEGACY_URL: Final = "https://fhir.ketnoi.vn/CodeSystem/vn-admin-unit-legacy"
ADMIN_MAP_URL: Final = "https://fhir.ketnoi.vn/ConceptMap/vn-admin-unit-legacy-to-2025"
# The draft VN Core IG's ethnic-group list (its "vn-core-ethic" is the religion list).
ETHNIC_GROUP_URL: Final = "http://fhir.ehealth.gov.vn/core/CodeSystem/vn-core-race"
DESIGNATION_USE_URL: Final = "https://fhir.ketnoi.vn/CodeSystem/designation-use"
NO_DIACRITICS_USE: Final = "khong-dau"

DATA_FILES: Final = ("vn-admin-units.json.gz", "vn-ethnic-groups.json.gz", "vn-claims-tables.json.gz")


def vn_resources() -> list[dict[str, Any]]:
    """Every shipped resource (CodeSystems and the ConceptMap), in file order; read once, then cached."""
    return list(_load())


@cache
def _load() -> tuple[dict[str, Any], ...]:
    folder = files("ketnoi.terminology.data")
    resources: list[dict[str, Any]] = []
    for name in DATA_FILES:
        loaded = orjson.loads(gzip.decompress(folder.joinpath(name).read_bytes()))
        if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
            raise ValueError(f"{name}: expected a JSON array of resources")
        resources.extend(loaded)
    return tuple(resources)
