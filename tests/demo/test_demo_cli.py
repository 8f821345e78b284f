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


def test_defaults_and_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["demo", "generate", "--patients", "5", "--out", str(tmp_path)])
    assert (args.fmt, args.seed, args.duplicates) == ("ndjson", 0, 0.02)
    for bad in (["--duplicates", "2"], ["--format", "xml"], ["--patients", "-1"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(["demo", "generate", "--patients", "5", "--out", str(tmp_path), *bad])
