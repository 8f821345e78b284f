"""Vietnamese identifiers: one validator, one normaliser and one system URI per identifier.

Covered: CCCD (personal identification number), CMND (old 9-digit identity card), BHYT card number,
social-insurance number (mã số BHXH), facility code (mã cơ sở KCB) and practising-licence numbers.
docs/vn-identifiers.md gives each rule's legal source and the choices made where sources disagree; the
URIs, code tables and message texts are in :mod:`ketnoi.vn.identifier_rules`.

* ``validate_*`` returns a list of :class:`Problem` (empty when the value is fine). It checks the value
  as stored: a value not in canonical form gets a ``*-not-normalized`` problem naming the canonical
  text, and the other checks run on that text, so that one pass lists everything to fix.
* ``normalize_*`` returns the canonical text (separators removed, case folded). It does not validate:
  it raises :class:`IdentifierError` only when no canonical text exists (empty, or characters the
  identifier never has), so that the importer can still key a wrong-length value and report it.
* ``parse_cccd`` / ``parse_bhyt`` split a value into its parts, or return None when it lacks the shape.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from ketnoi.vn.identifier_rules import (
    ALIASES,
    BHXH_SYSTEM,
    BHYT_CATEGORIES,
    BHYT_ISSUERS,
    BHYT_SYSTEM,
    CCCD_SYSTEM,
    CMND_SYSTEM,
    FACILITY_SYSTEM,
    LICENCE_SYSTEM,
    MESSAGES,
    PROVINCES,
    century_start,
    invariants,
)

__all__ = [
    "ALIASES",
    "BHXH_SYSTEM",
    "BHYT_SYSTEM",
    "CCCD_SYSTEM",
    "CMND_SYSTEM",
    "FACILITY_SYSTEM",
    "LICENCE_SYSTEM",
    "RULES",
    "BhytParts",
    "CccdParts",
    "IdentifierError",
    "Problem",
    "Rule",
    "identifier_in",
    "invariants",
    "normalize_bhxh",
    "normalize_bhyt",
    "normalize_cccd",
    "normalize_cmnd",
    "normalize_facility_code",
    "normalize_licence",
    "parse_bhyt",
    "parse_cccd",
    "rule_for",
    "validate_bhxh",
    "validate_bhyt",
    "validate_cccd",
    "validate_cmnd",
    "validate_facility_code",
    "validate_licence",
]


@dataclass(frozen=True)
class Problem:
    code: str  # stable machine code, e.g. "cccd-length"
    en: str
    vi: str


class IdentifierError(ValueError):
    """A value that has no canonical form; ``problems`` says why, in English and Vietnamese."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.en for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Rule:
    kind: str
    system: str
    validate: Callable[..., list[Problem]]
    normalize: Callable[[str], str]


class CccdParts(NamedTuple):
    number: str  # canonical 12 digits
    province_code: str  # digits 1-3, e.g. "001"
    province: str | None  # its name; None when not a known province code
    gender: str  # FHIR administrative gender that digit 4 encodes: "male" or "female"
    birth_year: int  # century from digit 4, plus digits 5-6
    serial: str  # digits 7-12


class BhytParts(NamedTuple):
    number: str  # canonical 15 characters
    category: str  # characters 1-2, e.g. "DN"
    category_name: str | None  # None when not a known category
    level: int  # character 3, the benefit level (0-9 here; validate_bhyt wants 1-5)
    issuer_code: str  # characters 4-5, province of the issuing social-insurance office
    bhxh: str  # characters 6-15, the social-insurance number


class _Kind(NamedTuple):
    """What messages call an identifier, and what it is made of."""

    code: str
    en: str
    vi: str
    alphabet: frozenset[str]
    alphabet_en: str
    alphabet_vi: str


_DIGITS = frozenset("0123456789")
_UPPER_ALNUM = _DIGITS | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Practising-licence numbers seen: "000123/HNO-CCHN", "0012345/BYT-GPHN", a 10-digit health ID; an
# issuer's abbreviation may contain Đ.
_LICENCE_ALPHABET = _UPPER_ALNUM | frozenset("Đ/-._")

