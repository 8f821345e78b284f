"""Index rows: what a resource contributes to the search index tables.

Extraction (``extract.py``) turns a resource into these rows; the store writes them in the same
transaction as the resource version; the compiler (``compile.py``) queries them. One row type per
FHIR search parameter type, each mapping to one table (``idx_<kind>``) that every resource type
shares, keyed by (resource_type, resource_id, param).

Conventions shared by every producer and consumer:
- ``param`` is the search parameter ``code`` (e.g. ``"identifier"``, ``"_tag"``).
- Strings: ``norm`` is :func:`ketnoi.search.normalize.fold` of the value (lower case, accents and
  Vietnamese diacritics removed, đ → d); ``exact`` is the value as written.
- Dates are half-open ranges ``[low, high)`` in epoch seconds (UTC, float). A value with day
  precision "2020-01-01" covers [2020-01-01T00:00Z, 2020-01-02T00:00Z). Open ends use
  :data:`DATE_MIN` / :data:`DATE_MAX`.
- Numbers and quantities carry the implicit precision range ``[low, high]`` (1.5 → [1.45, 1.55]).
- Full text (``_text``, ``_content``): one :class:`TextRow` per resource and parameter whose ``body``
  is the folded text (see :mod:`ketnoi.search.extract_text`), at most :data:`TEXT_BODY_MAX` characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

DATE_MIN = -62135596800.0  # 0001-01-01T00:00:00Z
DATE_MAX = 253402300800.0  # 10000-01-01T00:00:00Z


class StringRow(NamedTuple):
    param: str
    norm: str
    exact: str


class TokenRow(NamedTuple):
    param: str
    system: str | None
    code: str | None
    text: str | None  # folded display/text, for the :text modifier


class DateRow(NamedTuple):
    param: str
    low: float
    high: float


class NumberRow(NamedTuple):
    param: str
    value: float
    low: float
    high: float


class QuantityRow(NamedTuple):
    param: str
    system: str | None
    code: str | None  # unit code (UCUM canonical where possible)
    value: float
    low: float
    high: float


class ReferenceRow(NamedTuple):
    param: str
    target_type: str | None  # "Patient" for "Patient/123" or an absolute URL ending in it
    target_id: str | None
    url: str | None  # absolute URL or canonical (without "|version")
    version: str | None  # canonical version or _history version


class UriRow(NamedTuple):
    param: str
    uri: str


TEXT_BODY_MAX = 65536  # characters of folded text kept per (resource, parameter); the rest is not searchable


class TextRow(NamedTuple):
    param: str  # "_text" (narrative) or "_content" (every string value)
    body: str  # folded words separated by single spaces


@dataclass(slots=True)
class IndexRows:
    """All index rows of one resource version."""

    string: list[StringRow] = field(default_factory=list)
    token: list[TokenRow] = field(default_factory=list)
    date: list[DateRow] = field(default_factory=list)
    number: list[NumberRow] = field(default_factory=list)
    quantity: list[QuantityRow] = field(default_factory=list)
    reference: list[ReferenceRow] = field(default_factory=list)
    uri: list[UriRow] = field(default_factory=list)
    text: list[TextRow] = field(default_factory=list)
