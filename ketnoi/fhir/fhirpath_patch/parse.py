"""FHIRPath Patch: parsing the ``Parameters`` body into :class:`~.model._Operation` objects."""

from __future__ import annotations

import re
from typing import Any

from ketnoi.fhir.fhirpath_patch.model import _malformed, _Operation

_TYPES = ("add", "insert", "delete", "replace", "move")
_PART_NAMES = frozenset({"type", "path", "name", "value", "index", "source", "destination"})
_REQUIRED: dict[str, tuple[str, ...]] = {
    "add": ("path", "name", "value"),
    "insert": ("path", "value", "index"),
    "delete": ("path",),
    "replace": ("path", "value"),
    "move": ("path", "source", "destination"),
}


# --- parsing the Parameters ----------------------------------------------------------------------


def _parse(parameters: object) -> list[_Operation]:
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        _malformed(
            "A FHIRPath Patch body must be a Parameters resource",
            "Nội dung FHIRPath Patch phải là một tài nguyên Parameters",
        )
    params = parameters.get("parameter", [])
    if not isinstance(params, list):
        _malformed("Parameters.parameter must be an array", "Parameters.parameter phải là một mảng")
    return [_parse_operation(i, p) for i, p in enumerate(params)]


def _parse_operation(position: int, param: object) -> _Operation:
    where = f"Parameters.parameter[{position}]"
    if not isinstance(param, dict) or param.get("name") != "operation":
        _malformed(
            f"{where} must be an 'operation' parameter",
            f"{where} phải là một tham số 'operation'",
        )
    parts = param.get("part")
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        _malformed(f"{where} has no parts", f"{where} không có thành phần (part) nào")
    found: dict[str, dict[str, Any]] = {}
    for part in parts:
        name = part.get("name")
        if name not in _PART_NAMES:
            _malformed(
                f"{where} has an unknown part {name!r}",
                f"{where} có thành phần không hợp lệ {name!r}",
            )
        if name in found:
            _malformed(f"{where} repeats the part {name!r}", f"{where} lặp lại thành phần {name!r}")
        found[name] = part
    op_type = _string_part(where, found, "type", ("valueCode", "valueString"))
    if op_type not in _REQUIRED:
        _malformed(
            f"{where} has an unknown operation type {op_type!r} (expected {', '.join(_TYPES)})",
            f"{where} có loại thao tác không hợp lệ {op_type!r} (chỉ chấp nhận {', '.join(_TYPES)})",
        )
    for required in _REQUIRED[op_type]:
        if required not in found:
            _malformed(
                f"{where}: a {op_type} operation needs a '{required}' part",
                f"{where}: thao tác {op_type} cần thành phần '{required}'",
            )
    path = _string_part(where, found, "path", ("valueString",))
    name = _string_part(where, found, "name", ("valueString", "valueCode")) if "name" in found else None
    if name is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
        _malformed(
            f"{where}: {name!r} is not an element name",
            f"{where}: {name!r} không phải là tên phần tử",
        )
    return _Operation(
        type=op_type,
        path=path,
        name=name,
        value=[found["value"]] if "value" in found else None,
        index=_int_part(where, found, "index"),
        source=_int_part(where, found, "source"),
        destination=_int_part(where, found, "destination"),
    )


def _string_part(where: str, parts: dict[str, dict[str, Any]], name: str, keys: tuple[str, ...]) -> str:
    part = parts.get(name, {})
    for key in keys:
        if isinstance(part.get(key), str) and part[key].strip():
            return str(part[key])
    _malformed(
        f"{where}: the '{name}' part needs a non-empty {' or '.join(keys)}",
        f"{where}: thành phần '{name}' cần một {' hoặc '.join(keys)} không rỗng",
    )


def _int_part(where: str, parts: dict[str, dict[str, Any]], name: str) -> int | None:
    if name not in parts:
        return None
    part = parts[name]
    for key in ("valueInteger", "valueUnsignedInt", "valuePositiveInt"):
        value = part.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    _malformed(
        f"{where}: the '{name}' part needs a valueInteger",
        f"{where}: thành phần '{name}' cần một valueInteger",
    )
