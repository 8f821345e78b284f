"""Turn one typed FHIR value into index rows, per search parameter type.

A *writer* receives ``(code, value, fhir_type, rows)``: the parameter code, the JSON value an
expression selected, its FHIR type when known (``"CodeableConcept"``, ``"dateTime"``; ``None`` when
the value came from an expression whose type could not be determined, in which case the JSON shape
decides) and the :class:`IndexRows` to append to. Writers never raise on odd data: a value that
cannot be normalised (a garbage date in an extension, a Quantity without a value) yields no row.

Mapping rules (http://hl7.org/fhir/R4/search.html):

- string: plain strings; HumanName → family, given, prefix, suffix, text; Address → line, city,
  district, state, postalCode, country, text. One :class:`StringRow` per part.
- token: Coding → (system, code, folded display); CodeableConcept → one row per coding plus a
  ``(None, None, folded text)`` row for its text; Identifier → (system, value, folded type.text);
  ContactPoint → (ContactPoint.system, value); an Identifier with ``type.coding`` also gets rows
  ``<code>:of-type`` = (type system, "type-code|value") for the ``:of-type`` modifier;
  boolean → code ``"true"``/``"false"``; code, string,
  uri and id primitives → code only.
- date: date/dateTime/instant; Period (open ends → DATE_MIN/DATE_MAX); Timing → one row spanning all
  ``event`` values and ``repeat.boundsPeriod`` (the spec: only the outer limits of a schedule matter).
- number: integer/decimal with implicit precision.
- quantity: Quantity (and Age, Duration, Count, Distance, SimpleQuantity), Money (system
  ``urn:iso:std:iso:4217``, code = currency), Range (low of ``low``, high of ``high``). A comparator
  opens the range on its side (``<5`` → [-inf, 5.5]). ``code`` falls back to ``unit`` when absent.
  UCUM values whose unit is in the conversion table (:func:`~ketnoi.search.normalize.ucum_to_canonical`)
  get a second row under ``<code>:canonical`` in the canonical unit, so both "5 mg" and "0.005 g"
  searches match; unit-less searches use only the row as written. SampledData is not indexed.
- reference: see :func:`parse_reference`. ``Reference.identifier`` becomes a :class:`TokenRow` with
  param ``"<code>:identifier"``. Contained references (``"#x"``) produce no row: they are not
  addressable outside the resource. An inline resource (``Bundle.entry[0].resource``) is indexed by
  its type and id.
- uri: the string as written; for a versioned canonical (``url|1.0``) also the bare url, so an
  unversioned search still finds it. This is how ``_profile`` (declared ``uri`` in R4) is indexed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ketnoi.fhir import definitions
from ketnoi.search.index import (
    DATE_MAX,
    DATE_MIN,
    DateRow,
    IndexRows,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from ketnoi.search.normalize import UCUM, date_range, fold, number_range, ucum_to_canonical

Writer = Callable[[str, Any, "str | None", IndexRows], None]

ISO4217 = "urn:iso:std:iso:4217"
_INF = float("inf")
_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_QUANTITY_TYPES = frozenset({"Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity"})


# -------------------------------------------------------------------------------------------- string


def write_string(code: str, value: Any, fhir_type: str | None, rows: IndexRows) -> None:
    if type(value) is str:
        _string_row(code, value, rows)
    elif type(value) is dict:
        if fhir_type == "HumanName":
            parts: tuple[str, ...] = _NAME_PARTS
        elif fhir_type == "Address":
            parts = _ADDRESS_PARTS
        elif fhir_type is None or "." in fhir_type:
            # Untyped (fhirpathpy union) or backbone value: take whichever name/address parts exist.
            parts = _ADDRESS_PARTS + _NAME_PARTS[:4]
        else:
            return
        for part in parts:
            item = value.get(part)
            if type(item) is str:
                _string_row(code, item, rows)
            elif type(item) is list:
                for sub in item:
                    if type(sub) is str:
                        _string_row(code, sub, rows)


def _string_row(code: str, text: str, rows: IndexRows) -> None:
    norm = fold(text)
    if norm:
        rows.string.append(StringRow(code, norm, text))


# --------------------------------------------------------------------------------------------- token


def write_token(code: str, value: Any, fhir_type: str | None, rows: IndexRows) -> None:
    kind = type(value)
    if kind is bool:
        rows.token.append(TokenRow(code, None, "true" if value else "false", None))
    elif kind is str:
        if value:
            rows.token.append(TokenRow(code, None, value, None))
    elif kind is dict:
        if fhir_type is None or "." in fhir_type:
            fhir_type = _token_shape(value)
        handler = _TOKEN_DICT.get(fhir_type)  # type: ignore[arg-type]
        if handler is not None:
            handler(code, value, rows)


def _token_shape(value: dict[str, Any]) -> str | None:
    if "coding" in value:
        return "CodeableConcept"
    if "code" in value or "display" in value:
        return "Coding"
    if "value" in value and value.get("system") in _CONTACT_SYSTEMS:
        return "ContactPoint"
    if "value" in value or "system" in value:
        return "Identifier"
    if "text" in value:
        return "CodeableConcept"
    return None


_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def _coding(code: str, value: dict[str, Any], rows: IndexRows) -> None:
    system, token, display = value.get("system"), value.get("code"), value.get("display")
    text = fold(display) if type(display) is str else None
    if system is not None or token is not None or text:
        rows.token.append(TokenRow(code, _str(system), _str(token), text or None))


def _codeable_concept(code: str, value: dict[str, Any], rows: IndexRows) -> None:
    codings = value.get("coding")
    if type(codings) is list:
        for coding in codings:
            if type(coding) is dict:
                _coding(code, coding, rows)
    text = value.get("text")
    if type(text) is str and (norm := fold(text)):
        rows.token.append(TokenRow(code, None, None, norm))


def _identifier(code: str, value: dict[str, Any], rows: IndexRows) -> None:
    system, token = _str(value.get("system")), _str(value.get("value"))
    if system is None and token is None:
        return
    id_type = value.get("type")
    text = id_type.get("text") if type(id_type) is dict else None
    rows.token.append(TokenRow(code, system, token, fold(text) or None if type(text) is str else None))
    if token is not None and type(id_type) is dict and type(codings := id_type.get("coding")) is list:
        # identifier:of-type=type-system|type-code|value → row (type system, "type-code|value").
        for coding in codings:
            if type(coding) is dict and (type_code := _str(coding.get("code"))) is not None:
                rows.token.append(TokenRow(code + ":of-type", _str(coding.get("system")), f"{type_code}|{token}", None))


def _contact_point(code: str, value: dict[str, Any], rows: IndexRows) -> None:
    token = _str(value.get("value"))
    if token is not None:
        rows.token.append(TokenRow(code, _str(value.get("system")), token, None))


_TOKEN_DICT: dict[str, Callable[[str, dict[str, Any], IndexRows], None]] = {
    "Coding": _coding,
    "CodeableConcept": _codeable_concept,
    "Identifier": _identifier,
    "ContactPoint": _contact_point,
}


def _num(value: Any) -> int | float | None:
    """A JSON number (not a boolean), else ``None``."""
    return value if type(value) in (int, float) else None


def _str(value: Any) -> str | None:
    return value if type(value) is str and value else None


# ---------------------------------------------------------------------------------------------- date


def write_date(code: str, value: Any, fhir_type: str | None, rows: IndexRows) -> None:
    if type(value) is str:
        if fhir_type in (None, "date", "dateTime", "instant") or (fhir_type and "." in fhir_type):
            try:
                low, high = date_range(value)
            except ValueError:
                return
            rows.date.append(DateRow(code, low, high))
    elif type(value) is dict:
        if fhir_type == "Timing" or (fhir_type is None and ("event" in value or "repeat" in value)):
            span = _timing_span(value)
        else:
            span = _period_span(value)
        if span is not None:
            rows.date.append(DateRow(code, span[0], span[1]))


def _period_span(value: dict[str, Any]) -> tuple[float, float] | None:
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return None
    try:
        low = date_range(start)[0] if start is not None else DATE_MIN
        high = date_range(end)[1] if end is not None else DATE_MAX
    except ValueError:
        return None
    return low, high


def _timing_span(value: dict[str, Any]) -> tuple[float, float] | None:
    spans: list[tuple[float, float]] = []
    events = value.get("event")
    if type(events) is list:
        for event in events:
            try:
                spans.append(date_range(event))
            except ValueError:
                continue
    repeat = value.get("repeat")
    if type(repeat) is dict and type(bounds := repeat.get("boundsPeriod")) is dict:
        span = _period_span(bounds)
        if span is not None:
            spans.append(span)
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


# -------------------------------------------------------------------------------------------- number


def write_number(code: str, value: Any, fhir_type: str | None, rows: IndexRows) -> None:
    if type(value) is dict and "value" in value:
        value = value["value"]  # a Quantity-typed element searched as a plain number
    if type(value) in (int, float):
        try:
            rows.number.append(NumberRow(code, *number_range(value)))
        except ValueError:
            return


# ------------------------------------------------------------------------------------------ quantity


def write_quantity(code: str, value: Any, fhir_type: str | None, rows: IndexRows) -> None:
    if type(value) in (int, float):
        try:
            rows.quantity.append(QuantityRow(code, None, None, *number_range(value)))
        except ValueError:
            return
    elif type(value) is dict:
        if fhir_type == "Range" or (fhir_type is None and ("low" in value or "high" in value)):
            _range(code, value, rows)
        elif fhir_type == "Money" or (fhir_type is None and "currency" in value):
            _money(code, value, rows)
        elif fhir_type is None or fhir_type in _QUANTITY_TYPES or "." in fhir_type:
            _quantity(code, value, rows)


def _quantity(code: str, value: dict[str, Any], rows: IndexRows) -> None:
    number = _num(value.get("value"))
    if number is None:
        return
    try:
        val, low, high = number_range(number)
    except ValueError:
        return
    comparator = value.get("comparator")
    if comparator in ("<", "<="):
        low = -_INF
    elif comparator in (">", ">="):
        high = _INF
    system = _str(value.get("system"))
    unit = _str(value.get("code")) or _str(value.get("unit"))
    rows.quantity.append(QuantityRow(code, system, unit, val, low, high))
    if system == UCUM and unit is not None:
        canonical = ucum_to_canonical(unit, number)
        if canonical is not None:
            # A separate parameter name keeps unit-less searches on the value as written.
            c_unit, c_val, c_low, c_high = canonical
            rows.quantity.append(
                QuantityRow(
                    f"{code}:canonical",
                    UCUM,
                    c_unit,
                    c_val,
                    -_INF if low == -_INF else c_low,
                    _INF if high == _INF else c_high,
                )
            )


def _money(code: str, value: dict[str, Any], rows: IndexRows) -> None:
    number = _num(value.get("value"))
    if number is None:
        return
    try:
        val, low, high = number_range(number)
    except ValueError:
        return
    currency = _str(value.get("currency"))
    rows.quantity.append(QuantityRow(code, ISO4217 if currency else None, currency, val, low, high))


def _range(code: str, value: dict[str, Any], rows: IndexRows) -> None:
    low_q, high_q = value.get("low"), value.get("high")
    low_n = _num(low_q.get("value")) if type(low_q) is dict else None
    high_n = _num(high_q.get("value")) if type(high_q) is dict else None
    try:
        low_r = number_range(low_n) if low_n is not None else None
        high_r = number_range(high_n) if high_n is not None else None
    except ValueError:
        return
    if low_r is None and high_r is None:
        return
    # The row's value is the bound that is known (low first): Range has no single value.
    anchor_q = low_q if low_r is not None else high_q
    anchor = low_r or high_r
    assert anchor is not None and type(anchor_q) is dict
    system = _str(anchor_q.get("system"))
    unit = _str(anchor_q.get("code")) or _str(anchor_q.get("unit"))
    rows.quantity.append(
        QuantityRow(
            code,
            system,
            unit,
            anchor[0],
            low_r[1] if low_r is not None else -_INF,
            high_r[2] if high_r is not None else _INF,
        )
    )


# ----------------------------------------------------------------------------------------- reference

# [base/]Type/id[/_history/vid]; ids and version ids are [A-Za-z0-9\-\.]{1,64} in FHIR.
_REF_TAIL = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<vid>[A-Za-z0-9\-.]{1,64}))?$"
)


@lru_cache(maxsize=1)
def _resource_types() -> frozenset[str]:
    return definitions.resource_types()


@lru_cache(maxsize=16384)
def parse_reference(ref: str) -> tuple[str | None, str | None, str | None, str | None] | None:
    """``(target_type, target_id, url, version)`` of a reference string, or ``None`` (nothing to index).

    - ``"Patient/123"`` / ``"Patient/123/_history/2"`` → type, id (and version); url ``None``.
    - ``"https://x/fhir/Patient/123/_history/2"`` → type, id, url without the history part, version.
    - ``"http://x/StructureDefinition/y|1.0"`` (canonical) → url and version (type/id from the tail).
    - ``"urn:uuid:…"`` or any other absolute URL → url only.
    - ``"#contained"``, conditional references and relative strings of no known shape → ``None``.
    """
    if not ref or ref[0] == "#":
        return None
    if ":" in ref.split("/", 1)[0]:  # a scheme: absolute URL, URN or canonical
        url, _, version = ref.partition("|")
        match = _REF_TAIL.search(url)
        if match is None or match["type"] not in _resource_types():
            return None, None, url, version or None
        vid = match["vid"]
        if vid is not None:
            url = url[: match.start("vid") - len("/_history/")]
        return match["type"], match["id"], url, vid or version or None
    match = _REF_TAIL.fullmatch(ref) if ref[0] != "/" else None
    if match is None or match.start() != 0 or match["type"] not in _resource_types():
        return None
    return match["type"], match["id"], None, match["vid"]


def reference_type(value: Any) -> str | None:
    """Target type of a Reference for ``resolve() is T``: taken from the reference itself, no lookup."""
    if type(value) is dict:
        ref = value.get("reference")
        if type(ref) is str:
            parsed = parse_reference(ref)
            if parsed is not None:
                return parsed[0]
        if "resourceType" in value:
            return _str(value.get("resourceType"))
    return None


def write_reference(code: str, value: Any, fhir_type: str | None, rows: IndexRows) -> None:
    if type(value) is str:  # canonical, uri or url element
        parsed = parse_reference(value)
        if parsed is not None:
            rows.reference.append(ReferenceRow(code, *parsed))
    elif type(value) is dict:
        if "resourceType" in value:  # an inline resource (Bundle.entry[0].resource)
            rtype, rid = _str(value.get("resourceType")), _str(value.get("id"))
            if rtype is not None:
                rows.reference.append(ReferenceRow(code, rtype, rid, None, None))
            return
        ref = value.get("reference")
        if type(ref) is str and (parsed := parse_reference(ref)) is not None:
            rows.reference.append(ReferenceRow(code, *parsed))
        identifier = value.get("identifier")
        if type(identifier) is dict:
            _identifier(code + ":identifier", identifier, rows)


# ----------------------------------------------------------------------------------------------- uri


def write_uri(code: str, value: Any, fhir_type: str | None, rows: IndexRows) -> None:
    if type(value) is str and value:
        rows.uri.append(UriRow(code, value))
        if fhir_type in ("canonical", None) and "|" in value:
            rows.uri.append(UriRow(code, value.partition("|")[0]))


WRITERS: dict[str, Writer] = {
    "string": write_string,
    "token": write_token,
    "date": write_date,
    "number": write_number,
    "quantity": write_quantity,
    "reference": write_reference,
    "uri": write_uri,
}
