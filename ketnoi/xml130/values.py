"""Field values of the claims XML: dates, amounts, integers, codes, ``;`` lists (schema §2 "Format conventions").

Every parser returns ``(value, problem)``: exactly one of the two is ``None`` (both are ``None`` for an empty
value, which is the caller's business: mandatory or not). No parser raises on bad input, and no float is ever
made: amounts are ``decimal.Decimal`` exactly as written, because a claim total must add up to the cent.

Dates come back as FHIR ``date`` / ``dateTime`` strings of the precision the source really has. The schema
writes unknown parts as zeros (§2 and XML1 NGAY_SINH: "unknown hour/min = 0000, unknown day/month = 0000"), so
``20240100`` is the month ``2024-01`` and ``20240000`` the year ``2024``. Times are Vietnam local time, so a
time of day gets the ``+07:00`` offset (FHIR requires an offset once there is a time).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation

from ketnoi.xml130.fields import (
    BIRTH,
    DATE,
    DATE_OR_DATETIME,
    DATETIME,
    DECIMAL,
    FIELDS,
    INTEGER,
    FieldSpec,
)
from ketnoi.xml130.problems import Problem

OFFSET = "+07:00"
_DIGITS = re.compile(r"[0-9]+")
# Optional minus (refund lines), digits, optional "." and digits. No "+", no exponent, no grouping, no comma:
# the schema fixes "." as the only separator (§2), and "12,5" is refused rather than guessed.
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

Parsed = tuple[object, Problem | None]


def _problem(rule: str, vi: str, en: str, value: str) -> Problem:
    return Problem(rule=rule, message_vi=vi, message_en=en, value=value)


def _bad_date(text: str) -> Problem:
    return _problem("date-invalid", f"Ngày không hợp lệ: '{text}'", f"invalid date: '{text}'", text)


def _date_from_parts(text: str, year: str, month: str, day: str) -> tuple[str | None, Problem | None]:
    """``yyyy``, ``MM``, ``dd`` with ``00`` for an unknown month or day -> a FHIR date of that precision."""
    y, m, d = int(year), int(month), int(day)
    if y == 0 or m > 12 or (m == 0 and d != 0):
        return None, _bad_date(text)
    if m == 0:
        return year, None
    if d == 0:
        return f"{year}-{month}", None
    if d > calendar.monthrange(y, m)[1]:
        return None, _bad_date(text)
    return f"{year}-{month}-{day}", None


def parse_date(text: str) -> tuple[str | None, Problem | None]:
    """``yyyyMMdd`` -> ``yyyy-MM-dd`` / ``yyyy-MM`` / ``yyyy``."""
    if not text:
        return None, None
    if len(text) != 8 or not _DIGITS.fullmatch(text):
        return None, _problem(
            "date-format", f"Ngày phải có dạng yyyyMMdd: '{text}'", f"date must be yyyyMMdd: '{text}'", text
        )
    return _date_from_parts(text, text[:4], text[4:6], text[6:8])


def parse_datetime(text: str, *, zero_time_unknown: bool = False) -> tuple[str | None, Problem | None]:
    """``yyyyMMddHHmm`` -> ``yyyy-MM-ddTHH:mm:00+07:00``, or a date when the day itself is not known.

    ``0000`` as a time is midnight for an admission or an order, but "time not known" for a birth date (XML1
    NGAY_SINH); ``zero_time_unknown`` says which. A time after an unknown day or month is refused: it cannot be.
    """
    if not text:
        return None, None
    if len(text) != 12 or not _DIGITS.fullmatch(text):
        return None, _problem(
            "datetime-format",
            f"Thời điểm phải có dạng yyyyMMddHHmm: '{text}'",
            f"date-time must be yyyyMMddHHmm: '{text}'",
            text,
        )
    date, problem = _date_from_parts(text, text[:4], text[4:6], text[6:8])
    if date is None:
        return None, problem
    hour, minute = text[8:10], text[10:12]
    if len(date) < 10 or (zero_time_unknown and hour + minute == "0000"):
        return (date, None) if hour + minute == "0000" else (None, _bad_date(text))
    if int(hour) > 23 or int(minute) > 59:
        return None, _bad_date(text)
    return f"{date}T{hour}:{minute}:00{OFFSET}", None


def parse_date_or_datetime(text: str) -> tuple[str | None, Problem | None]:
    """8 or 12 characters (XML1 NGAY_MIEN_CCT: a date from a certificate, a date-time when computed)."""
    return parse_date(text) if len(text) == 8 else parse_datetime(text)


def parse_decimal(text: str, scale: int | None = None) -> tuple[Decimal | None, Problem | None]:
    """An amount or quantity, exactly as written; ``scale`` is the most decimals allowed (§2: 3 or 2)."""
    if not text:
        return None, None
    if not _DECIMAL.fullmatch(text):
        return None, _problem(
            "decimal-format",
            f"Số không hợp lệ (chỉ dùng chữ số và dấu '.'): '{text}'",
            f"not a number (digits and '.' only): '{text}'",
            text,
        )
    try:
        value = Decimal(text)
    except InvalidOperation:  # the pattern already rules this out; kept so no input can raise
        return None, _problem("decimal-format", f"Số không hợp lệ: '{text}'", f"not a number: '{text}'", text)
    places = len(text.partition(".")[2])
    if scale is not None and places > scale:
        return None, _problem(
            "decimal-scale",
            f"Quá {scale} chữ số thập phân: '{text}'",
            f"more than {scale} decimals: '{text}'",
            text,
        )
    return value, None


def parse_integer(text: str) -> tuple[int | None, Problem | None]:
    """A whole number without sign (codes such as GIOI_TINH, counts such as SO_NGAY_DTRI)."""
    if not text:
        return None, None
    if not _DIGITS.fullmatch(text):
        return None, _problem(
            "integer-format", f"Phải là số nguyên: '{text}'", f"must be a whole number: '{text}'", text
        )
    return int(text), None


def split_multi(text: str) -> list[str]:
    """A ``;``-separated field (§2: cards, MA_KHOA, MA_BENH_KT, ...) -> its items, blanks dropped."""
    return [item.strip() for item in text.split(";") if item.strip()]


def _length(spec: FieldSpec, text: str) -> int:
    # "Số n" sizes count digits (SO_LUONG "Số 10" holds 3 decimals), "Chuỗi n" sizes count characters.
    if spec.kind in (DECIMAL, INTEGER):
        return sum(ch.isdigit() for ch in text)
    return len(text)


def _parse_one(spec: FieldSpec, text: str) -> Parsed:
    if spec.kind == DATE:
        return parse_date(text)
    if spec.kind == DATETIME:
        return parse_datetime(text)
    if spec.kind == BIRTH:
        return parse_datetime(text, zero_time_unknown=True)
    if spec.kind == DATE_OR_DATETIME:
        return parse_date_or_datetime(text)
    if spec.kind == DECIMAL:
        return parse_decimal(text, spec.scale)
    if spec.kind == INTEGER:
        return parse_integer(text)
    return text, None


def parse_value(spec: FieldSpec, text: str) -> tuple[object, list[Problem]]:
    """One field's raw text -> its value (a list for ``;`` fields) and what is wrong with it."""
    problems: list[Problem] = []
    if spec.size is not None and _length(spec, text) > spec.size:
        problems.append(
            _problem(
                "too-long",
                f"Dài quá {spec.size} ký tự: '{text}'",
                f"longer than {spec.size} characters: '{text}'",
                text,
            )
        )
    if not spec.multi:
        value, problem = _parse_one(spec, text)
        return value, [*problems, *([problem] if problem else [])]
    values: list[object] = []
    for item in split_multi(text):
        value, problem = _parse_one(spec, item)
        values.append(value)
        problems.extend([problem] if problem else [])
    return values, problems


