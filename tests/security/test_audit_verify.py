"""The audit log's verifier and checkpoints (THREATS.md AUD-03) on both backends, and
``ketnoi audit verify|checkpoint`` as a real process.

Each tampering goes around the database's own protection first, exactly as an attacker holding
the database would: on SQLite a raw connection drops the triggers; on PostgreSQL the owning role
(here the test role, as the application's) grants itself the revoked privileges back and
disables the triggers. The hash chain and the checkpoints must still catch and locate it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ketnoi.app import open_store
from ketnoi.auth.keys import KeyRing
from ketnoi.auth.tokens import issue_access_token, sign_statement
from ketnoi.interactions.services import Services
from ketnoi.security.audit import (
    CHECKPOINT_TYP,
    CheckpointError,
    CheckpointKeeper,
    make_checkpoint,
    read_checkpoint,
    stored_ring,
    verify,
)
from ketnoi.security.keystore import KeyStore
from ketnoi.store.auditlog import AuditEntry, chain_hash
from ketnoi.store.base import Store

ISS = "http://127.0.0.1:8080/auth"
N = 10


def _entry(n: int) -> AuditEntry:
    return AuditEntry(1_800_000_000.0 + n, f"req-{n}", f"p{n % 3}", f'{{"resourceType":"AuditEvent","n":{n}}}'.encode())


def _fill(store: Store, n: int = N, first: int = 1) -> None:
    with store.session(write=True) as s:
        s.audit_append([_entry(i) for i in range(first, first + n)])


def _ring(store: Store) -> KeyRing:
    return stored_ring(store, time.time())


def _tamper(store: Store, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Run SQL around the triggers and privileges, as whoever holds the database could."""
    if store.dialect == "sqlite":
        conn = sqlite3.connect(store.path, isolation_level=None)  # type: ignore[attr-defined]
        try:
            conn.execute("BEGIN")
            for table in ("audit_log", "audit_checkpoint"):
                for action in ("update", "delete"):
                    conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
            for sql, params in statements:
                conn.execute(sql, params)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    with psycopg.connect(store.url) as pg:  # type: ignore[attr-defined]
        pg.execute("GRANT UPDATE, DELETE, TRUNCATE ON audit_log, audit_checkpoint TO CURRENT_USER")
        pg.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        pg.execute("ALTER TABLE audit_checkpoint DISABLE TRIGGER USER")
        for sql, params in statements:
            pg.execute(sql.replace("?", "%s"), params)


def _row(store: Store, seq: int) -> Any:
    with store.session(write=False) as s:
        return s.audit_rows(seq - 1, 1)[0]


def _edit(store: Store) -> None:
    _tamper(store, ("UPDATE audit_log SET event = ? WHERE seq = 4", (b'{"resourceType":"AuditEvent","n":0}',)))


def _delete(store: Store) -> None:
    _tamper(store, ("DELETE FROM audit_log WHERE seq = 4", ()))


def _swap_contents(store: Store) -> None:
    """Rows 3 and 6 exchange what they say, each keeping its seq and hashes."""
    three, six = _row(store, 3), _row(store, 6)
    set_ = "UPDATE audit_log SET recorded = ?, request_id = ?, patient = ?, event = ? WHERE seq = ?"
    _tamper(
        store,
        (set_, (six.recorded, six.request_id, six.patient, six.event, 3)),
        (set_, (three.recorded, three.request_id, three.patient, three.event, 6)),
    )


def _move(store: Store) -> None:
    """Rows 3 and 6 change places whole, hashes and all (a reordering)."""
    three, six = _row(store, 3), _row(store, 6)
    set_ = (
        "UPDATE audit_log SET recorded = ?, request_id = ?, patient = ?, event = ?, prev_hash = ?, hash = ? "
        "WHERE seq = ?"
    )
    _tamper(
        store,
        (set_, (six.recorded, six.request_id, six.patient, six.event, six.prev_hash, six.hash, 3)),
        (set_, (three.recorded, three.request_id, three.patient, three.event, three.prev_hash, three.hash, 6)),
    )


def _insert(store: Store) -> None:
    """A forged record, correctly chained onto record 4, slipped in as record 5 (the rest renumbered)."""
    four = _row(store, 4)
    event = b'{"resourceType":"AuditEvent","forged":true}'
    forged = chain_hash(four.hash, 5, four.recorded + 0.5, "forged", None, event)
    _tamper(
        store,
        ("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5", ()),
        ("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000", ()),
        (
            "INSERT INTO audit_log (seq, recorded, request_id, patient, event, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (5, four.recorded + 0.5, "forged", None, event, four.hash, forged),
        ),
    )


