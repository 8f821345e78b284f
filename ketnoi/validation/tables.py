"""Compile the R4 StructureDefinition snapshots into per-path lookup tables for the validator.

A ``Table`` describes the JSON object found at one definition path (``Patient``, ``Patient.contact``,
``HumanName``): JSON property name → ``Elem`` (kind, type, cardinality, primitive rule or child
table), plus the required elements and the choice groups. Tables are built once per type, on first
use, and cached for the process: the walker then validates with dictionary look-ups only.

How the JSON names come from the definitions (http://hl7.org/fhir/R4/json.html):
- ``value[x]`` expands to one property per allowed type (``valueQuantity``, ``valueString`` ...);
- a primitive ``birthDate`` also allows ``_birthDate`` (its id/extensions, typed as ``Element``);
- BackboneElements are described inline (their children follow in the snapshot) and
  ``contentReference`` (``Questionnaire.item.item``) reuses the table of another path of the type;
- complex data types point to the table of their own StructureDefinition, resolved lazily.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache
from typing import Any

from ketnoi.fhir.definitions import element_type_code, load, structure_definitions

from .bindings import Binding, element_binding
from .messages import code_not_allowed
from .primitives import RULES, PrimitiveRule, Problem


class Kind(IntEnum):
    PRIMITIVE = 0  # JSON string/number/boolean checked by a PrimitiveRule
    PRIMITIVE_EXT = 1  # the ``_name`` sibling of a primitive: Element (id + extension)
    COMPLEX = 2  # a complex data type, table of its own StructureDefinition
    BACKBONE = 3  # inline children (BackboneElement/Element or contentReference)
    RESOURCE = 4  # a nested resource whose own resourceType drives validation
    RESOURCE_TYPE = 5  # the ``resourceType`` property at the root of a resource


@dataclass(slots=True, eq=False)
class Elem:
    """One JSON property allowed in a Table."""

    name: str  # JSON property name, e.g. "valueQuantity" or "_birthDate"
    kind: Kind
    type_code: str  # FHIR type ("Quantity", "date", "Resource"...), for messages and table look-up
    is_array: bool
    max: int | None  # None when unbounded ("*") or 1 (single values are not counted)
    rule: PrimitiveRule | None = None
    table: Table | None = None  # BACKBONE: set at compile time; COMPLEX: filled on first use
    choice: tuple[str, ...] = ()  # every JSON name of the same value[x] group, when a choice
    primitive: Elem | None = None  # PRIMITIVE_EXT: the primitive element it extends
    binding: Binding | None = None  # COMPLEX Coding/CodeableConcept bound to a closed value set


@dataclass(slots=True, eq=False)
class Table:
    """The properties allowed in the JSON object at one definition path."""

    path: str
    elements: dict[str, Elem] = field(default_factory=dict)
    # (element name as defined, minimum, JSON names any of which satisfies it)
    required: list[tuple[str, int, tuple[str, ...]]] = field(default_factory=list)
    # choice base name ("value") → allowed JSON names, to explain a wrong type suffix
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _json_suffix(type_code: str) -> str:
    return type_code[0].upper() + type_code[1:]


def _max(definition: dict[str, Any]) -> tuple[bool, int | None]:
    """(is_array, max count). JSON uses an array whenever the element may repeat (max "*" or > 1)."""
    text = definition.get("max", "1")
    if text == "*":
        return True, None
    count = int(text)
    return count > 1, (count if count > 1 else None)


class _Compiler:
    """Builds the tables of one StructureDefinition (root path and every BackboneElement path)."""

    def __init__(self, sd: dict[str, Any]) -> None:
        self.sd = sd
        self.is_resource = sd.get("kind") == "resource"
        snapshot = [
            e
            for e in sd["snapshot"]["element"]
            # Base definitions have no slices; skip any defensively, and prohibited elements.
            if ":" not in e["id"] and e.get("max") != "0"
        ]
        self.root = snapshot[0]["path"]
        self.children: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for definition in snapshot[1:]:
            parent = definition["path"].rpartition(".")[0]
            self.children[parent].append(definition)
        self.tables = {path: Table(path) for path in self.children}
        self.tables.setdefault(self.root, Table(self.root))

    def compile(self) -> Table:
        for path, definitions in self.children.items():
            table = self.tables[path]
            for definition in definitions:
                self._add(table, definition)
        root = self.tables[self.root]
        if self.is_resource:
            root.elements["resourceType"] = Elem("resourceType", Kind.RESOURCE_TYPE, "string", False, None)
        return root

    def _add(self, table: Table, definition: dict[str, Any]) -> None:
        path: str = definition["path"]
        name = path.rpartition(".")[2]
        is_array, max_count = _max(definition)
        minimum = int(definition.get("min", 0))
        ref = definition.get("contentReference")
        group: tuple[str, ...] = ()
        if ref is not None or path in self.tables:
            target = self.tables[ref[1:] if ref is not None else path]
            elems = [Elem(name, Kind.BACKBONE, "BackboneElement", is_array, max_count, table=target)]
        elif not name.endswith("[x]"):
            code = element_type_code(definition["type"][0])
            if self.is_resource and path == f"{self.root}.id":
                code = "id"  # Resource.id is declared System.String but its values are of the id type
            elems = _typed(name, code, is_array, max_count)
            _bind(elems[0], element_binding(definition))
        else:
            base = name[:-3]
            elems = [
                elem
                for entry in definition["type"]
                for elem in _typed(
                    base + _json_suffix(element_type_code(entry)), element_type_code(entry), is_array, max_count
                )
            ]
            group = tuple(e.name for e in elems if e.kind is not Kind.PRIMITIVE_EXT)
            table.choices[base] = group
        for elem in elems:
            if elem.kind is not Kind.PRIMITIVE_EXT:  # a lone `_valueString` is not a competing value
                elem.choice = group
            table.elements[elem.name] = elem
        if minimum:
            table.required.append((name, minimum, tuple(e.name for e in elems)))


def _bind(elem: Elem, binding: Binding | None) -> None:
    """A required binding to a closed value set: a ``code`` gets a rule that also checks
    membership (the walker's fast path stays one call); a Coding or CodeableConcept is checked by
    the walker after its structure."""
    if binding is None:
        return
    if elem.kind is Kind.PRIMITIVE and elem.type_code == "code" and elem.rule is not None:
        elem.rule = _bound_rule(elem.rule, binding)
    elif elem.type_code in ("Coding", "CodeableConcept"):
        elem.binding = binding


_BOUND_RULES: dict[str, PrimitiveRule] = {}


def _bound_rule(rule: PrimitiveRule, binding: Binding) -> PrimitiveRule:
    bound = _BOUND_RULES.get(binding.url)
    if bound is None:
        syntax, allowed = rule.check, binding.plain

        def check(value: object) -> Problem | None:
            problem = syntax(value)
            if problem is not None or value in allowed:
                return problem
            return code_not_allowed(str(value), binding)

        bound = _BOUND_RULES[binding.url] = PrimitiveRule(rule.kind, check)
    return bound


def _typed(name: str, code: str, is_array: bool, max_count: int | None) -> list[Elem]:
    """The Elems of one typed property: a primitive brings its ``_name`` sibling along."""
    rule = RULES.get(code)
    if rule is None:
        kind = Kind.RESOURCE if code == "Resource" else Kind.COMPLEX
        return [Elem(name, kind, code, is_array, max_count)]
    elem = Elem(name, Kind.PRIMITIVE, code, is_array, max_count, rule=rule)
    return [elem, Elem("_" + name, Kind.PRIMITIVE_EXT, "Element", is_array, max_count, primitive=elem)]


@cache
def _constraint_bases() -> dict[str, str]:
    """Constrained data types (SimpleQuantity, MoneyQuantity) → the type whose JSON shape they share."""
    out: dict[str, str] = {}
    for entry in load("profiles-types").get("entry", ()):
        sd = entry.get("resource", {})
        if sd.get("resourceType") == "StructureDefinition" and sd.get("derivation") == "constraint":
            out[sd["id"]] = sd["type"]
    return out


_TABLES: dict[str, Table] = {}


def type_table(code: str) -> Table:
    """The table of a complex type or resource, compiled on first use. Unknown codes raise KeyError."""
    table = _TABLES.get(code)
    if table is None:
        definitions = structure_definitions()
        sd = definitions.get(code) or definitions[_constraint_bases()[code]]
        # Two threads may compile the same type at once; both results are equal, either one wins.
        table = _TABLES[code] = _Compiler(sd).compile()
    return table
