"""Rules on content the FHIRPath engine cannot judge: an Attachment's ``size`` against its ``data``,
and the narrative's XHTML (R4 invariant txt-1, ``htmlChecks()``: "The narrative SHALL contain only
the basic html formatting elements and attributes described in chapters 7-11 (except section 4 of
chapter 9) and 12 of the HTML 4.0 standard, <a> elements (either name or href), images and
internally contained style attributes").

txt-1 matters beyond form: a narrative is shown to people in browsers (the web console, patients'
apps), so a ``<script>``, an event handler (``onclick``) or a ``javascript:`` link stored in one is
stored cross-site scripting. Both rules report with code ``invariant``, like the base invariants,
so ``KETNOI_VALIDATION`` decides whether they refuse a write (ADR 0020).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from xml.etree.ElementTree import Element

import orjson
from defusedxml import ElementTree  # type: ignore[import-untyped]
from defusedxml.common import DefusedXmlException  # type: ignore[import-untyped]

from ketnoi.fhir.outcome import Issue

_XHTML = "{http://www.w3.org/1999/xhtml}"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# HTML 4.0 chapters 7-11 and 12 (text, lists, tables, links), images, without forms and scripts.
_ELEMENTS = _words(
    "a abbr acronym address b big blockquote br caption center cite code col colgroup dd del dfn div dl dt em "
    "font h1 h2 h3 h4 h5 h6 hr i img ins kbd li ol p pre q s samp small span strike strong sub sup table tbody "
    "td tfoot th thead tr tt u ul var"
)
_ATTRIBUTES = _words(
    "abbr accesskey align alt axis bgcolor border cellhalign cellpadding cellspacing cellvalign char charoff "
    "charset cite class colspan compact coords dir frame headers height href hreflang hspace id lang longdesc "
    "name nowrap rel rev rowspan rules scope shape span src start style summary tabindex title type valign "
    "value vspace width xml:lang xml:space"
)
_URL_ATTRIBUTES = frozenset({"href", "src", "longdesc", "cite"})
_TAG = re.compile(r"<\s*([^\s/>!?]+)")
_ATTRIBUTE = re.compile(r"\s([^\s=<>\"']+)\s*=")


def check_content_rules(resource: object) -> list[Issue]:
    """Issues of Attachment sizes and narratives anywhere in ``resource`` (contained and nested too)."""
    issues: list[Issue] = []
    if isinstance(resource, dict):
        _resource(resource, str(resource.get("resourceType", "")), issues)
        if _has_sizes(resource):  # Attachments with a size are rare: look for them only then
            _attachments(resource, str(resource.get("resourceType", "")), issues)
    return issues


def _resource(resource: dict[str, Any], path: str, issues: list[Issue]) -> None:
    """The narrative of a resource and of the resources it holds (contained, Bundle entries, Parameters)."""
    text = resource.get("text")
    if isinstance(text, dict) and isinstance(text.get("div"), str):
        issues.extend(_narrative(text["div"], f"{path}.text.div"))
    for key, inner in _nested(resource):
        _resource(inner, f"{path}.{key}", issues)


def _nested(resource: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for name in ("contained", "entry", "parameter"):  # Bundle.entry and Parameters.parameter hold .resource
        items = resource.get(name)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if name == "contained" and isinstance(item, dict):
                found.append((f"contained[{index}]", item))
            elif isinstance(item, dict) and isinstance(item.get("resource"), dict):
                found.append((f"{name}[{index}].resource", item["resource"]))
    return found


def _has_sizes(resource: dict[str, Any]) -> bool:
    try:
        blob = orjson.dumps(resource)
    except TypeError:  # a value orjson cannot write: look everywhere
        return True
    return b'"size":' in blob and b'"data":' in blob


def _attachments(value: Any, path: str, issues: list[Issue]) -> None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            _attachments(item, f"{path}[{index}]", issues)
        return
    if not isinstance(value, dict):
        return
    if isinstance(value.get("data"), str) and isinstance(value.get("size"), int):
        issue = _attachment_size(value["data"], value["size"], path)
        if issue is not None:
            issues.append(issue)
    for key, item in value.items():
        if isinstance(item, dict | list):
            _attachments(item, f"{path}.{key}", issues)


def _attachment_size(data: str, size: int, path: str) -> Issue | None:
    """An Attachment's ``size`` is the number of bytes of its (base64-decoded) ``data``."""
    try:
        actual = len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return None  # malformed base64 is the structural check's finding
    if actual == size:
        return None
    return Issue(
        "error",
        "invariant",
        f"Attachment.size is {size} but its data decode to {actual} bytes",
        f"Attachment.size là {size} nhưng dữ liệu giải mã được {actual} byte",
        (f"{path}.size",),
    )


def _narrative(div: str, path: str) -> list[Issue]:
    if _plainly_safe(div):
        return []
    try:
        root = ElementTree.fromstring(div)
    except (ElementTree.ParseError, DefusedXmlException):
        return []  # not XHTML at all: the structural check's finding (xhtml primitive)
    found: list[str] = []
    for element in root.iter():
        found.extend(_element_problems(element))
    return [_unsafe(problem, path) for problem in dict.fromkeys(found)]


def _plainly_safe(div: str) -> bool:
    """Every tag and attribute name the text shows is allowed, and no script URL: no need to parse
    (parsing is most of this rule's cost). Anything unusual, even in plain text, is parsed."""
    if "script:" in div.lower():
        return False
    if not all(tag in _ELEMENTS for tag in _TAG.findall(div)):
        return False
    return all(a in _ATTRIBUTES or a == "xmlns" or a.startswith("xmlns:") for a in _ATTRIBUTE.findall(div))


def _element_problems(element: Element) -> list[str]:
    name = element.tag.removeprefix(_XHTML) if isinstance(element.tag, str) else ""
    problems = [] if name in _ELEMENTS else [f"element <{name}>"]
    for attribute, text in element.attrib.items():
        local = attribute.rsplit("}", 1)[-1] if attribute.startswith("{") else attribute
        if attribute.startswith("{http://www.w3.org/XML/1998/namespace}"):
            local = "xml:" + local
        if local not in _ATTRIBUTES:
            problems.append(f"attribute {local}=")
        elif local in _URL_ATTRIBUTES and "".join(text.split()).lower().startswith(("javascript:", "vbscript:")):
            problems.append(f"a script URL in {local}=")
    return problems


def _unsafe(problem: str, path: str) -> Issue:
    return Issue(
        "error",
        "invariant",
        f"Constraint failed: txt-1: the narrative may hold only basic HTML formatting; {problem} is not allowed",
        f"Ràng buộc txt-1 không thỏa: phần tường thuật chỉ được chứa định dạng HTML cơ bản; không cho phép {problem}",
        (path,),
    )
