"""Hard-duplicates mode: twins (the hard negatives), twins.csv, and the normal output left as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ketnoi.demo import names
from ketnoi.demo.generate import (
    TWINS_FILE,
    generate,
    iter_blocks,
    iter_blocks_truth,
    read_duplicates,
    read_twins,
)

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
BHYT = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
Resource = dict[str, Any]


def _ident(p: Resource, system: str) -> str | None:
    return next((i["value"] for i in p.get("identifier", []) if i["system"] == system), None)


def check_twin(twin: Resource, sibling: Resource) -> None:
    """Same family name, birth date, address and sex; another given name, id, CCCD, card and phone."""
    tn, sn = twin["name"][0], sibling["name"][0]
    assert tn["family"] == sn["family"] and tn["given"][:-1] == sn["given"][:-1]
    assert names.fold(tn["given"][-1]) != names.fold(sn["given"][-1])
    for key in ("birthDate", "address", "gender", "extension"):
        assert twin[key] == sibling[key], key
    assert twin["id"] != sibling["id"]
    assert _ident(twin, CCCD) is not None and _ident(twin, CCCD) != _ident(sibling, CCCD)
    assert (_ident(twin, BHYT) is None) == (_ident(sibling, BHYT) is None)
    assert _ident(sibling, BHYT) is None or _ident(twin, BHYT) != _ident(sibling, BHYT)
    phones = [[t["value"] for t in p.get("telecom", [])] for p in (twin, sibling)]
    assert bool(phones[0]) == bool(phones[1]) and (not phones[0] or phones[0] != phones[1])


def test_twins_share_what_a_matcher_looks_at_and_differ_in_the_rest() -> None:
    n = 3000
    found = cared = 0
    for block in iter_blocks_truth(n, 13, 0.2, hard=True):
        if block.twin is None:
            continue
        found += 1
        sibling = block.resources[0]
        assert block.twin.sibling_id == sibling["id"]
        (twin,) = [r for r in block.resources if r["resourceType"] == "Patient" and r["id"] == block.twin.twin_id]
        check_twin(twin, sibling)
        assert block.duplicate is None or block.duplicate.duplicate_id != twin["id"]  # not a duplicate
        # A person of its own, registered at the sibling's commune station, with care of its own (if any).
        assert twin["generalPractitioner"] == sibling["generalPractitioner"]
        refs = {r.get("subject", r.get("patient", r.get("beneficiary", {}))).get("reference") for r in block.resources}
        cared += f"Patient/{twin['id']}" in refs
    assert 0.003 * n < found < 0.02 * n  # 1 %
    assert cared > found / 2


def test_normal_mode_has_no_twins_and_ignores_the_twin_stream() -> None:
    """With hard off the twin stream is never drawn: the blocks are those of hard mode minus the twins
    (duplicate rate 0, so the duplicates' errors, which differ by mode, are out of the picture)."""
    twins = 0
    pairs = zip(iter_blocks_truth(1500, 4, 0.0), iter_blocks_truth(1500, 4, 0.0, hard=True), strict=True)
    for normal, hard in pairs:
        assert normal.twin is None
        assert hard.resources[: len(normal.resources)] == normal.resources
        if hard.twin is None:
            assert hard.resources == normal.resources
        else:
            twins += 1
            assert hard.resources[len(normal.resources)]["id"] == hard.twin.twin_id
    assert twins > 0
    # iter_blocks keeps its pairs, and its default is the normal mode.
    assert list(iter_blocks(30, 4)) == [(b.resources, b.duplicate) for b in iter_blocks_truth(30, 4, hard=False)]


def test_originals_do_not_depend_on_the_mode() -> None:
    for normal, hard in zip(iter_blocks_truth(200, 6, 0.5), iter_blocks_truth(200, 6, 0.5, hard=True), strict=True):
        assert normal.resources[0] == hard.resources[0]
        assert (normal.duplicate is None) == (hard.duplicate is None)


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_generate_hard_writes_twins_csv_and_is_deterministic(tmp_path: Path) -> None:
    summary = generate(600, 8, tmp_path / "a", duplicate_rate=0.1, hard=True)
    generate(600, 8, tmp_path / "b", duplicate_rate=0.1, hard=True)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    out = tmp_path / "a"
    assert (out / TWINS_FILE).read_text(encoding="utf-8").startswith("twin_id,sibling_id\n")
    twins = read_twins(out / TWINS_FILE)
    assert len(twins) == summary.twins > 0 and "twins" in summary.table()
    patients = {p["id"]: p for p in map(orjson.loads, (out / "Patient.ndjson").read_bytes().splitlines())}
    assert len(patients) == summary.patients + summary.duplicates + summary.twins
    for t in twins:
        check_twin(patients[t.twin_id], patients[t.sibling_id])
    duplicated = {i for r in read_duplicates(out / "duplicates.csv") for i in (r.duplicate_id, r.original_id)}
    assert not duplicated & {t.twin_id for t in twins}


def test_normal_generate_writes_no_twins_csv_and_removes_a_stale_one(tmp_path: Path) -> None:
    generate(150, 8, tmp_path, fmt="bundles", hard=True)
    assert (tmp_path / TWINS_FILE).exists()
    summary = generate(150, 8, tmp_path, fmt="bundles")
    assert not (tmp_path / TWINS_FILE).exists() and summary.twins == 0 and "twins" not in summary.table()
