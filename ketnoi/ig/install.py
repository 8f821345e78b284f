"""Install a FHIR NPM package into a database: its conformance resources through the write path.

The resources of :data:`REGISTERED` types are written as ordinary resources, in ONE transaction
through ``Repository.update`` (validation, versioning, indexing, audit, write hooks: a
SearchParameter becomes live as if it had been PUT), for an operator's context; other types are
reported and skipped. Decisions (docs/adr/0019-ig-packages.md):

- A resource is identified by its type and canonical ``url`` + ``version`` (a NamingSystem, which has
  no url in R4, by its id and its package). One already stored with the same content (``meta`` and
  ``id`` aside) is left alone, so installing a package twice changes nothing; with other content the
  install is refused, naming both sides. The same holds against the shipped packages
  (``ketnoi.fhir.packages``), which are never written into the database.
- The id is the one in the package; when another resource (another url/version, another package,
  or one created through the API) holds ``Type/id``, a derived id ``<id>-<8 hex>`` (SHA-256 of
  ``name#version/Type/id``, so the same on every install) is used. Nothing is ever overwritten.
- Every written resource carries ``meta.tag`` ``{TAG_SYSTEM}|name#version``, so
  ``GET StructureDefinition?_tag=...`` lists a package's resources and a conflict can name the package.
- The package record (name, version, canonical, dependencies, count, when, by whom) is a row of the
  existing (kind, key) → JSON records (``Session.security_put``, kind :data:`RECORD_KIND`, key
  ``name#version``), written in the same transaction as the resources: no migration, and a refused
  or failed install leaves neither.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ketnoi.fhir import packages
from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError
from ketnoi.ig.npm import CORE, FHIR_VERSION, NpmPackage, PackageFile
from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository, unit_of_work
from ketnoi.interactions.services import Services
from ketnoi.search.query import Filter, SearchQuery
from ketnoi.store.base import Store

REGISTERED = ("StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "NamingSystem", "SearchParameter")
TAG_SYSTEM = "https://fhir.ketnoi.vn/CodeSystem/ig-package"
RECORD_KIND = "ig-package"
_FOREVER = 0.0  # security_list's "now" for records that never expire
_LOCK = "ig-install"


class InstallRefused(ValueError):
    """The package was not installed (nothing was written); the message is one line."""


@dataclass(slots=True)
class PackageRecord:
    """What ``ketnoi ig list`` shows of an installed package."""

    name: str
    version: str
    canonical: str | None
    dependencies: dict[str, str]
    resources: int
    installed_at: float
    installed_by: str
    missing_dependencies: list[str] = field(default_factory=list)
    title: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}#{self.version}"

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "name": self.name,
                "version": self.version,
                "canonical": self.canonical,
                "dependencies": self.dependencies,
                "resources": self.resources,
                "installedAt": self.installed_at,
                "installedBy": self.installed_by,
                "missingDependencies": self.missing_dependencies,
                "title": self.title,
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> PackageRecord:
        data = orjson.loads(text)
        return cls(
            name=data["name"],
            version=data["version"],
            canonical=data.get("canonical"),
            dependencies=dict(data.get("dependencies") or {}),
            resources=int(data.get("resources") or 0),
            installed_at=float(data.get("installedAt") or 0.0),
            installed_by=str(data.get("installedBy") or ""),
            missing_dependencies=list(data.get("missingDependencies") or []),
            title=data.get("title"),
        )


@dataclass(slots=True)
class InstallReport:
    package: str  # name#version
    written: list[str] = field(default_factory=list)  # Type/id
    unchanged: list[str] = field(default_factory=list)  # Type/id already stored with this content
    ignored: list[str] = field(default_factory=list)  # "Type (file)" of types not registered
    missing_allowed: list[str] = field(default_factory=list)  # name#version, --allow-missing-dependency
    already_installed: bool = False


def installed(store: Store) -> list[PackageRecord]:
    """The packages installed in the database, by name#version."""
    with store.session(write=False) as session:
        return [PackageRecord.from_json(value) for _, value in session.security_list(RECORD_KIND, _FOREVER)]


