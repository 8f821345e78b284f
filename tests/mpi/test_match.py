"""``Patient/$match`` on both backends: candidates through the blocking-key index rows, graded, shown as
far as the caller's access reaches (ketnoi/operations/match.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from tests.mpi.people import LEGACY, patient

OPERATOR = RequestContext.operator("test")
EMPTY = {"resourceType": "Patient"}
GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


def staff(org: str, user: str) -> RequestContext:
    return RequestContext(
        authenticated=True,
        user=user,
        scopes=parse_scopes("user/*.cruds"),
        organization=org,
        roles=frozenset({"clinician"}),
    )


def call(s: Services, ctx: RequestContext, method: str, url: str, body: Any = None) -> FhirResponse:
    path, _, qs = url.partition("?")
    request = FhirRequest(
        method, path, parse_qsl(qs), {"content-type": "application/fhir+json"}, body, "http://x/fhir", ctx
    )
    return handle(s, request)


def answer(r: FhirResponse) -> Any:
    return r.resource if r.resource is not None else orjson.loads(r.raw or b"{}")


def put(s: Services, id: str, resource: dict[str, Any], ctx: RequestContext = OPERATOR) -> None:
    r = call(s, ctx, "PUT", f"Patient/{id}", {**resource, "id": id})
    assert r.status in (200, 201), answer(r)


def match(s: Services, resource: Any, ctx: RequestContext = OPERATOR, **params: Any) -> FhirResponse:
    parameter: list[dict[str, Any]] = [] if resource is None else [{"name": "resource", "resource": resource}]
    for name, value in params.items():
        parameter.append({"name": name, **value})
    return call(s, ctx, "POST", "Patient/$match", {"resourceType": "Parameters", "parameter": parameter})


def found(r: FhirResponse) -> list[tuple[str, str, float]]:
    assert r.status == 200, answer(r)
    bundle = answer(r)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    rows = []
    for e in bundle["entry"]:
        if e["search"]["mode"] == "match":
            (grade,) = [x["valueCode"] for x in e["search"]["extension"] if x["url"] == GRADE]
            rows.append((e["resource"]["id"], grade, e["search"]["score"]))
    assert bundle["total"] == len(rows)
    return rows


@pytest.fixture
def registry(fresh_services: Services) -> Services:
    s = fresh_services
    put(s, "binh", patient(cccd="001085012345", phone="0912345678"))
    put(s, "binh-twin", patient(given=("Văn", "Bính"), cccd="001085099999"))  # another man, his own CCCD
    put(s, "lan", patient(family="Trần", given=("Thị", "Lan"), birth="1990-11-02", gender="female"))
    put(s, "old", patient(family="Lê", given=("Hữu", "Phước"), birth="1950", place=("26", LEGACY, None)))
    return s


def test_a_record_typed_again_without_diacritics_and_middle_name_is_found_and_graded(registry: Services) -> None:
    rows = found(match(registry, patient(family="Nguyen", given=("Binh",), birth="1985-03-07")))
    assert rows[0][0] == "binh" and rows[0][1] in ("certain", "probable")
    assert 0 < rows[0][2] <= 1 and [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)
    assert "lan" not in {r[0] for r in rows}


def test_the_same_cccd_is_certain_and_another_cccd_is_never_a_match(registry: Services) -> None:
    rows = found(match(registry, patient(family="Nguyen", given=("Binh",), birth="1985-07-03", cccd="001085012345")))
    assert rows[0][:2] == ("binh", "certain")
    assert "binh-twin" not in {r[0] for r in rows}  # a different CCCD is a different person
    only = found(
        match(registry, patient(given=("Văn", "Bình"), cccd="001085012345"), onlyCertainMatches={"valueBoolean": True})
    )
    assert only and {r[1] for r in only} == {"certain"}


def test_day_month_swap_phone_and_name_order_find_the_record(registry: Services) -> None:
    swapped = found(match(registry, patient(family="Trần", given=("Lan",), birth="1990-02-11", gender="female")))
    assert swapped and swapped[0][0] == "lan"
    fields_swapped = found(match(registry, patient(family="Bình", given=("Nguyễn",), birth="1985-03-07")))
    assert fields_swapped and fields_swapped[0][0] == "binh"
    by_phone = found(match(registry, patient(family="Nguyễn", given=("Bình",), birth="1985", phone="+84 912 345 678")))
    assert by_phone and by_phone[0][0] == "binh"


def test_a_birth_year_only_finds_the_year_only_record(registry: Services) -> None:
    rows = found(match(registry, patient(family="Le", given=("Phuoc",), birth="1950", place=None)))
    assert rows and rows[0][0] == "old"


def test_count_caps_the_answer_and_deleted_records_are_never_offered(registry: Services) -> None:
    query = patient(given=("Văn", "Bình"))
    assert len(found(match(registry, query, count={"valueInteger": 1}))) == 1
    assert call(registry, OPERATOR, "DELETE", "Patient/binh").status in (200, 204)
    assert "binh" not in {r[0] for r in found(match(registry, query))}


def test_nothing_like_anyone_answers_an_empty_searchset(registry: Services) -> None:
    assert found(match(registry, patient(family="Hoàng", given=("Xuân", "Quỳnh"), birth="2001-01-01"))) == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"resourceType": "Patient"}, "Parameters"),
        ({"resourceType": "Parameters", "parameter": []}, "'resource' is required"),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Person"}}]},
            "must be a Patient, not Person",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}],
            },
            "nothing to match on",
        ),
    ],
)
def test_bad_requests_are_400_naming_the_problem(registry: Services, body: Any, needle: str) -> None:
    r = call(registry, OPERATOR, "POST", "Patient/$match", body)
    outcome = answer(r)
    assert r.status == 400 and outcome["resourceType"] == "OperationOutcome"
    text = orjson.dumps(outcome).decode()
    assert needle in text


@pytest.mark.parametrize(
    "param",
    [
        {"count": {"valueInteger": 0}},
        {"count": {"valueInteger": 101}},
        {"count": {"valueString": "5"}},
        {"onlyCertainMatches": {"valueString": "yes"}},
    ],
)
def test_count_and_only_certain_out_of_range_are_400(registry: Services, param: dict[str, Any]) -> None:
    r = match(registry, patient(), **param)
    assert r.status == 400, answer(r)
    assert next(iter(param)) in orjson.dumps(answer(r)).decode()


def test_a_patient_may_not_match_strangers(registry: Services) -> None:
    me = RequestContext(
        authenticated=True,
        user="binh",
        scopes=parse_scopes("patient/*.rs"),
        patient="binh",
        roles=frozenset({"patient"}),
    )
    r = match(registry, patient())
    assert r.status == 200
    refused = match(registry, patient(), me)
    assert refused.status == 403 and "registration desks" in orjson.dumps(answer(refused)).decode()


def test_a_clinician_sees_own_matches_and_only_which_facility_holds_the_others(fresh_services: Services) -> None:
    s = fresh_services
    for o in ("F1", "F2"):
        r = call(s, OPERATOR, "PUT", f"Organization/{o}", {"resourceType": "Organization", "id": o, "name": o})
        assert r.status in (200, 201)
    f1, f2 = staff("Organization/F1", "bs1"), staff("Organization/F2", "bs2")
    put(s, "at-f2", patient(cccd="001085012345"), f2)
    put(s, "at-f1", patient(given=("Bình",), birth="1985-07-03"), f1)
    r = match(s, patient(cccd="001085012345"), f1)
    rows = found(r)
    assert {row[0] for row in rows} == {"at-f1"}
    text = orjson.dumps(answer(r)).decode()
    assert "at-f2" not in text and "001085012345" not in text  # neither the record nor its identifier
    outcome = [e["resource"] for e in answer(r)["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "Organization/F2 holds a record that is a certain match" in outcome[0]["issue"][0]["diagnostics"]
    assert "at-f2" not in orjson.dumps(outcome).decode()
    assert "at-f2" in {row[0] for row in found(match(s, patient(cccd="001085012345"), OPERATOR))}


def test_keys_follow_the_record_when_it_changes(registry: Services) -> None:
    """An update replaces the Patient's key rows: the old name and date no longer find it, the new ones do."""
    before = patient(family="Trần", given=("Lan",), birth="1990-11-02", gender="female", place=None)
    assert "lan" in {r[0] for r in found(match(registry, before))}
    put(registry, "lan", patient(family="Trần", given=("Thị", "Mai"), birth="1991-04-05", gender="female"))
    assert "lan" not in {r[0] for r in found(match(registry, before))}
    after = patient(family="Tran", given=("Mai",), birth="1991-04-05", gender="female", place=None)
    assert "lan" in {r[0] for r in found(match(registry, after))}


