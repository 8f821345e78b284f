"""Compile SearchParameter FHIRPath expressions into accessors: ``resource → [(value, fhir_type)]``.

An expression is first split on its top-level ``|`` into parts, and each part is assigned to the
resource type it starts with ("AllergyIntolerance.code | Condition.code" gives Condition only its own
part; "Resource.meta.tag" applies to every type).

Fast path — the shapes that make up almost all official expressions compile to plain Python:

- dotted paths ``Patient.name.given`` (choice elements follow the JSON keys ``valueQuantity``, …),
- casts ``(Observation.value as Quantity)``, ``Condition.onset.as(Age)``, ``.ofType(T)``,
- ``.where(resolve() is Patient)``: a filter on the reference's type segment (no database lookup),
- ``.where(field='literal')`` on a child primitive, and ``[n]`` indexing,
- paths relative to the resource (``name | alias`` on InsurancePlan),
- ``P.exists() and P != false`` (Patient.deceased) as a single boolean.

Where FHIRPath would raise because ``as`` meets several items (``Observation.component.value as
Quantity`` on a multi-component Observation), the fast path filters item by item, which is what a
search index needs. ``tests/search/test_extract_fast_path.py`` checks the fast path selects exactly
what fhirpathpy selects on every official example wherever fhirpathpy can evaluate the part.

Types come from the R4 StructureDefinitions (:mod:`ketnoi.search.extract_model`), so each value is
handed over with its FHIR type. Anything else (``exists()`` booleans, ``extension('url')``,
arithmetic…) falls back to fhirpathpy: parsed once per part and cached, evaluated with the R4 model
and a ``resolve()`` that, like the fast path, only looks at the reference string.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models as fhirpath_models

from ketnoi.search.extract_model import Child, TypeModel
from ketnoi.search.extract_values import reference_type

Typed = tuple[Any, "str | None"]
Accessor = Callable[[dict[str, Any]], list[Typed]]

ANY_TYPE = "*"  # a part whose root is Resource/DomainResource or not a type name at all

# ------------------------------------------------------------------------------------------- splitting


def split_union(expression: str) -> list[str]:
    """Top-level ``|`` parts of an expression (not inside parentheses or string literals)."""
    parts: list[str] = []
    depth, start, quote = 0, 0, False
    for i, ch in enumerate(expression):
        if ch == "'" and (i == 0 or expression[i - 1] != "\\"):
            quote = not quote
        elif quote:
            continue
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return [p for p in parts if p]


_ROOT = re.compile(r"\(*\s*([A-Za-z]\w*)")


def part_root(part: str, model: TypeModel) -> str:
    """The resource type a part applies to, or :data:`ANY_TYPE`."""
    match = _ROOT.match(part)
    if match is None:
        return ANY_TYPE
    name = match[1]
    if name in ("Resource", "DomainResource") or name not in model.resource_types:
        return ANY_TYPE
    return name


# -------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class Field:
    name: str


@dataclass(frozen=True, slots=True)
class Cast:
    type: str


@dataclass(frozen=True, slots=True)
class Index:
    n: int


@dataclass(frozen=True, slots=True)
class WhereResolve:
    types: frozenset[str]


@dataclass(frozen=True, slots=True)
class WhereEq:
    field: str
    literal: str


Step = Field | Cast | Index | WhereResolve | WhereEq

_IDENT = r"[A-Za-z_]\w*"
_PAREN_CAST = re.compile(rf"\((?P<inner>[^()|]+?)\s+as\s+(?P<type>{_IDENT})\)(?P<rest>(?:\.{_IDENT})*)")
_SEGMENTS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], list[Step]]]] = [
    (re.compile(rf"({_IDENT})"), lambda m: [Field(m[1])]),
    (re.compile(rf"({_IDENT})\[(\d+)\]"), lambda m: [Field(m[1]), Index(int(m[2]))]),
    (re.compile(rf"(?:as|ofType)\(({_IDENT})\)"), lambda m: [Cast(m[1])]),
    (
        re.compile(rf"where\(resolve\(\)\s+is\s+({_IDENT})\)"),
        lambda m: [WhereResolve(frozenset({m[1]}))],
    ),
    (re.compile(rf"where\(({_IDENT})\s*=\s*'([^'\\]*)'\)"), lambda m: [WhereEq(m[1], m[2])]),
]


def parse_simple(part: str) -> tuple[str, list[Step]] | None:
    """``(root, steps)`` when ``part`` is in the fast-path grammar, else ``None``."""
    part = part.strip()
    cast = _PAREN_CAST.fullmatch(part)
    if cast is not None:
        inner = parse_simple(cast["inner"])
        if inner is None:
            return None
        rest = [Field(name) for name in cast["rest"].split(".")[1:]]
        return inner[0], [*inner[1], Cast(cast["type"]), *rest]
    segments = _split_dots(part)
    if not segments or not re.fullmatch(_IDENT, segments[0]):
        return None
    steps: list[Step] = []
    for segment in segments[1:]:
        for pattern, build in _SEGMENTS:
            match = pattern.fullmatch(segment)
            if match is not None:
                steps.extend(build(match))
                break
        else:
            return None
    return segments[0], steps


def _split_dots(part: str) -> list[str]:
    out: list[str] = []
    depth, start, quote = 0, 0, False
    for i, ch in enumerate(part):
        if ch == "'":
            quote = not quote
        elif quote:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "." and depth == 0:
            out.append(part[start:i])
            start = i + 1
        elif ch.isspace() and depth == 0:
            return []  # operators ("and", "!=", "as" outside parentheses): not a plain path
    out.append(part[start:])
    return out


# ------------------------------------------------------------------------------------------ compiling


class Unsupported(Exception):
    """The part parses but cannot be typed statically (unknown element): use fhirpathpy."""


def compile_fast(root_type: str, steps: list[Step], model: TypeModel) -> Accessor:
    """Compile parsed steps, starting at ``root_type``, into a Python accessor.

    Raises :class:`Unsupported` when a step names no element of the type reached (the expression
    is then left to fhirpathpy, which reports it the same way fhirpath would).
    """
    types: set[str] = {root_type}
    if all(isinstance(s, Field) for s in steps):
        keys: list[str] = []
        for i, step in enumerate(steps):
            assert isinstance(step, Field)
            children = _children(types, step.name, model)
            if i < len(steps) - 1 and len(children) == 1 and not children[0].is_choice:
                keys.append(children[0].key)
                types = {children[0].type}
                continue
            if i == len(steps) - 1:
                return _dotted(tuple(keys), children)
            break
    return _generic(root_type, steps, model)


def _children(types: set[str], name: str, model: TypeModel) -> tuple[Child, ...]:
    found: list[Child] = []
    for type_path in types:
        children = model.children(type_path, name)
        if children:
            found.extend(children)
    if not found:
        raise Unsupported(f"no element {name!r} in {sorted(types)}")
    return tuple(found)


def _dotted(keys: tuple[str, ...], last: tuple[Child, ...]) -> Accessor:
    """The hot path: non-choice keys down to the last step, then one or more (choice) keys."""
    leaves = tuple((child.key, child.type) for child in last)

    def access(resource: dict[str, Any]) -> list[Typed]:
        nodes: list[Any] = [resource]
        for key in keys:
            nxt: list[Any] = []
            for node in nodes:
                if type(node) is dict:
                    value = node.get(key)
                    if value is not None:
                        if type(value) is list:
                            nxt.extend(value)
                        else:
                            nxt.append(value)
            if not nxt:
                return []
            nodes = nxt
        out: list[Typed] = []
        for node in nodes:
            if type(node) is dict:
                for key, fhir_type in leaves:
                    value = node.get(key)
                    if value is not None:
                        if type(value) is list:
                            out.extend((item, fhir_type) for item in value if item is not None)
                        else:
                            out.append((value, fhir_type))
        return out

    return access


StepFn = Callable[[list[Typed]], list[Typed]]


def _generic(root_type: str, steps: list[Step], model: TypeModel) -> Accessor:
    """Any fast-path step sequence, carrying each value's type from step to step."""
    types: set[str] = {root_type}
    fns: list[StepFn] = []
    for step in steps:
        fn, types = _compile_step(step, types, model)
        fns.append(fn)

    def access(resource: dict[str, Any]) -> list[Typed]:
        nodes: list[Typed] = [(resource, root_type)]
        for fn in fns:
            nodes = fn(nodes)
            if not nodes:
                break
        return nodes

    return access


