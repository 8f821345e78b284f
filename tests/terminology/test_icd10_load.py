"""``ketnoi terminology load icd10``: a real process against a migrated SQLite database; a bad CSV
is one line and exit code 2, and nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ketnoi.terminology.icd10 import Icd10Error, code_system, read_csv

SAMPLE = Path(__file__).parent.parent / "data" / "icd10-vn-sample.csv"


def ketnoi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketnoi", *args], capture_output=True, text=True, timeout=120)


def test_load_then_reload_replaces(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    assert ketnoi("migrate", "--database", db).returncode == 0
    first = ketnoi("terminology", "load", "icd10", str(SAMPLE), "--database", db, "--version", "2024")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created CodeSystem/") and "38 codes" in first.stdout
    again = ketnoi("terminology", "load", "icd10", str(SAMPLE), "--database", db)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("replaced " + first.stdout.split()[1])  # the same resource, a new version


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("A00,Bệnh tả,Cholera,A00-A09\n", "line 2: code A00 has an unknown parent A00-A09"),
        ("I,Chương I,,\nI,Chương I bis,,\n", "line 3: duplicate code I (first on line 2)"),
        ("I,,Chapter I,\n", "line 2: code I has an empty title_vi"),
    ],
)
def test_bad_csv_is_one_line_and_exit_2(tmp_path: Path, rows: str, expected: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("code,title_vi,title_en,parent\n" + rows, encoding="utf-8")
    db = tmp_path / "never.db"
    r = ketnoi("terminology", "load", "icd10", str(csv), "--database", f"sqlite:///{db}")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and expected in r.stderr and r.stdout == ""
    assert not db.exists()  # checked before the database is opened: nothing written


def test_bad_header_and_cycle(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("ma,ten\nA,B\n", encoding="utf-8")
    with pytest.raises(Icd10Error, match="line 1: the header"):
        read_csv(csv)
    csv.write_text("code,title_vi,title_en,parent\nA,a,,B\nB,b,,A\n", encoding="utf-8")
    with pytest.raises(Icd10Error, match="cycle"):
        read_csv(csv)


def test_code_system_nests_and_counts() -> None:
    cs = code_system(read_csv(SAMPLE), "2024")
    assert cs["count"] == 38 and cs["content"] == "complete" and cs["hierarchyMeaning"] == "is-a"
    assert [c["code"] for c in cs["concept"]] == ["I", "IX", "X"]
    cholera = cs["concept"][0]["concept"][0]["concept"][0]
    assert cholera["code"] == "A00" and cholera["display"] == "Bệnh tả"
    assert cholera["designation"] == [{"language": "en", "value": "Cholera"}]
    assert [c["code"] for c in cholera["concept"]] == ["A00.0", "A00.1", "A00.9"]
