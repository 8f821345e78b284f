"""FHIR -> one visit of the claims XML: the inverse of ``to_fhir.map_visit`` (docs/xml130.md, "Export").

``visit_tables`` takes the Patient, its Coverages and the resources of one visit (those carrying the visit
tag) and gives back the facility code and the rows of XML1 to XML5 and of the letters XML7, XML11, XML13 and
XML14, each a dict of field -> text in the schema's order (``fields.FIELDS``). Every field the mapping kept
comes back: from its FHIR element, or as written from the ``xml130-field`` bag, which wins over the
element (a letter is its bag). What the mapping canonicalised stays
canonical: ICD-10 codes dotted (``J189`` -> ``J18.9``), decimals without trailing zeros (``62.50`` ->
``62.5``, ``100.00`` -> ``100``), a name's runs of blanks as one, a code list's duplicates once. Fields the
mapping never held (XML1 ``STT`` and ``NHOM_MAU``) stay absent; ``MA_CSKCB`` is the facility.

The contract (tests/claims/test_round_trip.py): for a visit ``T`` that passes the checks,
``map_visit(f, visit_tables(*map_visit(f, T) parts)[1])`` gives the resources ``map_visit(f, T)`` gives.
Resources made from a visit but not from a line (DiagnosticReports, vital signs of ``CSST<...>``, the body
weight of XML1) are not rows; the weight gives CAN_NANG back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from ketnoi.claims import systems as s
from ketnoi.claims.codes import bag_of
from ketnoi.claims.encounter import OUTCOME_URL
from ketnoi.xml130.fields import BIRTH, DATE, DATETIME, FIELDS

Json = dict[str, Any]
Row = dict[str, str]
Tables = dict[str, list[Row]]

VN_TIME = timezone(timedelta(hours=7))
_GENDER = {"male": "1", "female": "2", "unknown": "3"}
_SO_CCCD = (s.CCCD_SYSTEM, s.CMND_SYSTEM, s.PASSPORT_SYSTEM)
_PAYMENT_URL = s.EXT + "claim-payment-method"
_ANAESTHESIA_URL = s.EXT + "procedure-anaesthesia"
_BIRTH_TIME_URL = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
_PARTS = {"state": "MATINH_CU_TRU", "district": "MAHUYEN_CU_TRU", "ward": "MAXA_CU_TRU"}
_LENGTHS = {DATE: 8, DATETIME: 12, BIRTH: 12}
# The visit's one-row letters (``ketnoi.claims.documents``: DocumentReference, ServiceRequest, Appointment),
# line "<MA_LK>/<table>/1", which keep their whole row in the bag.
LETTERS = ("XML7", "XML11", "XML13", "XML14")


# ---- values -------------------------------------------------------------------------------------------
def xml_date(value: Any, length: int) -> str | None:
    """A FHIR date or dateTime -> ``yyyyMMdd`` (8) or ``yyyyMMddHHmm`` (12), unknown parts as ``00``:
    ``2024-01`` -> ``20240100`` / ``202401000000``. A time in another offset is read as Vietnam time."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    day, _, time = value.partition("T")
    if time:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is not None:
            when = when.astimezone(VN_TIME)
        text = when.strftime("%Y%m%d%H%M")
    else:
        year, month, date = ([*day.split("-"), "00", "00"])[:3]
        text = f"{year}{month or '00'}{date or '00'}0000"
    return text[:length]


def xml_number(value: Any) -> str | None:
    """A JSON number as the claims XML writes it: plain decimal notation, never an exponent, no trailing
    zeros (``123456.78``, ``100``, ``0.5``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    text = format(number.normalize(), "f")
    return "0" if text == "-0" else text


def _get(node: Any, *path: str | int) -> Any:
    """``node[path[0]][path[1]]...``, or None where anything is missing."""
    for key in path:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and -len(node) <= key < len(node) else None
        else:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _code(concept: Any, system: str | None = None) -> str | None:
    """The code of a CodeableConcept's first coding (of ``system`` when given)."""
    for coding in _get(concept, "coding") or ():
        if isinstance(coding, dict) and (system is None or coding.get("system") == system):
            return _text(coding.get("code"))
    return None


