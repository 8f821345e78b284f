"""The patient index's view of a Patient, and its blocking keys as index rows (ADR 0023).

Matching a patient against millions must not scan them. So every Patient, when written, gets a few
``idx_token`` rows under a parameter no search can name (``~`` is not a search-parameter character, as
for the consent rules of :mod:`ketnoi.search.extract_consent`): ``system`` is the kind of key, ``code``
its value. A lookup of a new patient's keys is then one index range per key. The keys are chosen so that
every kind of registration error seen at Vietnamese desks leaves at least one key intact:

======  ==================================================  =============================================
kind    value                                               still found when ...
======  ==================================================  =============================================
``c``   the CCCD (12 digits)                                names and dates are wrong
``s``   the social-insurance number inside the BHYT card    the CCCD is missing
``t``   each phone, national form (``09...``)               identifiers are missing
``gm``  given name + birth year + month, and given name +   family name typo, middle name dropped or
        year + day (two rows)                               changed, day and month swapped
``gy``  given name + birth year (partial dates only)        only the year is known
``fd``  family name + birth date with day/month in order    given-name typo, day and month swapped
``ny``  all name words, sorted, + birth year                name written in another order
``pd``  family and given name in either order + the date    fields swapped, middle name dropped
``py``  the same + birth year (partial dates only)          fields swapped and only the year known
``gf``  family and given name in either order + commune     birth date wrong or unknown
``fc``  family name + year + commune (partial dates only)   only the year known, given-name typo
======  ==================================================  =============================================

The keys marked "partial dates only" are written for every record but looked up (and paired, in a
whole-database run) only for a record whose birth date is partial: a full date is found through the
narrower keys. Commune keys use today's codes only (an older code is compared, not blocked on).

Names are folded (case and diacritics, :func:`ketnoi.search.normalize.fold`), so a name typed without
diacritics has the same keys.

:class:`PatientView` is the part of a Patient that matching compares; it is built here, beside the keys,
so that a key and the comparison always read the same fields the same way. It is kept as one more index
row (``~mpi-view``, the view as compact JSON in ``text``: :func:`view_text`), so that the candidates of a
match are compared from their index rows, without reading and parsing each whole Patient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

from ketnoi.search.index import IndexRows, TokenRow
from ketnoi.search.normalize import fold
from ketnoi.vn.identifier_rules import BHYT_SYSTEM, CCCD_SYSTEM
from ketnoi.vn.identifiers import parse_bhyt, parse_cccd

PARAM: Final = "~mpi-key"
VIEW_PARAM: Final = "~mpi-view"  # the PatientView as compact JSON (text), one row per Patient
_VIEW_FORM: Final = 1  # the layout of view_text's array; a row of another form is read from the Patient
MPI_SYSTEM: Final = "https://fhir.ketnoi.vn/CodeSystem/mpi"  # the patient index's tags and task codes
ADMIN_ADDRESS_URL: Final = "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-administrative-address"
TODAY_UNITS: Final = "vn-admin-unit-2025"  # the end of the CodeSystem URL of today's units
# Wide keys looked up (and paired, in a whole-database run) only for a record whose birth date is partial:
# a full date is found through the narrower keys.
PARTIAL_ONLY: Final = frozenset({"gy", "py", "fc"})
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_NOT_DIGITS = re.compile(r"\D")

Birth = tuple[int | None, int | None, int | None]


@dataclass(frozen=True, slots=True)
class Place:
    system: str
    province: str | None
    commune: str | None


@dataclass(frozen=True, slots=True)
class PatientView:
    """What matching compares. Name parts are folded; ``*_exact`` keep the diacritics (lower case)."""

    family: str
    given: str
    middle: tuple[str, ...]
    tokens: tuple[str, ...]  # every name word, folded, in written order
    family_exact: str
    given_exact: str
    gender: str | None
    birth: Birth
    cccd: str | None
    bhxh: str | None
    phones: frozenset[str]
    place: Place | None


def patient_view(resource: dict[str, Any]) -> PatientView:
    words, has_family = _name_words(_name(resource))
    exact = [w.lower() for w in words]
    folded = [fold(w) for w in words]
    skip = 1 if has_family else 0
    rest, rest_exact = folded[skip:], exact[skip:]
    return PatientView(
        family=folded[0] if has_family else "",
        given=rest[-1] if rest else "",
        middle=tuple(rest[:-1]),
        tokens=tuple(folded),
        family_exact=exact[0] if has_family else "",
        given_exact=rest_exact[-1] if rest_exact else "",
        gender=_text(resource.get("gender")),
        birth=birth_parts(resource.get("birthDate")),
        cccd=_identifier(resource, CCCD_SYSTEM, _cccd),
        bhxh=_identifier(resource, BHYT_SYSTEM, _bhxh),
        phones=_phones(resource),
        place=_place(resource),
    )


def blocking_keys(view: PatientView) -> list[tuple[str, str]]:
    """(kind, value) pairs written for ``view``; a key is left out when the fields it needs are missing."""
    keys: list[tuple[str, str]] = []
    year, month, day = view.birth
    if view.cccd:
        keys.append(("c", view.cccd))
    if view.bhxh:
        keys.append(("s", view.bhxh))
    keys.extend(("t", phone) for phone in sorted(view.phones))
    if view.given and year:
        keys.append(("gy", f"{view.given}|{year}"))
        if month and day:
            keys.extend(("gm", f"{view.given}|{year}|{part}") for part in sorted({month, day}))
    if view.family and year and month and day:
        low, high = sorted((month, day))
        keys.append(("fd", f"{view.family}|{year}|{low}|{high}"))
    if len(view.tokens) > 1 and year:
        keys.append(("ny", " ".join(sorted(view.tokens)) + f"|{year}"))
    if view.family and view.given and year:
        # Family and given name in either order (a name written given-first, or the fields swapped).
        pair = " ".join(sorted((view.family, view.given)))
        keys.append(("py", f"{pair}|{year}"))
        if month and day:
            low, high = sorted((month, day))
            keys.append(("pd", f"{pair}|{year}|{low}|{high}"))
    if view.family and view.given and view.place and view.place.commune and _today(view.place):
        pair = " ".join(sorted((view.family, view.given)))
        keys.append(("gf", f"{pair}|{view.place.commune}"))
    if view.family and year and view.place and view.place.commune and _today(view.place):
        keys.append(("fc", f"{view.family}|{year}|{view.place.commune}"))
    return keys


def lookup_keys(view: PatientView) -> list[tuple[str, str]]:
    """The keys to look up for ``view``: all it has, but the wide given-name + year bucket only when its
    own birth date is partial (a full date is found through the narrower ``gm`` rows)."""
    partial = view.birth[2] is None
    return [key for key in blocking_keys(view) if key[0] not in PARTIAL_ONLY or partial]


def mpi_rows(resource: dict[str, Any], rows: IndexRows) -> None:
    """Add the blocking-key rows of ``resource`` (a Patient) to ``rows``; none for a golden record (the
    patient index's own summary of linked records is never a candidate: its sources are)."""
    if is_golden(resource):
        return
    view = patient_view(resource)
    for kind, value in blocking_keys(view):
        rows.token.append(TokenRow(PARAM, kind, value, None))
    rows.token.append(TokenRow(VIEW_PARAM, None, None, view_text(view)))


def view_text(view: PatientView) -> str:
    """``view`` as the compact JSON array :func:`view_of_text` reads back (about 200 bytes)."""
    place = [view.place.system, view.place.province, view.place.commune] if view.place else None
    return orjson.dumps(
        [
            _VIEW_FORM,
            view.family,
            view.given,
            view.middle,
            view.tokens,
            view.family_exact,
            view.given_exact,
            view.gender,
            view.birth,
            view.cccd,
            view.bhxh,
            sorted(view.phones),
            place,
        ]
    ).decode()


def view_of_text(text: str | None) -> PatientView | None:
    """The view :func:`view_text` wrote, or None for anything else (then the Patient itself is read)."""
    try:
        form, family, given, middle, tokens, f_exact, g_exact, gender, birth, cccd, bhxh, phones, place = orjson.loads(
            text or "null"
        )
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
    if form != _VIEW_FORM:
        return None
    return PatientView(
        family=family,
        given=given,
        middle=tuple(middle),
        tokens=tuple(tokens),
        family_exact=f_exact,
        given_exact=g_exact,
        gender=gender,
        birth=(birth[0], birth[1], birth[2]),
        cccd=cccd,
        bhxh=bhxh,
        phones=frozenset(phones),
        place=Place(place[0], place[1], place[2]) if place else None,
    )


def linked_patients(resource: dict[str, Any]) -> list[str]:
    """The ids of the Patients a Patient's ``link`` entries name, in order (a golden record's sources)."""
    refs = [(link.get("other") or {}).get("reference") for link in resource.get("link") or () if isinstance(link, dict)]
    return [r.removeprefix("Patient/") for r in refs if isinstance(r, str) and r.startswith("Patient/")]


def is_golden(resource: dict[str, Any]) -> bool:
    """Whether ``resource`` is a golden record of the patient index (tagged ``mpi|golden``, ADR 0023)."""
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    return any(
        isinstance(t, dict) and t.get("system") == MPI_SYSTEM and t.get("code") == "golden"
        for t in (tags if isinstance(tags, list) else ())
    )


def birth_parts(value: Any) -> Birth:
    """``1990-03-07`` → (1990, 3, 7); ``1990`` → (1990, None, None); anything else → all None."""
    found = _DATE.match(value) if isinstance(value, str) else None
    if not found:
        return (None, None, None)
    year, month, day = found.groups()
    return (int(year), int(month) if month else None, int(day) if day else None)


def national_phone(value: str) -> str | None:
    """``+84 91 234 5678`` / ``84912345678`` / ``0912 345 678`` → ``0912345678``; too short → None."""
    digits = _NOT_DIGITS.sub("", value)
    if digits.startswith("84") and len(digits) >= 11:
        digits = "0" + digits[2:]
    return digits if len(digits) >= 9 else None


def _today(place: Place) -> bool:
    """Codes of today's units (after the 2025 reform); older codes are compared, not blocked on."""
    return place.system.endswith(TODAY_UNITS)


def _name(resource: dict[str, Any]) -> dict[str, Any]:
    names = [n for n in resource.get("name", ()) if isinstance(n, dict)]
    official = [n for n in names if n.get("use") == "official"]
    return (official or names or [{}])[0]


def _name_words(name: dict[str, Any]) -> tuple[list[str], bool]:
    """The words of a name, family name first (the Vietnamese order), and whether the first is one.

    A family name of two words ("Tôn Nữ") keeps only its first as the family name; the second reads as a
    middle name, which is how registration desks split it too."""
    family = _text(name.get("family"))
    given = [w for g in name.get("given", ()) if isinstance(g, str) for w in g.split()]
    if family or given:
        return (family.split() if family else []) + given, bool(family)
    text = _text(name.get("text")) or ""
    return text.split(), bool(text.split())


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _identifier(resource: dict[str, Any], system: str, read: Any) -> str | None:
    for identifier in resource.get("identifier", ()):
        if isinstance(identifier, dict) and identifier.get("system") == system:
            value = read(identifier.get("value"))
            if value:
                return str(value)
    return None


def _cccd(value: Any) -> str | None:
    parts = parse_cccd(value) if isinstance(value, str) else None
    return parts.number if parts else None


def _bhxh(value: Any) -> str | None:
    parts = parse_bhyt(value) if isinstance(value, str) else None
    return parts.bhxh if parts else None


def _phones(resource: dict[str, Any]) -> frozenset[str]:
    found = set()
    for telecom in resource.get("telecom", ()):
        if isinstance(telecom, dict) and telecom.get("system") == "phone" and isinstance(telecom.get("value"), str):
            phone = national_phone(telecom["value"])
            if phone:
                found.add(phone)
    return frozenset(found)


def _place(resource: dict[str, Any]) -> Place | None:
    """The coded province and commune of the first address that has them (VN Core's extension)."""
    for address in resource.get("address", ()):
        for ext in address.get("extension", ()) if isinstance(address, dict) else ():
            if isinstance(ext, dict) and ext.get("url") == ADMIN_ADDRESS_URL:
                parts = {p.get("url"): _coding(p) for p in ext.get("extension", ()) if isinstance(p, dict)}
                state, ward = parts.get("state"), parts.get("ward")
                if state or ward:
                    system = (state or ward or ("", ""))[0]
                    return Place(system, state[1] if state else None, ward[1] if ward else None)
    return None


def _coding(part: dict[str, Any]) -> tuple[str, str] | None:
    concept = part.get("valueCodeableConcept")
    for coding in concept.get("coding", ()) if isinstance(concept, dict) else ():
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return (str(coding.get("system", "")), coding["code"])
    return None
