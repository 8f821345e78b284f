"""Deliberate duplicate patients with the errors real registration desks make.

A duplicate is the same person registered again (new id, at another facility) with some of these errors
(``ERROR_KINDS``, the order ``duplicates.csv`` lists them in):

* ``no_diacritics``: the name typed without Vietnamese diacritics ("Nguyen Van An");
* ``swapped_middle_name``: another middle name of the same sex (Văn → Hữu, Thị → Ngọc);
* ``typo``: one keystroke error (deletion, doubled letter, adjacent transposition or a wrong letter) in the
  family or given name, i.e. Damerau edit distance 1 once diacritics are ignored;
* ``day_month_swap``: birth date with day and month exchanged (only when the result is a different, valid
  date);
* ``missing_cccd``: no CCCD identifier;
* ``dropped_middle_name``: the middle name left out ("Nguyễn An"; only when there is one);
* ``name_order``: the name in the wrong order, one of two ways, half each. Either the fields are split the
  other way round while the text is right (a form that takes the last word as the family name: family
  "An", given ["Nguyễn", "Văn"], text "Nguyễn Văn An"; for a given-first Central-Highlands name the first
  word: family "Y", given ["Moan", "Niê"]), or the fields are right and the text is in the other order
  ("Văn An Nguyễn"; "Niê Y Moan");
* ``birth_year_only``: birthDate written as the year only ("1987");
* ``old_address_codes``: the address coded with the pre-2025 province the person's commune belonged to
  (``vn-admin-unit-legacy``), no ward and no city: a desk still on the 63-province list;
* ``moved_commune``: registered at another commune of the same province, with a new address line;
* ``phone_format``: the phone written in +84 form ("+84 912 345 678" for "0912345678");
* ``missing_phone``: no phone (only when there is one, as for the previous kind);
* ``missing_bhyt``: no BHYT card (only when there is one).

Two modes (``Mode``). Normal (``NORMAL``): k = 1, 2 or 3 errors (weights 0.6/0.3/0.1) drawn among the
kinds that apply to the person (``applicable``), never two that hide each other (``EXCLUSIVE``); then,
independently, ``missing_cccd`` with p 0.4 and ``missing_bhyt`` with p 0.5 (when they apply; one already
drawn counts once). Hard (``HARD``): k = 2, 3 or 4 (0.4/0.4/0.2), ``missing_cccd`` p 0.7, ``missing_bhyt``
p 0.8. Either way the share of duplicates missing a CCCD is p + (1 - p) × the chance the k draws took it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ketnoi.demo import names, people, places

ERROR_KINDS = (
    "no_diacritics",
    "swapped_middle_name",
    "typo",
    "day_month_swap",
    "missing_cccd",
    "dropped_middle_name",
    "name_order",
    "birth_year_only",
    "old_address_codes",
    "moved_commune",
    "phone_format",
    "missing_phone",
    "missing_bhyt",
)
# Pairs never drawn together: each would hide the other (a dropped middle name cannot be swapped, a year
# has no day to swap, a legacy address has no commune to move, a missing phone has no format).
EXCLUSIVE = (
    ("swapped_middle_name", "dropped_middle_name"),
    ("day_month_swap", "birth_year_only"),
    ("old_address_codes", "moved_commune"),
    ("phone_format", "missing_phone"),
)
_CONFLICTS = {pair for a, b in EXCLUSIVE for pair in ((a, b), (b, a))}
_LETTERS = "abcdeghiklmnopqrstuvxy"


@dataclass(frozen=True, slots=True)
class Mode:
    counts: tuple[int, ...]  # how many errors to draw among the applicable kinds...
    weights: tuple[float, ...]  # ...with these weights
    independent: tuple[tuple[str, float], ...]  # kinds applied on top, each with its own probability


NORMAL = Mode((1, 2, 3), (0.6, 0.3, 0.1), (("missing_cccd", 0.4), ("missing_bhyt", 0.5)))
HARD = Mode((2, 3, 4), (0.4, 0.4, 0.2), (("missing_cccd", 0.7), ("missing_bhyt", 0.8)))


def typo(s: str, rng: random.Random) -> str:
    """One keystroke error; the diacritic-free forms differ by exactly one Damerau edit."""
    ops = ["sub", "dup"]
    if len(s) >= 3:
        ops.append("del")
    if any(names.fold(s[i]) != names.fold(s[i + 1]) for i in range(len(s) - 1)):
        ops.append("swap")
    op = rng.choice(ops)
    if op == "del":
        i = rng.randrange(1, len(s))  # keep the initial
        return s[:i] + s[i + 1 :]
    if op == "dup":
        i = rng.randrange(len(s))
        return s[: i + 1] + s[i] + s[i + 1 :]
    if op == "swap":
        choices = [i for i in range(len(s) - 1) if names.fold(s[i]) != names.fold(s[i + 1])]
        i = rng.choice(choices)
        a, b = s[i], s[i + 1]
        if i == 0:  # keep capitalisation at the start
            a, b = a.lower(), b.upper()
        return s[:i] + b + a + s[i + 2 :]
    i = rng.randrange(1, len(s)) if len(s) > 1 else 0
    old = names.fold(s[i])
    c = rng.choice([x for x in _LETTERS if x != old])
    return s[:i] + (c.upper() if i == 0 else c) + s[i + 1 :]


def plus84(phone: str) -> str:
    """ "0912345678" → "+84 912 345 678": the international form some desks and apps write."""
    rest = phone[1:]
    return f"+84 {rest[:3]} {rest[3:6]} {rest[6:]}"


def applicable(p: people.Person) -> list[str]:
    """The kinds that can change this person's record, in a fixed order."""
    kinds = ["typo", "name_order", "birth_year_only", "old_address_codes", "moved_commune"]
    if p.cccd:
        kinds.append("missing_cccd")
    if names.strip_diacritics(p.name.text) != p.name.text:
        kinds.append("no_diacritics")
    if p.name.middle and not p.name.given_first:
        kinds += ["swapped_middle_name", "dropped_middle_name"]
    b = p.birth
    if b.day <= 12 and b.day != b.month and b.replace(month=b.day, day=b.month) <= people.AS_OF:
        kinds.append("day_month_swap")
    if p.phone:
        kinds += ["phone_format", "missing_phone"]
    if p.bhyt:
        kinds.append("missing_bhyt")
    return kinds