_CCCD = _Kind("cccd", "CCCD", "Số CCCD", _DIGITS, "digits", "chữ số")
_CMND = _Kind("cmnd", "CMND", "Số CMND", _DIGITS, "digits", "chữ số")
_BHYT = _Kind("bhyt", "BHYT card", "Mã thẻ BHYT", _UPPER_ALNUM, "letters and digits", "chữ cái và chữ số")
_BHXH = _Kind("bhxh", "Social-insurance number", "Mã số BHXH", _DIGITS, "digits", "chữ số")
_FACILITY = _Kind("facility", "Facility code", "Mã cơ sở KCB", _DIGITS, "digits", "chữ số")
_LICENCE = _Kind(
    "licence",
    "Practising licence",
    "Số chứng chỉ hành nghề",
    _LICENCE_ALPHABET,
    "letters, digits and / - . _",
    "chữ cái, chữ số và / - . _",
)


def _problem(kind: _Kind, suffix: str, v: str, **fields: object) -> Problem:
    """The catalogue's message for ``<kind>-<suffix>`` (or the generic ``*-<suffix>``), filled in."""
    code = f"{kind.code}-{suffix}"
    en, vi = MESSAGES.get(code) or MESSAGES[f"*-{suffix}"]
    values = {"v": v, "en_name": kind.en, "vi_name": kind.vi, **fields}
    return Problem(code, en.format(**values), vi.format(**values))


# Spaces, dots and dashes are how people group digits on paper ("001 099 012345", "HS 4 01 ...").
_SEPARATORS = re.compile(r"[\s.\-]+")


def _clean(value: str, *, upper: bool = False) -> str:
    # NFKC turns full-width digits and letters (pasted from some input methods) into ASCII.
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", value))
    return text.upper() if upper else text


_SEARCH_SHAPE = re.compile(r"\d{9}|\d{10}|\d{12}|[A-Z]{2}\d{13}")  # CMND, BHXH, CCCD, BHYT card


def identifier_in(word: str) -> str | None:
    """The person identifier a searched word has the shape of (CMND 9 digits, BHXH 10, CCCD 12, BHYT card
    two letters and 13 digits), cleaned as it is stored; None for anything else (a name, a year)."""
    text = _clean(word, upper=True)
    return text if _SEARCH_SHAPE.fullmatch(text) else None


def _start(kind: _Kind, value: str, text: str) -> list[Problem]:
    """Problems every rule shares: empty, or stored in another form than the canonical ``text``."""
    if not text:
        return [_problem(kind, "empty", text)]
    return [] if value == text else [_problem(kind, "not-normalized", text, raw=value)]


def _foreign(kind: _Kind, text: str) -> Problem | None:
    """A problem naming the characters of ``text`` outside the identifier's alphabet, if any."""
    bad = set(text) - kind.alphabet
    if not bad:
        return None
    shown = " ".join(repr(c) for c in sorted(bad))
    return _problem(kind, "characters", text, bad=shown, allowed_en=kind.alphabet_en, allowed_vi=kind.alphabet_vi)


def _length(kind: _Kind, text: str, expected: int) -> Problem:
    return _problem(kind, "length", text, n=len(text), expected=expected)


def _canonical(kind: _Kind, text: str) -> str:
    problem = _problem(kind, "empty", text) if not text else _foreign(kind, text)
    if problem:
        raise IdentifierError([problem])
    return text


# --- CCCD: personal identification number, 12 digits PPP S YY NNNNNN (Circular 07/2016/TT-BCA Art. 7) ---


def normalize_cccd(value: str) -> str:
    return _canonical(_CCCD, _clean(value))


def parse_cccd(value: str) -> CccdParts | None:
    text = _clean(value)
    if len(text) != 12 or set(text) - _DIGITS:
        return None
    digit = int(text[3])
    province = PROVINCES.get(text[1:3]) if text[0] == "0" else None
    gender = "female" if digit % 2 else "male"
    return CccdParts(text, text[:3], province, gender, century_start(digit) + int(text[4:6]), text[6:])


def validate_cccd(value: str, *, birth_date: str | None = None, gender: str | None = None) -> list[Problem]:
    """Problems of a CCCD, also checked against the person's FHIR birthDate (any precision) and gender."""
    text = _clean(value)
    problems = _start(_CCCD, value, text)
    if not text:
        return problems
    if bad := _foreign(_CCCD, text):
        return [*problems, bad]
    if len(text) != 12:
        # QĐ 130/QĐ-BYT typed SO_CCCD as a number, so claims data often lost the leading zero.
        suffix = {11: "leading-zero", 9: "is-cmnd"}.get(len(text))
        return [*problems, _problem(_CCCD, suffix, text) if suffix else _length(_CCCD, text, 12)]
    parts = parse_cccd(text)
    assert parts is not None  # 12 digits always parse
    return problems + _cccd_structure(parts) + _cccd_birth_date(parts, birth_date) + _cccd_gender(parts, gender)


