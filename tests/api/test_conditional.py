"""Conditional create, update, delete and patch: the spec's 0 / 1 / many outcomes."""

from __future__ import annotations

import httpx


def _patient(tag: str, value: str, **extra: object) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "meta": {"tag": [{"system": "urn:test", "code": tag}]},
        "identifier": [{"system": "urn:cccd", "value": value}],
        **extra,
    }


def test_conditional_create(client: httpx.Client, tag: str) -> None:
    criteria = {"If-None-Exist": f"identifier=urn:cccd|{tag}"}
    first = client.post("/Patient", json=_patient(tag, tag), headers=criteria)
    assert first.status_code == 201
    second = client.post("/Patient", json=_patient(tag, tag), headers=criteria)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    client.post("/Patient", json=_patient(tag, tag))  # a second match, made unconditionally
    many = client.post("/Patient", json=_patient(tag, tag), headers=criteria)
    assert many.status_code == 412
    assert many.json()["resourceType"] == "OperationOutcome"


def test_conditional_create_by_id(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_patient(tag, tag)).json()["id"]
    again = client.post("/Patient", json=_patient(tag, tag), headers={"If-None-Exist": f"_id={pid}"})
    assert again.status_code == 200
    assert again.json()["id"] == pid


def test_conditional_update(client: httpx.Client, tag: str) -> None:
    url = f"/Patient?identifier=urn:cccd|{tag}"
    created = client.put(url, json=_patient(tag, tag))
    assert created.status_code == 201
    pid = created.json()["id"]
    updated = client.put(url, json=_patient(tag, tag, active=True))
    assert updated.status_code == 200
    assert updated.json()["id"] == pid
    assert updated.json()["meta"]["versionId"] == "2"
    wrong_id = client.put(url, json={**_patient(tag, tag), "id": "someone-else"})
    assert wrong_id.status_code == 400
    client.post("/Patient", json=_patient(tag, tag))
    assert client.put(url, json=_patient(tag, tag)).status_code == 412


def test_conditional_delete(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_patient(tag, tag)).json()["id"]
    r = client.delete("/Patient", params={"identifier": f"urn:cccd|{tag}"})
    assert r.status_code == 200
    assert client.get(f"/Patient/{pid}").status_code == 410
    none = client.delete("/Patient", params={"identifier": f"urn:cccd|{tag}"})
    assert none.status_code == 200  # nothing matched: nothing to delete
    client.post("/Patient", json=_patient(tag, tag))
    client.post("/Patient", json=_patient(tag, tag))
    assert client.delete("/Patient", params={"identifier": f"urn:cccd|{tag}"}).status_code == 412
    assert client.delete("/Patient").status_code == 400  # no criteria: refuse to delete everything


def test_conditional_patch(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_patient(tag, tag)).json()["id"]
    r = client.patch(
        "/Patient",
        params={"identifier": f"urn:cccd|{tag}"},
        content=b'[{"op": "add", "path": "/active", "value": true}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200
    assert r.json()["id"] == pid
    assert r.json()["active"] is True


def test_conditional_with_unknown_parameter_is_400(client: httpx.Client, tag: str) -> None:
    r = client.post("/Patient", json=_patient(tag, tag), headers={"If-None-Exist": "nonsense=1"})
    assert r.status_code == 400
    assert client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_summary": "count"}).json()["total"] == 0
