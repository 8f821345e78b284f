"""ValueSet expansion and CodeSystem subsumption (is-a), for the token search modifiers.

Pure: ValueSets and CodeSystems come from a :class:`Source` (see ``ketnoi.terminology.lookup``).
What is supported (http://hl7.org/fhir/R4/valueset.html#compositions):

- ``expansion.contains`` when the ValueSet carries one (nested ``contains`` included);
- otherwise ``compose``: every ``include`` minus every ``exclude``. One include/exclude item is the
  intersection of its system part and each of its ``valueSet`` imports (expanded recursively, a cycle
  is a 400). Its system part is the listed ``concept`` codes, else the codes of the CodeSystem that
  pass every ``filter``, else every code of the CodeSystem (nested concepts included);
- filters on ``concept`` (or ``code``): ``is-a``, ``descendent-of``, ``is-not-a``, ``=``, ``in``,
  ``not-in``; on another property: ``=`` and ``exists``. Anything else (``regex``, ``generalizes``…)
  is a 400 naming the filter.

The hierarchy of a CodeSystem is its nested ``concept`` lists plus the ``parent`` / ``subsumedBy``
(and ``child``) properties. An expansion larger than :data:`MAX_CODES` is refused (400 too-costly).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from ketnoi.fhir.outcome import FhirError, bad_request

Code = tuple[str, str]  # (system, code)
MAX_CODES = 10_000
_PARENT_PROPS = ("parent", "subsumedBy")


class Source(Protocol):
    """Where ValueSets and CodeSystems come from, by canonical URL."""

    def value_set(self, canonical: str) -> dict[str, Any] | None: ...

    def code_system(self, url: str, version: str | None = None) -> dict[str, Any] | None: ...


def too_costly(what: str, count: int, limit: int = MAX_CODES) -> FhirError:
    return FhirError.of(
        400,
        "too-costly",
        f"{what[:200]} has at least {count} codes, more than the {limit} this server can search with",
        f"{what[:200]} có ít nhất {count} mã, nhiều hơn mức {limit} mà máy chủ này tìm kiếm được",
    )


class Hierarchy:
    """The codes of one CodeSystem and their is-a links."""

    def __init__(self, code_system: dict[str, Any]) -> None:
        self.url = str(code_system.get("url", ""))
        self.concepts: dict[str, dict[str, Any]] = {}
        self.children: dict[str, set[str]] = {}
        self.parents: dict[str, set[str]] = {}
        self._walk(code_system.get("concept"), None)

    def _walk(self, concepts: Any, parent: str | None) -> None:
        for concept in concepts if isinstance(concepts, list) else ():
            code = concept.get("code") if isinstance(concept, dict) else None
            if not isinstance(code, str):
                continue
            self.concepts.setdefault(code, concept)
            if parent is not None:
                self._link(parent, code)
            for prop in concept.get("property") or ():
                value = prop.get("valueCode") if isinstance(prop, dict) else None
                if isinstance(value, str):
                    if prop.get("code") in _PARENT_PROPS:
                        self._link(value, code)
                    elif prop.get("code") == "child":
                        self._link(code, value)
            self._walk(concept.get("concept"), code)

    def _link(self, parent: str, child: str) -> None:
        self.children.setdefault(parent, set()).add(child)
        self.parents.setdefault(child, set()).add(parent)

    def descendants(self, code: str) -> set[str]:
        """Every code below ``code`` (not ``code`` itself, unless the hierarchy loops)."""
        return _closure(code, self.children)

    def ancestors(self, code: str) -> set[str]:
        return _closure(code, self.parents)


def _closure(start: str, links: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(links.get(start, ()))
    while todo:
        code = todo.pop()
        if code not in seen:
            seen.add(code)
            todo.extend(links.get(code, ()))
    return seen


def code_system_hierarchy(source: Source, url: str, version: str | None = None) -> Hierarchy:
    """The hierarchy of a known CodeSystem whose codes are present; 400 otherwise."""
    cs = source.code_system(url, version)
    label = f"{url}|{version}" if version else url
    if cs is None:
        raise bad_request(
            f"Unknown CodeSystem '{label[:200]}': it is neither stored on this server nor part of FHIR R4",
            f"Không tìm thấy CodeSystem '{label[:200]}': không có trên máy chủ này và không thuộc FHIR R4",
            code="not-supported",
        )
    require_codes(cs, label)
    return Hierarchy(cs)


def require_codes(cs: dict[str, Any], label: str) -> None:
    """400 for a CodeSystem that does not list its codes (``content`` not-present or supplement)."""
    if cs.get("content") in ("not-present", "supplement"):
        raise bad_request(
            f"CodeSystem '{label[:200]}' does not list its codes (content = {cs.get('content')})",
            f"CodeSystem '{label[:200]}' không liệt kê các mã (content = {cs.get('content')})",
            code="not-supported",
        )


def subsumption(source: Source, system: str, code: str, direction: str) -> set[Code]:
    """``:below`` (the code and its descendants) or ``:above`` (the code and its ancestors)."""
    tree = code_system_hierarchy(source, system)
    related = tree.descendants(code) if direction == "below" else tree.ancestors(code)
    if len(related) >= MAX_CODES:
        raise too_costly(f"'{system}|{code}' :{direction}", len(related))
    return {(system, c) for c in {code, *related}}


def expand(source: Source, canonical: str, limit: int = MAX_CODES) -> frozenset[Code]:
    """The (system, code) pairs of the ValueSet ``canonical`` (``url`` or ``url|version``)."""
    return _Expander(source, limit).value_set(canonical)


class _Expander:
    def __init__(self, source: Source, limit: int) -> None:
        self.source = source
        self.limit = limit
        self.stack: list[str] = []  # ValueSets being expanded (cycle guard)
        self.done: dict[str, frozenset[Code]] = {}

    def value_set(self, canonical: str) -> frozenset[Code]:
        if canonical in self.done:
            return self.done[canonical]
        if canonical in self.stack:
            cycle = " → ".join([*self.stack, canonical])
            raise bad_request(
                f"ValueSet imports form a cycle: {cycle[:300]}",
                f"Các ValueSet nhập lẫn nhau thành vòng: {cycle[:300]}",
            )
        vs = self.source.value_set(canonical)
        if vs is None:
            raise bad_request(
                f"Unknown ValueSet '{canonical[:200]}': it is neither stored on this server nor part of FHIR R4",
                f"Không tìm thấy ValueSet '{canonical[:200]}': không có trên máy chủ này và không thuộc FHIR R4",
                code="not-found",
            )
        self.stack.append(canonical)
        try:
            result = self.resource(vs, canonical)
        finally:
            self.stack.pop()
        self.done[canonical] = result
        return result

    def resource(self, vs: dict[str, Any], name: str) -> frozenset[Code]:
        contains = (vs.get("expansion") or {}).get("contains")
        if contains:
            return self.checked(name, _contained(contains))
        compose = vs.get("compose")
        if not isinstance(compose, dict) or not compose.get("include"):
            raise bad_request(
                f"ValueSet '{name[:200]}' has neither an expansion nor a compose.include",
                f"ValueSet '{name[:200]}' không có expansion cũng không có compose.include",
                code="not-supported",
            )
        included: set[Code] = set()
        for item in compose["include"]:
            included |= self.item(item, name)
            self.checked(name, included)
        for item in compose.get("exclude") or ():
            included -= self.item(item, name)
        return frozenset(included)

    def checked(self, name: str, codes: Iterable[Code]) -> frozenset[Code]:
        result = frozenset(codes)
        if len(result) > self.limit:
            raise too_costly(f"ValueSet '{name}'", len(result), self.limit)
        return result

    def item(self, item: dict[str, Any], name: str) -> set[Code]:
        """One include/exclude: its system part ∩ each imported ValueSet."""
        parts: list[frozenset[Code]] = []
        if isinstance(item.get("system"), str):
            parts.append(self.checked(name, self.system_part(item)))
        for canonical in item.get("valueSet") or ():
            parts.append(self.value_set(str(canonical)))
        if not parts:
            raise bad_request(
                f"ValueSet '{name[:200]}': an include/exclude needs a system or a valueSet",
                f"ValueSet '{name[:200]}': mỗi include/exclude cần system hoặc valueSet",
            )
        result = set(parts[0])
        for part in parts[1:]:
            result &= part
        return result

    def system_part(self, item: dict[str, Any]) -> set[Code]:
        system = item["system"]
        listed = [
            c["code"] for c in item.get("concept") or () if isinstance(c, dict) and isinstance(c.get("code"), str)
        ]
        filters = item.get("filter") or ()
        if item.get("concept") and not filters:
            return {(system, code) for code in listed}  # explicit codes need no CodeSystem
        version = item.get("version")
        tree = code_system_hierarchy(self.source, system, version if isinstance(version, str) else None)
        codes = set(listed) & tree.concepts.keys() if item.get("concept") else set(tree.concepts)
        for f in filters:
            codes &= _apply_filter(tree, f)
        return {(system, code) for code in codes}


def _contained(contains: list[Any]) -> set[Code]:
    out: set[Code] = set()
    for entry in contains:
        if not isinstance(entry, dict):
            continue
        system, code = entry.get("system"), entry.get("code")
        if isinstance(system, str) and isinstance(code, str):
            out.add((system, code))
        out |= _contained(entry.get("contains") or [])
    return out


def _apply_filter(tree: Hierarchy, f: dict[str, Any]) -> set[str]:
    prop, op, value = f.get("property"), f.get("op"), f.get("value")
    every = set(tree.concepts)
    if isinstance(value, str) and prop in ("concept", "code"):
        values = {v.strip() for v in value.split(",")}
        if op == "is-a":
            return ({value} | tree.descendants(value)) & every
        if op == "descendent-of":
            return tree.descendants(value) & every
        if op == "is-not-a":
            return every - {value} - tree.descendants(value)
        if op == "=":
            return {value} & every
        if op == "in":
            return values & every
        if op == "not-in":
            return every - values
    elif isinstance(value, str) and op in ("=", "exists"):
        having = {code for code, concept in tree.concepts.items() if _property(concept, str(prop)) is not None}
        if op == "exists":
            return having if value == "true" else every - having
        return {code for code in having if _property(tree.concepts[code], str(prop)) == value}
    label = f"{prop} {op} {value}"
    raise bad_request(
        f"CodeSystem '{tree.url[:200]}': filter '{label[:100]}' is not supported",
        f"CodeSystem '{tree.url[:200]}': chưa hỗ trợ bộ lọc '{label[:100]}'",
        code="not-supported",
    )


def _property(concept: dict[str, Any], name: str) -> str | None:
    """The value of a concept property as text (code, string, boolean, integer, Coding code)."""
    for prop in concept.get("property") or ():
        if not isinstance(prop, dict) or prop.get("code") != name:
            continue
        for key, value in prop.items():
            if key.startswith("value"):
                if isinstance(value, bool):
                    return "true" if value else "false"
                if isinstance(value, dict):
                    return str(value.get("code"))
                return str(value)
    return None
