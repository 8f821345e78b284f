"""FHIRPath Patch: typing ``value`` parts and writing values (with their ``_x`` extensions) into the JSON."""

from __future__ import annotations

import copy
import re
from typing import Any, NoReturn

from ketnoi.fhir.fhirpath_patch.model import _failed, _malformed, _Value
from ketnoi.fhir.fhirpath_patch.structure import _Child, _child, _child_ctx, _Ctx, _suffix

# --- values --------------------------------------------------------------------------------------


def _value(part: dict[str, Any], ctx: _Ctx | None) -> _Value:
    """The value carried by a ``value`` part (or a nested part) for an element defined at ``ctx``."""
    keys = [k for k in part if k.startswith("value") and k[5:6].isupper()]
    has_parts = "part" in part
    has_resource = "resource" in part
    if len(keys) + has_parts + has_resource != 1:
        _malformed(
            f"the part {part.get('name')!r} must have exactly one of value[x], resource or part",
            f"thành phần {part.get('name')!r} phải có đúng một trong value[x], resource hoặc part",
        )
    if keys:
        key = keys[0]
        return _Value(copy.deepcopy(part[key]), copy.deepcopy(part.get(f"_{key}")), key[5:])
    if has_resource:
        if not isinstance(part["resource"], dict):
            _malformed("a resource value must be a JSON object", "giá trị resource phải là một đối tượng JSON")
        return _Value(copy.deepcopy(part["resource"]))
    parts = part["part"]
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        _malformed("'part' must be an array of parts", "'part' phải là một mảng các thành phần")
    obj: dict[str, Any] = {}
    for sub in parts:
        name = sub.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
            _malformed(
                f"{name!r} is not an element name",
                f"{name!r} không phải là tên phần tử",
            )
        child = _child(ctx, name) if ctx is not None else None
        if ctx is not None and child is None:
            _failed(
                f"{ctx.prefix} has no element {name!r}",
                f"{ctx.prefix} không có phần tử {name!r}",
            )
        value = _value(sub, _child_ctx(child, None) if child is not None else None)
        key = _key_for(child, name, value)
        is_list = child.is_list if child is not None else key in obj
        if is_list:
            if key in obj and not isinstance(obj[key], list):
                obj[key] = [obj[key]]
                if f"_{key}" in obj:
                    obj[f"_{key}"] = [obj[f"_{key}"]]
            _append(obj, key, value)
        elif key in obj:
            _malformed(
                f"the element {name!r} is given more than once",
                f"phần tử {name!r} được cho nhiều hơn một lần",
            )
        else:
            _set(obj, key, value)
    return _Value(obj)


def _key_for(child: _Child | None, name: str, value: _Value) -> str:
    """The JSON member name for ``value`` set as element ``name`` (choice elements get a suffix)."""
    if child is None or not child.choice:
        return name
    if child.chosen is not None:  # named with its suffix already (deceasedBoolean)
        if value.type is not None and value.type != _suffix(child.chosen):
            _type_mismatch(child)
        return name
    if value.type is None or value.type not in {_suffix(t) for t in child.types}:
        _type_mismatch(child)
    return child.base + value.type


def _type_mismatch(child: _Child) -> NoReturn:
    allowed = ", ".join(child.types)
    _failed(
        f"{child.base}[x] takes one of {allowed}; the value's type is not among them",
        f"{child.base}[x] chỉ nhận một trong {allowed}; kiểu của giá trị không thuộc danh sách này",
    )


def _set(obj: dict[str, Any], key: str, value: _Value) -> None:
    obj[key] = value.json
    obj.pop(f"_{key}", None)
    if value.ext is not None:
        obj[f"_{key}"] = value.ext


def _append(obj: dict[str, Any], key: str, value: _Value) -> None:
    _insert(obj, key, len(obj.get(key, [])), value)


def _insert(obj: dict[str, Any], key: str, index: int, value: _Value) -> None:
    items = obj.setdefault(key, [])
    ext = obj.get(f"_{key}")
    if isinstance(ext, list) or value.ext is not None:
        ext = _aligned_ext(obj, key, len(items))
        ext.insert(index, value.ext)
    items.insert(index, value.json)
    _tidy_ext(obj, key)


def _aligned_ext(obj: dict[str, Any], key: str, length: int) -> list[Any]:
    ext = obj.get(f"_{key}")
    if not isinstance(ext, list):
        ext = []
    ext = (ext + [None] * length)[:length]
    obj[f"_{key}"] = ext
    return ext


def _tidy_ext(obj: dict[str, Any], key: str) -> None:
    ext = obj.get(f"_{key}")
    if isinstance(ext, list) and all(e is None for e in ext):
        del obj[f"_{key}"]
