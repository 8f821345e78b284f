"""batch and transaction Bundles: reference rewriting, ordering, all-or-nothing, per-entry answers."""

from __future__ import annotations

from typing import Any

import httpx


def _tagged(tag: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {**resource, "meta": {"tag": [{"system": "urn:test", "code": tag}]}}


def _count(client: httpx.Client, rtype: str, tag: str) -> int:
    return int(client.get(f"/{rtype}", params={"_tag": f"urn:test|{tag}", "_summary": "count"}).json()["total"])


def _tx(entries: list[dict[str, Any]], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _post(full_url: str, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def test_transaction_rewrites_urn_uuid_references(client: httpx.Client, tag: str) -> None:
    patient = _tagged(tag, {"resourceType": "Patient", "active": True})
    obs = _tagged(
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": "urn:uuid:0c3b5b8e-0000-4000-8000-000000000001"},
        },
    )
    r = client.post(
        "",
        json=_tx(
            [
                _post("urn:uuid:0c3b5b8e-0000-4000-8000-000000000002", obs),
                _post("urn:uuid:0c3b5b8e-0000-4000-8000-000000000001", patient),
            ]
        ),
    )
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "transaction-response"
    obs_entry, patient_entry = bundle["entry"]  # answers keep the request order
    assert obs_entry["response"]["status"].startswith("201")
    pid = patient_entry["resource"]["id"]
    assert obs_entry["resource"]["subject"]["reference"] == f"Patient/{pid}"
    stored = client.get(obs_entry["response"]["location"].split("/fhir", 1)[1]).json()
    assert stored["subject"]["reference"] == f"Patient/{pid}"
    assert patient_entry["response"]["location"].endswith(f"Patient/{pid}/_history/1")


def test_transaction_is_all_or_nothing(client: httpx.Client, tag: str) -> None:
    good = _tagged(tag, {"resourceType": "Patient"})
    bad = _tagged(tag, {"resourceType": "Patient", "birthDate": "not-a-date"})
    r = client.post("", json=_tx([_post("urn:uuid:a1", good), _post("urn:uuid:a2", good), _post("urn:uuid:a3", bad)]))
    assert r.status_code == 400
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[2]" in outcome["issue"][0]["diagnostics"]
    assert _count(client, "Patient", tag) == 0


def test_transaction_failure_in_update_rolls_back_creates(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_tagged(tag, {"resourceType": "Patient"})).json()["id"]
    entries = [
        _post("urn:uuid:b1", _tagged(tag, {"resourceType": "Patient"})),
        {
            "resource": _tagged(tag, {"resourceType": "Patient", "id": pid}),
            "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"9"'},
        },
    ]
    r = client.post("", json=_tx(entries))
    assert r.status_code == 412
    assert "Bundle.entry[1]" in r.text
    assert _count(client, "Patient", tag) == 1


def test_transaction_processing_order(client: httpx.Client, tag: str) -> None:
    """DELETE runs before POST, so deleting and re-creating by identifier works in one transaction."""
    ident = {"system": "urn:order", "value": tag}
    old = client.post("/Patient", json=_tagged(tag, {"resourceType": "Patient", "identifier": [ident]})).json()["id"]
    entries = [
        _post(
            "urn:uuid:c1",
            _tagged(tag, {"resourceType": "Patient", "identifier": [ident]}),
            ifNoneExist=f"identifier=urn:order|{tag}",
        ),
        {"request": {"method": "GET", "url": f"Patient?identifier=urn:order|{tag}"}},
        {"request": {"method": "DELETE", "url": f"Patient/{old}"}},
    ]
    r = client.post("", json=_tx(entries))
    assert r.status_code == 200, r.text
    created, search, deleted = r.json()["entry"]
    assert deleted["response"]["status"].startswith("200")
    assert created["response"]["status"].startswith("201")  # the old match was deleted first
    assert search["resource"]["total"] == 1  # GET runs last and sees the new one
    assert client.get(f"/Patient/{old}").status_code == 410


def test_transaction_conditional_create_and_reference(client: httpx.Client, tag: str) -> None:
    ident = {"system": "urn:cc", "value": tag}
    existing = client.post("/Patient", json=_tagged(tag, {"resourceType": "Patient", "identifier": [ident]})).json()[
        "id"
    ]
    obs = _tagged(
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "y"},
            "subject": {"reference": "urn:uuid:d1"},
            "performer": [{"reference": f"Patient?identifier=urn:cc|{tag}"}],
        },
    )
    entries = [
        _post(
            "urn:uuid:d1",
            _tagged(tag, {"resourceType": "Patient", "identifier": [ident]}),
            ifNoneExist=f"identifier=urn:cc|{tag}",
        ),
        _post("urn:uuid:d2", obs),
    ]
    r = client.post("", json=_tx(entries))
    assert r.status_code == 200, r.text
    patient_entry, obs_entry = r.json()["entry"]
    assert patient_entry["response"]["status"].startswith("200")
    assert obs_entry["resource"]["subject"]["reference"] == f"Patient/{existing}"
    assert obs_entry["resource"]["performer"][0]["reference"] == f"Patient/{existing}"


