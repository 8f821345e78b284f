"""Read and check a FHIR NPM package archive (``.tgz``) from an untrusted source, in memory.

Nothing is extracted to disk. The archive is refused (:class:`PackageError`, one line) when:

- it is larger than :data:`MAX_ARCHIVE` compressed, has more than :data:`MAX_MEMBERS` members, a
  member larger than :data:`MAX_FILE` or more than :data:`MAX_TOTAL` uncompressed in all (a gzip
  bomb stops at the limit: sizes are checked from the headers before anything is read);
- a member is not a regular file or a folder (links, devices, FIFOs), or its name is absolute, has
  a ``..`` part or a backslash, is outside ``package/``, or appears twice;
- ``package/package.json`` is missing or invalid: ``name`` (lower-case FHIR package id), ``version``
  and ``fhirVersions`` (only ``4.0.1``) are required, ``dependencies`` an object of strings;
- a resource file directly under ``package/`` is not a JSON object with a ``resourceType``.

Resources are the ``package/*.json`` files (``package.json`` and ``.index.json`` aside); files in
sub-folders (``package/example/``, ``package/other/``, ...) and other files are listed as ignored.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

MAX_ARCHIVE = 64 * 1024 * 1024  # compressed
MAX_TOTAL = 256 * 1024 * 1024  # uncompressed, all members
MAX_FILE = 32 * 1024 * 1024  # uncompressed, one member
MAX_MEMBERS = 20_000

FHIR_VERSION = "4.0.1"
CORE = "hl7.fhir.r4.core"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")


class PackageError(ValueError):
    """The archive is not a package ketnoi accepts; the message is one line."""


@dataclass(frozen=True, slots=True)
class PackageFile:
    """One resource file of the package: its name below ``package/`` and its parsed JSON."""

    name: str
    resource: dict[str, Any]

    @property
    def resource_type(self) -> str:
        return str(self.resource["resourceType"])


@dataclass(frozen=True, slots=True)
class NpmPackage:
    name: str
    version: str
    canonical: str | None
    fhir_versions: tuple[str, ...]
    dependencies: dict[str, str]
    files: tuple[PackageFile, ...] = field(repr=False)
    ignored: tuple[str, ...] = ()  # other members (below package/), not resources
    title: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}#{self.version}"


def read_package(path: str | Path) -> NpmPackage:
    """Read and check the archive at ``path``."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise PackageError(f"{path}: {exc.strerror or exc}") from exc
    if size > MAX_ARCHIVE:
        raise PackageError(f"{path}: {size:,} bytes, more than the {MAX_ARCHIVE:,} a package may have")
    return parse_package(path.read_bytes(), str(path))


def parse_package(data: bytes, source: str = "package") -> NpmPackage:
    """Check the archive ``data`` (``source`` names it in errors) and return its contents."""
    if len(data) > MAX_ARCHIVE:
        raise PackageError(f"{source}: {len(data):,} bytes, more than the {MAX_ARCHIVE:,} a package may have")
    members = _members(data, source)
    manifest = _json(members.pop("package/package.json", None), "package/package.json", source)
    if manifest is None:
        raise PackageError(f"{source}: no package/package.json: not a FHIR NPM package")
    members.pop("package/.index.json", None)
    files: list[PackageFile] = []
    ignored: list[str] = []
    for name in sorted(members):
        short = name.removeprefix("package/")
        if "/" in short or not short.endswith(".json"):
            ignored.append(short)
            continue
        resource = _json(members[name], name, source)
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise PackageError(f"{source}: {name} is not a FHIR resource (a JSON object with a resourceType)")
        files.append(PackageFile(short, resource))
    return _package(manifest, files, ignored, source)


def _members(data: bytes, source: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    total = 0
    count = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for info in tar:  # one header at a time: the limits hold before the whole index is read
                count += 1
                if count > MAX_MEMBERS:
                    raise PackageError(f"{source}: more than {MAX_MEMBERS:,} files in the archive")
                name = _member_name(info.name, source)
                if info.isdir():
                    continue
                if not info.isreg():
                    raise PackageError(f"{source}: {info.name!r} is not a regular file (links and devices are refused)")
                if info.size > MAX_FILE:
                    raise PackageError(f"{source}: {name} has {info.size:,} bytes, more than {MAX_FILE:,} per file")
                total += info.size
                if total > MAX_TOTAL:
                    raise PackageError(f"{source}: more than {MAX_TOTAL:,} bytes uncompressed")
                if name in out:
                    raise PackageError(f"{source}: {name} appears twice in the archive")
                extracted = tar.extractfile(info)
                content = extracted.read(info.size + 1) if extracted is not None else b""
                if len(content) != info.size:
                    raise PackageError(f"{source}: {name} is truncated")
                out[name] = content
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, PackageError):
            raise
        raise PackageError(
            f"{source}: not a readable .tgz archive ({' '.join(str(exc).split()) or type(exc).__name__})"
        ) from exc
    return out


def _member_name(raw: str, source: str) -> str:
    """``raw`` made canonical (``./`` and trailing ``/`` dropped), refused outside ``package/``."""
    path = PurePosixPath(raw)
    if "\\" in raw or "\x00" in raw or path.is_absolute() or ".." in path.parts:
        raise PackageError(f"{source}: unsafe file name {raw!r} in the archive (outside the package)")
    parts = [part for part in path.parts if part != "."]
    if not parts or parts[0] != "package":
        raise PackageError(f"{source}: {raw!r} is outside the package/ folder")
    return "/".join(parts)


def _json(data: bytes | None, name: str, source: str) -> Any:
    if data is None:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PackageError(f"{source}: {name} is not valid JSON ({exc})") from exc


def _package(manifest: Any, files: list[PackageFile], ignored: list[str], source: str) -> NpmPackage:
    if not isinstance(manifest, dict):
        raise PackageError(f"{source}: package.json is not a JSON object")
    name, version = manifest.get("name"), manifest.get("version")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PackageError(f"{source}: package.json name {name!r} is not a FHIR package id (like hl7.fhir.vn.core)")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise PackageError(f"{source}: package.json version {version!r} is not a package version")
    versions = manifest.get("fhirVersions")
    if not isinstance(versions, list) or not versions or any(v != FHIR_VERSION for v in versions):
        raise PackageError(f"{source}: {name}#{version} is for FHIR {versions!r}, ketnoi takes only [{FHIR_VERSION!r}]")
    dependencies = manifest.get("dependencies") or {}
    if not isinstance(dependencies, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in dependencies.items()
    ):
        raise PackageError(f"{source}: package.json dependencies must be an object of name: version")
    canonical = manifest.get("canonical")
    title = manifest.get("title")
    return NpmPackage(
        name=name,
        version=version,
        canonical=canonical if isinstance(canonical, str) else None,
        fhir_versions=tuple(versions),
        dependencies=dict(dependencies),
        files=tuple(files),
        ignored=tuple(ignored),
        title=title if isinstance(title, str) else None,
    )
