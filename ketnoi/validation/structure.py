"""Structural validation of FHIR R4 JSON resources against the base StructureDefinitions.

``validate`` walks a resource parsed by orjson alongside the compiled tables of ``tables``: every
property must be a known element (choice suffixes, ``_x`` primitive siblings and ``resourceType``
included), arrays appear exactly where the element repeats, primitives have the right JSON kind and
lexical form, nothing is empty or null (except placeholders in primitive arrays), required elements
are present, and nested resources (contained, Bundle entries, Parameters, any Resource-typed element)
are validated against their own type. Invariants, profiles, terminology and references are not in
scope: this is the fast gate run on every write.

The walk follows the definitions, so its recursion depth is bounded by the data's nesting through
*known* elements; the contents of unknown elements are never visited. Paths are only built for
complex values and for findings, which keeps a typical resource well below 100 µs.
"""

from __future__ import annotations

from typing import Any

from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import Issue

from . import messages as msg
from .bindings import Binding
from .primitives import PrimitiveRule, Problem
from .tables import Elem, Kind, Table, type_table


def validate(resource: object, *, strict: bool = True) -> list[Issue]:
    """Structural issues of a FHIR R4 JSON resource (already parsed by orjson). Empty list = valid.

    With ``strict=False`` unknown elements are reported as warnings instead of errors; every other
    finding keeps its severity.
    """
    walker = _Walker(strict)
    try:
        walker.resource(resource, "")
    except RecursionError:
        # The HTTP layer caps JSON depth far below this; a direct caller passing absurdly deep data
        # gets a rejection rather than a crash.
        walker.issues.append(msg.too_deep())
    return walker.issues


def _primitive_problem(value: object, rule: PrimitiveRule, elem: Elem, path: str) -> Issue | None:
    """The issue of one non-null primitive JSON value, if any."""
    if type(value) not in rule.py_types:
        return msg.expected_primitive(elem.type_code, rule.kind, path, value)
    if value == "":
        return msg.empty_string(path)
    problem: Problem | None = rule.check(value)
    return None if problem is None else msg.bad_value(problem, path)


def _has_allowed_coding(value: dict[str, Any], elem: Elem, binding: Binding) -> bool:
    """A Coding in the value set, or a CodeableConcept with at least one such coding."""
    codings = value.get("coding") if elem.type_code == "CodeableConcept" else [value]
    if type(codings) is not list:
        return False
    codes = binding.codes
    return any(type(c) is dict and (c.get("system"), c.get("code")) in codes for c in codings)


