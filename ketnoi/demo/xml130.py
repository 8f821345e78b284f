"""Synthetic claims XML (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT) of the demo population.

``ketnoi demo generate --format xml130`` writes GIAMDINHHS envelopes, ``out/xml130/<MACSKCB>-<nnnn>.xml``,
one facility per file and at most ``visits_per_file`` visits each, with ``ketnoi.xml130.writer``. Patient
``i`` is the same person as patient ``i`` of the FHIR generator with the same seed: drawn by the same calls
on the same random stream (``people.draw_person(_patient_rng(seed, i), ids.rng_uuid(rng))``), so the name,
CCCD, BHYT card, birth date, sex, address, phone and ethnicity agree. The visits come from a stream of their
own, ``random.Random("ketnoi-demo:<seed>:xml130:<i>")``, so that the FHIR output does not change; they are
not the FHIR generator's Encounters. Same patients and seed, same bytes.

Each patient has 1 to 3 visits in the two years before ``people.AS_OF``, at a facility of the demo health
system: the commune station where the card is registered (MA_DKBD), the regional centre of the commune or the
provincial hospital. MA_LOAI_KCB 01 (most), 02 or 03; what each visit holds is in ``xml130_care``, the lines
and their amounts in ``xml130_lines``. Every row passes ``ketnoi.xml130.values.check_row``.

Decisions (the schema leaves them open, or the demo data lack what a real HIS has):

* **MAHUYEN_CU_TRU**: districts were abolished on 01/07/2025 and how the field is filled since is an open
  question (schema §3). The 5-digit code of a 2025 commune is the code of one of the communes merged into
  it; the district that commune belonged to (QĐ 124/2004/QĐ-TTg, ketnoi's ``vn-admin-unit-legacy``) is
  written. Two special zones (Lý Sơn, Côn Đảo) were island districts without communes: ``000``.
  ``MATINH_CU_TRU`` and ``MAXA_CU_TRU`` are the 2025 codes.
* **MA_QUOCTICH** ``000`` for Vietnam (as in the tests' examples; TT 07/2016/TT-BCA App. 2 was not
  available to check). **MA_NGHE_NGHIEP** ``00000`` (none recorded): the demo has no occupations.
* **MA_DOITUONG_KCB**: ``1.1`` at the registered station, ``1.2`` at the regional centre, ``1.3`` (with a
  referral letter from the station) or ``3.2`` (self-referred inpatient) at the provincial hospital, ``2``
  for emergencies. ketnoi's list (``xml130-ma-doituong-kcb``, a fragment) has no code for a patient without
  a card; such visits use ``3.5``, the code whose fund share is nil, with TYLE_TT_BH and MUC_HUONG 0.
* **MUC_HUONG**: the card's benefit level (``ids.BENEFIT_PERCENT``: 80, 95 or 100) on every line. The
  card's validity is its calendar year (a TE card: birth to the eve of the 6th birthday).
* **Numbers**: MA_LK = facility code + a running number of that facility (unique per facility); MA_BN = a
  running patient number of the facility, the same for a person's every visit there; MA_HSBA = KB/NT/BA +
  year + running number; MA_BAC_SI and NGUOI_THUC_HIEN = the practising-certificate numbers of the
  facility's Practitioners in the FHIR data; MA_TTDV = 10 digits derived from the facility code.
* Department codes (MA_KHOA): K01 outpatient exam, K02 emergency, K03 internal medicine, K19 surgery, K24
  paediatrics, K26 obstetrics; the shape of QĐ 5937 App. 5, not checked against it.
* Duplicates of the FHIR generator (``--duplicates``) are not made in this format.
"""

from __future__ import annotations

import random
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import orjson

from ketnoi.demo import catalog, facilities, ids, people, places
from ketnoi.demo.facilities import Facility, HealthSystem
from ketnoi.demo.generate import Summary, _patient_rng
from ketnoi.demo.xml130_care import ACUTE_CODES, CASES, CHRONIC_CODES, OUTPATIENT_TREATMENT, Case, Plan, clinical
from ketnoi.demo.xml130_lines import ZERO, Lines, Payer, Row, amount, ordered, stamp
from ketnoi.xml130.writer import write_envelope

Tables = dict[str, list[Row]]

