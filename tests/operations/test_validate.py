"""$validate: checks without storing."""

from __future__ import annotations

import httpx


def test_validate_valid_and_invalid(client: httpx.Client) -> None:
    ok = client.post("/Patient/$validate", json={"resourceType": "Patient", "birthDate": "1990-01-01"})
    assert ok.status_code == 200
    assert all(i["severity"] not in ("error", "fatal") for i in ok.json()["issue"])
    bad = client.post("/Patient/$validate", json={"resourceType": "Patient", "birthDate": "1990-31-01", "nmae": []})
    assert bad.status_code == 200
    errors = [i for i in bad.json()["issue"] if i["severity"] == "error"]
    assert len(errors) >= 2
    assert "nmae" in str(errors)
    assert client.get("/Patient", params={"birthdate": "1990-31-01"}).status_code == 400  # nothing stored, bad date


def test_validate_parameters_form_and_wrong_type(client: httpx.Client) -> None:
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": {"resourceType": "Observation"}}],
    }
    r = client.post("/Patient/$validate", json=params)
    assert r.status_code == 200
    assert any("not a Patient" in i["diagnostics"] for i in r.json()["issue"])


def test_unknown_operation_is_404(client: httpx.Client) -> None:
    r = client.post("/Patient/$nonsense", json={})
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/Patient/$validate").status_code == 405


def test_operations_are_in_the_capability_statement(client: httpx.Client) -> None:
    ops = client.get("/metadata").json()["rest"][0]["operation"]
    assert "validate" in {o["name"] for o in ops}
