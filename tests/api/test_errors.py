"""Bad input: every case answers an OperationOutcome with the right status and writes nothing."""

from __future__ import annotations

import httpx
import pytest

FHIR = {"Content-Type": "application/fhir+json"}


def _outcome(r: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")
    if code:
        assert body["issue"][0]["code"] == code
    assert body["issue"][0]["diagnostics"]
    return body


def _count(client: httpx.Client, tag: str) -> int:
    return int(client.get("/Patient", params={"_tag": f"urn:test|{tag}", "_summary": "count"}).json()["total"])


def _patient(tag: str) -> dict[str, object]:
    return {"resourceType": "Patient", "meta": {"tag": [{"system": "urn:test", "code": tag}]}}


def test_malformed_json_is_400(client: httpx.Client, tag: str) -> None:
    body = _outcome(client.post("/Patient", content=b'{"resourceType": "Patient",', headers=FHIR), 400, "structure")
    assert "JSON" in str(body)


def test_type_mismatch_is_400(client: httpx.Client) -> None:
    _outcome(client.post("/Patient", json={"resourceType": "Observation"}), 400)
    _outcome(client.put("/Patient/x1", json={"resourceType": "Observation", "id": "x1"}), 400)


def test_id_mismatch_is_400_and_nothing_written(client: httpx.Client, tag: str) -> None:
    body = {**_patient(tag), "id": "other"}
    _outcome(client.put(f"/Patient/id-{tag[:10]}", json=body), 400)
    _outcome(client.put(f"/Patient/id-{tag[:10]}", json=_patient(tag)), 400)  # no id in body
    assert client.get(f"/Patient/id-{tag[:10]}").status_code == 404


def test_invalid_id_is_400(client: httpx.Client) -> None:
    bad = "a" * 65
    _outcome(client.put(f"/Patient/{bad}", json={"resourceType": "Patient", "id": bad}), 400)


def test_unknown_resource_type(client: httpx.Client) -> None:
    _outcome(client.get("/Patientt/1"), 404, "not-supported")
    _outcome(client.post("/Patientt", json={"resourceType": "Patientt"}), 404)


def test_unknown_element_is_400_and_nothing_written(client: httpx.Client, tag: str) -> None:
    body = {**_patient(tag), "nmae": [{"family": "X"}]}
    outcome = _outcome(client.post("/Patient", json=body), 400, "structure")
    assert "nmae" in str(outcome)
    assert _count(client, tag) == 0


def test_bad_primitive_is_400(client: httpx.Client, tag: str) -> None:
    outcome = _outcome(client.post("/Patient", json={**_patient(tag), "birthDate": "1990-13-45"}), 400)
    assert "birthDate" in str(outcome)
    assert _count(client, tag) == 0


def test_deep_json_is_400(client: httpx.Client) -> None:
    deep = b'{"resourceType": "Patient", "extension": ' + b"[" * 200 + b"]" * 200 + b"}"
    body = _outcome(client.post("/Patient", content=deep, headers=FHIR), 400, "structure")
    assert "nested" in str(body)


def test_very_deep_json_is_400(client: httpx.Client) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    _outcome(client.post("/Patient", content=deep, headers=FHIR), 400)


def test_body_too_large_is_413(client: httpx.Client, tag: str) -> None:
    big = (
        b'{"resourceType": "Patient", "text": {"status": "generated", "div": "<div>'
        + b"x" * (11 * 1024 * 1024)
        + b'</div>"}}'
    )
    _outcome(client.post("/Patient", content=big, headers=FHIR), 413, "too-costly")


def test_xml_body_is_415(client: httpx.Client) -> None:
    body = _outcome(
        client.post(
            "/Patient",
            content=b"<Patient xmlns='http://hl7.org/fhir'/>",
            headers={"Content-Type": "application/fhir+xml"},
        ),
        415,
        "not-supported",
    )
    assert "XML" in str(body)


def test_unknown_media_type_is_415(client: httpx.Client) -> None:
    _outcome(client.post("/Patient", content=b"x", headers={"Content-Type": "text/plain"}), 415)


def test_xml_accept_is_406(client: httpx.Client) -> None:
    _outcome(client.get("/metadata", headers={"Accept": "application/fhir+xml"}), 406)
    _outcome(client.get("/metadata", params={"_format": "xml"}), 406)


def test_json_format_negotiation(client: httpx.Client) -> None:
    assert (
        client.get("/metadata", params={"_format": "json"}).headers["content-type"].startswith("application/fhir+json")
    )
    r = client.get("/metadata", headers={"Accept": "application/json"})
    assert r.headers["content-type"].startswith("application/json")
    assert client.get("/metadata", headers={"Accept": "*/*"}).status_code == 200


def test_pretty(client: httpx.Client) -> None:
    assert b"\n  " in client.get("/metadata", params={"_pretty": "true"}).content
    assert b"\n  " not in client.get("/metadata").content


def test_method_not_allowed_is_405(client: httpx.Client) -> None:
    _outcome(client.post("/Patient/123", json={"resourceType": "Patient"}), 405)
    _outcome(client.delete("/metadata"), 405)


def test_unknown_path_is_404(client: httpx.Client) -> None:
    _outcome(client.get("/Patient/1/_history/1/extra/more"), 404)


def test_empty_body_is_400(client: httpx.Client) -> None:
    _outcome(client.post("/Patient", content=b"", headers=FHIR), 400)


def test_non_object_body_is_400(client: httpx.Client) -> None:
    _outcome(client.post("/Patient", json=[1, 2]), 400)


@pytest.mark.parametrize(
    "query",
    [
        {"_count": "-1"},
        {"_count": "abc"},
        {"_total": "bogus"},
        {"_summary": "nah"},
        {"birthdate": "not-a-date"},
        {"_lastUpdated": "gt2020-99"},
        {"_sort": "name"},
    ],
)
def test_bad_search_parameters_are_400(client: httpx.Client, query: dict[str, str]) -> None:
    _outcome(client.get("/Patient", params=query), 400)


def test_unknown_search_parameter_strict_and_lenient(client: httpx.Client) -> None:
    _outcome(client.get("/Patient", params={"bogus": "1"}, headers={"Prefer": "handling=strict"}), 400)
    lenient = client.get("/Patient", params={"bogus": "1", "_count": "1"})
    assert lenient.status_code == 200
    outcome = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert "bogus" in str(outcome)


def test_injection_attempts_are_harmless(client: httpx.Client) -> None:
    for value in ["'; DROP TABLE resource; --", "x' OR '1'='1", "1) OR (1=1"]:
        r = client.get("/Patient", params={"identifier": value, "name": value})
        assert r.status_code == 200
        assert r.json().get("total") == 0
    _outcome(client.get("/Patient", params={"_sort": "id; DROP TABLE resource"}), 400)
    assert client.get("/metadata").status_code == 200


def test_nul_and_control_characters_are_refused_not_stored(client: httpx.Client, tag: str) -> None:
    body = {"resourceType": "Patient", "name": [{"family": "a\u0000b"}], "meta": {"tag": [{"code": tag}]}}
    outcome = _outcome(client.post("/Patient", json=body), 400)
    assert "NUL" in str(outcome)
    _outcome(client.get("/Patient", params={"name": "a\u0000"}), 400)
    _outcome(client.get("/Patient", params={"identifier": "x\u0001y"}), 400)
    _outcome(client.get("/Patient/a%00b"), 400)
    assert client.get("/Patient/a%20b").status_code == 404  # not a valid id: cannot exist
    assert client.get("/Patient/a%20b/_history").status_code == 404
    entry = {"request": {"method": "GET", "url": "Patient/a\u0000b"}}
    batch = client.post("", json={"resourceType": "Bundle", "type": "batch", "entry": [entry]})
    assert batch.json()["entry"][0]["response"]["status"].startswith("404")