# (tampering, first bad seq, words of the reason)
CASES: dict[str, tuple[Callable[[Store], None], int, str]] = {
    "edit": (_edit, 4, "edited: its contents do not match its hash"),
    "delete": (_delete, 4, "missing (deleted): the log goes from record 3 to record 5"),
    "swap": (_swap_contents, 3, "edited"),
    "move": (_move, 3, "does not link to record 2"),
    "insert": (_insert, 5, "inserted: record 6 links past it to record 4"),
}


def test_an_intact_log_verifies(fresh_services: Services) -> None:
    store = fresh_services.store
    assert verify(store, None, KeyRing()).line() == f"ok: 0 records, head seq 0 hash {'0' * 64}"
    _fill(store)
    report = verify(store, None, KeyRing(), page=3)  # pages that do not divide the log
    with store.session(write=False) as s:
        _, head = s.audit_head()
    assert report.ok and (report.records, report.head_seq, report.head_hash) == (N, N, head)
    assert report.line() == f"ok: {N} records, head seq {N} hash {head}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_tampering_is_detected_and_located(fresh_services: Services, case: str) -> None:
    store = fresh_services.store
    _fill(store)
    tamper, bad, why = CASES[case]
    tamper(store)
    report = verify(store, None, KeyRing(), page=4)
    assert not report.ok
    assert report.bad_seq == bad, report.line()
    assert why in (report.reason or "")
    assert report.line().startswith(f"error: audit record {bad}: ")


def test_a_truncated_tail_is_caught_by_a_checkpoint(fresh_services: Services) -> None:
    store = fresh_services.store
    _fill(store)
    kept_off_box = make_checkpoint(store, time.time(), issuer=ISS)  # of record 10
    _tamper(store, ("DELETE FROM audit_log WHERE seq > 7", ()))
    # The stored checkpoint still names record 10: caught without the copy.
    report = verify(store, None, _ring(store))
    assert report.bad_seq == 8
    assert (report.reason or "").startswith("truncated: the log ends at record 7, the stored checkpoint of ")
    assert (report.reason or "").endswith("names record 10")
    # Whoever cut the tail may remove the stored checkpoint as well: then only the copy shows it...
    _tamper(store, ("DELETE FROM audit_checkpoint", ()))
    assert verify(store, None, _ring(store)).ok  # what a chain alone cannot see
    report = verify(store, kept_off_box, _ring(store))
    assert report.bad_seq == 8
    assert "truncated: the log ends at record 7, the checkpoint given" in (report.reason or "")


def test_a_rewritten_prefix_is_caught_by_a_checkpoint(fresh_services: Services) -> None:
    """Record 3 edited and every later hash recomputed: a consistent chain, but not the one signed."""
    store = fresh_services.store
    _fill(store, 6)
    kept_off_box = make_checkpoint(store, time.time(), issuer=ISS)  # of record 6
    rows = [_row(store, seq) for seq in range(1, 7)]
    prev, statements = rows[1].hash, []
    for row in rows[2:]:
        event = b'{"rewritten":true}' if row.seq == 3 else row.event
        digest = chain_hash(prev, row.seq, row.recorded, row.request_id, row.patient, event)
        statements.append(
            ("UPDATE audit_log SET event = ?, prev_hash = ?, hash = ? WHERE seq = ?", (event, prev, digest, row.seq))
        )
        prev = digest
    _tamper(store, *statements)
    stored = verify(store, None, _ring(store))
    assert stored.bad_seq == 6 and "differs from the stored checkpoint" in (stored.reason or "")
    _tamper(store, ("DELETE FROM audit_checkpoint", ()))
    assert verify(store, None, _ring(store)).ok
    given = verify(store, kept_off_box, _ring(store))
    assert given.bad_seq == 6
    assert "its hash differs from the checkpoint given" in (given.reason or "")


def test_checkpoints_are_signed_statements_of_the_head(fresh_services: Services) -> None:
    store = fresh_services.store
    with pytest.raises(ValueError, match="empty"):
        make_checkpoint(store, time.time(), issuer=ISS)
    _fill(store, 3)
    now = time.time()
    statement = make_checkpoint(store, now, issuer=ISS)
    assert make_checkpoint(store, now + 1, issuer=ISS) == statement  # the same head: the same checkpoint
    content = read_checkpoint(statement, _ring(store))
    with store.session(write=False) as s:
        assert (content.seq, content.hash) == s.audit_head()
        assert [c.signature for c in s.checkpoints()] == [statement]
    assert (content.recorded, content.issuer) == (now, ISS)
    report = verify(store, statement, _ring(store))
    assert report.ok and report.checkpoints == 2  # the one given and the one stored
    _fill(store, 2, first=4)
    assert verify(store, statement, _ring(store)).ok  # an older checkpoint of a grown log still holds


