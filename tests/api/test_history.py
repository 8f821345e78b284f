"""history at instance, type and system level, with _since, _at, _count and paging."""

from __future__ import annotations

import time

import httpx

from ketnoi.fhir.resource import instant


def _versions(client: httpx.Client, tag: str, n: int) -> str:
    pid = f"h-{tag[:20]}"
    for i in range(n):
        r = client.put(f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid, "birthDate": f"20{10 + i}"})
        assert r.status_code in (200, 201)
    return pid


def test_instance_history_newest_first(client: httpx.Client, tag: str) -> None:
    pid = _versions(client, tag, 3)
    bundle = client.get(f"/Patient/{pid}/_history").json()
    assert bundle["type"] == "history"
    assert bundle["total"] == 3
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["3", "2", "1"]
    assert bundle["entry"][-1]["request"] == {"method": "PUT", "url": f"Patient/{pid}"}
    assert bundle["entry"][0]["response"]["etag"] == 'W/"3"'


def test_history_paging(client: httpx.Client, tag: str) -> None:
    pid = _versions(client, tag, 5)
    seen: list[str] = []
    url: str | None = f"/Patient/{pid}/_history?_count=2"
    pages = 0
    while url:
        bundle = client.get(url).json()
        seen += [e["resource"]["meta"]["versionId"] for e in bundle["entry"]]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = nxt[0] if nxt else None
        pages += 1
    assert seen == ["5", "4", "3", "2", "1"]
    assert pages == 3


def test_history_since_and_at(client: httpx.Client, tag: str) -> None:
    pid = _versions(client, tag, 2)
    time.sleep(0.05)
    middle = time.time()
    time.sleep(0.05)
    client.put(f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid, "active": True})
    since = client.get(f"/Patient/{pid}/_history", params={"_since": instant(middle)}).json()
    assert [e["resource"]["meta"]["versionId"] for e in since["entry"]] == ["3"]
    at = client.get(f"/Patient/{pid}/_history", params={"_at": instant(middle)}).json()
    assert [e["resource"]["meta"]["versionId"] for e in at["entry"]] == ["2"]


def test_type_and_system_history(client: httpx.Client, tag: str) -> None:
    start = instant(time.time() - 1)
    pid = _versions(client, tag, 1)
    oid = client.post(
        "/Observation", json={"resourceType": "Observation", "status": "final", "code": {"text": tag}}
    ).json()["id"]
    type_ids = {
        e["fullUrl"].rsplit("/", 1)[-1]
        for e in client.get("/Patient/_history", params={"_since": start, "_count": 1000}).json()["entry"]
    }
    assert pid in type_ids
    assert oid not in type_ids
    system = client.get("/_history", params={"_since": start, "_count": 1000}).json()
    ids = {e["fullUrl"].rsplit("/", 1)[-1] for e in system["entry"]}
    assert {pid, oid} <= ids


def test_history_of_unknown_resource_is_404(client: httpx.Client) -> None:
    assert client.get("/Patient/never-there/_history").status_code == 404


def test_history_bad_since_is_400(client: httpx.Client) -> None:
    r = client.get("/_history", params={"_since": "yesterday"})
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"
