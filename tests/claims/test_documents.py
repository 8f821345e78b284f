"""XML7, XML11, XML13 and XML14 (the visit's letters) -> DocumentReference, ServiceRequest, Appointment."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ketnoi.claims import systems as s
from ketnoi.claims.build import VisitIds
from ketnoi.claims.codes import bag_of
from ketnoi.claims.documents import document_lines
from ketnoi.claims.importer import Importer
from ketnoi.claims.to_fhir import VISIT_TYPES, map_visit
from ketnoi.demo.xml130 import iter_visits
from ketnoi.fhir import resource as res
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import unit_of_work
from ketnoi.interactions.services import Services
from ketnoi.terminology.membership import packaged
from ketnoi.validation import examine
from ketnoi.xml130.fields import FIELDS
from ketnoi.xml130.rules import check_visit
from ketnoi.xml130.writer import envelope_bytes
from tests.xml130.builders import xml1

Json = dict[str, Any]
FACILITY = "79001"
MA_LK = "LK0007"
PATIENT = {
    "HO_TEN": "Nguyễn Văn An",
    "NGAY_SINH": "198005150000",
    "GIOI_TINH": "1",
    "DIA_CHI": "12 Lê Lợi, Quận 1, TP Hồ Chí Minh",
    "MA_THE_BHYT": "DN4797912345678",
}
XML7 = {
    "MA_LK": MA_LK,
    "SO_LUU_TRU": "LT-2024-0007",
    "MA_YTE": "BN" + MA_LK,
    "MA_KHOA_RV": "K01",
    "NGAY_VAO": "202401150930",
    "NGAY_RA": "202401201100",
    "CHAN_DOAN_RV": "Viêm họng cấp",
    "PP_DIEUTRI": "Điều trị nội khoa",
    "GHI_CHU": "Nghỉ ngơi, tái khám sau 7 ngày",
    "MA_TTDV": "7900000001",
    "MA_BS": "7900000002",
    "TEN_BS": "Trần Thị Bình",
    "NGAY_CT": "20240120",
    "SO_NGAY_NGHI": "5",
    "NGOAITRU_TUNGAY": "20240121",
    "NGOAITRU_DENNGAY": "20240125",
}
XML11 = {
    "MA_LK": MA_LK,
    "SO_CT": "CT-0011",
    "SO_SERI": "SERI-0011",
    "SO_KCB": "KCB-0011",
    "DON_VI": "Công ty TNHH Một Hai Ba",
    "MA_BHXH": "7912345678",
    "MA_THE_BHYT": "DN4797912345678",
    "CHAN_DOAN_RV": "Viêm họng cấp",
    "PP_DIEUTRI": "Điều trị nội khoa",
    "SO_NGAY_NGHI": "3",
    "TU_NGAY": "20240115",
    "DEN_NGAY": "20240117",
    "MA_TTDV": "7900000001",
    "MA_BS": "7900000002",
    "NGAY_CT": "20240115",
    "MAU_SO": "CT07",
}
XML13 = {
    "MA_LK": MA_LK,
    "SO_HOSO": "HS-13",
    "SO_CHUYENTUYEN": "CT-13",
    "GIAY_CHUYEN_TUYEN": "GCT-0013",
    "MA_CSKCB": FACILITY,
    "MA_NOI_DEN": "79002",
    **PATIENT,
    "NGAY_VAO": "202401150930",
    "NGAY_RA": "202401201100",
    "DAU_HIEU_LS": "Sốt cao, đau họng",
    "CHAN_DOAN_RV": "Viêm họng cấp",
    "QT_BENHLY": "Sốt 3 ngày, không đỡ",
    "TOMTAT_KQ": "Bạch cầu tăng",
    "PP_DIEUTRI": "Kháng sinh",
    "MA_BENH_CHINH": "J029",
    "MA_BENH_KT": "J20.9;J20.9",
    "TEN_DICH_VU": "Khám nội",
    "MA_LOAI_RV": "2",
    "MA_LYDO_CT": "1",
    "HUONG_DIEU_TRI": "Điều trị tiếp tại tuyến trên",
    "PHUONGTIEN_VC": "Xe cứu thương",
    "MA_BAC_SI": "000123/HCM-CCHN;000456/HCM-CCHN",
    "MA_TTDV": "7900000001",
}
XML14 = {
    "MA_LK": MA_LK,
    "SO_GIAYHEN_KL": "HEN-0014",
    "MA_CSKCB": FACILITY,
    **PATIENT,
    "NGAY_VAO": "202401150930",
    "NGAY_RA": "202401201100",
    "NGAY_HEN_KL": "202401270800",
    "CHAN_DOAN_RV": "Viêm họng cấp",
    "MA_BENH_CHINH": "J02.9",
    "MA_BAC_SI": "000123/HCM-CCHN",
    "MA_TTDV": "7900000001",
    "NGAY_CT": "20240120",
}
TABLES: dict[str, list[dict[str, str]]] = {
    "XML1": [xml1(MA_LK, NGAY_RA="202401201100", MA_LOAI_RV="2", MA_NOI_DEN="79002")],
    "XML7": [XML7],
    "XML11": [XML11],
    "XML13": [XML13],
    "XML14": [XML14],
}


@pytest.fixture(scope="module")
def resources() -> dict[str, Json]:
    visit = map_visit(FACILITY, TABLES).visit
    found = {r["identifier"][0]["value"].split("/")[1]: r for r in visit if r["resourceType"] in _TYPES.values()}
    return found


_TYPES = {"XML7": "DocumentReference", "XML11": "DocumentReference", "XML13": "ServiceRequest", "XML14": "Appointment"}


def _errors(resource: Json) -> list[str]:
    found = examine(resource, invariants=True, codes=packaged())
    return [i.en for i in found.all() if i.severity == "error"]


def _practitioner(system: str, value: str) -> Json:
    return {"type": "Practitioner", "identifier": {"system": system, "value": value}}


def test_the_hand_built_rows_pass_the_checks() -> None:
    assert [p for p in check_visit(TABLES) if p.rule != "total-mismatch"] == []


def test_each_letter_makes_its_resource_and_it_conforms(resources: dict[str, Json]) -> None:
    assert {table: r["resourceType"] for table, r in resources.items()} == _TYPES
    assert {"Appointment", "ServiceRequest", "DocumentReference"} <= set(VISIT_TYPES)
    for table, resource in resources.items():
        assert _errors(resource) == [], table
        assert resource["meta"]["tag"] == [{"system": s.VISIT_TAG, "code": f"{FACILITY}/{MA_LK}"}]
        assert resource["identifier"][0] == {"system": s.line_system(FACILITY), "value": f"{MA_LK}/{table}/1"}


def test_every_field_is_kept_in_the_bag(resources: dict[str, Json]) -> None:
    for table, resource in resources.items():
        row = TABLES[table][0]
        assert bag_of(resource) == {k: v for k, v in row.items() if k != "MA_LK"}, table
        # the bag follows the table's field order
        names = [spec.name for spec in FIELDS[table] if spec.name in bag_of(resource)]
        assert list(bag_of(resource)) == names


def test_discharge_certificate(resources: dict[str, Json]) -> None:
    doc = resources["XML7"]
    assert doc["status"] == "current"
    assert doc["type"] == {"text": "Giấy ra viện"}
    assert doc["subject"]["reference"].startswith("Patient/")
    assert doc["context"]["encounter"][0]["reference"].startswith("Encounter/")
    assert doc["context"]["period"] == {"start": "2024-01-15T09:30:00+07:00", "end": "2024-01-20T11:00:00+07:00"}
    assert doc["identifier"][1]["value"] == "LT-2024-0007"
    assert doc["author"] == [_practitioner(s.SID + "bhxh", "7900000002")]
    assert doc["authenticator"] == _practitioner(s.SID + "bhxh", "7900000001")
    assert "Viêm họng cấp" in doc["description"] and "nghỉ ngoại trú 5 ngày" in doc["description"]
    assert "15/01/2024 09:30" in doc["description"]
    (content,) = doc["content"]
    attachment = content["attachment"]
    assert attachment["contentType"] == "text/plain; charset=utf-8"
    assert attachment["title"] == "Giấy ra viện"
    assert attachment["creation"] == "2024-01-20"
    text = base64.b64decode(attachment["data"]).decode()
    for name, value in XML7.items():
        assert f"{name}: {value}\n" in text


def test_sick_leave_certificate(resources: dict[str, Json]) -> None:
    doc = resources["XML11"]
    assert doc["type"] == {"text": "Giấy chứng nhận nghỉ việc hưởng BHXH"}
    assert doc["context"]["period"] == {"start": "2024-01-15", "end": "2024-01-17"}
    assert doc["masterIdentifier"] == {"system": s.SID + "so-seri-ct07/" + FACILITY, "value": "SERI-0011"}
    assert doc["description"].startswith("Giấy chứng nhận nghỉ việc hưởng BHXH: nghỉ 3 ngày, từ 15/01/2024")
    assert doc["author"] == [_practitioner(s.SID + "bhxh", "7900000002")]
    attachment = doc["content"][0]["attachment"]
    assert attachment["creation"] == "2024-01-15"
    text = base64.b64decode(attachment["data"]).decode()
    assert "DON_VI: Công ty TNHH Một Hai Ba\n" in text and "MA_BHXH: 7912345678\n" in text


def test_referral_letter(resources: dict[str, Json]) -> None:
    req = resources["XML13"]
    assert (req["status"], req["intent"]) == ("active", "order")
    assert req["category"][0]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "3457005",
        "display": "Patient referral",
    }
    assert req["identifier"][1] == {
        "type": {"text": "Số giấy chuyển tuyến"},
        "system": s.SID + "giay-chuyen-tuyen",
        "value": "GCT-0013",
    }
    assert req["authoredOn"] == "2024-01-20T11:00:00+07:00"
    assert req["requester"] == _practitioner(s.LICENCE_SYSTEM, "000123/HCM-CCHN")
    assert req["performer"] == [{"type": "Organization", "identifier": {"system": s.FACILITY_SYSTEM, "value": "79002"}}]
    assert req["reasonCode"] == [
        {"coding": [{"system": s.ICD10, "code": "J02.9"}], "text": "Viêm họng cấp"},
        {"coding": [{"system": s.ICD10, "code": "J20.9"}]},
    ]
    notes = [n["text"] for n in req["note"]]
    assert "Dấu hiệu lâm sàng: Sốt cao, đau họng" in notes
    assert "Tóm tắt kết quả xét nghiệm, cận lâm sàng: Bạch cầu tăng" in notes
    assert "Hướng điều trị: Điều trị tiếp tại tuyến trên" in notes
    assert req["encounter"]["reference"].startswith("Encounter/")


def test_reappointment_letter(resources: dict[str, Json]) -> None:
    appt = resources["XML14"]
    assert appt["status"] == "booked"
    assert appt["start"] == appt["end"] == "2024-01-27T08:00:00+07:00"
    assert appt["created"] == "2024-01-20"
    assert appt["identifier"][1]["value"] == "HEN-0014"
    assert appt["appointmentType"]["coding"][0]["code"] == "FOLLOWUP"
    assert appt["participant"][0]["actor"]["reference"].startswith("Patient/")
    assert appt["participant"][1]["actor"] == _practitioner(s.LICENCE_SYSTEM, "000123/HCM-CCHN")
    assert {p["status"] for p in appt["participant"]} == {"accepted"}
    assert appt["supportingInformation"][0]["reference"].startswith("Encounter/")
    assert appt["reasonCode"] == [{"coding": [{"system": s.ICD10, "code": "J02.9"}], "text": "Viêm họng cấp"}]
    assert appt["description"] == "Giấy hẹn khám lại: 27/01/2024 08:00"


def test_an_appointment_without_an_instant_is_proposed() -> None:
    ids_visit = map_visit(FACILITY, {"XML1": TABLES["XML1"]})
    assert not [r for r in ids_visit.visit if r["resourceType"] in set(_TYPES.values())]
    ids = VisitIds(FACILITY, MA_LK, "p1", {"reference": "Organization/o1"})
    (appt,) = document_lines(ids, {"XML14": [{**XML14, "NGAY_HEN_KL": "20240127"}]})
    assert appt["status"] == "proposed" and "start" not in appt
    assert _errors(appt) == []


def test_the_mapping_is_deterministic() -> None:
    assert map_visit(FACILITY, TABLES).resources == map_visit(FACILITY, TABLES).resources


def test_an_import_stores_the_letters_and_a_correction_drops_one(fresh_services: Services) -> None:
    """Through the importer: the letters are stored with the visit, and one left out of a corrected visit is
    deleted (the types are in VISIT_TYPES)."""
    facility, tables = next(iter_visits(3, 5))
    ma_lk = tables["XML1"][0]["MA_LK"]
    letters = {name: [{**TABLES[name][0], "MA_LK": ma_lk}] for name in ("XML7", "XML11", "XML13", "XML14")}
    full = {**tables, **letters}
    importer = Importer(fresh_services, RequestContext.operator("test import xml130"))
    report = importer.import_file(envelope_bytes(facility, [full], created="202611300800"), "a.xml")
    assert [v.status for v in report.visits] == ["created"], report.visits
    made = [r for r in map_visit(facility, full).visit if r["resourceType"] in set(_TYPES.values())]
    assert len(made) == 4
    for resource in made:
        stored = _current(fresh_services, resource["resourceType"], resource["id"])
        assert stored is not None and not stored.deleted
        assert res.without_version_meta(res.loads(stored.content)) == res.without_version_meta(resource)
    without = {k: v for k, v in full.items() if k != "XML14"}
    again = importer.import_file(envelope_bytes(facility, [without], created="202611300900"), "b.xml")
    (visit,) = again.visits
    assert visit.status == "updated" and visit.written["Appointment (deleted)"] == 1
    appointment = next(r for r in made if r["resourceType"] == "Appointment")
    assert _current(fresh_services, "Appointment", appointment["id"]).deleted


def _current(services: Services, rtype: str, id: str) -> Any:
    with unit_of_work(services, RequestContext.operator("test"), write=False) as repo:
        return repo.session.current(rtype, id)