FOLDER = "xml130"
CREATED = people.AS_OF.strftime("%Y%m%d") + "2300"  # NGAYLAP of every envelope: evening of the data's "today"
WINDOW_DAYS = 730
TABLES = ("XML1", "XML2", "XML3", "XML4", "XML5")

# 2025 commune code -> district code (QĐ 124/2004/QĐ-TTg) of the legacy commune that had the same code.
# From ketnoi/terminology/data (vn-admin-unit-legacy); tests/demo/test_xml130_generate.py checks each pair.
_DISTRICTS = (
    "00004:001 00070:002 00235:006 00166:005 09556:268 00145:004 09574:269 00376:016 00454:017 09700:271 01273:040 "
    "01477:047 01576:049 01321:043 01654:051 02215:070 00694:024 02287:073 02536:076 00721:026 03127:094 03151:095 "
    "03253:099 03166:103 03217:098 03408:105 03390:106 03478:108 03549:109 03595:110 03646:116 03980:123 04105:125 "
    "03721:119 04168:126 04075:124 02647:080 04252:132 03006:088 02839:085 03082:089 04303:135 05443:164 01840:058 "
    "05860:172 05830:171 05569:167 01906:061 05977:178 05986:178 06211:183 06385:186 06325:185 06688:193 06793:195 "
    "06811:196 06712:194 06994:203 06862:199 09187:256 07210:213 09367:261 07444:218 07288:215 09454:263 07900:227 "
    "08707:243 04795:148 05200:156 08542:238 08911:248 11311:303 11383:305 10525:288 10546:290 11914:317 11755:315 "
    "11953:323 13225:336 12019:326 12970:342 12472:338 12205:330 14329:374 13669:356 13285:347 14638:376 14215:366 "
    "14428:372 14797:380 16531:382 14812:381 15499:395 15061:389 15865:399 16690:412 16732:412 17110:432 17464:425 "
    "17662:427 17254:422 18073:436 18115:437 18775:447 18496:444 18673:446 18880:450 19333:461 19360:462 19249:457 "
    "19429:465 19141:455 19789:474 19753:475 19975:479 20107:482 20056:481 19819:476 20242:492 20209:491 20263:493 "
    "20341:502 20410:503 20320:497 20965:517 21025:522 23293:608 21040:524 23500:615 21484:535 21583:540 23575:622 "
    "23617:623 21664:543 23941:633 21853:548 22366:568 22420:569 22759:582 22528:572 22651:574 22489:571 24133:643 "
    "22015:555 24305:644 24490:654 24211:646 22051:557 24781:672 24823:673 22945:593 24611:660 24958:678 23272:602 "
    "26041:731 26080:732 25210:689 26368:740 26485:742 26206:736 26740:760 26743:760 26737:760 26824:769 26884:764 "
    "25747:718 25942:724 26506:747 26560:748 27553:783 27664:787 25459:703 27694:794 25645:709 27937:802 28159:807 "
    "25708:712 28261:815 29869:866 29905:867 28360:819 29955:868 28594:822 29590:857 28789:829 29242:842 28903:833 "
    "29308:845 29821:862 30307:883 30742:899 30316:884 31078:911 30544:891 30376:887 31135:916 31186:919 31507:941 "
    "31321:930 31299:926 31528:943 32002:964 31825:954 32191:971 32152:970 31843:956 32047:966 "
)
LEGACY_DISTRICT: dict[str, str] = dict(pair.split(":") for pair in _DISTRICTS.split())
NO_DISTRICT = "000"


@dataclass(slots=True)
class Xml130Summary(Summary):
    """What ``generate_xml130`` wrote: rows per table (``counts``), visits, files, billable line items."""

    visits: int = 0
    files: int = 0
    line_items: int = 0

    def table(self) -> str:
        width = max(len("Table"), *(len(k) for k in self.counts))
        lines = [f"{'Table':<{width}}  {'Rows':>12}", f"{'-' * width}  {'-' * 12}"]
        lines += [f"{k:<{width}}  {v:>12,}" for k, v in sorted(self.counts.items(), key=lambda kv: int(kv[0][3:]))]
        lines += [f"{'-' * width}  {'-' * 12}", f"{'Total':<{width}}  {self.resources:>12,}", ""]
        per_visit = self.line_items / self.visits if self.visits else 0.0
        lines.append(
            f"patients {self.patients:,}, visits {self.visits:,}, line items {self.line_items:,} "
            f"({per_visit:.1f} per visit), seed {self.seed}, format {self.fmt}, {self.files:,} files"
        )
        visits_per_second = self.visits / self.seconds if self.seconds > 0 else 0.0
        lines.append(
            f"{self.seconds:.2f} s: {self.patients_per_second:,.0f} patients/s, {visits_per_second:,.0f} visits/s"
        )
        if self.out is not None:
            lines.append(f"written to {self.out}")
        return "\n".join(lines)


