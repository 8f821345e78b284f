"""Value normalisation shared by index extraction and query compilation.

Both sides of a search must normalise identically, so every rule lives here:

- :func:`fold` — the case- and accent-insensitive key of a string (Vietnamese aware: đ → d).
- :func:`date_range` — a FHIR date/dateTime/instant of any precision → half-open ``[low, high)`` epoch
  seconds (UTC). A value without a timezone is taken as UTC (the spec leaves it to the server).
- :func:`number_range` — a number with its implicit precision range (FHIR search ``number`` rules).
- :func:`ucum_canonical` — a small, exact table converting common UCUM units to a canonical unit.

Implicit precision follows the rule the FHIR page states ("to N significant figures"): half a unit of
the last significant digit either side. ``100`` → [99.5, 100.5]; ``1.50`` → [1.495, 1.505];
``1e2`` (one significant figure) → [50, 150]. Note: the R4 page's example table gives [95, 105) for
``1e2``, which contradicts its own "1 significant figure" wording; we follow the wording, which is
also what the exponent form means in every decimal library.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache

__all__ = ["date_range", "fold", "number_range", "ucum_canonical", "ucum_to_canonical"]

# đ/Đ have no Unicode decomposition (they are letters, not d + mark), so NFD alone keeps them.
# Ð (U+00D0, Icelandic eth) is included because it is routinely typed in place of Đ (U+0110).
_LETTER_MAP = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d"})


def fold(text: str) -> str:
    """Case- and accent-insensitive key: ``"Nguyễn  Văn Đặng"`` → ``"nguyen van dang"``."""
    if text.isascii():
        # Fast path: most identifiers, codes and English text; casefold == lower for ASCII.
        return " ".join(text.lower().split())
    # Latin text with diacritics (all of Vietnamese): one table lookup per character. Whenever
    # the result is ASCII it equals _fold_unicode's (each table entry is that function applied to
    # one character, and on such text it works character by character; tests/search check it).
    latin = text.casefold().translate(_LATIN_TABLE)
    if latin.isascii():
        return " ".join(latin.split())
    return _fold_unicode(text)


@lru_cache(maxsize=8192)
def _fold_unicode(text: str) -> str:
    # casefold before NFD: casefold may produce letters that decompose further (e.g. "ẞ" → "ss").
    decomposed = unicodedata.normalize("NFD", text.casefold().translate(_LETTER_MAP))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # Recompose what is left (e.g. Hangul, CJK stay as written) so keys compare equal across inputs.
    return " ".join(unicodedata.normalize("NFC", stripped).split())


def _latin_table() -> dict[int, str]:
    """Code point → its fold, for the letters with diacritics and the combining marks (Latin-1
    Supplement, Latin Extended-A/B, combining diacritics, Latin Extended Additional) whose fold
    is ASCII."""
    ranges = (range(0xC0, 0x250), range(0x300, 0x370), range(0x1E00, 0x1F00))
    table: dict[int, str] = {}
    for point in (p for r in ranges for p in r):
        folded = _fold_unicode.__wrapped__(chr(point))
        if folded.isascii() and " " not in folded:
            table[point] = folded
    return table


_LATIN_TABLE = _latin_table()


# ---------------------------------------------------------------------------------------------- dates

_DATE_RE = re.compile(
    r"(?P<y>\d{4})"
    r"(?:-(?P<m>\d{2})"
    r"(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DAY = 86400


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm; no datetime limits)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def date_range(value: str) -> tuple[float, float]:
    """Half-open ``[low, high)`` epoch seconds (UTC) covered by a FHIR date, dateTime or instant.

    The width of the range is the precision written: ``"2020"`` is the whole year, ``"2020-01-01T10:00"``
    one minute, ``"…:05.25"`` a hundredth of a second. A time with no timezone is read as UTC.
    Raises :class:`ValueError` for anything that is not such a value.
    """
    if type(value) is not str:
        raise ValueError(f"not a FHIR date: {value!r}")
    match = _DATE_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a FHIR date: {value!r}")
    y, m_s, d_s, hour_s = match["y"], match["m"], match["d"], match["H"]
    year = int(y)
    if year == 0:
        raise ValueError(f"year 0000 does not exist: {value!r}")
    if m_s is None:
        return _epoch(year, 1, 1), _epoch(year + 1, 1, 1)
    month = int(m_s)
    if not 1 <= month <= 12:
        raise ValueError(f"month out of range: {value!r}")
    if d_s is None:
        nxt = (year + 1, 1) if month == 12 else (year, month + 1)
        return _epoch(year, month, 1), _epoch(nxt[0], nxt[1], 1)
    day = int(d_s)
    limit = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= limit:
        raise ValueError(f"day out of range: {value!r}")
    start = _epoch(year, month, day)
    if hour_s is None:
        return start, start + _DAY
    return _time_range(match, value, start)


def _time_range(match: re.Match[str], value: str, day_start: float) -> tuple[float, float]:
    hour, minute = int(match["H"]), int(match["M"])
    second_s, frac_s, tz = match["S"], match["f"], match["tz"]
    # FHIR allows 60 for a leap second; epoch seconds cannot express it, so it lands on the next second.
    if hour > 23 or minute > 59 or (second_s is not None and int(second_s) > 60):
        raise ValueError(f"time out of range: {value!r}")
    low = day_start + hour * 3600 + minute * 60
    if second_s is None:
        width = 60.0
    else:
        low += int(second_s)
        width = 1.0
        if frac_s is not None:
            low += int(frac_s) / 10 ** len(frac_s)
            width = 10.0 ** -len(frac_s)
    if tz is not None and tz != "Z":
        tz_h, tz_m = int(tz[1:3]), int(tz[4:6])
        if tz_h > 14 or tz_m > 59:
            raise ValueError(f"timezone out of range: {value!r}")
        offset = tz_h * 3600 + tz_m * 60
        # Local time = UTC + offset, so UTC = local - offset ("+07:00" moves the instant 7 h earlier).
        low -= offset if tz[0] == "+" else -offset
    return low, low + width


def _epoch(year: int, month: int, day: int) -> float:
    return float(_days_from_civil(year, month, day) * _DAY)


# -------------------------------------------------------------------------------------------- numbers


def number_range(value: int | float | str | Decimal) -> tuple[float, float, float]:
    """``(value, low, high)``: the number and its implicit precision range (half a last-digit unit).

    Floats (what a JSON parser hands over) use their shortest repr, so ``1.5`` has one decimal.
    Raises :class:`ValueError` for booleans, non-numeric strings, NaN and infinities.
    """
    dec = _to_decimal(value)
    half = Decimal(5).scaleb(dec.as_tuple().exponent - 1)  # type: ignore[operator]
    return float(dec), float(dec - half), float(dec + half)


def _to_decimal(value: int | float | str | Decimal) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, int):
        return Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        dec = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            dec = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    else:
        raise ValueError(f"not a number: {value!r}")
    if not dec.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return dec


# ----------------------------------------------------------------------------------------------- UCUM

UCUM = "http://unitsofmeasure.org"

# unit → (canonical unit, exact factor). Deliberately small: only exact, unambiguous conversions that
# clinical data actually uses. Affine units (Cel, [degF]) and calendar units (mo, a) are left as written.
_UCUM_TABLE: dict[str, tuple[str, Decimal]] = {
    # mass → g
    "kg": ("g", Decimal(1000)),
    "g": ("g", Decimal(1)),
    "mg": ("g", Decimal("1e-3")),
    "ug": ("g", Decimal("1e-6")),
    "ng": ("g", Decimal("1e-9")),
    "[lb_av]": ("g", Decimal("453.59237")),
    "[oz_av]": ("g", Decimal("28.349523125")),
    # length → m
    "km": ("m", Decimal(1000)),
    "m": ("m", Decimal(1)),
    "cm": ("m", Decimal("1e-2")),
    "mm": ("m", Decimal("1e-3")),
    "um": ("m", Decimal("1e-6")),
    "[in_i]": ("m", Decimal("0.0254")),
    "[ft_i]": ("m", Decimal("0.3048")),
    # volume → L
    "L": ("L", Decimal(1)),
    "l": ("L", Decimal(1)),
    "dL": ("L", Decimal("0.1")),
    "mL": ("L", Decimal("1e-3")),
    "uL": ("L", Decimal("1e-6")),
    # time → s (fixed-length units only)
    "s": ("s", Decimal(1)),
    "ms": ("s", Decimal("1e-3")),
    "min": ("s", Decimal(60)),
    "h": ("s", Decimal(3600)),
    "d": ("s", Decimal(86400)),
    "wk": ("s", Decimal(604800)),
    # amount of substance → mol
    "mol": ("mol", Decimal(1)),
    "mmol": ("mol", Decimal("1e-3")),
    "umol": ("mol", Decimal("1e-6")),
    # mass and substance concentration → g/L, mol/L
    "g/L": ("g/L", Decimal(1)),
    "g/dL": ("g/L", Decimal(10)),
    "mg/dL": ("g/L", Decimal("1e-2")),
    "mg/L": ("g/L", Decimal("1e-3")),
    "ug/L": ("g/L", Decimal("1e-6")),
    "mol/L": ("mol/L", Decimal(1)),
    "mmol/L": ("mol/L", Decimal("1e-3")),
    "umol/L": ("mol/L", Decimal("1e-6")),
}


def ucum_to_canonical(code: str, value: int | float | str | Decimal) -> tuple[str, float, float, float] | None:
    """Like :func:`ucum_canonical`, but also for a unit that is already canonical (identity); None
    only when the unit is not in the table. Index rows and queries both use it, so "5 mg" and
    "0.005 g" meet on the ``<param>:canonical`` rows."""
    entry = _UCUM_TABLE.get(code)
    if entry is None:
        return None
    if entry[0] == code:
        val, low, high = number_range(value)
        return code, val, low, high
    return ucum_canonical(code, value)


def ucum_canonical(code: str, value: int | float | str | Decimal) -> tuple[str, float, float, float] | None:
    """Convert a UCUM quantity to its canonical unit: ``(unit, value, low, high)``, or ``None``.

    ``None`` when the unit is not in the table or is already canonical (nothing to add). The precision
    range is scaled with the value, so ``5 mg`` → ``0.005 g`` covering [0.0045, 0.0055].
    """
    entry = _UCUM_TABLE.get(code)
    if entry is None or entry[0] == code:
        return None
    unit, factor = entry
    dec = _to_decimal(value)
    half = Decimal(5).scaleb(dec.as_tuple().exponent - 1)  # type: ignore[operator]
    return unit, float(dec * factor), float((dec - half) * factor), float((dec + half) * factor)
