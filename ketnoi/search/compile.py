"""SearchQuery → SQL over ``resource`` and the ``idx_*`` tables (one text for both dialects).

Every user-supplied value is a bound parameter; only names from our own tables are written into
the SQL text. Each filter becomes ``(r.resource_type, r.id) IN (SELECT ... FROM idx_x WHERE ...)``
so that the planner can start from the selective index lookup.
"""

from __future__ import annotations

import time
from typing import Any

from ketnoi.fhir.outcome import bad_request
from ketnoi.search.normalize import UCUM, date_range, fold, number_range, ucum_to_canonical
from ketnoi.search.query import Filter, SearchQuery, split_pipe, split_prefix, unescape
from ketnoi.sql import SqlQuery

_TOP = "\U0010ffff"  # sorts after every character: "abc" <= x < "abc" + _TOP is a prefix match
_SELECT = "SELECT r.resource_type, r.id, h.content FROM resource r JOIN resource_history h ON h.seq = r.seq"


class _Sql:
    def __init__(self) -> None:
        self.params: list[Any] = []

    def bind(self, *values: Any) -> str:
        self.params.extend(values)
        return ", ".join("?" * len(values))


def compile_search(query: SearchQuery, base_url: str) -> tuple[SqlQuery, SqlQuery]:
    """(page query, count query) for a search."""
    sql = _Sql()
    where = _where(query, sql, base_url)
    order = _order(query)
    page = SqlQuery(
        f"{_SELECT} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", (*sql.params, query.count + 1, query.offset)
    )
    count = SqlQuery(f"SELECT COUNT(*) FROM resource r WHERE {where}", tuple(sql.params))
    return page, count


def _where(query: SearchQuery, sql: _Sql, base_url: str) -> str:
    clauses = [f"r.deleted = {sql.bind(False)}"]
    if query.resource_types:
        clauses.append(f"r.resource_type IN ({sql.bind(*query.resource_types)})")
    for f in query.filters:
        clauses.append(_filter(f, sql, query.resource_types, base_url))
    return " AND ".join(clauses)


def _order(query: SearchQuery) -> str:
    keys = []
    for param, desc in query.sort:
        column = "r.last_updated" if param == "_lastUpdated" else "r.id"
        keys.append(f"{column} {'DESC' if desc else 'ASC'}")
    keys.extend(("r.resource_type", "r.id"))
    return ", ".join(keys)


def _filter(f: Filter, sql: _Sql, types: tuple[str, ...], base_url: str) -> str:
    if f.param == "_id":
        return _id_filter(f, sql)
    if f.param == "_lastUpdated":
        return "(" + " OR ".join(_date_cond(v, sql, "r.last_updated", "r.last_updated + 0.001") for v in f.values) + ")"
    if f.type == "reference" and f.modifier == "identifier":
        table, param = "token", f"{f.param}:identifier"
    elif f.type == "quantity" and f.modifier is None:
        canonical = [_canonical_query(v) for v in f.values]
        if all(canonical):
            # Every value has a convertible unit: compare in the canonical unit, so 5 mg finds 0.005 g.
            f = Filter(f.param, f.type, None, tuple(c for c in canonical if c))
            table, param = "quantity", f"{f.param}:canonical"
        else:
            table, param = f.type, f.param
    else:
        table, param = f.type, f.param
    owner = "SELECT resource_type, resource_id FROM idx_" + table + " WHERE "
    # Bind in the order the placeholders appear in the text.
    scope = f"resource_type IN ({sql.bind(*types)}) AND " if types else ""
    scope += f"param = {sql.bind(param)}"
    if f.modifier == "missing":
        op = "NOT IN" if f.values[0] == "true" else "IN"
        return f"(r.resource_type, r.id) {op} ({owner}{scope})"
    conds = [_value_cond(f, value, sql, base_url) for value in f.values]
    negate = f.modifier == "not"
    return f"(r.resource_type, r.id) {'NOT IN' if negate else 'IN'} ({owner}{scope} AND ({' OR '.join(conds)}))"


def _id_filter(f: Filter, sql: _Sql) -> str:
    op = "NOT IN" if f.modifier == "not" else "IN"
    return f"r.id {op} ({sql.bind(*f.values)})"


def _value_cond(f: Filter, value: str, sql: _Sql, base_url: str) -> str:
    if f.type == "string":
        return _string_cond(f.modifier, value, sql)
    if f.type == "token" or (f.type == "reference" and f.modifier == "identifier"):
        return _token_cond(f.modifier, value, sql)
    if f.type == "date":
        return _date_cond(value, sql, "low", "high")
    if f.type == "number":
        return _number_cond(value, sql)
    if f.type == "quantity":
        return _quantity_cond(value, sql)
    if f.type == "reference":
        return _reference_cond(f.modifier, value, sql, base_url)
    if f.type == "uri":
        return _uri_cond(f.modifier, value, sql)
    raise bad_request(
        f"Search parameter type '{f.type}' is not supported", f"Không hỗ trợ loại tham số tìm kiếm '{f.type}'"
    )


def _string_cond(modifier: str | None, value: str, sql: _Sql) -> str:
    if modifier == "exact":
        return f"exact = {sql.bind(value)}"
    folded = fold(value)
    if modifier == "contains":
        escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"norm LIKE {sql.bind('%' + escaped + '%')} ESCAPE '\\'"
    return f"(norm >= {sql.bind(folded)} AND norm < {sql.bind(folded + _TOP)})"


