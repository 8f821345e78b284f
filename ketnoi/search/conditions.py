"""One search value → a SQL condition on an index table's columns, per parameter type (string,
token, date, number, quantity, reference, uri), with the prefixes and modifiers R4 defines.
``ketnoi.search.compile`` puts these conditions inside the sets it builds per criterion."""

from __future__ import annotations

import time

from ketnoi.fhir.outcome import bad_request
from ketnoi.search.frag import Frag, cat, join, val
from ketnoi.search.normalize import UCUM, date_range, fold, number_range, ucum_to_canonical
from ketnoi.search.query import Filter, split_pipe, split_prefix, unescape

_TOP = "\U0010ffff"  # sorts after every character: "abc" <= x < "abc" + _TOP is a prefix match


def value_cond(f: Filter, value: str, base_url: str) -> Frag:
    if f.type == "string":
        return _string_cond(f.modifier, value)
    if f.type == "token" or (f.type == "reference" and f.modifier == "identifier"):
        return _token_cond(f.modifier, value)
    if f.type == "date":
        return date_cond(value, "low", "high")
    if f.type == "number":
        return _number_cond(value)
    if f.type == "quantity":
        return _quantity_cond(value)
    if f.type == "reference":
        return _reference_cond(f.modifier, value, base_url)
    if f.type == "uri":
        return _uri_cond(f.modifier, value)
    raise bad_request(
        f"Search parameter type '{f.type}' is not supported", f"Không hỗ trợ loại tham số tìm kiếm '{f.type}'"
    )


def _string_cond(modifier: str | None, value: str) -> Frag:
    if modifier == "exact":
        return cat("exact = ", val(value))
    folded = fold(value)
    if modifier == "contains":
        escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return cat("norm LIKE ", val("%" + escaped + "%"), " ESCAPE '\\'")
    return cat("(norm >= ", val(folded), " AND norm < ", val(folded + _TOP), ")")


def _token_cond(modifier: str | None, value: str) -> Frag:
    if modifier == "text":
        folded = fold(value)
        return cat("(text >= ", val(folded), " AND text < ", val(folded + _TOP), ")")
    if modifier == "of-type":
        # identifier:of-type=type-system|type-code|value; rows hold (type system, "type-code|value").
        pair = split_pipe(value)
        rest = split_pipe(pair[1]) if pair is not None else None
        if pair is None or rest is None or not rest[0] or not rest[1]:
            raise bad_request(
                f"':of-type' takes system|code|value, not '{value[:80]}'",
                f"':of-type' nhận hệ|mã|giá-trị, không phải '{value[:80]}'",
            )
        code = f"{rest[0]}|{rest[1]}"
        if not pair[0]:
            return cat("code = ", val(code))
        return cat("(code = ", val(code), " AND system = ", val(pair[0]), ")")
    pair = split_pipe(value)
    if pair is None:
        return cat("code = ", val(unescape(value)))
    system, code = pair
    if system == "":
        return cat("(code = ", val(code), " AND system IS NULL)")
    if code == "":
        return cat("system = ", val(system))
    return cat("(code = ", val(code), " AND system = ", val(system), ")")


def _parse_date(value: str) -> tuple[float, float]:
    try:
        return date_range(value)
    except ValueError:
        raise bad_request(
            f"'{value[:60]}' is not a valid date/time (use e.g. 2024-05-01 or 2024-05-01T08:30:00+07:00)",
            f"'{value[:60]}' không phải ngày/giờ hợp lệ (ví dụ 2024-05-01)",
        ) from None


def date_cond(raw: str, low: str, high: str) -> Frag:
    prefix, value = split_prefix(raw, "date")
    slow, shigh = _parse_date(value)
    if prefix == "eq":
        return cat(f"({low} >= ", val(slow), f" AND {high} <= ", val(shigh), ")")
    if prefix == "ne":
        return cat(f"NOT ({low} >= ", val(slow), f" AND {high} <= ", val(shigh), ")")
    if prefix == "gt":
        return cat(f"{high} > ", val(shigh))
    if prefix == "ge":
        return cat(f"{high} > ", val(slow))
    if prefix == "lt":
        return cat(f"{low} < ", val(slow))
    if prefix == "le":
        return cat(f"{low} < ", val(shigh))
    if prefix == "sa":
        return cat(f"{low} >= ", val(shigh))
    if prefix == "eb":
        return cat(f"{high} <= ", val(slow))
    # ap: within 10% of the distance from now, per the spec's guidance.
    margin = max(0.1 * abs(time.time() - slow), shigh - slow)
    return cat(f"({high} > ", val(slow - margin), f" AND {low} < ", val(shigh + margin), ")")


