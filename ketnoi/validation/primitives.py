"""Value rules of the FHIR R4 primitive data types in their JSON form.

http://hl7.org/fhir/R4/datatypes.html#primitive and http://hl7.org/fhir/R4/json.html#primitive:
each primitive has one JSON representation (boolean → true/false, the integer and decimal types → a
JSON number, everything else → a JSON string) and a lexical regex. This module turns each type into a
``PrimitiveRule``: the expected JSON kind plus a checker returning ``None`` (valid) or a ``Problem``
(what is wrong, in English and Vietnamese). Checkers are plain functions so the walker calls them
without any per-value dispatch beyond one attribute read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

# One-megabyte ceiling on strings (datatypes.html#string). Characters are at most 4 UTF-8 bytes, so
# only strings above a quarter of the limit need to be encoded to know their byte size.
MAX_STRING_BYTES = 1024 * 1024
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a primitive value is invalid; ``code`` is the IssueType, ``severity`` error or warning."""

    en: str
    vi: str
    code: str = "value"
    severity: str = "error"


Checker = Callable[[object], "Problem | None"]


# Python types orjson produces for each JSON kind; bool is excluded from numbers on purpose.
_PY_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "boolean": (bool,)}


@dataclass(frozen=True, slots=True)
class PrimitiveRule:
    """JSON kind (``"string"``, ``"number"`` or ``"boolean"``) and value checker of a primitive type."""

    kind: str
    check: Checker
    py_types: tuple[type, ...] = ()  # the Python types of ``kind``, filled in from it

    def __post_init__(self) -> None:
        object.__setattr__(self, "py_types", _PY_TYPES[self.kind])


# The R4 regexes, verbatim from the StructureDefinitions (datatypes.html), anchored by fullmatch.
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TZ = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_MONTH = r"(0[1-9]|1[0-2])"

_FORMATS: dict[str, tuple[re.Pattern[str], str, str]] = {
    "date": (
        re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY})?)?"),
        "expected YYYY, YYYY-MM or YYYY-MM-DD",
        "cần có dạng YYYY, YYYY-MM hoặc YYYY-MM-DD",
    ),
    "dateTime": (
        re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME}{_TZ})?)?)?"),
        "expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz (a time needs a timezone)",
        "cần có dạng YYYY, YYYY-MM, YYYY-MM-DD hoặc YYYY-MM-DDThh:mm:ss+zz:zz (giờ phải kèm múi giờ)",
    ),
    "instant": (
        re.compile(rf"{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_TZ}"),
        "expected YYYY-MM-DDThh:mm:ss(.sss)+zz:zz with seconds and a timezone",
        "cần có dạng YYYY-MM-DDThh:mm:ss(.sss)+zz:zz, có giây và múi giờ",
    ),
    "time": (re.compile(_TIME), "expected hh:mm:ss(.sss)", "cần có dạng hh:mm:ss(.sss)"),
    "id": (
        re.compile(r"[A-Za-z0-9\-\.]{1,64}"),
        "expected 1 to 64 characters among A-Z, a-z, 0-9, '-' and '.'",
        "cần từ 1 đến 64 ký tự trong A-Z, a-z, 0-9, '-' và '.'",
    ),
    "code": (
        re.compile(r"[^\s]+(\s[^\s]+)*"),
        "no leading or trailing whitespace and no runs of whitespace",
        "không được có khoảng trắng ở đầu, cuối hoặc nhiều khoảng trắng liên tiếp",
    ),
    "uri": (re.compile(r"\S*"), "must not contain whitespace", "không được chứa khoảng trắng"),
    "oid": (
        re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+"),
        "expected urn:oid: followed by a dotted OID such as urn:oid:1.2.3",
        "cần có dạng urn:oid: và một OID, ví dụ urn:oid:1.2.3",
    ),
    "uuid": (
        re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "expected urn:uuid: followed by a lower-case UUID",
        "cần có dạng urn:uuid: và một UUID viết thường",
    ),
}
_FORMATS["url"] = _FORMATS["canonical"] = _FORMATS["uri"]

# base64Binary: R4 regex (\s*([0-9a-zA-Z\+/=]){4}\s*)+, i.e. whitespace-separated groups of four.
# Checked without the regex because attachments can be megabytes and the regex backtracks.
_B64_CHARS = re.compile(r"[0-9a-zA-Z+/= \t\r\n]*")
_B64_SPACES = " \t\r\n"
# Control characters other than tab, CR and LF are discouraged in strings (datatypes.html#string).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _shown(value: str) -> str:
    """The value as quoted in a message, cut short so a huge bad value doesn't flood the outcome."""
    return value if len(value) <= 60 else value[:57] + "..."


