"""PATCH bodies for FHIR resources: JSON Patch (RFC 6902) and FHIRPath Patch.

http://hl7.org/fhir/R4/http.html#patch — a server accepts ``application/json-patch+json``
(RFC 6902, with JSON Pointers per RFC 6901) and a FHIRPath Patch ``Parameters`` resource
(http://hl7.org/fhir/R4/fhirpatch.html, implemented in :mod:`ketnoi.fhir.fhirpath_patch` and
re-exported here).

Both functions work on a deep copy and never mutate their arguments. Errors are
:class:`~ketnoi.fhir.outcome.FhirError`:

* 400 ``invalid`` — the body is not a patch at all (JSON Patch: not a JSON array of objects);
* 422 ``processing`` — a well-formed body whose operations are invalid or cannot be applied
  (unknown op, bad pointer, missing target, failing ``test``, ...).

Messages name the failing operation by its 0-based position in the patch array, its op and its
path, e.g. ``JSON Patch operation 2 (replace /name/0/family): path not found``.
"""

from __future__ import annotations

import copy
import re
from typing import Any, NoReturn

from ketnoi.fhir.fhirpath_patch import apply_fhirpath_patch
from ketnoi.fhir.outcome import FhirError

__all__ = ["apply_fhirpath_patch", "apply_json_patch", "json_equal"]

_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_INDEX = re.compile(r"0|[1-9][0-9]*")


class _OpError(Exception):
    """A failing operation; converted to a FhirError that names the operation."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.en = en
        self.vi = vi


def apply_json_patch(resource: dict[str, Any], operations: object) -> dict[str, Any]:
    """Apply an RFC 6902 JSON Patch document to a copy of ``resource`` and return the copy.

    ``operations`` is the parsed request body. The operations are applied in order and
    atomically: the first failing one raises and nothing is returned. ``resource`` and
    ``operations`` are never mutated, and the result shares no objects with either.
    """
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise FhirError.of(
            400,
            "invalid",
            "A JSON Patch body must be a JSON array of operation objects",
            "Nội dung JSON Patch phải là một mảng JSON gồm các đối tượng thao tác",
        )
    doc: Any = copy.deepcopy(resource)
    for index, op in enumerate(operations):
        try:
            doc = _apply_op(doc, op)
            if not isinstance(doc, dict):
                _fail(
                    "the resource would no longer be a JSON object",
                    "tài nguyên sẽ không còn là một đối tượng JSON",
                )
        except _OpError as exc:
            raise _op_failure(index, op, exc.en, exc.vi) from None
    result: dict[str, Any] = doc
    return result


def json_equal(a: object, b: object) -> bool:
    """Deep JSON equality (RFC 6902 §4.6): numbers by value, but ``1 != true`` and ``0 != false``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return False


# --- one operation -------------------------------------------------------------------------------


def _op_failure(index: int, op: dict[str, Any], en: str, vi: str) -> FhirError:
    name = op.get("op")
    path = op.get("path")
    label = " ".join(str(x) for x in (name, path) if isinstance(x, str))
    where = f" ({label})" if label else ""
    return FhirError.of(
        422,
        "processing",
        f"JSON Patch operation {index}{where}: {en}",
        f"Thao tác JSON Patch số {index}{where}: {vi}",
    )


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    name = op.get("op")
    if not isinstance(name, str):
        _fail("member 'op' is missing or not a string", "thiếu thành phần 'op' hoặc 'op' không phải chuỗi")
    if name not in _OPS:
        _fail(
            f"unknown op {name!r} (expected add, remove, replace, move, copy or test)",
            f"thao tác {name!r} không được hỗ trợ (chỉ chấp nhận add, remove, replace, move, copy, test)",
        )
    path = _pointer(op, "path")
    if name == "add":
        return _add(doc, path, copy.deepcopy(_value(op)))
    if name == "remove":
        _get(doc, path)
        return _remove(doc, path)
    if name == "replace":
        return _replace(doc, path, copy.deepcopy(_value(op)))
    if name == "test":
        expected = _value(op)
        if not json_equal(_get(doc, path), expected):
            _fail(
                "test failed: the value differs from the expected value",
                "kiểm tra thất bại: giá trị khác với giá trị mong đợi",
            )
        return doc
    source = _pointer(op, "from")
    value = _get(doc, source, "'from' path not found", "không tìm thấy đường dẫn 'from'")
    if name == "copy":
        return _add(doc, path, copy.deepcopy(value))
    # move
    if path == source:
        return doc
    if path[: len(source)] == source:
        _fail(
            "cannot move a value into one of its own children",
            "không thể di chuyển một giá trị vào bên trong chính nó",
        )
    doc = _remove(doc, source)
    return _add(doc, path, value)


