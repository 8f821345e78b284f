"""Importing claims XML (``ketnoi.claims.importer``) on SQLite and PostgreSQL: one visit per transaction,
imported whole or not at all; idempotent; a corrected visit updates in place; a bad visit is reported per
field and never blocks the good ones; a refused file writes nothing."""

from __future__ import annotations

import base64
import copy
from collections import defaultdict
from typing import Any

import pytest

from ketnoi.claims import systems as s
from ketnoi.claims.importer import Importer
from ketnoi.claims.report import to_csv, to_outcome
from ketnoi.claims.to_fhir import map_visit, patient_id
from ketnoi.demo.xml130 import iter_visits
from ketnoi.fhir import resource as res
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import unit_of_work
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.xml130.writer import envelope_bytes

Tables = dict[str, list[dict[str, str]]]


@pytest.fixture(scope="module")
def facility_visits() -> tuple[str, list[Tables]]:
    """The visits of the facility with the most of them among 30 generated patients."""
    by: dict[str, list[Tables]] = defaultdict(list)
    for facility, tables in iter_visits(30, 11):
        by[facility].append(tables)
    facility = max(by, key=lambda f: len(by[f]))
    assert len(by[facility]) >= 3
    return facility, by[facility]


def _importer(services: Services) -> Importer:
    return Importer(services, RequestContext.operator("test import xml130"))


def _current(services: Services, rtype: str, id: str) -> Any:
    with unit_of_work(services, RequestContext.operator("test"), write=False) as repo:
        return repo.session.current(rtype, id)


def _encounter_id(facility: str, tables: Tables) -> str:
    return s.stable_id(s.visit_system(facility), tables["XML1"][0]["MA_LK"])


def test_import_writes_every_visit_and_twice_changes_nothing(
    fresh_services: Services, facility_visits: tuple[str, list[Tables]]
) -> None:
    facility, visits = facility_visits
    envelope = envelope_bytes(facility, visits, created="202611300800")
    report = _importer(fresh_services).import_file(envelope, "a.xml")
    assert not report.refused and report.problems == []
    assert [v.status for v in report.visits] == ["created"] * len(visits)
    for tables in visits:  # the Patient is the facility's record: its last visit's fields
        for resource in map_visit(facility, tables).resources[1:]:
            stored = _current(fresh_services, resource["resourceType"], resource["id"])
            assert stored is not None and not stored.deleted, resource["resourceType"]
            body = res.loads(stored.content)
            assert res.without_version_meta(body) == res.without_version_meta(resource)
    again = _importer(fresh_services).import_file(envelope, "a.xml")
    assert [v.status for v in again.visits] == ["unchanged"] * len(visits)
    assert again.resources == 0
    encounter = _current(fresh_services, "Encounter", _encounter_id(facility, visits[0]))
    assert encounter.version == 1


def test_a_corrected_visit_updates_in_place_and_drops_removed_lines(
    fresh_services: Services, facility_visits: tuple[str, list[Tables]]
) -> None:
    facility, visits = facility_visits
    tables = next(t for t in visits if len(t.get("XML2", [])) >= 2)
    _importer(fresh_services).import_file(envelope_bytes(facility, [tables], created="202611300800"), "a.xml")
    corrected = copy.deepcopy(tables)
    dropped = corrected["XML2"].pop()
    _rebalance(corrected, dropped)
    report = _importer(fresh_services).import_file(
        envelope_bytes(facility, [corrected], created="202611300900"), "b.xml"
    )
    (visit,) = report.visits
    assert visit.status == "updated", visit.problems
    assert visit.written["MedicationRequest (deleted)"] == 1
    removed = s.stable_id(s.line_system(facility), f"{tables['XML1'][0]['MA_LK']}/XML2/{dropped['STT']}")
    assert _current(fresh_services, "MedicationRequest", removed).deleted
    claim = map_visit(facility, corrected).visit[-1]
    stored = _current(fresh_services, "Claim", claim["id"])
    assert stored.version == 2 and len(res.loads(stored.content)["item"]) == len(corrected["XML2"]) + len(
        corrected.get("XML3", [])
    )


def _rebalance(tables: Tables, dropped: dict[str, str]) -> None:
    """XML1's totals without a removed drug line, so that the corrected visit still adds up."""
    from decimal import Decimal

    xml1 = tables["XML1"][0]
    for total, line in (
        ("T_THUOC", "THANH_TIEN_BV"),
        ("T_TONGCHI_BV", "THANH_TIEN_BV"),
        ("T_TONGCHI_BH", "THANH_TIEN_BH"),
        ("T_BNTT", "T_BNTT"),
        ("T_BNCCT", "T_BNCCT"),
        ("T_BHTT", "T_BHTT"),
        ("T_BHTT_GDV", "T_BHTT"),
        ("T_NGUONKHAC", "T_NGUONKHAC"),
    ):
        if xml1.get(total) and dropped.get(line):
            xml1[total] = str(Decimal(xml1[total]) - Decimal(dropped[line]))