def _compile_step(step: Step, types: set[str], model: TypeModel) -> tuple[StepFn, set[str]]:
    if isinstance(step, Field):
        if "Resource" in types:
            raise Unsupported("navigation below an untyped inline resource")
        table: dict[str, tuple[Child, ...]] = {}
        for type_path in types:
            children = model.children(type_path, step.name)
            if children:
                table[type_path] = children
        if not table:
            raise Unsupported(f"no element {step.name!r} in {sorted(types)}")
        return _field_fn(table), {c.type for cs in table.values() for c in cs}
    if isinstance(step, Cast):
        keep = frozenset(t for t in types if model.is_subtype(t, step.type))
        return (lambda nodes: [n for n in nodes if n[1] in keep]), set(keep)
    if isinstance(step, Index):
        n = step.n
        return (lambda nodes: nodes[n : n + 1]), types
    if isinstance(step, WhereResolve):
        targets = step.types
        return (lambda nodes: [n for n in nodes if reference_type(n[0]) in targets]), types
    field, literal = step.field, step.literal
    return (lambda nodes: [n for n in nodes if type(n[0]) is dict and n[0].get(field) == literal]), types


def _field_fn(table: dict[str, tuple[Child, ...]]) -> StepFn:
    def step(nodes: list[Typed]) -> list[Typed]:
        out: list[Typed] = []
        for node, type_path in nodes:
            if type(node) is not dict:
                continue
            for child in table.get(type_path or "", ()):
                value = node.get(child.key)
                if value is None:
                    continue
                for item in value if type(value) is list else (value,):
                    if item is not None:
                        out.append((item, _runtime_type(item, child.type)))
        return out

    return step