def test_candidates_compare_from_their_view_rows_or_from_the_patient_when_the_row_is_missing(
    registry: Services,
) -> None:
    """Each Patient's view is kept as an index row, so candidates are compared without reading them; a
    database indexed before those rows existed (simulated: the rows deleted) answers the same."""
    from ketnoi.search.extract_mpi import VIEW_PARAM, patient_view, view_of_text, view_text
    from ketnoi.sql import SqlQuery

    stored = {"lan": patient(family="Trần", given=("Thị", "Lan"), birth="1990-11-02", gender="female")}
    with registry.store.session(write=False) as session:
        rows = session.query(SqlQuery("SELECT resource_id, text FROM idx_token WHERE param = ?", (VIEW_PARAM,)))
    views = {pid: view_of_text(text) for pid, text in rows}
    assert set(views) == {"binh", "binh-twin", "lan", "old"}
    assert views["lan"] == patient_view({**stored["lan"], "id": "lan"})  # the same as read from the Patient
    assert view_of_text("[2]") is None and view_of_text("not json") is None and view_of_text(None) is None
    every = [patient_view(p) for p in (patient(), patient(place=("26", LEGACY, None)), {"resourceType": "Patient"})]
    assert [view_of_text(view_text(v)) for v in every] == every
    queries = [
        patient(family="Nguyen", given=("Binh",), birth="1985-03-07"),
        patient(family="Le", given=("Phuoc",), birth="1950", place=None),
        patient(family="Trần", given=("Lan",), birth="1990-02-11", gender="female"),
    ]
    before = [found(match(registry, q)) for q in queries]
    assert all(before)
    with registry.store.session(write=True) as session:
        session.execute("DELETE FROM idx_token WHERE param = ?", (VIEW_PARAM,))  # type: ignore[attr-defined]
    assert [found(match(registry, q)) for q in queries] == before
