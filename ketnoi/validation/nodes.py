"""The data side of profile checking: a JSON value with what the definitions say about it.

A :class:`Node` is one value found in a resource (an object, or a primitive with its ``_name``
sibling) together with its FHIR type, its definition path and its location for messages.
:func:`children` finds the values of one element of a node the way profiles name elements:
``identifier``, ``value[x]`` (every present ``valueQuantity``/``valueString``/…), or one choice type
(``valueQuantity``). It walks the compiled structure tables of ``tables``, so only known elements
are visited (the structural gate has already refused the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tables import Elem, Kind, Table, type_table


@dataclass(slots=True)
class Node:
    value: Any  # the JSON value: an object, or a primitive (None when only its ``_name`` is given)
    ext: Any  # a primitive's ``_name`` object (id, extension), or None
    loc: str  # FHIRPath location for messages: Patient.identifier[1].system
    type: str  # FHIR type code: Identifier, uri, BackboneElement, or the resource type
    path: str  # definition path: Patient.identifier.system, Patient.contact
    table: Table | None  # the table of an object's properties; None for primitives
    choice: bool = False  # the value of a choice element (its type came from the property name)
    resource: dict[str, Any] | None = None  # the resource the value belongs to (for FHIRPath)

    @property
    def object(self) -> dict[str, Any] | None:
        """The JSON object holding the node's own elements (a primitive's ``_name`` object)."""
        if isinstance(self.value, dict):
            return self.value
        return self.ext if isinstance(self.ext, dict) else None


def resource_node(resource: dict[str, Any], loc: str | None = None) -> Node | None:
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        return None
    try:
        table = type_table(rtype)
    except KeyError:
        return None
    return Node(resource, None, loc or rtype, rtype, rtype, table, resource=resource)


def _table_of(kind: Kind, code: str, value: Any, elem_table: Table | None) -> tuple[str, Table | None]:
    if kind is Kind.BACKBONE:
        return "BackboneElement", elem_table
    if kind is Kind.RESOURCE and isinstance(value, dict):
        code = str(value.get("resourceType", code))
    if kind in (Kind.COMPLEX, Kind.RESOURCE):
        try:
            return code, type_table(code)
        except KeyError:
            return code, None
    return code, None


def _names(table: Table, name: str) -> tuple[str, ...]:
    if name.endswith("[x]"):
        return table.choices.get(name[:-3], ())
    elem = table.elements.get(name)
    if elem is None or elem.kind is Kind.PRIMITIVE_EXT:
        return ()
    return (name,)


def children(node: Node, name: str) -> list[Node]:
    """The values of element ``name`` of ``node`` (see the module docstring), in document order."""
    obj = node.object
    if obj is None or (name[-1] != "]" and name not in obj and "_" + name not in obj):
        return []  # the usual case, decided before any table is looked at
    table = node.table if isinstance(node.value, dict) else type_table("Element")
    if table is None:
        return []
    out: list[Node] = []
    for json_name in _names(table, name):
        elem = table.elements[json_name]
        raw = obj.get(json_name)
        extra = obj.get("_" + json_name) if elem.kind is Kind.PRIMITIVE else None
        if raw is None and extra is None:
            continue
        choice = bool(elem.choice)
        base = json_name[: len(json_name) - len(elem.type_code)] + "[x]" if choice else json_name
        path = f"{node.path}.{base}"
        prefix = f"{node.loc}.{json_name}"
        if extra is None and not elem.is_array:  # one value, no ``_name``: the common case
            out.append(_child(node, elem, raw, None, prefix, path, choice))
            continue
        values = raw if isinstance(raw, list) else [raw]
        exts = extra if isinstance(extra, list) else [extra]
        for index in range(max(len(values), len(exts))):
            value = values[index] if index < len(values) else None
            ext = exts[index] if index < len(exts) else None
            if value is not None or ext is not None:
                loc = f"{prefix}[{index}]" if elem.is_array else prefix
                out.append(_child(node, elem, value, ext, loc, path, choice))
    return out


def _child(parent: Node, elem: Elem, value: Any, ext: Any, loc: str, path: str, choice: bool) -> Node:
    code, sub = _table_of(elem.kind, elem.type_code, value, elem.table)
    if elem.kind is Kind.RESOURCE and isinstance(value, dict):  # a resource's paths start over
        return Node(value, ext, loc, code, code, sub, choice, value)
    return Node(value, ext, loc, code, path, sub, choice, parent.resource)


def url_of(node: Node) -> Any:
    """An extension's ``url`` (None for anything else)."""
    return node.value.get("url") if isinstance(node.value, dict) else None


def matches(value: Any, pattern: Any) -> bool:
    """Whether ``value`` holds everything ``pattern`` has (FHIR pattern[x] semantics)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches(value[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(matches(item, p) for item in items) for p in pattern)
    if isinstance(pattern, bool) or isinstance(value, bool):
        return value is pattern  # True is not 1
    return bool(value == pattern)


def codes_of(node: Node) -> list[tuple[str | None, str]] | None:
    """The codes a value holds for a binding, or None when its type is not a coded one."""
    value = node.value
    if node.type in ("code", "string", "uri") and isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return None
    if node.type in ("Coding", "Quantity"):
        code = value.get("code")
        return [(value.get("system"), code)] if isinstance(code, str) else []
    if node.type == "CodeableConcept":
        codings = value.get("coding") or []
        return [(c.get("system"), c["code"]) for c in codings if isinstance(c, dict) and isinstance(c.get("code"), str)]
    return None
