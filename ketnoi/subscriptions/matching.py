"""Does a new version match a subscription's criteria? Decided from the index rows the write has
just extracted, in the writing transaction (issue 14: no search re-run per change).

The common criteria (string, token, date, number, reference and uri values, ``_id``, ``:missing``,
``:not``, ``:exact``, ``:contains``, ``:text``) are evaluated here in memory with the same rules as
the SQL conditions of :mod:`ketnoi.search.conditions`; a test compares both on the same
resources. What needs other resources or tables (chains, ``_has``, composites, quantities in
canonical units, full text, ``:of-type``, ``:identifier``, ``_lastUpdated``) raises :class:`Unsure`
and is then decided by one search pinned to the resource's id (``_id=`` plus those criteria), in
the same transaction, so it sees the version just written, and through the subscription owner's
Repository, so a chain follows only what the owner may see. A subscription pays for that only
when its cheap criteria already hold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ketnoi.interactions.repository import Repository
from ketnoi.search.index import IndexRows
from ketnoi.search.normalize import date_range, fold, number_range
from ketnoi.search.query import Criterion, Filter, SearchQuery, split_pipe, split_prefix, unescape
from ketnoi.store.base import StoredVersion


class Unsure(Exception):
    """This criterion is decided by the database, not from the index rows."""


def matches(repo: Repository, stored: StoredVersion, index: IndexRows, query: SearchQuery, base_url: str) -> bool:
    """Whether ``stored`` (with its ``index`` rows) satisfies every criterion of ``query``."""
    rest: list[Criterion] = []
    for crit in query.filters:
        try:
            if not holds(crit, stored, index, base_url):
                return False
        except Unsure:
            rest.append(crit)
    return not rest or _in_database(repo, stored, rest, base_url)


def _in_database(repo: Repository, stored: StoredVersion, rest: Sequence[Criterion], base_url: str) -> bool:
    pinned = Filter("_id", "token", None, (stored.id,))
    query = SearchQuery((stored.resource_type,), [pinned, *rest], count=1)
    return bool(repo.search_page(query, base_url))


def holds(crit: Criterion, stored: StoredVersion, index: IndexRows, base_url: str) -> bool:
    if not isinstance(crit, Filter):
        raise Unsure
    if crit.param == "_id":
        return _id_holds(crit, stored.id)
    if crit.param.startswith("_lastUpdated") or crit.type not in _ROWS:
        raise Unsure
    rows = [r for r in getattr(index, crit.type) if r.param == crit.param]
    if crit.modifier == "missing":
        return (not rows) == (crit.values[-1] == "true")
    if crit.modifier == "not" and crit.type == "token":
        return not any(_token(row, v) for row in rows for v in crit.values)
    check = _CHECKS.get((crit.type, crit.modifier))
    if check is None:
        raise Unsure
    return any(check(row, value, base_url) for row in rows for value in crit.values)


def _id_holds(crit: Filter, id: str) -> bool:
    if crit.modifier is None:
        return id in crit.values
    if crit.modifier == "not":
        return id not in crit.values
    raise Unsure


def _token(row: Any, value: str) -> bool:
    pair = split_pipe(value)
    if pair is None:
        return bool(row.code == unescape(value))
    system, code = pair
    if system == "":
        return row.system is None and row.code == code
    if code == "":
        return bool(row.system == system)
    return bool(row.code == code and row.system == system)


def _token_text(row: Any, value: str, _base: str) -> bool:
    return row.text is not None and str(row.text).startswith(fold(value))


def _string(row: Any, value: str, _base: str) -> bool:
    return str(row.norm).startswith(fold(value))


def _string_exact(row: Any, value: str, _base: str) -> bool:
    return bool(row.exact == value)


def _string_contains(row: Any, value: str, _base: str) -> bool:
    return fold(value) in str(row.norm)


def _date(row: Any, raw: str, _base: str) -> bool:
    prefix, value = split_prefix(raw, "date")
    try:
        low, high = date_range(value)
    except ValueError:
        raise Unsure from None  # the parser checked it; never guess
    return _ordered(prefix, row.low, row.high, low, high)


def _ordered(prefix: str, rlow: float, rhigh: float, low: float, high: float) -> bool:
    """The date rules of ``conditions.date_cond`` on one row's range [rlow, rhigh)."""
    if prefix == "eq":
        return rlow >= low and rhigh <= high
    if prefix == "ne":
        return not (rlow >= low and rhigh <= high)
    if prefix == "ap":
        margin = max(0.1 * abs(time.time() - low), high - low)
        return rhigh > low - margin and rlow < high + margin
    return {
        "gt": rhigh > high,
        "ge": rhigh > low,
        "lt": rlow < low,
        "le": rlow < high,
        "sa": rlow >= high,
        "eb": rhigh <= low,
    }[prefix]


def _number(row: Any, raw: str, _base: str) -> bool:
    prefix, value = split_prefix(raw, "number")
    try:
        num, low, high = number_range(value)
    except (ValueError, ArithmeticError):
        raise Unsure from None
    v = float(row.value)
    if prefix in ("eq", "ne"):
        return (low <= v < high) == (prefix == "eq")
    if prefix == "ap":
        return bool(num - abs(num) * 0.1 <= v <= num + abs(num) * 0.1)
    return {"gt": v > num, "sa": v > num, "lt": v < num, "eb": v < num, "ge": v >= num, "le": v <= num}[prefix]


def _reference(row: Any, value: str, base_url: str) -> bool:
    base = base_url.rstrip("/") + "/"
    if base_url and value.startswith(base):
        value = value[len(base) :]
    if "://" in value or value.startswith("urn:"):
        url, _, version = value.partition("|")
        return bool(row.url == url and (not version or row.version == version))
    parts = value.split("/")
    if len(parts) == 2:
        return bool(row.target_type == parts[0] and row.target_id == parts[1])
    if len(parts) == 1:
        return bool(row.target_id == value)
    raise Unsure


def _uri(row: Any, value: str, _base: str) -> bool:
    return bool(row.uri == value)


def _uri_below(row: Any, value: str, _base: str) -> bool:
    return str(row.uri).startswith(value)


_ROWS = ("string", "token", "date", "number", "reference", "uri")
_CHECKS: dict[tuple[str, str | None], Any] = {
    ("string", None): _string,
    ("string", "exact"): _string_exact,
    ("string", "contains"): _string_contains,
    ("token", None): lambda row, value, _base: _token(row, value),
    ("token", "text"): _token_text,
    ("date", None): _date,
    ("number", None): _number,
    ("reference", None): _reference,
    ("uri", None): _uri,
    ("uri", "below"): _uri_below,
}
