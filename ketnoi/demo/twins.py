"""Twins: the hard negatives of record linkage (hard-duplicates mode only).

A twin is a different person who shares almost everything a matcher looks at with a patient: the family
and middle name, the birth date, the sex, the address (province, commune, line), the birth province, the
ethnic group and, for a child, the parent. Only the given name and the identifiers differ: a new id, an own
CCCD, BHYT card (when the sibling has one) and mobile phone (likewise). A master patient index must keep
the two apart; ``twins.csv`` lists them (``ketnoi.demo.generate``).
"""

from __future__ import annotations

import random

from ketnoi.demo import ids, names, people

TWIN_RATE = 0.01  # share of patients with a twin, in hard mode


def given_names(p: people.Person) -> tuple[str, ...]:
    """The given names of the person's naming style and sex."""
    style = names.ETHNICITIES[p.ethnicity].style
    if style == "kinh":
        return names.GIVEN_FEMALE if p.female else names.GIVEN_MALE
    own = names.OWN_STYLE[style]
    return own[4] if p.female else own[3]


def draw_twin(rng: random.Random, sibling: people.Person, pid: str) -> people.Person:
    """The sibling's twin of the same sex, with another given name and identifiers of its own."""
    given = rng.choice([g for g in given_names(sibling) if names.fold(g) != names.fold(sibling.name.given)])
    cccd = sibling.cccd
    while cccd == sibling.cccd:  # same province, year and sex: only the serial tells them apart
        cccd = ids.cccd(sibling.birth_province, sibling.birth.year, sibling.female, rng)
    phone = None
    if sibling.phone:
        phone = sibling.phone
        while phone == sibling.phone:
            phone = ids.mobile(rng)
    bhyt = None
    if sibling.bhyt and sibling.category:
        bhyt = sibling.bhyt
        while bhyt == sibling.bhyt:
            bhyt = ids.bhyt_card(sibling.category, sibling.province, ids.bhxh_number(sibling.province, rng))
    return sibling.with_(id=pid, name=sibling.name._replace(given=given), cccd=cccd, phone=phone, bhyt=bhyt)
