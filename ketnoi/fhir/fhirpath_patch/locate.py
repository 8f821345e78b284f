"""FHIRPath Patch: evaluating a path with fhirpathpy and tracing each node to its JSON location."""

from __future__ import annotations

import re
from typing import Any

from fhirpathpy import evaluate
from fhirpathpy.models import models

from ketnoi.fhir.fhirpath_patch.model import Step, _failed, _malformed, _Operation
from ketnoi.fhir.fhirpath_syntax import syntax_error

_STEP = re.compile(r"([^.\[\]]*)((?:\[\d+\])*)")
_MEMBER = re.compile(r"\.\s*([A-Za-z_][A-Za-z0-9_]*)(?!\s*\()")


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
    error = syntax_error(path)
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