class _Numbers:
    """Running numbers of each facility: visits (MA_LK, MA_HSBA) and patients (MA_BN)."""

    def __init__(self) -> None:
        self.visits: dict[str, int] = {}
        self.patients: dict[str, int] = {}

    def next(self, counter: dict[str, int], facility: str) -> int:
        counter[facility] = counter.get(facility, 0) + 1
        return counter[facility]


def _licences(hs: HealthSystem) -> dict[str, str]:
    """Practitioner id -> practising-certificate number (MA_BAC_SI), from the health system's resources."""
    return {res["id"]: res["identifier"][0]["value"] for res in hs.resources if res["resourceType"] == "Practitioner"}


def _head_id(fac: Facility) -> str:
    """MA_TTDV: the 10-digit social-insurance number of the facility's head (made up, stable)."""
    return f"{fac.province}{zlib.crc32(fac.code.encode()) % 10**8:08d}"


def _group(age: float) -> int:
    return 0 if age < 15 else 1 if age < 60 else 2


def _weight(case: Case, kind: str, age: float, female: bool) -> float:
    group = _group(age)
    if case.sex == "F" and not (female and 20 <= age < 40):
        return 0.0
    weight = case.weights[group] * (0.3 if case.sex == "f" and not female else 1.0)
    outpatient, emergency, inpatient = case.classes
    if kind == "03":
        return weight * (inpatient + 0.5 * emergency) if case.ward else 0.0
    if kind == "02":
        return weight if case.code in OUTPATIENT_TREATMENT else 0.0
    return weight * (outpatient + emergency)


def _draw_case(rng: random.Random, kind: str, age: float, female: bool) -> Case:
    cases = [CASES[code] for code in ACUTE_CODES]
    weights = [_weight(case, kind, age, female) for case in cases]
    if not any(weights):
        return CASES[ACUTE_CODES[0]]
    return rng.choices(cases, weights)[0]


def _chronic(rng: random.Random, person: people.Person) -> list[Case]:
    """The person's chronic conditions, by the catalog's prevalence at their age (own draws, not the FHIR ones)."""
    found = []
    for chronic in catalog.CHRONIC:
        prevalence = 0.0
        for min_age, male, female in chronic.prevalence:
            if person.age >= min_age:
                prevalence = female if person.female else male
        if prevalence and rng.random() < prevalence:
            found.append(CASES[chronic.code])
    return found


def _facility(rng: random.Random, hs: HealthSystem, person: people.Person, kind: str, chronic: bool) -> Facility:
    station = hs.stations[person.province][person.commune]
    r = rng.random()
    if kind == "01" and r < (0.5 if chronic else 0.4):
        return station
    if r < (0.75 if kind == "01" else 0.5):
        return hs.regional_for(person.province, person.commune)
    return hs.provincial[person.province]


def _category(person: people.Person, fac: Facility, station: Facility, emergency: bool, rng: random.Random) -> str:
    """MA_DOITUONG_KCB (see the module docstring)."""
    if not person.bhyt:
        return "3.5"
    if emergency:
        return "2"
    if fac is station:
        return "1.1"
    if fac.level == "regional":
        return "1.2"
    return "1.3" if rng.random() < 0.75 else "3.2"


def _card(person: people.Person, day: date) -> tuple[str, str]:
    """GT_THE_TU, GT_THE_DEN of the card on ``day``: its calendar year, or birth to the eve of the 6th birthday."""
    if person.category == "TE":
        b = person.birth
        sixth = date(b.year + 6, b.month, 28 if (b.month, b.day) == (2, 29) else b.day)
        return b.strftime("%Y%m%d"), (sixth - timedelta(days=1)).strftime("%Y%m%d")
    return f"{day.year}0101", f"{day.year}1231"


