"""``ketnoi import xml130``: files and folders, the summary, ``--errors`` CSV, exit codes, and the inbox."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from ketnoi.app import build_services, close_services, open_store
from ketnoi.claims.commands import watch_once
from ketnoi.claims.importer import Importer
from ketnoi.config import Settings
from ketnoi.demo.xml130 import iter_visits
from ketnoi.interactions.context import RequestContext
from ketnoi.xml130.writer import envelope_bytes

ROOT = Path(__file__).resolve().parents[2]


def _envelopes(folder: Path) -> tuple[Path, Path]:
    """A good envelope and one with a bad visit (an amount with letters), in ``folder``."""
    by: dict[str, list[dict[str, list[dict[str, str]]]]] = defaultdict(list)
    for facility, tables in iter_visits(12, 5):
        by[facility].append(tables)
    facility = max(by, key=lambda f: len(by[f]))
    visits = by[facility]
    good = folder / "good.xml"
    good.write_bytes(envelope_bytes(facility, visits[:1], created="202611300800"))
    broken = copy.deepcopy(visits[1:])
    broken[0]["XML1"][0]["T_TONGCHI_BV"] = "12O000"
    bad = folder / "bad.xml"
    bad.write_bytes(envelope_bytes(facility, broken, created="202611300800"))
    return good, bad


def _ketnoi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ketnoi", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_the_command_imports_reports_and_exits_by_outcome(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/k.db"
    assert _ketnoi("migrate", "--database", url).returncode == 0
    good, _ = _envelopes(tmp_path)
    ok = _ketnoi("import", "xml130", "--database", url, str(good))
    assert ok.returncode == 0, ok.stderr
    assert "created 1" in ok.stdout and "1 visits: 1 imported, 0 rejected" in ok.stdout
    errors = tmp_path / "errors.csv"
    mixed = _ketnoi("import", "xml130", "--database", url, str(tmp_path), "--errors", str(errors))
    assert mixed.returncode == 1, mixed.stderr
    assert "unchanged 1" in mixed.stdout and "rejected 1" in mixed.stdout
    lines = errors.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "file,visit,table,MA_LK,field,value,rule,severity,message_vi,message_en"
    assert any(",XML1," in line and ",T_TONGCHI_BV,12O000," in line for line in lines)
    missing = _ketnoi("import", "xml130", "--database", url, str(tmp_path / "nope.xml"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().count("\n") == 0 and "nope.xml" in missing.stderr


@pytest.fixture
def importer(tmp_path: Path) -> Iterator[Importer]:
    url = f"sqlite:///{tmp_path}/w.db"
    store = open_store(url)
    store.migrate()
    services = build_services(Settings(database=url, auth="off", audit_spool=str(tmp_path / "journal")), store)
    yield Importer(services, RequestContext.operator("test watch"))
    close_services(services)


def test_the_inbox_imports_each_settled_file_once_and_moves_it_aside(importer: Importer, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good, _ = _envelopes(tmp_path)
    dropped = inbox / "a.xml"
    dropped.write_bytes(good.read_bytes())
    (inbox / "hostile.xml").write_bytes(b'<?xml version="1.0"?><!DOCTYPE GIAMDINHHS [<!ENTITY x "y">]><GIAMDINHHS/>')
    seen: dict[Path, tuple[int, float]] = {}
    assert watch_once(importer, inbox, seen) == []  # first look: not yet known to be complete
    past = time.time() - 5
    for path in inbox.glob("*.xml"):
        os.utime(path, (past, past))
    seen.clear()
    watch_once(importer, inbox, seen)
    reports = watch_once(importer, inbox, seen)
    assert sorted(r.name for r in reports) == ["a.xml", "hostile.xml"]
    assert (inbox / "done" / "a.xml").exists() and (inbox / "done" / "a.xml.report.csv").exists()
    assert (inbox / "refused" / "hostile.xml").exists()
    assert not list(inbox.glob("*.xml"))
    assert watch_once(importer, inbox, seen) == []  # nothing left: never imported twice


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_the_watch_command_imports_named_files_first_and_stops_cleanly_on_ctrl_c(tmp_path: Path, stop: str) -> None:
    import signal

    url = f"sqlite:///{tmp_path}/k.db"
    assert _ketnoi("migrate", "--database", url).returncode == 0
    good, _ = _envelopes(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    args = ["import", "xml130", "--database", url, "--watch", str(inbox), "--interval", "0.2", str(good)]
    # A pytest-xdist worker ignores SIGINT and a child inherits that: give the command a terminal's default.
    default_int = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(
        [sys.executable, "-m", "ketnoi", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=default_int
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]  # the file, the total, "watching"
        assert "created 1" in lines[0] and "1 visits: 1 imported" in lines[1] and "watching" in lines[2]
        proc.send_signal(getattr(signal, stop))
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()  # a hung command fails the test instead of hanging the suite
        proc.communicate()
