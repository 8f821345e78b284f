"""create / read / vread / update / delete / patch over real HTTP, on every backend."""

from __future__ import annotations

import json
import time

import httpx

from ketnoi.fhir.resource import http_date


def _patient(tag: str, **extra: object) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "meta": {"tag": [{"system": "urn:test", "code": tag}]},
        "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
        **extra,
    }


def test_create_assigns_id_version_and_location(client: httpx.Client, tag: str) -> None:
    r = client.post("/Patient", json=_patient(tag, id="client-chosen"))
    assert r.status_code == 201
    body = r.json()
    assert body["id"] != "client-chosen"  # POST ignores a client id
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("+00:00")
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert body["name"][0]["family"] == "Nguyễn"


def test_read_and_vread(client: httpx.Client, tag: str) -> None:
    created = client.post("/Patient", json=_patient(tag)).json()
    pid = created["id"]
    read = client.get(f"/Patient/{pid}")
    assert read.status_code == 200
    assert read.json() == created
    assert read.headers["etag"] == 'W/"1"'
    assert "last-modified" in read.headers
    client.put(f"/Patient/{pid}", json={**created, "active": True})
    v1 = client.get(f"/Patient/{pid}/_history/1")
    v2 = client.get(f"/Patient/{pid}/_history/2")
    assert v1.json().get("active") is None
    assert v2.json()["active"] is True
    assert client.get(f"/Patient/{pid}/_history/3").status_code == 404
    assert client.get(f"/Patient/{pid}/_history/x").status_code == 404


def test_read_missing_is_404_with_outcome(client: httpx.Client) -> None:
    r = client.get("/Patient/does-not-exist")
    assert r.status_code == 404
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Patient/does-not-exist" in outcome["issue"][0]["diagnostics"]
    assert "Không tìm thấy" in outcome["issue"][0]["diagnostics"]


def test_update_increments_version_and_update_as_create(client: httpx.Client, tag: str) -> None:
    pid = f"up-{tag[:20]}"
    first = client.put(f"/Patient/{pid}", json=_patient(tag, id=pid))
    assert first.status_code == 201
    assert first.headers["location"].endswith(f"/Patient/{pid}/_history/1")
    second = client.put(f"/Patient/{pid}", json=_patient(tag, id=pid, active=False))
    assert second.status_code == 200
    assert second.json()["meta"]["versionId"] == "2"
    assert second.headers["etag"] == 'W/"2"'


def test_if_match(client: httpx.Client, tag: str) -> None:
    created = client.post("/Patient", json=_patient(tag)).json()
    pid = created["id"]
    stale = client.put(f"/Patient/{pid}", json=created, headers={"If-Match": 'W/"7"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    ok = client.put(f"/Patient/{pid}", json=created, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200
    again = client.put(f"/Patient/{pid}", json=created, headers={"If-Match": 'W/"1"'})
    assert again.status_code == 412
    assert client.get(f"/Patient/{pid}").json()["meta"]["versionId"] == "2"


def test_conditional_read_headers(client: httpx.Client, tag: str) -> None:
    created = client.post("/Patient", json=_patient(tag)).json()
    pid = created["id"]
    assert client.get(f"/Patient/{pid}", headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(f"/Patient/{pid}", headers={"If-None-Match": 'W/"0"'}).status_code == 200
    future = http_date(time.time() + 3600)
    past = http_date(time.time() - 3600)
    assert client.get(f"/Patient/{pid}", headers={"If-Modified-Since": future}).status_code == 304
    assert client.get(f"/Patient/{pid}", headers={"If-Modified-Since": past}).status_code == 200


def test_delete_is_logical(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_patient(tag)).json()["id"]
    r = client.delete(f"/Patient/{pid}")
    assert r.status_code == 200
    assert r.json()["resourceType"] == "OperationOutcome"
    gone = client.get(f"/Patient/{pid}")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    history = client.get(f"/Patient/{pid}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert client.get(f"/Patient/{pid}/_history/1").status_code == 200  # old versions stay readable
    assert client.get(f"/Patient/{pid}/_history/2").status_code == 410
    again = client.delete(f"/Patient/{pid}")
    assert again.status_code == 200  # idempotent
    recreated = client.put(f"/Patient/{pid}", json=_patient(tag, id=pid))
    assert recreated.status_code == 201
    assert recreated.json()["meta"]["versionId"] == "3"


def test_delete_prefer_minimal_is_204(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_patient(tag)).json()["id"]
    r = client.delete(f"/Patient/{pid}", headers={"Prefer": "return=minimal"})
    assert r.status_code == 204
    assert r.content == b""


def test_prefer_return(client: httpx.Client, tag: str) -> None:
    minimal = client.post("/Patient", json=_patient(tag), headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert "location" in minimal.headers
    outcome = client.post("/Patient", json=_patient(tag), headers={"Prefer": "return=OperationOutcome"})
    assert outcome.json()["resourceType"] == "OperationOutcome"
    full = client.post("/Patient", json=_patient(tag), headers={"Prefer": "return=representation"})
    assert full.json()["resourceType"] == "Patient"


def test_json_patch(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_patient(tag)).json()["id"]
    ops = [
        {"op": "replace", "path": "/name/0/family", "value": "Trần"},
        {"op": "add", "path": "/active", "value": True},
    ]
    r = client.patch(
        f"/Patient/{pid}", content=json.dumps(ops), headers={"Content-Type": "application/json-patch+json"}
    )
    assert r.status_code == 200
    assert r.json()["name"][0]["family"] == "Trần"
    assert r.json()["meta"]["versionId"] == "2"
    failing = client.patch(
        f"/Patient/{pid}",
        content=b'[{"op": "test", "path": "/active", "value": false}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert failing.status_code == 422
    assert client.get(f"/Patient/{pid}").json()["meta"]["versionId"] == "2"
    bad_result = client.patch(
        f"/Patient/{pid}",
        content=b'[{"op": "add", "path": "/bogus", "value": 1}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert bad_result.status_code == 400  # the patched resource is validated like any write
    assert client.get(f"/Patient/{pid}").json()["meta"]["versionId"] == "2"


def test_fhirpath_patch(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_patient(tag)).json()["id"]
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Patient.name.family"},
                    {"name": "value", "valueString": "Lê"},
                ],
            }
        ],
    }
    r = client.patch(f"/Patient/{pid}", json=params, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200
    assert r.json()["name"][0]["family"] == "Lê"


def test_patch_with_stale_if_match(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_patient(tag)).json()["id"]
    r = client.patch(
        f"/Patient/{pid}",
        content=b'[{"op": "add", "path": "/active", "value": true}]',
        headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"5"'},
    )
    assert r.status_code == 412


def test_head_returns_headers_only(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_patient(tag)).json()["id"]
    r = client.head(f"/Patient/{pid}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["etag"] == 'W/"1"'
