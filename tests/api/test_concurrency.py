"""Concurrent writers: no acknowledged write is lost, and racing conditional creates make one resource."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import LiveServer


def test_concurrent_updates_lose_nothing(server: LiveServer, tag: str) -> None:
    pid = f"c-{tag[:20]}"
    with httpx.Client(base_url=server.base) as c:
        assert c.put(f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid}).status_code == 201

    def writer(n: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=server.base, timeout=60) as c:
            for i in range(5):
                body = {"resourceType": "Patient", "id": pid, "birthDate": f"19{n}{i}"}
                statuses.append(c.put(f"/Patient/{pid}", json=body).status_code)
        return statuses

    with ThreadPoolExecutor(4) as pool:
        results = [s for batch in pool.map(writer, range(4)) for s in batch]
    # Updates without If-Match are serialised, never refused: each one becomes a version.
    assert results == [200] * 20
    with httpx.Client(base_url=server.base) as c:
        final = c.get(f"/Patient/{pid}").json()
        history = c.get(f"/Patient/{pid}/_history", params={"_count": "100"}).json()
    assert int(final["meta"]["versionId"]) == 21
    assert len(history["entry"]) == 21


def test_racing_conditional_creates_make_one(server: LiveServer, tag: str) -> None:
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:race", "value": tag}]}

    def create(_: int) -> int:
        with httpx.Client(base_url=server.base, timeout=60) as c:
            r = c.post("/Patient", json=body, headers={"If-None-Exist": f"identifier=urn:race|{tag}"})
            return r.status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(create, range(6)))
    assert statuses.count(201) == 1
    assert set(statuses) <= {200, 201}
    with httpx.Client(base_url=server.base) as c:
        found = c.get("/Patient", params={"identifier": f"urn:race|{tag}", "_summary": "count"}).json()
    assert found["total"] == 1
