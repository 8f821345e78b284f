"""FHIRPath invariants (``constraint``) of the base R4 StructureDefinitions, run on present elements.

Every ``constraint`` of every element of every R4 resource and data type definition is collected
once (``_index``), keyed by the definition path it sits on (``Patient``, ``Patient.contact``,
``Period``, ``Age``...). ``check_invariants`` walks a resource along the compiled structure tables of
``tables``: each JSON object present in the data is checked against the invariants of its definition
path (backbone elements, resources) or of its data type (``per-1`` on every Period, ``qty-3`` on
every Quantity/Age/Duration…). Absent elements are never evaluated.

The walk is the cost on typical data, so it does per element only what can matter: what to do with
each property of a table is decided once (``_steps``); a value none of whose properties can hold a
constraint is not entered (a plain Coding); a constraint is not run on a focus that lacks every
property it depends on (``Invariant.unless``); locations are rendered only for failures (``Loc``).

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
from typing import Any, TypeAlias

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models as fhirpath_models
from fhirpathpy.parser import parse

from ketnoi.fhir.definitions import load, resource_types
from ketnoi.fhir.outcome import Issue

from .invariant_rules import PASSES_WITHOUT, PYTHON_CHECKS, Check, Fast, compile_fast, passes_with, passes_without
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
    # JSON names without any of which the invariant passes (set by _prepare): tested before the
    # check, so the commonest outcome costs no call. A set: isdisjoint then walks the smaller side.
    unless: frozenset[str] = frozenset()
    # JSON names any of which, holding a value, makes the invariant pass (set by _prepare).
    holds_with: tuple[str, ...] = ()


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
        if inv.python is not None:
            inv.unless = frozenset(PASSES_WITHOUT.get(inv.key, ()))
        elif inv.key not in UNSUPPORTED:
            try:
                tree = parse(inv.expression)  # type: ignore[no-untyped-call]
                table = _table_for(inv.path)
                inv.fast = compile_fast(tree, table)
                inv.evaluator = fhirpathpy.compile(inv.expression, fhirpath_models["r4"], _FHIRPATH_OPTIONS)
                # Only where the fast path decides first: the names then give its answer.
                if inv.fast is not None:
                    inv.unless = frozenset(passes_without(tree, table))
                    inv.holds_with = passes_with(tree, table)
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


# Where the walk is: the resource's path, or (parent, JSON name, array index or -1). Rendered to
# ``Patient.contact[0].name`` only when a constraint fails: most elements never need their path.
Loc: TypeAlias = "str | tuple[Loc, str, int]"


def _location(loc: Loc) -> str:
    parts: list[str] = []
    while type(loc) is tuple:
        loc, key, index = loc
        parts.append(f".{key}" if index < 0 else f".{key}[{index}]")
    assert isinstance(loc, str)
    return loc + "".join(reversed(parts))


# Issues on a top-level resource (dom-6 on nearly every resource without narrative), made once per
# invariant and resource type: an Issue is immutable, so one instance can be returned to every caller.
_ROOT_ISSUES: dict[tuple[Invariant, str], Issue] = {}


def _report(inv: Invariant, loc: Loc) -> Issue:
    if type(loc) is not str:
        return _issue(inv, _location(loc))
    issue = _ROOT_ISSUES.get((inv, loc))
    if issue is None:
        issue = _ROOT_ISSUES[(inv, loc)] = _issue(inv, loc)
    return issue


def _has_any(focus: dict[str, Any], names: tuple[str, ...]) -> bool:
    """Whether one of ``names`` has a value: what ``exists()`` finds on the fast path."""
    for name in names:
        value = focus.get(name)
        if value is not None and value != []:
            return True
    return False


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


@cache
def _type_invariants(code: str) -> tuple[Invariant, ...]:
    return tuple(_index().get(code, ()))


@dataclass(slots=True, eq=False)
class _Step:
    """What the walk does with one complex JSON property of a table, decided once per table.

    ``invariants`` are those of the value's type (or backbone path) plus the element's own;
    ``table`` is None for a nested resource, whose own resourceType decides; ``steps`` are the
    value's own complex properties, resolved on first use (the type graph is cyclic)."""

    invariants: tuple[Invariant, ...]
    table: Table | None
    contained: bool  # a contained resource keeps its container as %rootResource
    steps: dict[str, _Step] | None = None


