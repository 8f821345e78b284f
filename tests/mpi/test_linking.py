"""Background linking on both backends: a Patient created or changed is matched by an ``mpi-link`` job;
certain matches end in one golden record, the others in review Tasks whose decision is remembered
(ketnoi/mpi/link.py, ketnoi/mpi/background.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ketnoi.app import build_services, close_services, open_store
from ketnoi.config import Settings
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.services import Services
from ketnoi.jobs import JobRunner
from ketnoi.mpi.background import KIND
from ketnoi.mpi.link import PAIR_SYSTEM
from tests.conftest import BACKENDS, throwaway_url
from tests.interactions.audit_helpers import body, call, records
from tests.mpi.people import patient

OPEN = RequestContext.operator("test")
CCCD = "001085012345"


@pytest.fixture(params=BACKENDS)
def linking(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with throwaway_url(request.param, tmp_path) as url:
        store = open_store(url)
        store.migrate()
        settings = Settings(database=url, auth="off", audit_spool=str(tmp_path / "journal"), mpi_link=True)
        services = build_services(settings, store)
        try:
            yield services
        finally:
            close_services(services)


def drain(s: Services) -> int:
    """Run the queued linking jobs in this thread; how many ran."""
    runner: JobRunner = s.extras["jobs"]
    ran = 0
    while (job := runner.run(kinds=[KIND])) is not None:
        assert job.state == "done", job
        ran += 1
    return ran


def put(s: Services, id: str, resource: dict[str, Any]) -> None:
    r = call(s, OPEN, "PUT", f"Patient/{id}", {**resource, "id": id})
    assert r.status in (200, 201), body(r)


def search(s: Services, url: str) -> list[dict[str, Any]]:
    r = call(s, OPEN, "GET", url)
    assert r.status == 200, body(r)
    return [e["resource"] for e in body(r).get("entry", []) if e.get("search", {}).get("mode") == "match"]


def goldens(s: Services) -> list[dict[str, Any]]:
    return search(s, "Patient?_tag=https://fhir.ketnoi.vn/CodeSystem/mpi|golden")


def members(golden: dict[str, Any]) -> set[str]:
    return {link["other"]["reference"].removeprefix("Patient/") for link in golden["link"]}


def tasks(s: Services) -> list[dict[str, Any]]:
    return search(s, f"Task?identifier={PAIR_SYSTEM}|")


def test_a_certain_match_is_linked_in_the_background_into_one_golden_record(linking: Services) -> None:
    s = linking
    put(s, "a", patient(cccd=CCCD))
    assert drain(s) == 1 and goldens(s) == []  # alone: nothing to link
    put(s, "b", patient(family="Nguyen", given=("Van", "Binh"), cccd=CCCD, phone="0912345678"))
    assert goldens(s) == []  # not in the request: in the job
    assert drain(s) == 1
    (golden,) = goldens(s)
    assert members(golden) == {"a", "b"} and {link["type"] for link in golden["link"]} == {"seealso"}
    assert golden["identifier"] == [{"system": "http://fhir.ehealth.gov.vn/core/sid/national_id", "value": CCCD}]
    assert golden["telecom"][0]["value"] == "0912345678"  # the most complete source's demographics
    for source in ("a", "b"):  # the sources are not touched
        assert body(call(s, OPEN, "GET", f"Patient/{source}"))["meta"]["versionId"] == "1"
    # A third registration joins the same golden record; the golden record itself is never a candidate.
    put(s, "c", patient(given=("Bình",), cccd=CCCD))
    drain(s)
    (golden,) = goldens(s)
    assert members(golden) == {"a", "b", "c"}
    match = call(s, OPEN, "POST", "Patient/$match", {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient(cccd=CCCD)}]})  # fmt: skip
    assert {e["resource"]["id"] for e in body(match)["entry"]} == {"a", "b", "c"}


def test_each_linking_step_leaves_an_audit_event(linking: Services) -> None:
    s = linking
    put(s, "a", patient(cccd=CCCD))
    put(s, "b", patient(cccd=CCCD, birth="1985-03-07"))
    drain(s)
    texts = [orjson.dumps(r.event).decode() for r in records(s)]
    assert any("patient index linking" in t and '"Patient"' in t for t in texts), texts[-3:]


def test_a_contradicting_match_goes_to_review_once_and_completing_the_task_links(linking: Services) -> None:
    s = linking
    put(s, "a", patient(cccd=CCCD))
    put(s, "b", patient(cccd=CCCD, birth="1962-11-30"))  # the same CCCD, another birth date: review
    drain(s)
    assert goldens(s) == []
    (task,) = tasks(s)
    assert task["status"] == "requested" and task["identifier"][0]["value"] == "a|b"
    assert task["input"][1]["valueCode"] == "probable"
    put(s, "b", patient(cccd=CCCD, birth="1962-11-30", phone="0987654321"))  # changed again
    drain(s)
    assert len(tasks(s)) == 1  # judged pairs are not suggested again
    r = call(s, OPEN, "PUT", f"Task/{task['id']}", {**task, "status": "completed"})
    assert r.status == 200, body(r)
    (golden,) = goldens(s)  # linked in the steward's own transaction
    assert members(golden) == {"a", "b"}


def test_a_rejected_pair_is_remembered_and_never_linked(linking: Services) -> None:
    s = linking
    put(s, "a", patient(cccd=CCCD))
    put(s, "b", patient(cccd=CCCD, birth="1962-11-30"))
    drain(s)
    (task,) = tasks(s)
    assert call(s, OPEN, "PUT", f"Task/{task['id']}", {**task, "status": "rejected"}).status == 200
    put(s, "b", patient(cccd=CCCD, birth="1962-11-30", gender="male", phone="0912000000"))
    drain(s)
    assert goldens(s) == [] and [t["status"] for t in tasks(s)] == ["rejected"]


def test_two_cccds_are_two_people_whatever_the_names(linking: Services) -> None:
    s = linking
    put(s, "a", patient(cccd=CCCD))
    put(s, "b", patient(cccd="001085099999"))
    drain(s)
    assert goldens(s) == [] and tasks(s) == []


def test_accepting_a_pair_from_two_golden_records_joins_them_and_retires_one(linking: Services) -> None:
    s = linking
    put(s, "a1", patient(cccd=CCCD))
    put(s, "a2", patient(family="Nguyen", given=("Binh",), cccd=CCCD))
    put(s, "b1", patient(family="Trần", given=("Thị", "Lan"), birth="1990-11-02", gender="female", cccd="001190054321"))
    put(s, "b2", patient(family="Tran", given=("Lan",), birth="1990-11-02", gender="female", cccd="001190054321"))
    drain(s)
    assert len(goldens(s)) == 2
    task = {"resourceType": "Task", "status": "completed", "intent": "proposal",
            "code": {"coding": [{"system": "https://fhir.ketnoi.vn/CodeSystem/mpi", "code": "match-review"}]},
            "identifier": [{"system": PAIR_SYSTEM, "value": "a1|b1"}]}  # fmt: skip
    assert call(s, OPEN, "POST", "Task", task).status == 201
    active = [g for g in goldens(s) if g.get("active", True)]
    (kept,) = active
    assert members(kept) == {"a1", "a2", "b1", "b2"}
    (retired,) = [g for g in goldens(s) if g.get("active") is False]
    assert retired["link"] == [{"other": {"reference": f"Patient/{kept['id']}"}, "type": "replaced-by"}]


def test_with_linking_off_nothing_is_queued(fresh_services: Services) -> None:
    s = fresh_services
    assert s.settings.mpi_link is False
    put(s, "a", patient(cccd=CCCD))
    put(s, "b", patient(cccd=CCCD))
    assert drain(s) == 0 and goldens(s) == []
