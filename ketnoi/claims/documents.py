"""The one-row letters of a visit -> the FHIR resources that are their natural home.

XML14 (re-visit appointment letter) -> Appointment; XML13 (referral/transfer letter) -> ServiceRequest;
XML7 (discharge certificate) and XML11 (sick-leave certificate) -> DocumentReference. These letters repeat
much of XML1 (name, birth date, card) and carry administrative numbers no FHIR element holds, so every field
of the row is also kept verbatim in the ``xml130-field`` bag: nothing a hospital sent is lost, and an export
can write the letter back as it came. The tables have no STT (one letter per visit): the line is "1".
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, VisitIds, by_identifier, coding, concept, staff
from ketnoi.claims.codes import field_bag
from ketnoi.claims.encounter import icd10
from ketnoi.claims.row import Row
from ketnoi.xml130.fields import FIELDS

_SNOMED = "http://snomed.info/sct"
_REFERRAL = {"coding": [coding(_SNOMED, "3457005", "Patient referral")], "text": "Chuyển tuyến"}
_FOLLOW_UP = {
    "coding": [coding("http://terminology.hl7.org/CodeSystem/v2-0276", "FOLLOWUP", "A follow up visit")],
    "text": "Hẹn khám lại",
}
# Appointment.start/end are instants: a time to the second with its offset (Row.when gives "+07:00").
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# The letters' signers (MA_BS, MA_TTDV of XML7/XML11, MA_TTDV of all) are named by social-insurance number
# (mã số định danh y tế), not by practising certificate as MA_BAC_SI is.
_BHXH = s.SID + "bhxh"
TITLES = {
    "XML7": "Giấy ra viện",
    "XML11": "Giấy chứng nhận nghỉ việc hưởng BHXH",
    "XML13": "Giấy chuyển tuyến khám bệnh, chữa bệnh BHYT",
    "XML14": "Giấy hẹn khám lại",
}


def _whole_row(row: Row) -> list[Json]:
    """Every field of the letter but MA_LK (the visit's own identifier), text as written, in table order."""
    return field_bag(row, tuple(spec.name for spec in FIELDS[row.table] if spec.name != "MA_LK"))


def _by_bhxh(code: str | None) -> Json | None:
    return by_identifier("Practitioner", _BHXH, code) if code else None


def _diagnoses(row: Row) -> list[Json]:
    """The letter's ICD-10 main and secondary codes (the text of the discharge diagnosis on the main one),
    and its traditional-medicine codes; the free-text diagnosis alone when no code is given."""
    found: list[Json] = []
    main = row.text("MA_BENH_CHINH")
    text = row.text("CHAN_DOAN_RV")
    if main:
        found.append(concept(s.ICD10, icd10(main), text))
    found.extend(concept(s.ICD10, c) for c in dict.fromkeys(icd10(c) for c in row.items("MA_BENH_KT")))
    found.extend(concept(s.YHCT_CODE, c) for c in dict.fromkeys(row.items("MA_BENH_YHCT")))
    if not main and text:
        found.insert(0, {"text": text})
    return found


def _vn_date(text: str | None) -> str:
    """yyyyMMdd[HHmm] as a Vietnamese reader writes it: dd/MM/yyyy[ HH:mm]."""
    if not text or len(text) < 8:
        return text or ""
    day = f"{text[6:8]}/{text[4:6]}/{text[:4]}"
    return f"{day} {text[8:10]}:{text[10:12]}" if len(text) >= 12 else day


def _start(ids: VisitIds, rtype: str, row: Row) -> Json:
    rid, identifier = ids.line(row.table, "1")
    found = ids.start(rtype, rid)
    bag = _whole_row(row)
    if bag:
        found["extension"] = bag
    found["identifier"] = [identifier]
    return found


def _letter_number(system: str, value: str | None, label: str) -> list[Json]:
    if not value:
        return []
    return [{"type": {"text": label}, "system": system, "value": value}]


def appointment(ids: VisitIds, row: Row) -> Json:
    """XML14: the patient is booked to come back at NGAY_HEN_KL, with the doctor who wrote the letter."""
    found = _start(ids, "Appointment", row)
    found["identifier"] += _letter_number(
        s.SID + "giay-hen-kham-lai/" + ids.facility, row.text("SO_GIAYHEN_KL"), "Số giấy hẹn khám lại"
    )
    when = row.when("NGAY_HEN_KL") or ""
    # R4 (app-3) wants a start and an end on a booked appointment; the letter gives one time to come back,
    # so the end is that time too. A time that is not an instant leaves the appointment proposed.
    booked = bool(_INSTANT.match(when))
    found["status"] = "booked" if booked else "proposed"
    found["appointmentType"] = _FOLLOW_UP
    reasons = _diagnoses(row)
    if reasons:
        found["reasonCode"] = reasons
    found["description"] = f"{TITLES['XML14']}: {_vn_date(row.text('NGAY_HEN_KL'))}"
    found["supportingInformation"] = [ids.encounter_ref]
    if booked:
        found["start"] = found["end"] = when
    created = row.when("NGAY_CT")
    if created:
        found["created"] = created
    found["participant"] = [{"actor": ids.patient_ref, "required": "required", "status": "accepted"}] + [
        {"actor": doctor, "required": "required", "status": "accepted"} for doctor in staff(row.items("MA_BAC_SI"))
    ]
    if not booked and when:
        found["requestedPeriod"] = [{"start": when, "end": when}]
    return found


def _notes(row: Row, labelled: tuple[tuple[str, str], ...]) -> list[Json]:
    return [{"text": f"{label}: {row.text(name)}"} for name, label in labelled if row.text(name)]


# XML13's clinical summary, each a note headed with the letter's own label (the fields' text is in the bag).
_REFERRAL_NOTES = (
    ("DAU_HIEU_LS", "Dấu hiệu lâm sàng"),
    ("QT_BENHLY", "Quá trình bệnh lý và diễn biến lâm sàng"),
    ("TOMTAT_KQ", "Tóm tắt kết quả xét nghiệm, cận lâm sàng"),
    ("PP_DIEUTRI", "Phương pháp, thủ thuật, kỹ thuật, thuốc đã sử dụng"),
    ("PP_DIEU_TRI", "Phương pháp điều trị"),
    ("TEN_DICH_VU", "Dịch vụ kỹ thuật đã sử dụng"),
    ("TEN_THUOC", "Thuốc đã sử dụng"),
    ("HUONG_DIEU_TRI", "Hướng điều trị"),
    ("PHUONGTIEN_VC", "Phương tiện vận chuyển"),
)


def referral(ids: VisitIds, row: Row) -> Json:
    """XML13: the order to treat the patient at MA_NOI_DEN, signed by the treating doctor. It stays active:
    the letter is what the destination admits the patient on (its Encounter.hospitalization
    .preAdmissionIdentifier has the same system and number)."""
    found = _start(ids, "ServiceRequest", row)
    found["identifier"] += _letter_number(
        s.SID + "giay-chuyen-tuyen", row.text("GIAY_CHUYEN_TUYEN"), "Số giấy chuyển tuyến"
    )
    found["status"] = "active"
    found["intent"] = "order"
    found["category"] = [_REFERRAL]
    found["code"] = _REFERRAL
    found["subject"] = ids.patient_ref
    found["encounter"] = ids.encounter_ref
    authored = row.when("NGAY_RA")  # the letter has no date of its own: it is written at discharge
    if authored:
        found["authoredOn"] = authored
    doctors = staff(row.items("MA_BAC_SI"))
    if doctors:
        found["requester"] = doctors[0]
    destination = row.text("MA_NOI_DEN")
    if destination:
        found["performer"] = [by_identifier("Organization", s.FACILITY_SYSTEM, destination)]
    reasons = _diagnoses(row)
    if reasons:
        found["reasonCode"] = reasons
    notes = _notes(row, _REFERRAL_NOTES)
    if notes:
        found["note"] = notes
    return found


def _text_rendering(row: Row) -> str:
    """The letter as "FIELD: value" lines, table order: what a reader of the attachment sees."""
    lines = [TITLES[row.table]]
    lines += [f"{spec.name}: {row.text(spec.name)}" for spec in FIELDS[row.table] if row.text(spec.name)]
    return "\n".join(lines) + "\n"


def _document(ids: VisitIds, row: Row, description: str, period: Json) -> Json:
    """A certificate the facility issued: R4 DocumentReference.date is an instant and NGAY_CT a date, so the
    issue date goes to the attachment's creation; the fields are rendered as plain text in the attachment."""
    found = _start(ids, "DocumentReference", row)
    found["status"] = "current"
    found["docStatus"] = "final"
    found["type"] = {"text": TITLES[row.table]}
    found["subject"] = ids.patient_ref
    author = _by_bhxh(row.text("MA_BS"))
    if author:
        found["author"] = [author]
    signer = _by_bhxh(row.text("MA_TTDV"))
    if signer:
        found["authenticator"] = signer
    found["custodian"] = ids.facility_ref
    found["description"] = description
    attachment: Json = {
        "contentType": "text/plain; charset=utf-8",
        "language": "vi",
        "data": base64.b64encode(_text_rendering(row).encode()).decode("ascii"),
        "title": TITLES[row.table],
    }
    issued = row.when("NGAY_CT")
    if issued:
        attachment["creation"] = issued
    found["content"] = [{"attachment": attachment}]
    context: Json = {"encounter": [ids.encounter_ref]}
    if period:
        context["period"] = period
    found["context"] = context
    return found


def _period(row: Row, start: str, end: str) -> Json:
    return {k: v for k, v in (("start", row.when(start)), ("end", row.when(end))) if v}


def discharge(ids: VisitIds, row: Row) -> Json:
    """XML7: the discharge certificate; context.period is the stay it certifies."""
    number = _letter_number(s.SID + "so-luu-tru/" + ids.facility, row.text("SO_LUU_TRU"), "Số lưu trữ")
    summary = f"{TITLES['XML7']}: vào viện {_vn_date(row.text('NGAY_VAO'))}, ra viện {_vn_date(row.text('NGAY_RA'))}"
    if row.text("CHAN_DOAN_RV"):
        summary += f"; chẩn đoán: {row.text('CHAN_DOAN_RV')}"
    days = row.text("SO_NGAY_NGHI")
    if days:
        summary += f"; nghỉ ngoại trú {days} ngày"
        leave = (row.text("NGOAITRU_TUNGAY"), row.text("NGOAITRU_DENNGAY"))
        if all(leave):
            summary += f" ({_vn_date(leave[0])} - {_vn_date(leave[1])})"
    found = _document(ids, row, summary, _period(row, "NGAY_VAO", "NGAY_RA"))
    found["identifier"] += number
    return found


def sick_leave(ids: VisitIds, row: Row) -> Json:
    """XML11: the sick-leave certificate; context.period is the leave it grants."""
    summary = (
        f"{TITLES['XML11']}: nghỉ {row.text('SO_NGAY_NGHI') or '?'} ngày, từ {_vn_date(row.text('TU_NGAY'))}"
        f" đến {_vn_date(row.text('DEN_NGAY'))}"
    )
    if row.text("CHAN_DOAN_RV"):
        summary += f"; chẩn đoán: {row.text('CHAN_DOAN_RV')}"
    found = _document(ids, row, summary, _period(row, "TU_NGAY", "DEN_NGAY"))
    serial = row.text("SO_SERI")  # the certificate's own number (số định danh chứng từ)
    if serial:
        found["masterIdentifier"] = {"system": s.SID + "so-seri-ct07/" + ids.facility, "value": serial}
    return found


def document_lines(ids: VisitIds, tables: Mapping[str, Sequence[Mapping[str, str]]]) -> list[Json]:
    """The letters of one visit that FHIR has a home for, each from its table's first (only) row."""
    found: list[Json] = []
    for table, make in (("XML7", discharge), ("XML11", sick_leave), ("XML13", referral), ("XML14", appointment)):
        rows = tables.get(table, ())
        if rows:
            found.append(make(ids, Row(table, rows[0])))
    return found
