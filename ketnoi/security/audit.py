"""Signed checkpoints of the audit log, and the verifier that walks it (ADR 0013, THREATS.md AUD-03).

The log itself is a hash chain kept by the store (``ketnoi.store.auditlog``): each record's hash
covers the previous one, so an edited, deleted, moved or inserted record breaks the chain at
that place. What the chain alone cannot show is a log cut short, or rewritten from some record
on with every later hash recomputed (anyone who can write the database can do both). A
**checkpoint** closes that gap: a compact JWS, signed with the server's active signing key, of
``{"seq", "hash", "recorded", "iss"}`` of the head at a moment. Copied off the machine, it
commits the log to that prefix: later, the log must still hold that ``seq`` with that exact
hash. Checkpoints are also kept in ``audit_checkpoint`` (append-only), made by the server every
``Settings.audit_checkpoint_s`` while the log grows (:class:`CheckpointKeeper`), and checked by
the verifier in the same way as one given from outside.

:func:`verify` reads the log in pages (any size, constant memory), recomputes every hash and the
``seq`` continuity, matches every checkpoint, and names the first bad record and why.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeGuard

from ketnoi.auth.keys import KeyRing
from ketnoi.auth.tokens import TokenError, sign_statement, unverified, verify_statement
from ketnoi.runtime import Throttled
from ketnoi.security import keystore
from ketnoi.security.errors import Refused
from ketnoi.store.auditlog import GENESIS, START, AuditCheckpoint, AuditRow, Break, Link, follow

if TYPE_CHECKING:
    from ketnoi.store.base import Store

CHECKPOINT_TYP = "ketnoi-audit-checkpoint+jwt"  # its own JWS type: never mistaken for a token
PAGE = 1000  # records per read while verifying
_HASH = re.compile(r"[0-9a-f]{64}")


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted: unreadable, badly signed, or signed by an unknown key."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The verified content of a checkpoint."""

    seq: int
    hash: str
    recorded: float
    issuer: str


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# ---- making and reading checkpoints ---------------------------------------------------------------


def make_checkpoint(store: Store, now: float, *, issuer: str, keys: keystore.KeyStore | None = None) -> str:
    """Sign the head of the log as a checkpoint, keep it in ``audit_checkpoint`` and return it.

    When the head already has a checkpoint (nothing appended since, or another process was
    quicker), that one is returned: any checkpoint of the same seq and hash serves as well."""
    # The ring first: KeyStore may write (creating the ring), and SQLite's writer is not re-entrant.
    ring = (keys or keystore.KeyStore(store)).ring(now)
    with store.session(write=True) as session:
        seq, head = session.audit_head()
        if seq == 0:
            raise Refused(
                "The audit log is empty: nothing to checkpoint.", "Nhật ký kiểm toán trống: chưa có gì để ký."
            )
        last = session.last_checkpoint()
        if last is not None and last.seq == seq:
            return last.signature
        statement = sign_statement(ring, CHECKPOINT_TYP, {"seq": seq, "hash": head, "recorded": now, "iss": issuer})
        if session.checkpoint_add(seq, head, now, statement):
            return statement
        taken = session.last_checkpoint()  # a concurrent maker stored this seq first
    if taken is None or taken.seq != seq:
        raise RuntimeError(f"audit checkpoint of record {seq} vanished while it was being made")
    return taken.signature


def read_checkpoint(statement: str, ring: KeyRing) -> Checkpoint:
    """The content of a checkpoint whose signature verifies with ``ring``; else CheckpointError.

    The key must have been published when the checkpoint says it was made (``recorded``): a key
    that had already retired then signs nothing."""
    claimed = unverified(statement, 1).get("recorded")
    at = float(claimed) if _is_time(claimed) else time.time()
    try:
        claims = verify_statement(statement, ring, typ=CHECKPOINT_TYP, now=at)
    except TokenError as exc:
        kid = unverified(statement, 0).get("kid")
        if exc.reason == "unknown-key":
            raise CheckpointError(
                f"signed by key {kid!r}, which this key ring does not hold (or had retired)"
            ) from None
        raise CheckpointError(f"signature does not verify ({exc})") from None
    return _content(claims)


