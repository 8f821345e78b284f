"""The import-linter contracts bite: one bad import in a copy of the package breaks the contract that forbids it.

Each case copies the package's ``*.py`` files and ``pyproject.toml`` into a temporary folder, adds one probe
module with a forbidden import, and runs ``lint-imports`` on the copy (``cwd`` and ``PYTHONPATH`` point at
it, so the copy, not the installed package, is analysed). The real package directory is never written to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

LAYERS = "Layers: edges on top, FHIR vocabulary at the bottom"
BACKEND = "Only the composition root picks a storage backend"
TRANSPORT = "FHIR logic is transport-agnostic: no web framework below the edge"
DRIVERS = "Only the storage layer imports a database driver"
DEMO = "The demo data generator stands alone: no server layer"
AUTH = "Auth is pure: standard library, crypto libraries and the bottom layer only"
VN = "Vietnamese data rules are pure: standard library only"
XML130 = "ketnoi.xml130 reads XML only: standard library, defusedxml and ketnoi.vn"
CLAIMS = "The claims mapping is pure: tables in, resources out"
MPI = "The patient-matching core is pure: records in, pairs and weights out"

# (package the probe is written into, module it imports, contract that must break)
BAD_IMPORTS = [
    ("operations", "ketnoi.store.sqlite", BACKEND),
    ("bulk", "ketnoi.store.postgres", BACKEND),
    ("jobs", "ketnoi.store.sqlstore", BACKEND),
    ("auth", "ketnoi.store.sqlite", BACKEND),
    ("jobs", "ketnoi.interactions.repository", LAYERS),
    ("search", "ketnoi.interactions.repository", LAYERS),
    ("validation", "ketnoi.terminology.expand", LAYERS),
    ("demo", "ketnoi.store.base", DEMO),
    ("demo", "ketnoi.fhir.resource", None),
    ("auth", "ketnoi.interactions.request", AUTH),
    ("auth", "ketnoi.demo.people", AUTH),
    ("auth", "psycopg", AUTH),
    ("auth", "httpx", AUTH),
    ("auth", "orjson", AUTH),
    ("interactions", "starlette.requests", TRANSPORT),
    ("operations", "starlette.responses", TRANSPORT),
    ("demo", "uvicorn", TRANSPORT),
    ("operations", "sqlite3", DRIVERS),
    ("app", "psycopg", DRIVERS),
    ("bulk", "psycopg_pool", DRIVERS),
    ("vn", "ketnoi.fhir.resource", VN),
    ("vn", "orjson", VN),
    ("vn", "re", None),
    ("xml130", "ketnoi.fhir.resource", XML130),
    ("xml130", "orjson", XML130),
    ("xml130", "defusedxml.ElementTree", None),
    ("xml130", "ketnoi.vn.identifiers", None),
    ("claims", "ketnoi.app", LAYERS),
    ("claims", "ketnoi.store.sqlite", BACKEND),
    ("claims", "ketnoi.interactions.repository", None),
    ("mpi/compare", "ketnoi.interactions.repository", MPI),
    ("mpi/train", "ketnoi.store.base", MPI),
    ("mpi/dedupe", "ketnoi.jobs", MPI),
    ("mpi/model", "ketnoi.search.normalize", None),
    ("mpi", "ketnoi.api", LAYERS),
]


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's ``*.py`` files (folder structure kept) and ``pyproject.toml``, copied once per module."""
    tree = tmp_path_factory.mktemp("clean")
    for source in (ROOT / "ketnoi").rglob("*.py"):
        target = tree / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    shutil.copyfile(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


@pytest.fixture
def copy(clean_copy: Path, tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(clean_copy, tree)
    return tree


def _write_probe(tree: Path, package: str, imported: str) -> str:
    folder = tree / "ketnoi" / package
    if folder.is_dir():
        path, probe = folder / "_probe.py", f"ketnoi.{package}._probe"
    else:  # a single-module layer such as ketnoi.app, or one module ("mpi/compare"): the probe goes inside it
        path, probe = tree / "ketnoi" / f"{package}.py", f"ketnoi.{package.replace('/', '.')}"
        assert path.is_file(), path
    with path.open("a", encoding="utf-8") as file:
        file.write(f"\nimport {imported}  # deliberate bad import\n")
    return probe


def test_the_clean_copy_keeps_every_contract(copy: Path) -> None:
    result = _lint(copy)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in (LAYERS, BACKEND, TRANSPORT, DRIVERS, DEMO, AUTH, VN, XML130, CLAIMS, MPI):
        assert f"{name} KEPT" in output, output


@pytest.mark.parametrize(
    ("package", "imported", "contract"),
    BAD_IMPORTS,
    ids=[f"{package}->{imported}" for package, imported, _ in BAD_IMPORTS],
)
def test_a_bad_import_breaks_its_contract(copy: Path, package: str, imported: str, contract: str | None) -> None:
    probe = _write_probe(copy, package, imported)
    result = _lint(copy)
    output = result.stdout + result.stderr
    if contract is None:  # an allowed import, to show the probe itself breaks nothing
        assert result.returncode == 0, output
        return
    assert result.returncode != 0, output
    assert f"{contract} BROKEN" in output, output
    assert probe in output, output
