"""XML1's person and insurance fields -> Patient (VN Core) and one Coverage per BHYT card (ketnoi's BHYT profile).

The Patient is the facility's record of the person: its id comes from the facility's patient number
(MA_BN), so the same person at two facilities is two Patients that share CCCD and BHYT identifiers, for the
patient index to link (issue 13).
"""

from __future__ import annotations

import re

from ketnoi.claims import places
from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, VisitIds, by_identifier, coding, concept
from ketnoi.claims.codes import kept_if_lost
from ketnoi.claims.row import Row
from ketnoi.xml130.values import parse_date

_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_TYPES = {
    s.CCCD_SYSTEM: coding(_V2_0203, "NI", "National unique individual identifier"),
    s.CMND_SYSTEM: coding(_V2_0203, "NI", "National unique individual identifier"),
    s.PASSPORT_SYSTEM: coding(_V2_0203, "PPN", "Passport number"),
    s.BHYT_SYSTEM: coding(_V2_0203, "SB", "Social Beneficiary Identifier"),
}
_GENDER = {"1": "male", "2": "female", "3": "unknown"}
_PASSPORT = re.compile(r"^[A-Z][0-9]{7}$")
BHXH_NAME = "Bảo hiểm xã hội Việt Nam"


def id_system(number: str) -> str | None:
    """Which identifier SO_CCCD holds: a CCCD (12 digits), an old CMND (9) or a passport (a letter, 7 digits)."""
    if number.isdigit() and len(number) == 12:
        return s.CCCD_SYSTEM
    if number.isdigit() and len(number) == 9:
        return s.CMND_SYSTEM
    return s.PASSPORT_SYSTEM if _PASSPORT.match(number) else None


def split_name(full: str) -> Json:
    """A Vietnamese name the Vietnamese way: the family name first, then middle and given names."""
    words = full.split()
    name: Json = {"use": "official", "text": " ".join(words)}
    if len(words) > 1:
        name["family"] = words[0]
        name["given"] = words[1:]
    elif words:
        name["given"] = words
    return name


def _identifiers(ids: VisitIds, xml1: Row) -> list[Json]:
    found: list[Json] = [
        {
            "use": "usual",
            "type": {"coding": [coding(_V2_0203, "MR", "Medical record number")]},
            "system": s.patient_system(ids.facility),
            "value": xml1.text("MA_BN") or "",
        }
    ]
    number = xml1.text("SO_CCCD")
    system = id_system(number) if number else None
    if number and system:
        found.append({"use": "official", "type": {"coding": [_TYPES[system]]}, "system": system, "value": number})
    for card in dict.fromkeys(xml1.items("MA_THE_BHYT")):
        found.append(
            {"use": "official", "type": {"coding": [_TYPES[s.BHYT_SYSTEM]]}, "system": s.BHYT_SYSTEM, "value": card}
        )
    return found


def _admin_part(url: str, system: str, code: str, display: str) -> Json:
    return {"url": url, "valueCodeableConcept": {"coding": [coding(system, code, display)]}}


def address(xml1: Row) -> Json | None:
    text = xml1.text("DIA_CHI")
    province = places.province(xml1.text("MATINH_CU_TRU"))
    commune = places.commune(xml1.text("MAXA_CU_TRU"))
    district = places.district(xml1.text("MAHUYEN_CU_TRU"), xml1.text("MATINH_CU_TRU"))
    if province is None and commune is not None:
        province = places.province(commune.parent)
    if not (text or province):
        return None
    found: Json = {"use": "home", "type": "physical"}
    parts: list[Json] = []
    if province is not None:
        parts.append(_admin_part("state", s.ADMIN_2025, province.code, province.display))
    if district is not None:  # abolished in 2025: kept as written, in the old list
        parts.append(_admin_part("district", s.ADMIN_LEGACY, district.code, district.display))
    if commune is not None:
        parts.append(_admin_part("ward", s.ADMIN_2025, commune.code, commune.display))
    if parts:
        found["extension"] = [{"url": s.ADMIN_ADDRESS_URL, "extension": parts}]
    # A code the parts do not give back (before the 2025 merger, a district that no longer has one, unknown)
    # is kept as written, so that the export writes what the hospital sent.
    shown = {"MATINH_CU_TRU": province, "MAHUYEN_CU_TRU": district, "MAXA_CU_TRU": commune}
    kept = [bag for name, unit in shown.items() for bag in kept_if_lost(xml1, name, unit.code if unit else None)]
    if kept:
        found["extension"] = [*found.get("extension", []), *kept]
    if text:
        found["text"] = text
    if commune is not None:
        found["city"] = commune.display
    if district is not None:
        found["district"] = district.display
    if province is not None:
        found["state"] = province.display
    found["country"] = "VN"
    return found