def test_a_bad_visit_is_reported_by_field_and_the_good_ones_go_in(
    fresh_services: Services, facility_visits: tuple[str, list[Tables]]
) -> None:
    facility, visits = facility_visits
    bad = copy.deepcopy(visits[1])
    bad["XML2"][0]["SO_LUONG"] = "2a"
    report = _importer(fresh_services).import_file(
        envelope_bytes(facility, [visits[0], bad, visits[2]], created="202611300800"), "x.xml"
    )
    assert [v.status for v in report.visits] == ["created", "rejected", "created"]
    problems = report.visits[1].problems
    assert any(p.table == "XML2" and p.field == "SO_LUONG" and p.value == "2a" for p in problems)
    assert _current(fresh_services, "Encounter", _encounter_id(facility, bad)) is None
    csv = to_csv([report])
    assert csv.startswith("file,visit,table,MA_LK,field,value,rule,severity,message_vi,message_en\n")
    assert f"x.xml,2,XML2,{bad['XML1'][0]['MA_LK']},SO_LUONG,2a," in csv
    outcome = to_outcome([report])
    errors = [i for i in outcome["issue"] if i["severity"] == "error"]
    assert errors and all(" / " in i["details"]["text"] for i in errors)  # Vietnamese / English


def test_a_refused_file_writes_nothing(fresh_services: Services, facility_visits: tuple[str, list[Tables]]) -> None:
    facility, visits = facility_visits
    good = envelope_bytes(facility, visits[:2], created="202611300800")
    hostile_table = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><TONG_HOP><MA_LK>&e;</MA_LK></TONG_HOP>'
    payload = base64.b64encode(hostile_table).decode()
    entry = f"<HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>{payload}</NOIDUNGFILE></FILEHOSO></HOSO>"
    hostile = good.replace(b"</DANHSACHHOSO>", entry.encode() + b"</DANHSACHHOSO>")
    report = _importer(fresh_services).import_file(hostile, "h.xml")
    assert report.refused and report.visits == []
    assert report.problems[0].rule == "xml-forbidden-construct"
    assert _current(fresh_services, "Encounter", _encounter_id(facility, visits[0])) is None


def test_the_same_person_at_two_facilities_is_two_linked_patients(
    fresh_services: Services, facility_visits: tuple[str, list[Tables]]
) -> None:
    facility, visits = facility_visits
    tables = next(t for t in visits if t["XML1"][0].get("SO_CCCD"))
    other = "01999" if facility != "01999" else "79999"
    moved = copy.deepcopy(tables)
    moved["XML1"][0]["MA_CSKCB"] = other
    for rows in moved.values():
        for row in rows:
            if row.get("MA_CSKCB") == facility:
                row["MA_CSKCB"] = other
    importer = _importer(fresh_services)
    first = importer.import_file(envelope_bytes(facility, [tables], created="202611300800"), "a.xml")
    second = importer.import_file(envelope_bytes(other, [moved], created="202611300800"), "b.xml")
    assert first.visits[0].status == "created"
    assert second.visits[0].status == "created", second.visits[0].problems
    ma_bn = tables["XML1"][0]["MA_BN"]
    one, two = (res.loads(_current(fresh_services, "Patient", patient_id(f, ma_bn)).content) for f in (facility, other))
    cccd = tables["XML1"][0]["SO_CCCD"]
    assert {"system": s.CCCD_SYSTEM, "value": cccd} in [
        {"system": i["system"], "value": i["value"]} for i in one["identifier"]
    ]
    assert [i for i in one["identifier"] if i["system"] == s.CCCD_SYSTEM] == [
        i for i in two["identifier"] if i["system"] == s.CCCD_SYSTEM
    ]


def test_the_operation_takes_the_envelope_or_parameters(
    fresh_services: Services, facility_visits: tuple[str, list[Tables]]
) -> None:
    facility, visits = facility_visits
    envelope = envelope_bytes(facility, visits[:2], created="202611300800")
    data = base64.b64encode(envelope).decode()
    ctx = RequestContext.operator("test")
    binary = {"resourceType": "Binary", "contentType": "application/xml", "data": data}
    answer = handle(fresh_services, FhirRequest("POST", "$import-xml130", body=binary, context=ctx))
    assert answer.status == 200
    assert answer.resource is not None and "created 2" in answer.resource["issue"][0]["diagnostics"]
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "file", "valueAttachment": {"contentType": "application/xml", "title": "a.xml", "data": data}}
        ],
    }
    answer = handle(fresh_services, FhirRequest("POST", "$import-xml130", body=params, context=ctx))
    assert answer.status == 200 and "unchanged 2" in answer.resource["issue"][0]["diagnostics"]  # type: ignore[index]
    broken = handle(
        fresh_services, FhirRequest("POST", "$import-xml130", body={"resourceType": "Parameters"}, context=ctx)
    )
    assert broken.status == 400
    not_xml = {**binary, "data": base64.b64encode(b"<GIAMDINHHS><oops").decode()}
    refused = handle(fresh_services, FhirRequest("POST", "$import-xml130", body=not_xml, context=ctx))
    assert refused.status == 400 and refused.resource["issue"][1]["severity"] == "error"  # type: ignore[index]


