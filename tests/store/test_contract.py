"""The storage contract: one behavioural suite that every backend must pass."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from ketnoi.interactions.services import Services
from ketnoi.search.index import IndexRows, TokenRow
from ketnoi.sql import SqlQuery
from ketnoi.store.base import StoredVersion, VersionConflict
from ketnoi.store.schema import SCHEMA_VERSION
from ketnoi.store.sqlstore import _COPY_AT


def _version(id: str, version: int, content: bytes | None = b"{}", deleted: bool = False) -> StoredVersion:
    return StoredVersion("Patient", id, version, 1_700_000_000.0 + version, deleted, content, "PUT")


def _token_owners(services: Services, code: str) -> list[str]:
    with services.store.session(write=False) as s:
        rows = s.query(SqlQuery("SELECT resource_id FROM idx_token WHERE code = ?", (code,)))
    return [r[0] for r in rows]


def test_migrate_is_idempotent(services: Services) -> None:
    assert services.store.migrate() == []
    assert services.store.schema_version() == SCHEMA_VERSION


def test_write_then_read_current_and_versions(services: Services) -> None:
    id = uuid.uuid4().hex
    with services.store.session(write=True) as s:
        s.write(_version(id, 1, b'{"v":1}'), None)
        s.write(_version(id, 2, b'{"v":2}'), None)
        pending = s.current("Patient", id)  # a transaction sees its own (buffered) writes
        assert pending is not None
        assert pending.version == 2
    with services.store.session(write=False) as s:
        second, first = s.history("Patient", id, since=None, at=None, before_seq=None, limit=10)
        assert second.seq > first.seq > 0
        current = s.current("Patient", id)
        assert current is not None
        assert (current.version, current.content) == (2, b'{"v":2}')
        old = s.version("Patient", id, 1)
        assert old is not None
        assert old.content == b'{"v":1}'
        assert s.version("Patient", id, 3) is None
        assert s.current("Patient", "never") is None


def test_duplicate_version_is_a_conflict(services: Services) -> None:
    id = uuid.uuid4().hex
    with services.store.session(write=True) as s:
        s.write(_version(id, 1), None)
    # Detected at the latest when the buffered write reaches the database (here: the commit),
    # and then nothing of the transaction is kept.
    other = uuid.uuid4().hex
    with pytest.raises(VersionConflict), services.store.session(write=True) as s:
        s.write(_version(other, 1), None)
        s.write(_version(id, 1), None)
    with services.store.session(write=False) as s:
        assert s.current("Patient", other) is None
    with pytest.raises(VersionConflict), services.store.session(write=True) as s:
        s.write(_version(other, 1), None)
        s.write(_version(other, 1), None)


def test_prefetch_answers_current(services: Services) -> None:
    ids = [uuid.uuid4().hex for _ in range(3)]
    with services.store.session(write=True) as s:
        for id in ids[:2]:
            s.write(_version(id, 1, id.encode()), None)
    with services.store.session(write=True) as s:
        s.prefetch([("Patient", id) for id in ids])
        found = [s.current("Patient", id, for_update=True) for id in ids]
    assert [f.content if f else None for f in found] == [ids[0].encode(), ids[1].encode(), None]


def test_current_many_reads_many_at_once_and_keeps_nothing_for_a_later_write(services: Services) -> None:
    """``current_many``: the transaction's own writes first, more keys than one chunk holds, and no
    cached row: on PostgreSQL a ``current(..., for_update=True)`` after it reads (and locks) again and
    sees what another transaction committed meanwhile."""
    ids = [uuid.uuid4().hex for _ in range(450)]
    with services.store.session(write=True) as s:
        for id in ids[:-1]:
            s.write(_version(id, 1, id.encode()), None)
    with services.store.session(write=True) as s:
        s.write(_version(ids[0], 2, b"mine"), None)  # buffered, not yet sent
        found = s.current_many([("Patient", id) for id in ids])
        assert found[("Patient", ids[0])].content == b"mine"  # type: ignore[union-attr]
        assert [found[("Patient", id)].content for id in ids[1:-1]] == [id.encode() for id in ids[1:-1]]  # type: ignore[union-attr]
        assert found[("Patient", ids[-1])] is None
        if services.store.dialect == "postgresql":  # SQLite: a write session excludes every other writer
            with services.store.session(write=True) as other:  # another transaction changes one
                other.write(_version(ids[1], 2, b"theirs"), None)
            again = s.current("Patient", ids[1], for_update=True)
            assert again is not None and again.content == b"theirs"


def test_many_buffered_writes_flush_in_chunks(services: Services) -> None:
    """More versions than one flush holds (and than one multi-row statement takes)."""
    ids = [uuid.uuid4().hex for _ in range(2500)]
    rows = IndexRows(token=[TokenRow("identifier", "urn:bulk", "shared-code", None)])
    with services.store.session(write=True) as s:
        for id in ids:
            s.write(_version(id, 1), rows)
    assert set(_token_owners(services, "shared-code")) >= set(ids)


def test_failed_session_writes_nothing(services: Services) -> None:
    id = uuid.uuid4().hex
    with pytest.raises(RuntimeError), services.store.session(write=True) as s:
        s.write(_version(id, 1), IndexRows(token=[TokenRow("identifier", "urn:x", id, None)]))
        raise RuntimeError("boom")
    with services.store.session(write=False) as s:
        assert s.current("Patient", id) is None
        assert s.history("Patient", id, since=None, at=None, before_seq=None, limit=10) == []
    assert _token_owners(services, id) == []


def test_index_rows_follow_the_current_version(services: Services) -> None:
    id = uuid.uuid4().hex
    with services.store.session(write=True) as s:
        s.write(_version(id, 1), IndexRows(token=[TokenRow("identifier", "urn:x", f"{id}-a", None)]))
    assert _token_owners(services, f"{id}-a") == [id]
    with services.store.session(write=True) as s:
        s.write(_version(id, 2), IndexRows(token=[TokenRow("identifier", "urn:x", f"{id}-b", None)]))
    assert _token_owners(services, f"{id}-a") == []
    assert _token_owners(services, f"{id}-b") == [id]
    with services.store.session(write=True) as s:
        s.write(_version(id, 3, None, deleted=True), None)
    assert _token_owners(services, f"{id}-b") == []


def test_history_is_append_only_and_pages_by_seq(services: Services) -> None:
    id = uuid.uuid4().hex
    with services.store.session(write=True) as s:
        for v in range(1, 6):
            s.write(_version(id, v, f'{{"v":{v}}}'.encode()), None)
    with services.store.session(write=False) as s:
        page = s.history("Patient", id, since=None, at=None, before_seq=None, limit=2)
        assert [v.version for v in page] == [5, 4]
        rest = s.history("Patient", id, since=None, at=None, before_seq=page[-1].seq, limit=10)
        assert [v.version for v in rest] == [3, 2, 1]
        since = s.history("Patient", id, since=1_700_000_004.0, at=None, before_seq=None, limit=10)
        assert [v.version for v in since] == [5, 4]
        at = s.history("Patient", id, since=None, at=(1_700_000_003.0, 1_700_000_003.5), before_seq=None, limit=10)
        assert [v.version for v in at] == [3]


def test_reads_see_own_writes_inside_a_session(services: Services) -> None:
    id = uuid.uuid4().hex
    with services.store.session(write=True) as s:
        s.write(_version(id, 1), None)
        current = s.current("Patient", id, for_update=True)
        assert current is not None
        assert current.version == 1


def _org(found: StoredVersion | None) -> str | None:
    assert found is not None
    return found.org


def _owners(services: Services, ids: list[str]) -> dict[str, str | None]:
    """``resource.org`` (the current pointer's copy) of each id."""
    marks = ", ".join("?" * len(ids))
    sql = SqlQuery(f"SELECT id, org FROM resource WHERE resource_type = 'Patient' AND id IN ({marks})", tuple(ids))
    with services.store.session(write=False) as s:
        return {row[0]: row[1] for row in s.query(sql)}


def test_owner_organization_round_trips_on_every_write_path(services: Services) -> None:
    """``org`` is written by the multi-row insert (a few versions), by PostgreSQL's COPY (a flush
    of _COPY_AT or more) and by the pointer upsert, and read back by every read. The pointer keeps
    the owner: the organization of the latest version that records one."""
    f1, f2 = "Organization/F1", "Organization/F2"
    few = [uuid.uuid4().hex for _ in range(3)]
    many = [uuid.uuid4().hex for _ in range(_COPY_AT + 5)]
    with services.store.session(write=True) as s:
        for id in few:
            s.write(replace(_version(id, 1), org=f1), None)
        s.write(_version(few[2], 2), None)  # no organization: None, not the previous version's
    with services.store.session(write=True) as s:
        for id in many:
            s.write(replace(_version(id, 1), org=f1), None)
        s.write(replace(_version(many[0], 2, None, deleted=True), org=f2), None)  # who deleted
    with services.store.session(write=False) as s:
        assert [_org(s.current("Patient", id)) for id in few] == [f1, f1, None]
        assert _org(s.version("Patient", few[2], 1)) == f1
        history = s.history("Patient", many[0], since=None, at=None, before_seq=None, limit=10)
        assert [(v.version, v.org) for v in history] == [(2, f2), (1, f1)]
        assert {v.org for v in s.current_page(["Patient"], None, 100_000) if v.id in many} == {f1}
    with services.store.session(write=True) as s:
        s.prefetch([("Patient", id) for id in many])
        assert _org(s.current("Patient", many[0])) == f2
        assert _org(s.current("Patient", many[1])) == f1
    assert _owners(services, few + many) == {**dict.fromkeys(few + many[1:], f1), many[0]: f2}
    with services.store.session(write=True) as s:  # a later version for no organization, alone
        s.write(_version(many[1], 2), None)
        s.write(replace(_version(many[2], 2), org=f2), None)
    assert _owners(services, many[1:3]) == {many[1]: f1, many[2]: f2}
    unowned = uuid.uuid4().hex
    with services.store.session(write=True) as s:
        s.write(_version(unowned, 1), None)
    assert _owners(services, [unowned]) == {unowned: None}


# ---- security records ----------------------------------------------------------------------------


def test_security_records_put_get_list_delete(services: Services) -> None:
    kind, now = f"test-{uuid.uuid4().hex[:8]}", 1_000.0
    with services.store.session(write=True) as s:
        s.security_put(kind, "b", '{"n": 1}', None, now)
        s.security_put(kind, "a", '{"n": 2}', now + 10, now)
        s.security_put(kind, "b", '{"n": 3}', None, now)  # replaces
    with services.store.session(write=False) as s:
        assert s.security_get(kind, "b", now) == '{"n": 3}'
        assert s.security_list(kind, now) == [("a", '{"n": 2}'), ("b", '{"n": 3}')]
        assert s.security_get(kind, "a", now + 10) is None  # expired: gone from reads at once
        assert s.security_list(kind, now + 11) == [("b", '{"n": 3}')]
    with services.store.session(write=True) as s:
        assert s.security_delete(kind, "b") is True
        assert s.security_delete(kind, "b") is False
        assert s.security_purge(now + 11) >= 1
    with services.store.session(write=False) as s:
        assert s.security_list(kind, 0.0) == []


def test_security_add_refuses_a_live_duplicate_but_not_an_expired_one(services: Services) -> None:
    kind, now = f"test-{uuid.uuid4().hex[:8]}", 1_000.0
    with services.store.session(write=True) as s:
        assert s.security_add(kind, "jti-1", "{}", now + 300, now) is True
        assert s.security_add(kind, "jti-1", "{}", now + 300, now + 1) is False  # a replay
        assert s.security_add(kind, "jti-1", "{}", now + 900, now + 301) is True  # the first one expired


def test_security_take_is_single_use(services: Services) -> None:
    kind, now = f"test-{uuid.uuid4().hex[:8]}", 1_000.0
    with services.store.session(write=True) as s:
        s.security_put(kind, "code", '{"client": "x"}', now + 60, now)
        s.security_put(kind, "old", "{}", now - 1, now - 2)
    with services.store.session(write=True) as s:
        assert s.security_take(kind, "code", now) == '{"client": "x"}'
        assert s.security_take(kind, "code", now) is None
        assert s.security_take(kind, "old", now) is None  # expired codes cannot be taken