def _format_checker(type_code: str) -> Checker:
    pattern, en_hint, vi_hint = _FORMATS[type_code]
    fullmatch = pattern.fullmatch

    def check(value: object) -> Problem | None:
        assert isinstance(value, str)  # the walker has checked the JSON kind already
        if fullmatch(value):
            return None
        shown = _shown(value)
        return Problem(
            f"Invalid {type_code} '{shown}': {en_hint}",
            f"Giá trị {type_code} '{shown}' không hợp lệ: {vi_hint}",
        )

    return check


def _check_string(value: object) -> Problem | None:
    """Rules shared by every string-based type: not all whitespace, at most 1 MB, no control chars."""
    assert isinstance(value, str)
    if value.isspace():
        return Problem("String contains only whitespace", "Chuỗi chỉ chứa khoảng trắng")
    if len(value) > MAX_STRING_BYTES // 4 and len(value.encode()) > MAX_STRING_BYTES:
        return Problem("String exceeds the 1 MB limit", "Chuỗi vượt quá giới hạn 1 MB")
    if "\x00" in value:
        # Only discouraged by R4 (SHOULD NOT), but no database text type can hold it (PostgreSQL
        # refuses it) and it has no meaning in health data: refused.
        return Problem(
            "String contains a NUL character (U+0000)",
            "Chuỗi chứa ký tự NUL (U+0000)",
        )
    if _CONTROL.search(value):
        return Problem(
            "String contains control characters (below U+0020 other than tab, CR, LF)",
            "Chuỗi chứa ký tự điều khiển (dưới U+0020, ngoài tab, CR, LF)",
            severity="warning",
        )
    return None


def _check_base64(value: object) -> Problem | None:
    assert isinstance(value, str)
    # One linear scan for the alphabet, then C-speed counts for the whitespace between groups.
    if _B64_CHARS.fullmatch(value):
        spaces = sum(value.count(c) for c in _B64_SPACES)
        if (len(value) - spaces) % 4 == 0:
            return None
    return Problem(
        f"Invalid base64Binary '{_shown(value)}': expected groups of 4 characters among A-Z, a-z, 0-9, "
        "'+', '/' and '='",
        f"Giá trị base64Binary '{_shown(value)}' không hợp lệ: cần các nhóm 4 ký tự trong A-Z, a-z, 0-9, "
        "'+', '/' và '='",
    )


def _check_xhtml(value: object) -> Problem | None:
    assert isinstance(value, str)
    if value.startswith("<div"):
        return None
    return Problem(
        f"Invalid xhtml '{_shown(value)}': narrative must be an XHTML fragment starting with '<div'",
        f"Giá trị xhtml '{_shown(value)}' không hợp lệ: nội dung tường thuật phải là XHTML bắt đầu bằng '<div'",
    )


def _check_boolean(value: object) -> Problem | None:
    return None  # the JSON kind check (true/false) is the whole rule


def _int_checker(type_code: str, low: int) -> Checker:
    low_vi = {_INT32_MIN: "", 0: " và ≥ 0", 1: " và ≥ 1"}[low]
    low_en = {_INT32_MIN: "", 0: " and ≥ 0", 1: " and ≥ 1"}[low]

    def check(value: object) -> Problem | None:
        # orjson yields float for 1.0 / 1e3: an integer type needs the integer lexical form.
        if type(value) is int and low <= value <= _INT32_MAX:
            return None
        return Problem(
            f"Invalid {type_code} {value!r}: must be a whole number within the 32-bit range{low_en}",
            f"Giá trị {type_code} {value!r} không hợp lệ: phải là số nguyên trong phạm vi 32 bit{low_vi}",
        )

    return check


def _check_decimal(value: object) -> Problem | None:
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return None
    return Problem(f"Invalid decimal {value!r}: must be finite", f"Số thập phân {value!r} không hợp lệ")


def _with_string_rules(format_check: Checker) -> Checker:
    def check(value: object) -> Problem | None:
        return format_check(value) or _check_string(value)

    return check


def _build_rules() -> dict[str, PrimitiveRule]:
    rules: dict[str, PrimitiveRule] = {
        "boolean": PrimitiveRule("boolean", _check_boolean),
        "integer": PrimitiveRule("number", _int_checker("integer", _INT32_MIN)),
        "unsignedInt": PrimitiveRule("number", _int_checker("unsignedInt", 0)),
        "positiveInt": PrimitiveRule("number", _int_checker("positiveInt", 1)),
        "decimal": PrimitiveRule("number", _check_decimal),
        "string": PrimitiveRule("string", _check_string),
        "markdown": PrimitiveRule("string", _check_string),
        "base64Binary": PrimitiveRule("string", _check_base64),
        "xhtml": PrimitiveRule("string", _check_xhtml),
    }
    for code in _FORMATS:
        # Only the free-text-capable uri family needs the string rules on top of the regex; the
        # other regexes already exclude whitespace-only and control characters.
        checker = _format_checker(code)
        if code in ("uri", "url", "canonical"):
            checker = _with_string_rules(checker)
        rules[code] = PrimitiveRule("string", checker)
    return rules


RULES: dict[str, PrimitiveRule] = _build_rules()
