"""The backend-neutral search query: what ``parse`` produces and ``compile`` consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass(frozen=True, slots=True)
class Filter:
    """One search parameter occurrence: its values are ORed; several Filters are ANDed."""

    param: str
    type: str  # string | token | date | number | quantity | reference | uri | special
    modifier: str | None
    values: tuple[str, ...]


@dataclass(slots=True)
class SearchQuery:
    resource_types: tuple[str, ...]  # empty = every type (system search)
    filters: list[Filter] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    count: int = 20
    offset: int = 0
    total: str | None = None  # none | estimate | accurate
    summary: str | None = None  # true | text | data | count | false
    elements: tuple[str, ...] = ()
    ignored: list[str] = field(default_factory=list)  # parameters not understood (lenient mode)
    count_capped: bool = False


def split_prefix(value: str, type_: str) -> tuple[str, str]:
    """``ge2020`` → (``ge``, ``2020``) for ordered types; other types have no prefix."""
    if type_ in ("date", "number", "quantity") and len(value) > 2 and value[:2] in PREFIXES:
        return value[:2], value[2:]
    return "eq", value


def split_or(value: str) -> tuple[str, ...]:
    """Comma-separated OR values, honouring the ``\\,`` escape."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in ",$|\\":
            current.append("\\" + value[i + 1] if value[i + 1] == "|" else value[i + 1])
            i += 2
            continue
        if ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return tuple(parts)


def split_pipe(value: str) -> tuple[str, str] | None:
    """``system|code`` → (system, code) honouring ``\\|``; None when there is no bare pipe."""
    i = 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == "|":
            return _unescape(value[:i]), _unescape(value[i + 1 :])
        i += 1
    return None


def _unescape(value: str) -> str:
    return value.replace("\\|", "|")


def unescape(value: str) -> str:
    return _unescape(value)
