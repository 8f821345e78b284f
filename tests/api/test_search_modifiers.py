"""Modifiers (:text, :not, :of-type, :missing, :exact, :contains, :above, :below, :identifier, :[type]),
terminology modifiers (an unknown ValueSet/CodeSystem is a 400; more in test_search_terminology.py),
_total=estimate, _summary=text, and injection attempts through every name that reaches the compiler."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _make(client: httpx.Client, tag: str, resource: dict[str, Any]) -> str:
    body = {**resource, "meta": {"tag": [{"system": "urn:test", "code": tag}]}}
    r = client.post(f"/{resource['resourceType']}", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ids(client: httpx.Client, path: str, tag: str, **params: str) -> set[str]:
    r = client.get(path, params={"_tag": f"urn:test|{tag}", "_count": "100", **params})
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}


@pytest.fixture
def data(client: httpx.Client, tag: str) -> dict[str, str]:
    d: dict[str, str] = {}
    d["mr"] = _make(
        client,
        tag,
        {
            "resourceType": "Patient",
            "identifier": [
                {"type": {"coding": [{"system": V2, "code": "MR"}], "text": "Medical record"}, "value": f"{tag}-1"}
            ],
            "name": [{"family": "Phạm", "given": ["Thu"]}],
            "birthDate": "1970",
            "managingOrganization": {"identifier": {"system": "urn:org", "value": f"{tag}-org"}},
        },
    )
    d["pp"] = _make(
        client,
        tag,
        {
            "resourceType": "Patient",
            "identifier": [{"type": {"coding": [{"system": V2, "code": "PPN"}]}, "value": f"{tag}-1"}],
            "name": [{"family": "Phan"}],
        },
    )
    d["obs_text"] = _make(
        client,
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": f"Patient/{d['mr']}"},
            "valueQuantity": {"value": 72},
        },
    )
    d["obs_none"] = _make(
        client, tag, {"resourceType": "Observation", "status": "preliminary", "code": {"text": "Nhịp tim"}}
    )
    d["vs"] = _make(
        client, tag, {"resourceType": "ValueSet", "status": "draft", "url": f"http://example.org/fhir/{tag}/ValueSet/x"}
    )
    return d


def test_token_text_not_and_of_type(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    d = data
    assert _ids(client, "/Observation", tag, **{"code:text": "heart"}) == {d["obs_text"]}
    assert _ids(client, "/Observation", tag, **{"code:text": "nhip"}) == {d["obs_none"]}
    assert _ids(client, "/Observation", tag, **{"status:not": "final"}) == {d["obs_none"]}
    assert _ids(client, "/Patient", tag, **{"identifier:of-type": f"{V2}|MR|{tag}-1"}) == {d["mr"]}
    assert _ids(client, "/Patient", tag, **{"identifier:of-type": f"{V2}|PPN|{tag}-1"}) == {d["pp"]}
    assert _ids(client, "/Patient", tag, **{"identifier:of-type": f"{V2}|MR|{tag}-2"}) == set()
    assert _ids(client, "/Patient", tag, identifier=f"{tag}-1") == {d["mr"], d["pp"]}
    assert client.get("/Patient", params={"identifier:of-type": "MR"}).status_code == 400


def test_missing_on_every_type(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    d = data
    assert _ids(client, "/Patient", tag, **{"birthdate:missing": "true"}) == {d["pp"]}
    assert _ids(client, "/Patient", tag, **{"birthdate:missing": "false"}) == {d["mr"]}
    assert _ids(client, "/Patient", tag, **{"given:missing": "true"}) == {d["pp"]}
    assert _ids(client, "/Observation", tag, **{"subject:missing": "true"}) == {d["obs_none"]}
    assert _ids(client, "/Observation", tag, **{"value-quantity:missing": "false"}) == {d["obs_text"]}
    assert _ids(client, "/ValueSet", tag, **{"url:missing": "false"}) == {d["vs"]}
    assert client.get("/Patient", params={"birthdate:missing": "maybe"}).status_code == 400


def test_string_uri_and_reference_modifiers(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    d = data
    assert _ids(client, "/Patient", tag, **{"family:exact": "Phạm"}) == {d["mr"]}
    assert _ids(client, "/Patient", tag, **{"family:exact": "phạm"}) == set()
    assert _ids(client, "/Patient", tag, family="ph") == {d["mr"], d["pp"]}
    assert _ids(client, "/Patient", tag, **{"family:contains": "ha"}) == {d["mr"], d["pp"]}
    assert _ids(client, "/Patient", tag, **{"family:contains": "am"}) == {d["mr"]}
    url = f"http://example.org/fhir/{tag}/ValueSet/x"
    assert _ids(client, "/ValueSet", tag, **{"url:below": f"http://example.org/fhir/{tag}"}) == {d["vs"]}
    assert _ids(client, "/ValueSet", tag, **{"url:above": f"{url}/_history/2"}) == {d["vs"]}
    assert _ids(client, "/ValueSet", tag, **{"url:above": "http://example.org/other/x"}) == set()
    assert _ids(client, "/Patient", tag, **{"organization:identifier": f"urn:org|{tag}-org"}) == {d["mr"]}
    assert _ids(client, "/Observation", tag, **{"subject:Patient": d["mr"]}) == {d["obs_text"]}
    assert _ids(client, "/Observation", tag, **{"subject:Group": d["mr"]}) == set()
    assert _ids(client, "/Observation", tag, **{"subject:Group": f"Patient/{d['mr']}"}) == set()


@pytest.mark.parametrize("modifier", ["in", "not-in", "above", "below"])
def test_terminology_modifiers(client: httpx.Client, tag: str, data: dict[str, str], modifier: str) -> None:
    for handling in ("strict", "lenient"):  # not ignored: an unknown ValueSet / CodeSystem is a 400
        r = client.get(
            "/Observation",
            params={"_tag": f"urn:test|{tag}", f"code:{modifier}": "http://example.org/vs|x"},
            headers={"Prefer": f"handling={handling}"},
        )
        assert r.status_code == 400, r.text
        assert "Unknown ValueSet" in r.text or "Unknown CodeSystem" in r.text


def test_total_estimate_and_summary_text(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    bundle = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_total": "estimate", "_count": "1"}).json()
    assert bundle["total"] == 2
    text = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_id": data["mr"], "_summary": "text"}).json()
    resource = text["entry"][0]["resource"]
    assert "identifier" not in resource and "name" not in resource
    assert any(t.get("code") == "SUBSETTED" for t in resource["meta"]["tag"])


INJECTIONS = ["'; DROP TABLE resource; --", "x' OR '1'='1", "1) OR (1=1", 'a"b', "name) --", "idx_string"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_through_names(client: httpx.Client, evil: str) -> None:
    strict = {"Prefer": "handling=strict"}
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        ({evil: "x"}, strict),  # parameter name
        ({f"name:{evil}": "x"}, {}),  # modifier
        ({f"general-practitioner:{evil}.name": "x"}, {}),  # chain type
        ({f"general-practitioner.{evil}": "x"}, strict),  # chained parameter
        ({f"_has:{evil}:patient:code": "x"}, {}),  # _has type
        ({f"_has:Observation:{evil}:code": "x"}, strict),  # _has reference
        ({f"_has:Observation:patient:{evil}": "x"}, strict),  # _has parameter
        ({"_sort": evil}, {}),
        ({"_include": f"Observation:{evil}"}, strict),
        ({"_include": f"{evil}:subject"}, {}),
        ({"_revinclude": f"Observation:subject:{evil}"}, {}),
        ({"_cursor": evil}, {}),
        ({"_type": evil}, {}),
    ]
    for params, headers in attempts:
        path = "" if "_type" in params else "/Patient"
        r = client.get(path, params=params, headers=headers)
        assert r.status_code == 400, (params, r.text)
        assert "SELECT" not in r.text and "idx_" not in r.text.replace(evil, "")


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_through_values_is_just_data(client: httpx.Client, tag: str, evil: str) -> None:
    for params in (
        {"name": evil},
        {"identifier": evil},
        {"general-practitioner.name": evil},
        {"_has:Observation:patient:code": evil},
        {"organization:identifier": evil},
        {"_id": evil},
    ):
        r = client.get("/Patient", params={"_tag": f"urn:test|{tag}", **params})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 200:
            assert [e for e in r.json().get("entry", []) if e["search"]["mode"] == "match"] == []
    assert client.get("/metadata").status_code == 200
