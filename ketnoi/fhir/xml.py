"""Read FHIR R4 XML into the FHIR JSON form ketnoi works with (http://hl7.org/fhir/R4/xml.html, json.html).

``read_xml`` turns one resource document into the dict ``orjson.loads`` would give for the same
resource in JSON. The walk is driven by the R4 StructureDefinitions packaged in
``ketnoi.fhir.definitions``: for every type and backbone path a table of the XML element names
allowed there, built once per type and cached, says what each child is (primitive, complex type,
backbone, nested resource, XHTML) and whether JSON makes it an array (max ``*`` or > 1).

Rules applied:
- every element is in the ``http://hl7.org/fhir`` namespace, except ``Narrative.div`` (XHTML);
- a primitive is ``<x value="…"/>``: boolean → bool, integer/positiveInt/unsignedInt → int, decimal
  → see below, every other type → str; its ``id`` attribute and ``extension`` children go into the
  ``_x`` shadow object (for repeating primitives, two arrays aligned with ``null``);
- ``Element.id`` and ``Extension.url`` are attributes (``representation: xmlAttr``), ``Resource.id``
  is an element; choice elements keep their typed name (``valueQuantity``) in both syntaxes;
- ``contained``, ``Bundle.entry.resource``, ``Parameters.parameter.resource`` (any element of type
  Resource) wrap exactly one resource element; ``contentReference`` elements reuse another path;
- ``Narrative.div`` is kept as its serialized XHTML with the namespace declaration;
- anything not in the definitions (element, attribute, text, an empty element) raises
  ``FhirXmlError`` naming its path.

Decimals: JSON numbers on ketnoi's JSON path are Python int/float (orjson), and a decimal's digits
carry its precision (``1.50`` ≠ ``1.5`` for search). An integer-looking decimal becomes an int (within
64 bits, what orjson writes), any other a float when orjson writes that float back with exactly the
source digits (``36.6``, ``0.001``, ``1.0``, ``1e-7``); a decimal whose digits a float cannot keep
(``1.50``, more than 17 significant digits, ``1e3``) is refused with an error rather than silently
rounded or reformatted. Integer types must be 32-bit, as R4 defines them.

Parsing is defensive: DTDs and entity declarations are refused (defusedxml when installed, else a
check for ``<!DOCTYPE``/``<!ENTITY`` before the standard library parser sees the text), so no
entity is ever expanded and nothing external is fetched.
"""

from __future__ import annotations

import importlib
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from types import ModuleType
from typing import Any
from xml.sax.saxutils import escape

import orjson

from ketnoi.fhir.definitions import element_type_code, load, resource_types, structure_definitions

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
_XML_NS = "http://www.w3.org/XML/1998/namespace"
# Every IG template (and the HL7 examples) carries xsi:schemaLocation on the root element for
# editors; it is no FHIR content, and the reference validator ignores it there.
_SCHEMA_LOCATION = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"

_INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]{0,18})")
_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt"})


def _defused() -> ModuleType | None:
    """defusedxml's ElementTree when installed (imported by name: it ships without type stubs)."""
    try:
        return importlib.import_module("defusedxml.ElementTree")
    except ImportError:
        return None


_DEFUSED: ModuleType | None = _defused()


class FhirXmlError(ValueError):
    """A document that is not FHIR R4 XML; ``path`` locates the problem (FHIRPath-like)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def read_xml(text: str | bytes) -> dict[str, Any]:
    """The FHIR JSON form (as orjson would parse it) of one FHIR R4 XML resource document."""
    root = _parse(text)
    namespace, name = _split(root.tag)
    if namespace != FHIR_NS:
        raise FhirXmlError(name, f"the root element must be in the {FHIR_NS} namespace, not {namespace or 'none'}")
    return _read_resource(root, "", allow_schema_location=True)


# --- parsing -------------------------------------------------------------------------------------


def _parse(text: str | bytes) -> ET.Element:
    if isinstance(text, bytes):
        try:
            # FHIR XML is always UTF-8 (http://hl7.org/fhir/R4/xml.html); decoding here also makes the
            # DOCTYPE check below independent of the declared encoding.
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FhirXmlError("", f"FHIR XML must be UTF-8: {exc}") from exc
    try:
        if _DEFUSED is not None:
            root: ET.Element = _DEFUSED.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
            return root
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise FhirXmlError("", "DTDs and entity declarations are not allowed in FHIR XML")
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise FhirXmlError("", f"not well-formed XML: {exc}") from exc
    except FhirXmlError:
        raise
    except ValueError as exc:  # defusedxml's DTDForbidden / EntitiesForbidden / ExternalReferenceForbidden
        raise FhirXmlError("", f"DTDs and entity declarations are not allowed in FHIR XML ({exc})") from exc


def _split(tag: str) -> tuple[str, str]:
    """(namespace, local name) of an ElementTree tag or attribute key."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


