"""URL query parameters → SearchQuery (http://hl7.org/fhir/R4/search.html).

Pure: it needs only the searchable parameters of each resource type (``params_for(type)`` → code →
SearchParameter). Every name that will shape SQL — parameter codes, modifiers, chain links, ``_has``
types, ``_sort`` keys, ``_include`` values — is checked here against that registry; compile only ever
sees names that exist. Unknown parameters are an error with ``handling=strict`` and collected in
``ignored`` otherwise; malformed values are always a 400. The terminology modifiers of token parameters
(``:in``, ``:not-in``, ``:above``, ``:below``) are kept as they are: ``ketnoi.terminology`` rewrites them
into plain token criteria before compiling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from ketnoi.fhir import definitions
from ketnoi.fhir.outcome import FhirError, bad_request
from ketnoi.search.composite import components
from ketnoi.search.extract_model import r4_model
from ketnoi.search.normalize import fold
from ketnoi.search.query import (
    Chain,
    Composite,
    Criterion,
    Filter,
    Has,
    Include,
    SearchQuery,
    SortKey,
    TextSearch,
    split_or,
)

ParamsFor = Callable[[str], Mapping[str, Mapping[str, Any]]]

# Parameters that apply to every resource, handled by the resource table itself.
COMMON: dict[str, str] = {"_id": "token", "_lastUpdated": "date"}
# Result parameters: they shape the result instead of filtering it.
RESULT_PARAMS = {
    "_count",
    "_offset",
    "_cursor",
    "_total",
    "_summary",
    "_elements",
    "_sort",
    "_format",
    "_pretty",
    "_type",
    "_include",
    "_revinclude",
}
TEXT_PARAMS = ("_text", "_content")  # full text: TextSearch over idx_text (docs/search.md)
_TOTALS = ("none", "estimate", "accurate")
_SUMMARIES = ("true", "false", "text", "data", "count")
_MODIFIERS: dict[str, set[str]] = {
    "string": {"exact", "contains", "missing"},
    "token": {"missing", "not", "text", "exact", "of-type", "in", "not-in", "above", "below"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"missing", "identifier"},  # plus :[type]
    "uri": {"missing", "below", "above"},
}
# Token modifiers that need terminology (value set expansion, subsumption): not on _id.
TERMINOLOGY_MODIFIERS = {"in", "not-in", "above", "below"}
SORTABLE_TYPES = {"string", "token", "date", "number", "quantity", "reference", "uri"}
MAX_DEPTH = 4  # chain links / nested _has levels in one parameter
MAX_INCLUDE_PARAMS = 50  # reference parameters one "*" may expand to


class _Skip(Exception):
    """A parameter this server does not understand: 400 in strict handling, ignored otherwise."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.en, self.vi = en, vi


def parse(
    resource_types: tuple[str, ...],
    params: list[tuple[str, str]],
    params_for: ParamsFor,
    *,
    strict: bool,
    default_count: int = 20,
    max_count: int = 1000,
) -> SearchQuery:
    """Build the query for a search over ``resource_types`` (empty: every type)."""
    parser = _Parser(params_for)
    query = SearchQuery(resource_types, count=default_count)
    for key, value in params:
        name = key.partition(":")[0]
        try:
            if name in RESULT_PARAMS:
                _result_param(query, parser, key, name, value, max_count)
            else:
                query.filters.append(parser.criterion(resource_types, key, value, 0))
        except _Skip as skip:
            if strict:
                raise FhirError.of(
                    400,
                    "not-supported",
                    f"Search parameter '{key[:80]}': {skip.en}",
                    f"Tham số tìm kiếm '{key[:80]}': {skip.vi}",
                ) from None
            query.ignored.append(key)
    if query.cursor is not None and query.offset:
        raise bad_request("_cursor and _offset cannot be combined", "Không thể dùng _cursor cùng với _offset")
    return query


