"""The search available with the REST core: common parameters, every parameter type, paging,
_total, _summary and _elements. Exact id sets, not counts alone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def _make(client: httpx.Client, tag: str, resource: dict[str, Any]) -> str:
    body = {**resource, "meta": {"tag": [{"system": "urn:test", "code": tag}]}}
    r = client.post(f"/{resource['resourceType']}", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ids(client: httpx.Client, path: str, tag: str, **params: str) -> set[str]:
    r = client.get(path, params={"_tag": f"urn:test|{tag}", "_count": "100", **params})
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json()["entry"] if e["search"]["mode"] == "match"}


@pytest.fixture
def people(client: httpx.Client, tag: str) -> dict[str, str]:
    return {
        "an": _make(
            client,
            tag,
            {
                "resourceType": "Patient",
                "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
                "gender": "male",
                "birthDate": "1990-05-17",
                "identifier": [{"system": "urn:cccd", "value": f"{tag}-1"}],
            },
        ),
        "binh": _make(
            client,
            tag,
            {
                "resourceType": "Patient",
                "name": [{"family": "Đặng", "given": ["Thị", "Bình"]}],
                "gender": "female",
                "birthDate": "1985",
                "identifier": [{"system": "urn:bhyt", "value": f"{tag}-2"}],
            },
        ),
        "cuong": _make(
            client,
            tag,
            {
                "resourceType": "Patient",
                "name": [{"family": "Trần", "given": ["Cường"]}],
                "gender": "male",
                "birthDate": "2001-01-01",
                "active": False,
            },
        ),
    }


def test_tag_and_id(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    assert _ids(client, "/Patient", tag) == set(people.values())
    assert _ids(client, "/Patient", tag, _id=people["an"]) == {people["an"]}
    assert _ids(client, "/Patient", tag, _id=f"{people['an']},{people['binh']}") == {people["an"], people["binh"]}


def test_identifier(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    assert _ids(client, "/Patient", tag, identifier=f"urn:cccd|{tag}-1") == {people["an"]}
    assert _ids(client, "/Patient", tag, identifier=f"{tag}-2") == {people["binh"]}
    assert _ids(client, "/Patient", tag, identifier=f"urn:bhyt|{tag}-1") == set()
    assert _ids(client, "/Patient", tag, identifier="urn:bhyt|") == {people["binh"]}


def test_vietnamese_names_without_diacritics(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    assert _ids(client, "/Patient", tag, name="nguyen") == {people["an"]}
    assert _ids(client, "/Patient", tag, family="dang") == {people["binh"]}
    assert _ids(client, "/Patient", tag, given="BINH") == {people["binh"]}
    assert _ids(client, "/Patient", tag, name="tr") == {people["cuong"]}  # prefix match
    assert _ids(client, "/Patient", tag, **{"family:exact": "Nguyễn"}) == {people["an"]}
    assert _ids(client, "/Patient", tag, **{"family:exact": "Nguyen"}) == set()
    assert _ids(client, "/Patient", tag, **{"name:contains": "uon"}) == {people["cuong"]}


def test_token_modifiers_and_or(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    assert _ids(client, "/Patient", tag, gender="male") == {people["an"], people["cuong"]}
    assert _ids(client, "/Patient", tag, **{"gender:not": "male"}) == {people["binh"]}
    assert _ids(client, "/Patient", tag, gender="male,female") == set(people.values())
    assert _ids(client, "/Patient", tag, active="false") == {people["cuong"]}
    assert _ids(client, "/Patient", tag, **{"active:missing": "true"}) == {people["an"], people["binh"]}


def test_dates_with_prefixes(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    an, binh, cuong = people["an"], people["binh"], people["cuong"]
    assert _ids(client, "/Patient", tag, birthdate="1990-05-17") == {an}
    assert _ids(client, "/Patient", tag, birthdate="1990") == {an}
    assert _ids(client, "/Patient", tag, birthdate="1985-06") == set()  # 1985 is wider than June 1985
    assert _ids(client, "/Patient", tag, birthdate="ge1990-01-01") == {an, cuong}
    assert _ids(client, "/Patient", tag, birthdate="lt1990-01-01") == {binh}
    assert _ids(client, "/Patient", tag, birthdate="ne1990-05-17") == {binh, cuong}
    assert _ids(client, "/Patient", tag, birthdate="sa1999") == {cuong}
    assert _ids(client, "/Patient", tag, birthdate="eb1986") == {binh}
    r = client.get("/Patient", params=[("_tag", f"urn:test|{tag}"), ("birthdate", "gt1980"), ("birthdate", "lt1995")])
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {an, binh}


def test_reference_quantity_number_uri(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    an = people["an"]
    heavy = _make(
        client,
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": f"Patient/{an}"},
            "valueQuantity": {"value": 82.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        },
    )
    light = _make(
        client,
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": f"Patient/{people['binh']}"},
            "valueQuantity": {"value": 50, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        },
    )
    assert _ids(client, "/Observation", tag, subject=f"Patient/{an}") == {heavy}
    assert _ids(client, "/Observation", tag, patient=an) == {heavy}
    assert _ids(client, "/Observation", tag, **{"subject:Patient": an}) == {heavy}
    assert _ids(client, "/Observation", tag, code="http://loinc.org|29463-7") == {heavy, light}
    assert _ids(client, "/Observation", tag, **{"value-quantity": "gt60"}) == {heavy}
    assert _ids(client, "/Observation", tag, **{"value-quantity": "50|http://unitsofmeasure.org|kg"}) == {light}
    assert _ids(client, "/Observation", tag, **{"value-quantity": "le50"}) == {light}
    risk = _make(
        client,
        tag,
        {
            "resourceType": "RiskAssessment",
            "status": "final",
            "subject": {"reference": f"Patient/{an}"},
            "prediction": [{"probabilityDecimal": 0.25}],
        },
    )
    assert _ids(client, "/RiskAssessment", tag, probability="0.25") == {risk}
    assert _ids(client, "/RiskAssessment", tag, probability="gt0.5") == set()
    vs = _make(
        client, tag, {"resourceType": "ValueSet", "status": "draft", "url": f"http://example.org/fhir/ValueSet/{tag}"}
    )
    assert _ids(client, "/ValueSet", tag, url=f"http://example.org/fhir/ValueSet/{tag}") == {vs}
    assert _ids(client, "/ValueSet", tag, **{"url:below": "http://example.org/fhir/"}) == {vs}


def test_last_updated(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    assert _ids(client, "/Patient", tag, _lastUpdated="gt2020-01-01") == set(people.values())
    assert _ids(client, "/Patient", tag, _lastUpdated="lt2020-01-01") == set()


def test_paging_total_and_summary(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    first = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_count": "2", "_total": "accurate"}).json()
    assert first["total"] == 3
    assert len(first["entry"]) == 2
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(nxt).json()
    assert len(second["entry"]) == 1
    assert not [link for link in second["link"] if link["relation"] == "next"]
    assert {e["resource"]["id"] for e in first["entry"] + second["entry"]} == set(people.values())
    count = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_summary": "count"}).json()
    assert count["total"] == 3
    assert "entry" not in count
    none = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_count": "2", "_total": "none"}).json()
    assert "total" not in none


def test_summary_and_elements(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    _make(
        client,
        tag,
        {
            "resourceType": "Patient",
            "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
            "name": [{"family": "Lý"}],
            "photo": [{"contentType": "image/png", "data": "AAAA"}],
        },
    )
    bundle = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "family": "ly", "_summary": "true"}).json()
    resource = bundle["entry"][0]["resource"]
    assert "photo" not in resource and "text" not in resource
    assert resource["name"][0]["family"] == "Lý"
    assert any(t.get("code") == "SUBSETTED" for t in resource["meta"]["tag"])
    elements = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "family": "ly", "_elements": "photo"}).json()
    assert set(elements["entry"][0]["resource"]) == {"resourceType", "id", "meta", "photo"}
    data = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "family": "ly", "_summary": "data"}).json()
    assert "text" not in data["entry"][0]["resource"] and "photo" in data["entry"][0]["resource"]


def test_post_search_and_system_search(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    r = client.post("/Patient/_search", data={"_tag": f"urn:test|{tag}", "gender": "female"})
    assert r.status_code == 200
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {people["binh"]}
    obs = _make(client, tag, {"resourceType": "Observation", "status": "final", "code": {"text": "t"}})
    system = client.get("", params={"_tag": f"urn:test|{tag}", "_type": "Patient,Observation", "_count": "50"}).json()
    assert {e["resource"]["id"] for e in system["entry"]} == {*people.values(), obs}
    everything = client.get("", params={"_tag": f"urn:test|{tag}", "_count": "50"}).json()
    assert {e["resource"]["id"] for e in everything["entry"]} == {*people.values(), obs}


def test_deleted_resources_are_not_found(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    client.delete(f"/Patient/{people['an']}")
    assert _ids(client, "/Patient", tag) == {people["binh"], people["cuong"]}
    assert _ids(client, "/Patient", tag, name="nguyen") == set()


def test_updates_replace_index_rows(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    current = client.get(f"/Patient/{people['cuong']}").json()
    current["name"] = [{"family": "Phạm"}]
    client.put(f"/Patient/{people['cuong']}", json=current)
    assert _ids(client, "/Patient", tag, family="tran") == set()
    assert _ids(client, "/Patient", tag, family="pham") == {people["cuong"]}


def test_count_is_capped_and_said(client: httpx.Client, tag: str, people: dict[str, str]) -> None:
    r = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_count": "100000"}).json()
    outcome = [e for e in r["entry"] if e["search"]["mode"] == "outcome"]
    assert "_count" in str(outcome)


def test_quantity_units_are_compared_canonically(client: httpx.Client, tag: str) -> None:
    ucum = "http://unitsofmeasure.org"
    dose = _make(
        client,
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "dose"},
            "valueQuantity": {"value": 5, "unit": "mg", "system": ucum, "code": "mg"},
        },
    )
    assert _ids(client, "/Observation", tag, **{"value-quantity": f"0.005|{ucum}|g"}) == {dose}
    assert _ids(client, "/Observation", tag, **{"value-quantity": f"5|{ucum}|mg"}) == {dose}
    assert _ids(client, "/Observation", tag, **{"value-quantity": f"gt1|{ucum}|g"}) == set()
    assert _ids(client, "/Observation", tag, **{"value-quantity": "5"}) == {dose}
    assert _ids(client, "/Observation", tag, **{"value-quantity": "0.005"}) == set()
