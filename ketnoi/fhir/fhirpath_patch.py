"""FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html): a Parameters resource of operations.

Each ``operation`` parameter has parts ``type`` (add | insert | delete | replace | move),
``path`` (a FHIRPath expression), and, depending on the type, ``name``, ``value``, ``index``,
``source`` and ``destination``. A value is a ``value[x]`` (a datatype), a ``resource``, or nested
``part``s naming the children of an anonymous (backbone) element.

Paths are evaluated with fhirpathpy (R4 model) on a view of the working copy that leaves out the
``_element`` primitive-extension members (fhirpathpy would otherwise list them as extra items and
shift indexes); every selected node is mapped back to its location in the JSON by the node's
property path, so primitives, list items and choice elements (``Patient.deceased`` →
``deceasedBoolean``) can all be changed in place. Whether an added element is a list, and which
``[x]`` suffix a choice value takes, comes from the R4 StructureDefinitions.

Rules (from the specification):

* the path must select a single element, except for ``insert``/``move``, whose path selects the
  items of one list;
* except for ``delete`` (which is then a no-op), it is an error when the path selects nothing;
* ``add`` appends to a list, or sets a non-repeating element that has no value yet;
* ``insert`` needs ``0 <= index <= len(list)``; ``move`` needs source and destination in range.

Errors: 400 ``invalid`` for a body that is not a well-formed FHIRPath Patch (not a Parameters,
unknown parameter or part, a missing part, an unparsable FHIRPath); 422 ``processing`` for an
operation that cannot be applied. Messages name the operation by its 0-based position among the
``Parameters.parameter`` entries.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, NoReturn

from fhirpathpy import evaluate
from fhirpathpy.models import models

from ketnoi.fhir.definitions import structure_definitions
from ketnoi.fhir.outcome import FhirError

__all__ = ["apply_fhirpath_patch"]

_TYPES = ("add", "insert", "delete", "replace", "move")
_PART_NAMES = frozenset({"type", "path", "name", "value", "index", "source", "destination"})
_REQUIRED: dict[str, tuple[str, ...]] = {
    "add": ("path", "name", "value"),
    "insert": ("path", "value", "index"),
    "delete": ("path",),
    "replace": ("path", "value"),
    "move": ("path", "source", "destination"),
}
_STEP = re.compile(r"([^.\[\]]*)((?:\[\d+\])*)")
_MEMBER = re.compile(r"\.\s*([A-Za-z_][A-Za-z0-9_]*)(?!\s*\()")
_TRAILING_NAME = re.compile(r"^(.*\S)\s*\.\s*([A-Za-z][A-Za-z0-9_]*)$")

Step = str | int


class _Malformed(Exception):
    """The Parameters body is not a well-formed FHIRPath Patch (HTTP 400)."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.en = en
        self.vi = vi


class _Failed(_Malformed):
    """A well-formed operation that cannot be applied (HTTP 422)."""


def _malformed(en: str, vi: str) -> NoReturn:
    raise _Malformed(en, vi)


def _failed(en: str, vi: str) -> NoReturn:
    raise _Failed(en, vi)


@dataclass(frozen=True, slots=True)
class _Value:
    """A value taken from a ``value`` part: the JSON, its ``_x`` extension JSON, its datatype."""

    json: Any
    ext: Any = None
    type: str | None = None  # "Date", "HumanName", ... (None for anonymous or resource values)


@dataclass(frozen=True, slots=True)
class _Operation:
    type: str
    path: str
    name: str | None
    value: list[dict[str, Any]] | None  # the raw value part (kept raw: it is typed later)
    index: int | None
    source: int | None
    destination: int | None


# --- entry point ---------------------------------------------------------------------------------


