"""Slicing: which slice each value of a sliced element belongs to.

http://hl7.org/fhir/R4/profiling.html#slicing. Each value is given to the first slice all of whose
discriminators it matches:

- ``value`` / ``pattern``: the element at the discriminator path holds the slice's fixed or pattern
  value there (or, lacking one, a code of the slice's required binding there). An extension slice
  whose ``url`` is not fixed is told by its type profile's URL, as the specification says.
- ``type``: the value (or the element at the path) is of one of the slice's types.
- ``profile``: it conforms to the slice's type profile there.
- ``exists``: the element is present when the slice requires it (min ≥ 1), absent when it forbids it.

A discriminator the slice says nothing about does not tell slices apart and is ignored for that
slice. Paths are the simple FHIRPath the specification allows here: element names, ``$this``,
``extension('url')``, ``ofType(T)`` and ``resolve()`` (a contained resource or a Bundle entry).
A value that fits no slice is an error under ``closed`` slicing. ``ordered`` is not checked.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from ketnoi.fhir.outcome import Issue

from .nodes import Node, children, codes_of, matches, resource_node, url_of
from .profiles import Discriminator, Rule, Slicing

if TYPE_CHECKING:
    from .conformance import Checker

_SEGMENT = re.compile(r"extension\('([^']*)'\)|ofType\(([A-Za-z]+)\)|resolve\(\)|\$this|[A-Za-z][A-Za-z0-9]*(?:\[x\])?")
_EXTENSION_STEP = re.compile(r"extension\('([^']*)'\)")
_FUNCTION_STEP = re.compile(r"extension\('([^']*)'\)|ofType\(([A-Za-z]+)\)")
_NAME_STEP = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_NOT_SAID = object()  # the slice says nothing at this path


def _default(rule: Rule) -> Slicing:
    """Slices without slicing details: extensions by url, choices by type (the usual defaults)."""
    last = rule.id.rpartition(".")[2].partition(":")[0]
    if last in ("extension", "modifierExtension"):
        return Slicing((Discriminator("value", "url"),), "open", False)
    return Slicing((Discriminator("type", "$this"),), "open", False)


@cache
def _steps(path: str) -> list[str] | None:
    """The segments of a discriminator path, or None when it is not the simple form (parsed once)."""
    steps: list[str] = []
    for part in _split(path):
        if not _SEGMENT.fullmatch(part):
            return None
        steps.append(part)
    return steps


def _split(path: str) -> list[str]:
    """Split on the dots outside parentheses and quotes."""
    out, depth, start, quoted = [], 0, 0, False
    for index, char in enumerate(path):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and char == ".":
            out.append(path[start:index])
            start = index + 1
    out.append(path[start:])
    return out


def assign_slices(checker: Checker, rule: Rule, nodes: list[Node], at: str) -> list[tuple[Rule, list[Node], str]]:
    """(slice rule, its values, location) for each slice of ``rule``; reports closed-slicing breaches."""
    slicing = rule.slicing or _default(rule)
    buckets: dict[str, list[Node]] = {name: [] for name in rule.slices}
    for node in nodes:
        name = _slice_of(checker, rule, slicing, node)
        if name is not None:
            buckets[name].append(node)
        elif slicing.rules == "closed" and rule.slices:
            checker.issues.append(_unmatched(checker, rule, node))
    return [(rule.slices[name], matched, at) for name, matched in buckets.items()]


def _unmatched(checker: Checker, rule: Rule, node: Node) -> Issue:
    names = ", ".join(rule.slices)
    return Issue(
        "error",
        "structure",
        f"{node.loc} matches none of the slices of {rule.id} ({names}) and profile "
        f"{checker.profile_name} allows no others (closed slicing)",
        f"{node.loc} không khớp lát cắt nào của {rule.id} ({names}) và hồ sơ {checker.profile_name} "
        "không cho phép phần tử khác (slicing đóng)",
        (node.loc,),
    )


def _slice_of(checker: Checker, rule: Rule, slicing: Slicing, node: Node) -> str | None:
    for name, slice_rule in rule.slices.items():
        if all(_discriminates(checker, d, slice_rule, node) for d in slicing.discriminators):
            return name
    return None


def _discriminates(checker: Checker, d: Discriminator, slice_rule: Rule, node: Node) -> bool:
    steps = _steps(d.path)
    if steps is None:
        return True  # not the simple form: it cannot tell this slice apart
    expected = _rule_at(slice_rule, steps)
    found = _nodes_at(checker, node, steps)
    if d.kind in ("value", "pattern"):
        return _by_value(checker, expected, steps, slice_rule, found)
    if d.kind == "exists":
        if expected is not None and (expected.min or 0) >= 1:
            return bool(found)  # the slice requires the element
        if expected is not None and expected.max == 0:
            return not found  # the slice forbids it
        return True
    if d.kind == "type":
        types = expected.types if expected is not None else ()
        return not types or any(n.type in types for n in found)
    if d.kind == "profile":
        urls = expected.profiles_for() if expected is not None else ()
        return not urls or any(checker.conforms(n, url) for n in found for url in urls)
    return True


def _by_value(checker: Checker, expected: Rule | None, steps: list[str], slice_rule: Rule, found: list[Node]) -> bool:
    wanted: Any = _NOT_SAID
    if expected is not None and expected.has_fixed:
        wanted = expected.fixed
    elif expected is not None and expected.has_pattern:
        return any(matches(n.value, expected.pattern) for n in found)
    elif steps == ["url"] and slice_rule.profiles_for():
        wanted = slice_rule.profiles_for()[0].partition("|")[0]  # an extension slice: its definition's URL
    elif expected is not None and expected.binding is not None and expected.binding[0] == "required":
        return _by_binding(checker, expected.binding[1], found)
    if wanted is _NOT_SAID:
        inside = _inside_ancestor(slice_rule, steps)
        if inside is None:
            return True
        return any(n.value in inside for n in found)
    return any(n.value == wanted for n in found)


def _inside_ancestor(rule: Rule, steps: list[str]) -> list[Any] | None:
    """The values at the rest of the path inside the fixed or pattern value of the deepest element
    on the path that has one (``use.coding.code`` read from a pattern on ``use``), or None."""
    node: Rule | None = rule
    found: tuple[Any, list[str]] | None = None
    for index, step in enumerate(steps):
        if node is None or not _NAME_STEP.fullmatch(step):
            break
        node = node.children.get(step)
        if node is not None and (node.has_fixed or node.has_pattern):
            found = (node.fixed if node.has_fixed else node.pattern, steps[index + 1 :])
    if found is None:
        return None
    values: list[Any] = [found[0]]
    for step in found[1]:
        values = [item for v in values if isinstance(v, dict) for item in _as_list(v.get(step))]
    return values


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _by_binding(checker: Checker, value_set: str, found: list[Node]) -> bool:
    for node in found:
        for system, code in codes_of(node) or ():
            if checker.codes(value_set, system, code):
                return True
    return False


def _rule_at(rule: Rule, steps: list[str]) -> Rule | None:
    """The slice's rule at the discriminator path, or None when the slice says nothing there."""
    node: Rule | None = rule
    for step in steps:
        if node is None:
            return None
        if step == "$this" or step.startswith("ofType("):
            continue
        if step == "resolve()":
            return None
        match = _EXTENSION_STEP.fullmatch(step)
        if match is not None:
            node = _extension_slice(node, match.group(1))
            continue
        node = node.children.get(step) or node.children.get(step + "[x]")
    return node