def _body_weight(rng: random.Random, age: float, female: bool, adult: float) -> str:
    """CAN_NANG: kilograms, 2 decimals (XML1 #59)."""
    if age < 1:
        kg = 3.2 + 6.5 * age
    elif age < 10:
        kg = 8.5 + 2.3 * age
    elif age < 18:
        kg = 31.5 + (adult - 31.5) * (age - 10) / 8
    else:
        kg = adult
    return f"{max(2.5, kg + rng.gauss(0, 0.4 if age < 10 else 1.2)):.2f}"


@dataclass(slots=True)
class _Patient:
    """One person's fixed facts for their visits."""

    person: people.Person
    chronic: list[Case]
    adult_weight: float
    numbers: dict[str, str]  # facility code -> MA_BN


def iter_visits(patients: int, seed: int) -> Iterator[tuple[str, Tables]]:
    """Every visit, patient by patient and by date: (MACSKCB, table name -> rows of XML1-XML5).

    Deterministic; the visits of patient ``i`` do not depend on how many patients come after.
    """
    if patients < 0:
        raise ValueError("patients must be >= 0")
    hs = facilities.build(seed)
    licences = _licences(hs)
    numbers = _Numbers()
    for i in range(patients):
        rng = _patient_rng(seed, i)
        person = people.draw_person(rng, ids.rng_uuid(rng))  # exactly as iter_blocks draws patient i
        vrng = random.Random(f"ketnoi-demo:{seed}:xml130:{i}")
        patient = _Patient(person, _chronic(vrng, person), vrng.gauss(52 if person.female else 61, 7), {})
        plans = [_plan(vrng, hs, patient, licences) for _ in range(_visit_count(vrng, person))]
        free_from = date.min  # visits do not overlap: a later one on a day of an earlier one is dropped
        for fac, plan in sorted(plans, key=lambda fp: fp[1].start):
            if plan.start.date() < free_from:
                continue
            free_from = plan.start.date() + timedelta(days=plan.days + 1)
            yield fac.code, _visit(vrng, hs, fac, plan, patient, numbers)


def _visit_count(rng: random.Random, person: people.Person) -> int:
    often = person.age < 6 or person.age >= 60
    return rng.choices((1, 2, 3), (0.35, 0.35, 0.3) if often else (0.5, 0.3, 0.2))[0]


def _plan(rng: random.Random, hs: HealthSystem, patient: _Patient, licences: dict[str, str]) -> tuple[Facility, Plan]:
    person = patient.person
    r = rng.random()
    kind = "03" if r < 0.24 else "02" if r < 0.32 else "01"
    follow_up = kind == "01" and patient.chronic and rng.random() < 0.6
    days = 0
    last = people.AS_OF - timedelta(days=1)
    first = max(people.AS_OF - timedelta(days=WINDOW_DAYS), person.birth)
    day = first + timedelta(days=rng.randint(0, (last - first).days))
    age = (day - person.birth).days / 365.25
    if follow_up:
        case = patient.chronic[0] if rng.random() < 0.6 else rng.choice(patient.chronic)
    else:
        case = _draw_case(rng, kind, age, person.female)
        if kind == "03" and not case.ward:
            kind = "01"
        days = rng.randint(*case.stay) if kind == "03" else rng.randint(2, 5) if kind == "02" else 0
        if days and (last - first).days < days:
            kind, days = "01", 0
        elif days:
            day = first + timedelta(days=rng.randint(0, (last - first).days - days))
            age = (day - person.birth).days / 365.25
    fac = _facility(rng, hs, person, kind, bool(follow_up))
    emergency = (
        not follow_up
        and fac.level != "commune"
        and ((kind == "03" and rng.random() < 0.4) or (kind == "01" and rng.random() < case.classes[1] / 100))
    )
    minute = rng.randrange(24 * 60) if emergency and kind == "03" else rng.randrange(7 * 60, 16 * 60 + 30)
    start = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
    others = [c for c in patient.chronic if c is not case]
    if kind == "01" and not follow_up:
        others = [c for c in others if rng.random() < 0.5]
    doctors = [licences[d] for d in fac.doctors]
    doctor = rng.choice(doctors)
    reader = rng.choice([d for d in doctors if d != doctor] or doctors)
    plan = Plan(kind, fac.level, start, days, case, others[:3], emergency, doctor, reader, age, person.female)
    return fac, plan


