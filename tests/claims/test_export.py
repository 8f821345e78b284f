"""``$export-xml130`` (``ketnoi.claims.export``) on SQLite and PostgreSQL: imported visits come back as the
envelope they came in, field by field up to the mapping's canonical forms (decimals without trailing zeros,
ICD-10 dotted, a code list's repeats once, XML1 STT and NHOM_MAU not held: ``test_round_trip.canonical``),
and importing the export changes nothing; 404 when no visit matches, 400 for wrong parameters."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import httpx
import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.claims import systems as s
from ketnoi.claims.importer import Importer
from ketnoi.claims.to_fhir import patient_id
from ketnoi.demo.xml130 import iter_visits
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import unit_of_work
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.xml130.reader import read_envelope
from ketnoi.xml130.writer import envelope_bytes
from tests.claims.test_round_trip import FACILITY, canonical, day_visit, inpatient_visit, letters_visit, newborn_visit

Tables = dict[str, list[dict[str, str]]]
OPERATOR = RequestContext.operator("test export xml130")
EVER = [("start", "2000-01-01"), ("end", "2100-12-31")]


@pytest.fixture(scope="module")
def facility_visits() -> tuple[str, list[Tables]]:
    """The visits of the facility with the most of them among 30 generated patients."""
    by: dict[str, list[Tables]] = defaultdict(list)
    for facility, tables in iter_visits(30, 11):
        by[facility].append(tables)
    facility = max(by, key=lambda f: len(by[f]))
    assert len(by[facility]) >= 3
    return facility, by[facility]


def _hand_made() -> list[Tables]:
    return [inpatient_visit(), newborn_visit(), day_visit(), letters_visit()]


def _import(services: Services, facility: str, visits: list[Tables]) -> list[str]:
    report = Importer(services, OPERATOR).import_file(envelope_bytes(facility, visits, created="202611300800"), "a.xml")
    assert not report.refused and report.problems == []
    assert all(v.problems == [] for v in report.visits), [v.problems for v in report.visits]
    return [v.status for v in report.visits]


def _export(
    services: Services, params: list[tuple[str, str]], *, body: Any = None, context: RequestContext = OPERATOR
) -> FhirResponse:
    method = "POST" if body is not None else "GET"
    return handle(services, FhirRequest(method, "$export-xml130", params, body=body, context=context))


def _tables(answer: FhirResponse) -> tuple[str, dict[str, Tables]]:
    """(MACSKCB, MA_LK -> tables) of an exported envelope."""
    assert answer.status == 200, answer.resource
    assert answer.headers["Content-Type"].startswith("application/xml") and answer.raw is not None
    header: dict[str, str] = {}
    visits = list(read_envelope(io.BytesIO(answer.raw), header=header))
    assert header["SOLUONGHOSO"] == str(len(visits))
    assert all(v.problems == [] for v in visits)
    return header["MACSKCB"], {v.ma_lk: v.tables for v in visits}


def _encounter(facility: str, tables: Tables) -> str:
    return s.stable_id(s.visit_system(facility), tables["XML1"][0]["MA_LK"])


def _issue(answer: FhirResponse) -> str:
    """The first issue's text: English / Vietnamese."""
    assert answer.resource is not None and answer.resource["resourceType"] == "OperationOutcome"
    text = str(answer.resource["issue"][0]["diagnostics"])
    assert " / " in text, text
    return text


def test_visits_come_back_as_imported_and_reimporting_them_changes_nothing(
    fresh_services: Services, facility_visits: tuple[str, list[Tables]]
) -> None:
    facility, visits = facility_visits
    assert _import(fresh_services, facility, visits) == ["created"] * len(visits)
    assert _import(fresh_services, FACILITY, _hand_made()) == ["created"] * 4

    code, exported = _tables(_export(fresh_services, [*EVER, ("facility", facility)]))
    assert code == facility
    assert exported == {t["XML1"][0]["MA_LK"]: canonical(t) for t in visits}
    again = Importer(fresh_services, OPERATOR).import_file(
        envelope_bytes(facility, list(exported.values()), created="202612010800"), "export.xml"
    )
    assert [v.status for v in again.visits] == ["unchanged"] * len(visits), [v.problems for v in again.visits]

    code, exported = _tables(_export(fresh_services, [*EVER, ("facility", FACILITY)]))
    assert code == FACILITY and exported == {t["XML1"][0]["MA_LK"]: canonical(t) for t in _hand_made()}
    assert _import(fresh_services, FACILITY, list(exported.values())) == ["unchanged"] * 4