# --- element tables ------------------------------------------------------------------------------


class _Kind(Enum):
    PRIMITIVE = "primitive"
    COMPLEX = "complex"
    BACKBONE = "backbone"
    RESOURCE = "resource"
    XHTML = "xhtml"


@dataclass(frozen=True, slots=True)
class _Elem:
    """One child element (or attribute) allowed at a path; the XML name is also the JSON name."""

    name: str
    kind: _Kind
    type_code: str  # the FHIR type; for BACKBONE the definition path of its table
    is_array: bool
    order: int  # position in the snapshot: JSON properties are written in definition order
    attribute: bool = False


@dataclass(slots=True)
class _Table:
    """The children allowed in the element at one definition path of one type."""

    owner: str  # the StructureDefinition it comes from, to find sibling backbone tables
    path: str
    elements: dict[str, _Elem] = field(default_factory=dict)


@cache
def _primitive_types() -> frozenset[str]:
    return frozenset(name for name, sd in structure_definitions().items() if sd.get("kind") == "primitive-type")


@cache
def _constraint_bases() -> dict[str, str]:
    """SimpleQuantity/MoneyQuantity → Quantity: a constrained type has the XML shape of its base."""
    out: dict[str, str] = {}
    for entry in load("profiles-types").get("entry", ()):
        sd = entry.get("resource", {})
        if sd.get("resourceType") == "StructureDefinition" and sd.get("derivation") == "constraint":
            out[sd["id"]] = sd["type"]
    return out


def _kind(code: str) -> _Kind:
    if code == "xhtml":
        return _Kind.XHTML
    if code in _primitive_types():
        return _Kind.PRIMITIVE
    return _Kind.RESOURCE if code == "Resource" else _Kind.COMPLEX


def _elems(definition: dict[str, Any], has_children: bool, order: int) -> list[_Elem]:
    """The XML names of one snapshot element: one per type for a choice ``value[x]``."""
    path: str = definition["path"]
    name = path.rpartition(".")[2]
    is_array = definition.get("max", "1") == "*" or int(definition.get("max", "1")) > 1
    attribute = "xmlAttr" in definition.get("representation", ())
    ref = definition.get("contentReference")
    if ref is not None:
        return [_Elem(name, _Kind.BACKBONE, ref.partition("#")[2], is_array, order)]
    if has_children:
        return [_Elem(name, _Kind.BACKBONE, path, is_array, order)]
    types = definition["type"]
    if not name.endswith("[x]"):
        code = element_type_code(types[0])
        return [_Elem(name, _kind(code), code, is_array, order, attribute)]
    base = name[:-3]
    return [
        _Elem(base + code[0].upper() + code[1:], _kind(code), code, is_array, order)
        for code in (element_type_code(t) for t in types)
    ]


@cache
def _tables(type_name: str) -> dict[str, _Table]:
    """Every table of one resource or data type, keyed by definition path, built on first use."""
    sd = structure_definitions()[type_name]
    snapshot = [e for e in sd["snapshot"]["element"] if ":" not in e["id"]]
    children: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for order, definition in enumerate(snapshot[1:]):
        children[definition["path"].rpartition(".")[0]].append((order, definition))
    root = snapshot[0]["path"]
    tables = {path: _Table(type_name, path) for path in [root, *children]}
    for path, definitions in children.items():
        for order, definition in definitions:
            for elem in _elems(definition, definition["path"] in children, order):
                tables[path].elements[elem.name] = elem
    return tables


def _type_table(code: str) -> _Table:
    name = code if code in structure_definitions() else _constraint_bases()[code]
    return _tables(name)[name]


def _child_table(parent: _Table, elem: _Elem) -> _Table:
    if elem.kind is _Kind.BACKBONE:
        return _tables(parent.owner)[elem.type_code]
    return _type_table(elem.type_code)


