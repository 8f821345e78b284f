"""The audit log's SQL, a mixin of ``SqlSession`` for both dialects (ADR 0013).

Appending reads the head (last ``seq`` and ``hash``) and writes the next records in the caller's
transaction, so a write and its audit record commit or roll back together. Appenders must be
serialised, or two transactions would both chain onto the same head: SQLite's single writer
already serialises them; on PostgreSQL one statement, ``ketnoi_audit_append`` (migration 10),
locks the ``store_state`` row ``audit_head`` (``SELECT ... FOR UPDATE``, held until the
transaction ends), reads the head cached in it ("seq hash"; after waiting for the lock, PL/pgSQL
re-reads the row's latest version), chains and inserts the records and moves the head. The
committed records are therefore always the contiguous prefix 1..n, and an append is one round
trip. A missing ``audit_head`` row fails the append (fail closed: migration 8 creates it).

The tables refuse UPDATE and DELETE (triggers on both dialects; revoked privileges on PostgreSQL:
migration 8), so nothing here ever changes a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ketnoi.store.auditlog import GENESIS, AgentMatch, AuditCheckpoint, AuditEntry, AuditRow, chain_hash, check_entry
from ketnoi.store.base import chunks

_ROW_COLUMNS = "seq, recorded, request_id, patient, event, prev_hash, hash"
_ROW_TYPES = ("int8", "float8", "text", "text", "bytea", "text", "text")
_CHECKPOINT_COLUMNS = "seq, hash, recorded, signature"
_SPOOL_MARK = "audit_spool "  # store_state: a journal segment's offset that the log holds up to
_SET_MARK = (
    "INSERT INTO store_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)
_CHUNK = 500  # records per INSERT (SQLite: 3,500 parameters, well below its limit)


class AuditSql:
    """``audit_*`` and ``checkpoint*`` of ``Session``, over the session's connection."""

    _pg: bool

    if TYPE_CHECKING:  # provided by SqlSession

        def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any: ...

        def _rows_source(self, rows: Sequence[tuple[Any, ...]], types: tuple[str, ...]) -> str: ...

        def _rows_params(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]: ...

    def audit_append(
        self, entries: Sequence[AuditEntry], *, asynchronous: bool = False, mark: tuple[str, int] | None = None
    ) -> list[int]:
        """``asynchronous`` (PostgreSQL, a statement that is its own transaction): its commit does
        not wait for the WAL flush (``synchronous_commit`` off for that transaction, ADR 0016).
        ``mark``: the audit journal's segment and offset after these entries, stored in the same
        transaction (:meth:`set_spool_mark`; on PostgreSQL by the same statement)."""
        if not entries:
            return []
        for entry in entries:
            check_entry(entry)  # before taking the lock: a bad entry costs other appenders nothing
        if self._pg:
            return self._append_in_one_statement(entries, asynchronous, mark)
        seq, prev = self.audit_head()  # SQLite: this write transaction is the single writer
        rows: list[tuple[Any, ...]] = []
        for entry in entries:
            seq += 1
            digest = chain_hash(prev, seq, entry.recorded, entry.request_id, entry.patient, entry.event)
            rows.append((seq, float(entry.recorded), entry.request_id, entry.patient, entry.event, prev, digest))
            prev = digest
        for chunk in chunks(rows, _CHUNK):
            self.execute(
                f"INSERT INTO audit_log ({_ROW_COLUMNS}) {self._rows_source(chunk, _ROW_TYPES)}",
                self._rows_params(chunk),
            )
        if mark is not None:
            self.set_spool_mark(*mark)
        return [row[0] for row in rows]

    def _append_in_one_statement(
        self, entries: Sequence[AuditEntry], asynchronous: bool = False, mark: tuple[str, int] | None = None
    ) -> list[int]:
        """PostgreSQL: lock, chain, insert and move the head server-side (migration 10), one round
        trip; the database computes the same hashes ``chain_hash`` does (``verify`` checks them).
        ``set_config(..., true)`` is SET LOCAL in the same statement: the setting is read at the
        commit, whatever the order the select list is evaluated in. A ``mark`` is stored by a
        data-modifying WITH of the same statement (run to completion whether or not it is read),
        so the records and the mark commit together."""
        recorded = [repr(float(e.recorded)) for e in entries]
        quick = "set_config('synchronous_commit', 'off', true), " if asynchronous else ""
        marked = f"WITH mark AS ({_SET_MARK}) " if mark is not None else ""
        params: tuple[Any, ...] = (_SPOOL_MARK + mark[0], str(mark[1])) if mark is not None else ()
        row = self.execute(
            f"{marked}SELECT {quick}ketnoi_audit_append(?::text[], ?::text[], ?::text[], ?::bytea[])",
            (*params, recorded, [e.request_id for e in entries], [e.patient for e in entries],
             [e.event for e in entries]),
        ).fetchone()  # fmt: skip
        last = int(row[-1])
        return list(range(last - len(entries) + 1, last + 1))

    def audit_head(self) -> tuple[int, str]:
        row = self.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    def audit_rows(self, after_seq: int, limit: int) -> list[AuditRow]:
        rows = self.execute(
            f"SELECT {_ROW_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        ).fetchall()
        return [_row(row) for row in rows]

    def audit_for_patient(self, patient: str, after_seq: int, limit: int) -> list[AuditRow]:
        rows = self.execute(
            f"SELECT {_ROW_COLUMNS} FROM audit_log WHERE patient = ? AND seq > ? ORDER BY seq LIMIT ?",
            (patient, after_seq, limit),
        ).fetchall()
        return [_row(row) for row in rows]

    def audit_search(
        self,
        *,
        patient: str | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        since: float | None = None,
        until: float | None = None,
        agents: Sequence[Sequence[AgentMatch]] = (),
        limit: int,
        newest_first: bool = False,
    ) -> list[AuditRow]:
        # The patient and seq bounds ride the indexes (audit_log_patient, the primary key); the time
        # bounds are a residual filter (no index on recorded: records are in time order by seq,
        # give or take the moments concurrent appenders waited for each other), and so are the
        # agents, read from the event's JSON (below).
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("patient = ?", patient),
            ("seq > ?", after_seq),
            ("seq < ?", before_seq),
            ("recorded >= ?", since),
            ("recorded < ?", until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        for group in agents:
            clause, values = self._agent_clause(group)
            where.append(clause)
            params.extend(values)
        condition = f"WHERE {' AND '.join(where)} " if where else ""
        order = "DESC" if newest_first else "ASC"
        rows = self.execute(
            f"SELECT {_ROW_COLUMNS} FROM audit_log {condition}ORDER BY seq {order} LIMIT ?", (*params, limit)
        ).fetchall()
        return [_row(row) for row in rows]

    def _agent_clause(self, group: Sequence[AgentMatch]) -> tuple[str, list[Any]]:
        """The records with an agent that matches one of ``group``, in the database: the filter is
        part of the query, so a page holds ``limit`` matches and its ``next`` link and total stay
        right. The event is read as JSON where it is stored (``audit_log.event``, the bytes the hash
        covers): no column of its own, since the log's rows are never updated to fill one, and the
        scan is bounded by the seq order and ``limit`` (a date range narrows it further). No "%"
        or "?" but the placeholders: the PostgreSQL text passes through the driver's."""
        if self._pg:
            agent_list = "jsonb_array_elements(convert_from(event, 'UTF8')::jsonb -> 'agent') AS a(value)"
            field = {"reference": "a.value #>> '{who,reference}'", "system": "a.value #>> '{who,identifier,system}'"}
            field["value"] = "a.value #>> '{who,identifier,value}'"
        else:
            agent_list = "json_each(CAST(event AS TEXT), '$.agent') AS a"
            field = {"reference": "json_extract(a.value, '$.who.reference')"}
            field["system"] = "json_extract(a.value, '$.who.identifier.system')"
            field["value"] = "json_extract(a.value, '$.who.identifier.value')"
        alternatives: list[str] = []
        params: list[Any] = []
        for match in group:
            if match.reference is not None:
                alternatives.append(f"{field['reference']} = ?")
                params.append(match.reference)
            elif match.system is not None:
                alternatives.append(f"({field['system']} = ? AND {field['value']} = ?)")
                params += [match.system, match.value]
            else:
                alternatives.append(f"{field['value']} = ?")
                params.append(match.value)
        return f"EXISTS (SELECT 1 FROM {agent_list} WHERE {' OR '.join(alternatives) or 'FALSE'})", params

    def checkpoint_add(self, seq: int, hash: str, recorded: float, signature: str) -> bool:
        row = self.execute(
            f"INSERT INTO audit_checkpoint ({_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (seq) DO NOTHING RETURNING seq",
            (seq, hash, recorded, signature),
        ).fetchone()
        return row is not None

    def checkpoints(self, after_seq: int = 0, limit: int = 1000) -> list[AuditCheckpoint]:
        rows = self.execute(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoint WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [_checkpoint(row) for row in rows]

    def last_checkpoint(self) -> AuditCheckpoint | None:
        row = self.execute(f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoint ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else _checkpoint(row)

    # ---- the audit journal's marks (ketnoi.store.audit_spool, ADR 0018) ---------------------------
    def spool_mark(self, segment: str) -> int | None:
        row = self.execute("SELECT value FROM store_state WHERE name = ?", (_SPOOL_MARK + segment,)).fetchone()
        return None if row is None else int(row[0])

    def set_spool_mark(self, segment: str, offset: int) -> None:
        self.execute(_SET_MARK, (_SPOOL_MARK + segment, str(offset)))

    def forget_spool_mark(self, segment: str) -> None:
        self.execute("DELETE FROM store_state WHERE name = ?", (_SPOOL_MARK + segment,))


def _row(row: tuple[Any, ...]) -> AuditRow:
    seq, recorded, request_id, patient, event, prev_hash, digest = row
    return AuditRow(int(seq), float(recorded), request_id, patient, bytes(event), str(prev_hash), str(digest))


def _checkpoint(row: tuple[Any, ...]) -> AuditCheckpoint:
    seq, digest, recorded, signature = row
    return AuditCheckpoint(int(seq), str(digest), float(recorded), str(signature))
