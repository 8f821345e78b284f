"""Every extension checked against its definition, wherever it sits in the resource.

An extension whose ``url`` is a known StructureDefinition (R4's own 393 extensions, the shipped
packages', the installed ones') must conform to it: its value type, its fixed values, its nested
extensions (a complex extension's parts are slices of ``Extension.extension``), and its context: the
elements it may be put on (``context``: an element path or type, another extension's URL, or a
FHIRPath expression on the resource). An extension whose definition is not known is left alone, as
R4 allows: any system may define extensions, and the server cannot resolve every URL.
"""

from __future__ import annotations

from typing import Any

import orjson

from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import Issue

from .conformance import Checker, evaluate
from .nodes import Node, children, resource_node, url_of

_EXTENSION_KEYS = ("extension", "modifierExtension")


Trail = tuple[str | int, ...]


def _lists(value: Any, trail: Trail, out: list[Trail]) -> None:
    """The JSON key paths of every ``extension``/``modifierExtension`` array (nested ones too).
    A plain scan of the parsed JSON: Nodes are built only on the way to extensions worth checking."""
    if type(value) is dict:
        for key, item in value.items():
            if key in _EXTENSION_KEYS:
                out.append((*trail, key))
            if type(item) is dict or type(item) is list:
                _lists(item, (*trail, key), out)
    elif type(value) is list:
        for index, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                _lists(item, (*trail, index), out)


def check_extensions(checker: Checker, resource: dict[str, Any]) -> None:
    """Check every extension of ``resource`` whose definition is known (see the module docstring)."""
    if b'xtension"' not in orjson.dumps(resource):  # most resources (Observations) have none
        return
    found: list[Trail] = []
    _lists(resource, (), found)
    root = resource_node(resource)
    if root is None:
        return
    checker.root = checker.root or resource
    for trail in found:
        entries = _get(resource, trail)
        if not any(_definition_known(checker, e) for e in entries if isinstance(e, dict)):
            continue
        located = _descend(root, trail[:-1])
        if located is None:
            continue
        host, owner = located
        for ext in children(host, str(trail[-1])):
            _extension(checker, ext, host, owner)


def _get(value: Any, trail: Trail) -> list[Any]:
    for step in trail:
        value = value[step]
    return value if isinstance(value, list) else []


def _definition_known(checker: Checker, entry: dict[str, Any]) -> bool:
    url = entry.get("url")
    if not isinstance(url, str) or not ("://" in url or url.startswith("urn:")):
        return False  # the parts of a complex extension have relative urls: checked with their parent
    profile = checker.cache.get(url)
    return profile is not None and profile.is_extension


def _descend(node: Node, trail: Trail) -> tuple[Node, str | None] | None:
    """The Node at ``trail`` (JSON keys and array indexes) and, when it is the value of an
    extension, that extension's URL (its own extensions are, for their context, on that extension)."""
    owner: str | None = None
    index = 0
    while index < len(trail):
        key = str(trail[index])
        name = key[1:] if key.startswith("_") else key
        candidates = children(node, name)
        position = trail[index + 1] if index + 1 < len(trail) and isinstance(trail[index + 1], int) else None
        index += 2 if position is not None else 1
        suffix = f"[{position}]" if position is not None else ""
        chosen = next((c for c in candidates if c.loc.endswith(f".{name}{suffix}")), None)
        if chosen is None:
            return None
        owner = url_of(node) if node.type == "Extension" and chosen.choice else None
        node = chosen
    return node, owner


def _extension(checker: Checker, ext: Node, host: Node, owner: str | None) -> None:
    url = url_of(ext)
    if isinstance(url, str) and ("://" in url or url.startswith("urn:")):  # parts of a complex one are relative
        profile = checker.cache.get(url)
        if profile is not None and profile.is_extension:
            definition = checker.cache.definition(url) or {}
            if not _in_context(checker, definition.get("context") or [], host, owner):
                checker.issues.append(_out_of_context(url, definition.get("context") or [], host, ext))
            checker.conform(ext, profile)


def _in_context(checker: Checker, contexts: list[Any], host: Node, owner: str | None) -> bool:
    if not contexts:
        return True
    for context in contexts:
        if not isinstance(context, dict):
            continue
        kind, expression = context.get("type"), context.get("expression")
        if not isinstance(expression, str):
            continue
        if kind == "element" and _element_context(expression, host):
            return True
        if kind == "extension" and expression in (owner, url_of(host) if host.type == "Extension" else None):
            return True
        if kind == "fhirpath" and _fhirpath_context(checker, expression, host):
            return True
    return False


def _element_context(expression: str, host: Node) -> bool:
    is_resource = host.type in resource_types() and host.path == host.type
    head, _, rest = expression.partition(".")
    if not rest:
        if head == "Element":
            return True  # R4 tools accept "Element" on any element and on a resource
        if head in ("Resource", "DomainResource"):
            return is_resource
        return head in (host.type, host.path)
    # A contentReference element (PlanDefinition.action.action) is also the element it names.
    if expression == host.path or (host.type == "BackboneElement" and host.table and expression == host.table.path):
        return True
    if head in ("Resource", "DomainResource"):  # DomainResource.text: that element of any resource
        return host.path.partition(".")[2] == rest
    return host.path.endswith("." + rest) and head not in resource_types()  # a data type's element


def _fhirpath_context(checker: Checker, expression: str, host: Node) -> bool:
    resource = host.resource or checker.root
    if resource is None:
        return True
    root = resource_node(resource)
    if root is None:
        return True
    try:
        found = evaluate(expression, root, resource, checker.root or resource)
    except Exception:
        return True  # an expression we cannot run does not refuse the data
    target = host.value if host.value is not None else host.ext
    return any(item is target or item == target for item in found)


def _out_of_context(url: str, contexts: list[Any], host: Node, ext: Node) -> Issue:
    allowed = "; ".join(
        f"{c.get('type')} {c.get('expression')}" for c in contexts if isinstance(c, dict) and c.get("expression")
    )
    return Issue(
        "error",
        "structure",
        f"Extension {url} is not allowed on {host.path} ({host.type}) at {ext.loc}: its definition allows it "
        f"only on {allowed}",
        f"Phần mở rộng {url} không được dùng cho {host.path} ({host.type}) tại {ext.loc}: định nghĩa của nó "
        f"chỉ cho phép trên {allowed}",
        (ext.loc,),
    )
