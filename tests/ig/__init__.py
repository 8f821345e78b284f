"""Tests of FHIR implementation-guide packages (ketnoi.ig, ketnoi.fhir.packages); helpers to build
small NPM package archives in a temporary folder."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import orjson


def manifest(name: str = "example.fhir.test", version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "fhirVersions": ["4.0.1"],
        "canonical": f"http://example.org/{name}",
        "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
        **extra,
    }


def archive(path: Path, files: dict[str, Any], *, links: dict[str, str] | None = None) -> Path:
    """A .tgz at ``path`` with ``files`` (member name → JSON value, or bytes as they are) and symbolic
    ``links`` (member name → target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, value in files.items():
            data = value if isinstance(value, bytes) else orjson.dumps(value)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def package(path: Path, resources: list[dict[str, Any]], **manifest_args: Any) -> Path:
    """A standard package: package/package.json, package/.index.json, package/<Type>-<id>.json."""
    files: dict[str, Any] = {"package/package.json": manifest(**manifest_args)}
    index = []
    for resource in resources:
        name = f"{resource['resourceType']}-{resource['id']}.json"
        files[f"package/{name}"] = resource
        index.append({"filename": name, "resourceType": resource["resourceType"], "id": resource["id"]})
    files["package/.index.json"] = {"index-version": 1, "files": index}
    return archive(path, files)


def code_system(id: str, url: str, version: str = "1.0", code: str = "a") -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": id,
        "url": url,
        "version": version,
        "status": "active",
        "content": "complete",
        "concept": [{"code": code, "display": code.upper()}],
    }


def value_set(id: str, url: str, system: str, version: str = "1.0") -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": id,
        "url": url,
        "version": version,
        "status": "active",
        "compose": {"include": [{"system": system}]},
    }


def search_parameter(id: str, code: str = "test-nickname") -> dict[str, Any]:
    return {
        "resourceType": "SearchParameter",
        "id": id,
        "url": f"http://example.org/SearchParameter/{id}",
        "version": "1.0.0",
        "name": code,
        "status": "active",
        "description": "A test parameter",
        "code": code,
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.name.given",
    }