def _runtime_type(item: Any, static: str) -> str:
    # An element typed Resource (Bundle.entry.resource) is whatever its resourceType says.
    if static == "Resource" and type(item) is dict:
        rtype = item.get("resourceType")
        if type(rtype) is str:
            return rtype
    return static


# ------------------------------------------------------------------------------------------- fallback


def _resolve(inputs: list[Any]) -> list[Any]:
    """fhirpathpy ``resolve()``: a typed stub from the reference string, enough for ``is``/``as``."""
    out: list[Any] = []
    for item in inputs:
        target = reference_type(item)
        if target is not None:
            out.append(ResourceNode({"resourceType": target}, target))  # type: ignore[no-untyped-call]
    return out


_FHIRPATH_OPTIONS = {
    "returnRawData": True,
    "userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}},
}


def compile_fallback(part: str) -> Accessor:
    """A fhirpathpy-evaluated part (parsed now, once). Raises whatever fhirpathpy raises on parsing."""
    evaluate = fhirpathpy.compile(part, fhirpath_models["r4"], _FHIRPATH_OPTIONS)

    def access(resource: dict[str, Any]) -> list[Typed]:
        out: list[Typed] = []
        for node in evaluate(resource, None):
            if isinstance(node, ResourceNode):
                path = node.path if isinstance(node.path, str) else None
                if node.data is not None:
                    out.append((node.data, path))
            elif isinstance(node, bool):
                out.append((node, "boolean"))
            elif isinstance(node, (str, int, float, dict)):
                out.append((node, None))
            else:  # FP_DateTime, FP_Quantity…: their string form is the FHIR literal
                out.append((str(node), None))
        return out

    return access


# "Patient.deceased.exists() and Patient.deceased != false": true when the element is present and is
# not the boolean false (a deceasedDateTime counts as deceased). Always one boolean, like fhirpath.
_EXISTS_NOT = re.compile(r"(?P<path>[\w.]+)\.exists\(\)\s+and\s+(?P=path)\s*!=\s*(?P<lit>true|false)")


def _compile_exists_not(part: str, model: TypeModel, resource_type: str) -> Accessor | None:
    match = _EXISTS_NOT.fullmatch(part.strip())
    if match is None:
        return None
    parsed = parse_simple(match["path"])
    if parsed is None or parsed[0] != resource_type:
        return None
    inner = compile_fast(resource_type, parsed[1], model)
    excluded = match["lit"] == "true"

    def access(resource: dict[str, Any]) -> list[Typed]:
        values = [value for value, _ in inner(resource)]
        return [(bool(values) and all(v is not excluded for v in values), "boolean")]

    return access


def compile_part(part: str, model: TypeModel, resource_type: str) -> tuple[Accessor, bool]:
    """``(accessor, fast)`` for one union part evaluated on ``resource_type`` resources."""
    try:
        exists_not = _compile_exists_not(part, model, resource_type)
    except Unsupported:
        exists_not = None
    if exists_not is not None:
        return exists_not, True
    parsed = parse_simple(part)
    if parsed is not None:
        root, steps = parsed
        if root not in ("Resource", "DomainResource", resource_type) and model.children(resource_type, root):
            steps = [Field(root), *steps]  # "name | alias": paths relative to the resource itself
            root = resource_type
        if root in ("Resource", "DomainResource", resource_type):
            try:
                return compile_fast(resource_type, steps, model), True
            except Unsupported:
                pass
    return compile_fallback(part), False