class _Parser:
    def __init__(self, params_for: ParamsFor) -> None:
        self.params_for = params_for

    def searchable(self, types: tuple[str, ...]) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for rtype in types or ("Resource",):
            out.update(self.params_for(rtype))
        return out

    def criterion(self, types: tuple[str, ...], key: str, value: str, depth: int) -> Criterion:
        if depth > MAX_DEPTH:
            raise bad_request(
                f"Search parameter chains are limited to {MAX_DEPTH} links",
                f"Chuỗi tham số tìm kiếm giới hạn {MAX_DEPTH} mắt xích",
            )
        if key.startswith("_has:"):
            return self._has(types, key, value, depth)
        head, dot, rest = key.partition(".")
        if dot:
            return self._chain(types, head, rest, value, depth)
        code, _, modifier = key.partition(":")
        if code in COMMON:
            return _filter(code, COMMON[code], modifier or None, value)
        sp = self.searchable(types).get(code)
        if code in TEXT_PARAMS and sp is not None and not sp.get("expression"):
            return _text_search(code, modifier, value)
        if sp is None:
            raise _Skip("unknown search parameter", "tham số tìm kiếm không tồn tại")
        kind = str(sp.get("type"))
        if kind == "composite":
            return _composite(code, sp, modifier, value)
        if kind == "special" and modifier != "missing":
            raise _Skip("special parameters (near) are not supported", "chưa hỗ trợ tham số đặc biệt (near)")
        return _filter(code, kind, modifier or None, value)

    def _has(self, types: tuple[str, ...], key: str, value: str, depth: int) -> Criterion:
        parts = key.split(":", 3)
        if len(parts) < 4 or not parts[3]:
            raise bad_request(
                f"'{key[:80]}' must have the form _has:Type:reference:parameter",
                f"'{key[:80]}' phải có dạng _has:Loại:tham-chiếu:tham-số",
            )
        source, ref = parts[1], parts[2]
        if source not in definitions.resource_types():
            raise bad_request(f"Unknown resource type '{source[:60]}' in _has", f"Loại '{source[:60]}' không tồn tại")
        sp = self.params_for(source).get(ref)
        if sp is None or sp.get("type") != "reference":
            raise _Skip(
                f"'{ref[:60]}' is not a reference parameter of {source}",
                f"'{ref[:60]}' không phải tham số tham chiếu của {source}",
            )
        targets = sp.get("target") or ()
        if types and targets and not any(t in targets for t in types):
            raise bad_request(
                f"{source}.{ref} never refers to {', '.join(types)}",
                f"{source}.{ref} không bao giờ tham chiếu tới {', '.join(types)}",
            )
        return Has(source, ref, self.criterion((source,), parts[3], value, depth + 1))

    def _chain(self, types: tuple[str, ...], head: str, rest: str, value: str, depth: int) -> Criterion:
        code, _, type_modifier = head.partition(":")
        sp = self.searchable(types).get(code)
        if sp is None:
            raise _Skip("unknown search parameter in chain", "tham số trong chuỗi không tồn tại")
        if sp.get("type") != "reference":
            raise bad_request(
                f"Only reference parameters can be chained; '{code}' is {sp.get('type')}",
                f"Chỉ tham số tham chiếu mới nối chuỗi được; '{code}' là {sp.get('type')}",
            )
        targets = [t for t in sp.get("target") or () if t in definitions.resource_types()]
        if type_modifier:
            if type_modifier not in definitions.resource_types() or (targets and type_modifier not in targets):
                raise bad_request(
                    f"'{type_modifier[:60]}' is not a target type of '{code}'",
                    f"'{type_modifier[:60]}' không phải loại đích của '{code}'",
                )
            targets = [type_modifier]
        if not targets:
            raise bad_request(
                f"'{code}' can refer to any type: name one, e.g. {code}:Patient.name",
                f"'{code}' có thể tham chiếu mọi loại: hãy chỉ rõ, ví dụ {code}:Patient.name",
            )
        inner_code = rest.partition(".")[0].partition(":")[0]
        groups: dict[Criterion, list[str]] = {}
        for target in targets:
            known = inner_code in COMMON or inner_code == "_has" or inner_code in self.params_for(target)
            if known:
                groups.setdefault(self.criterion((target,), rest, value, depth + 1), []).append(target)
        if not groups:
            raise _Skip(
                f"'{inner_code[:60]}' is not a search parameter of {' or '.join(targets)}",
                f"'{inner_code[:60]}' không phải tham số tìm kiếm của {' hoặc '.join(targets)}",
            )
        return Chain(code, tuple((tuple(ts), crit) for crit, ts in groups.items()))

    def include(self, types: tuple[str, ...], key: str, value: str) -> Include:
        name, _, modifier = key.partition(":")
        if modifier not in ("", "iterate", "recurse"):
            raise bad_request(
                f"Unknown modifier on {name}: '{modifier[:40]}'", f"Bộ sửa không hợp lệ: '{modifier[:40]}'"
            )
        reverse = name == "_revinclude"
        parts = value.split(":")
        if value == "*" and not reverse and len(types) == 1:
            parts = [types[0], "*"]
        if len(parts) not in (2, 3) or parts[0] not in definitions.resource_types():
            raise bad_request(
                f"{name} must be Type:parameter[:TargetType], not '{value[:80]}'",
                f"{name} phải có dạng Loại:tham-số[:LoạiĐích], không phải '{value[:80]}'",
            )
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if target is not None and target not in definitions.resource_types():
            raise bad_request(f"Unknown target type '{target[:60]}' in {name}", f"Loại '{target[:60]}' không tồn tại")
        refs = {c: sp for c, sp in self.params_for(source).items() if sp.get("type") == "reference"}
        if code == "*":
            codes = tuple(sorted(refs))[:MAX_INCLUDE_PARAMS]
        elif code in refs:
            codes = (code,)
        else:
            raise _Skip(
                f"'{code[:60]}' is not a reference parameter of {source}",
                f"'{code[:60]}' không phải tham số tham chiếu của {source}",
            )
        return Include(source, codes, target, modifier != "", reverse)

    def sort_key(self, types: tuple[str, ...], key: str) -> SortKey:
        desc = key.startswith("-")
        code = key[1:] if desc else key
        if code == "_id":
            return SortKey(code, "id", desc)
        if code == "_lastUpdated":
            return SortKey(code, "lastUpdated", desc)
        sp = self.searchable(types).get(code)
        kind = str(sp.get("type")) if sp is not None else ""
        if sp is None or kind not in SORTABLE_TYPES or not sp.get("expression"):
            raise bad_request(
                f"Cannot sort by '{code[:60]}': not a sortable search parameter of this type",
                f"Không thể sắp xếp theo '{code[:60]}': không phải tham số sắp xếp được",
            )
        if kind == "string" and any(_aggregate_string(t, str(sp.get("expression", ""))) for t in types):
            raise bad_request(
                f"Cannot sort by '{code}': it spans every part of a name or address; sort by a part "
                "(family, given, address-city, ...) instead",
                f"Không thể sắp xếp theo '{code}': tham số gồm mọi phần của tên/địa chỉ; hãy sắp xếp theo "
                "một phần (family, given, address-city, ...)",
            )
        return SortKey(code, kind, desc)