def choose(kinds: list[str], rng: random.Random, mode: Mode) -> set[str]:
    """k kinds (k drawn with the mode's weights) that do not hide each other, then the independent ones."""
    k = rng.choices(mode.counts, mode.weights)[0]
    pool = list(kinds)
    chosen: set[str] = set()
    while pool and len(chosen) < k:
        kind = pool.pop(rng.randrange(len(pool)))
        chosen.add(kind)
        pool = [other for other in pool if (kind, other) not in _CONFLICTS]
    for kind, p in mode.independent:
        # Draw even when the kind does not apply, so that the draws after it do not shift.
        if rng.random() < p and kind in kinds:
            chosen.add(kind)
    return chosen


def _name(p: people.Person, chosen: set[str], rng: random.Random) -> names.NameParts:
    name = p.name
    if "swapped_middle_name" in chosen:
        pool = names.MIDDLE_FEMALE if p.female else names.MIDDLE_MALE
        middle = rng.choice([m for m in pool if names.fold(m) != names.fold(name.middle)])
        name = name._replace(middle=middle)
    if "dropped_middle_name" in chosen:
        name = name._replace(middle="")
    if "typo" in chosen:
        if rng.random() < 0.6:
            name = name._replace(given=typo(name.given, rng))
        else:
            name = name._replace(family=typo(name.family, rng))
    if "no_diacritics" in chosen:
        s = names.strip_diacritics
        name = name._replace(family=s(name.family), middle=s(name.middle), given=s(name.given))
    return name


def wrong_order(name: names.NameParts, rng: random.Random) -> people.WrittenName:
    """``name`` written in the other order: the fields split the other way, or the text reversed."""
    words = name.text.split()
    if rng.random() < 0.5:  # a form that assumes the other convention picks the wrong word as family name
        if name.given_first:
            return people.WrittenName(words[0], tuple(words[1:]), name.text)
        return people.WrittenName(words[-1], tuple(words[:-1]), name.text)
    given = tuple(name.given_list)
    if name.given_first:  # "Niê Y Moan", "Ksor H'Linh": family first, as a Kinh name would be
        return people.WrittenName(name.family, given, " ".join([name.family, *words[:-1]]))
    return people.WrittenName(name.family, given, " ".join([*given, name.family]))  # "Văn An Nguyễn"


def _in_order(
    name: names.NameParts, chosen: set[str], rng: random.Random
) -> tuple[names.NameParts, people.WrittenName | None]:
    """The name and, for ``name_order``, how it is written."""
    if "name_order" not in chosen:
        return name, None
    written = wrong_order(name, rng)
    if (written.family, list(written.given), written.text) != (name.family, name.given_list, name.text):
        return name, written
    # A name that reads the same in either order ("Hoàng Hoàng" once the middle name is dropped, "Mai Mai
    # Mai") cannot be written in the wrong one: a keystroke error instead keeps the count of errors.
    chosen.discard("name_order")
    if "typo" in chosen:
        return name, None
    chosen.add("typo")
    return name._replace(given=typo(name.given, rng)), None


def _moved(p: people.Person, rng: random.Random) -> tuple[int, str]:
    """Another commune of the same province and an address line there that differs from the old one."""
    count = len(places.PROVINCE_BY_CODE[p.province].communes)
    commune = rng.choice([c for c in range(count) if c != p.commune])
    line = people.draw_line(rng, p.province, commune)
    while line == p.address_line:
        line = people.draw_line(rng, p.province, commune)
    return commune, line


def make_duplicate(
    p: people.Person, new_id: str, rng: random.Random, hard: bool = False
) -> tuple[people.Person, list[str]]:
    """The duplicate person and the error kinds introduced (in ``ERROR_KINDS`` order)."""
    chosen = choose(applicable(p), rng, HARD if hard else NORMAL)
    name = _name(p, chosen, rng)
    name, written = _in_order(name, chosen, rng)
    # The person keeps the true birth date (the birthplace's name and the duplicate's care depend on it);
    # only what the desk wrote differs.
    written_birth = None
    if "day_month_swap" in chosen:
        written_birth = p.birth.replace(month=p.birth.day, day=p.birth.month).isoformat()
    elif "birth_year_only" in chosen:
        written_birth = str(p.birth.year)
    commune, line = _moved(p, rng) if "moved_commune" in chosen else (p.commune, p.address_line)
    legacy = places.legacy_province_of(p.province, p.commune).code if "old_address_codes" in chosen else None
    phone = p.phone
    if "missing_phone" in chosen:
        phone = None
    elif "phone_format" in chosen and phone:
        phone = plus84(phone)
    no_card = "missing_bhyt" in chosen
    dup = p.with_(
        id=new_id,
        name=name,
        written_name=written,
        written_birth=written_birth,
        commune=commune,
        address_line=line,
        legacy_province=legacy,
        phone=phone,
        cccd=None if "missing_cccd" in chosen else p.cccd,
        bhyt=None if no_card else p.bhyt,
        category=None if no_card else p.category,
    )
    return dup, [kind for kind in ERROR_KINDS if kind in chosen]
