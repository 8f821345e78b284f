"""The shared health system: Organizations, Locations, Practitioners and PractitionerRoles.

Hierarchy (Organization.partOf): Bộ Y tế (Ministry of Health) → central hospitals and one Sở Y tế
(provincial health department) per province → the provincial general hospital and the regional health
centres (district level, "Trung tâm Y tế khu vực") → the commune health stations of their area. Hospital
departments are Organizations of type ``dept`` part of their hospital. Every facility has a 5-character
facility code (2-digit province + 3 digits) and one Location. Ids are uuid5 of natural keys; names of
staff come from the seeded RNG.

Facilities follow VN Core's ``vn-core-provider`` profile, departments ``vn-core-healthcare-department``,
Locations ``vn-core-location``, staff ``vn-core-practitioner`` and ``vn-core-practitioner-role``. The
Ministry, the Sở Y tế and the payer are not care providers: no VN Core profile fits them (their types
``govt`` / ``pay`` and ketnoi's ``org-level`` stay).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ketnoi.demo import ids, names, people, places

ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
# The administrative level the access policy reads (ketnoi.interactions.organizations, ADR 0014).
ORG_LEVEL_SYSTEM = "https://fhir.ketnoi.vn/CodeSystem/org-level"
QUALIFICATION_SYSTEM = "https://fhir.ketnoi.vn/CodeSystem/practitioner-qualification"
ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"

Resource = dict[str, Any]

# Central hospitals: (name, province code, regions they take referrals from).
CENTRAL_HOSPITALS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Bệnh viện Bạch Mai", "01", ("NM", "RRD", "NC")),
    ("Bệnh viện Hữu nghị Việt Đức", "01", ("RRD", "NC")),
    ("Bệnh viện Nhi Trung ương", "01", ("NM", "RRD")),
    ("Bệnh viện Trung ương Thái Nguyên", "19", ("NM",)),
    ("Bệnh viện Trung ương Huế", "46", ("NC", "SC", "CH")),
    ("Bệnh viện C Đà Nẵng", "48", ("SC", "CH")),
    ("Bệnh viện Chợ Rẫy", "79", ("SE", "MK", "CH")),
    ("Bệnh viện Thống Nhất", "79", ("SE",)),
    ("Bệnh viện Đa khoa Trung ương Cần Thơ", "92", ("MK",)),
)

DEPARTMENTS: dict[str, str] = {
    "KB": "Khoa Khám bệnh",
    "CC": "Khoa Cấp cứu",
    "NOI": "Khoa Nội tổng hợp",
    "NGOAI": "Khoa Ngoại tổng hợp",
    "NHI": "Khoa Nhi",
    "SAN": "Khoa Phụ sản",
    "XN": "Khoa Xét nghiệm",
}
LEVEL_DEPARTMENTS = {
    "central": ("KB", "CC", "NOI", "NGOAI", "NHI", "SAN", "XN"),
    "provincial": ("KB", "CC", "NOI", "NGOAI", "NHI", "SAN", "XN"),
    "regional": ("KB", "CC", "NOI", "SAN"),
}


@dataclass(slots=True)
class Facility:
    code: str
    name: str
    level: str
    province: str
    org_id: str
    loc_id: str
    doctors: list[str] = field(default_factory=list)  # Practitioner ids
    nurses: list[str] = field(default_factory=list)
    dept_org: dict[str, str] = field(default_factory=dict)  # department code → Organization id


@dataclass(slots=True)
class HealthSystem:
    resources: list[Resource]
    ministry_id: str
    payer_id: str
    provincial: dict[str, Facility]
    regional: dict[str, list[Facility]]
    stations: dict[str, list[Facility]]  # province → one per commune, same order as Province.communes
    central: list[Facility]
    central_by_region: dict[str, list[Facility]]

    def regional_for(self, province: str, commune: int) -> Facility:
        centres = self.regional[province]
        return centres[commune % len(centres)]


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


# What VN Core fixes (vn-core-provider: Organization.type and identifier:MaCSKCB.type) or requires as
# a pattern (vn-core-healthcare-department: Organization.type), text included.
_PROVIDER_TYPE = {"coding": [_coding(ORG_TYPE, "prov", "Healthcare Provider")], "text": "Healthcare Provider"}
_DEPARTMENT_TYPE = {"coding": [_coding(ORG_TYPE, "dept", "Hospital Department")], "text": "Hospital Department"}
_PROVIDER_NUMBER = {
    "coding": [_coding("http://terminology.hl7.org/CodeSystem/v2-0203", "PRN", "Provider number")],
    "text": "Provider number",
}


def _address(province: str, commune: str | None, line: str | None = None) -> Resource:
    p = places.PROVINCE_BY_CODE[province]
    addr: Resource = {"use": "work", "type": "physical"}
    index = p.communes.index(commune) if commune in p.communes else None
    addr["extension"] = [people.admin_address(province, index)]
    parts = [x for x in (line, commune, f"{p.kind} {p.name}") if x]
    addr["text"] = ", ".join(parts)
    if line:
        addr["line"] = [line]
    if commune:
        addr["city"] = commune
    addr["state"] = p.name
    addr["country"] = "VN"
    return addr


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"ketnoi-demo:{seed}:facilities")
        self.out: list[Resource] = []
        self.licence_serial: dict[str, int] = {}

    def org(
        self,
        key: str,
        name: str,
        types: list[Resource],
        identifier: Resource | None,
        part_of: str | None,
        address: Resource | None,
    ) -> str:
        oid = ids.stable_uuid("Organization", key)
        res: Resource = {"resourceType": "Organization", "id": oid}
        if identifier:
            res["identifier"] = [identifier]
        res["active"] = True
        res["type"] = types
        res["name"] = name
        if address:
            res["address"] = [address]
        if part_of:
            res["partOf"] = {"reference": f"Organization/{part_of}"}
        self.out.append(res)
        return oid

    def facility(self, code: str, name: str, level: str, province: str, commune: str | None, part_of: str) -> Facility:
        # VN Core fixes the type (one, exactly this) and the facility code's use and type (slice MaCSKCB);
        # the level (central ... commune) has no place there: the code, name and partOf tell it.
        types = [_PROVIDER_TYPE]
        ident = {"use": "secondary", "type": _PROVIDER_NUMBER, "system": ids.FACILITY_SYSTEM, "value": code}
        address = _address(province, commune)
        org_id = self.org(code, name, types, ident, part_of, address)
        loc_id = ids.stable_uuid("Location", code)
        self.out.append(
            {
                "resourceType": "Location",
                "id": loc_id,
                "identifier": [{"system": ids.FACILITY_SYSTEM, "value": code}],
                "status": "active",
                "name": name,
                "mode": "instance",
                "type": [
                    {
                        "coding": [
                            _coding(
                                "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                "PC" if level == "commune" else "HOSP",
                                "primary care clinic" if level == "commune" else "Hospital",
                            )
                        ]
                    }
                ],
                "address": address,
                "physicalType": {
                    "coding": [
                        _coding("http://terminology.hl7.org/CodeSystem/location-physical-type", "bu", "Building")
                    ]
                },
                "managingOrganization": {"reference": f"Organization/{org_id}"},
            }
        )
        fac = Facility(code, name, level, province, org_id, loc_id)
        if level == "commune":
            self.staff(fac, None, org_id, (("doctor", 1), ("nurse", 2)))
        else:
            for dept in LEVEL_DEPARTMENTS[level]:
                dname = f"{DEPARTMENTS[dept]} - {name}"
                did = self.org(
                    f"{code}.{dept}",
                    dname,
                    [_DEPARTMENT_TYPE],
                    {"system": ids.DEPARTMENT_SYSTEM, "value": f"{code}.{dept}"},
                    org_id,
                    None,
                )
                fac.dept_org[dept] = did
                self.staff(fac, dept, did, (("doctor", 2), ("nurse", 1)))
        return fac

    def staff(self, fac: Facility, dept: str | None, org_id: str, counts: tuple[tuple[str, int], ...]) -> None:
        rng = self.rng
        issuer = "BYT" if fac.level == "central" else fac.province
        for role, n in counts:
            for k in range(n):
                key = f"{fac.code}.{dept or '-'}.{role}.{k}"
                pid = ids.stable_uuid("Practitioner", key)
                female = rng.random() < (0.45 if role == "doctor" else 0.85)
                year = rng.randint(1966, 1999)
                given = rng.choice(names.GIVEN_FEMALE if female else names.GIVEN_MALE)
                mids, mw = names.middle_weights(female, year)
                name = names.NameParts(
                    people.draw_family(rng, places.PROVINCE_REGION[fac.province]),
                    rng.choices(mids, mw)[0],
                    given,
                    False,
                )
                serial = self.licence_serial.get(issuer, 0) + 1
                self.licence_serial[issuer] = serial
                qual = ("BS", "Bác sĩ") if role == "doctor" else ("DD", "Điều dưỡng")
                self.out.append(
                    {
                        "resourceType": "Practitioner",
                        "id": pid,
                        "identifier": [
                            {
                                "use": "official",
                                "system": ids.LICENCE_SYSTEM,
                                "value": f"{serial:06d}/{issuer}-CCHN",
                            }
                        ],
                        "active": True,
                        "name": [
                            {
                                "use": "official",
                                "text": name.text,
                                "family": name.family,
                                "given": name.given_list,
                            }
                        ],
                        "gender": "female" if female else "male",
                        "birthDate": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                        "qualification": [
                            {"code": {"coding": [_coding(QUALIFICATION_SYSTEM, *qual)], "text": qual[1]}}
                        ],
                    }
                )
                role_res: Resource = {
                    "resourceType": "PractitionerRole",
                    "id": ids.stable_uuid("PractitionerRole", key),
                    "active": True,
                    "practitioner": {"reference": f"Practitioner/{pid}"},
                    "organization": {"reference": f"Organization/{org_id}"},
                    "code": [{"coding": [_coding(ROLE_SYSTEM, role, role.capitalize())], "text": qual[1]}],
                }
                if dept:
                    role_res["specialty"] = [{"text": DEPARTMENTS[dept]}]
                role_res["location"] = [{"reference": f"Location/{fac.loc_id}"}]
                self.out.append(role_res)
                (fac.doctors if role == "doctor" else fac.nurses).append(pid)


def build(seed: int) -> HealthSystem:
    """The health system for a seed; independent of the number of patients."""
    b = _Builder(seed)
    govt = {"coding": [_coding(ORG_TYPE, "govt", "Government")]}
    ministry = b.org(
        "BYT",
        "Bộ Y tế",
        [govt, {"coding": [_coding(ORG_LEVEL_SYSTEM, "national", "Trung ương")]}],
        {"system": ids.ORG_SYSTEM, "value": "BYT"},
        None,
        _address("01", "Phường Giảng Võ", "138A Giảng Võ"),
    )
    payer = b.org(
        "BHXH",
        "Bảo hiểm xã hội Việt Nam",
        [{"coding": [_coding(ORG_TYPE, "pay", "Payer")]}],
        {"system": ids.ORG_SYSTEM, "value": "BHXH"},
        None,
        _address("01", "Phường Cầu Giấy", "7 Tràng Thi"),
    )
    central: list[Facility] = []
    seq: dict[str, int] = {}
    for name, prov, _regions in CENTRAL_HOSPITALS:
        seq[prov] = seq.get(prov, 0) + 1
        commune = places.PROVINCE_BY_CODE[prov].communes[0]
        central.append(b.facility(f"{prov}9{seq[prov]:02d}", name, "central", prov, commune, ministry))
    central_by_region: dict[str, list[Facility]] = {}
    for fac, (_n, _p, regions) in zip(central, CENTRAL_HOSPITALS, strict=True):
        for r in regions:
            central_by_region.setdefault(r, []).append(fac)
    provincial: dict[str, Facility] = {}
    regional: dict[str, list[Facility]] = {}
    stations: dict[str, list[Facility]] = {}
    for p in places.PROVINCES:
        label = f"{p.kind.lower()} {p.name}" if p.kind == "Tỉnh" else p.name
        dept = b.org(
            f"SYT{p.code}",
            f"Sở Y tế {p.name}",
            [govt, {"coding": [_coding(ORG_LEVEL_SYSTEM, "province", "Tỉnh, thành phố")]}],
            {"system": ids.ORG_SYSTEM, "value": f"SYT{p.code}"},
            ministry,
            _address(p.code, p.communes[0]),
        )
        provincial[p.code] = b.facility(
            f"{p.code}001", f"Bệnh viện Đa khoa {label}", "provincial", p.code, p.communes[0], dept
        )
        regional[p.code] = [
            b.facility(
                f"{p.code}1{k + 1:02d}",
                f"Trung tâm Y tế khu vực {commune.split(' ', 1)[1]}",
                "regional",
                p.code,
                commune,
                dept,
            )
            for k, commune in enumerate(p.communes[:2])
        ]
        stations[p.code] = [
            b.facility(
                f"{p.code}2{k + 1:02d}",
                f"Trạm Y tế {commune}",
                "commune",
                p.code,
                commune,
                regional[p.code][k % 2].org_id,
            )
            for k, commune in enumerate(p.communes)
        ]
    return HealthSystem(b.out, ministry, payer, provincial, regional, stations, central, central_by_region)