def _is_time(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _content(claims: dict[str, Any]) -> Checkpoint:
    seq, digest, recorded, issuer = (claims.get(k) for k in ("seq", "hash", "recorded", "iss"))
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise CheckpointError(f"signed, but its seq is not a record number: {seq!r}")
    if not isinstance(digest, str) or not _HASH.fullmatch(digest):
        raise CheckpointError("signed, but its hash is not a SHA-256 hex digest")
    if not _is_time(recorded) or not isinstance(issuer, str):
        raise CheckpointError("signed, but recorded or iss is missing")
    return Checkpoint(seq, digest, float(recorded), issuer)


def stored_ring(store: Store, now: float) -> KeyRing:
    """The database's signing key ring, read without creating one (verifying writes nothing)."""
    with store.session(write=False) as session:
        text = session.security_get(keystore.KIND, keystore.KEY, now)
    return KeyRing() if text is None else KeyRing.from_json(json.loads(text))


# ---- verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """What :func:`verify` found. ``bad_seq`` and ``reason`` name the first problem (``bad_seq`` is
    None when the checkpoint given could not be trusted at all)."""

    records: int  # records checked and found sound
    head_seq: int
    head_hash: str
    checkpoints: int = 0  # checkpoints (given and stored) that the log matches
    unsigned: int = 0  # stored checkpoints whose key has left the ring: hash matched, signature unchecked
    bad_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def line(self) -> str:
        if self.ok:
            return f"ok: {self.records} records, head seq {self.head_seq} hash {self.head_hash}"
        if self.bad_seq is None:
            return f"error: checkpoint: {self.reason}"
        return f"error: audit record {self.bad_seq}: {self.reason}"


# seq → (hash, description) of every checkpoint the log must match there
Expected = dict[int, list[tuple[str, str]]]


def verify(store: Store, checkpoint: str | None, keys: KeyRing, *, page: int = PAGE) -> Report:
    """Walk the whole log and every checkpoint; the report names the first bad record.

    ``checkpoint``: a checkpoint kept off the machine (its signature must verify with ``keys``; the
    log must hold its seq with its hash). Stored checkpoints are checked alike; one whose key has
    left ``keys`` (rotated out long ago) has its hash checked, not its signature."""
    expected: Expected = {}
    if checkpoint is not None:
        try:
            given = read_checkpoint(checkpoint.strip(), keys)
        except CheckpointError as exc:
            return Report(0, 0, GENESIS, reason=str(exc))
        expected.setdefault(given.seq, []).append((given.hash, f"the checkpoint given ({_when(given.recorded)})"))
    unsigned, problems = _stored_checkpoints(store, keys, expected)
    link, records, matched, broken = _walk(store, expected, page)
    if broken is not None:
        problems.append(broken)
    else:
        beyond = [(seq, what) for seq, marks in expected.items() if seq > link.seq for _, what in marks]
        if beyond:
            seq, what = min(beyond)
            problems.append(
                Break(link.seq + 1, f"truncated: the log ends at record {link.seq}, {what} names record {seq}")
            )
    report = Report(records, link.seq, link.hash, matched, unsigned)
    if not problems:
        return report
    first = min(problems, key=lambda b: b.seq)
    return Report(records, link.seq, link.hash, matched, unsigned, first.seq, first.reason)


def _stored_checkpoints(store: Store, keys: KeyRing, expected: Expected) -> tuple[int, list[Break]]:
    """Check the signatures of the stored checkpoints and add them to ``expected``: (how many
    could not be checked for want of their key, the problems found)."""
    known = {key.kid for key in keys.all_keys()}
    unsigned, problems = 0, []
    for stored in _all_checkpoints(store):
        what = f"the stored checkpoint of {_when(stored.recorded)}"
        if unverified(stored.signature, 0).get("kid") not in known:
            unsigned += 1
            expected.setdefault(stored.seq, []).append((stored.hash, what))
            continue
        try:
            signed = read_checkpoint(stored.signature, keys)
        except CheckpointError as exc:
            problems.append(Break(stored.seq, f"{what}: {exc}"))
            continue
        if (signed.seq, signed.hash) != (stored.seq, stored.hash):
            problems.append(Break(stored.seq, f"{what}: its row differs from what it signed (edited)"))
            continue
        expected.setdefault(stored.seq, []).append((signed.hash, what))
    return unsigned, problems


def _all_checkpoints(store: Store) -> Iterator[AuditCheckpoint]:
    after = 0
    while True:
        with store.session(write=False) as session:
            batch = session.checkpoints(after, PAGE)
        yield from batch
        if len(batch) < PAGE:
            return
        after = batch[-1].seq


def _walk(store: Store, expected: Expected, page: int) -> tuple[Link, int, int, Break | None]:
    """Follow the chain from record 1 to the head, page by page: (the last sound link, records
    sound, checkpoints matched, the first break or None). Each page is its own short read: the
    log only grows at its end, so pages read at different moments still join up."""
    link, records, matched = START, 0, 0
    while True:
        with store.session(write=False) as session:
            rows = session.audit_rows(link.seq, page)
        for row in rows:
            following, broken = follow(link, row)
            broken = broken or _against_checkpoints(row, expected)
            if broken is not None:
                return link, records, matched, broken
            link, records = following, records + 1
            matched += len(expected.get(row.seq, ()))
        if len(rows) < page:
            return link, records, matched, None


def _against_checkpoints(row: AuditRow, expected: Expected) -> Break | None:
    for digest, what in expected.get(row.seq, ()):
        if digest != row.hash:
            return Break(row.seq, f"its hash differs from {what}: the log up to here was rewritten")
    return None


# ---- the server's periodic checkpoints ------------------------------------------------------------


class CheckpointKeeper:
    """The job runner's idle task (``ketnoi.app``): a checkpoint when the log has grown and the
    last checkpoint is at least ``every_s`` old. The check, two indexed reads, runs at most every
    ``interval_s``; several processes may run it: the same head is checkpointed once."""

    def __init__(
        self,
        store: Store,
        keys: keystore.KeyStore,
        issuer: str,
        every_s: float,
        *,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.keys, self.issuer, self.every_s = store, keys, issuer, every_s
        self.interval_s, self.clock = min(interval_s, every_s), clock
        self._throttle = Throttled(lambda: self.run(self.clock()), self.interval_s, clock)
        self.made = 0  # checkpoints made (tests and logs)

    def __call__(self) -> None:
        self._throttle()

    def due(self, now: float) -> bool:
        with self.store.session(write=False) as session:
            seq, _ = session.audit_head()
            last = session.last_checkpoint()
        if seq == 0:
            return False
        return last is None or (seq > last.seq and now - last.recorded >= self.every_s)

    def run(self, now: float) -> str | None:
        """Make a checkpoint if one is due now; the checkpoint, or None."""
        if not self.due(now):
            return None
        statement = make_checkpoint(self.store, now, issuer=self.issuer, keys=self.keys)
        self.made += 1
        return statement
