"""The audit journal (``ketnoi.store.audit_spool``, ADR 0018) over a real store of each backend:
what is appended reaches the log once and in order, survives the death of its process, and is
never drained twice; what cannot be kept is refused."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from ketnoi.interactions import audit
from ketnoi.interactions.services import Services
from ketnoi.security.audit import stored_ring, verify
from ketnoi.store.audit_spool import Spool, SpoolError, decode, default_directory, encode
from ketnoi.store.auditlog import AuditEntry
from ketnoi.store.base import Store


def _entry(n: int, patient: str | None = "p1") -> AuditEntry:
    return AuditEntry(1_700_000_000.0 + n, f"req-{n}", patient, b'{"resourceType":"AuditEvent","n":%d}' % n)


def _logged(store: Store) -> list[str]:
    with store.session(write=False) as session:
        return [r.request_id or "" for r in session.audit_rows(0, 100_000)]


def _spool(store: Store, directory: Path, **options: float) -> Spool:
    return Spool(directory, *audit.journal_log(store), **options)  # type: ignore[arg-type]


def test_appended_records_reach_the_log_in_order_and_the_files_go(fresh_services: Services, tmp_path: Path) -> None:
    store = fresh_services.store
    spool = _spool(store, tmp_path / "j")
    for n in range(50):
        spool.append([_entry(n), _entry(n + 1000, None)] if n % 10 == 0 else [_entry(n)])
    assert list((tmp_path / "j").glob("seg-*.log")), "the journal is a file while records wait"
    assert spool.flush(10)
    expected = [f"req-{n}" for n in range(50) for n in ([n, n + 1000] if n % 10 == 0 else [n])]
    assert _logged(store)[-len(expected) :] == expected
    spool.close()
    assert not (tmp_path / "j").exists(), "a drained journal leaves no file and no folder"
    assert verify(store, None, stored_ring(store, time.time())).ok


def test_a_full_segment_is_sealed_and_deleted_once_drained(fresh_services: Services, tmp_path: Path) -> None:
    store = fresh_services.store
    spool = _spool(store, tmp_path / "j", segment_bytes=400)
    for n in range(20):
        spool.append([_entry(n)])
    assert spool.flush(10)
    assert len(list((tmp_path / "j").glob("seg-*.log"))) == 1, "only the segment being written is left"
    assert _logged(store)[-20:] == [f"req-{n}" for n in range(20)]
    spool.close()


_CRASHER = """
import os, sys, time
from ketnoi.app import open_store
from ketnoi.interactions import audit
from ketnoi.store.audit_spool import Spool
from ketnoi.store.auditlog import AuditEntry
store = open_store(sys.argv[1])
drain, mark, forget = audit.journal_log(store)
def slow(entries, segment, offset):  # the first batch reaches the log; the process dies before the rest
    drain(entries, segment, offset)
    print("drained", flush=True)
    time.sleep(60)
spool = Spool(__import__("pathlib").Path(sys.argv[2]), slow, mark, forget, linger_s=0.0)
for n in range(int(sys.argv[3])):
    spool.append([AuditEntry(1.0 + n, f"crash-{n}", "p1", b'{"n":%d}' % n)])
    if n == 0:
        time.sleep(0.5)  # the drainer takes batch 0 alone