def _cccd_structure(parts: CccdParts) -> list[Problem]:
    n = parts.number
    problems = []
    if parts.province is None:
        problems.append(_problem(_CCCD, "province", n, ppp=n[:3]))
    # The digits of a real card never point after the day it is checked.
    if parts.birth_year > date.today().year:
        problems.append(_problem(_CCCD, "century", n, d=n[3], yy=n[4:6], year=parts.birth_year))
    return problems


_YEAR = re.compile(r"^(\d{4})(?:-|$)")


def _cccd_birth_date(parts: CccdParts, birth_date: str | None) -> list[Problem]:
    # A birthDate without a readable year is the FHIR validator's business, not the CCCD's.
    m = _YEAR.match(birth_date or "")
    if not m or int(m.group(1)) == parts.birth_year:
        return []
    n, start = parts.number, century_start(int(parts.number[3]))
    if int(m.group(1)) // 100 * 100 != start:
        # Name the digit that disagrees: the century digit, not the two year digits.
        return [_problem(_CCCD, "birth-century", n, d=n[3], start=start, end=start + 99, birth_date=birth_date)]
    return [_problem(_CCCD, "birth-year", n, yy=n[4:6], year=parts.birth_year, birth_date=birth_date)]


_SEX_VI = {"male": "nam", "female": "nữ"}


def _cccd_gender(parts: CccdParts, gender: str | None) -> list[Problem]:
    # Digit 4 encodes only male or female: "other" and "unknown" cannot be compared with it.
    if gender not in _SEX_VI or gender == parts.gender:
        return []
    n = parts.number
    sex = {"sex_en": parts.gender, "sex_vi": _SEX_VI[parts.gender], "gender_en": gender, "gender_vi": _SEX_VI[gender]}
    return [_problem(_CCCD, "gender", n, d=n[3], **sex)]


# --- CMND: the old identity card, 9 digits (Decree 05/1999/NĐ-CP) ---


def normalize_cmnd(value: str) -> str:
    return _canonical(_CMND, _clean(value))


def validate_cmnd(value: str) -> list[Problem]:
    text = _clean(value)
    problems = _start(_CMND, value, text)
    if not text:
        return problems
    if bad := _foreign(_CMND, text):
        return [*problems, bad]
    if len(text) == 12:
        # The 12-digit CMND (Decree 106/2013/NĐ-CP) is the personal identification number the CCCD kept.
        return [*problems, _problem(_CMND, "is-cccd", text)]
    return problems if len(text) == 9 else [*problems, _length(_CMND, text, 9)]


# --- BHYT card: CC L PP NNNNNNNNNN (QĐ 1351/QĐ-BHXH; BHXH card-check result codes 052 and 053) ---


def normalize_bhyt(value: str) -> str:
    return _canonical(_BHYT, _clean(value, upper=True))


_BHYT_SHAPE = re.compile(r"^[A-Z]{2}\d{13}$")


def parse_bhyt(value: str) -> BhytParts | None:
    text = _clean(value, upper=True)
    if not _BHYT_SHAPE.match(text):
        return None
    category = BHYT_CATEGORIES.get(text[:2])
    return BhytParts(text, text[:2], category.name if category else None, int(text[2]), text[3:5], text[5:])


def validate_bhyt(value: str, *, temporary: bool = False) -> list[Problem]:
    """Problems of a BHYT card number. ``temporary``: a newborn's temporary card (MA_THE_TAM), always TE1."""
    text = _clean(value, upper=True)
    problems = _start(_BHYT, value, text)
    if not text:
        return problems
    if bad := _foreign(_BHYT, text):
        return [*problems, bad]
    if len(text) != 15:
        # Since 2024 people often show the 10-digit social-insurance number (VssID, VNeID) instead of a card.
        is_bhxh = len(text) == 10 and not set(text) - _DIGITS
        return [*problems, _problem(_BHYT, "is-bhxh", text) if is_bhxh else _length(_BHYT, text, 15)]
    category, level, issuer, bhxh = text[:2], text[2], text[3:5], text[5:]
    if not category.isalpha():
        problems.append(_problem(_BHYT, "category-format", text, cat=category))
    elif category not in BHYT_CATEGORIES:
        problems.append(_problem(_BHYT, "category", text, cat=category))
    if level not in "12345":
        problems.append(_problem(_BHYT, "level", text, level=level))
    if issuer not in BHYT_ISSUERS:
        problems.append(_problem(_BHYT, "province", text, pp=issuer))
    if set(bhxh) - _DIGITS:
        problems.append(_problem(_BHYT, "bhxh", text, bhxh=bhxh))
    if temporary and text[:3] != "TE1":
        problems.append(_problem(_BHYT, "temporary", text, prefix=text[:3]))
    return problems


