"""The dashboard's indicators (ADR 0026), as ``_summary=count`` searches only: the one kind of search a
provincial manager may make of clinical data (``interactions.reach.aggregates_only``), and which a facility
or national administrator's policy narrows the same way as their other searches. No query of its own:
each count goes through the FHIR interactions with the user's context (:meth:`records.Reader.count`).

The plan is fixed and bounded (at most :func:`most_searches` counts a page): visits by month, diagnosis
groups, doses per antigen and the birth cohorts they are measured against, chronic disease registers.
This module is pure (what to ask, and what the answers make); :mod:`ketnoi.console.dashboard_pages` asks.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final

from ketnoi.vn import epi_schedule

ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
CVX: Final = "http://hl7.org/fhir/sid/cvx"
# Vietnam keeps UTC+7 all year: a month's visits are those of its days in Vietnam, not in UTC.
ICT: Final = timezone(timedelta(hours=7))
FIRST_YEAR, LAST_YEAR = 2000, 2100
_FACILITY = re.compile(r"Organization/[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True, slots=True)
class Group:
    """An indicator's row: the text key of its label and its ICD-10 codes. A three-character category
    (``E11``) stands for itself and its four-character subcodes (``E11.0``–``E11.9``): the server has no
    ICD-10 CodeSystem, so ``code:below`` is refused, and the category's codes are listed instead."""

    key: str
    codes: tuple[str, ...]

    def values(self) -> str:
        """The ``code`` parameter's value: one search for the whole group (the values are ORed)."""
        return ",".join(f"{ICD10}|{code}" for code in expand(self.codes))


def expand(codes: Sequence[str]) -> list[str]:
    """``codes`` with every three-character category followed by its subcodes ``.0``–``.9``."""
    out: list[str] = []
    for code in codes:
        out.append(code)
        if len(code) == 3:
            out.extend(f"{code}.{digit}" for digit in range(10))
    return out


# The commonest diagnoses of primary care and district hospitals (those of the demo data's catalogue,
# ketnoi/demo/catalog.py), grouped as a provincial report would: one search per group.
DIAGNOSIS_GROUPS: Final = (
    Group("dx_respiratory", ("J00", "J02", "J06", "J18", "J20")),
    Group("dx_hypertension", ("I10",)),
    Group("dx_diabetes", ("E11",)),
    Group("dx_lipids", ("E78",)),
    Group("dx_chronic_lung", ("J44", "J45")),
    Group("dx_heart_stroke", ("I21", "I25", "I63")),
    Group("dx_dengue", ("A90", "A91")),
    Group("dx_infections", ("A09", "B01", "B08", "B18")),
    Group("dx_digestive", ("K29", "K35")),
    Group("dx_musculoskeletal", ("M17", "M54")),
    Group("dx_injuries", ("S01", "S06", "S52", "S93")),
    Group("dx_kidney_urinary", ("N18", "N39")),
)

# Patients under care for a chronic disease: its active Conditions (clinical-status=active), now.
REGISTERS: Final = (
    Group("reg_hypertension", ("I10",)),
    Group("reg_diabetes", ("E11",)),
    Group("reg_lipids", ("E78",)),
    Group("reg_copd", ("J44",)),
    Group("reg_asthma", ("J45",)),
    Group("reg_hepatitis_b", ("B18.0", "B18.1")),
    Group("reg_ihd", ("I20", "I25")),
    Group("reg_ckd", ("N18",)),
)


@dataclass(frozen=True, slots=True)
class Antigen:
    """A vaccine of the expanded programme: its CVX code, the doses a child gets, and the birth cohort it is
    given to (0: the children born in the year, 1: the year before)."""

    key: str
    cvx: str
    doses: int
    cohort: int


def _antigen(vaccine: str, cohort: int) -> Antigen:
    """``vaccine`` (a key of the national schedule, ketnoi/vn/epi_schedule.py): its code and its number of
    doses are the schedule's, so the dashboard and the record's schedule table never disagree."""
    doses = sum(1 for dose in epi_schedule.SCHEDULE if dose.key == vaccine)
    return Antigen(f"vx_{vaccine}", epi_schedule.VACCINES[vaccine].cvx, doses, cohort)


