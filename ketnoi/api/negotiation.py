"""Content negotiation and body decoding for the FHIR endpoint: media types, size and depth limits.

Errors raise FhirError so that even a request we cannot read gets an OperationOutcome.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ketnoi.fhir.outcome import FhirError, bad_request

JSON_TYPES = {"application/fhir+json", "application/json", "text/json", "json"}
XML_TYPES = {"application/fhir+xml", "application/xml", "text/xml", "xml", "html", "text/html"}
PATCH_TYPE = "application/json-patch+json"
FORM_TYPE = "application/x-www-form-urlencoded"


def media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def response_type(accept: str | None, format_param: str | None) -> str:
    """The JSON media type to answer with; 406 when the client accepts only XML (or nothing we make)."""
    if format_param is not None:
        wanted = media_type(format_param)
        if wanted in JSON_TYPES:
            return "application/json" if wanted == "application/json" else "application/fhir+json"
        raise _not_acceptable(format_param)
    if not accept:
        return "application/fhir+json"
    offered = [media_type(part) for part in accept.split(",")]
    for kind in offered:
        if kind in ("application/fhir+json", "*/*", "application/*", ""):
            return "application/fhir+json"
        if kind in ("application/json", "text/json"):
            return "application/json"
    raise _not_acceptable(accept)


def _not_acceptable(asked: str) -> FhirError:
    return FhirError.of(
        406,
        "not-supported",
        f"ketnoi answers in FHIR JSON only (application/fhir+json); '{asked[:80]}' is not available",
        f"ketnoi chỉ trả lời bằng FHIR JSON (application/fhir+json); không có định dạng '{asked[:80]}'",
    )


# Operations whose body is a file in an XML format of its own, not FHIR XML: the claims XML envelope.
RAW_XML_PATHS = frozenset({"$import-xml130"})
RAW_XML = "raw-xml"


def xml_binary(raw: bytes) -> dict[str, str]:
    """An XML file body as a Binary, the form an operation takes a file in."""
    return {"resourceType": "Binary", "contentType": "application/xml", "data": base64.b64encode(raw).decode("ascii")}


def check_body_type(content_type: str | None, method: str, path: str) -> str:
    """Validate the request's Content-Type; returns the bare media type."""
    kind = media_type(content_type)
    if kind in ("", *JSON_TYPES):
        return kind or "application/fhir+json"
    if kind == PATCH_TYPE and method == "PATCH":
        return kind
    if kind == FORM_TYPE and method == "POST" and path.rstrip("/").endswith("_search"):
        return kind
    if kind in ("application/xml", "text/xml") and method == "POST" and path.rstrip("/") in RAW_XML_PATHS:
        return RAW_XML
    if kind in XML_TYPES:
        raise FhirError.of(
            415,
            "not-supported",
            "FHIR XML is not supported; send the resource as JSON with Content-Type application/fhir+json",
            "Không hỗ trợ FHIR XML; hãy gửi tài nguyên dạng JSON với Content-Type application/fhir+json",
        )
    raise FhirError.of(
        415,
        "not-supported",
        f"Unsupported Content-Type '{kind[:80]}'; use application/fhir+json",
        f"Không hỗ trợ Content-Type '{kind[:80]}'; hãy dùng application/fhir+json",
    )


def too_large(limit: int) -> FhirError:
    return FhirError.of(
        413,
        "too-costly",
        f"The request body is larger than the limit of {limit} bytes",
        f"Nội dung yêu cầu vượt quá giới hạn {limit} byte",
    )


def parse_json(body: bytes, max_depth: int) -> Any:
    """Parse JSON, rejecting malformed text and nesting deeper than ``max_depth`` (400)."""
    try:
        # orjson refuses nesting past 1024 levels itself, so parsing cannot blow the stack.
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(
            f"The body is not valid JSON: {exc}", f"Nội dung không phải JSON hợp lệ: {exc}", code="structure"
        ) from None
    # Nesting depth can never exceed the number of opening brackets: most bodies skip the walk.
    if body.count(b"{") + body.count(b"[") > max_depth and _depth_exceeds(value, max_depth):
        raise bad_request(
            f"The JSON is nested deeper than {max_depth} levels", f"JSON lồng sâu quá {max_depth} cấp", code="structure"
        )
    return value


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    """Iterative walk of the parsed containers (no recursion), stopping at the first too-deep one."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def form_params(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise bad_request("The form body is not UTF-8", "Nội dung biểu mẫu không phải UTF-8") from None