def _extensions(xml1: Row) -> list[Json]:
    found: list[Json] = []
    ethnicity = xml1.code("MA_DANTOC")
    if ethnicity:
        found.append({"url": s.ETHNICITY_URL, "valueCodeableConcept": concept(s.ETHNICITY_SYSTEM, ethnicity)})
    nationality = xml1.code("MA_QUOCTICH")
    if nationality:
        code = concept(s.NATIONALITY_CODE, nationality)
        found.append({"url": s.NATIONALITY_URL, "extension": [{"url": "code", "valueCodeableConcept": code}]})
    occupation = xml1.code("MA_NGHE_NGHIEP")
    if occupation:
        found.append({"url": s.OCCUPATION_URL, "valueCodeableConcept": concept(s.OCCUPATION_CODE, occupation)})
    return found


def patient(ids: VisitIds, xml1: Row) -> Json:
    found = ids.start("Patient", ids.patient)
    extensions = _extensions(xml1)
    born = xml1.when("NGAY_SINH")
    if born and "T" in born:  # the hour of birth, kept for newborns (XML1 #6)
        extensions.append({"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": born})
    if extensions:
        found["extension"] = extensions
    found["identifier"] = _identifiers(ids, xml1)
    found["active"] = True
    found["name"] = [split_name(xml1.text("HO_TEN") or "")]
    phone = xml1.text("DIEN_THOAI")
    if phone:
        found["telecom"] = [{"system": "phone", "value": phone}]
    gender = _GENDER.get(xml1.code("GIOI_TINH") or "")
    if gender:
        found["gender"] = gender
    if born:
        found["birthDate"] = born.partition("T")[0]
    home = address(xml1)
    if home:
        found["address"] = [home]
    return found


def _card_parts(xml1: Row) -> list[tuple[str, str | None, str | None, str | None]]:
    """(card, registered facility, valid from, valid to) per card; the lists are parallel (XML1 #16-19)."""
    cards = xml1.items("MA_THE_BHYT")
    registered, starts, ends = xml1.items("MA_DKBD"), xml1.items("GT_THE_TU"), xml1.items("GT_THE_DEN")

    def at(values: list[str], i: int) -> str | None:
        return values[i] if i < len(values) else None

    return [(card, at(registered, i), at(starts, i), at(ends, i)) for i, card in enumerate(cards)]


def _date(text: str | None) -> str | None:
    # The shared parser, so a card date with unknown parts ("20240100") becomes "2024-01", not "2024-01-00".
    return parse_date(text)[0] if text else None


def coverages(ids: VisitIds, xml1: Row) -> list[Json]:
    """One Coverage per card and validity period: the visits made on one card in one period share it, and
    the yearly renewal of a card (same number, new period) is a new Coverage, so an older visit's Claim
    keeps pointing at the period it was made in."""
    found = []
    for card, registered, start, end in _card_parts(xml1):
        cid = s.stable_id(s.BHYT_SYSTEM + "|" + ids.patient, f"{card}|{start or ''}")
        coverage = ids.start("Coverage", cid)
        del coverage["meta"]  # shared by the visits of the card: not one visit's resource
        coverage["identifier"] = [{"system": s.BHYT_SYSTEM, "value": card}]
        coverage["status"] = "active"
        coverage["type"] = {
            "coding": [coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PUBLICPOL", "public healthcare")],
            "text": "Bảo hiểm y tế",
        }
        coverage["subscriberId"] = card
        coverage["beneficiary"] = ids.patient_ref
        coverage["relationship"] = {
            "coding": [coding("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self", "Self")]
        }
        period = {k: v for k, v in (("start", _date(start)), ("end", _date(end))) if v}
        if period:
            coverage["period"] = period
        coverage["payor"] = [by_identifier("Organization", s.ORG_SYSTEM, "BHXH", BHXH_NAME)]
        coverage["class"] = _classes(card)
        if registered:
            coverage["network"] = registered
        found.append(coverage)
    return found


def _classes(card: str) -> list[Json]:
    """The card's beneficiary group (its first two letters) and benefit level (third character)."""
    kind = "http://terminology.hl7.org/CodeSystem/coverage-class"
    found = [{"type": {"coding": [coding(kind, "plan", "Plan")]}, "value": card[:2]}]
    if len(card) > 2 and card[2].isdigit():
        found.append(
            {"type": {"coding": [coding(kind, "class", "Class")]}, "value": card[2], "name": f"Mức hưởng {card[2]}"}
        )
    return found