def _token_cond(modifier: str | None, value: str, sql: _Sql) -> str:
    if modifier == "text":
        folded = fold(value)
        return f"(text >= {sql.bind(folded)} AND text < {sql.bind(folded + _TOP)})"
    pair = split_pipe(value)
    if pair is None:
        return f"code = {sql.bind(unescape(value))}"
    system, code = pair
    if system == "":
        return f"(code = {sql.bind(code)} AND system IS NULL)"
    if code == "":
        return f"system = {sql.bind(system)}"
    return f"(code = {sql.bind(code)} AND system = {sql.bind(system)})"


def _parse_date(value: str) -> tuple[float, float]:
    try:
        return date_range(value)
    except ValueError:
        raise bad_request(
            f"'{value[:60]}' is not a valid date/time (use e.g. 2024-05-01 or 2024-05-01T08:30:00+07:00)",
            f"'{value[:60]}' không phải ngày/giờ hợp lệ (ví dụ 2024-05-01)",
        ) from None


def _date_cond(raw: str, sql: _Sql, low: str, high: str) -> str:
    prefix, value = split_prefix(raw, "date")
    slow, shigh = _parse_date(value)
    b = sql.bind
    if prefix == "eq":
        return f"({low} >= {b(slow)} AND {high} <= {b(shigh)})"
    if prefix == "ne":
        return f"NOT ({low} >= {b(slow)} AND {high} <= {b(shigh)})"
    if prefix == "gt":
        return f"{high} > {b(shigh)}"
    if prefix == "ge":
        return f"{high} > {b(slow)}"
    if prefix == "lt":
        return f"{low} < {b(slow)}"
    if prefix == "le":
        return f"{low} < {b(shigh)}"
    if prefix == "sa":
        return f"{low} >= {b(shigh)}"
    if prefix == "eb":
        return f"{high} <= {b(slow)}"
    # ap: within 10% of the distance from now, per the spec's guidance.
    margin = max(0.1 * abs(time.time() - slow), shigh - slow)
    return f"({high} > {b(slow - margin)} AND {low} < {b(shigh + margin)})"


def _parse_number(value: str) -> tuple[float, float, float]:
    try:
        return number_range(value)
    except (ValueError, ArithmeticError):
        raise bad_request(f"'{value[:60]}' is not a valid number", f"'{value[:60]}' không phải số hợp lệ") from None


def _number_cond(raw: str, sql: _Sql, column: str = "value") -> str:
    prefix, value = split_prefix(raw, "number")
    val, low, high = _parse_number(value)
    b = sql.bind
    if prefix in ("eq", "ne"):
        cond = f"({column} >= {b(low)} AND {column} < {b(high)})"
        return cond if prefix == "eq" else f"NOT {cond}"
    if prefix == "ap":
        return f"({column} >= {b(val - abs(val) * 0.1)} AND {column} <= {b(val + abs(val) * 0.1)})"
    op = {"gt": ">", "sa": ">", "lt": "<", "eb": "<", "ge": ">=", "le": "<="}[prefix]
    return f"{column} {op} {b(val)}"


def _quantity_parts(raw: str) -> tuple[str, str, str]:
    """``5.4|http://unitsofmeasure.org|mg`` → (number with prefix, system, code)."""
    parts = raw.split("|")
    if len(parts) not in (1, 3):
        raise bad_request(
            f"Quantity '{raw[:60]}' must be number or number|system|code",
            f"Số lượng '{raw[:60]}' phải có dạng số hoặc số|hệ|mã",
        )
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], "", "")


def _canonical_query(raw: str) -> str | None:
    """The same quantity query in the canonical UCUM unit, when its unit is convertible."""
    number, system, code = _quantity_parts(raw)
    if not code or system not in ("", UCUM):
        return None
    prefix, value = split_prefix(number, "quantity")
    canonical = ucum_to_canonical(code, _parse_number(value)[0])
    if canonical is None:
        return None
    return f"{prefix}{canonical[1]!r}|{UCUM}|{canonical[0]}"


def _quantity_cond(raw: str, sql: _Sql) -> str:
    number, system, code = _quantity_parts(raw)
    cond = _number_cond(number, sql)
    if system:
        cond += f" AND system = {sql.bind(system)}"
    if code:
        cond += f" AND code = {sql.bind(code)}"
    return f"({cond})"


def _reference_cond(modifier: str | None, value: str, sql: _Sql, base_url: str) -> str:
    if value.startswith(base_url.rstrip("/") + "/"):
        value = value[len(base_url.rstrip("/")) + 1 :]
    if "://" in value or value.startswith("urn:"):
        url, _, version = value.partition("|")
        cond = f"url = {sql.bind(url)}"
        return f"({cond} AND version = {sql.bind(version)})" if version else cond
    parts = value.split("/")
    if len(parts) == 2:
        return f"(target_type = {sql.bind(parts[0])} AND target_id = {sql.bind(parts[1])})"
    if len(parts) == 1:
        if modifier:
            return f"(target_type = {sql.bind(modifier)} AND target_id = {sql.bind(value)})"
        return f"target_id = {sql.bind(value)}"
    raise bad_request(
        f"Reference '{value[:80]}' must be id, Type/id or an absolute URL",
        f"Tham chiếu '{value[:80]}' phải là id, Loại/id hoặc URL tuyệt đối",
    )


def _uri_cond(modifier: str | None, value: str, sql: _Sql) -> str:
    if modifier == "below":
        return f"(uri >= {sql.bind(value)} AND uri < {sql.bind(value + _TOP)})"
    if modifier == "above":
        prefixes = [value[: i + 1] for i, ch in enumerate(value) if ch == "/"] + [value]
        return f"uri IN ({sql.bind(*prefixes)})"
    return f"uri = {sql.bind(value)}"