def apply_fhirpath_patch(resource: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Apply a FHIRPath Patch ``Parameters`` resource to a copy of ``resource``; return the copy."""
    try:
        operations = _parse(parameters)
    except _Malformed as exc:
        raise FhirError.of(400, "invalid", exc.en, exc.vi) from None
    result: dict[str, Any] = copy.deepcopy(resource)
    for position, op in enumerate(operations):
        try:
            _apply(result, op)
        except _Malformed as exc:
            status, code = (422, "processing") if isinstance(exc, _Failed) else (400, "invalid")
            label = f"{op.type} {op.path}"
            raise FhirError.of(
                status,
                code,
                f"FHIRPath Patch operation {position} ({label}): {exc.en}",
                f"Thao tác FHIRPath Patch số {position} ({label}): {exc.vi}",
                (f"Parameters.parameter[{position}]",),
            ) from None
    return result


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


# --- FHIRPath evaluation and locations -----------------------------------------------------------


def _view(data: Any) -> Any:
    """A copy without ``_element`` members, for evaluation (see the module docstring)."""
    if isinstance(data, dict):
        return {k: _view(v) for k, v in data.items() if not k.startswith("_")}
    if isinstance(data, list):
        return [_view(v) for v in data]
    return data


def _select(root: dict[str, Any], path: str) -> list[list[Step]]:
    """Evaluate ``path``; return the JSON location (steps from the root) of each selected node."""
    path = _quote_keyword_members(path)
    error = _syntax_error(path)
    if error is not None:
        _malformed(
            f"the path is not a valid FHIRPath expression ({error})",
            f"đường dẫn không phải là biểu thức FHIRPath hợp lệ ({error})",
        )
    try:
        nodes = evaluate(_view(root), path, {}, models["r4"], {"returnRawData": True})
    except Exception as exc:  # fhirpathpy raises plain exceptions for evaluation errors
        _failed(
            f"the path could not be evaluated ({exc})",
            f"không thể đánh giá đường dẫn ({exc})",
        )
    locations: list[list[Step]] = []
    seen: set[tuple[Step, ...]] = set()
    for node in nodes:
        if not hasattr(node, "propName") or not hasattr(node, "data"):
            _failed(
                "the path selects a computed value, not an element of the resource",
                "đường dẫn chọn một giá trị tính toán, không phải một phần tử của tài nguyên",
            )
        steps = _locate(root, node.propName)
        if tuple(steps) not in seen:
            seen.add(tuple(steps))
            locations.append(steps)
    return locations


_KEYWORDS = frozenset({"div", "mod", "and", "or", "xor", "implies", "true", "false"})


def _quote_keyword_members(path: str) -> str:
    """Delimit element names that are FHIRPath keywords: ``Patient.text.div`` → ``Patient.text.`div```.

    After a ``.``, such a word can only be a member name, but the grammar reads it as an operator.
    String literals and already-delimited names are left alone.
    """
    out: list[str] = []
    i = 0
    while i < len(path):
        ch = path[i]
        if ch in "'`":
            end = i + 1
            while end < len(path) and path[end] != ch:
                end += 2 if path[end] == "\\" else 1
            out.append(path[i : end + 1])
            i = end + 1
            continue
        match = _MEMBER.match(path, i)
        if match is not None and match.group(1) in _KEYWORDS:
            out.append(f".`{match.group(1)}`")
            i = match.end()
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _SyntaxErrors:
    """An ANTLR error listener that records syntax errors (fhirpathpy's own parser ignores them)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def syntaxError(self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, e: Any) -> None:
        self.messages.append(f"column {column + 1}: {msg}")

    def reportAmbiguity(self, *args: Any) -> None:
        pass

    def reportAttemptingFullContext(self, *args: Any) -> None:
        pass

    def reportContextSensitivity(self, *args: Any) -> None:
        pass


@cache
def _syntax_error(path: str) -> str | None:
    """The first syntax error in a FHIRPath expression, or None when it parses completely."""
    antlr: Any = importlib.import_module("antlr4")
    lexer_cls: Any = importlib.import_module("fhirpathpy.parser.generated.FHIRPathLexer").FHIRPathLexer
    parser_cls: Any = importlib.import_module("fhirpathpy.parser.generated.FHIRPathParser").FHIRPathParser
    listener = _SyntaxErrors()
    lexer = lexer_cls(antlr.InputStream(path))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    tokens = antlr.CommonTokenStream(lexer)
    parser = parser_cls(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    try:
        parser.expression()
    except Exception as exc:  # the lexer may raise on an unrecognisable character
        return str(exc) or type(exc).__name__
    if listener.messages:
        return listener.messages[0]
    if tokens.LA(1) != antlr.Token.EOF:
        return f"unexpected {tokens.LT(1).text!r} at column {tokens.LT(1).column + 1}"
    return None


def _locate(root: dict[str, Any], prop_name: str | None) -> list[Step]:
    """Map a fhirpathpy property path (``Patient.contact[0].name``) to JSON steps."""
    if not prop_name:
        return []
    steps: list[Step] = []
    data: Any = root
    for segment in prop_name.split(".")[1:]:
        match = _STEP.fullmatch(segment)
        if match is None or not isinstance(data, dict):
            _failed(
                "the path selects something that is not an element of the resource",
                "đường dẫn chọn một giá trị không phải là phần tử của tài nguyên",
            )
        key = _actual_key(data, match.group(1))
        steps.append(key)
        data = data[key]
        for index in re.findall(r"\[(\d+)\]", match.group(2)):
            steps.append(int(index))
            data = data[int(index)]
    return steps


def _actual_key(data: dict[str, Any], name: str) -> str:
    if name in data:
        return name
    for key in data:  # a choice element, named without its type suffix by the R4 model
        if key.startswith(name) and key[len(name) : len(name) + 1].isupper():
            return key
    _failed(
        f"element {name!r} not found in the resource",
        f"không tìm thấy phần tử {name!r} trong tài nguyên",
    )


def _get(root: dict[str, Any], steps: list[Step]) -> Any:
    data: Any = root
    for step in steps:
        data = data[step]
    return data


def _single(op: _Operation, locations: list[list[Step]]) -> list[Step]:
    if not locations:
        _failed(
            f"no content found at {op.path}",
            f"không tìm thấy nội dung tại {op.path}",
        )
    if len(locations) > 1:
        _failed(
            f"the path selects {len(locations)} elements; it must select exactly one",
            f"đường dẫn chọn {len(locations)} phần tử; chỉ được chọn đúng một phần tử",
        )
    return locations[0]


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
            _malformed(
                "a resource value must be a JSON object", "giá trị resource phải là một đối tượng JSON"
            )
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