@cache
def _aggregate_string(rtype: str, expression: str) -> bool:
    """The string parameter indexes a whole HumanName or Address (several parts: no single sort key)."""
    for part in expression.split("|"):
        path = part.strip()
        if path.startswith(rtype + "."):
            step = path[len(rtype) + 1 :]
            children = r4_model().children(rtype, step) if step.isidentifier() else None
            if children and any(c.type in ("HumanName", "Address") for c in children):
                return True
    return False


def _composite(code: str, sp: Mapping[str, Any], modifier: str, value: str) -> Composite:
    comps = components(sp)
    if comps is None:
        raise _Skip("this composite parameter is not supported", "chưa hỗ trợ tham số tổ hợp này")
    if modifier:
        raise bad_request(
            f"Modifier ':{modifier[:40]}' is not supported for composite parameter '{code}'",
            f"Không hỗ trợ bộ sửa ':{modifier[:40]}' cho tham số tổ hợp '{code}'",
        )
    pairs: list[tuple[str, str]] = []
    for item in _values(code, value):
        first, sep, second = item.partition("$")
        if not sep or not first or not second or "$" in second:
            raise bad_request(
                f"'{code}' takes two values joined by $ (e.g. http://loinc.org|8480-6$gt100), not '{item[:80]}'",
                f"'{code}' nhận hai giá trị nối bằng $ (ví dụ http://loinc.org|8480-6$gt100), không phải '{item[:80]}'",
            )
        pairs.append((first, second))
    return Composite(code, tuple((c, t) for c, t, _ in comps), tuple(pairs))