def tag_of(label: str) -> dict[str, str]:
    return {"system": TAG_SYSTEM, "code": label}


def missing_dependencies(package: NpmPackage, installed_labels: set[str]) -> list[str]:
    """``name#version`` of each dependency that is neither R4 core, shipped, nor installed."""
    out = []
    for name, version in sorted(package.dependencies.items()):
        if name == CORE and version == FHIR_VERSION:
            continue
        label = f"{name}#{version}"
        if packages.shipped_package(name, version) is None and label not in installed_labels:
            out.append(label)
    return out


def install(
    services: Services,
    package: NpmPackage,
    *,
    by: str,
    allow_missing: Sequence[str] = (),
    context: RequestContext | None = None,
) -> InstallReport:
    """Install ``package`` (see the module docstring); InstallRefused (nothing written) when a
    dependency is missing and not allowed by name, a resource conflicts, or one is invalid."""
    report = InstallReport(package.label)
    chosen: list[PackageFile] = []
    for file in package.files:
        if file.resource_type in REGISTERED:
            chosen.append(file)
        else:
            report.ignored.append(f"{file.resource_type} ({file.name})")
    _check_unique(package, chosen)
    _check_shipped(package, chosen)
    ctx = context or RequestContext.operator("ig-install")
    try:
        with unit_of_work(services, ctx, write=True) as repo:
            repo.lock(_LOCK)  # one install at a time: the checks below hold until the commit
            session = repo.session
            labels = {key for key, _ in session.security_list(RECORD_KIND, _FOREVER)}
            missing = missing_dependencies(package, labels)
            refused = [m for m in missing if m.partition("#")[0] not in allow_missing]
            if refused:
                raise InstallRefused(
                    f"{package.label} depends on {', '.join(refused)}, which is neither shipped nor installed: "
                    "install it first, or pass --allow-missing-dependency NAME"
                )
            report.missing_allowed = missing
            for file in chosen:
                _register(repo, package, file, report)
            existing = session.security_get(RECORD_KIND, package.label, _FOREVER)
            report.already_installed = existing is not None
            if existing is None or report.written:
                record = PackageRecord(
                    name=package.name,
                    version=package.version,
                    canonical=package.canonical,
                    dependencies=dict(package.dependencies),
                    resources=len(chosen),
                    installed_at=res.now(),
                    installed_by=by,
                    missing_dependencies=missing,
                    title=package.title,
                )
                session.security_put(RECORD_KIND, package.label, record.to_json(), None, record.installed_at)
            audit.record_bulk(repo, f"ketnoi ig install {package.label}")  # last, in the transaction
    except FhirError as exc:
        raise InstallRefused(f"{package.label}: {' '.join(str(exc).split())}") from exc
    return report


# ---- checks before the transaction ---------------------------------------------------------------


def _key(file: PackageFile) -> tuple[str, str, str | None] | None:
    """(type, url, version) of a canonical resource; None for one without a url (NamingSystem)."""
    url = file.resource.get("url")
    if not isinstance(url, str):
        return None
    version = file.resource.get("version")
    return file.resource_type, url, version if isinstance(version, str) else None


def _show(key: tuple[str, str, str | None]) -> str:
    return f"{key[0]} {key[1]}" + (f"|{key[2]}" if key[2] is not None else "")


def _check_unique(package: NpmPackage, chosen: list[PackageFile]) -> None:
    seen: dict[object, str] = {}
    for file in chosen:
        key: object = _key(file) or (file.resource_type, "id", file.resource.get("id"))
        if key in seen:
            raise InstallRefused(f"{package.label}: {seen[key]} and {file.name} are the same resource")
        seen[key] = file.name


def _check_shipped(package: NpmPackage, chosen: list[PackageFile]) -> None:
    shipped: dict[tuple[str, str, str | None], tuple[str, dict[str, Any]]] = {}
    for shipped_package in packages.shipped():
        for resource in shipped_package.resources:
            url, version = resource.get("url"), resource.get("version")
            if isinstance(url, str):
                known = (str(resource["resourceType"]), url, version if isinstance(version, str) else None)
                shipped.setdefault(known, (shipped_package.label, resource))
    for file in chosen:
        key = _key(file)
        if key is None or key not in shipped:
            continue
        label, resource = shipped[key]
        if _content(resource) != _content(file.resource):
            raise InstallRefused(
                f"{_show(key)} of {package.label} ({file.name}) differs from the one of the shipped package {label}"
            )


