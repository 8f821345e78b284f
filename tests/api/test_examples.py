"""All 819 official R4 examples: PUT at their id, read back unchanged apart from meta.

The few examples that break the spec's own rules (tests/support/fhir_examples.KNOWN_INVALID)
must be refused with 400 and leave nothing behind. AuditEvents are written by the server only
(ketnoi.interactions.audit): their 9 examples are refused with 405.
"""

from __future__ import annotations

import httpx
import orjson

from ketnoi.fhir.resource import without_version_meta
from tests.support.fhir_examples import EXAMPLES, FILES, KNOWN_INVALID


def test_every_official_example_round_trips(client: httpx.Client) -> None:
    problems: list[str] = []
    accepted = audit_events = 0
    for name in FILES:
        resource = orjson.loads((EXAMPLES / name).read_bytes())
        url = f"/{resource['resourceType']}/{resource['id']}"
        put = client.put(url, content=orjson.dumps(resource), headers={"Content-Type": "application/fhir+json"})
        if resource["resourceType"] == "AuditEvent":
            audit_events += 1
            if put.status_code != 405:
                problems.append(f"{name}: an AuditEvent written through the API: {put.status_code}")
            continue
        if name in KNOWN_INVALID:
            if put.status_code != 400 or put.json()["resourceType"] != "OperationOutcome":
                problems.append(f"{name}: expected 400, got {put.status_code}")
            elif client.get(url).status_code != 404:
                problems.append(f"{name}: refused but something was stored")
            continue
        if put.status_code not in (200, 201):
            problems.append(f"{name}: PUT {put.status_code} {put.text[:300]}")
            continue
        read = client.get(url)
        if without_version_meta(read.json()) != without_version_meta(resource):
            problems.append(f"{name}: read back differs")
        accepted += 1
    assert problems == []
    assert audit_events == 9
    assert accepted == len(FILES) - len(KNOWN_INVALID) - audit_events == 798