def test_a_facility_imports_its_own_claims_only(
    fresh_services: Services, facility_visits: tuple[str, list[Tables]]
) -> None:
    """A facility's backend (system scopes, acting for its Organization) imports files whose MACSKCB is its
    own facility code, and owns what it writes; another facility's file is refused, visit by visit."""
    from ketnoi.auth.scopes import parse_scopes

    facility, visits = facility_visits
    operator = RequestContext.operator("test")
    with unit_of_work(fresh_services, operator, write=True) as repo:
        org = {
            "resourceType": "Organization",
            "identifier": [{"system": s.FACILITY_SYSTEM, "value": facility}],
            "name": "BV",
        }
        own = repo.create(org).id
        other = repo.create({**org, "identifier": [{"system": s.FACILITY_SYSTEM, "value": "99999"}]}).id
    for org_id, wanted in ((other, "rejected"), (own, "created")):
        ctx = RequestContext(
            authenticated=True,
            client_id="his",
            scopes=parse_scopes("system/*.cruds"),
            organization=f"Organization/{org_id}",
        )
        report = Importer(fresh_services, ctx).import_file(
            envelope_bytes(facility, visits[:1], created="202611300800"), "a.xml"
        )
        assert report.visits[0].status == wanted, report.visits[0].problems
    assert report.visits[0].problems == []
    encounter = _current(fresh_services, "Encounter", _encounter_id(facility, visits[0]))
    assert encounter.org == f"Organization/{own}"
    assert res.loads(encounter.content)["serviceProvider"]["reference"] == f"Organization/{own}"


def test_a_facility_administrator_imports_through_the_operation_and_a_clinician_may_not(
    fresh_services: Services, facility_visits: tuple[str, list[Tables]]
) -> None:
    """A facility's administrator (the console's upload) does the facility's own-data bulk work as its
    backend does; a clinician of the same facility is refused; the answer carries the report as data."""
    from ketnoi.auth.scopes import parse_scopes
    from ketnoi.claims.report import FILE_EXTENSION, PROBLEM_EXTENSION

    facility, visits = facility_visits
    with unit_of_work(fresh_services, RequestContext.operator("test"), write=True) as repo:
        org = {"resourceType": "Organization", "identifier": [{"system": s.FACILITY_SYSTEM, "value": facility}]}
        own = repo.create(org).id
    bad = copy.deepcopy(visits[1])
    bad["XML1"][0]["NGAY_SINH"] = "19801350"
    data = base64.b64encode(envelope_bytes(facility, [visits[0], bad], created="202611300800")).decode()
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "file", "valueAttachment": {"title": "a.xml", "data": data}}],
    }

    def caller(role: str) -> RequestContext:
        return RequestContext(
            authenticated=True, user=role, scopes=parse_scopes("user/*.cruds patient/*.cruds"),
            organization=f"Organization/{own}", roles=frozenset({role}),
        )  # fmt: skip

    refused = handle(fresh_services, FhirRequest("POST", "$import-xml130", body=params, context=caller("clinician")))
    assert refused.status == 403
    answer = handle(
        fresh_services, FhirRequest("POST", "$import-xml130", body=params, context=caller("facility-admin"))
    )
    assert answer.status == 200 and answer.resource is not None
    summary, problem = answer.resource["issue"][0], answer.resource["issue"][1]
    assert summary["extension"][0]["url"] == FILE_EXTENSION
    parts = {
        p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in summary["extension"][0]["extension"]
    }
    assert parts == {"file": "a.xml", "facility": facility, "created": 1, "updated": 0, "unchanged": 0,
                     "rejected": 1, "refused": False}  # fmt: skip
    assert problem["extension"][0]["url"] == PROBLEM_EXTENSION
    row = {p["url"]: p["valueString"] for p in problem["extension"][0]["extension"]}
    assert row["visit"] == "2" and row["table"] == "XML1" and row["field"] == "NGAY_SINH"
    assert row["value"] == "19801350" and row["severity"] == "error" and row["MA_LK"] == bad["XML1"][0]["MA_LK"]
    assert row["message_vi"] and row["message_en"] and row["message_vi"] != row["message_en"]