print("appended", flush=True)
time.sleep(60)
"""


def test_a_killed_process_journal_is_drained_once_by_the_next(fresh_services: Services, tmp_path: Path) -> None:
    """A real process appends 30 records, drains the first, and is killed with SIGKILL: the other
    29 are only in its journal. The next process's recovery moves exactly those (the mark stored
    with the first batch keeps it from being moved twice) and deletes the file; while the process
    lives, its locked segment is left alone."""
    store = fresh_services.store
    url = _url(fresh_services)
    directory = tmp_path / "j"
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_CRASHER), url, str(directory), "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(2)]
        assert sorted(lines) == ["appended", "drained"], lines
        assert _spool(store, directory).recover() == 0, "a live process's segment is not touched"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
    assert _logged(store).count("crash-0") == 1
    assert _spool(store, directory).recover() == 29
    logged = _logged(store)
    assert [r for r in logged if r.startswith("crash-")] == [f"crash-{n}" for n in range(30)]
    assert not list(directory.glob("seg-*.log"))
    assert _spool(store, directory).recover() == 0
    assert verify(store, None, stored_ring(store, time.time())).ok


def test_a_torn_last_line_ends_the_segment(fresh_services: Services, tmp_path: Path) -> None:
    """Only a line being written when the machine stopped can be torn: the whole lines before it
    are drained, the torn one (never acknowledged) is not."""
    store = fresh_services.store
    directory = tmp_path / "j"
    directory.mkdir()
    good = encode([_entry(1)]) + encode([_entry(2), _entry(3)])
    (directory / "seg-elsewhere-1-1.log").write_bytes(good + encode([_entry(4)])[:-7])
    torn = good + b"00000000 [garbage]\n" + encode([_entry(5)])
    assert decode(torn) == ([_entry(1), _entry(2), _entry(3)], len(good))
    assert _spool(store, directory).recover() == 3
    assert _logged(store)[-3:] == ["req-1", "req-2", "req-3"]


def test_records_wait_while_the_log_cannot_be_written(fresh_services: Services, tmp_path: Path) -> None:
    """The database refuses the first drains: appends are still acknowledged (the records are on
    disk), and reach the log once it takes them; past ``max_pending`` appends are refused."""
    store = fresh_services.store
    drain, mark, forget = audit.journal_log(store)
    failures = [2]

    def flaky(entries: Sequence[AuditEntry], segment: str, offset: int) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise OSError("database unavailable")
        drain(entries, segment, offset)

    spool = Spool(tmp_path / "j", flaky, mark, forget, max_pending=5, linger_s=0.0)
    spool.append([_entry(1)])
    spool.append([_entry(2), _entry(3)])
    with pytest.raises(SpoolError, match="waiting for the log"):
        spool.append([_entry(4), _entry(5), _entry(6)])
    assert not spool.flush(0.2), "not in the log while the database refuses"
    assert spool.flush(10)
    assert _logged(store)[-3:] == ["req-1", "req-2", "req-3"]
    spool.append([_entry(4), _entry(5), _entry(6)])  # room again
    spool.close()
    assert _logged(store)[-3:] == ["req-4", "req-5", "req-6"]


def test_a_journal_that_cannot_be_written_refuses(fresh_services: Services, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    spool = _spool(fresh_services.store, tmp_path / "file")
    with pytest.raises(SpoolError, match="cannot open an audit journal"):
        spool.append([_entry(1)])
    closed = _spool(fresh_services.store, tmp_path / "j")
    closed.close()
    with pytest.raises(SpoolError, match="closed"):
        closed.append([_entry(1)])


def test_concurrent_appenders_each_reach_the_log_once(fresh_services: Services, tmp_path: Path) -> None:
    store = fresh_services.store
    spool = _spool(store, tmp_path / "j", segment_bytes=2_000)
    threads = [
        threading.Thread(target=lambda t=t: [spool.append([_entry(t * 100 + n)]) for n in range(40)]) for t in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spool.close()
    logged = [r for r in _logged(store) if r.startswith("req-")]
    assert sorted(logged) == sorted(f"req-{t * 100 + n}" for t in range(6) for n in range(40))
    for t in range(6):  # each appender's records in the order it appended them
        mine = [r for r in logged if int(r.removeprefix("req-")) // 100 == t]
        assert mine == [f"req-{t * 100 + n}" for n in range(40)]
    assert verify(store, None, stored_ring(store, time.time())).ok


def test_where_the_journal_lives() -> None:
    assert default_directory("sqlite", "/srv/k/ketnoi.db") == Path("/srv/k/ketnoi.db-audit-spool")
    assert default_directory("sqlite", ":memory:") is None
    one = default_directory("postgresql", "postgresql://db1:5432/ketnoi")
    assert one is not None and one.parent == Path("var/audit-spool")
    assert one != default_directory("postgresql", "postgresql://db1:5432/other"), "one folder per database"


def _url(services: Services) -> str:
    store = services.store
    if store.dialect == "sqlite":
        return f"sqlite:///{store.location}"
    return str(store.url)  # type: ignore[attr-defined]


def test_a_batch_and_its_segment_s_mark_commit_together(fresh_services: Services) -> None:
    """The drain (one statement on PostgreSQL, ADR 0018 decision 3) stores the records and the
    segment's offset after them, or neither: an append that fails in the database leaves no mark."""
    store = fresh_services.store
    drain, mark, _ = audit.journal_log(store)
    drain([_entry(1), _entry(2)], "seg-a", 120)
    assert mark("seg-a") == 120 and _logged(store)[-2:] == ["req-1", "req-2"]
    drain([_entry(3)], "seg-a", 180)
    assert mark("seg-a") == 180 and _logged(store)[-1] == "req-3"
    if store.dialect != "postgresql":
        return
    with store.session(write=True) as session:  # the log's head gone: the append fails closed
        session.execute("UPDATE store_state SET name = 'audit_head_away' WHERE name = 'audit_head'")
    try:
        with pytest.raises(Exception, match="audit_head is missing"):
            drain([_entry(4)], "seg-a", 240)
    finally:
        with store.session(write=True) as session:
            session.execute("UPDATE store_state SET name = 'audit_head' WHERE name = 'audit_head_away'")
    assert mark("seg-a") == 180 and _logged(store)[-1] == "req-3"