# ---- in the transaction --------------------------------------------------------------------------


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """What is compared: the resource without its id and server/package ``meta``."""
    out = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated", "tag")}
    tags = [t for t in (resource.get("meta") or {}).get("tag") or [] if not _is_package_tag(t)]
    if tags:
        meta["tag"] = tags
    if meta:
        out["meta"] = meta
    return out


def _is_package_tag(tag: Any) -> bool:
    return isinstance(tag, dict) and tag.get("system") == TAG_SYSTEM


def _package_of(resource: dict[str, Any]) -> str | None:
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if _is_package_tag(tag):
            return str(tag.get("code"))
    return None


def _describe(rtype: str, id: str, resource: dict[str, Any]) -> str:
    owner = _package_of(resource)
    return f"{rtype}/{id} " + (f"of package {owner}" if owner else "(stored, not from a package)")


def _current(repo: Repository, rtype: str, id: str) -> dict[str, Any] | None:
    """The current content of ``rtype/id``, or None when the id is free (never used, or deleted)."""
    try:
        stored = repo.read(rtype, id)
    except FhirError as exc:
        if exc.status in (404, 410):
            return None
        raise
    found = res.loads(stored.content or b"{}")
    return found if isinstance(found, dict) else None


def _stored_by_url(repo: Repository, key: tuple[str, str, str | None]) -> tuple[str, dict[str, Any]] | None:
    rtype, url, version = key
    query = SearchQuery((rtype,), filters=[Filter("url", "uri", None, (url,))], count=1000)
    for row in repo.search_page(query, ""):
        found = res.loads(row[2])
        if isinstance(found, dict) and found.get("version") == version:
            return str(row[1]), found
    return None


def derived_id(package: NpmPackage, rtype: str, id: str) -> str:
    """The id used when ``rtype/id`` is taken by another resource: the same on every install."""
    digest = hashlib.sha256(f"{package.label}/{rtype}/{id}".encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9.-]', '-', id)[:55]}-{digest}"


def _register(repo: Repository, package: NpmPackage, file: PackageFile, report: InstallReport) -> None:
    rtype = file.resource_type
    wanted = _content(file.resource)
    key = _key(file)
    if key is not None:
        stored = _stored_by_url(repo, key)
        if stored is not None:
            stored_id, resource = stored
            if _content(resource) != wanted:
                other = _describe(rtype, stored_id, resource)
                raise InstallRefused(f"{_show(key)} of {package.label} ({file.name}) differs from {other}")
            report.unchanged.append(f"{rtype}/{stored_id}")
            return
    own = file.resource.get("id")
    candidates: list[str] = [own] if isinstance(own, str) and res.is_valid_id(own) else []
    candidates.append(
        derived_id(package, rtype, own if isinstance(own, str) and own else file.name.removesuffix(".json"))
    )
    for id in candidates:
        held = _current(repo, rtype, id)
        if held is None:
            body = copy.deepcopy(file.resource)
            body["id"] = id
            meta = dict(body.get("meta") or {})
            meta["tag"] = [*(t for t in meta.get("tag") or [] if not _is_package_tag(t)), tag_of(package.label)]
            body["meta"] = meta
            try:
                repo.update(rtype, id, body)
            except FhirError as exc:
                raise InstallRefused(f"{package.label} ({file.name}): {' '.join(str(exc).split())}") from exc
            report.written.append(f"{rtype}/{id}")
            return
        if key is None and _package_of(held) == package.label:  # a NamingSystem, installed before
            if _content(held) != wanted:
                raise InstallRefused(
                    f"{rtype} {file.name} of {package.label} differs from {_describe(rtype, id, held)}"
                )
            report.unchanged.append(f"{rtype}/{id}")
            return
    taken = ", ".join(f"{rtype}/{id}" for id in candidates)
    raise InstallRefused(f"{package.label} ({file.name}): {taken} are all taken by other resources")


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