class _Walker:
    """One validation run: the findings so far and the strictness for unknown elements."""

    __slots__ = ("issues", "unknown_severity")

    def __init__(self, strict: bool) -> None:
        self.issues: list[Issue] = []
        self.unknown_severity = "error" if strict else "warning"

    def resource(self, value: object, path: str) -> None:
        """A resource at ``path`` ("" for the top level, then named after its own type)."""
        if type(value) is not dict:
            self.issues.append(msg.not_a_resource(path or "(root)", value))
            return
        rtype = value.get("resourceType")
        if rtype is None:
            self.issues.append(msg.missing_resource_type(path or "(root)"))
            return
        if type(rtype) is not str or rtype not in resource_types():
            self.issues.append(msg.bad_resource_type(path or "(root)", rtype))
            return
        self.members(value, type_table(rtype), path or rtype)

    def members(self, obj: dict[str, Any], table: Table, path: str) -> None:
        """A JSON object described by ``table``: each property, then the required elements."""
        if not obj:
            self.issues.append(msg.empty_object(path))
            return
        elements = table.elements
        for key, value in obj.items():
            elem = elements.get(key)
            if elem is None:
                self.unknown(key, table, path)
            elif elem.is_array:
                self.array(obj, key, value, elem, path)
            elif type(value) is list:
                self.issues.append(msg.expected_single(key, f"{path}.{key}"))
            elif (rule := elem.rule) is not None and not elem.choice:
                # Inline fast path for the commonest property, a valid single primitive; single()
                # re-examines only the ones with something to report.
                if type(value) not in rule.py_types or value == "" or rule.check(value) is not None:
                    self.single(obj, key, value, elem, path)
            else:
                self.single(obj, key, value, elem, path)
        for name, minimum, keys in table.required:
            if not any(key in obj for key in keys):
                self.issues.append(msg.missing_required(name, minimum, path))

    def single(self, obj: dict[str, Any], key: str, value: object, elem: Elem, path: str) -> None:
        kind = elem.kind
        if elem.choice:
            self.check_choice(obj, key, elem, path)
        if kind is Kind.PRIMITIVE:
            if value is None:
                self.issues.append(msg.null_value(f"{path}.{key}"))
                return
            assert elem.rule is not None
            issue = _primitive_problem(value, elem.rule, elem, f"{path}.{key}")
            if issue is not None:
                self.issues.append(issue)
        elif kind is Kind.PRIMITIVE_EXT:
            # `_birthDate` holds the id/extensions of `birthDate`: report it at the primitive's path.
            self.element(value, elem, f"{path}.{key[1:]}")
        elif kind is not Kind.RESOURCE_TYPE:  # resourceType itself was checked by resource()
            self.element(value, elem, f"{path}.{key}")

    def array(self, obj: dict[str, Any], key: str, value: Any, elem: Elem, path: str) -> None:
        if type(value) is not list:
            self.issues.append(msg.expected_array(key, f"{path}.{key}", value))
            return
        if not value:
            self.issues.append(msg.empty_array(f"{path}.{key}"))
            return
        if elem.max is not None and len(value) > elem.max:
            self.issues.append(msg.too_many(key, f"{path}.{key}", len(value), elem.max))
        if elem.choice:
            self.check_choice(obj, key, elem, path)
        kind = elem.kind
        if kind is Kind.PRIMITIVE:
            self.primitive_array(obj, key, value, elem, path)
        elif kind is Kind.PRIMITIVE_EXT:
            self.extension_array(obj, key, value, elem, path)
        else:
            for index, item in enumerate(value):
                self.element(item, elem, f"{path}.{key}[{index}]")

    def primitive_array(self, obj: dict[str, Any], key: str, values: list[Any], elem: Elem, path: str) -> None:
        rule = elem.rule
        assert rule is not None
        py_types = rule.py_types
        check = rule.check
        for index, value in enumerate(values):
            # Fast path: the right JSON kind and a valid value need no path string at all.
            if type(value) in py_types and value != "" and check(value) is None:
                continue
            item_path = f"{path}.{key}[{index}]"
            if value is None:
                extensions = obj.get("_" + key)
                if not (type(extensions) is list and index < len(extensions) and extensions[index] is not None):
                    self.issues.append(msg.unmatched_null(key, item_path))
                continue
            issue = _primitive_problem(value, rule, elem, item_path)
            if issue is not None:
                self.issues.append(issue)

    def extension_array(self, obj: dict[str, Any], key: str, items: list[Any], elem: Elem, path: str) -> None:
        """``_given``: aligned with ``given``; entries are objects, or null where ``given`` has a value."""
        name = key[1:]
        values = obj.get(name)
        if type(values) is list and len(values) != len(items):
            self.issues.append(msg.misaligned(name, f"{path}.{name}", len(values), len(items)))
        for index, item in enumerate(items):
            item_path = f"{path}.{name}[{index}]"
            if item is None:
                # A null here needs a value in `name`; when `name` is an array, a null on both sides
                # is reported once, by primitive_array.
                if type(values) is not list:
                    self.issues.append(msg.null_value(item_path))
                continue
            self.element(item, elem, item_path)

    def element(self, value: object, elem: Elem, path: str) -> None:
        """A complex value: a data type, a backbone element, an Element (``_x``) or a nested resource."""
        if type(value) is not dict:
            issue = msg.null_value(path) if value is None else msg.expected_object(elem.type_code, path, value)
            self.issues.append(issue)
            return
        if elem.kind is Kind.RESOURCE:
            self.resource(value, path)
            return
        table = elem.table
        if table is None:
            table = elem.table = type_table(elem.type_code)
        self.members(value, table, path)
        if elem.binding is not None and not _has_allowed_coding(value, elem, elem.binding):
            self.issues.append(msg.concept_not_allowed(elem.binding, path))

    def check_choice(self, obj: dict[str, Any], key: str, elem: Elem, path: str) -> None:
        present = [name for name in elem.choice if name in obj]
        # Reported once, by the first of the group present.
        if len(present) > 1 and present[0] == key:
            base = key[: len(key) - len(elem.type_code)]
            self.issues.append(msg.several_choices(present, base, path))

    def unknown(self, key: str, table: Table, path: str) -> None:
        severity = self.unknown_severity
        elements = table.elements
        if key.startswith("_") and key[1:] in elements:
            self.issues.append(msg.extension_on_complex(severity, key, path))
            return
        if key == "resourceType":
            self.issues.append(msg.misplaced_resource_type(severity, path))
            return
        for base, allowed in table.choices.items():
            if key.startswith(base) and key[len(base) : len(base) + 1].isupper():
                self.issues.append(msg.wrong_choice(severity, key, base, allowed, path))
                return
        self.issues.append(msg.unknown_element(severity, key, path))
