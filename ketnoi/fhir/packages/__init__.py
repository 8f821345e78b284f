"""The FHIR packages ketnoi ships, as standard FHIR NPM package archives (``<packageId>-<version>.tgz``),
and a read-only registry of them: available in every database without being written into it.

Each archive is built by a script under ``scripts/`` from its source and is reproducible byte for
byte, so a rebuild shows whether the shipped file is current:

- ``hl7.fhir.vn.core-1.0.0.tgz``: the draft Vietnam Core implementation guide (CC0), converted from
  FHIR XML to JSON with the corrections listed in docs/vn-core-report.md, by
  ``scripts/build_vn_core.py``.
- ``ketnoi.fhir.vn-0.1.0.tgz``: ketnoi's own package on top of VN Core (CC0): the BHYT card profile on
  Coverage, the BHYT category and benefit-level CodeSystems and ValueSets, NamingSystems for the
  social-insurance number and the practising licence (docs/ketnoi-package.md), defined in Python by
  ``scripts/build_ketnoi_package.py``.

The registry (:func:`shipped`, :func:`shipped_resources`, :func:`find`, :func:`terminology_resources`)
lists every ``*.tgz`` here and loads each once, on first use, cached for the life of the process.
The archives are part of ketnoi itself (tests rebuild them and compare), so this loader only takes
what a package is made of (``package/package.json`` and the ``package/<file>.json`` resources
directly under ``package/``) and skips anything else; untrusted archives are read by
``ketnoi.ig.npm``, which checks them. Bottom layer: standard library and orjson only.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import orjson

__all__ = [
    "ShippedPackage",
    "find",
    "find_package",
    "shipped",
    "shipped_package",
    "shipped_resources",
    "terminology_resources",
]

TERMINOLOGY_TYPES = frozenset({"CodeSystem", "ValueSet", "ConceptMap"})


@dataclass(frozen=True, slots=True)
class ShippedPackage:
    """One shipped package: its ``package.json`` facts and its resources (parsed JSON, by file name)."""

    name: str
    version: str
    canonical: str | None
    dependencies: dict[str, str]
    resources: tuple[dict[str, Any], ...] = field(repr=False)
    file: str = ""

    @property
    def label(self) -> str:
        """``name#version``, as FHIR tooling writes a package reference."""
        return f"{self.name}#{self.version}"


def _read(file: str, data: bytes) -> ShippedPackage:
    manifest: dict[str, Any] | None = None
    found: list[tuple[str, dict[str, Any]]] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar.getmembers():
            name = info.name
            if not info.isreg() or not name.startswith("package/") or "/" in name[8:] or not name.endswith(".json"):
                continue
            extracted = tar.extractfile(info)
            if extracted is None:
                continue
            parsed = orjson.loads(extracted.read())
            if name == "package/package.json":
                manifest = parsed
            elif name != "package/.index.json" and isinstance(parsed, dict) and "resourceType" in parsed:
                found.append((name, parsed))
    if manifest is None:
        raise ValueError(f"{file}: no package/package.json")
    found.sort(key=lambda item: item[0])
    return ShippedPackage(
        name=str(manifest["name"]),
        version=str(manifest["version"]),
        canonical=manifest.get("canonical"),
        dependencies={str(k): str(v) for k, v in (manifest.get("dependencies") or {}).items()},
        resources=tuple(resource for _, resource in found),
        file=file,
    )


@cache
def shipped() -> tuple[ShippedPackage, ...]:
    """Every package shipped here, by file name."""
    folder = resources.files(__name__)
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".tgz"))
    return tuple(_read(name, folder.joinpath(name).read_bytes()) for name in names)


def shipped_package(name: str, version: str | None = None) -> ShippedPackage | None:
    """The shipped package ``name`` (of ``version`` when given)."""
    for package in shipped():
        if package.name == name and (version is None or package.version == version):
            return package
    return None


@cache
def shipped_resources() -> tuple[dict[str, Any], ...]:
    """The resources of every shipped package (the caller must not change them: they are shared)."""
    return tuple(resource for package in shipped() for resource in package.resources)


@cache
def _index() -> dict[tuple[str, str], list[tuple[ShippedPackage, dict[str, Any]]]]:
    index: dict[tuple[str, str], list[tuple[ShippedPackage, dict[str, Any]]]] = {}
    for package in shipped():
        for resource in package.resources:
            url = resource.get("url")
            if isinstance(url, str):
                index.setdefault((str(resource["resourceType"]), url), []).append((package, resource))
    return index


def find_package(
    resource_type: str, url: str, version: str | None = None
) -> tuple[ShippedPackage, dict[str, Any]] | None:
    """The shipped package and resource of ``resource_type`` with canonical ``url`` (``url|version``
    is understood too) and ``version`` when given; without a version, the first found."""
    if version is None and "|" in url:
        url, _, version = url.partition("|")
    for package, resource in _index().get((resource_type, url), []):
        if version is None or resource.get("version") == version:
            return package, resource
    return None


def find(resource_type: str, url: str, version: str | None = None) -> dict[str, Any] | None:
    """The shipped resource of ``resource_type`` with canonical ``url`` (and ``version``), or None."""
    found = find_package(resource_type, url, version)
    return found[1] if found is not None else None


@cache
def terminology_resources() -> tuple[dict[str, Any], ...]:
    """The CodeSystems, ValueSets and ConceptMaps of the shipped packages, for the packaged index of
    the terminology lookup (``ketnoi.terminology.lookup``), after the R4 and Vietnamese ones."""
    return tuple(r for r in shipped_resources() if r.get("resourceType") in TERMINOLOGY_TYPES)