_STEPS: dict[Table, dict[str, _Step]] = {}
_RESOURCE_STEPS: dict[str, dict[str, _Step]] = {}  # resourceType → _steps of its table


def _steps(table: Table) -> dict[str, _Step]:
    """JSON name → step for the properties of ``table`` the walk must enter (complex, backbone,
    resource). Primitives are left out: their constraints are not run (docs/validation.md).

    No type is pruned as a whole: every complex type can hold an Extension (``ext-1``), so what is
    skipped is decided per value, by the keys it actually has (``_Walker.members``)."""
    found = _STEPS.get(table)
    if found is None:
        found = {name: _step(table, name, elem) for name, elem in table.elements.items() if _entered(elem)}
        _STEPS[table] = found
    return found


def _entered(elem: Elem) -> bool:
    return elem.kind is Kind.COMPLEX or elem.kind is Kind.BACKBONE or elem.kind is Kind.RESOURCE


def _step(table: Table, name: str, elem: Elem) -> _Step:
    if elem.kind is Kind.RESOURCE:
        return _Step((), None, name == "contained")
    if elem.kind is Kind.BACKBONE:
        assert elem.table is not None
        # A backbone's constraints sit on its own path (that of the table it shares, for a
        # contentReference such as Questionnaire.item.item).
        return _Step(_type_invariants(elem.table.path), elem.table, False)
    invariants = _type_invariants(elem.type_code)
    base = name[: len(name) - len(elem.type_code)] + "[x]" if elem.choice else name
    own = _index().get(f"{table.path}.{base}", ())
    # The element's own constraints come after its type's, without repeating a key.
    invariants += tuple(i for i in own if all(i.key != j.key for j in invariants))
    return _Step(invariants, elem.table if elem.table is not None else type_table(elem.type_code), False)


class _Walker:
    __slots__ = ("issues",)

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues

    def resource(self, value: dict[str, Any], loc: Loc, root: dict[str, Any]) -> None:
        rtype = value.get("resourceType")
        if type(rtype) is not str or rtype not in resource_types():
            return
        steps = _RESOURCE_STEPS.get(rtype)
        if steps is None:
            steps = _RESOURCE_STEPS[rtype] = _steps(type_table(rtype))
        # The resource's own constraints are looked up on each visit (a cached call), not kept in
        # a step: tests swap them through _index() and _type_invariants.cache_clear().
        self.members(value, steps, _type_invariants(rtype), loc, value, root)

    def run(
        self, invariants: tuple[Invariant, ...], focus: Any, loc: Loc, res: dict[str, Any], root: dict[str, Any]
    ) -> None:
        for inv in invariants:
            if not inv.compiled:
                _prepare(inv)
            if inv.unless and focus.keys().isdisjoint(inv.unless):
                continue
            if inv.holds_with and _has_any(focus, inv.holds_with):
                continue
            check = inv.python
            # Hand-written checks are the common case: called here, without _passes' other branches.
            if not (check(focus, res, root) if check is not None else _passes(inv, focus, res, root)):
                self.issues.append(_report(inv, loc))

    def members(
        self,
        obj: dict[str, Any],
        steps: dict[str, _Step],
        invariants: tuple[Invariant, ...],
        loc: Loc,
        res: dict[str, Any],
        root: dict[str, Any],
    ) -> None:
        if invariants:
            self.run(invariants, obj, loc, res, root)
        for key, value in obj.items():
            step = steps.get(key)
            if step is None:
                continue
            table = step.table
            below = step.steps
            if below is None and table is not None:
                below = step.steps = _steps(table)
            # One loop for arrays and single values (index -1); inlined, as most complex values
            # end here without a call of their own.
            for index, item in enumerate(value) if type(value) is list else ((-1, value),):
                if type(item) is not dict:
                    continue
                if below is None:
                    # A contained resource keeps its container as %rootResource; any other nested
                    # resource (Bundle entry, Parameters) is its own root.
                    self.resource(item, (loc, key, index), root if step.contained else item)
                elif not below.keys().isdisjoint(item):
                    self.members(item, below, step.invariants, (loc, key, index), res, root)
                # No property that could hold a constraint: only the value's own are run (a
                # Reference, a Quantity), or none at all (a plain Coding).
                elif step.invariants:
                    self.run(step.invariants, item, (loc, key, index), res, root)