def test_conditional_reference_without_match_fails(client: httpx.Client, tag: str) -> None:
    obs = _tagged(
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "y"},
            "subject": {"reference": f"Patient?identifier=urn:none|{tag}"},
        },
    )
    r = client.post("", json=_tx([_post("urn:uuid:e1", obs)]))
    assert r.status_code == 404
    assert "Bundle.entry[0]" in r.text
    assert _count(client, "Observation", tag) == 0


def test_unresolved_urn_reference_is_400(client: httpx.Client, tag: str) -> None:
    obs = _tagged(
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "y"},
            "subject": {"reference": "urn:uuid:not-in-bundle"},
        },
    )
    r = client.post("", json=_tx([_post("urn:uuid:f1", obs)]))
    assert r.status_code == 400


def test_same_resource_twice_is_400(client: httpx.Client, tag: str) -> None:
    pid = f"dup-{tag[:20]}"
    body = _tagged(tag, {"resourceType": "Patient", "id": pid})
    entries = [{"resource": body, "request": {"method": "PUT", "url": f"Patient/{pid}"}}] * 2
    r = client.post("", json=_tx(entries))
    assert r.status_code == 400
    assert client.get(f"/Patient/{pid}").status_code == 404


def test_put_with_urn_fullurl_is_referenced_by_id(client: httpx.Client, tag: str) -> None:
    pid = f"put-{tag[:20]}"
    entries = [
        {
            "fullUrl": "urn:uuid:g1",
            "resource": _tagged(tag, {"resourceType": "Patient", "id": pid}),
            "request": {"method": "PUT", "url": f"Patient/{pid}"},
        },
        _post(
            "urn:uuid:g2",
            _tagged(
                tag,
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "z"},
                    "subject": {"reference": "urn:uuid:g1"},
                },
            ),
        ),
    ]
    r = client.post("", json=_tx(entries))
    assert r.status_code == 200, r.text
    assert r.json()["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{pid}"


def test_batch_answers_each_entry(client: httpx.Client, tag: str) -> None:
    entries = [
        _post("urn:uuid:h1", _tagged(tag, {"resourceType": "Patient"})),
        _post("urn:uuid:h2", _tagged(tag, {"resourceType": "Patient", "birthDate": "31-12-1990"})),
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        {"request": {"method": "BREW", "url": "Patient"}},
    ]
    r = client.post("", json=_tx(entries, "batch"))
    assert r.status_code == 200
    bundle = r.json()
    assert bundle["type"] == "batch-response"
    statuses = [e["response"]["status"][:3] for e in bundle["entry"]]
    assert statuses == ["201", "400", "404", "400"]
    assert bundle["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert _count(client, "Patient", tag) == 1  # the good entry stays


def test_bundle_shape_errors(client: httpx.Client) -> None:
    assert client.post("", json={"resourceType": "Bundle", "type": "collection"}).status_code == 400
    assert client.post("", json={"resourceType": "Patient"}).status_code == 400
    assert client.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": [1]}).status_code == 400
    missing = client.post("", json=_tx([{"resource": {"resourceType": "Patient"}}]))
    assert missing.status_code == 400
    assert "request" in missing.text


def test_transaction_prefer_minimal(client: httpx.Client, tag: str) -> None:
    r = client.post(
        "",
        json=_tx([_post("urn:uuid:i1", _tagged(tag, {"resourceType": "Patient"}))]),
        headers={"Prefer": "return=minimal"},
    )
    assert r.status_code == 200
    entry = r.json()["entry"][0]
    assert "resource" not in entry
    assert entry["response"]["location"]


def test_transaction_patch_entry(client: httpx.Client, tag: str) -> None:
    pid = client.post("/Patient", json=_tagged(tag, {"resourceType": "Patient"})).json()["id"]
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "Patient"},
                    {"name": "name", "valueString": "active"},
                    {"name": "value", "valueBoolean": True},
                ],
            }
        ],
    }
    r = client.post("", json=_tx([{"resource": params, "request": {"method": "PATCH", "url": f"Patient/{pid}"}}]))
    assert r.status_code == 200, r.text
    assert client.get(f"/Patient/{pid}").json()["active"] is True


def test_transaction_json_patch_in_binary_entry(client: httpx.Client, tag: str) -> None:
    import base64
    import json

    pid = client.post("/Patient", json=_tagged(tag, {"resourceType": "Patient"})).json()["id"]
    ops = base64.b64encode(json.dumps([{"op": "add", "path": "/active", "value": False}]).encode()).decode()
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": ops}
    r = client.post("", json=_tx([{"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{pid}"}}]))
    assert r.status_code == 200, r.text
    assert client.get(f"/Patient/{pid}").json()["active"] is False
    bad = {**binary, "data": base64.b64encode(b"not json").decode()}
    r = client.post("", json=_tx([{"resource": bad, "request": {"method": "PATCH", "url": f"Patient/{pid}"}}]))
    assert r.status_code == 400
    assert "Bundle.entry[0]" in r.text