def test_a_checkpoint_from_another_key_or_of_another_log_is_refused(fresh_services: Services) -> None:
    store = fresh_services.store
    _fill(store, 5)
    now = time.time()
    make_checkpoint(store, now, issuer=ISS)
    ring = _ring(store)
    with store.session(write=False) as s:
        _, head = s.audit_head()
    stranger = sign_statement(
        KeyRing.generate(now=now), CHECKPOINT_TYP, {"seq": 5, "hash": head, "recorded": now, "iss": ISS}
    )
    report = verify(store, stranger, ring)
    assert report.bad_seq is None and "which this key ring does not hold" in (report.reason or "")
    assert report.line().startswith("error: checkpoint: signed by key ")
    forged = sign_statement(ring, CHECKPOINT_TYP, {"seq": 3, "hash": "ab" * 32, "recorded": now, "iss": ISS})
    report = verify(store, forged, ring)
    assert report.bad_seq == 3 and "its hash differs from the checkpoint given" in (report.reason or "")
    ahead = sign_statement(ring, CHECKPOINT_TYP, {"seq": 9, "hash": "ab" * 32, "recorded": now, "iss": ISS})
    assert verify(store, ahead, ring).bad_seq == 6  # a log shorter than a checkpoint: truncated
    token = issue_access_token(
        ring, issuer=ISS, audience="a", subject="s", client_id="c", scope="system/*.rs", lifetime=60, now=now
    )
    with pytest.raises(CheckpointError, match="signature does not verify"):
        read_checkpoint(token, ring)  # a token is not a checkpoint (typ), whoever signed it
    tampered = forged[:-4] + ("AAAA" if not forged.endswith("AAAA") else "BBBB")
    assert verify(store, tampered, ring).bad_seq is None


def test_a_stored_checkpoint_whose_key_rotated_out_is_checked_by_hash(fresh_services: Services) -> None:
    store = fresh_services.store
    _fill(store, 2)
    keys = KeyStore(store)
    make_checkpoint(store, time.time(), issuer=ISS, keys=keys)
    keys.rotate(time.time(), token_lifetime=0)
    keys.rotate(time.time(), token_lifetime=0)  # the first key has now left the ring
    report = verify(store, None, _ring(store))
    assert report.ok and (report.checkpoints, report.unsigned) == (1, 1)
    _tamper(store, ("UPDATE audit_checkpoint SET hash = ?", ("cd" * 32,)))
    assert verify(store, None, _ring(store)).bad_seq == 2


def test_the_server_checkpoints_the_growing_log(fresh_services: Services) -> None:
    store, clock = fresh_services.store, [1_900_000_000.0]
    keeper = CheckpointKeeper(store, KeyStore(store), ISS, every_s=300, clock=lambda: clock[0])
    assert keeper.run(clock[0]) is None  # an empty log: nothing to sign
    _fill(store, 2)
    assert keeper.run(clock[0]) is not None
    _fill(store, 1, first=3)
    assert keeper.run(clock[0] + 299) is None  # grown, but the last checkpoint is recent
    assert keeper.run(clock[0] + 300) is not None
    assert keeper.run(clock[0] + 900) is None  # old, but nothing new to sign
    assert keeper.made == 2
    with store.session(write=False) as s:
        assert [c.seq for c in s.checkpoints()] == [2, 3]
    assert fresh_services.extras["audit_checkpoints"].every_s == 300.0  # installed by build_services


# ---- ketnoi audit verify|checkpoint, as a person runs them ------------------------------------------


def _ketnoi(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETNOI_")}
    return subprocess.run([sys.executable, "-m", "ketnoi", *args], capture_output=True, text=True, timeout=120, env=env)


def test_the_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    store = open_store(url)
    store.migrate()
    _fill(store)
    out = tmp_path / "checkpoint.jws"
    made = _ketnoi("audit", "checkpoint", "--database", url, "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert f"checkpoint of audit record {N} " in made.stdout
    checked = _ketnoi("audit", "verify", "--database", url, "--checkpoint", str(out))
    assert checked.returncode == 0, checked.stderr
    with store.session(write=False) as s:
        _, head = s.audit_head()
    assert checked.stdout.splitlines() == [f"ok: {N} records, head seq {N} hash {head}", "checkpoints matched: 2"]
    _delete(store)
    store.close()
    broken = _ketnoi("audit", "verify", "--database", url, "--checkpoint", str(out))
    assert broken.returncode == 1
    assert broken.stderr == "error: audit record 4: missing (deleted): the log goes from record 3 to record 5\n"
    assert broken.stdout == ""
    missing = _ketnoi("audit", "verify", "--database", url, "--checkpoint", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and len(missing.stderr.splitlines()) == 1
