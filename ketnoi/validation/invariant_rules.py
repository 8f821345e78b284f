"""Python fast paths for FHIRPath invariants: hand-written checks and a small boolean compiler.

Two ways to avoid fhirpathpy (tens of µs per call) on every write:

- ``PYTHON_CHECKS``: hand-written checks with the same key for the commonest or costliest base
  invariants (``ext-1``, ``dom-2`` … ``dom-6``, ``ref-1``, ``per-1``). ``ele-1`` ("an element has a
  value or children") is not run: the structural walk already rejects empty objects, nulls and empty
  strings.
- ``compile_fast``: a three-valued compiler for the boolean skeleton of an expression (``or``,
  ``and``, ``implies``, ``xor``, parentheses, ``not()``) over member paths ending in ``exists()``,
  ``empty()`` or ``hasValue()``. It answers True/False when it can decide from those parts alone
  and ``None`` otherwise; the caller then runs the full expression with fhirpathpy. Most base
  invariants are decided here without fhirpathpy (``obs-6``, ``qty-3``, ``pat-1`` …).

Both also say which JSON names an invariant depends on (``PASSES_WITHOUT``, ``passes_without``): a
focus with none of them passes, and the walk skips the call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .tables import Kind, Table, type_table

# (focus value, definition table of the focus, the resource, the root resource) -> passes?
Check = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], bool]
# focus value -> True / False / None (undecided)
Fast = Callable[[dict[str, Any]], "bool | None"]
Node = dict[str, Any]
# A navigation result: the JSON value and, for complex values, its table.
Item = tuple[Any, "Table | None"]


# --- hand-written checks -------------------------------------------------------------------------


def _ext_1(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """Extension: either nested extensions or a value[x], not both."""
    has_value = any(key.startswith("value") for key in focus)
    return ("extension" in focus) != has_value


def _dom_2(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    return not any(type(c) is dict and "contained" in c for c in focus.get("contained", ()))


def _contained_meta(focus: dict[str, Any]) -> list[dict[str, Any]]:
    return [c["meta"] for c in focus.get("contained", ()) if type(c) is dict and type(c.get("meta")) is dict]


def _dom_4(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    return not any("versionId" in m or "lastUpdated" in m for m in _contained_meta(focus))


def _dom_5(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    return not any("security" in m for m in _contained_meta(focus))


def _dom_6(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    if focus is not root:
        return True  # contained resources carry no narrative of their own
    text = focus.get("text")
    return type(text) is dict and "div" in text


_NARRATIVE_LINK = re.compile(r"""(?:href|src)\s*=\s*["'](#[^"']*)["']""")
_MARKUP = re.compile(r"<[^>]*>")


def _txt_2(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """Narrative: the div has some non-whitespace content (text, or an image)."""
    div = focus.get("div")
    if type(div) is not str:
        return True
    return "<img" in div or bool(_MARKUP.sub("", div).replace("&nbsp;", "").strip())


def _local_refs(value: Any, out: set[str]) -> None:
    """Every string starting with '#' (references, canonicals, uris) anywhere under ``value``."""
    if type(value) is dict:
        for item in value.values():
            _local_refs(item, out)
    elif type(value) is list:
        for item in value:
            _local_refs(item, out)
    elif type(value) is str:
        if value.startswith("#"):
            out.add(value)
        elif value.startswith("<div"):
            # Like the reference validator, a narrative link (href/src="#id") counts as a reference.
            out.update(_NARRATIVE_LINK.findall(value))


def _dom_3(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """Each contained resource is referenced from the resource ('#id'), or refers to it ('#')."""
    contained = focus.get("contained")
    if not contained:
        return True
    inner = [set[str]() for _ in contained]
    for index, item in enumerate(contained):
        _local_refs(item, inner[index])
    wanted = {
        f"#{item.get('id')}" for index, item in enumerate(contained) if type(item) is dict and "#" not in inner[index]
    }
    wanted.difference_update(*inner)
    # The rest is searched key by key, no further than the last target: an ExplanationOfBenefit
    # refers to its contained resources before its long list of items.
    for key, value in focus.items():
        if not wanted:
            return True
        if key != "contained":
            found: set[str] = set()
            _local_refs(value, found)
            wanted -= found
    return not wanted


def _ref_1(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """A local reference '#x' points at a contained resource of the root resource."""
    reference = focus.get("reference")
    if type(reference) is not str or not reference.startswith("#") or reference == "#":
        return True
    ids = {c.get("id") for c in root.get("contained", ()) if type(c) is dict}
    return reference[1:] in ids


def _instant(text: str) -> tuple[datetime, bool] | None:
    """A full dateTime (to the second) → (value, has timezone); None for partial precision."""
    if len(text) < 19:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value, value.tzinfo is not None


def _per_1(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """Period: start <= end when both have a value (partial dates compared at their common precision)."""
    start, end = focus.get("start"), focus.get("end")
    if type(start) is not str or type(end) is not str:
        return True
    a, b = _instant(start), _instant(end)
    if a is not None and b is not None and a[1] == b[1]:
        return a[0] <= b[0]
    # Different precisions: compare the date/time prefix both have. Equal prefixes are undecided in
    # FHIRPath (an empty result), which the reference validator reports as a failure: so do we.
    size = min(len(start), len(end), 19)
    if len(start) != len(end) and start[:size] == end[:size]:
        return False
    return start[:size] <= end[:size]


def _que_7(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """enableWhen with operator 'exists' answers with a boolean (fhirpathpy misreads ``is Boolean``)."""
    return focus.get("operator") != "exists" or "answerBoolean" in focus


def _rng_2(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """Range: low <= high when both are comparable (same unit); fhirpathpy cannot compare Quantities."""
    low, high = focus.get("low"), focus.get("high")
    if type(low) is not dict or type(high) is not dict:
        return True
    a, b = low.get("value"), high.get("value")
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return True
    same_unit = (low.get("system"), low.get("code"), low.get("unit")) == (
        high.get("system"),
        high.get("code"),
        high.get("unit"),
    )
    return not same_unit or a <= b


# --- the commonest fhirpathpy costs on clinical data (bench/validate.py): obs-7, con-*, drt-1, tim-*
_VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_UCUM = "http://unitsofmeasure.org"
_ABATED = frozenset({"resolved", "remission", "inactive"})
_IN_ERROR = frozenset({"entered-in-error"})
_NO_OFFSET_WHEN = frozenset({"C", "CM", "CD", "CV"})


def _codings(concept: Any) -> list[Any]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return codings if isinstance(codings, list) else []


def _has_code(concept: Any, system: str, codes: frozenset[str]) -> bool:
    return any(isinstance(c, dict) and c.get("system") == system and c.get("code") in codes for c in _codings(concept))


def _has_choice(focus: dict[str, Any], base: str) -> bool:
    return any(key.startswith(base) and not key.startswith("_") for key in focus)


def _obs_7(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """No value when a component has the Observation's own code (codings compared whole, as ``intersect``)."""
    if not _has_choice(focus, "value"):
        return True
    own = _codings(resource.get("code"))
    found = focus.get("component")
    components: list[Any] = found if isinstance(found, list) else []
    return not any(c in own for comp in components if isinstance(comp, dict) for c in _codings(comp.get("code")))