# --- values --------------------------------------------------------------------------------------


def _parse_decimal(text: str, path: str) -> int | float:
    if not _DECIMAL.fullmatch(text):
        raise FhirXmlError(path, f"invalid decimal '{text}'")
    if "." not in text and "e" not in text.lower():
        if len(text) > 20 or int(text) not in _INT64:
            raise FhirXmlError(path, f"decimal '{text}' is beyond the 64-bit integers a JSON number can carry here")
        return int(text)
    value = float(text)
    # orjson writes the shortest repr of a float: keep the float only if those are the source digits.
    if orjson.dumps(value).decode() != text:
        raise FhirXmlError(
            path, f"decimal '{text}' cannot be kept with its exact digits as a JSON number (ketnoi stores floats)"
        )
    return value


def _parse_value(text: str, type_code: str, path: str) -> Any:
    """The JSON value of a primitive's ``value`` attribute."""
    if not text.strip():
        raise FhirXmlError(path, "an empty value attribute is not allowed (omit the element instead)")
    if type_code == "boolean":
        if text not in ("true", "false"):
            raise FhirXmlError(path, f"invalid boolean '{text}' (expected true or false)")
        return text == "true"
    if type_code in _INTEGER_TYPES:
        # R4 integers are 32-bit; the regex also keeps int() away from absurdly long digit strings.
        if not _INTEGER.fullmatch(text) or int(text) not in _INT32:
            raise FhirXmlError(path, f"invalid {type_code} '{text}' (a 32-bit whole number)")
        return int(text)
    if type_code == "decimal":
        return _parse_decimal(text, path)
    return text


def _no_text(text: str | None, path: str) -> None:
    if text is not None and text.strip():
        raise FhirXmlError(path, f"text content is not allowed in FHIR elements: {text.strip()[:40]!r}")


# --- the walk ------------------------------------------------------------------------------------