# The programme's vaccines in the order the page lists them, each with the cohort it is measured against
# (a vaccine given from the second year of life is measured against the children born the year before).
ANTIGENS: Final = tuple(
    _antigen(vaccine, cohort)
    for vaccine, cohort in (
        ("hepb", 0), ("bcg", 0), ("penta", 0), ("bopv", 0), ("ipv", 0), ("measles", 0), ("mr", 1), ("dtp", 1),
        ("je", 1),
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Filters:
    """The page's filters: a year, its months ``first``..``last`` (1–12) and optionally one facility."""

    year: int
    first: int = 1
    last: int = 12
    facility: str | None = None

    def start(self) -> datetime:
        return _month_start(self.year, self.first)

    def end(self) -> datetime:
        """The instant after the period (exclusive)."""
        return _month_start(self.year + self.last // 12, self.last % 12 + 1)

    def period(self) -> str:
        """The period as an ISO 8601 interval of months (a CSV column)."""
        return f"{self.year}-{self.first:02d}/{self.year}-{self.last:02d}"

    def months(self) -> list[int]:
        return list(range(self.first, self.last + 1))

    def params(self) -> list[tuple[str, str]]:
        """The filters as the page's query string (the CSV link carries the same)."""
        out = [("year", str(self.year)), ("from", str(self.first)), ("to", str(self.last))]
        return out + ([("facility", self.facility)] if self.facility else [])


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=ICT)


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def parse_filters(params: Mapping[str, str], today: date) -> tuple[Filters, list[str]]:
    """The filters of a query string, and the text keys of what was wrong (the wrong value is replaced
    by its default: the page still answers)."""
    errors: list[str] = []
    year = _integer(params.get("year"), FIRST_YEAR, LAST_YEAR)
    if year is None:
        errors += ["bad_year"] if params.get("year") else []
        year = today.year
    first = _integer(params.get("from"), 1, 12)
    last = _integer(params.get("to"), 1, 12)
    if (params.get("from") and first is None) or (params.get("to") and last is None):
        errors.append("bad_months")
    first, last = first or 1, last or 12
    if first > last:
        errors.append("bad_months")
        first, last = 1, 12
    facility = (params.get("facility") or "").strip() or None
    if facility is not None and not _FACILITY.fullmatch(facility):
        errors.append("bad_facility")
        facility = None
    return Filters(year, first, last, facility), errors


def _integer(text: str | None, low: int, high: int) -> int | None:
    if not text or not text.strip().isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


# ---- the plan: which counts a page asks ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Search:
    """One count: what it measures (``indicator``, ``key``) and the search that gives it."""

    indicator: str  # visits | diagnoses | doses | cohort | registers
    key: str  # a month (1–12), a text key, or a birth year
    rtype: str
    query: tuple[tuple[str, str], ...]


def starting(param: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
    """The criteria of a date parameter for what starts in [start, end): ``sa`` (at or after the end of the
    second before ``start``) and ``lt`` (before ``end``). ``ge`` would also count a period still open (an
    encounter without an end) in every month after its start, and a date without a time (read as a UTC
    day by the server) on the Vietnamese day before ``start``; a date's UTC midnight is 07:00 the same
    day in Vietnam, so ``sa`` puts it on its own day."""
    return [(param, f"sa{_instant(start - timedelta(seconds=1))}"), (param, f"lt{_instant(end)}")]


def plan(filters: Filters) -> list[Search]:
    """Every count of the page, in the order shown."""
    facility = filters.facility
    period = (filters.start(), filters.end())
    searches: list[Search] = []
    for month in filters.months():
        low, high = _month_start(filters.year, month), _month_start(filters.year + month // 12, month % 12 + 1)
        query = [*starting("date", low, high), ("status:not", "cancelled"), ("status:not", "entered-in-error")]
        query += [("service-provider", facility)] if facility else []
        searches.append(Search("visits", str(month), "Encounter", tuple(query)))
    # A Condition's facility is its Encounter's: Condition has no parameter of its own for one.
    at = [("encounter.service-provider", facility)] if facility else []
    for group in DIAGNOSIS_GROUPS:
        query = [("code", group.values()), *starting("recorded-date", *period), *at]
        searches.append(Search("diagnoses", group.key, "Condition", tuple(query)))
    # An Immunization names no Encounter parameter (R4 has none): its facility is its Location's.
    where = [("location.organization", facility)] if facility else []
    for antigen in ANTIGENS:
        query = [("vaccine-code", f"{CVX}|{antigen.cvx}"), *starting("date", *period), ("status", "completed")]
        searches.append(Search("doses", antigen.key, "Immunization", tuple(query + where)))
    if facility is None:  # a Patient names no facility the searches could narrow the cohort by
        for born in sorted({filters.year - a.cohort for a in ANTIGENS}):
            query = [("birthdate", f"ge{born}-01-01"), ("birthdate", f"lt{born + 1}-01-01")]
            searches.append(Search("cohort", str(born), "Patient", tuple(query)))
    for group in REGISTERS:
        query = [("code", group.values()), ("clinical-status", "active"), *at]
        searches.append(Search("registers", group.key, "Condition", tuple(query)))
    return searches


def most_searches() -> int:
    """The most counts one page asks (twelve months, no facility)."""
    return len(plan(Filters(2026)))


# ---- the answers: what the page and the CSV show -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    indicator: str
    key: str
    label: str
    period: str
    value: int | None  # None: the count was refused
    codes: str = ""
    expected: float | None = None  # immunisations: the doses the cohort should have had in the period
    coverage: float | None = None  # immunisations: doses ÷ expected, per cent

    def share(self, top: int) -> float:
        """The bar's length, 0–100, against the largest value of its chart."""
        return round(100.0 * (self.value or 0) / top, 1) if top > 0 else 0.0


@dataclass(slots=True)
class Indicators:
    visits: list[Row] = field(default_factory=list)
    diagnoses: list[Row] = field(default_factory=list)
    immunizations: list[Row] = field(default_factory=list)
    cohorts: list[Row] = field(default_factory=list)
    registers: list[Row] = field(default_factory=list)

    def all(self) -> list[Row]:
        return [*self.visits, *self.diagnoses, *self.immunizations, *self.cohorts, *self.registers]


def assemble(
    filters: Filters, searches: Sequence[Search], totals: Sequence[int | None], text: Mapping[str, str], today: date
) -> Indicators:
    """The rows of every indicator from the plan's counts (``totals[i]`` answers ``searches[i]``); labels
    in the user's language (``text``)."""
    found = {(s.indicator, s.key): total for s, total in zip(searches, totals, strict=True)}
    out = Indicators()
    for month in filters.months():
        key = str(month)
        out.visits.append(Row("visits", key, f"{month:02d}/{filters.year}", f"{filters.year}-{month:02d}",
                              found.get(("visits", key))))  # fmt: skip
    diagnoses = [
        Row("diagnoses", g.key, text[g.key], filters.period(), found.get(("diagnoses", g.key)), _codes(g))
        for g in DIAGNOSIS_GROUPS
    ]
    out.diagnoses = sorted(diagnoses, key=lambda r: (-(r.value or 0), r.label))
    share = len(filters.months()) / 12  # a part of the year expects that part of the year's doses
    for born in sorted({filters.year - a.cohort for a in ANTIGENS}):
        if ("cohort", str(born)) in found:
            out.cohorts.append(Row("cohort", str(born), str(born), str(born), found[("cohort", str(born))]))
    births = {int(r.key): r.value for r in out.cohorts}
    for a in ANTIGENS:
        doses = found.get(("doses", a.key))
        cohort = births.get(filters.year - a.cohort)
        expected = cohort * a.doses * share if cohort else None
        coverage = round(100.0 * doses / expected, 1) if expected and doses is not None else None
        out.immunizations.append(Row("doses", a.key, text[a.key], filters.period(), doses, f"CVX {a.cvx}",
                                     round(expected, 1) if expected else None, coverage))  # fmt: skip
    for g in REGISTERS:
        out.registers.append(
            Row("registers", g.key, text[g.key], today.isoformat(), found.get(("registers", g.key)), _codes(g))
        )
    return out


def _codes(group: Group) -> str:
    return ", ".join(f"{c}*" if len(c) == 3 else c for c in group.codes)


def visits_series(rows: Sequence[Row], label: str, unit: str, year: int) -> dict[str, Any]:
    """The visits as ``static/console-chart.js`` draws a series: seconds since the epoch (each month's
    first day) and values."""
    t = [_month_start(year, int(r.key)).astimezone(UTC).timestamp() for r in rows]
    return {"label": label, "unit": unit, "low": None, "high": None, "t": t, "v": [r.value for r in rows]}


def top(rows: Sequence[Row]) -> int:
    return max((r.value or 0 for r in rows), default=0)


# The CSV's columns: machine-readable names (a spreadsheet's formulas refer to them), labels translated.
CSV_COLUMNS: Final = ("indicator", "label", "period", "value")


def csv_rows(found: Indicators) -> list[tuple[str, str, str, str]]:
    """Every indicator's rows: (indicator, label, period, value); a refused count has an empty value."""
    out: list[tuple[str, str, str, str]] = []
    for row in found.all():
        if row.indicator == "doses":
            out.append(("immunization_doses", row.label, row.period, _text(row.value)))
            out.append(("immunization_coverage_percent", row.label, row.period, _text(row.coverage)))
            continue
        name = {"visits": "visits", "diagnoses": "diagnosis_group", "cohort": "births",
                "registers": "chronic_register_active"}[row.indicator]  # fmt: skip
        out.append((name, row.label, row.period, _text(row.value)))
    return out


def _text(value: float | None) -> str:
    return "" if value is None else str(value)


def csv_text(rows: Sequence[tuple[str, str, str, str]]) -> str:
    """The CSV document, with a byte order mark: without it Excel reads UTF-8 as the system's code page and
    shows Vietnamese as mojibake. Cells that start like a formula are quoted with a ' (CSV injection)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows([tuple(_cell(c) for c in row) for row in rows])
    return "\ufeff" + buffer.getvalue()


def _cell(text: str) -> str:
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") and not _NUMBER.fullmatch(text) else text


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def number(value: float | None, lang: str) -> str:
    """A count or a percentage as the page shows it: thousands grouped, one decimal, in the language's
    way (Vietnamese: 12.345 and 85,3); a refused count is a dash."""
    if value is None:
        return "—"
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
    return text.translate(str.maketrans(",.", ".,")) if lang == "vi" else text
