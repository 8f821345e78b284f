"""The audit log's storage (migration 8, ``Session.audit_*``) on both backends: the chain as
appended, atomicity with the writes it records, concurrent appenders, and immutability through
the application's own connection (THREATS.md AUD-02 at the database)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ketnoi.app import open_store
from ketnoi.interactions.services import Services
from ketnoi.security.audit import verify
from ketnoi.store import migrate, schema
from ketnoi.store.auditlog import GENESIS, AuditEntry, chain_hash
from ketnoi.store.base import Store, StoredVersion, VersionConflict
from tests.conftest import throwaway_url


def _entry(n: int, patient: str | None = None) -> AuditEntry:
    return AuditEntry(1_800_000_000.0 + n / 7, f"req-{n}", patient, f'{{"resourceType":"AuditEvent","n":{n}}}'.encode())


def _version(id: str, version: int = 1) -> StoredVersion:
    return StoredVersion("Patient", id, version, 1_800_000_000.0, False, b"{}", "POST")


def _all_rows(store: Store) -> list[Any]:
    with store.session(write=False) as s:
        return s.audit_rows(0, 100_000)


def test_appends_are_chained_and_contiguous(fresh_services: Services) -> None:
    store = fresh_services.store
    with store.session(write=False) as s:
        assert s.audit_head() == (0, GENESIS)
    with store.session(write=True) as s:
        assert s.audit_append([_entry(1, "pa"), _entry(2)]) == [1, 2]
        assert s.audit_append([]) == []
    with store.session(write=True) as s:
        assert s.audit_append([_entry(3, "pb"), _entry(4, "pa")]) == [3, 4]
    rows = _all_rows(store)
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    prev = GENESIS
    for row, n in zip(rows, (1, 2, 3, 4), strict=True):
        entry = _entry(n)
        assert (row.recorded, row.request_id, row.event) == (entry.recorded, entry.request_id, entry.event)
        assert row.prev_hash == prev
        assert row.hash == chain_hash(prev, row.seq, row.recorded, row.request_id, row.patient, row.event)
        prev = row.hash
    with store.session(write=False) as s:
        assert s.audit_head() == (4, prev)
        assert [r.seq for r in s.audit_for_patient("pa", 0, 10)] == [1, 4]
        assert [r.seq for r in s.audit_for_patient("pa", 1, 10)] == [4]
        assert s.audit_for_patient("nobody", 0, 10) == []
        assert [r.seq for r in s.audit_rows(1, 2)] == [2, 3]


def test_an_audit_record_commits_with_its_write_and_rolls_back_with_it(fresh_services: Services) -> None:
    store = fresh_services.store
    kept, dropped, conflicted = (uuid.uuid4().hex for _ in range(3))
    with store.session(write=True) as s:
        s.write(_version(kept), None)
        s.audit_append([_entry(1, kept)])
    with pytest.raises(RuntimeError), store.session(write=True) as s:
        s.write(_version(dropped), None)
        s.audit_append([_entry(2, dropped)])
        raise RuntimeError("the request failed after its audit record was appended")
    # A write that fails at the commit (a concurrent version) takes its audit record with it.
    with pytest.raises(VersionConflict), store.session(write=True) as s:
        s.write(_version(conflicted), None)
        s.write(_version(kept), None)  # version 1 exists: refused when the buffer is flushed
        s.audit_append([_entry(3, conflicted)])
    rows = _all_rows(store)
    assert [(r.seq, r.patient) for r in rows] == [(1, kept)]
    with store.session(write=False) as s:
        assert s.current("Patient", kept) is not None
        assert s.current("Patient", dropped) is None
    with store.session(write=True) as s:  # the next record is 2: no hole where the rolled-back ones were
        assert s.audit_append([_entry(4)]) == [2]


@pytest.mark.parametrize(
    "entry",
    [
        AuditEntry(1.0, "a\nb", None, b"{}"),  # a line break would let one field pass for the next
        AuditEntry(1.0, None, "", b"{}"),  # "" and None would hash alike
        AuditEntry(float("nan"), None, None, b"{}"),
        AuditEntry(1.0, None, None, b""),
    ],
)
def test_entries_the_chain_cannot_hold_are_refused(fresh_services: Services, entry: AuditEntry) -> None:
    with pytest.raises(ValueError, match="audit entry"), fresh_services.store.session(write=True) as s:
        s.audit_append([_entry(1), entry])
    assert _all_rows(fresh_services.store) == []


def test_concurrent_appenders_make_one_contiguous_chain(fresh_services: Services) -> None:
    """8 threads × 50 transactions (every 10th rolled back after appending): the committed records
    are 1..n without a gap, and the chain verifies."""
    store, errors = fresh_services.store, []
    start = threading.Barrier(8)

    def appender(worker: int) -> None:
        start.wait()
        for i in range(50):
            try:
                with store.session(write=True) as s:
                    s.audit_append([_entry(worker * 1000 + i, f"p{worker}")])
                    if i % 10 == 9:
                        raise KeyError("rolled back")
            except KeyError:
                pass
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=appender, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    rows = _all_rows(store)
    assert [r.seq for r in rows] == list(range(1, 8 * 45 + 1))
    report = verify(store, None, _no_keys())
    assert report.ok, report.line()
    assert report.records == 360


def _no_keys() -> Any:
    from ketnoi.auth.keys import KeyRing

    return KeyRing()


# ---- AUD-02 at the database: the application's own connection cannot change the log -------------

_ATTEMPTS = [
    "UPDATE audit_log SET request_id = 'forged'",
    "DELETE FROM audit_log WHERE seq = 1",
    "UPDATE audit_checkpoint SET hash = 'forged'",
    "DELETE FROM audit_checkpoint",
]


@pytest.mark.parametrize("sql", _ATTEMPTS)
def test_the_applications_connection_cannot_update_or_delete(fresh_services: Services, sql: str) -> None:
    store = fresh_services.store
    with store.session(write=True) as s:
        s.audit_append([_entry(1), _entry(2)])
        s.checkpoint_add(2, "0" * 64, 1.0, "x.y.z")
    # SQLite: the triggers; PostgreSQL: the revoked privileges (the triggers stand behind them).
    with pytest.raises(Exception, match=r"append-only|permission denied"), store.session(write=True) as s:
        s.execute(sql)  # type: ignore[attr-defined]  # SqlSession's raw SQL, as a compromised app would
    assert [r.seq for r in _all_rows(store)] == [1, 2]


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[Store]:
    """PostgreSQL only: TRUNCATE and privileges do not exist on SQLite (its triggers are tested above)."""
    with throwaway_url("postgres", tmp_path) as url:
        store = open_store(url)
        store.migrate()
        try:
            yield store
        finally:
            store.close()


def test_truncate_is_refused_on_postgresql(pg_store: Store) -> None:
    store = pg_store
    with store.session(write=True) as s:
        s.audit_append([_entry(1)])
    for table in ("audit_log", "audit_checkpoint"):
        with pytest.raises(Exception, match="permission denied"), store.session(write=True) as s:
            s.execute(f"TRUNCATE {table}")  # type: ignore[attr-defined]
    assert len(_all_rows(store)) == 1


def test_the_owner_must_regrant_and_still_meets_the_trigger(pg_store: Store) -> None:
    """PostgreSQL: revoked privileges can be granted back by the owning role, so the trigger stands
    behind them (and ``DISABLE TRIGGER`` behind that: hence the hash chain, ADR 0013)."""
    store = pg_store
    with store.session(write=True) as s:
        s.audit_append([_entry(1)])
        s.execute("GRANT UPDATE, DELETE, TRUNCATE ON audit_log TO CURRENT_USER")  # type: ignore[attr-defined]
    for sql in ("UPDATE audit_log SET request_id = 'forged'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(Exception, match="audit_log is append-only"), store.session(write=True) as s:
            s.execute(sql)  # type: ignore[attr-defined]
    assert len(_all_rows(store)) == 1


# ---- migration 8 --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migration_8_upgrades_a_database_at_version_7(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with throwaway_url(backend, tmp_path, "ketnoi_v7") as url:
        store = open_store(url)
        try:
            with monkeypatch.context() as m:
                m.setattr(migrate, "migrations", lambda d: [x for x in schema.migrations(d) if x.version <= 7])
                store.migrate()
            assert store.schema_version() == 7
            with store.session(write=True) as s:
                s.security_put("test", "kept", "{}", None, 1.0)  # data from before the upgrade
            applied = store.migrate()
            assert "0008 audit_log: the hash-chained audit trail" in applied
            assert store.schema_version() == schema.SCHEMA_VERSION
            with store.session(write=True) as s:
                assert s.security_get("test", "kept", 2.0) == "{}"
                assert s.audit_append([_entry(1), _entry(2)]) == [1, 2]
            assert verify(store, None, _no_keys()).ok
            assert store.migrate() == []
        finally:
            store.close()