def _parse_number(value: str) -> tuple[float, float, float]:
    try:
        return number_range(value)
    except (ValueError, ArithmeticError):
        raise bad_request(f"'{value[:60]}' is not a valid number", f"'{value[:60]}' không phải số hợp lệ") from None


def _number_cond(raw: str, column: str = "value") -> Frag:
    prefix, value = split_prefix(raw, "number")
    num, low, high = _parse_number(value)
    if prefix in ("eq", "ne"):
        cond = cat(f"({column} >= ", val(low), f" AND {column} < ", val(high), ")")
        return cond if prefix == "eq" else cat("NOT ", cond)
    if prefix == "ap":
        return cat(f"({column} >= ", val(num - abs(num) * 0.1), f" AND {column} <= ", val(num + abs(num) * 0.1), ")")
    op = {"gt": ">", "sa": ">", "lt": "<", "eb": "<", "ge": ">=", "le": "<="}[prefix]
    return cat(f"{column} {op} ", val(num))


def _quantity_parts(raw: str) -> tuple[str, str, str]:
    """``5.4|http://unitsofmeasure.org|mg`` → (number with prefix, system, code)."""
    parts = raw.split("|")
    if len(parts) not in (1, 3):
        raise bad_request(
            f"Quantity '{raw[:60]}' must be number or number|system|code",
            f"Số lượng '{raw[:60]}' phải có dạng số hoặc số|hệ|mã",
        )
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], "", "")


def canonical_query(raw: str) -> str | None:
    """The same quantity query in the canonical UCUM unit, when its unit is convertible."""
    number, system, code = _quantity_parts(raw)
    if not code or system not in ("", UCUM):
        return None
    prefix, value = split_prefix(number, "quantity")
    canonical = ucum_to_canonical(code, _parse_number(value)[0])
    if canonical is None:
        return None
    return f"{prefix}{canonical[1]!r}|{UCUM}|{canonical[0]}"


def _quantity_cond(raw: str) -> Frag:
    number, system, code = _quantity_parts(raw)
    parts: list[Frag] = [_number_cond(number)]
    if system:
        parts.append(cat("system = ", val(system)))
    if code:
        parts.append(cat("code = ", val(code)))
    return cat("(", join(" AND ", parts), ")")


def _reference_cond(modifier: str | None, value: str, base_url: str) -> Frag:
    if base_url and value.startswith(base_url.rstrip("/") + "/"):
        value = value[len(base_url.rstrip("/")) + 1 :]
    if "://" in value or value.startswith("urn:"):
        url, _, version = value.partition("|")
        cond = cat("url = ", val(url))
        return cat("(", cond, " AND version = ", val(version), ")") if version else cond
    parts = value.split("/")
    if len(parts) == 2:
        if modifier and parts[0] != modifier:
            return Frag("1 = 0")
        return cat("(target_type = ", val(parts[0]), " AND target_id = ", val(parts[1]), ")")
    if len(parts) == 1:
        if modifier:
            return cat("(target_type = ", val(modifier), " AND target_id = ", val(value), ")")
        return cat("target_id = ", val(value))
    raise bad_request(
        f"Reference '{value[:80]}' must be id, Type/id or an absolute URL",
        f"Tham chiếu '{value[:80]}' phải là id, Loại/id hoặc URL tuyệt đối",
    )


def _uri_cond(modifier: str | None, value: str) -> Frag:
    if modifier == "below":
        return cat("(uri >= ", val(value), " AND uri < ", val(value + _TOP), ")")
    if modifier == "above":
        # Every ancestor path: http://a/b/c matches http://a/b/c, http://a/b and http://a/b/ ...
        cuts = [i for i, ch in enumerate(value) if ch == "/" and i > value.find("//") + 1]
        prefixes = dict.fromkeys([*(value[:i] for i in cuts), *(value[: i + 1] for i in cuts), value])
        return cat("uri IN (", val(*prefixes), ")")
    return cat("uri = ", val(value))
