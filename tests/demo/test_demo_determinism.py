"""Same N and seed → byte-identical output; patient i does not depend on N (prefix property)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketnoi.demo.generate import generate, iter_blocks

SHARED = {"Organization.ndjson", "Location.ndjson", "Practitioner.ndjson", "PractitionerRole.ndjson"}


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", ["ndjson", "bundles"])
def test_same_seed_gives_identical_bytes(tmp_path: Path, fmt: str) -> None:
    a = _files(_run(tmp_path / "a", 120, 5, fmt))
    b = _files(_run(tmp_path / "b", 120, 5, fmt))
    assert a.keys() == b.keys()
    assert len(a) >= 2
    for name in a:
        assert a[name] == b[name], name


def _run(out: Path, n: int, seed: int, fmt: str = "ndjson") -> Path:
    generate(n, seed, out, fmt=fmt)
    return out


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    a = _files(_run(tmp_path / "a", 60, 1))
    b = _files(_run(tmp_path / "b", 60, 2))
    for name in ("Patient.ndjson", "Encounter.ndjson", "Practitioner.ndjson"):
        assert a[name] != b[name], name


def test_smaller_run_is_a_prefix_of_a_bigger_one(tmp_path: Path) -> None:
    small = _files(_run(tmp_path / "small", 50, 9))
    big = _files(_run(tmp_path / "big", 100, 9))
    assert set(small) <= set(big)
    for name, data in small.items():
        if name in SHARED:
            assert big[name] == data, name
        else:
            assert big[name].startswith(data), name
            if name == "Patient.ndjson":
                assert len(big[name]) > len(data)


def test_original_patient_does_not_depend_on_duplicate_rate() -> None:
    dups = 0
    for (plain, none), (mixed, record) in zip(iter_blocks(40, 3, 0.0), iter_blocks(40, 3, 0.9), strict=True):
        assert none is None
        assert mixed[: len(plain)] == plain
        if record:
            dups += 1
            assert len(mixed) > len(plain)
            assert mixed[len(plain)]["resourceType"] == "Patient"
            assert mixed[len(plain)]["id"] == record.duplicate_id
    assert dups > 20
