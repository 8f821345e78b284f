"""The ``$export`` job's read in storage order (ADR 0024, decision 12): the types a system-level export
writes without ``_typeFilter``, for an owner whose access policy does not narrow them, are read from
``resource_history`` in ``seq`` order, all together, as of the export's mark
(:mod:`ketnoi.store.export_sql`); the other types are then the owner's keyset search, as before.

The scan's state lives in the job's progress (``progress["scan"]``), saved with each step like the
keyset's cursor: ``types`` (those read in storage order; empty: none), ``mark`` (the highest ``seq``
exported), ``running`` and ``settled`` (PostgreSQL: the transactions to wait for before reading),
``marked`` (when the mark was taken), ``after`` (the last ``seq`` read) and ``done``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from ketnoi.interactions.visibility import Row
from ketnoi.search.normalize import date_range
from ketnoi.store.base import Session

# How long the scan waits for the transactions running when its mark was taken (PostgreSQL). They
# are writes of a few seconds at most; a transaction left open longer (a stuck client) should not
# hold the export: it goes the keyset way instead, which needs no mark.
SETTLE_S = 30.0
Scan = dict[str, Any]
Mark = dict[str, Any]  # seq, running, at: the database's state when the export was asked for


def mark_now(session: Session) -> Mark:
    """The database's state now: the highest ``seq`` handed out, the transactions to wait for, the time."""
    seq, running = session.export_mark()
    return {"seq": seq, "running": running, "at": time.time()}


def mark(session: Session, types: Sequence[str], taken: Mark | None) -> Scan:
    """The scan of ``types`` as of ``taken`` (at kick-off), or of now for a job queued without one;
    none when ``types`` is empty."""
    if not types:
        return {"types": []}
    at = taken if taken is not None else mark_now(session)
    return {
        "types": list(types),
        "mark": at["seq"],
        "running": at["running"],
        "settled": not at["running"],
        "marked": at["at"],
        "after": 0,
        "done": False,
    }


def active(scan: Scan | None) -> bool:
    """Whether the scan still has rows to read (or is waiting to start)."""
    return scan is not None and bool(scan["types"]) and not scan["done"]


def settle(session: Session, scan: Scan) -> Scan | None:
    """The scan once it may start: itself when settled, the same marked ``settled`` once every
    transaction running at its mark has ended, no scan at all (the keyset way for every type) after
    :data:`SETTLE_S`; None while it must still wait."""
    if scan["settled"]:
        return scan
    if session.export_settled(scan["running"]):
        return {**scan, "settled": True, "running": None}
    if time.time() - float(scan["marked"]) > SETTLE_S:
        return {"types": []}
    return None


def read(session: Session, scan: Scan, since: str | None, page: int) -> tuple[dict[str, list[Row]], Scan]:
    """The next ``page`` versions of the history (a range of ``seq``): the rows to export by type,
    ``(type, id, content)`` in ``seq`` order within each (possibly none), and the scan after them."""
    low = date_range(since)[0] if since else None
    after, last = int(scan["after"]), int(scan["mark"])
    upto = min(after + page, last)
    by_type: dict[str, list[Row]] = {}
    for _, rtype, id_, content in session.export_scan(scan["types"], after, upto, last, low):
        by_type.setdefault(rtype, []).append((rtype, id_, content))
    return by_type, {**scan, "after": upto, "done": upto >= last}


def transaction_time(session: Session, state: Scan | None, kicked_off: float) -> float:
    """The export's ``transactionTime``: its kick-off, or, when it read as of a mark, a moment before
    the earliest write stamped before the kick-off that took its ``seq`` after the mark (in flight
    then; neither read as of the mark nor, were the kick-off kept, by an export ``_since`` it). Moved
    back to that write, a follow-up ``_since=transactionTime`` gets it (Bulk Data: changes up to
    transactionTime SHALL be in the export or after it)."""
    if not state or not state.get("types"):
        return kicked_off
    earliest = session.export_late(int(state["mark"]), kicked_off)
    if earliest is None:
        return kicked_off
    return min(kicked_off, math.floor(earliest * 1000) / 1000)  # an instant has milliseconds