class _Object:
    """The JSON properties of one element as they are read, then put in definition order."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.shadows: dict[str, Any] = {}
        self.elems: dict[str, _Elem] = {}

    def add(self, elem: _Elem, value: Any, shadow: dict[str, Any] | None, path: str) -> None:
        name = elem.name
        if not elem.is_array:
            if name in self.elems:
                raise FhirXmlError(path, f"'{name}' appears more than once but does not repeat (max 1)")
            self.elems[name] = elem
            if value is not None:
                self.values[name] = value
            if shadow is not None:
                self.shadows[name] = shadow
            return
        self.elems[name] = elem
        # Repeating primitives: value and shadow arrays stay aligned, null where one side is absent.
        self.values.setdefault(name, []).append(value)
        self.shadows.setdefault(name, []).append(shadow)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, elem in sorted(self.elems.items(), key=lambda item: item[1].order):
            if elem.is_array:
                value, shadow = _unless_all_null(self.values[name]), _unless_all_null(self.shadows[name])
            else:
                value, shadow = self.values.get(name), self.shadows.get(name)
            if value is not None:
                out[name] = value
            if shadow is not None:
                out["_" + name] = shadow
        return out


def _unless_all_null(items: list[Any]) -> list[Any] | None:
    """An aligned array, or None when it holds only nulls (no values, or no ids/extensions)."""
    return items if any(item is not None for item in items) else None


def _read_resource(node: ET.Element, path: str, *, allow_schema_location: bool = False) -> dict[str, Any]:
    namespace, name = _split(node.tag)
    if namespace != FHIR_NS or name not in resource_types():
        raise FhirXmlError(path or name, f"'{name}' is not an R4 resource type")
    ignored = frozenset({_SCHEMA_LOCATION}) if allow_schema_location else frozenset()
    body = _read_object(node, _type_table(name), path or name, ignored)
    return {"resourceType": name, **body}


def _read_object(node: ET.Element, table: _Table, path: str, ignored: frozenset[str] = frozenset()) -> dict[str, Any]:
    """An element holding children: a resource, a complex data type or a backbone element."""
    result = _Object()
    for key, text in node.attrib.items():
        if key in ignored:
            continue
        elem = table.elements.get(key)
        if elem is None or not elem.attribute:
            raise FhirXmlError(f"{path}@{key}", "unknown attribute")
        result.add(elem, _parse_value(text, elem.type_code, f"{path}.{key}"), None, path)
    _no_text(node.text, path)
    counts: dict[str, int] = defaultdict(int)
    for child in node:
        namespace, name = _split(child.tag)
        elem = table.elements.get(name)
        if elem is None or elem.attribute:
            raise FhirXmlError(f"{path}.{name}", f"unknown element '{name}' in {table.path}")
        expected = XHTML_NS if elem.kind is _Kind.XHTML else FHIR_NS
        if namespace != expected:
            raise FhirXmlError(f"{path}.{name}", f"element must be in the {expected} namespace")
        child_path = f"{path}.{name}[{counts[name]}]" if elem.is_array else f"{path}.{name}"
        counts[name] += 1
        value, shadow = _read_child(child, table, elem, child_path)
        result.add(elem, value, shadow, child_path)
        _no_text(child.tail, path)
    if not result.elems:
        raise FhirXmlError(path, "an element needs a value, an id, extensions or children")
    return result.to_json()


def _read_child(node: ET.Element, parent: _Table, elem: _Elem, path: str) -> tuple[Any, dict[str, Any] | None]:
    """(JSON value, ``_x`` shadow object) of one child element."""
    kind = elem.kind
    if kind is _Kind.PRIMITIVE:
        return _read_primitive(node, elem.type_code, path)
    if kind is _Kind.RESOURCE:
        return _read_nested(node, path), None
    if kind is _Kind.XHTML:
        return _read_div(node, path), None
    return _read_object(node, _child_table(parent, elem), path), None


def _read_primitive(node: ET.Element, type_code: str, path: str) -> tuple[Any, dict[str, Any] | None]:
    value: Any = None
    shadow: dict[str, Any] = {}
    for key, text in node.attrib.items():
        if key == "value":
            value = _parse_value(text, type_code, path)
        elif key == "id":
            shadow["id"] = text
        else:
            raise FhirXmlError(f"{path}@{key}", "unknown attribute (a primitive has only id and value)")
    _no_text(node.text, path)
    extensions = []
    for index, child in enumerate(node):
        namespace, name = _split(child.tag)
        if namespace != FHIR_NS or name != "extension":
            raise FhirXmlError(f"{path}.{name}", "a primitive element may only hold extension children")
        extensions.append(_read_object(child, _type_table("Extension"), f"{path}.extension[{index}]"))
        _no_text(child.tail, path)
    if extensions:
        shadow["extension"] = extensions
    if value is None and not shadow:
        raise FhirXmlError(path, "a primitive element needs a value attribute, an id or extensions")
    return value, shadow or None


def _read_nested(node: ET.Element, path: str) -> dict[str, Any]:
    """``contained``, ``Bundle.entry.resource``...: a wrapper around exactly one resource element."""
    if node.attrib:
        raise FhirXmlError(f"{path}@{next(iter(node.attrib))}", "unknown attribute")
    _no_text(node.text, path)
    children = list(node)
    if len(children) != 1:
        raise FhirXmlError(path, f"must hold exactly one resource element, found {len(children)}")
    _no_text(children[0].tail, path)
    return _read_resource(children[0], path)


def _read_div(node: ET.Element, path: str) -> str:
    if _split(node.tag) != (XHTML_NS, "div"):
        raise FhirXmlError(path, "the narrative must be an XHTML <div> element")
    return _xhtml(node, path, root=True)


def _xhtml(node: ET.Element, path: str, *, root: bool = False) -> str:
    """Serialize XHTML with the namespace declared once on the div (ElementTree's own serializer
    would invent ``html:`` prefixes). Foreign namespaces are refused: narrative is plain XHTML."""
    namespace, name = _split(node.tag)
    if namespace != XHTML_NS:
        raise FhirXmlError(path, f"only XHTML elements are allowed in the narrative, found '{node.tag}'")
    parts = [f"<{name}"]
    if root:
        parts.append(f' xmlns="{XHTML_NS}"')
    for key, value in node.attrib.items():
        attr_ns, attr = _split(key)
        if attr_ns not in ("", _XML_NS):
            raise FhirXmlError(path, f"attribute '{key}' is not allowed in the narrative")
        prefix = "xml:" if attr_ns else ""
        parts.append(f' {prefix}{attr}="{escape(value, {chr(34): "&quot;"})}"')
    inner = escape(node.text or "") + "".join(_xhtml(child, path) + escape(child.tail or "") for child in node)
    parts.append(f">{inner}</{name}>" if inner else "/>")
    return "".join(parts)