def parse_row(table: str, row: Mapping[str, str]) -> tuple[dict[str, object], list[Problem]]:
    """``check_row``, keeping the values: each known, non-empty field that parsed cleanly -> its value.

    The cross-field rules (``ketnoi.xml130.rules``) read these values, so a row is parsed once, and a value
    with a problem is simply absent: no rule reports it a second time.
    """
    ma_lk = row.get("MA_LK", "")
    values: dict[str, object] = {}
    problems: list[Problem] = []
    for spec in FIELDS.get(table, ()):
        text = row.get(spec.name, "").strip()
        if not text:
            if spec.mandatory:
                problems.append(
                    Problem(
                        rule="required",
                        message_vi=f"Thiếu trường bắt buộc {spec.name}",
                        message_en=f"missing required field {spec.name}",
                        table=table,
                        ma_lk=ma_lk,
                        field=spec.name,
                    )
                )
            continue
        value, found = parse_value(spec, text)
        if found:
            problems.extend(replace(p, table=table, ma_lk=ma_lk, field=spec.name) for p in found)
        else:
            values[spec.name] = value
    return values, problems


def check_row(table: str, row: Mapping[str, str]) -> list[Problem]:
    """Mandatory fields present, sizes kept, types right, for one row of a table with specs in ``FIELDS``.

    Fields the specs do not know are let through: later amendments (3176/QĐ-BYT) add fields, and the reader
    must not refuse a file for that. Tables without specs (XML12, unknown ones) give no problems.
    """
    return parse_row(table, row)[1]
