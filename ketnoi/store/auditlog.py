"""The audit log's hash chain: the records, how each hash is made, and how a chain is followed.

Pure functions, no I/O (ADR 0013). The store calls :func:`chain_hash` inside the transaction that
appends (``SqlSession.audit_append``), and the verifier (``ketnoi.security.audit``) calls
:func:`follow` on every record it reads back, so both sides share one definition of the chain.

Record ``n`` is hashed as SHA-256 (lower-case hex) of::

    prev_hash_n "\\n" seq_n "\\n" repr(recorded_n) "\\n" request_id_n "\\n" patient_n "\\n" event_n

with ``prev_hash_1`` = 64 zeros (:data:`GENESIS`), ``prev_hash_n`` = ``hash_(n-1)``, an absent
request id or patient as the empty string, and the event's bytes exactly as stored. ``repr`` of
a float is the shortest text that reads back as the same double, so the stored ``REAL`` /
``DOUBLE PRECISION`` value hashes the same after a round trip through either database. The
separators are unambiguous because request ids and patients may hold no newline and are never
empty (:func:`check_entry`): otherwise part of one field could be moved into the next (a patient
hidden in the request id) without changing the hash.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

GENESIS = "0" * 64  # the prev_hash of record 1


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record to append: ``event`` is the AuditEvent JSON, canonical bytes as they will be stored.

    ``patient`` is the bare Patient id the event concerns (for the patient's own view), if any."""

    recorded: float  # epoch seconds, UTC
    request_id: str | None
    patient: str | None
    event: bytes


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One stored record of ``audit_log``."""

    seq: int
    recorded: float
    request_id: str | None
    patient: str | None
    event: bytes
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AgentMatch:
    """One agent an AuditEvent search asks for: an agent whose ``who.reference`` is ``reference``
    (``Organization/bv1``, ``Practitioner/p1``), or whose ``who.identifier`` has ``value`` (and
    ``system``, when given: the user's account name, a client id). Exactly one of ``reference`` and
    ``value`` is set."""

    reference: str | None = None
    system: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    """One row of ``audit_checkpoint``: the head at some moment and its signed statement (compact JWS)."""

    seq: int
    hash: str
    recorded: float
    signature: str


@dataclass(frozen=True, slots=True)
class Link:
    """Where a chain stands after a record: its ``seq`` and ``hash``, and the hash of the record
    before it (``earlier``), which tells an inserted record from an edited one."""

    seq: int
    hash: str
    earlier: str | None = None


START = Link(0, GENESIS)  # before record 1


@dataclass(frozen=True, slots=True)
class Break:
    """The first record at which a chain breaks, and why."""

    seq: int
    reason: str


def _field_problem(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if value == "" or "\n" in value or "\r" in value:
        return f"{name} is empty or holds a line break"
    return None


def check_entry(entry: AuditEntry) -> None:
    """ValueError for an entry the chain cannot represent unambiguously (or a time that is no time)."""
    if not math.isfinite(entry.recorded):
        raise ValueError(f"audit entry: recorded must be a finite time, not {entry.recorded!r}")
    if not isinstance(entry.event, bytes) or not entry.event:
        raise ValueError("audit entry: event must be non-empty bytes")
    for name, value in (("request_id", entry.request_id), ("patient", entry.patient)):
        problem = _field_problem(name, value)
        if problem is not None:
            raise ValueError(f"audit entry: {problem}")


def chain_hash(
    prev_hash: str, seq: int, recorded: float, request_id: str | None, patient: str | None, event: bytes
) -> str:
    """The hash of a record (see the module docstring for the exact bytes)."""
    head = "\n".join((prev_hash, str(seq), repr(float(recorded)), request_id or "", patient or "", ""))
    digest = hashlib.sha256(head.encode("utf-8"))
    digest.update(event)
    return digest.hexdigest()


def row_hash(row: AuditRow) -> str:
    """The hash ``row`` should carry, recomputed from its contents and its ``prev_hash``."""
    return chain_hash(row.prev_hash, row.seq, row.recorded, row.request_id, row.patient, row.event)


def follow(link: Link, row: AuditRow) -> tuple[Link, Break | None]:
    """Check that ``row`` is the record that comes after ``link``; the new link, or the break.

    The checks run in the order that names the cause best: a missing ``seq`` is a deleted record;
    a ``prev_hash`` that skips the previous record (it names the one before) means the previous
    record was inserted; any other wrong ``prev_hash`` means a record was moved, inserted or
    rewritten before this one; a hash that does not match the contents is an edit."""
    expected = link.seq + 1
    if row.seq != expected:
        what = "deleted" if row.seq > expected else "out of order"
        return link, Break(expected, f"missing ({what}): the log goes from record {link.seq} to record {row.seq}")
    if row.prev_hash != link.hash:
        if link.earlier is not None and row.prev_hash == link.earlier:
            return link, Break(link.seq, f"inserted: record {row.seq} links past it to record {link.seq - 1}")
        return link, Break(
            row.seq, f"does not link to record {link.seq} (a record was moved, inserted or rewritten before it)"
        )
    for name, value in (("request_id", row.request_id), ("patient", row.patient)):
        problem = _field_problem(name, value)
        if problem is not None:
            return link, Break(row.seq, f"edited: {problem}, which the server never writes")
    if row_hash(row) != row.hash:
        return link, Break(row.seq, "edited: its contents do not match its hash")
    return Link(row.seq, row.hash, link.hash), None
