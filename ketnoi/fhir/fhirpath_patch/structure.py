"""FHIRPath Patch: R4 StructureDefinition look-ups (list-ness, choice types, children's contexts)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from ketnoi.fhir.definitions import structure_definitions
from ketnoi.fhir.fhirpath_patch.model import Step

# --- StructureDefinition look-ups ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Where an element's children are defined: a StructureDefinition and an element path in it."""

    sd: str
    prefix: str


@dataclass(frozen=True, slots=True)
class _Child:
    base: str  # the element name, without [x]
    is_list: bool
    choice: bool
    types: tuple[str, ...]  # type codes
    chosen: str | None  # for a choice named with its suffix (valueQuantity): that type code
    elem_path: str
    sd: str


@cache
def _elements(sd_id: str) -> dict[str, dict[str, Any]] | None:
    sd = structure_definitions().get(sd_id)
    if sd is None:
        return None
    out: dict[str, dict[str, Any]] = {}
    for element in sd.get("snapshot", {}).get("element", []):
        out.setdefault(element["path"], element)
    return out


@cache
def _parents(sd_id: str) -> frozenset[str]:
    """Element paths of an SD that have child elements defined inline (backbone elements)."""
    return frozenset(p.rsplit(".", 1)[0] for p in (_elements(sd_id) or {}) if "." in p)


def _type_codes(element: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(t.get("code", "")) for t in element.get("type", []))


def _suffix(type_code: str) -> str:
    return type_code[:1].upper() + type_code[1:]


def _root_ctx(data: object) -> _Ctx | None:
    if isinstance(data, dict) and isinstance(data.get("resourceType"), str):
        rt = data["resourceType"]
        return _Ctx(rt, rt) if _elements(rt) is not None else None
    return None


def _child(ctx: _Ctx, name: str) -> _Child | None:
    elements = _elements(ctx.sd) or {}
    path = f"{ctx.prefix}.{name}"
    element = elements.get(path)
    if element is not None:
        max_ = element.get("max", "1")
        return _Child(name, max_ not in ("0", "1"), False, _type_codes(element), None, path, ctx.sd)
    element = elements.get(f"{path}[x]")
    if element is not None:
        return _Child(name, False, True, _type_codes(element), None, f"{path}[x]", ctx.sd)
    for i in range(1, len(name)):
        if not name[i].isupper():
            continue
        element = elements.get(f"{ctx.prefix}.{name[:i]}[x]")
        if element is None:
            continue
        for code in _type_codes(element):
            if _suffix(code) == name[i:]:
                return _Child(name[:i], False, True, _type_codes(element), code, element["path"], ctx.sd)
    return None


def _child_ctx(child: _Child, type_code: str | None) -> _Ctx | None:
    """The context of the children of ``child`` (of ``type_code`` for a choice element)."""
    element = (_elements(child.sd) or {}).get(child.elem_path, {})
    reference = element.get("contentReference")
    if isinstance(reference, str):
        return _Ctx(child.sd, reference.split("#", 1)[-1])
    if child.elem_path in _parents(child.sd):
        return _Ctx(child.sd, child.elem_path)
    code = type_code or child.chosen or (child.types[0] if len(child.types) == 1 else None)
    if code is None or code.startswith("http://") or _elements(code) is None:
        return None
    return _Ctx(code, code)


def _ctx_at(root: dict[str, Any], steps: list[Step]) -> _Ctx | None:
    """The definition context of the value found at ``steps``."""
    ctx = _root_ctx(root)
    data: Any = root
    for step in steps:
        data = data[step]
        if isinstance(step, str) and ctx is not None:
            child = _child(ctx, step)
            ctx = _child_ctx(child, None) if child is not None else None
        ctx = _root_ctx(data) or ctx
    return ctx