def _fail(en: str, vi: str) -> NoReturn:
    raise _OpError(en, vi)


def _value(op: dict[str, Any]) -> Any:
    if "value" not in op:
        _fail("member 'value' is missing", "thiếu thành phần 'value'")
    return op["value"]


# --- JSON Pointer (RFC 6901) ---------------------------------------------------------------------


def _pointer(op: dict[str, Any], member: str) -> list[str]:
    """Parse the JSON Pointer in ``op[member]`` into unescaped reference tokens."""
    text = op.get(member)
    if not isinstance(text, str):
        _fail(
            f"member '{member}' is missing or not a string",
            f"thiếu thành phần '{member}' hoặc '{member}' không phải chuỗi",
        )
    if text == "":
        return []
    if not text.startswith("/"):
        _fail(
            f"'{member}' {text!r} is not a JSON Pointer (it must be empty or start with '/')",
            f"'{member}' {text!r} không phải con trỏ JSON (phải rỗng hoặc bắt đầu bằng '/')",
        )
    tokens = text[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            _fail(
                f"'{member}' {text!r} has an invalid escape (only ~0 and ~1 are allowed)",
                f"'{member}' {text!r} có ký tự thoát không hợp lệ (chỉ cho phép ~0 và ~1)",
            )
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _array_index(token: str, length: int, *, allow_end: bool) -> int:
    if token == "-":
        if allow_end:
            return length
        _fail(
            "'-' (past the end of the array) does not name an existing element",
            "'-' (sau phần tử cuối của mảng) không chỉ tới phần tử nào",
        )
    if not _INDEX.fullmatch(token):
        _fail(
            f"invalid array index {token!r}",
            f"chỉ số mảng {token!r} không hợp lệ",
        )
    index = int(token)
    if index > length or (index == length and not allow_end):
        _fail(
            f"array index {index} is out of range (array length {length})",
            f"chỉ số mảng {index} vượt quá phạm vi (độ dài mảng {length})",
        )
    return index


def _get(
    doc: Any,
    tokens: list[str],
    en: str = "path not found",
    vi: str = "không tìm thấy đường dẫn",
) -> Any:
    node = doc
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                _fail(en, vi)
            node = node[token]
        elif isinstance(node, list):
            if token == "-" or not _INDEX.fullmatch(token) or int(token) >= len(node):
                _fail(en, vi)
            node = node[int(token)]
        else:
            _fail(en, vi)
    return node


def _parent(doc: Any, tokens: list[str]) -> Any:
    parent = _get(
        doc,
        tokens[:-1],
        "the parent of the path does not exist",
        "phần tử cha của đường dẫn không tồn tại",
    )
    if not isinstance(parent, dict | list):
        _fail(
            "the parent of the path is not an object or an array",
            "phần tử cha của đường dẫn không phải đối tượng hoặc mảng",
        )
    return parent


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_array_index(last, len(parent), allow_end=True), value)
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        _fail("cannot remove the whole document", "không thể xoá toàn bộ tài liệu")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            _fail("path not found", "không tìm thấy đường dẫn")
        del parent[last]
    else:
        del parent[_array_index(last, len(parent), allow_end=False)]
    return doc


def _replace(doc: Any, tokens: list[str], value: Any) -> Any:
    _get(doc, tokens)
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value  # keeps the member's position among its siblings
    else:
        parent[_array_index(last, len(parent), allow_end=False)] = value
    return doc
