"""``ketnoi demo generate`` wiring."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ketnoi.demo.commands import register


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ketnoi")
    register(parser.add_subparsers(dest="command"))
    return parser


def test_generate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(
        [
            "demo",
            "generate",
            "--patients",
            "20",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--format",
            "bundles",
            "--duplicates",
            "0.5",
        ]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "Patient" in printed and "patients/s" in printed
    assert (tmp_path / "bundles" / "bundle-0000001.json").exists() and (tmp_path / "duplicates.csv").exists()
    assert not (tmp_path / "twins.csv").exists()


def test_generate_hard_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo", "generate", "--patients", "300", "--seed", "2", "--out", str(tmp_path), "--hard-duplicates"]
    args = _parser().parse_args([*argv, "--duplicates", "0.3"])
    assert args.hard is True
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "hard duplicates" in printed and "twins" in printed
    rows = (tmp_path / "twins.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "twin_id,sibling_id" and len(rows) > 1
    errors = [line.split(",")[2].split(";") for line in (tmp_path / "duplicates.csv").read_text().splitlines()[1:]]
    assert errors and all(len(e) >= 2 for e in errors)


def test_defaults_and_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["demo", "generate", "--patients", "5", "--out", str(tmp_path)])
    assert (args.fmt, args.seed, args.duplicates, args.hard) == ("ndjson", 0, 0.02, False)
    for bad in (["--duplicates", "2"], ["--format", "xml"], ["--patients", "-1"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(["demo", "generate", "--patients", "5", "--out", str(tmp_path), *bad])