def test_one_visit_by_its_encounter(fresh_services: Services) -> None:
    _import(fresh_services, FACILITY, _hand_made())
    tables = inpatient_visit()
    for value in (f"Encounter/{_encounter(FACILITY, tables)}", _encounter(FACILITY, tables)):
        code, exported = _tables(_export(fresh_services, [("encounter", value)]))
        assert code == FACILITY and exported == {"LK0001": canonical(tables)}
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "encounter", "valueReference": {"reference": f"Encounter/{_encounter(FACILITY, tables)}"}}
        ],
    }
    assert _tables(_export(fresh_services, [], body=body))[1] == {"LK0001": canonical(tables)}
    period = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "start", "valueDate": "2024-01-15"},
            {"name": "end", "valueDate": "2024-01-15"},
            {"name": "facility", "valueString": FACILITY},
        ],
    }
    # the stay of 15-17 January meets the 15th, as do the three visits of that day
    assert sorted(_tables(_export(fresh_services, [], body=period))[1]) == ["LK0001", "LK0002", "LK0003", "LK0004"]
    assert sorted(_tables(_export(fresh_services, [("start", "2024-01-16"), ("end", "2024-01-31")]))[1]) == ["LK0001"]


def test_no_visit_is_404(fresh_services: Services) -> None:
    _import(fresh_services, FACILITY, _hand_made()[:1])
    with unit_of_work(fresh_services, OPERATOR, write=True) as repo:
        plain = repo.create(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "period": {"start": "2024-01-15"},
            }
        ).id
    answers = [
        _export(fresh_services, [("start", "2023-01-01"), ("end", "2023-12-31")]),
        _export(fresh_services, [*EVER, ("facility", "99999")]),
        _export(fresh_services, [("encounter", f"Encounter/{plain}")]),  # not a claims visit
        _export(fresh_services, [("encounter", "Encounter/does-not-exist")]),
        _export(fresh_services, [("encounter", _encounter(FACILITY, inpatient_visit())), ("facility", "99999")]),
    ]
    assert [a.status for a in answers] == [404] * len(answers)
    assert all(a.resource and a.resource["resourceType"] == "OperationOutcome" for a in answers)


def test_wrong_parameters_are_400(fresh_services: Services, facility_visits: tuple[str, list[Tables]]) -> None:
    facility, visits = facility_visits
    _import(fresh_services, facility, visits[:1])
    _import(fresh_services, FACILITY, _hand_made()[:1])
    wrong = [
        [],
        [("start", "2024-01-01")],
        [("encounter", "Encounter/x"), ("start", "2024-01-01"), ("end", "2024-02-01")],
        [("encounter", "Patient/x")],
        [("encounter", "Encounter/not valid!")],
        [("start", "01/01/2024"), ("end", "2024-02-01")],
        [("start", "2024-02-01"), ("end", "2024-01-01")],
        [("start", "2024-01-01"), ("start", "2024-01-02"), ("end", "2024-02-01")],
        [("from", "2024-01-01")],
        [*EVER, ("facility", "79 001")],
    ]
    for params in wrong:
        answer = _export(fresh_services, params)
        assert answer.status == 400, (params, answer.resource)
        _issue(answer)
    several = _export(fresh_services, EVER)  # two facilities, one envelope each: name one
    assert several.status == 400 and "facility" in _issue(several)
    not_parameters = _export(fresh_services, [], body={"resourceType": "Patient"})
    assert not_parameters.status == 400


def test_a_patient_exports_only_their_own_visits(fresh_services: Services) -> None:
    _import(fresh_services, FACILITY, _hand_made())
    mine = patient_id(FACILITY, "BNLK0001")
    patient = RequestContext(
        authenticated=True, user="p", roles=frozenset({"patient"}), scopes=parse_scopes("patient/*.rs"), patient=mine
    )
    _, exported = _tables(_export(fresh_services, [*EVER, ("facility", FACILITY)], context=patient))
    assert sorted(exported) == ["LK0001"]
    other = _export(fresh_services, [("encounter", _encounter(FACILITY, day_visit()))], context=patient)
    assert other.status == 404
    no_encounters = RequestContext(
        authenticated=True, user="p", scopes=parse_scopes("patient/Patient.rs"), patient=mine
    )
    assert _export(fresh_services, EVER, context=no_encounters).status == 403


def test_the_envelope_over_http(client: httpx.Client) -> None:
    facility, tables = next(iter(iter_visits(1, 23)))
    envelope = envelope_bytes(facility, [tables], created="202611300800")
    posted = client.post("/$import-xml130", content=envelope, headers={"Content-Type": "application/xml"})
    assert posted.status_code == 200, posted.text
    encounter = f"Encounter/{_encounter(facility, tables)}"
    for accept in ("application/xml", "application/fhir+json", "*/*"):
        got = client.get(
            "/$export-xml130", params={"encounter": encounter, "_pretty": "true"}, headers={"Accept": accept}
        )
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("application/xml")
        assert "attachment" in got.headers["content-disposition"]
        (visit,) = list(read_envelope(io.BytesIO(got.content)))
        assert visit.tables == canonical(tables)
    missing = client.get("/$export-xml130", params={"start": "1990-01-01", "end": "1990-12-31"})
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/fhir+json")