def _display(concept: Any, system: str) -> str | None:
    for coding in _get(concept, "coding") or ():
        if isinstance(coding, dict) and coding.get("system") == system:
            return _text(coding.get("display"))
    return None


def _ref_code(reference: Any) -> str | None:
    """The identifier value of a logical reference (staff, facilities, departments)."""
    return _text(_get(reference, "identifier", "value"))


def _joined(values: Iterable[str | None]) -> str | None:
    return ";".join(v for v in values if v) or None


def _extension(resource: Any, url: str) -> Json | None:
    for ext in _get(resource, "extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            return ext
    return None


def _amounts(element: Any) -> dict[str, str]:
    """The ``xml130-amount`` extensions: field name -> amount as text."""
    found: dict[str, str] = {}
    for ext in _get(element, "extension") or ():
        if not isinstance(ext, dict) or ext.get("url") != s.AMOUNT_URL:
            continue
        parts = {p.get("url"): p for p in ext.get("extension", []) if isinstance(p, dict)}
        name = _text(_get(parts.get("kind"), "valueCoding", "code"))
        value = xml_number(_get(parts.get("amount"), "valueMoney", "value"))
        if name and value is not None:
            found[name] = value
    return found


class _Fields:
    """One row being rebuilt: set what an element holds, then the bag (as written) over it."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.values: dict[str, str] = {}
        self.kinds = {spec.name: spec.kind for spec in FIELDS[table]}

    def put(self, name: str, value: str | None) -> None:
        if value:
            self.values[name] = value

    def when(self, name: str, value: Any) -> None:
        self.put(name, xml_date(value, _LENGTHS.get(self.kinds.get(name, DATETIME), 12)))

    def number(self, name: str, value: Any) -> None:
        self.put(name, xml_number(value))

    def over(self, found: Mapping[str, str]) -> None:
        for name, value in found.items():
            if value:
                self.values[name] = value

    def row(self) -> Row:
        """The fields in the schema's order (fields it does not know, such as XML1 MA_PTTT, after them)."""
        known = [name for name in self.kinds if name in self.values]
        return {name: self.values[name] for name in [*known, *(n for n in self.values if n not in self.kinds)]}


def visit_key(encounter: Json) -> tuple[str, str] | None:
    """(MACSKCB, MA_LK) of an Encounter made from a claims visit: its identifier of system
    ``https://fhir.ketnoi.vn/sid/ma-lk/<MACSKCB>``; None for any other Encounter."""
    prefix = s.visit_system("")
    for identifier in encounter.get("identifier") or ():
        system, value = _get(identifier, "system"), _get(identifier, "value")
        if isinstance(system, str) and system.startswith(prefix) and system != prefix and isinstance(value, str):
            return system[len(prefix) :], value
    return None


# ---- the visit's resources by line ----------------------------------------------------------------------
class _Visit:
    def __init__(self, visit: list[Json]) -> None:
        encounters = [r for r in visit if r.get("resourceType") == "Encounter" and visit_key(r)]
        if len(encounters) != 1:
            raise ValueError(f"a visit has one Encounter with a MA_LK identifier, not {len(encounters)}")
        self.encounter = encounters[0]
        self.facility, self.ma_lk = visit_key(self.encounter) or ("", "")
        self.by_id = {(r.get("resourceType"), r.get("id")): r for r in visit}
        claims = [r for r in visit if r.get("resourceType") == "Claim"]
        self.claim: Json = claims[0] if claims else {}
        self.lines: dict[tuple[str, str, str, str], Json] = {}
        system, prefix = s.line_system(self.facility), self.ma_lk + "/"
        for resource in visit:
            for identifier in resource.get("identifier") or ():
                value = _get(identifier, "value")
                if _get(identifier, "system") != system or not isinstance(value, str) or not value.startswith(prefix):
                    continue
                table, _, rest = value[len(prefix) :].partition("/")
                stt, _, part = rest.partition("/")
                self.lines[(str(resource.get("resourceType")), table, stt, part)] = resource
        self.items: dict[str, Json] = {}
        for item in self.claim.get("item") or ():
            source = _get(_extension(item, s.SOURCE_URL), "valueString")
            if isinstance(source, str):
                self.items[source] = item

    def line(self, rtype: str, table: str, stt: str, part: str = "") -> Json | None:
        return self.lines.get((rtype, table, stt, part))

    def rows_of(self, rtype: str, table: str) -> list[tuple[str, Json]]:
        """(STT, resource) of each line of a table, in STT order."""
        found = [(stt, r) for (t, tab, stt, part), r in self.lines.items() if t == rtype and tab == table and not part]
        return sorted(found, key=lambda pair: (0, int(pair[0]), "") if pair[0].isdigit() else (1, 0, pair[0]))

    def conditions(self) -> list[tuple[str, Json]]:
        """(part of the line identifier, Condition) in the Encounter's diagnosis order."""
        wanted = []
        for entry in self.encounter.get("diagnosis") or ():
            reference = _get(entry, "condition", "reference")
            if isinstance(reference, str) and reference.startswith("Condition/"):
                wanted.append(self.by_id.get(("Condition", reference.partition("/")[2])))
        parts = {id(r): part for (t, _, _, part), r in self.lines.items() if t == "Condition"}
        listed = [c for c in wanted if c is not None and id(c) in parts]
        if not listed:  # no diagnosis list: the order of the resources
            listed = [r for (t, _, _, _), r in self.lines.items() if t == "Condition"]
        return [(parts[id(c)], c) for c in listed]


# ---- XML1 -----------------------------------------------------------------------------------------------
def _patient(row: _Fields, patient: Json, facility: str) -> None:
    identifiers = [i for i in patient.get("identifier") or () if isinstance(i, dict)]
    numbers = [i for i in identifiers if i.get("system") == s.patient_system(facility)]
    numbers = numbers or [i for i in identifiers if str(i.get("system", "")).startswith(s.SID + "ma-bn/")]
    row.put("MA_BN", _text(_get(numbers, 0, "value")))
    row.put("HO_TEN", _name(patient))
    for system in _SO_CCCD:
        found = next((_text(i.get("value")) for i in identifiers if i.get("system") == system), None)
        if found:
            row.put("SO_CCCD", found)
            break
    born = _get(_extension(patient, _BIRTH_TIME_URL), "valueDateTime") or patient.get("birthDate")
    row.when("NGAY_SINH", born)
    row.put("GIOI_TINH", _GENDER.get(str(patient.get("gender"))))
    row.put(
        "MA_QUOCTICH", _code(_get(_extension(_extension(patient, s.NATIONALITY_URL), "code"), "valueCodeableConcept"))
    )
    row.put("MA_DANTOC", _code(_get(_extension(patient, s.ETHNICITY_URL), "valueCodeableConcept")))
    row.put("MA_NGHE_NGHIEP", _code(_get(_extension(patient, s.OCCUPATION_URL), "valueCodeableConcept")))
    _address(row, patient)
    phones = [t for t in patient.get("telecom") or () if isinstance(t, dict) and t.get("system") == "phone"]
    row.put("DIEN_THOAI", _text(_get(phones, 0, "value")))


def _name(patient: Json) -> str | None:
    names = [n for n in patient.get("name") or () if isinstance(n, dict)]
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if name is None:
        return None
    text = _text(name.get("text"))
    if text:
        return " ".join(text.split())
    words = [name.get("family"), *(name.get("given") or ())]
    return " ".join(w for w in words if isinstance(w, str) and w.strip()) or None


def _address(row: _Fields, patient: Json) -> None:
    addresses = [a for a in patient.get("address") or () if isinstance(a, dict)]
    home = next((a for a in addresses if a.get("use") == "home"), addresses[0] if addresses else None)
    if home is None:
        return
    row.put("DIA_CHI", _text(home.get("text")))
    for part in _get(_extension(home, s.ADMIN_ADDRESS_URL), "extension") or ():
        name = _PARTS.get(str(_get(part, "url")))
        if name:
            row.put(name, _code(_get(part, "valueCodeableConcept")))
    row.over(bag_of(home))


def _cards(row: _Fields, coverages: list[Json], claim: Json) -> None:
    """The visit's cards, in the order of ``Claim.insurance`` (its Coverages, parallel lists)."""
    by_id = {c.get("id"): c for c in coverages}
    chosen = [
        by_id.get(str(_get(entry, "coverage", "reference")).partition("/")[2]) for entry in claim.get("insurance") or ()
    ]
    cards = [c for c in (chosen if chosen else coverages) if c is not None and _card(c)]
    if not cards:
        return
    row.put("MA_THE_BHYT", _joined(_card(c) for c in cards))
    row.put("MA_DKBD", _joined(_text(c.get("network")) for c in cards))
    row.put("GT_THE_TU", _joined(xml_date(_get(c, "period", "start"), 8) for c in cards))
    row.put("GT_THE_DEN", _joined(xml_date(_get(c, "period", "end"), 8) for c in cards))


def _card(coverage: Json) -> str | None:
    found = _text(coverage.get("subscriberId"))
    if found:
        return found
    cards = [i for i in coverage.get("identifier") or () if isinstance(i, dict) and i.get("system") == s.BHYT_SYSTEM]
    return _text(_get(cards, 0, "value"))


def _diagnoses(row: _Fields, visit: _Visit) -> None:
    others, traditional = [], []
    for part, condition in visit.conditions():
        code = _code(condition.get("code"))
        if part == "main":
            row.put("MA_BENH_CHINH", code)
            row.put("CHAN_DOAN_RV", _text(_get(condition, "code", "text")))
        elif part.startswith("kt/"):
            others.append(code)
        elif part.startswith("yhct/"):
            traditional.append(code)
    row.put("MA_BENH_KT", _joined(others))
    row.put("MA_BENH_YHCT", _joined(traditional))


def _encounter(row: _Fields, visit: _Visit) -> None:
    encounter = visit.encounter
    row.put("MA_LK", visit.ma_lk)
    records = [i for i in encounter.get("identifier") or () if isinstance(i, dict) and i.get("system") == s.MRN]
    row.put("MA_HSBA", _text(_get(records, 0, "value")))
    row.put("KET_QUA_DTRI", _code(_get(_extension(encounter, OUTCOME_URL), "valueCodeableConcept"), s.KET_QUA_DTRI))
    kinds = [_code(t, s.LOAI_KCB) for t in encounter.get("type") or ()]
    row.put("MA_LOAI_KCB", next((k for k in kinds if k), None))
    row.when("NGAY_VAO", _get(encounter, "period", "start"))
    row.when("NGAY_RA", _get(encounter, "period", "end"))
    days = _get(encounter, "length", "value")
    row.put("SO_NGAY_DTRI", xml_number(days))
    row.put("LY_DO_VV", _text(_get(encounter, "reasonCode", 0, "text")))
    stay = encounter.get("hospitalization") or {}
    row.put("GIAY_CHUYEN_TUYEN", _text(_get(stay, "preAdmissionIdentifier", "value")))
    row.put("MA_NOI_DI", _ref_code(stay.get("origin")))
    row.put("MA_NOI_DEN", _ref_code(stay.get("destination")))
    row.put("MA_LOAI_RV", _code(stay.get("dischargeDisposition"), s.LOAI_RV))
    row.put("MA_KHOA", _joined(_ref_code(_get(place, "location")) for place in encounter.get("location") or ()))
    row.over(bag_of(encounter))


def _claim(row: _Fields, visit: _Visit) -> None:
    claim = visit.claim
    row.over(_amounts(claim))
    row.number("T_TONGCHI_BV", _get(claim, "total", "value"))
    row.put("MA_PTTT", _code(_get(_extension(claim, _PAYMENT_URL), "valueCodeableConcept")))
    created = claim.get("created")
    if created and created != (_get(visit.encounter, "period", "end") or _get(visit.encounter, "period", "start")):
        row.when("NGAY_TTOAN", created)  # else the bag says whether it was written (claim.claim)
    row.put("MA_TTDV", _ref_code(claim.get("enterer")))
    row.put("MA_TAI_NAN", _code(_get(claim, "accident", "type")))
    procedures = [_code(p.get("procedureCodeableConcept")) for p in claim.get("procedure") or ()]
    row.put("MA_PTTT_QT", _joined(procedures))
    row.over(bag_of(claim))


def _xml1(patient: Json, coverages: list[Json], visit: _Visit) -> Row:
    row = _Fields("XML1")
    _patient(row, patient, visit.facility)
    _cards(row, coverages, visit.claim)
    _diagnoses(row, visit)
    weight = visit.line("Observation", "XML1", "1", "can-nang")
    row.number("CAN_NANG", _get(weight, "valueQuantity", "value"))
    row.put("MA_CSKCB", visit.facility)
    _encounter(row, visit)  # its bag: CAN_NANG when no weight Observation was made of it
    _claim(row, visit)
    return row.row()


# ---- XML2 to XML5 ---------------------------------------------------------------------------------------
def _item(row: _Fields, visit: _Visit, table: str, stt: str, price: str) -> None:
    """A line's payment fields, from its Claim item (``xml130-source`` ``<table>/<STT>``)."""
    item = visit.items.get(f"{table}/{stt}")
    if item is None:
        return
    if "SO_LUONG" not in row.values:
        row.number("SO_LUONG", _get(item, "quantity", "value"))
        row.put("DON_VI_TINH", _text(_get(item, "quantity", "unit")))
    if price not in row.values:
        row.number(price, _get(item, "unitPrice", "value"))
    row.number("THANH_TIEN_BV", _get(item, "net", "value"))
    row.over(_amounts(item))
    row.over(bag_of(item))


def _drug(visit: _Visit, stt: str, request: Json) -> Row:
    row = _Fields("XML2")
    row.put("MA_LK", visit.ma_lk)
    row.put("STT", stt)
    drug = request.get("medicationCodeableConcept") or {}
    row.put("MA_THUOC", _code(drug, s.DRUG_CODE))
    bag = bag_of(request)
    name = _display(drug, s.DRUG_CODE)
    if name is None:  # no code: the text is the name and the strength
        name = _text(drug.get("text"))
        strength = bag.get("HAM_LUONG")
        if name and strength and name.endswith(" " + strength):
            name = name[: -len(strength) - 1]
    row.put("TEN_THUOC", name)
    dosage = _get(request, "dosageInstruction", 0) or {}
    row.put("DUONG_DUNG", _code(dosage.get("route"), s.ROUTE_CODE))
    row.put("LIEU_DUNG", _text(dosage.get("text")))
    row.put("CACH_DUNG", _text(dosage.get("patientInstruction")))
    row.number("SO_LUONG", _get(request, "dispenseRequest", "quantity", "value"))
    row.put("DON_VI_TINH", _text(_get(request, "dispenseRequest", "quantity", "unit")))
    row.put("MA_BAC_SI", _ref_code(request.get("requester")))
    row.when("NGAY_YL", request.get("authoredOn"))
    given = visit.line("MedicationAdministration", "XML2", stt, "given")
    row.when("NGAY_TH_YL", _get(given, "effectiveDateTime"))
    row.over(bag)
    _item(row, visit, "XML2", stt, "DON_GIA")
    return row.row()


def _service_code(row: _Fields, concept: Any) -> None:
    if _code(concept, s.SERVICE_CODE):
        row.put("MA_DICH_VU", _code(concept, s.SERVICE_CODE))
        row.put("TEN_DICH_VU", _text(_get(concept, "text")))
    elif _code(concept, s.SUPPLY_CODE):
        row.put("MA_VAT_TU", _code(concept, s.SUPPLY_CODE))
        row.put("TEN_VAT_TU", _text(_get(concept, "text")))


def _service(visit: _Visit, stt: str, charge: Json) -> Row:
    row = _Fields("XML3")
    row.put("MA_LK", visit.ma_lk)
    row.put("STT", stt)
    _service_code(row, charge.get("code"))
    supply = charge.get("productCodeableConcept")
    if supply:
        row.put("MA_VAT_TU", _code(supply, s.SUPPLY_CODE))
        row.put("TEN_VAT_TU", _text(supply.get("text")))
    row.number("SO_LUONG", _get(charge, "quantity", "value"))
    row.put("DON_VI_TINH", _text(_get(charge, "quantity", "unit")))
    row.number("DON_GIA_BV", _get(charge, "priceOverride", "value"))
    row.put("MA_BAC_SI", _ref_code(charge.get("enterer")))
    row.put("NGUOI_THUC_HIEN", _joined(_ref_code(p.get("actor")) for p in charge.get("performer") or ()))
    row.put("MA_BENH", _joined(_code(reason, s.ICD10) for reason in charge.get("reason") or ()))
    ordered, done = charge.get("enteredDate"), charge.get("occurrenceDateTime")
    row.when("NGAY_YL", ordered)
    if done and done != ordered:  # the same instant: occurrence fell back on the order (the bag says)
        row.when("NGAY_TH_YL", done)
    procedure = visit.line("Procedure", "XML3", stt, "procedure")
    if procedure is not None:
        codings = _get(procedure, "code", "coding") or ()
        row.put("MA_PTTT_QT", _joined(_text(c.get("code")) for c in codings if c.get("system") == s.ICD9CM))
        anaesthesia = _get(_extension(procedure, _ANAESTHESIA_URL), "valueCodeableConcept")
        row.put("PP_VO_CAM", _code(anaesthesia, s.PP_VO_CAM))
    row.over(bag_of(charge))
    _item(row, visit, "XML3", stt, "DON_GIA_BV")
    return row.row()


def _result(visit: _Visit, stt: str, observation: Json) -> Row:
    row = _Fields("XML4")
    row.put("MA_LK", visit.ma_lk)
    row.put("STT", stt)
    code = observation.get("code") or {}
    row.put("MA_CHI_SO", _code(code, s.TEST_CODE))
    row.put("TEN_CHI_SO", _text(code.get("text")))
    quantity = observation.get("valueQuantity")
    if isinstance(quantity, dict):
        row.number("GIA_TRI", quantity.get("value"))
        row.put("DON_VI_DO", _text(quantity.get("unit")))
    else:
        row.put("GIA_TRI", _text(observation.get("valueString")))
    row.put("MO_TA", _text(_get(observation, "note", 0, "text")))
    row.when("NGAY_KQ", observation.get("effectiveDateTime"))
    row.put("MA_BS_DOC_KQ", _ref_code(_get(observation, "performer", 0)))
    row.over(bag_of(observation))
    return row.row()


def _note(visit: _Visit, stt: str, impression: Json) -> Row:
    row = _Fields("XML5")
    row.put("MA_LK", visit.ma_lk)
    row.put("STT", stt)
    row.put("DIEN_BIEN_LS", _text(impression.get("description")))
    row.put("HOI_CHAN", _text(impression.get("summary")))
    row.when("THOI_DIEM_DBLS", impression.get("effectiveDateTime"))
    row.put("NGUOI_THUC_HIEN", _ref_code(impression.get("assessor")))
    row.over(bag_of(impression))
    return row.row()


def visit_tables(patient: Json, coverages: list[Json], visit: list[Json]) -> tuple[str, Tables]:
    """(MACSKCB, tables) of one visit: ``patient`` its Patient, ``coverages`` the Patient's Coverages (those
    the Claim names are the visit's cards, in its order), ``visit`` the resources with the visit tag. Raises
    ``ValueError`` when ``visit`` has no Encounter with a MA_LK identifier."""
    found = _Visit(visit)
    tables: Tables = {"XML1": [_xml1(patient, coverages, found)]}
    lines = {
        "XML2": [_drug(found, stt, r) for stt, r in found.rows_of("MedicationRequest", "XML2")],
        "XML3": [_service(found, stt, r) for stt, r in found.rows_of("ChargeItem", "XML3")],
        "XML4": [_result(found, stt, r) for stt, r in found.rows_of("Observation", "XML4")],
        "XML5": [_note(found, stt, r) for stt, r in found.rows_of("ClinicalImpression", "XML5")],
    }
    tables.update({table: rows for table, rows in lines.items() if rows})
    for table in LETTERS:
        letter = next(
            (r for (_, tab, stt, part), r in found.lines.items() if (tab, stt, part) == (table, "1", "")), None
        )
        if letter is not None:
            tables[table] = [_letter(found, table, letter)]
    return found.facility, tables


def _letter(visit: _Visit, table: str, resource: Json) -> Row:
    """A one-row letter (``documents``): every field but MA_LK is in the resource's bag, as written."""
    row = _Fields(table)
    row.put("MA_LK", visit.ma_lk)
    row.over(bag_of(resource))
    return row.row()
