"""FHIRPath invariants (``constraint``) of the base R4 StructureDefinitions, run on present elements.

Every ``constraint`` of every element of every R4 resource and data type definition is collected
once (``_index``), keyed by the definition path it sits on (``Patient``, ``Patient.contact``,
``Period``, ``Age``...). ``check_invariants`` walks a resource along the compiled structure tables of
``tables``: each JSON object present in the data is checked against the invariants of its definition
path (backbone elements, resources) or of its data type (``per-1`` on every Period, ``qty-3`` on
every Quantity/Age/Duration…). Absent elements are never evaluated.

Each invariant is decided by the cheapest means available, in order:

1. a hand-written Python check with the same key (``invariant_rules.PYTHON_CHECKS``);
2. the three-valued fast path (``invariant_rules.compile_fast``), which decides most base
   invariants from ``exists()``/``empty()``/``hasValue()`` alone;
3. fhirpathpy, compiled once per invariant, with the element as focus (typed by its definition
   path), ``%resource`` and ``%rootResource``.

``ele-1`` is enforced by the structural walk (no empty objects, nulls or empty strings) and not run
here. Expressions fhirpathpy cannot evaluate are listed in ``UNSUPPORTED`` (at import for known
functions, at run time for evaluation errors: the key is then disabled and logged once). An invariant
never raises out of ``check_invariants``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models as fhirpath_models
from fhirpathpy.parser import parse

from ketnoi.fhir.definitions import load, resource_types
from ketnoi.fhir.outcome import Issue

from .invariant_rules import PYTHON_CHECKS, Check, Fast, compile_fast
from .tables import Elem, Kind, Table, type_table

log = logging.getLogger(__name__)

# Keys not run, with why. Filled at first use for known functions, and at run time for errors.
UNSUPPORTED: dict[str, str] = {}
# Keys enforced elsewhere, never evaluated here.
COVERED_BY_STRUCTURE = {"ele-1": "empty objects, nulls and empty strings are structural errors"}

_UNSUPPORTED_FUNCTIONS = re.compile(r"\b(htmlChecks|conformsTo|memberOf|resolve|checkModifiers)\s*\(")


def _has_value(inputs: list[Any]) -> list[bool]:
    """FHIRPath ``hasValue()``, missing from fhirpathpy: a single primitive that has a value."""
    if len(inputs) != 1:
        return [False]
    data = inputs[0].data if isinstance(inputs[0], ResourceNode) else inputs[0]
    return [data is not None and not isinstance(data, (dict, list))]


def _no_trace(label: str, value: Any) -> None:
    """``trace()`` must not print on a server."""


_FHIRPATH_OPTIONS: dict[str, Any] = {
    "returnRawData": True,
    "traceFn": _no_trace,
    "userInvocationTable": {"hasValue": {"fn": _has_value, "arity": {0: []}}},
}
_lock = threading.Lock()
# R4 expressions known to be wrong, replaced by their technical correction (as the reference
# validator does): que-12 says "more than one enableWhen" but tests count() > 2.
CORRECTED = {"que-12": "enableWhen.count() > 1 implies enableBehavior.exists()"}


@dataclass(slots=True, eq=False)
class Invariant:
    key: str
    severity: str  # error | warning
    human: str
    expression: str
    path: str  # definition path the constraint sits on, the FHIRPath type of the focus
    python: Check | None = None
    fast: Fast | None = None
    evaluator: Callable[..., list[Any]] | None = None
    compiled: bool = False


def _collect() -> dict[str, list[Invariant]]:
    by_path: dict[str, list[Invariant]] = {}
    seen: set[tuple[str, str]] = set()
    for bundle in ("profiles-types", "profiles-resources"):
        for entry in load(bundle).get("entry", ()):
            sd = entry.get("resource", {})
            if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") == "logical":
                continue
            root = sd["id"]  # constrained types (Age, SimpleQuantity…) are keyed by their own name
            for element in sd.get("snapshot", {}).get("element", ()):
                if ":" in element["id"]:
                    continue
                path = root + element["path"][len(element["path"].split(".")[0]) :]
                if path == "Narrative.div":
                    path = "Narrative"  # txt-2 runs in Python on the Narrative holding the div
                for constraint in element.get("constraint", ()):
                    key = constraint.get("key", "")
                    expression = constraint.get("expression")
                    if not expression or key in COVERED_BY_STRUCTURE or (path, key) in seen:
                        continue
                    seen.add((path, key))
                    expression = CORRECTED.get(key, expression)
                    by_path.setdefault(path, []).append(
                        Invariant(
                            key, constraint.get("severity", "error"), constraint.get("human", ""), expression, path
                        )
                    )
    return by_path


@cache
def _index() -> dict[str, list[Invariant]]:
    index = _collect()
    for invariants in index.values():
        for inv in invariants:
            if inv.key not in PYTHON_CHECKS and (m := _UNSUPPORTED_FUNCTIONS.search(inv.expression)):
                UNSUPPORTED.setdefault(inv.key, f"uses {m.group(1)}(), which fhirpathpy cannot evaluate")
    return index


def all_invariants() -> list[Invariant]:
    """Every collected invariant (one per definition path and key)."""
    return [inv for invariants in _index().values() for inv in invariants]


def _table_for(path: str) -> Table | None:
    """The structure table of the focus of an invariant at ``path``, for the fast path."""
    head, _, rest = path.partition(".")
    try:
        table = type_table(head)
    except KeyError:
        return None
    for name in rest.split(".") if rest else ():
        elem = table.elements.get(name)
        if elem is None or elem.kind is not Kind.BACKBONE or elem.table is None:
            return None
        table = elem.table
    return table


def _prepare(inv: Invariant) -> None:
    with _lock:
        if inv.compiled:
            return
        inv.python = PYTHON_CHECKS.get(inv.key)
        if inv.python is None and inv.key not in UNSUPPORTED:
            try:
                inv.fast = compile_fast(parse(inv.expression), _table_for(inv.path))  # type: ignore[no-untyped-call]
                inv.evaluator = fhirpathpy.compile(inv.expression, fhirpath_models["r4"], _FHIRPATH_OPTIONS)
            except Exception as error:
                _disable(inv, f"does not compile: {error}")
        inv.compiled = True


def _disable(inv: Invariant, reason: str) -> None:
    if inv.key not in UNSUPPORTED:
        UNSUPPORTED[inv.key] = reason
        log.warning("invariant %s disabled: %s", inv.key, reason)


def _passes(inv: Invariant, focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """Whether the invariant holds on ``focus``; True when it cannot be evaluated."""
    if not inv.compiled:
        _prepare(inv)
    if inv.python is not None:
        return inv.python(focus, resource, root)
    if inv.key in UNSUPPORTED or inv.evaluator is None:
        return True
    if inv.fast is not None:
        decided = inv.fast(focus)
        if decided is not None:
            return decided
    try:
        env = {
            "resource": ResourceNode.create_node(resource, resource.get("resourceType")),  # type: ignore[no-untyped-call]
            "rootResource": ResourceNode.create_node(root, root.get("resourceType")),  # type: ignore[no-untyped-call]
        }
        result = inv.evaluator(ResourceNode.create_node(focus, inv.path), env)  # type: ignore[no-untyped-call]
    except Exception as error:
        _disable(inv, f"evaluation error: {type(error).__name__}: {error}")
        return True
    # An empty result does not fail the constraint (``probability is decimal implies …`` with no
    # probability); only an explicit false does.
    return result != [False]


def _issue(inv: Invariant, path: str) -> Issue:
    return Issue(
        "error" if inv.severity == "error" else "warning",
        "invariant",
        f"Constraint failed: {inv.key}: {inv.human}",
        f"Ràng buộc {inv.key} không thỏa: {inv.human}",
        (path,),
    )


def check_invariants(resource: object) -> list[Issue]:
    """Invariant issues of a structurally valid R4 JSON resource (errors and warnings)."""
    issues: list[Issue] = []
    if type(resource) is not dict:
        return issues
    try:
        _Walker(issues).resource(resource, resource.get("resourceType", ""), resource)
    except RecursionError:
        pass  # structure.validate reports excessive depth
    except Exception:
        log.exception("invariant walk failed")
    return issues


_NO_INVARIANTS: tuple[Invariant, ...] = ()


@cache
def _type_invariants(code: str) -> tuple[Invariant, ...]:
    return tuple(_index().get(code, ()))


_CHILD_INVARIANTS: dict[int, dict[str, tuple[Invariant, ...]]] = {}


def _child_invariants(table: Table) -> dict[str, tuple[Invariant, ...]]:
    """JSON name → invariants of the element itself (not of its type) for non-backbone children."""
    found = _CHILD_INVARIANTS.get(id(table))
    if found is None:
        index = _index()
        found = {}
        for name, elem in table.elements.items():
            if elem.kind in (Kind.BACKBONE, Kind.PRIMITIVE_EXT, Kind.RESOURCE_TYPE):
                continue
            base = name[: len(name) - len(elem.type_code)] + "[x]" if elem.choice else name
            invariants = index.get(f"{table.path}.{base}")
            if invariants:
                found[name] = tuple(invariants)
        _CHILD_INVARIANTS[id(table)] = found
    return found


class _Walker:
    __slots__ = ("issues",)

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues

    def resource(self, value: dict[str, Any], path: str, root: dict[str, Any]) -> None:
        rtype = value.get("resourceType")
        if type(rtype) is not str or rtype not in resource_types():
            return
        self.members(value, type_table(rtype), _type_invariants(rtype), path, value, root)

    def run(
        self, invariants: tuple[Invariant, ...], focus: Any, path: str, res: dict[str, Any], root: dict[str, Any]
    ) -> None:
        for inv in invariants:
            if not _passes(inv, focus, res, root):
                self.issues.append(_issue(inv, path))

    def members(
        self,
        obj: dict[str, Any],
        table: Table,
        invariants: tuple[Invariant, ...],
        path: str,
        res: dict[str, Any],
        root: dict[str, Any],
    ) -> None:
        if invariants:
            self.run(invariants, obj, path, res, root)
        elements = table.elements
        own = _child_invariants(table)
        for key, value in obj.items():
            elem = elements.get(key)
            if elem is None or elem.kind is Kind.PRIMITIVE or elem.kind is Kind.PRIMITIVE_EXT:
                continue
            if elem.kind is Kind.RESOURCE_TYPE:
                continue
            extra = own.get(key, _NO_INVARIANTS)
            if type(value) is list:
                for index, item in enumerate(value):
                    self.element(item, elem, extra, f"{path}.{key}[{index}]", res, root, key)
            else:
                self.element(value, elem, extra, f"{path}.{key}", res, root, key)

    def element(
        self,
        value: Any,
        elem: Elem,
        extra: tuple[Invariant, ...],
        path: str,
        res: dict[str, Any],
        root: dict[str, Any],
        key: str,
    ) -> None:
        if type(value) is not dict:
            return
        kind = elem.kind
        if kind is Kind.RESOURCE:
            # A contained resource keeps its container as %rootResource; any other nested resource
            # (Bundle entry, Parameters) is its own root.
            self.resource(value, path, root if key == "contained" else value)
            return
        if kind is Kind.BACKBONE:
            table = elem.table
            assert table is not None
            invariants = _type_invariants(table.path)
        else:
            table = elem.table if elem.table is not None else type_table(elem.type_code)
            invariants = _type_invariants(elem.type_code)
        if extra:
            invariants = invariants + tuple(i for i in extra if all(i.key != j.key for j in invariants))
        self.members(value, table, invariants, path, res, root)