def _visit(
    rng: random.Random, hs: HealthSystem, fac: Facility, plan: Plan, patient: _Patient, numbers: _Numbers
) -> Tables:
    person = patient.person
    station = hs.stations[person.province][person.commune]
    seq = numbers.next(numbers.visits, fac.code)
    if fac.code not in patient.numbers:
        patient.numbers[fac.code] = f"BN{numbers.next(numbers.patients, fac.code):08d}"
    ma_lk = f"{fac.code}{seq:07d}"
    category = _category(person, fac, station, plan.emergency, rng)
    level = ids.BENEFIT_PERCENT[ids.BHYT_CATEGORIES[person.category].level] if person.category else 0
    payer = Payer(100 if person.bhyt else 0, level)
    diagnoses = ";".join(c.code for c in [plan.case, *plan.others])
    tender = f"{100 + int(fac.province) * 37 % 900}/QĐ-SYT;G1;N4;{plan.start.year - 1}"
    lines = Lines(ma_lk, payer, diagnoses, tender, rng, plan.female)
    outcome = clinical(lines, plan, rng)
    assert outcome.end is not None
    xml1 = _xml1(rng, hs, fac, plan, patient, lines, outcome.end, category, seq)
    xml1["MA_KHOA"] = ";".join(dict.fromkeys(outcome.khoa))
    xml1["MA_PTTT_QT"] = ";".join(dict.fromkeys(outcome.icd9))
    if outcome.admitted is not None:
        xml1["NGAY_VAO_NOI_TRU"] = stamp(outcome.admitted)
    tables: Tables = {"XML1": [xml1], "XML2": lines.xml2, "XML3": lines.xml3, "XML4": lines.xml4}
    tables["XML5"] = outcome.xml5
    return {name: rows for name, rows in tables.items() if rows}


def _xml1(
    rng: random.Random,
    hs: HealthSystem,
    fac: Facility,
    plan: Plan,
    patient: _Patient,
    lines: Lines,
    end: datetime,
    category: str,
    seq: int,
) -> Row:
    person, case, totals = patient.person, plan.case, lines.totals
    prov = places.PROVINCE_BY_CODE[person.province]
    commune = prov.commune_codes[person.commune]
    station = hs.stations[person.province][person.commune]
    card_from, card_to = _card(person, plan.start.date()) if person.bhyt else ("", "")
    parent_phone = person.parent[3] if person.parent else None
    referred = category == "1.3"
    chronic = case.code in CHRONIC_CODES
    inpatient = plan.kind == "03"
    name = case.name[0].lower() + case.name[1:]
    values = {
        "MA_LK": lines.ma_lk,
        "STT": "1",
        "MA_BN": patient.numbers[fac.code],
        "HO_TEN": person.name.text,
        "SO_CCCD": person.cccd or "",
        "NGAY_SINH": person.birth.strftime("%Y%m%d") + "0000",
        "GIOI_TINH": "2" if person.female else "1",
        "MA_QUOCTICH": "000",
        "MA_DANTOC": person.ethnicity,
        "MA_NGHE_NGHIEP": "00000",
        "DIA_CHI": f"{person.address_line}, {prov.communes[person.commune]}, {prov.kind} {prov.name}",
        "MATINH_CU_TRU": person.province,
        "MAHUYEN_CU_TRU": LEGACY_DISTRICT.get(commune, NO_DISTRICT),
        "MAXA_CU_TRU": commune,
        "DIEN_THOAI": person.phone or parent_phone or "",
        "MA_THE_BHYT": person.bhyt or "",
        "MA_DKBD": station.code if person.bhyt else "",
        "GT_THE_TU": card_from,
        "GT_THE_DEN": card_to,
        "LY_DO_VV": case.complaint,
        "LY_DO_VNT": f"{case.name}, cần điều trị nội trú" if inpatient else "",
        "CHAN_DOAN_VAO": f"Theo dõi {name}" if inpatient else case.name,
        "CHAN_DOAN_RV": "; ".join(c.name for c in [case, *plan.others]),
        "MA_BENH_CHINH": case.code,
        "MA_BENH_KT": ";".join(c.code for c in plan.others),
        "MA_DOITUONG_KCB": category,
        "MA_NOI_DI": hs.regional_for(person.province, person.commune).code if referred else "",
        "NGAY_VAO": stamp(plan.start),
        "NGAY_RA": stamp(end),
        "GIAY_CHUYEN_TUYEN": f"{rng.randint(1, 9999)}/{plan.start.year}/GCT" if referred else "",
        "SO_NGAY_DTRI": "0" if plan.kind == "01" else str((end.date() - plan.start.date()).days + 1),
        "PP_DIEU_TRI": ("Phẫu thuật, thủ thuật" if case.ward_day0 else "Điều trị nội khoa")
        if plan.kind != "01"
        else "",
        "KET_QUA_DTRI": "2" if chronic or rng.random() < 0.4 else "1",
        "MA_LOAI_RV": "1",
        "GHI_CHU": "Tái khám sau 30 ngày hoặc khi có bất thường" if chronic else "Tái khám khi có bất thường",
        "NGAY_TTOAN": stamp(end),
        "T_THUOC": amount(totals.drugs),
        "T_VTYT": amount(totals.supplies),
        "T_TONGCHI_BV": amount(totals.hospital),
        "T_TONGCHI_BH": amount(totals.insured),
        "T_BNTT": amount(totals.patient),
        "T_BNCCT": amount(totals.copay),
        "T_BHTT": amount(totals.fund),
        "T_NGUONKHAC": amount(ZERO),
        "T_BHTT_GDV": amount(totals.fund),
        "NAM_QT": str(end.year),
        "THANG_QT": str(end.month),
        "MA_LOAI_KCB": plan.kind,
        "MA_CSKCB": fac.code,
        "CAN_NANG": _body_weight(rng, plan.age, person.female, patient.adult_weight),
        "CAN_NANG_CON": str(rng.randrange(2600, 3900, 50)) if case.code == "O80" else "",
        "NGAY_TAI_KHAM": (plan.start + timedelta(days=30)).strftime("%Y%m%d") if chronic else "",
        "MA_HSBA": f"{'BA' if inpatient else 'NT' if plan.kind == '02' else 'KB'}{end.year % 100:02d}{seq:07d}",
        "MA_TTDV": _head_id(fac),
    }
    return ordered("XML1", values)


