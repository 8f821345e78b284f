"""Synthetic people: demographics, identifiers and the Patient / Coverage resources."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, NamedTuple

from ketnoi.demo import ids, names, places

Resource = dict[str, Any]

AS_OF = date(2026, 6, 30)  # "today" of the data set: all dates are on or before it
AS_OF_ISO = AS_OF.isoformat()
# VN Core (http://fhir.ehealth.gov.vn/core): the ethnic group ("race" in the IG's naming) and the
# administrative units of an address, coded. The IG's own address CodeSystem is empty and has the
# district level the 2025 reform abolished: the codes are those of ketnoi's vn-admin-unit-2025.
ETHNICITY_URL = "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-race"
ETHNICITY_SYSTEM = "http://fhir.ehealth.gov.vn/core/CodeSystem/vn-core-race"
ADMIN_ADDRESS_URL = "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-administrative-address"
ADMIN_UNIT_SYSTEM = "https://fhir.ketnoi.vn/CodeSystem/vn-admin-unit-2025"
# The 63 provinces (and districts, communes) before 01/07/2025, as ketnoi ships them; a duplicate may be
# registered with them (ketnoi.demo.duplicates, ``old_address_codes``).
ADMIN_LEGACY_SYSTEM = "https://fhir.ketnoi.vn/CodeSystem/vn-admin-unit-legacy"
BIRTHPLACE_URL = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"

# Age pyramid (approximate, shape of GSO 2019 census projected to ~2025):
# (lowest age, highest age, percent of population, share of males)
AGE_BANDS: tuple[tuple[int, int, float, float], ...] = (
    (0, 4, 7.3, 0.53),
    (5, 9, 8.2, 0.52),
    (10, 14, 8.0, 0.52),
    (15, 19, 7.0, 0.52),
    (20, 24, 6.9, 0.51),
    (25, 29, 7.6, 0.51),
    (30, 34, 8.4, 0.50),
    (35, 39, 8.2, 0.50),
    (40, 44, 7.5, 0.50),
    (45, 49, 6.8, 0.50),
    (50, 54, 6.0, 0.49),
    (55, 59, 5.3, 0.48),
    (60, 64, 4.5, 0.46),
    (65, 69, 3.5, 0.45),
    (70, 74, 2.3, 0.43),
    (75, 79, 1.3, 0.40),
    (80, 84, 0.9, 0.37),
    (85, 99, 0.9, 0.33),
)
_BAND_WEIGHTS = [b[2] for b in AGE_BANDS]

_PROVINCE_CODES = [p.code for p in places.PROVINCES]
_PROVINCE_WEIGHTS = [places.PROVINCE_POPULATION[c] for c in _PROVINCE_CODES]
_LEGACY_CODES = [lp.code for lp in places.LEGACY_PROVINCES]
_LEGACY_WEIGHTS = [lp.population for lp in places.LEGACY_PROVINCES]
_PARTS = {
    code: ([lp.code for lp in parts], [lp.population for lp in parts]) for code, parts in places.LEGACY_PARTS.items()
}
MIGRANT_SHARE = 0.2  # born in another province than the one of residence

_REGION_ETH = {r: ([c for c, _ in rows], [w for _, w in rows]) for r, rows in names.REGION_ETHNICITY.items()}


def _kinh_style_share() -> float:
    """Expected share of people with Vietnamese-form names (birth region mix = population mix)."""
    total = sum(_LEGACY_WEIGHTS)
    share = 0.0
    for lp in places.LEGACY_PROVINCES:
        codes, weights = _REGION_ETH[lp.region]
        kinh = sum(w for c, w in zip(codes, weights, strict=True) if names.ETHNICITIES[c].style == "kinh")
        share += lp.population / total * kinh / sum(weights)
    return share


KINH_STYLE_SHARE = _kinh_style_share()
FAMILY_NAMES: tuple[str, ...] = tuple(n for n, _ in names.FAMILY_TARGETS) + names.FAMILY_TAIL
_TOP = [w / KINH_STYLE_SHARE for _, w in names.FAMILY_TARGETS]
assert sum(_TOP) < 100.0, "family-name targets cannot be met with this ethnic mix"
FAMILY_WEIGHTS: tuple[float, ...] = tuple(_TOP) + ((100.0 - sum(_TOP)) / len(names.FAMILY_TAIL),) * len(
    names.FAMILY_TAIL
)

STREETS = (
    "Lê Lợi",
    "Trần Hưng Đạo",
    "Nguyễn Huệ",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Quang Trung",
    "Hùng Vương",
    "Nguyễn Trãi",
    "Lê Duẩn",
    "Điện Biên Phủ",
    "Phan Chu Trinh",
    "Trần Phú",
    "Nguyễn Du",
    "Võ Thị Sáu",
    "Hoàng Văn Thụ",
    "Lê Lai",
    "Phan Đình Phùng",
)
HAMLETS_SOUTH = ("Bình An", "Tân Phú", "Long Hòa", "Phú Mỹ", "Tân Lập", "Mỹ Thạnh", "An Thới", "Hòa Bình")

# BHYT categories by age group: (category, weight)
_CATEGORIES: tuple[tuple[int, tuple[tuple[str, float], ...]], ...] = (
    (6, (("TE", 1.0),)),
    (18, (("HS", 0.9), ("HN", 0.05), ("CN", 0.02), ("GD", 0.03))),
    (23, (("HS", 0.5), ("DN", 0.25), ("GD", 0.25))),
    (
        60,
        (
            ("DN", 0.38),
            ("HC", 0.10),
            ("GD", 0.33),
            ("HN", 0.07),
            ("CN", 0.04),
            ("TN", 0.01),
            ("QN", 0.03),
            ("CA", 0.03),
            ("CY", 0.002),
        ),
    ),
    (200, (("HT", 0.45), ("GD", 0.28), ("CC", 0.08), ("HN", 0.11), ("CN", 0.08))),
)
INSURED_SHARE = 0.93


class WrittenName(NamedTuple):
    """A name as a registration desk wrote it into HumanName, when that is not what ``NameParts`` gives."""

    family: str
    given: tuple[str, ...]
    text: str


@dataclass(slots=True)
class Person:
    id: str
    female: bool
    birth: date
    name: names.NameParts
    ethnicity: str
    region: str
    birth_province: str  # code of the birth-registration province (legacy code before the merger)
    province: str  # residence (34-province code)
    commune: int  # index into Province.communes
    address_line: str
    cccd: str | None
    phone: str | None
    bhyt: str | None
    category: str | None
    marital: str | None
    parent: tuple[str, str, bool, str | None] | None  # (text, family, female, phone) for children
    # How a desk wrote this person, when not as above (only duplicates set these; see duplicates.py):
    written_birth: str | None = None  # birthDate as written, when not ``birth`` (a swapped date, a year)
    written_name: WrittenName | None = None  # HumanName in another order than ``name`` gives
    legacy_province: str | None = None  # address coded with this pre-2025 province, no commune

    @property
    def age(self) -> int:
        b = self.birth
        return AS_OF.year - b.year - ((AS_OF.month, AS_OF.day) < (b.month, b.day))

    def with_(self, **changes: Any) -> Person:
        return replace(self, **changes)


def draw_family(rng: random.Random, region: str) -> str:
    fam = rng.choices(FAMILY_NAMES, FAMILY_WEIGHTS)[0]
    if region not in places.NORTHERN_REGIONS and fam in names.SOUTHERN_VARIANT and rng.random() < 0.8:
        return names.SOUTHERN_VARIANT[fam]
    return fam


def draw_name(rng: random.Random, female: bool, birth_year: int, region: str, ethnicity: str) -> names.NameParts:
    style = names.ETHNICITIES[ethnicity].style
    if style == "kinh":
        mids, mw = names.middle_weights(female, birth_year)
        return names.NameParts(
            draw_family(rng, region),
            rng.choices(mids, mw)[0],
            rng.choice(names.GIVEN_FEMALE if female else names.GIVEN_MALE),
            False,
        )
    fams, mid_m, mid_f, giv_m, giv_f = names.OWN_STYLE[style]
    return names.NameParts(
        rng.choice(fams),
        rng.choice(mid_f if female else mid_m),
        rng.choice(giv_f if female else giv_m),
        style == "highlands",
    )


def draw_line(rng: random.Random, province: str, commune: int) -> str:
    """An address line: house and street in a ward, a village (thôn in the north, ấp in the south) else."""
    if places.PROVINCE_BY_CODE[province].communes[commune].startswith("Phường"):
        return f"Số {rng.randint(1, 299)} đường {rng.choice(STREETS)}"
    if places.PROVINCE_REGION[province] in places.NORTHERN_REGIONS:
        return f"Thôn {rng.randint(1, 12)}"
    return f"Ấp {rng.choice(HAMLETS_SOUTH)}"


def draw_person(rng: random.Random, pid: str) -> Person:
    band = rng.choices(AGE_BANDS, _BAND_WEIGHTS)[0]
    lo, hi, _w, male_share = band
    birth = AS_OF - timedelta(days=rng.randrange(int(lo * 365.25) + 1, int((hi + 1) * 365.25)))
    female = rng.random() >= male_share
    province = rng.choices(_PROVINCE_CODES, _PROVINCE_WEIGHTS)[0]
    if rng.random() < MIGRANT_SHARE:
        legacy = rng.choices(_LEGACY_CODES, _LEGACY_WEIGHTS)[0]
    else:
        codes, weights = _PARTS[province]
        legacy = rng.choices(codes, weights)[0]
    region = places.LEGACY_BY_CODE[legacy].region
    birth_iso = birth.isoformat()
    birth_province = legacy if birth_iso < places.MERGER_DATE_ISO else places.LEGACY_BY_CODE[legacy].new_code
    eth_codes, eth_w = _REGION_ETH[region]
    ethnicity = rng.choices(eth_codes, eth_w)[0]
    name = draw_name(rng, female, birth.year, region, ethnicity)
    prov = places.PROVINCE_BY_CODE[province]
    commune = rng.randrange(len(prov.communes))
    line = draw_line(rng, province, commune)
    age = AS_OF.year - birth.year
    cccd = ids.cccd(birth_province, birth.year, female, rng)
    phone = ids.mobile(rng) if age >= 15 and rng.random() < 0.92 else None
    category = bhyt = None
    if rng.random() < INSURED_SHARE or age < 6:  # children under 6 are covered by law
        for limit, rows in _CATEGORIES:
            if age < limit:
                category = rng.choices([c for c, _ in rows], [w for _, w in rows])[0]
                break
        assert category is not None
        bhyt = ids.bhyt_card(category, province, ids.bhxh_number(province, rng))
    marital = None
    if age >= 18:
        if age < 30:
            marital = "M" if rng.random() < 0.5 else "S"
        else:
            r = rng.random()
            widow = 0.03 if age < 60 else 0.28
            marital = "W" if r < widow else "D" if r < widow + 0.03 else "S" if r < widow + 0.08 else "M"
    parent = None
    if age < 15:
        mother = rng.random() < 0.6
        if mother:
            pname = names.NameParts(
                draw_family(rng, region),
                "Thị" if rng.random() < 0.5 else "Ngọc",
                rng.choice(names.GIVEN_FEMALE),
                name.given_first,
            )
        else:
            pname = draw_name(rng, False, birth.year - 30, region, ethnicity)._replace(family=name.family)
        parent = (pname.text, pname.family, mother, ids.mobile(rng))
    return Person(
        pid,
        female,
        birth,
        name,
        ethnicity,
        region,
        birth_province,
        province,
        commune,
        line,
        cccd,
        phone,
        bhyt,
        category,
        marital,
        parent,
    )


_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
# VN Core fixes the whole type of these identifiers (Patient.identifier:TheCCCD / :TheBHYT): exactly
# this coding and nothing else, so no Vietnamese ``text`` either; the BHYT card's ``use`` is official.
_CCCD_TYPE = {"coding": [{"system": _V2_0203, "code": "NI", "display": "National unique individual identifier"}]}
_BHYT_TYPE = {"coding": [{"system": _V2_0203, "code": "SB", "display": "Social Beneficiary Identifier"}]}
_MARITAL = {
    "M": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                "code": "M",
                "display": "Married",
            }
        ]
    },
    "S": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                "code": "S",
                "display": "Never Married",
            }
        ]
    },
    "W": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                "code": "W",
                "display": "Widowed",
            }
        ]
    },
    "D": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                "code": "D",
                "display": "Divorced",
            }
        ]
    },
}
_LANG = [
    {
        "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "vi", "display": "Vietnamese"}]},
        "preferred": True,
    }
]
_ETH_EXT = {
    code: {
        "url": ETHNICITY_URL,
        "valueCodeableConcept": {"coding": [{"system": ETHNICITY_SYSTEM, "code": code, "display": e.display}]},
    }
    for code, e in names.ETHNICITIES.items()
}


def admin_address(province: str, commune: int | None) -> Resource:
    """VN Core's administrative-address extension: the province (``state``) and, when known, the
    commune (``ward``), coded."""
    prov = places.PROVINCE_BY_CODE[province]
    parts = [("state", province, f"{prov.kind} {prov.name}")]
    if commune is not None:
        parts.append(("ward", prov.commune_codes[commune], prov.communes[commune]))
    return _admin_extension(ADMIN_UNIT_SYSTEM, parts)


def _admin_extension(system: str, parts: list[tuple[str, str, str]]) -> Resource:
    return {
        "url": ADMIN_ADDRESS_URL,
        "extension": [
            {
                "url": part,
                "valueCodeableConcept": {"coding": [{"system": system, "code": code, "display": shown}]},
            }
            for part, code, shown in parts
        ],
    }


_PARENT_REL = {
    True: [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                    "code": "MTH",
                    "display": "mother",
                }
            ]
        }
    ],
    False: [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                    "code": "FTH",
                    "display": "father",
                }
            ]
        }
    ],
}


def address(p: Person) -> Resource:
    if p.legacy_province is not None:
        return _legacy_address(p.address_line, p.legacy_province)
    prov = places.PROVINCE_BY_CODE[p.province]
    commune = prov.communes[p.commune]
    return {
        "extension": [admin_address(p.province, p.commune)],
        "use": "home",
        "type": "physical",
        "text": f"{p.address_line}, {commune}, {prov.kind} {prov.name}",
        "line": [p.address_line],
        "city": commune,
        "state": prov.name,
        "country": "VN",
    }


def _legacy_address(line: str, legacy: str) -> Resource:
    """The address as a desk with a pre-2025 unit list writes it: the old province, coded in the legacy
    system; that list has no commune of today, so no ward, no city."""
    display, name = places.legacy_display(legacy)
    return {
        "extension": [_admin_extension(ADMIN_LEGACY_SYSTEM, [("state", legacy, display)])],
        "use": "home",
        "type": "physical",
        "text": f"{line}, {display}",
        "line": [line],
        "state": name,
        "country": "VN",
    }


def human_name(p: Person) -> Resource:
    """The official HumanName: as ``p.name`` gives it, or as a desk wrote it (``p.written_name``)."""
    w = p.written_name
    if w is not None:
        return {"use": "official", "text": w.text, "family": w.family, "given": list(w.given)}
    n = p.name
    return {"use": "official", "text": n.text, "family": n.family, "given": n.given_list}


def patient_resource(p: Person, gp_org: str) -> Resource:
    birth_iso = p.birth.isoformat()
    res: Resource = {
        "resourceType": "Patient",
        "id": p.id,
        "extension": [
            _ETH_EXT[p.ethnicity],
            {
                "url": BIRTHPLACE_URL,
                "valueAddress": {
                    "state": places.birth_province_name(p.birth_province, birth_iso),
                    "country": "VN",
                },
            },
        ],
    }
    identifier = []
    if p.cccd:
        identifier.append({"use": "official", "type": _CCCD_TYPE, "system": ids.CCCD_SYSTEM, "value": p.cccd})
    if p.bhyt:
        identifier.append({"use": "official", "type": _BHYT_TYPE, "system": ids.BHYT_SYSTEM, "value": p.bhyt})
    if identifier:
        res["identifier"] = identifier
    res["active"] = True
    res["name"] = [human_name(p)]
    if p.phone:
        res["telecom"] = [{"system": "phone", "value": p.phone, "use": "mobile"}]
    res["gender"] = "female" if p.female else "male"
    res["birthDate"] = p.written_birth or birth_iso
    res["address"] = [address(p)]
    if p.marital:
        res["maritalStatus"] = _MARITAL[p.marital]
    if p.parent:
        text, family, mother, phone = p.parent
        contact: Resource = {"relationship": _PARENT_REL[mother], "name": {"text": text, "family": family}}
        if phone:
            contact["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
        contact["gender"] = "female" if mother else "male"
        res["contact"] = [contact]
    res["communication"] = _LANG
    res["generalPractitioner"] = [{"reference": f"Organization/{gp_org}"}]
    return res


def coverage_resource(cid: str, p: Person, patient_ref: str, payer: str, gp_code: str) -> Resource:
    assert p.bhyt and p.category
    cat = ids.BHYT_CATEGORIES[p.category]
    year = AS_OF.year
    start, end = f"{year}-01-01", f"{year}-12-31"
    if p.category == "TE":  # valid until the day before the 6th birthday
        b = p.birth
        sixth = date(b.year + 6, b.month, 28 if (b.month, b.day) == (2, 29) else b.day)
        start, end = b.isoformat(), (sixth - timedelta(days=1)).isoformat()
    return {
        "resourceType": "Coverage",
        "id": cid,
        "identifier": [{"system": ids.BHYT_SYSTEM, "value": p.bhyt}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "PUBLICPOL",
                    "display": "public healthcare",
                }
            ],
            "text": "Bảo hiểm y tế",
        },
        "subscriberId": p.bhyt,
        "beneficiary": {"reference": patient_ref},
        "relationship": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                    "code": "self",
                    "display": "Self",
                }
            ]
        },
        "period": {"start": start, "end": end},
        "payor": [{"reference": f"Organization/{payer}"}],
        "class": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                            "code": "plan",
                            "display": "Plan",
                        }
                    ]
                },
                "value": cat.code,
                "name": cat.name,
            },
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                            "code": "class",
                            "display": "Class",
                        }
                    ]
                },
                "value": str(cat.level),
                "name": f"Mức hưởng {cat.level} ({ids.BENEFIT_PERCENT[cat.level]}%)",
            },
        ],
        "network": gp_code,
    }