def _text_search(code: str, modifier: str, value: str) -> TextSearch:
    """``_text`` / ``_content``: comma-separated alternatives, each a list of words that must all
    appear (folded, as substrings) in the resource's text."""
    if modifier:
        raise bad_request(
            f"Modifier ':{modifier[:40]}' is not supported for '{code}'",
            f"Không hỗ trợ bộ sửa ':{modifier[:40]}' cho '{code}'",
        )
    values = tuple(v.replace("\\|", "|") for v in _values(code, value))
    for v in values:
        if not fold(v).split():
            raise bad_request(
                f"'{code}' needs at least one word, not '{v[:40]}'",
                f"'{code}' cần ít nhất một từ, không phải '{v[:40]}'",
            )
    return TextSearch(code, values)


def _values(name: str, value: str) -> tuple[str, ...]:
    values = split_or(value)
    if any(v == "" for v in values):
        raise bad_request(f"Empty value for search parameter '{name}'", f"Giá trị rỗng cho tham số tìm kiếm '{name}'")
    return values


def _filter(name: str, kind: str, modifier: str | None, value: str) -> Filter:
    typed_reference = kind == "reference" and modifier is not None and modifier in definitions.resource_types()
    allowed = _MODIFIERS.get(kind, set()) - (TERMINOLOGY_MODIFIERS if name in COMMON else set())
    if modifier is not None and modifier not in allowed and not typed_reference:
        raise bad_request(
            f"Modifier ':{modifier[:40]}' is not supported for {kind} parameter '{name}'",
            f"Không hỗ trợ bộ sửa ':{modifier[:40]}' cho tham số {kind} '{name}'",
        )
    if modifier == "missing" and value not in ("true", "false"):
        raise bad_request(
            f"'{name}:missing' takes true or false, not '{value[:40]}'",
            f"'{name}:missing' chỉ nhận true hoặc false, không phải '{value[:40]}'",
        )
    return Filter(name, kind, modifier, _values(name, value))


def _result_param(query: SearchQuery, parser: _Parser, key: str, name: str, value: str, max_count: int) -> None:
    if name in ("_include", "_revinclude"):
        query.includes.append(parser.include(query.resource_types, key, value))
    elif name == "_count":
        query.count = _non_negative(name, value)
        if query.count > max_count:
            query.count, query.count_capped = max_count, True
    elif name == "_offset":
        query.offset = _non_negative(name, value)
    elif name == "_cursor":
        query.cursor = value
    elif name == "_total":
        query.total = _choice(name, value, _TOTALS)
    elif name == "_summary":
        query.summary = _choice(name, value, _SUMMARIES)
    elif name == "_elements":
        query.elements = tuple(e.strip() for e in value.split(",") if e.strip())
    elif name == "_sort":
        query.sort.extend(parser.sort_key(query.resource_types, k) for k in value.split(",") if k)


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
