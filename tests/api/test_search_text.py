"""``_text`` (narrative) and ``_content`` (every string value) full-text search, on both backends:
folded (accent/case-insensitive, Vietnamese-aware) substring words, AND within a value, OR across
commas; updates and deletes change what is found; LIKE metacharacters and SQL are literal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ketnoi.search.extract_text import content_body, narrative_body


def _div(text: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{text}</div>'}


def _body(tag: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {**resource, "meta": {"tag": [{"system": "urn:test", "code": tag}]}}


def _make(client: httpx.Client, tag: str, resource: dict[str, Any]) -> str:
    r = client.post(f"/{resource['resourceType']}", json=_body(tag, resource))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ids(client: httpx.Client, path: str, tag: str, **params: str) -> set[str]:
    r = client.get(path, params={"_tag": f"urn:test|{tag}", "_count": "100", **params})
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}


@pytest.fixture
def data(client: httpx.Client, tag: str) -> dict[str, str]:
    d: dict[str, str] = {}
    d["nguyen"] = _make(
        client,
        tag,
        {
            "resourceType": "Patient",
            "text": _div("<p>Bệnh nhân <b>Nguyễn</b> Văn An, quê Đà Nẵng &amp; Huế</p>"),
            "name": [{"family": "Nguyễn", "given": ["An"]}],
            "address": [{"city": "Thành phố Hồ Chí Minh"}],
        },
    )
    d["dang"] = _make(
        client,
        tag,
        {
            "resourceType": "Patient",
            "text": _div("<p>ĐẶNG Thị Bình &#8211; tiểu đường</p>"),
            "name": [{"family": "Đặng", "given": ["Bình"]}],
            "address": [{"city": "Hải Phòng"}],
        },
    )
    d["obs"] = _make(
        client,
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "text": _div("Nhịp tim"),
            "code": {"text": "Heart rate"},
            "note": [{"text": "Đo sau khi chạy bộ buổi sáng"}],
        },
    )
    d["meta"] = _make(
        client,
        tag,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "100% a_b c\\d"},
        },
    )
    return d


def test_text_finds_narrative_by_unaccented_words(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    assert _ids(client, "/Patient", tag, _text="nguyen") == {data["nguyen"]}
    assert _ids(client, "/Patient", tag, _text="NGUYỄN") == {data["nguyen"]}
    assert _ids(client, "/Patient", tag, _text="dang") == {data["dang"]}  # ĐẶNG
    assert _ids(client, "/Patient", tag, _text="da nang") == {data["nguyen"]}  # Đà Nẵng
    assert _ids(client, "/Patient", tag, _text="Đặng") == {data["dang"]}
    assert _ids(client, "/Patient", tag, _text="tieu duong") == {data["dang"]}
    assert _ids(client, "/Patient", tag, _text="& hue") == {data["nguyen"]}  # entity decoded
    assert _ids(client, "/Patient", tag, _text="nhan") == {data["nguyen"]}  # substring of a word
    assert _ids(client, "/Patient", tag, _text="xmlns") == set()  # tags are not text
    assert _ids(client, "/Observation", tag, _text="nhip tim") == {data["obs"]}


def test_words_and_or(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    assert _ids(client, "/Patient", tag, _text="an nguyen") == {data["nguyen"]}
    assert _ids(client, "/Patient", tag, _text="van nguyen") == {data["nguyen"]}  # any order
    assert _ids(client, "/Patient", tag, _text="nguyen binh") == set()  # AND
    assert _ids(client, "/Patient", tag, _text="nguyen,binh") == {data["nguyen"], data["dang"]}  # OR
    assert _ids(client, "/Patient", tag, _text="nguyen an,zzz") == {data["nguyen"]}
    # Both parameters together: AND of the two.
    assert _ids(client, "/Patient", tag, _text="nguyen", _content="ho chi minh") == {data["nguyen"]}
    assert _ids(client, "/Patient", tag, _text="dang", _content="ho chi minh") == set()


def test_content_searches_nested_values_text_does_not(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    assert _ids(client, "/Patient", tag, _content="hai phong") == {data["dang"]}
    assert _ids(client, "/Patient", tag, _text="hai phong") == set()
    assert _ids(client, "/Observation", tag, _content="chay bo") == {data["obs"]}
    assert _ids(client, "/Observation", tag, _text="chay bo") == set()
    # The narrative is not part of _content; ids, meta and systems are skipped.
    assert _ids(client, "/Observation", tag, _content="nhip") == set()
    assert _ids(client, "/Patient", tag, _content=tag) == set()
    assert _ids(client, "/Patient", tag, _content=data["nguyen"]) == set()
    # System-wide search over several types.
    r = client.get("/", params={"_tag": f"urn:test|{tag}", "_content": "chay,hai phong"})
    assert r.status_code == 200, r.text
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {data["obs"], data["dang"]}
    # _total from the index rows alone.
    r = client.get("/Patient", params={"_content": f"hai phong,{tag}", "_total": "accurate", "_tag": f"urn:test|{tag}"})
    assert r.status_code == 200 and r.json()["total"] == 1


def test_update_and_delete_change_what_is_found(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    pid = data["dang"]
    updated = _body(tag, {"resourceType": "Patient", "id": pid, "text": _div("Trần Văn Cường")})
    assert client.put(f"/Patient/{pid}", json=updated).status_code == 200
    assert _ids(client, "/Patient", tag, _text="tran cuong") == {pid}
    assert _ids(client, "/Patient", tag, _text="tieu duong") == set()
    assert _ids(client, "/Patient", tag, _content="hai phong") == set()
    assert client.delete(f"/Patient/{pid}").status_code in (200, 204)
    assert _ids(client, "/Patient", tag, _text="tran cuong") == set()
    assert _ids(client, "/Patient", tag, _text="nguyen") == {data["nguyen"]}


def test_like_metacharacters_are_literal(client: httpx.Client, tag: str, data: dict[str, str]) -> None:
    obs = data["meta"]
    assert _ids(client, "/Observation", tag, _content="100%") == {obs}
    assert _ids(client, "/Observation", tag, _content="a_b") == {obs}
    assert _ids(client, "/Observation", tag, _content="c\\d") == {obs}
    assert _ids(client, "/Observation", tag, _content="%") == {obs}
    assert _ids(client, "/Observation", tag, _content="0%") == {obs}
    assert _ids(client, "/Observation", tag, _content="_") == {obs}
    assert _ids(client, "/Observation", tag, _content="ab") == set()  # "_" is not a wildcard
    assert _ids(client, "/Observation", tag, _content="10%a") == set()  # "%" is not a wildcard
    assert _ids(client, "/Observation", tag, _content="heart_rate") == set()
    assert _ids(client, "/Observation", tag, _content="x\\d") == set()


@pytest.mark.parametrize(
    "term",
    ["x' OR '1'='1", "'; DROP TABLE idx_text; --", '" OR 1=1 --', "%' OR body LIKE '%", "\\' OR 1=1) --"],
)
def test_injection_looking_terms_find_nothing(client: httpx.Client, tag: str, data: dict[str, str], term: str) -> None:
    assert _ids(client, "/Patient", tag, _text=term) == set()
    assert _ids(client, "/Patient", tag, _content=term) == set()
    assert _ids(client, "/Patient", tag, _text="nguyen") == {data["nguyen"]}  # the table is still there


def test_errors_and_strict_handling(client: httpx.Client, tag: str) -> None:
    strict = {"Prefer": "handling=strict"}
    params = {"_tag": f"urn:test|{tag}"}
    assert client.get("/Patient", params={**params, "_text": "x"}, headers=strict).status_code == 200
    assert client.get("/Patient", params={**params, "_content": "x"}, headers=strict).status_code == 200
    assert client.get("/Patient", params={**params, "_text:exact": "x"}).status_code == 400
    assert client.get("/Patient", params={**params, "_text": " "}).status_code == 400
    assert client.get("/Patient", params={**params, "_content": "a,"}).status_code == 400
    assert client.get("/Patient", params={**params, "_sort": "_text"}).status_code == 400


def test_bodies() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "3", "tag": [{"system": "urn:s", "code": "metatag"}]},
        "text": _div("<table><tr><td>Lê</td><td>Thị</td></tr></table>&lt;b&gt;"),
        "identifier": [{"system": "urn:oid:1.2", "value": "MRN-7"}],
        "managingOrganization": {"reference": "Organization/o1", "display": "Bệnh viện Bạch Mai"},
        "photo": [{"data": "QUJD", "url": "http://x/photo"}],
        "extension": [{"url": "http://x/ext", "valueString": "Ghi chú", "valueUri": "urn:skip"}],
    }
    assert narrative_body(patient) == "le thi <b>"
    body = content_body(patient)
    assert set(body.split(" ")) == {"mrn-7", "benh", "vien", "bach", "mai", "ghi", "chu"}
    assert narrative_body({"resourceType": "Patient"}) == content_body({"resourceType": "Patient"}) == ""