def generate_xml130(patients: int, seed: int, out: Path, visits_per_file: int = 500) -> Xml130Summary:
    """Write the visits of ``patients`` patients as envelopes ``out/xml130/<MACSKCB>-<nnnn>.xml``.

    Visits are grouped by facility, ``visits_per_file`` at most per file, in patient order. Memory stays
    constant: each visit is spooled (JSON lines, one file per facility, in a temporary folder under
    ``out/xml130``) until its facility has a full file, which ``write_envelope`` then streams out.
    """
    if visits_per_file < 1:
        raise ValueError("visits_per_file must be >= 1")
    started = time.perf_counter()
    folder = Path(out) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.xml"):
        stale.unlink()
    summary = Xml130Summary(patients, seed, "xml130", folder, dict.fromkeys(TABLES, 0))
    pending: dict[str, int] = {}
    written: dict[str, int] = {}
    with tempfile.TemporaryDirectory(dir=folder, prefix=".spool-") as spool_dir:
        spools = Path(spool_dir)

        def flush(code: str) -> None:
            written[code] = written.get(code, 0) + 1
            spool = spools / code
            with spool.open("rb") as source, (folder / f"{code}-{written[code]:04d}.xml").open("wb") as target:
                visits = (orjson.loads(line) for line in source)
                write_envelope(target, code, visits, created=CREATED, count=pending[code])
            spool.unlink()
            pending[code] = 0
            summary.files += 1

        for code, tables in iter_visits(patients, seed):
            summary.visits += 1
            for table, rows in tables.items():
                summary.counts[table] = summary.counts.get(table, 0) + len(rows)
            summary.line_items += len(tables.get("XML2", ())) + len(tables.get("XML3", ()))
            with (spools / code).open("ab") as spool:
                spool.write(orjson.dumps(tables, option=orjson.OPT_APPEND_NEWLINE))
            pending[code] = pending.get(code, 0) + 1
            if pending[code] >= visits_per_file:
                flush(code)
        for code in sorted(pending):
            if pending[code]:
                flush(code)
    summary.seconds = time.perf_counter() - started
    return summary