def _con_3(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """A clinicalStatus unless entered in error; ``category.select($this='problem-list-item')``
    compares a CodeableConcept with a string, which is false, so any category counts."""
    if "clinicalStatus" in focus or _has_code(
        focus.get("verificationStatus"), _VER_STATUS, frozenset({"entered-in-error"})
    ):
        return True
    return not focus.get("category")


def _con_4(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    return not _has_choice(focus, "abatement") or _has_code(focus.get("clinicalStatus"), _CLINICAL, _ABATED)


def _con_5(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    entered_in_error = _has_code(focus.get("verificationStatus"), _VER_STATUS, _IN_ERROR)
    return not entered_in_error or "clinicalStatus" not in focus


def _drt_1(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """``code.exists() implies ((system = %ucum) and value.exists())``, three-valued: an absent
    system makes ``=`` empty, and an empty result passes."""
    if "code" not in focus:
        return True
    if "value" not in focus:
        return False
    return "system" not in focus or focus["system"] == _UCUM


def _non_negative(name: str) -> Check:
    def check(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
        value = focus.get(name)
        return not isinstance(value, int | float) or isinstance(value, bool) or value >= 0

    return check


def _tim_9(focus: dict[str, Any], resource: dict[str, Any], root: dict[str, Any]) -> bool:
    """An offset needs one ``when`` that is no meal (C, CM, CD, CV); several ``when`` make ``in``
    ill-defined, which is not held against the data."""
    if "offset" not in focus:
        return True
    found = focus.get("when")
    when: list[Any] = found if isinstance(found, list) else []
    if len(when) != 1:
        return len(when) > 1
    return when[0] not in _NO_OFFSET_WHEN


PYTHON_CHECKS: dict[str, Check] = {
    "que-7": _que_7,
    "txt-2": _txt_2,
    "rng-2": _rng_2,
    "ext-1": _ext_1,
    "dom-2": _dom_2,
    "dom-3": _dom_3,
    "dom-4": _dom_4,
    "dom-5": _dom_5,
    "dom-6": _dom_6,
    "ref-1": _ref_1,
    "per-1": _per_1,
    "obs-7": _obs_7,
    "con-3": _con_3,
    "con-4": _con_4,
    "con-5": _con_5,
    "drt-1": _drt_1,
    "tim-4": _non_negative("duration"),
    "tim-5": _non_negative("period"),
    "tim-9": _tim_9,
}

# Checks that pass whenever the focus has none of these JSON names (read from the checks above):
# the walk tests the names instead of calling the check. Listed only where the names are usually
# absent; a Reference without ``reference`` or a Period without ``end`` is too rare to be worth it.
PASSES_WITHOUT: dict[str, tuple[str, ...]] = {
    "dom-2": ("contained",),
    "dom-3": ("contained",),
    "dom-4": ("contained",),
    "dom-5": ("contained",),
    "con-5": ("verificationStatus",),
    "que-7": ("operator",),
    "tim-4": ("duration",),
    "tim-5": ("period",),
    "tim-9": ("offset",),
}


# --- the three-valued compiler -------------------------------------------------------------------


def _navigate(items: list[Item], name: str) -> list[Item]:
    out: list[Item] = []
    for value, table in items:
        if table is None or type(value) is not dict:
            return _UNKNOWN  # a primitive has no children we model; a resource without its table
        keys = table.choices.get(name)
        if keys is None:
            if name not in table.elements:
                return _UNKNOWN  # a type name or something we do not model: let fhirpathpy decide
            keys = (name,)
        for key in keys:
            elem = table.elements.get(key)
            if elem is None:
                continue
            child = value.get(key)
            if child is None:
                extension = value.get("_" + key)
                if extension is not None and elem.kind is Kind.PRIMITIVE:
                    # An extension-only primitive exists but has no value.
                    out.extend((None, None) for _ in (extension if type(extension) is list else [extension]))
                continue
            for one in child if type(child) is list else (child,):
                if elem.kind is Kind.PRIMITIVE:
                    out.append((one, None))
                elif elem.kind is Kind.RESOURCE:
                    rtype = one.get("resourceType") if type(one) is dict else None
                    out.append((one, type_table(rtype) if type(rtype) is str else None))
                else:
                    table_of = elem.table if elem.table is not None else type_table(elem.type_code)
                    out.append((one, table_of))
    return out


_UNKNOWN: list[Item] = []


def _path_of(node: Node) -> list[str] | None:
    """Member names of a plain path ``a.b.c`` (no functions, no variables), else None."""
    kind = node["type"]
    if kind == "TermExpression":
        inner = node["children"][0]
        if inner["type"] == "InvocationTerm":
            member = inner["children"][0]
            if member["type"] == "MemberInvocation":
                return [member["children"][0]["text"]]
        return None
    if kind == "InvocationExpression":
        left, right = node["children"]
        head = _path_of(left)
        if head is not None and right["type"] == "MemberInvocation":
            return [*head, right["children"][0]["text"]]
    return None


def _function(node: Node) -> tuple[Node, str] | None:
    """``<left>.<fn>()`` with no arguments → (left, fn)."""
    if node["type"] != "InvocationExpression":
        return None
    left, right = node["children"]
    if right["type"] != "FunctionInvocation":
        return None
    functn = right["children"][0]
    if len(functn["children"]) != 1:
        return None  # has arguments
    return left, functn["children"][0]["text"]


Tri = Callable[[list[Item]], "bool | None"]


def _compile(node: Node) -> Tri | None:
    """A three-valued predicate over the focus (as a one-item list), or None when not compilable."""
    kind = node["type"]
    if kind == "TermExpression" and node["children"][0]["type"] == "ParenthesizedTerm":
        return _compile(node["children"][0]["children"][0])
    if kind in ("OrExpression", "AndExpression", "ImpliesExpression"):
        if node["terminalNodeText"] not in (["or"], ["and"], ["implies"], ["xor"]):
            return None
        left, right = (_compile(child) for child in node["children"])
        if left is None and right is None:
            return None
        # One side we cannot decide still lets the other short-circuit (``a.empty() or <complex>``).
        return _logic(node["terminalNodeText"][0], left or _undecided, right or _undecided)
    call = _function(node)
    if call is None:
        return None
    inner, fn = call
    if fn == "not":
        operand = _compile(inner)
        if operand is None:
            return None

        def negate(focus: list[Item]) -> bool | None:
            result = operand(focus)
            return None if result is None else not result

        return negate
    path = _path_of(inner)
    if path is None or fn not in ("exists", "empty", "hasValue"):
        return None

    def select(focus: list[Item]) -> list[Item] | None:
        items = focus
        for name in path:
            items = _navigate(items, name)
            if items is _UNKNOWN:
                return None
        return items

    if fn == "hasValue":

        def has_value(focus: list[Item]) -> bool | None:
            items = select(focus)
            return None if items is None else len(items) == 1 and items[0][0] is not None and items[0][1] is None

        return has_value
    want = fn == "exists"

    def exists(focus: list[Item]) -> bool | None:
        items = select(focus)
        return None if items is None else bool(items) == want

    return exists


def _undecided(focus: list[Item]) -> bool | None:
    return None


def _logic(op: str, left: Tri, right: Tri) -> Tri:
    def combine(focus: list[Item]) -> bool | None:
        a = left(focus)
        if op == "or":
            if a is True:
                return True
            b = right(focus)
            return True if b is True else (False if a is False and b is False else None)
        if op == "and":
            if a is False:
                return False
            b = right(focus)
            return False if b is False else (True if a is True and b is True else None)
        if op == "implies":
            if a is False:
                return True
            b = right(focus)
            return True if b is True else (False if a is True and b is False else None)
        b = right(focus)  # xor
        return None if a is None or b is None else a != b

    return combine


def compile_fast(tree: Node, table: Table | None) -> Fast | None:
    """The three-valued fast path of a parsed expression evaluated on values described by ``table``."""
    if table is None:
        return None
    try:
        predicate = _compile(tree["children"][0])
    except (KeyError, IndexError, ValueError):
        return None
    if predicate is None:
        return None
    compiled = predicate

    def run(focus: dict[str, Any]) -> bool | None:
        return compiled([(focus, table)])

    return run


def _unwrap(node: Node) -> Node:
    while node["type"] == "TermExpression" and node["children"][0]["type"] == "ParenthesizedTerm":
        node = node["children"][0]["children"][0]
    return node


def _json_names(table: Table, name: str) -> tuple[str, ...]:
    """Every JSON name ``_navigate`` reads for member ``name`` (``_x`` siblings included); () when
    it would not decide (a name the table does not model)."""
    keys = table.choices.get(name)
    if keys is None:
        if name not in table.elements:
            return ()
        keys = (name,)
    return tuple(k for key in keys for k in (key, "_" + key))


def _member_test(node: Node, functions: tuple[str, ...], table: Table) -> list[str] | None:
    """The member path of ``<path>.<fn>()``, fn one of ``functions``, whose first name the table
    models; else None."""
    call = _function(_unwrap(node))
    if call is None or call[1] not in functions:
        return None
    path = _path_of(call[0])
    return path if path and _json_names(table, path[0]) else None


def _plain_member(path: list[str] | None, table: Table) -> tuple[str, ...]:
    """The JSON names of a one-member path that is no nested resource (``_navigate`` looks up the
    table of a resource's own type, which raises for an unknown one); () otherwise."""
    if path is None or len(path) != 1:
        return ()
    keys = table.choices.get(path[0]) or (path[0],)
    return keys if all(table.elements[k].kind is not Kind.RESOURCE for k in keys) else ()


def _evaluated_safely(node: Node, table: Table) -> bool:
    """Whether the fast path evaluates ``node`` without raising: left undecided (not compiled), or a
    test on one member that is no nested resource. A right operand only decides after this one."""
    if _compile(node) is None:
        return True
    return bool(_plain_member(_member_test(node, ("exists", "empty", "hasValue"), table), table))


def _operands(tree: Node) -> tuple[bool, Node, Node] | None:
    """(is ``implies``, left, right) of a top-level ``or``/``implies``; None for anything else."""
    node = _unwrap(tree["children"][0])
    implies = node["type"] == "ImpliesExpression" and node["terminalNodeText"] == ["implies"]
    if not implies and (node["type"] != "OrExpression" or node["terminalNodeText"] != ["or"]):
        return None
    left, right = node["children"]
    return implies, left, right


def passes_without(tree: Node, table: Table | None) -> tuple[str, ...]:
    """JSON names such that, when the focus has none of them, ``compile_fast``'s predicate answers
    True from one operand: ``a.exists() implies …``, ``a.hasValue() implies …``, ``a.empty() or
    …`` (qty-3, obs-6, tim-*, cpt-2), or ``… implies a.empty()``, ``… or a.empty()`` after a left
    operand that cannot raise. () when the expression has no such operand."""
    try:
        found = _operands(tree) if table is not None else None
        if found is None or table is None:
            return ()
        implies, left, right = found
        path = _member_test(left, ("exists", "hasValue") if implies else ("empty",), table)
        if path is None and _evaluated_safely(left, table):
            path = _member_test(right, ("empty",), table)
        return _json_names(table, path[0]) if path else ()
    except (KeyError, IndexError, ValueError):
        return ()


def passes_with(tree: Node, table: Table | None) -> tuple[str, ...]:
    """JSON names such that, when the focus has any of them (not null, not ``[]``), ``compile_fast``'s
    predicate answers True: ``a.exists() or …``, or ``… or a.exists()`` / ``… implies a.exists()``
    after a left operand that cannot raise (qty-3's ``code.empty() or system.exists()``), ``a`` one
    member that is no nested resource. () when the expression has no such operand."""
    try:
        found = _operands(tree) if table is not None else None
        if found is None or table is None:
            return ()
        implies, left, right = found
        names = () if implies else _plain_member(_member_test(left, ("exists",), table), table)
        if not names and _evaluated_safely(left, table):
            names = _plain_member(_member_test(right, ("exists",), table), table)
        return names
    except (KeyError, IndexError, ValueError):
        return ()
