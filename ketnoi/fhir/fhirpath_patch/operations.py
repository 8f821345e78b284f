"""FHIRPath Patch: applying each operation type (add, insert, delete, replace, move) to the JSON."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, NoReturn

from ketnoi.fhir.fhirpath_patch.locate import _get, _select, _single
from ketnoi.fhir.fhirpath_patch.model import Step, _failed, _Operation
from ketnoi.fhir.fhirpath_patch.structure import _child, _child_ctx, _ctx_at, _suffix
from ketnoi.fhir.fhirpath_patch.values import _aligned_ext, _append, _insert, _key_for, _set, _tidy_ext, _value

_TRAILING_NAME = re.compile(r"^(.*\S)\s*\.\s*([A-Za-z][A-Za-z0-9_]*)$")


# --- operations ----------------------------------------------------------------------------------


def _apply(root: dict[str, Any], op: _Operation) -> None:
    if op.type == "delete":
        locations = _select(root, op.path)
        if locations:
            _delete(root, _single(op, locations))
        return
    if op.type == "add":
        _add(root, op, _single(op, _select(root, op.path)))
    elif op.type == "replace":
        _replace(root, op, _single(op, _select(root, op.path)))
    else:
        _list_op(root, op)


def _owner(root: dict[str, Any], steps: list[Step]) -> tuple[dict[str, Any], str, int | None]:
    """The object holding the element at ``steps``, the member name and the list index (if any)."""
    if steps and isinstance(steps[-1], int):
        owner, key, index = _get(root, steps[:-2]), steps[-2], steps[-1]
    else:
        owner, key, index = _get(root, steps[:-1]), steps[-1], None
    assert isinstance(owner, dict) and isinstance(key, str)
    return owner, key, index


def _delete(root: dict[str, Any], steps: list[Step]) -> None:
    if not steps:
        _failed("the resource itself cannot be deleted", "không thể xoá chính tài nguyên")
    _remove_at(root, steps)
    # FHIR JSON has no empty objects or arrays: drop the ancestors the deletion left empty.
    for depth in range(len(steps) - 1, 0, -1):
        try:
            ancestor = _get(root, steps[:depth])
        except (KeyError, IndexError):  # already removed with its last item
            continue
        if ancestor not in ({}, []):
            break
        _remove_at(root, steps[:depth])


def _remove_at(root: dict[str, Any], steps: list[Step]) -> None:
    owner, key, index = _owner(root, steps)
    if index is None:
        del owner[key]
        owner.pop(f"_{key}", None)
        return
    del owner[key][index]
    ext = owner.get(f"_{key}")
    if isinstance(ext, list) and index < len(ext):
        del ext[index]
    _tidy_ext(owner, key)
    if not owner[key]:
        del owner[key]
        owner.pop(f"_{key}", None)


def _add(root: dict[str, Any], op: _Operation, steps: list[Step]) -> None:
    assert op.name is not None and op.value is not None
    target = _get(root, steps)
    if not isinstance(target, dict):
        if op.name not in ("extension", "id") or not steps:
            _failed(
                f"{op.path} is a primitive value; only 'extension' or 'id' can be added to it",
                f"{op.path} là một giá trị nguyên thuỷ; chỉ có thể thêm 'extension' hoặc 'id'",
            )
        target = _primitive_element(root, steps)
    ctx = _ctx_at(root, steps)
    child = _child(ctx, op.name) if ctx is not None else None
    if ctx is not None and child is None:
        _failed(f"{ctx.prefix} has no element {op.name!r}", f"{ctx.prefix} không có phần tử {op.name!r}")
    value = _value(op.value[0], _child_ctx(child, None) if child is not None else None)
    key = _key_for(child, op.name, value)
    if child is not None and child.choice:
        variants = {child.base + _suffix(t) for t in child.types}
        taken = [k for k in target if k.removeprefix("_") in variants]
        if taken:
            _already(op, taken[0].removeprefix("_"))
    is_list = child.is_list if child is not None else isinstance(target.get(key), list)
    if is_list:
        if key in target and not isinstance(target[key], list):
            _failed(f"{key} is not a list", f"{key} không phải là một danh sách")
        _append(target, key, value)
    elif key in target or f"_{key}" in target:
        _already(op, key)
    else:
        _set(target, key, value)


def _already(op: _Operation, key: str) -> NoReturn:
    _failed(
        f"{key} already has a value (add only sets elements that are empty or repeat); use replace",
        f"{key} đã có giá trị (add chỉ đặt phần tử còn trống hoặc lặp lại); hãy dùng replace",
    )


def _primitive_element(root: dict[str, Any], steps: list[Step]) -> dict[str, Any]:
    """The ``_element`` object holding id/extension of the primitive at ``steps`` (created)."""
    owner, key, index = _owner(root, steps)
    if index is None:
        ext = owner.get(f"_{key}")
        if not isinstance(ext, dict):
            ext = owner[f"_{key}"] = {}
        return ext
    items = _aligned_ext(owner, key, len(owner[key]))
    if not isinstance(items[index], dict):
        items[index] = {}
    result: dict[str, Any] = items[index]
    return result


def _replace(root: dict[str, Any], op: _Operation, steps: list[Step]) -> None:
    assert op.value is not None
    if not steps:
        _failed("the resource itself cannot be replaced", "không thể thay thế chính tài nguyên")
    owner, key, index = _owner(root, steps)
    owner_ctx = _ctx_at(root, steps[:-2] if index is not None else steps[:-1])
    child = _child(owner_ctx, key) if owner_ctx is not None else None
    value = _value(op.value[0], _child_ctx(child, None) if child is not None else None)
    if index is not None:
        owner[key][index] = value.json
        ext = owner.get(f"_{key}")
        if isinstance(ext, list) or value.ext is not None:
            _aligned_ext(owner, key, len(owner[key]))[index] = value.ext
            _tidy_ext(owner, key)
        return
    new_key = key
    if child is not None and child.choice:
        # the replacement may switch the choice to another type (deceasedBoolean → deceasedDateTime)
        new_key = _key_for(dataclasses.replace(child, chosen=None), child.base, value)
    # keep the member's position among its siblings
    rebuilt: dict[str, Any] = {}
    for k, v in owner.items():
        if k == key:
            rebuilt[new_key] = value.json
            if value.ext is not None:
                rebuilt[f"_{new_key}"] = value.ext
        elif k != f"_{key}":
            rebuilt[k] = v
    owner.clear()
    owner.update(rebuilt)


def _list_op(root: dict[str, Any], op: _Operation) -> None:
    """insert and move: the path selects the items of one list."""
    locations = _select(root, op.path)
    list_steps = _list_of(root, op, locations)
    owner, key = _get(root, list_steps[:-1]), list_steps[-1]
    assert isinstance(owner, dict) and isinstance(key, str)
    items = owner.get(key, [])
    if not isinstance(items, list):
        _failed(f"{op.path} is not a list", f"{op.path} không phải là một danh sách")
    if op.type == "insert":
        assert op.index is not None and op.value is not None
        if not 0 <= op.index <= len(items):
            _failed(
                f"index {op.index} is out of range (the list has {len(items)} items)",
                f"chỉ số {op.index} vượt quá phạm vi (danh sách có {len(items)} phần tử)",
            )
        ctx = _ctx_at(root, list_steps) if key in owner else None
        if ctx is None:
            owner_ctx = _ctx_at(root, list_steps[:-1])
            child = _child(owner_ctx, key) if owner_ctx is not None else None
            ctx = _child_ctx(child, None) if child is not None else None
        _insert(owner, key, op.index, _value(op.value[0], ctx))
        return
    assert op.source is not None and op.destination is not None
    for label, at in (("source", op.source), ("destination", op.destination)):
        if not 0 <= at < len(items):
            _failed(
                f"{label} index {at} is out of range (the list has {len(items)} items)",
                f"chỉ số {label} {at} vượt quá phạm vi (danh sách có {len(items)} phần tử)",
            )
    items.insert(op.destination, items.pop(op.source))
    ext = owner.get(f"_{key}")
    if isinstance(ext, list):
        ext = _aligned_ext(owner, key, len(items))
        ext.insert(op.destination, ext.pop(op.source))


def _list_of(root: dict[str, Any], op: _Operation, locations: list[list[Step]]) -> list[Step]:
    """The location of the list whose items ``locations`` are."""
    if locations:
        parents = {tuple(loc[:-1]) for loc in locations}
        if len(parents) != 1 or not all(loc and isinstance(loc[-1], int) for loc in locations):
            _failed(
                f"{op.path} does not select the items of a single list",
                f"{op.path} không chọn các phần tử của một danh sách duy nhất",
            )
        return locations[0][:-1]
    # an empty (absent) list: find its owner from the path's last step
    match = _TRAILING_NAME.match(op.path)
    if op.type == "insert" and match is not None:
        owners = _select(root, match.group(1))
        if len(owners) == 1 and isinstance(_get(root, owners[0]), dict):
            return [*owners[0], match.group(2)]
    _failed(f"no content found at {op.path}", f"không tìm thấy nội dung tại {op.path}")