# --- Social-insurance number (mã số BHXH): 10 digits ---


def normalize_bhxh(value: str) -> str:
    return _canonical(_BHXH, _clean(value))


def validate_bhxh(value: str) -> list[Problem]:
    text = _clean(value)
    problems = _start(_BHXH, value, text)
    if not text:
        return problems
    if _BHYT_SHAPE.match(text.upper()):
        # A whole card number where only its last 10 characters were meant.
        return [*problems, _problem(_BHXH, "is-bhyt", text, bhxh=text[5:])]
    if bad := _foreign(_BHXH, text):
        return [*problems, bad]
    return problems if len(text) == 10 else [*problems, _length(_BHXH, text, 10)]


# --- Facility code (mã cơ sở KCB, MA_CSKCB): 5 digits, province code + 3 digits ---


def normalize_facility_code(value: str) -> str:
    return _canonical(_FACILITY, _clean(value))


def validate_facility_code(value: str, *, placeholder_ok: bool = False) -> list[Problem]:
    """``placeholder_ok``: accept ``PP000``, the MA_DKBD a temporary card carries, which is no facility."""
    text = _clean(value)
    problems = _start(_FACILITY, value, text)
    if not text:
        return problems
    if bad := _foreign(_FACILITY, text):
        return [*problems, bad]
    if len(text) != 5:
        return [*problems, _length(_FACILITY, text, 5)]
    if text[:2] not in PROVINCES:
        problems.append(_problem(_FACILITY, "province", text, pp=text[:2]))
    if text.endswith("000") and not placeholder_ok:
        problems.append(_problem(_FACILITY, "placeholder", text, pp=text[:2]))
    return problems


# --- Practising licence (chứng chỉ / giấy phép hành nghề): lenient, as no national format is published ---

LICENCE_LENGTH = (3, 40)


def _clean_licence(value: str) -> str:
    # Only whitespace goes: dots, dashes and slashes are part of these numbers.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value)).upper()


def normalize_licence(value: str) -> str:
    text = _clean_licence(value)
    if not text:
        raise IdentifierError([_problem(_LICENCE, "empty", text)])
    return text


def validate_licence(value: str) -> list[Problem]:
    text = _clean_licence(value)
    problems = _start(_LICENCE, value, text)
    if not text:
        return problems
    if ";" in text:
        # MA_BAC_SI lists several practitioners with ";"; each is one Practitioner's identifier.
        return [*problems, _problem(_LICENCE, "multiple", text)]
    if bad := _foreign(_LICENCE, text):
        problems.append(bad)
    low, high = LICENCE_LENGTH
    if not low <= len(text) <= high:
        problems.append(_problem(_LICENCE, "length", text, n=len(text), low=low, high=high))
    if not set(text) & _DIGITS:
        problems.append(_problem(_LICENCE, "no-digit", text))
    return problems


# --- Registry ---

RULES: dict[str, Rule] = {
    r.system: r
    for r in (
        Rule("cccd", CCCD_SYSTEM, validate_cccd, normalize_cccd),
        Rule("cmnd", CMND_SYSTEM, validate_cmnd, normalize_cmnd),
        Rule("bhyt", BHYT_SYSTEM, validate_bhyt, normalize_bhyt),
        Rule("bhxh", BHXH_SYSTEM, validate_bhxh, normalize_bhxh),
        Rule("facility", FACILITY_SYSTEM, validate_facility_code, normalize_facility_code),
        Rule("licence", LICENCE_SYSTEM, validate_licence, normalize_licence),
    )
}


def rule_for(system: str) -> Rule | None:
    """The rule for an identifier system URI (or one of the demo generator's ALIASES); None if unknown."""
    return RULES.get(ALIASES.get(system, system))
