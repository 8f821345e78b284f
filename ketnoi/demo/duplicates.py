"""Deliberate duplicate patients with the errors real registration desks make.

A duplicate is the same person registered again (new id, at another facility) with one to three of:

* ``no_diacritics``: the name typed without Vietnamese diacritics ("Nguyen Van An");
* ``swapped_middle_name``: another middle name of the same sex (Văn → Hữu, Thị → Ngọc);
* ``typo``: one keystroke error (deletion, doubled letter, adjacent transposition or a wrong letter) in the
  family or given name, i.e. Damerau edit distance 1 once diacritics are ignored;
* ``day_month_swap``: birth date with day and month exchanged (only when the result is a different, valid
  date);
* ``missing_cccd``: no CCCD identifier.
"""

from __future__ import annotations

import random

from ketnoi.demo import names, people

ERROR_KINDS = ("no_diacritics", "swapped_middle_name", "typo", "day_month_swap", "missing_cccd")
_LETTERS = "abcdeghiklmnopqrstuvxy"


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


def applicable(p: people.Person) -> list[str]:
    kinds = ["missing_cccd", "typo"]
    if names.strip_diacritics(p.name.text) != p.name.text:
        kinds.append("no_diacritics")
    if p.name.middle and not p.name.given_first:
        kinds.append("swapped_middle_name")
    b = p.birth
    if b.day <= 12 and b.day != b.month and b.replace(month=b.day, day=b.month) <= people.AS_OF:
        kinds.append("day_month_swap")
    return kinds


def make_duplicate(p: people.Person, new_id: str, rng: random.Random) -> tuple[people.Person, list[str]]:
    """The duplicate person and the error kinds introduced (in ``ERROR_KINDS`` order)."""
    kinds = applicable(p)
    k = rng.choices((1, 2, 3), (0.6, 0.3, 0.1))[0]
    chosen = set(rng.sample(kinds, min(k, len(kinds))))
    name = p.name
    if "swapped_middle_name" in chosen:
        pool = names.MIDDLE_FEMALE if p.female else names.MIDDLE_MALE
        middle = rng.choice([m for m in pool if names.fold(m) != names.fold(name.middle)])
        name = name._replace(middle=middle)
    if "typo" in chosen:
        if rng.random() < 0.6:
            name = name._replace(given=typo(name.given, rng))
        else:
            name = name._replace(family=typo(name.family, rng))
    if "no_diacritics" in chosen:
        s = names.strip_diacritics
        name = name._replace(family=s(name.family), middle=s(name.middle), given=s(name.given))
    birth = p.birth
    if "day_month_swap" in chosen:
        birth = birth.replace(month=birth.day, day=birth.month)
    dup = p.with_(id=new_id, name=name, birth=birth, cccd=None if "missing_cccd" in chosen else p.cccd)
    return dup, [kind for kind in ERROR_KINDS if kind in chosen]
