"""Identifiers: CCCD (personal ID), BHYT card codes, social-insurance numbers, phones, resource ids.

Rules follow /work/shared/vn/REFERENCE.md §2b:

* CCCD, 12 digits ``PPP S YY NNNNNN``: PPP = "0" + 2-digit birth-registration province code; S = sex and
  century (even male, odd female; 0/1 → 19xx, 2/3 → 20xx, ...); YY = last two digits of the birth year;
  NNNNNN random. No checksum.
* BHYT card, 15 characters ``CC L PP NNNNNNNNNN``: 2-letter beneficiary category, benefit level 1-5,
  2-digit province of the issuing social-insurance office, 10-digit social-insurance number.
"""

from __future__ import annotations

import random
import re
import uuid
from typing import NamedTuple

from ketnoi.vn.identifier_rules import BHXH_SYSTEM, BHYT_SYSTEM, CCCD_SYSTEM, FACILITY_SYSTEM, LICENCE_SYSTEM

# Identifier systems (documented in docs/demo-data.md): those of the VN Core IG where it has one
# (CCCD, BHYT card, facility code: ketnoi.vn.identifier_rules), ketnoi's own for the rest.
__all__ = ["BHXH_SYSTEM", "BHYT_SYSTEM", "CCCD_SYSTEM", "FACILITY_SYSTEM", "LICENCE_SYSTEM"]
ORG_SYSTEM = "https://fhir.ketnoi.vn/sid/org"
DEPARTMENT_SYSTEM = "https://fhir.ketnoi.vn/sid/khoa"

CCCD_RE = re.compile(r"^(\d{3})(\d)(\d{2})(\d{6})$")
BHYT_RE = re.compile(r"^([A-Z]{2})([1-5])(\d{2})(\d{10})$")


class BhytCategory(NamedTuple):
    code: str
    name: str
    level: int  # benefit level (mức hưởng), see docs: the level→% table is an assumption


# The categories of REFERENCE.md §2b plus GD (household-based enrolment), the largest real group.
BHYT_CATEGORIES: dict[str, BhytCategory] = {
    c.code: c
    for c in (
        BhytCategory("DN", "Người lao động trong doanh nghiệp", 4),
        BhytCategory("HC", "Cán bộ, công chức, viên chức", 4),
        BhytCategory("HT", "Người hưởng lương hưu", 3),
        BhytCategory("TE", "Trẻ em dưới 6 tuổi", 1),
        BhytCategory("HS", "Học sinh, sinh viên", 4),
        BhytCategory("HN", "Người thuộc hộ nghèo", 2),
        BhytCategory("CN", "Người thuộc hộ cận nghèo", 3),
        BhytCategory("TN", "Người hưởng trợ cấp thất nghiệp", 4),
        BhytCategory("CC", "Người có công với cách mạng", 1),
        BhytCategory("GD", "Người tham gia theo hộ gia đình", 4),
        BhytCategory("QN", "Quân nhân", 5),
        BhytCategory("CA", "Công an nhân dân", 5),
        BhytCategory("CY", "Người làm công tác cơ yếu", 5),
    )
}
BENEFIT_PERCENT = {1: 100, 2: 100, 3: 95, 4: 80, 5: 100}

# Mobile prefixes (10-digit numbers) by network.
MOBILE_PREFIXES: tuple[str, ...] = (
    # Viettel
    "086",
    "096",
    "097",
    "098",
    "032",
    "033",
    "034",
    "035",
    "036",
    "037",
    "038",
    "039",
    # VinaPhone
    "088",
    "091",
    "094",
    "081",
    "082",
    "083",
    "084",
    "085",
    # MobiFone
    "089",
    "090",
    "093",
    "070",
    "076",
    "077",
    "078",
    "079",
    # Vietnamobile, Gmobile
    "092",
    "056",
    "058",
    "099",
    "059",
)
# Rough market shares: Viettel ~55 %, VinaPhone ~22 %, MobiFone ~20 %, others ~3 %.
MOBILE_WEIGHTS: tuple[float, ...] = (55 / 12,) * 12 + (22 / 8,) * 8 + (20 / 8,) * 8 + (3 / 5,) * 5


def century_sex_digit(birth_year: int, female: bool) -> int:
    return (birth_year // 100 - 19) * 2 + (1 if female else 0)


def cccd(birth_province_code: str, birth_year: int, female: bool, rng: random.Random) -> str:
    return (
        f"0{birth_province_code}{century_sex_digit(birth_year, female)}{birth_year % 100:02d}"
        f"{rng.randrange(1_000_000):06d}"
    )


def decode_cccd(value: str) -> tuple[str, int, bool] | None:
    """(2-digit province code, birth year, female) or None when the value does not have the shape."""
    m = CCCD_RE.match(value)
    if not m or not m.group(1).startswith("0"):
        return None
    digit = int(m.group(2))
    return m.group(1)[1:], 1900 + 100 * (digit // 2) + int(m.group(3)), digit % 2 == 1


def bhxh_number(province_code: str, rng: random.Random) -> str:
    """10-digit social-insurance number; the first two digits are the enrolling province (assumption)."""
    return f"{province_code}{rng.randrange(100_000_000):08d}"


def bhyt_card(category: str, province_code: str, bhxh: str) -> str:
    return f"{category}{BHYT_CATEGORIES[category].level}{province_code}{bhxh}"


def mobile(rng: random.Random) -> str:
    prefix = rng.choices(MOBILE_PREFIXES, MOBILE_WEIGHTS)[0]
    return f"{prefix}{rng.randrange(10_000_000):07d}"


def rng_uuid(rng: random.Random) -> str:
    """A UUID-shaped id (RFC 4122 version 4 layout) drawn from a seeded RNG: deterministic."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_NS = uuid.UUID("3f1f0d3e-5a43-5c1e-9a57-6b657430690a")  # fixed namespace of ketnoi demo data


def stable_uuid(*parts: object) -> str:
    """uuid5 of the parts, for shared resources (facilities, practitioners) that have a natural key."""
    return str(uuid.uuid5(_NS, "|".join(str(p) for p in parts)))
