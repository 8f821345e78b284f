"""The in-memory matcher agrees with the search engine: for each resource and each criterion the matcher
decides from index rows (never "unsure"), its answer equals whether ``Type?_id=X&criterion`` finds it,
on both backends (ketnoi/subscriptions/matching.py)."""

from __future__ import annotations

import pytest

from ketnoi.fhir import resource as res
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository, unit_of_work
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.search import parse_type_query
from ketnoi.interactions.services import Services
from ketnoi.subscriptions import matching
from ketnoi.subscriptions.service import Active, Watch
from ketnoi.subscriptions.spec import read

OPERATOR = RequestContext.operator("test")
BASE = "http://x/fhir"

RESOURCES = [
    {"resourceType": "Patient", "id": "a", "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
     "gender": "male", "birthDate": "1980-05-17", "identifier": [{"system": "urn:cccd", "value": "0123"}],
     "managingOrganization": {"reference": "Organization/o1"}},
    {"resourceType": "Patient", "id": "b", "name": [{"family": "Trần", "given": ["Thị", "Bình"]}],
     "gender": "female", "birthDate": "2001", "telecom": [{"system": "phone", "value": "0909"}]},
    {"resourceType": "Patient", "id": "c", "name": [{"family": "Đặng"}]},
    {"resourceType": "Observation", "id": "x", "status": "final",
     "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
     "subject": {"reference": "Patient/a"}, "effectiveDateTime": "2024-03-01T08:00:00+07:00",
     "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}},
    {"resourceType": "Observation", "id": "y", "status": "preliminary",
     "code": {"coding": [{"code": "nosystem"}], "text": "Nhịp tim"}, "subject": {"reference": "Patient/b"},
     "effectivePeriod": {"start": "2023-12-31", "end": "2024-01-02"}},
    {"resourceType": "RiskAssessment", "id": "r", "status": "final", "subject": {"reference": "Patient/a"},
     "prediction": [{"probabilityDecimal": 0.25}]},
]  # fmt: skip

CRITERIA = {
    "Patient": [
        "name=nguyen", "name=nguy", "name=NGUYỄN", "name:exact=Nguyễn", "name:exact=nguyen", "name:contains=guy",
        "family=dang", "given=an", "gender=male", "gender:not=male", "gender:missing=true", "gender:missing=false",
        "birthdate=1980", "birthdate=ge2000", "birthdate=lt1990-01-01", "birthdate=eq1980-05-17",
        "birthdate=ne1980", "birthdate=sa1990", "birthdate=eb1990", "birthdate=gt1980-05-17", "birthdate=le2001",
        "identifier=0123", "identifier=urn:cccd|0123", "identifier=urn:cccd|", "identifier=|0123",
        "identifier=other|0123", "phone=0909", "organization=Organization/o1", "organization=o1",
        "organization=http://x/fhir/Organization/o1", "_id=a,b", "_id:not=a", "gender=male,female",
    ],
    "Observation": [
        "code=8867-4", "code=http://loinc.org|8867-4", "code=|nosystem", "code=http://loinc.org|",
        "code:text=heart", "code:text=nhip", "code:not=8867-4", "status=final", "subject=Patient/a",
        "subject=a", "date=2024-01-01", "date=ge2024-03-01", "date=lt2024", "date=2024-03-01",
        "date=ap2024-03-01", "patient=Patient/b",
    ],
    "RiskAssessment": ["probability=0.25", "probability=gt0.2", "probability=lt0.2", "probability=ap0.26",
                       "probability=ne0.25", "probability=le0.25"],
}  # fmt: skip


@pytest.fixture
def loaded(fresh_services: Services) -> Services:
    for body in RESOURCES:
        path = f"{body['resourceType']}/{body['id']}"
        r = handle(fresh_services, FhirRequest("PUT", path, [], {"content-type": "application/fhir+json"}, body,
                                               BASE, OPERATOR))  # fmt: skip
        assert r.status == 201, r.resource
    return fresh_services


def test_the_matcher_agrees_with_the_search_on_every_criterion(loaded: Services) -> None:
    answers: list[bool] = []
    with unit_of_work(loaded, OPERATOR, write=False) as repo:
        for body in RESOURCES:
            rtype, id = body["resourceType"], body["id"]
            stored = repo.read(rtype, id)
            index = loaded.extractor.extract(res.loads_object(stored.content))
            for criterion in CRITERIA[rtype]:
                query = parse_type_query(repo, rtype, criterion, strict=True)
                in_memory = all(matching.holds(c, stored, index, BASE) for c in query.filters)
                assert in_memory == _found(repo, rtype, id, criterion), (rtype, id, criterion)
                answers.append(in_memory)
    assert len(answers) == sum(len(CRITERIA[r["resourceType"]]) for r in RESOURCES)
    assert 30 < sum(answers) < len(answers) - 30  # both answers, often: the comparison means something


def _found(repo: Repository, rtype: str, id: str, criterion: str) -> bool:
    query = parse_type_query(repo, rtype, f"_id={id}&{criterion}", strict=True)
    return bool(repo.search_page(query, BASE))


def test_what_needs_other_resources_is_left_to_the_database(loaded: Services) -> None:
    with unit_of_work(loaded, OPERATOR, write=False) as repo:
        stored = repo.read("Observation", "x")
        index = loaded.extractor.extract(res.loads_object(stored.content))
        chain = parse_type_query(repo, "Observation", "subject:Patient.name=nguyen", strict=True)
        with pytest.raises(matching.Unsure):
            matching.holds(chain.filters[0], stored, index, BASE)
        assert matching.matches(repo, stored, index, chain, BASE) is True
        other = parse_type_query(repo, "Observation", "subject:Patient.name=tran", strict=True)
        assert matching.matches(repo, stored, index, other, BASE) is False


def test_subscriptions_are_filed_by_the_codes_a_version_must_carry(loaded: Services) -> None:
    def active(id: str, criteria: str) -> Active:
        body = {"resourceType": "Subscription", "id": id, "status": "active", "criteria": criteria,
                "channel": {"type": "websocket"}}  # fmt: skip
        spec = read(body)
        with unit_of_work(loaded, OPERATOR, write=False) as repo:
            queries = tuple(parse_type_query(repo, spec.resource_type, q, strict=True) for q in spec.criteria)
        return Active(spec, OPERATOR, queries, None)

    watch = Watch()
    for one in (
        active("hr", "Observation?code=http://loinc.org|8867-4"),
        active("either", "Observation?status=final&code=9999-9,8867-4"),
        active("other", "Observation?code=1234-5"),
        active("text", "Observation?code:text=heart"),  # no plain code: compared with every version
        active("any", "Observation?subject=Patient/a"),
    ):
        watch.add(one)
    with unit_of_work(loaded, OPERATOR, write=False) as repo:
        x = loaded.extractor.extract(res.loads_object(repo.read("Observation", "x").content))
        y = loaded.extractor.extract(res.loads_object(repo.read("Observation", "y").content))
    assert sorted(a.spec.id for a in watch.candidates(x)) == ["any", "either", "hr", "text"]
    assert sorted(a.spec.id for a in watch.candidates(y)) == ["any", "text"]
