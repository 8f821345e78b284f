"""_sort on every sortable parameter type and keyset (_cursor) paging that survives concurrent writes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def _make(client: httpx.Client, tag: str, resource: dict[str, Any]) -> str:
    body = {**resource, "meta": {"tag": [{"system": "urn:test", "code": tag}]}}
    r = client.post(f"/{resource['resourceType']}", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _order(client: httpx.Client, path: str, tag: str, sort: str, **params: str) -> list[str]:
    r = client.get(path, params={"_tag": f"urn:test|{tag}", "_count": "100", "_sort": sort, **params})
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == relation), None)


@pytest.fixture
def patients(client: httpx.Client, tag: str) -> dict[str, str]:
    def patient(key: str, family: str | None, birth: str | None, gender: str | None) -> tuple[str, str]:
        body: dict[str, Any] = {"resourceType": "Patient"}
        if family:
            body["name"] = [{"family": family}]
        if birth:
            body["birthDate"] = birth
        if gender:
            body["gender"] = gender
        return key, _make(client, tag, body)

    return dict(
        [
            patient("b", "Bùi", "1990-01-01", "male"),
            patient("a", "An", "2000-06-15", "female"),
            patient("d", "Đỗ", None, "male"),
            patient("c", "Cao", "1980-12-31", None),
            patient("x", None, "1995", "other"),
        ]
    )


def test_sort_by_string_date_token_and_missing_last(client: httpx.Client, tag: str, patients: dict[str, str]) -> None:
    p = patients
    assert _order(client, "/Patient", tag, "family") == [p["a"], p["b"], p["c"], p["d"], p["x"]]
    assert _order(client, "/Patient", tag, "-family") == [p["d"], p["c"], p["b"], p["a"], p["x"]]
    assert _order(client, "/Patient", tag, "birthdate") == [p["c"], p["b"], p["x"], p["a"], p["d"]]
    assert _order(client, "/Patient", tag, "-birthdate") == [p["a"], p["x"], p["b"], p["c"], p["d"]]
    # Several keys: gender, then birthdate descending; ties broken by id.
    assert _order(client, "/Patient", tag, "gender,-birthdate") == [p["a"], p["b"], p["d"], p["x"], p["c"]]


def test_sort_by_id_and_last_updated(client: httpx.Client, tag: str, patients: dict[str, str]) -> None:
    ids = list(patients.values())
    assert _order(client, "/Patient", tag, "_id") == sorted(ids)
    assert _order(client, "/Patient", tag, "-_id") == sorted(ids, reverse=True)
    created = [patients[k] for k in ("b", "a", "d", "c", "x")]
    assert _order(client, "/Patient", tag, "_lastUpdated") == created
    assert _order(client, "/Patient", tag, "-_lastUpdated") == created[::-1]


def test_sort_by_number_quantity_reference_uri(client: httpx.Client, tag: str) -> None:
    def obs(value: float, subject: str) -> str:
        return _make(
            client,
            tag,
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "w"},
                "subject": {"reference": subject},
                "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "kg"},
            },
        )

    heavy, light, mid = obs(90, "Patient/p2"), obs(50.5, "Patient/p3"), obs(70, "Patient/p1")
    assert _order(client, "/Observation", tag, "value-quantity") == [light, mid, heavy]
    assert _order(client, "/Observation", tag, "-value-quantity") == [heavy, mid, light]
    assert _order(client, "/Observation", tag, "subject") == [mid, heavy, light]
    risks = [
        _make(
            client,
            tag,
            {
                "resourceType": "RiskAssessment",
                "status": "final",
                "subject": {"reference": "Patient/p"},
                "prediction": [{"probabilityDecimal": v}],
            },
        )
        for v in (0.5, 0.25, 0.75)
    ]
    assert _order(client, "/RiskAssessment", tag, "probability") == [risks[1], risks[0], risks[2]]
    sets = [
        _make(client, tag, {"resourceType": "ValueSet", "status": "draft", "url": f"http://example.org/vs/{n}"})
        for n in ("b", "c", "a")
    ]
    assert _order(client, "/ValueSet", tag, "-url") == [sets[1], sets[0], sets[2]]


def test_sort_errors(client: httpx.Client) -> None:
    for bad in ("bogus", "name", "-", "family;drop", "_text"):
        r = client.get("/Patient", params={"_sort": bad})
        assert r.status_code == 400, bad
        assert "SELECT" not in r.text


def test_keyset_paging_forward_and_back(client: httpx.Client, tag: str, patients: dict[str, str]) -> None:
    p = patients
    expected = [p["a"], p["b"], p["c"], p["d"], p["x"]]
    first = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_sort": "family", "_count": "2"}).json()
    seen = [e["resource"]["id"] for e in first["entry"]]
    assert _link(first, "previous") is None
    pages = [first]
    url = _link(first, "next")
    while url:
        page = client.get(url).json()
        pages.append(page)
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = _link(page, "next")
    assert seen == expected
    assert len(pages) == 3
    back = client.get(_link(pages[2], "previous") or "").json()
    assert [e["resource"]["id"] for e in back["entry"]] == expected[2:4]
    back2 = client.get(_link(back, "previous") or "").json()
    assert [e["resource"]["id"] for e in back2["entry"]] == expected[0:2]
    assert _link(back2, "previous") is None
    assert [e["resource"]["id"] for e in client.get(_link(back2, "next") or "").json()["entry"]] == expected[2:4]


def test_keyset_paging_is_stable_under_inserts(client: httpx.Client, tag: str, patients: dict[str, str]) -> None:
    p = patients
    first = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_sort": "family", "_count": "2"}).json()
    assert [e["resource"]["id"] for e in first["entry"]] == [p["a"], p["b"]]
    _make(client, tag, {"resourceType": "Patient", "name": [{"family": "Ánh"}]})  # sorts before the cursor
    client.delete(f"/Patient/{p['a']}")
    second = client.get(_link(first, "next") or "").json()
    assert [e["resource"]["id"] for e in second["entry"]] == [p["c"], p["d"]]


def test_offset_still_works(client: httpx.Client, tag: str, patients: dict[str, str]) -> None:
    ids = sorted(patients.values())
    page = client.get(
        "/Patient", params={"_tag": f"urn:test|{tag}", "_sort": "_id", "_count": "2", "_offset": "2"}
    ).json()
    assert [e["resource"]["id"] for e in page["entry"]] == ids[2:4]
    nxt = client.get(_link(page, "next") or "").json()
    assert [e["resource"]["id"] for e in nxt["entry"]] == ids[4:]
    prev = client.get(_link(page, "previous") or "").json()
    assert [e["resource"]["id"] for e in prev["entry"]] == ids[0:2]


def test_tampered_cursor_is_400(client: httpx.Client, tag: str, patients: dict[str, str]) -> None:
    first = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_sort": "family", "_count": "2"}).json()
    url = _link(first, "next") or ""
    cursor = httpx.URL(url).params["_cursor"]
    payload, _, mac = cursor.partition(".")
    for bad in (
        payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac,
        payload + "." + mac[::-1],
        "garbage",
        "' OR 1=1 --",
        payload,
    ):
        r = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_sort": "family", "_cursor": bad})
        assert r.status_code == 400, bad
        assert "_cursor" in r.text
    # A cursor from another _sort does not fit.
    other = client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_sort": "-family", "_cursor": cursor})
    assert other.status_code == 400
    both = client.get("/Patient", params={"_sort": "family", "_cursor": cursor, "_offset": "2"})
    assert both.status_code == 400
