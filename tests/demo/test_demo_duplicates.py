"""Deliberate duplicates: the rate, the ground truth, and each listed error really present."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from ketnoi.demo import names
from ketnoi.demo.duplicates import ERROR_KINDS, typo
from ketnoi.demo.generate import Summary, iter_blocks, read_duplicates

CCCD_SYSTEM = "http://fhir.ehealth.gov.vn/core/sid/national_id"


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _osa(a: str, b: str) -> int:
    """Optimal-string-alignment (restricted Damerau-Levenshtein) distance."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _cccd(p: dict[str, Any]) -> str | None:
    return next((i["value"] for i in p.get("identifier", []) if i["system"] == CCCD_SYSTEM), None)


def check_pair(dup: dict[str, Any], orig: dict[str, Any], errors: tuple[str, ...]) -> None:
    assert errors and set(errors) <= set(ERROR_KINDS) and len(set(errors)) == len(errors)
    assert dup["id"] != orig["id"]
    dn, on = dup["name"][0], orig["name"][0]
    # missing CCCD
    if "missing_cccd" in errors:
        assert _cccd(dup) is None and _cccd(orig) is not None
    else:
        assert _cccd(dup) == _cccd(orig)
    # birth date
    y, m, d = orig["birthDate"].split("-")
    if "day_month_swap" in errors:
        assert dup["birthDate"] == f"{y}-{d}-{m}" != orig["birthDate"]
    else:
        assert dup["birthDate"] == orig["birthDate"]
    # diacritics
    if "no_diacritics" in errors:
        assert dn["text"].isascii() and not on["text"].isascii()
    else:
        assert not dn["text"].isascii() or on["text"].isascii()
    # middle name (compared without diacritics, so it composes with no_diacritics)
    f = names.fold
    if "swapped_middle_name" in errors:
        assert len(dn["given"]) == len(on["given"]) == 2
        assert f(dn["given"][0]) != f(on["given"][0])
    else:
        assert [f(x) for x in dn["given"][:-1]] == [f(x) for x in on["given"][:-1]]
    # one-keystroke typo in the family or the given name
    fam_d, giv_d = _osa(f(dn["family"]), f(on["family"])), _osa(f(dn["given"][-1]), f(on["given"][-1]))
    if "typo" in errors:
        assert sorted((fam_d, giv_d)) == [0, 1]
    else:
        assert fam_d == giv_d == 0
    # everything else is the same person
    for key in ("gender", "address", "telecom"):
        assert dup.get(key) == orig.get(key), key
    assert dup["generalPractitioner"] != orig["generalPractitioner"]  # registered at another facility


def test_ground_truth_pairs_exist_and_differ_as_listed(ndjson_run: tuple[Path, Summary]) -> None:
    out, summary = ndjson_run
    patients = {p["id"]: p for p in read_ndjson(out / "Patient.ndjson")}
    records = read_duplicates(out / "duplicates.csv")
    assert len(records) == summary.duplicates > 0
    assert len(patients) == summary.patients + summary.duplicates
    for r in records:
        check_pair(patients[r.duplicate_id], patients[r.original_id], r.errors)
    # A duplicate has its own visits at a facility.
    encounters = {e["subject"]["reference"] for e in read_ndjson(out / "Encounter.ndjson")}
    assert all(f"Patient/{r.duplicate_id}" in encounters for r in records)


def test_rate_is_respected_and_all_kinds_occur() -> None:
    n, rate = 4000, 0.1
    seen: dict[str, int] = {}
    dups = 0
    for block, record in iter_blocks(n, 77, rate):
        if record is None:
            continue
        dups += 1
        original = block[0]
        dup = next(r for r in block if r["resourceType"] == "Patient" and r["id"] == record.duplicate_id)
        check_pair(dup, original, record.errors)
        for e in record.errors:
            seen[e] = seen.get(e, 0) + 1
    sd = (n * rate * (1 - rate)) ** 0.5
    assert abs(dups - n * rate) < 4 * sd
    assert set(seen) == set(ERROR_KINDS)


def test_zero_rate_means_no_duplicates() -> None:
    assert all(record is None for _, record in iter_blocks(200, 1, 0.0))


def test_typo_is_one_edit_without_diacritics() -> None:
    rng = random.Random(0)
    for word in ["Nguyễn", "An", "Thủy", "Hương", "Đặng", "Lê", "Rơ-mah"] * 50:
        wrong = typo(word, rng)
        assert wrong != word
        assert _osa(names.fold(wrong), names.fold(word)) == 1
