"""Reading and checking FHIR NPM package archives (ketnoi.ig.npm) and the shipped-package registry."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from ketnoi.fhir import packages
from ketnoi.ig import npm
from ketnoi.ig.npm import PackageError, read_package
from tests.ig import archive, code_system, manifest, package

CS = "http://example.org/CodeSystem/colour"


def test_a_valid_package_is_read(tmp_path: Path) -> None:
    path = package(tmp_path / "p.tgz", [code_system("colour", CS)], title="Example")
    archive_files = {"package/example/Patient-x.json": {"resourceType": "Patient", "id": "x"}}
    with tarfile.open(path, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    archive(path, {**members, **archive_files, "package/README.md": b"hello"})
    read = read_package(path)
    assert (read.name, read.version, read.label) == ("example.fhir.test", "1.0.0", "example.fhir.test#1.0.0")
    assert read.fhir_versions == ("4.0.1",)
    assert read.dependencies == {"hl7.fhir.r4.core": "4.0.1"}
    assert read.title == "Example" and read.canonical == "http://example.org/example.fhir.test"
    assert [(f.name, f.resource_type) for f in read.files] == [("CodeSystem-colour.json", "CodeSystem")]
    assert read.ignored == ("README.md", "example/Patient-x.json")


def test_the_shipped_vn_core_archive_passes_the_checks() -> None:
    shipped = packages.shipped_package("hl7.fhir.vn.core", "1.0.0")
    assert shipped is not None
    read = read_package(Path(packages.__file__).parent / shipped.file)
    assert read.label == shipped.label == "hl7.fhir.vn.core#1.0.0"
    assert len(read.files) == len(shipped.resources) == 105
    assert read.dependencies == {"hl7.fhir.r4.core": "4.0.1", "hl7.fhir.uv.ips": "1.0.0"}


@pytest.mark.parametrize(
    ("members", "links", "message"),
    [
        ({"package/package.json": manifest(), "../evil": b"x"}, None, "unsafe file name '../evil'"),
        ({"package/package.json": manifest(), "package/../../evil.json": b"{}"}, None, "unsafe file name"),
        ({"package/package.json": manifest(), "/etc/evil": b"x"}, None, "unsafe file name"),
        ({"package/package.json": manifest(), "other/x.json": b"{}"}, None, "outside the package/ folder"),
        ({"package/package.json": manifest()}, {"package/link.json": "/etc/passwd"}, "not a regular file"),
        ({"package/x.json": {"resourceType": "Patient"}}, None, "no package/package.json"),
        ({"package/package.json": b"{not json"}, None, "package/package.json is not valid JSON"),
        ({"package/package.json": manifest(), "package/x.json": [1]}, None, "is not a FHIR resource"),
        ({"package/package.json": manifest(name="Bad Name")}, None, "is not a FHIR package id"),
        ({"package/package.json": manifest(version="")}, None, "is not a package version"),
        ({"package/package.json": manifest(fhirVersions=["4.3.0"])}, None, "ketnoi takes only ['4.0.1']"),
        ({"package/package.json": manifest(fhirVersions=None)}, None, "ketnoi takes only"),
        ({"package/package.json": manifest(dependencies=["a"])}, None, "dependencies must be an object"),
    ],
)
def test_unsafe_or_invalid_archives_are_refused(
    tmp_path: Path, members: dict[str, object], links: dict[str, str] | None, message: str
) -> None:
    path = archive(tmp_path / "bad.tgz", members, links=links)
    with pytest.raises(PackageError) as caught:
        read_package(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_a_duplicate_member_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for data in (b'{"name": "a"}', b'{"name": "b"}'):
            info = tarfile.TarInfo("package/package.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(PackageError, match="appears twice"):
        npm.parse_package(buffer.getvalue())


def test_not_an_archive_and_size_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PackageError, match=r"not a readable \.tgz archive"):
        npm.parse_package(b"plain text")
    with pytest.raises(PackageError, match=r"not a readable \.tgz archive"):
        npm.parse_package(gzip.compress(b"plain text"))
    with pytest.raises(PackageError, match="No such file"):
        read_package(tmp_path / "absent.tgz")
    path = package(tmp_path / "p.tgz", [code_system("colour", CS)])
    monkeypatch.setattr(npm, "MAX_FILE", 100)
    with pytest.raises(PackageError, match="more than 100 per file"):
        read_package(path)
    monkeypatch.setattr(npm, "MAX_FILE", 10**6)
    monkeypatch.setattr(npm, "MAX_TOTAL", 300)
    with pytest.raises(PackageError, match="more than 300 bytes uncompressed"):
        read_package(path)
    monkeypatch.setattr(npm, "MAX_TOTAL", 10**6)
    monkeypatch.setattr(npm, "MAX_MEMBERS", 2)
    with pytest.raises(PackageError, match="more than 2 files"):
        read_package(path)
    monkeypatch.setattr(npm, "MAX_ARCHIVE", 10)
    with pytest.raises(PackageError, match="more than the 10 a package may have"):
        read_package(path)


def test_the_registry_finds_shipped_resources() -> None:
    assert [p.label for p in packages.shipped()] == ["hl7.fhir.vn.core#1.0.0", "ketnoi.fhir.vn#0.1.0"]
    assert len(packages.shipped_resources()) == 105 + 8
    url = "http://fhir.ehealth.gov.vn/core/CodeSystem/vn-core-administrative-address"
    found = packages.find("CodeSystem", url)
    assert found is not None and found["id"] == "vn-core-administrative-address"
    assert packages.find("CodeSystem", url, "1.0") is found
    assert packages.find("CodeSystem", f"{url}|1.0") is found
    assert packages.find("CodeSystem", url, "9.9") is None
    assert packages.find("ValueSet", url) is None
    hit = packages.find_package("CodeSystem", url)
    assert hit is not None and hit[0].label == "hl7.fhir.vn.core#1.0.0"
    terminology = packages.terminology_resources()
    assert {r["resourceType"] for r in terminology} == {
        "CodeSystem",
        "ValueSet",
    }  # no ConceptMap in VN Core and len(terminology) == 30
    assert packages.shipped_package("hl7.fhir.vn.core", "2.0.0") is None
