"""URL query parameters → SearchQuery (http://hl7.org/fhir/R4/search.html).

Pure: it needs only the searchable parameters of the target types (code → SearchParameter).
Unknown parameters are an error with ``handling=strict`` and collected in ``ignored`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ketnoi.fhir.outcome import FhirError, bad_request
from ketnoi.search.query import Filter, SearchQuery, split_or

# Parameters that apply to every resource, handled by the resource table itself.
COMMON: dict[str, str] = {"_id": "token", "_lastUpdated": "date"}
# Result parameters: they shape the result instead of filtering it.
RESULT_PARAMS = {"_count", "_offset", "_total", "_summary", "_elements", "_sort", "_format", "_pretty", "_type"}
_TOTALS = ("none", "estimate", "accurate")
_SUMMARIES = ("true", "false", "text", "data", "count")
_MODIFIERS: dict[str, set[str]] = {
    "string": {"exact", "contains", "missing"},
    "token": {"missing", "not", "text", "exact"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"missing", "identifier"},  # plus :[type]
    "uri": {"missing", "below", "above"},
}
SORTABLE = {"_id", "_lastUpdated"}


def parse(
    resource_types: tuple[str, ...],
    params: list[tuple[str, str]],
    searchable: Mapping[str, Mapping[str, Any]],
    *,
    strict: bool,
    default_count: int = 20,
    max_count: int = 1000,
) -> SearchQuery:
    """Build the query; ``searchable`` maps each parameter code to its SearchParameter."""
    query = SearchQuery(resource_types, count=default_count)
    for key, value in params:
        name, _, modifier = key.partition(":")
        if name in RESULT_PARAMS:
            _result_param(query, name, value, max_count)
        elif name in COMMON:
            query.filters.append(_filter(name, COMMON[name], modifier or None, value))
        elif name in searchable:
            kind = str(searchable[name].get("type"))
            if kind in ("composite", "special"):
                _unsupported(
                    query, key, strict, f"{kind} parameters are not supported yet", f"chưa hỗ trợ tham số loại {kind}"
                )
                continue
            query.filters.append(_filter(name, kind, modifier or None, value))
        elif "." in name or name == "_has":
            _unsupported(
                query,
                key,
                strict,
                "chained and _has searches are not supported yet",
                "chưa hỗ trợ tìm kiếm nối chuỗi và _has",
            )
        else:
            _unsupported(query, key, strict, "unknown search parameter", "tham số tìm kiếm không tồn tại")
    return query


def _filter(name: str, kind: str, modifier: str | None, value: str) -> Filter:
    typed_reference = kind == "reference" and modifier is not None and modifier[:1].isupper()
    if modifier is not None and modifier not in _MODIFIERS.get(kind, set()) and not typed_reference:
        raise bad_request(
            f"Modifier ':{modifier}' is not supported for {kind} parameter '{name}'",
            f"Không hỗ trợ bộ sửa ':{modifier}' cho tham số {kind} '{name}'",
        )
    if modifier == "missing" and value not in ("true", "false"):
        raise bad_request(
            f"'{name}:missing' takes true or false, not '{value}'",
            f"'{name}:missing' chỉ nhận true hoặc false, không phải '{value}'",
        )
    values = split_or(value)
    if any(v == "" for v in values):
        raise bad_request(f"Empty value for search parameter '{name}'", f"Giá trị rỗng cho tham số tìm kiếm '{name}'")
    return Filter(name, kind, modifier, values)


def _result_param(query: SearchQuery, name: str, value: str, max_count: int) -> None:
    if name == "_count":
        query.count = _non_negative(name, value)
        if query.count > max_count:
            query.count, query.count_capped = max_count, True
    elif name == "_offset":
        query.offset = _non_negative(name, value)
    elif name == "_total":
        query.total = _choice(name, value, _TOTALS)
    elif name == "_summary":
        query.summary = _choice(name, value, _SUMMARIES)
    elif name == "_elements":
        query.elements = tuple(e.strip() for e in value.split(",") if e.strip())
    elif name == "_sort":
        for key in value.split(","):
            desc = key.startswith("-")
            code = key[1:] if desc else key
            if code not in SORTABLE:
                raise bad_request(
                    f"Sorting by '{code}' is not supported (use _id or _lastUpdated)",
                    f"Không hỗ trợ sắp xếp theo '{code}' (dùng _id hoặc _lastUpdated)",
                )
            query.sort.append((code, desc))


def _non_negative(name: str, value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise bad_request(
            f"{name} must be a non-negative integer, not '{value[:40]}'",
            f"{name} phải là số nguyên không âm, không phải '{value[:40]}'",
        )
    return int(value)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise bad_request(
            f"{name} must be one of {', '.join(allowed)}, not '{value[:40]}'",
            f"{name} phải là một trong {', '.join(allowed)}, không phải '{value[:40]}'",
        )
    return value


def _unsupported(query: SearchQuery, key: str, strict: bool, en: str, vi: str) -> None:
    if strict:
        raise FhirError.of(
            400, "not-supported", f"Search parameter '{key[:80]}': {en}", f"Tham số tìm kiếm '{key[:80]}': {vi}"
        )
    query.ignored.append(key)
