"""Only real search criteria may select a resource (issue 8, part 1).

``PUT /Organization`` with no criteria used to act as a conditional update over every
Organization: it silently overwrote the only one there was. Every conditional path must answer
400 and write nothing when its URL holds no criterion (result parameters such as ``_format`` or
``_count`` are not criteria). Each test runs on a fresh database of each backend, so "exactly one
Organization" is really exactly one.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ketnoi.interactions.services import Services
from tests.conftest import LiveServer

NOT_CRITERIA = ["", "?_format=json", "?_count=1", "?_sort=name&_pretty=true", "?_summary=count&_elements=name"]
ORG = {"resourceType": "Organization", "name": "Trạm Y tế xã An Bình"}


@pytest.fixture
def fresh(fresh_services: Services) -> Iterator[httpx.Client]:
    from ketnoi.api.routes import create_app

    with LiveServer(create_app(fresh_services)) as live, httpx.Client(base_url=live.base, timeout=60) as client:
        yield client


def _organizations(client: httpx.Client) -> list[dict[str, object]]:
    bundle = client.get("/Organization", params={"_count": "100"}).json()
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    text: str = outcome["issue"][0]["diagnostics"]
    assert "needs search criteria" in text and "cần tiêu chí tìm kiếm" in text
    return text


@pytest.mark.parametrize("query", NOT_CRITERIA)
def test_put_to_a_type_without_criteria_writes_nothing(fresh: httpx.Client, query: str) -> None:
    _refused(fresh.put(f"/Organization{query}", json=ORG))
    assert _organizations(fresh) == []  # not created when there were none
    only = fresh.post("/Organization", json=ORG).json()
    _refused(fresh.put(f"/Organization{query}", json={**ORG, "name": "overwritten"}))
    assert _organizations(fresh) == [only]  # the only one is not overwritten


@pytest.mark.parametrize("query", NOT_CRITERIA)
def test_patch_and_delete_of_a_type_without_criteria_are_refused(fresh: httpx.Client, query: str) -> None:
    only = fresh.post("/Organization", json=ORG).json()
    patch = b'[{"op": "replace", "path": "/name", "value": "overwritten"}]'
    headers = {"Content-Type": "application/json-patch+json"}
    _refused(fresh.patch(f"/Organization{query}", content=patch, headers=headers))
    _refused(fresh.delete(f"/Organization{query}"))
    assert _organizations(fresh) == [only]


@pytest.mark.parametrize("criteria", ["_format=json", "_count=1", "_sort=name", "?"])
def test_if_none_exist_without_criteria_is_refused(fresh: httpx.Client, criteria: str) -> None:
    fresh.post("/Organization", json=ORG)
    _refused(fresh.post("/Organization", json=ORG, headers={"If-None-Exist": criteria}))
    assert len(_organizations(fresh)) == 1


def _transaction(*entries: dict[str, object], kind: str = "transaction") -> dict[str, object]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("url", ["Organization", "Organization?_format=json"])
def test_transaction_entry_without_criteria_fails_whole(fresh: httpx.Client, method: str, url: str) -> None:
    only = fresh.post("/Organization", json=ORG).json()
    entry: dict[str, object] = {"request": {"method": method, "url": url}}
    if method == "PUT":
        entry["resource"] = {**ORG, "name": "overwritten"}
    if method == "PATCH":
        patch = {"resourceType": "Parameters", "parameter": []}
        entry["resource"] = patch
    created = {"resource": {"resourceType": "Patient", "active": True}, "request": {"method": "POST", "url": "Patient"}}
    r = fresh.post("", json=_transaction(created, entry))
    _refused(r)
    assert _organizations(fresh) == [only]
    assert fresh.get("/Patient", params={"_summary": "count"}).json()["total"] == 0  # nothing partial


def test_batch_entry_without_criteria_fails_alone(fresh: httpx.Client) -> None:
    only = fresh.post("/Organization", json=ORG).json()
    bad = {"resource": {**ORG, "name": "overwritten"}, "request": {"method": "PUT", "url": "Organization"}}
    good = {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
    r = fresh.post("", json=_transaction(bad, good, kind="batch"))
    assert r.status_code == 200
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses[0].startswith("400") and statuses[1].startswith("201")
    assert _organizations(fresh) == [only]


@pytest.mark.parametrize("field", ["ifNoneExist", "reference"])
def test_transaction_conditionals_need_criteria(fresh: httpx.Client, field: str) -> None:
    fresh.post("/Organization", json=ORG)
    if field == "ifNoneExist":
        entry = {"resource": ORG, "request": {"method": "POST", "url": "Organization", "ifNoneExist": "_count=1"}}
    else:
        patient = {"resourceType": "Patient", "managingOrganization": {"reference": "Organization?_format=json"}}
        entry = {"resource": patient, "request": {"method": "POST", "url": "Patient"}}
    _refused(fresh.post("", json=_transaction(entry)))
    assert len(_organizations(fresh)) == 1
    assert fresh.get("/Patient", params={"_summary": "count"}).json()["total"] == 0


def test_real_criteria_still_select(fresh: httpx.Client) -> None:
    only = fresh.post("/Organization", json=ORG).json()
    r = fresh.put("/Organization", params={"_id": only["id"], "_format": "json"}, json={**ORG, "name": "Trạm mới"})
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "2"
