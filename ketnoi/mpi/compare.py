"""Two patients → one comparison level per field (the agreement vector of Fellegi–Sunter).

Each field has a few ordered levels, from the strongest agreement to disagreement. ``None`` means the
field says nothing (missing on one side): it neither adds nor removes weight. The levels are shaped by
how Vietnamese registrations differ for the same person:

- names arrive with and without diacritics (``folded``), with one keystroke wrong (``fuzzy``), with the
  words in another order or the given name in the family field (``moved``), the middle name dropped
  (``dropped``) or replaced (``other``);
- birth dates with day and month swapped (``swapped``), only the year known (``partial``);
- addresses coded before the 2025 reform: compared as today's units, through the ConceptMap;
- phones as ``+84`` or ``0``: compared in national form.
"""

from __future__ import annotations

from typing import Final

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from ketnoi.claims import places
from ketnoi.search.extract_mpi import TODAY_UNITS, Birth, PatientView, Place

Vector = tuple[str | None, ...]

FIELDS: Final = ("cccd", "bhxh", "phone", "family", "given", "middle", "birth", "gender", "place")
LEVELS: Final[dict[str, tuple[str, ...]]] = {
    "cccd": ("agree", "disagree"),
    "bhxh": ("agree", "disagree"),
    "phone": ("agree", "disagree"),
    "family": ("exact", "folded", "fuzzy", "moved", "other"),
    "given": ("exact", "folded", "fuzzy", "moved", "other"),
    "middle": ("agree", "fuzzy", "dropped", "other"),
    "birth": ("exact", "swapped", "partial", "month", "year", "close", "other"),
    "gender": ("agree", "disagree"),
    "place": ("commune", "province", "other"),
}
_FUZZY_JW: Final = 0.9  # Jaro–Winkler on folded names; one keystroke in a 4+ letter name stays above it


def compare(a: PatientView, b: PatientView) -> Vector:
    """The level of every field in :data:`FIELDS` order."""
    return (
        _equal(a.cccd, b.cccd),
        _equal(a.bhxh, b.bhxh),
        _phones(a.phones, b.phones),
        name_level(a.family, a.family_exact, b.family, b.family_exact, a.tokens, b.tokens),
        name_level(a.given, a.given_exact, b.given, b.given_exact, a.tokens, b.tokens),
        middle_level(a.middle, b.middle),
        birth_level(a.birth, b.birth),
        _equal(a.gender, b.gender),
        place_level(a.place, b.place),
    )


def name_level(
    a: str, a_exact: str, b: str, b_exact: str, a_all: tuple[str, ...], b_all: tuple[str, ...]
) -> str | None:
    if not a or not b:
        return None
    if a == b:
        return "exact" if a_exact == b_exact else "folded"
    if similar(a, b):
        return "fuzzy"
    if a in b_all or b in a_all:
        return "moved"
    return "other"


def similar(a: str, b: str) -> bool:
    """One keystroke apart (Damerau: a letter added, dropped, changed or two swapped), or close by
    Jaro–Winkler; a two-letter name changed in one letter is a different name ("An" / "Ân" fold equal)."""
    if min(len(a), len(b)) >= 3 and DamerauLevenshtein.distance(a, b) <= 1:
        return True
    return JaroWinkler.similarity(a, b) >= _FUZZY_JW


def middle_level(a: tuple[str, ...], b: tuple[str, ...]) -> str | None:
    if not a and not b:
        return None
    if a == b:
        return "agree"
    if not a or not b:
        return "dropped"
    if len(a) == len(b) and all(similar(x, y) for x, y in zip(a, b, strict=True)):
        return "fuzzy"
    return "other"


def birth_level(a: Birth, b: Birth) -> str | None:
    (ay, am, ad), (by, bm, bd) = a, b
    if ay is None or by is None:
        return None
    if None in (am, ad, bm, bd):
        return _partial_birth(a, b)
    if a == b:
        return "exact"
    if ay == by and (am, ad) == (bd, bm):
        return "swapped"
    if ay == by:
        return "month" if am == bm else "year"
    return "close" if abs(ay - by) == 1 or _one_digit_apart(ay, by) else "other"


def _partial_birth(a: Birth, b: Birth) -> str:
    """At least one side knows less than the day: agreement on what both know."""
    if a[0] != b[0]:
        return "close" if abs(a[0] - b[0]) == 1 else "other"  # type: ignore[operator]
    if a[1] is None or b[1] is None or a[1] == b[1]:
        return "partial"
    return "year"


def _one_digit_apart(a: int, b: int) -> bool:
    x, y = str(a), str(b)
    return len(x) == len(y) and sum(p != q for p, q in zip(x, y, strict=True)) == 1


def place_level(a: Place | None, b: Place | None) -> str | None:
    pa, pb = today(a), today(b)
    if pa is None or pb is None or pa[0] is None or pb[0] is None:
        return None
    if pa[0] != pb[0]:
        return "other"
    if pa[1] is None or pb[1] is None:
        return None  # the same province, a commune unknown on one side: neither for nor against
    return "commune" if pa[1] == pb[1] else "province"


def today(place: Place | None) -> tuple[str | None, str | None] | None:
    """(province, commune) as today's units: codes from before the 2025 reform go through the ConceptMap."""
    if place is None:
        return None
    if place.system.endswith(TODAY_UNITS):
        return (place.province, place.commune)
    province = places.province(place.province)
    commune = places.commune(place.commune)
    return (
        province.code if province else (commune.parent if commune else None),
        commune.code if commune else None,
    )


def _equal(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return None
    return "agree" if a == b else "disagree"


def _phones(a: frozenset[str], b: frozenset[str]) -> str | None:
    if not a or not b:
        return None
    return "agree" if a & b else "disagree"
