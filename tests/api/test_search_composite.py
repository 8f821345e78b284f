"""Composite parameters: components must match within one element."""

from __future__ import annotations

from typing import Any

import httpx

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _make(client: httpx.Client, tag: str, resource: dict[str, Any]) -> str:
    body = {**resource, "meta": {"tag": [{"system": "urn:test", "code": tag}]}}
    r = client.post(f"/{resource['resourceType']}", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ids(client: httpx.Client, path: str, tag: str, **params: str) -> set[str]:
    r = client.get(path, params={"_tag": f"urn:test|{tag}", "_count": "100", **params})
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}


def _bp(client: httpx.Client, tag: str, systolic: float, diastolic: float) -> str:
    def component(code: str, value: float) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "system": UCUM, "code": "mm[Hg]"},
        }

    return _make(
        client,
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "component": [component("8480-6", systolic), component("8462-4", diastolic)],
        },
    )


def test_component_code_value_quantity_pairs_within_one_component(client: httpx.Client, tag: str) -> None:
    high = _bp(client, tag, 150, 95)
    normal = _bp(client, tag, 118, 76)
    param = "component-code-value-quantity"
    assert _ids(client, "/Observation", tag, **{param: f"{LOINC}|8480-6$gt140"}) == {high}
    assert _ids(client, "/Observation", tag, **{param: "8480-6$lt120"}) == {normal}
    # 95 is a diastolic value: it must not pair with the systolic code.
    assert _ids(client, "/Observation", tag, **{param: f"{LOINC}|8480-6$95"}) == set()
    assert _ids(client, "/Observation", tag, **{param: f"{LOINC}|8462-4$95|{UCUM}|mm[Hg]"}) == {high}
    assert _ids(client, "/Observation", tag, **{param: "8480-6$gt140,8462-4$lt80"}) == {high, normal}
    assert _ids(client, "/Observation", tag, **{"combo-code-value-quantity": "8462-4$ge76"}) == {high, normal}


def test_code_value_quantity_and_concept(client: httpx.Client, tag: str) -> None:
    weight = _make(
        client,
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
            "valueQuantity": {"value": 60, "system": UCUM, "code": "kg"},
        },
    )
    blood = _make(
        client,
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"code": "blood-group"}]},
            "valueCodeableConcept": {"coding": [{"system": "urn:abo", "code": "O"}]},
        },
    )
    assert _ids(client, "/Observation", tag, **{"code-value-quantity": f"{LOINC}|29463-7$gt50"}) == {weight}
    assert _ids(client, "/Observation", tag, **{"code-value-quantity": "29463-7$lt50"}) == set()
    assert _ids(client, "/Observation", tag, **{"code-value-concept": "|blood-group$urn:abo|O"}) == {blood}
    assert _ids(client, "/Observation", tag, **{"code-value-concept": "blood-group$A"}) == set()


def test_composite_errors(client: httpx.Client) -> None:
    assert client.get("/Observation", params={"code-value-quantity": "8480-6"}).status_code == 400
    assert client.get("/Observation", params={"code-value-quantity:exact": "a$1"}).status_code == 400
    strict = client.get("/DocumentReference", params={"relationship": "x$y"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
