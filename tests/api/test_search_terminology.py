"""Token modifiers that need terminology: :in, :not-in (ValueSets), :below, :above (CodeSystem is-a),
over the packaged R4 terminology and ValueSets/CodeSystems stored on the server (both backends)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"


def _make(client: httpx.Client, tag: str, resource: dict[str, Any]) -> str:
    body = {**resource, "meta": {"tag": [{"system": "urn:test", "code": tag}]}}
    r = client.post(f"/{resource['resourceType']}", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ids(client: httpx.Client, path: str, tag: str, **params: str) -> set[str]:
    r = client.get(
        path, params={"_tag": f"urn:test|{tag}", "_count": "100", **params}, headers={"Prefer": "handling=strict"}
    )
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}


def _obs(client: httpx.Client, tag: str, system: str, code: str, subject: str | None = None) -> str:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
    }
    if subject:
        obs["subject"] = {"reference": f"Patient/{subject}"}
    return _make(client, tag, obs)


@pytest.fixture
def data(client: httpx.Client, tag: str) -> dict[str, str]:
    cs, other = f"http://example.org/fhir/CodeSystem/{tag}", f"http://example.org/fhir/CodeSystem/{tag}-other"
    d = {"cs": cs, "other": other, "vs": f"http://example.org/fhir/ValueSet/{tag}"}
    _make(
        client,
        tag,
        {
            "resourceType": "CodeSystem",
            "url": cs,
            "status": "active",
            "content": "complete",
            "hierarchyMeaning": "is-a",
            "concept": [
                {"code": "parent", "concept": [{"code": "child", "concept": [{"code": "grandchild"}]}]},
                {"code": "sibling"},
            ],
        },
    )
    d["vs_id"] = _make(
        client,
        tag,
        {
            "resourceType": "ValueSet",
            "url": d["vs"],
            "version": "1",
            "status": "active",
            "compose": {"include": [{"system": cs, "concept": [{"code": "parent"}, {"code": "sibling"}]}]},
        },
    )
    _make(
        client,
        tag,
        {
            "resourceType": "ValueSet",
            "url": d["vs"],
            "version": "2",
            "status": "active",
            "compose": {"include": [{"system": cs, "concept": [{"code": "child"}]}]},
        },
    )
    _make(
        client,
        tag,
        {
            "resourceType": "ValueSet",
            "url": f"{d['vs']}-is-a",
            "status": "active",
            "compose": {
                "include": [{"system": cs, "filter": [{"property": "concept", "op": "is-a", "value": "child"}]}],
                "exclude": [{"valueSet": [f"{d['vs']}|2"]}],
            },
        },
    )
    d["male"] = _make(client, tag, {"resourceType": "Patient", "gender": "male"})
    d["female"] = _make(client, tag, {"resourceType": "Patient", "gender": "female"})
    d["nogender"] = _make(client, tag, {"resourceType": "Patient"})
    for code in ("parent", "child", "grandchild", "sibling"):
        d[code] = _obs(client, tag, cs, code, d["male"] if code == "parent" else None)
    d["other_parent"] = _obs(client, tag, other, "parent")  # same code, another system
    d["nocode"] = _make(client, tag, {"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
    return d


def test_in_packaged_value_set(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    assert _ids(client, "/Patient", tag, **{"gender:in": GENDER_VS}) == {data["male"], data["female"]}
    assert _ids(client, "/Patient", tag, **{"gender:not-in": GENDER_VS}) == {data["nogender"]}
    chained = _ids(client, "/Observation", tag, **{"subject:Patient.gender:in": GENDER_VS})
    assert chained == {data["parent"]}


def test_in_and_not_in_stored_value_set(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    every = {data[k] for k in ("parent", "child", "grandchild", "sibling", "other_parent", "nocode")}
    v1 = {data["parent"], data["sibling"]}
    assert _ids(client, "/Observation", tag, **{"code:in": f"{data['vs']}|1"}) == v1
    assert _ids(client, "/Observation", tag, **{"code:not-in": f"{data['vs']}|1"}) == every - v1
    assert _ids(client, "/Observation", tag, **{"code:in": f"{data['vs']}|2"}) == {data["child"]}
    assert _ids(client, "/Observation", tag, **{"code:in": f"ValueSet/{data['vs_id']}"}) == v1
    latest = _ids(client, "/Observation", tag, **{"code:in": data["vs"]})  # no version: the latest stored
    assert latest == {data["child"]}
    both = _ids(client, "/Observation", tag, **{"code:in": f"{data['vs']}|1,{data['vs']}|2"})
    assert both == v1 | {data["child"]}


def test_value_set_with_is_a_filter_and_import(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    # is-a child = child, grandchild; minus the imported version 2 (child)
    assert _ids(client, "/Observation", tag, **{"code:in": f"{data['vs']}-is-a"}) == {data["grandchild"]}


def test_below_and_above(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    cs = data["cs"]
    below = _ids(client, "/Observation", tag, **{"code:below": f"{cs}|parent"})
    assert below == {data["parent"], data["child"], data["grandchild"]}
    assert _ids(client, "/Observation", tag, **{"code:below": f"{cs}|child"}) == {data["child"], data["grandchild"]}
    assert _ids(client, "/Observation", tag, **{"code:above": f"{cs}|grandchild"}) == {
        data["parent"],
        data["child"],
        data["grandchild"],
    }
    assert _ids(client, "/Observation", tag, **{"code:above": f"{cs}|child"}) == {data["parent"], data["child"]}
    assert _ids(client, "/Observation", tag, **{"code:above": f"{cs}|sibling"}) == {data["sibling"]}


@pytest.mark.parametrize("handling", ["strict", "lenient"])
def test_errors(client: httpx.Client, tag: str, data: dict[str, str], handling: str) -> None:
    headers = {"Prefer": f"handling={handling}"}
    for params, text in [
        ({"code:in": "http://example.org/fhir/ValueSet/does-not-exist"}, "Unknown ValueSet"),
        ({"code:not-in": "http://example.org/fhir/ValueSet/does-not-exist"}, "Unknown ValueSet"),
        ({"code:below": "http://example.org/fhir/CodeSystem/does-not-exist|x"}, "Unknown CodeSystem"),
        ({"code:above": "just-a-code"}, "system|code"),
        ({"date:in": GENDER_VS}, ":in"),
        ({"subject:not-in": GENDER_VS}, ":not-in"),
        ({"_id:below": "x"}, ":below"),
        ({"code:in": "http://hl7.org/fhir/ValueSet/mimetypes"}, "CodeSystem"),  # codes not present in R4
    ]:
        r = client.get("/Observation", params={"_tag": f"urn:test|{tag}", **params}, headers=headers)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome" and text in r.text, r.text


def test_large_value_set_is_one_query(client: httpx.Client, tag: str) -> None:
    """3,000 codes: more than SQLite could take as one OR per value (expression depth 1,000)."""
    system = f"urn:big:{tag}"
    concepts = [{"code": f"c{n}"} for n in range(3_000)]
    vs_url = f"http://example.org/ValueSet/big-{tag}"
    vs = {
        "resourceType": "ValueSet",
        "status": "active",
        "url": vs_url,
        "compose": {"include": [{"system": system, "concept": concepts}]},
    }
    assert client.post("/ValueSet", json=vs).status_code == 201
    meta = {"tag": [{"system": "urn:test", "code": tag}]}
    inside = client.post(
        "/Observation",
        json={
            "resourceType": "Observation",
            "status": "final",
            "meta": meta,
            "code": {"coding": [{"system": system, "code": "c2999"}]},
        },
    ).json()["id"]
    outside = client.post(
        "/Observation",
        json={
            "resourceType": "Observation",
            "status": "final",
            "meta": meta,
            "code": {"coding": [{"system": system, "code": "other"}]},
        },
    ).json()["id"]
    for modifier, expected in (("in", {inside}), ("not-in", {outside})):
        r = client.get("/Observation", params={"_tag": f"urn:test|{tag}", f"code:{modifier}": vs_url})
        assert r.status_code == 200, r.text
        assert {e["resource"]["id"] for e in r.json().get("entry", [])} == expected