def _extension_slice(rule: Rule, url: str) -> Rule | None:
    holder = rule.children.get("extension")
    if holder is None:
        return None
    for candidate in holder.slices.values():
        url_rule = candidate.children.get("url")
        if (url_rule is not None and url_rule.fixed == url) or url in (
            p.partition("|")[0] for p in candidate.profiles_for()
        ):
            return candidate
    return None


def _nodes_at(checker: Checker, node: Node, steps: list[str]) -> list[Node]:
    current = [node]
    for step in steps:
        if step == "$this":
            continue
        if step == "resolve()":
            current = [r for n in current if (r := _resolve(checker, n)) is not None]
            continue
        match = _FUNCTION_STEP.fullmatch(step)
        if match is not None and match.group(1) is not None:
            url = match.group(1)
            current = [c for n in current for c in children(n, "extension") if url_of(c) == url]
        elif match is not None:
            current = [n for n in current if n.type == match.group(2)]
        else:
            current = [c for n in current for c in (children(n, step) or children(n, step + "[x]"))]
    return current


def _resolve(checker: Checker, node: Node) -> Node | None:
    """The resource a Reference points to inside the validated resource (contained, Bundle entry)."""
    ref = node.value.get("reference") if isinstance(node.value, dict) else None
    root = checker.root
    if not isinstance(ref, str) or root is None:
        return None
    if ref.startswith("#"):
        for contained in root.get("contained") or ():
            if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                return resource_node(contained, f"{root.get('resourceType')}.contained")
        return None
    for entry in root.get("entry") or () if root.get("resourceType") == "Bundle" else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        resource = entry["resource"]
        full = entry.get("fullUrl")
        if (
            full == ref
            or (isinstance(full, str) and full.endswith("/" + ref))
            or (f"{resource.get('resourceType')}/{resource.get('id')}" == ref)
        ):
            return resource_node(resource, "Bundle.entry.resource")
    return None
