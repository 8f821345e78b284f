"""Custom SearchParameter resources: activation by the write path, $reindex for older resources,
deactivation by delete or retirement, refusal of unusable ones (both backends, live server).

The test database is shared by the whole session: every parameter code carries the test's tag,
and every test deletes its parameters at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ketnoi.interactions import search_parameters
from ketnoi.interactions.search_parameters import SearchParameterRegistry, check
from ketnoi.interactions.services import Services
from ketnoi.search.extract import default_extractor

ETHNICITY = "https://fhir.ketnoi.vn/StructureDefinition/ethnicity"
STRICT = {"Prefer": "handling=strict"}


def _sp(name: str, **changes: Any) -> dict[str, Any]:
    code = name
    sp: dict[str, Any] = {
        "resourceType": "SearchParameter",
        "url": f"https://fhir.ketnoi.vn/SearchParameter/{code}",
        "name": code.replace("-", "_"),
        "status": "active",
        "description": "Dân tộc (ethnicity) of a patient",
        "code": code,
        "base": ["Patient"],
        "type": "token",
        "expression": f"Patient.extension('{ETHNICITY}').value.coding.code",
    }
    sp.update(changes)
    return {k: v for k, v in sp.items() if v is not None}


def _patient(ethnicity: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "extension": [
            {
                "url": ETHNICITY,
                "valueCodeableConcept": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.238", "code": ethnicity}]},
            }
        ],
    }


def _ids(client: httpx.Client, params: dict[str, str]) -> set[str]:
    r = client.get("/Patient", params={**params, "_count": "100"}, headers=STRICT)
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", []) if e["resource"]["resourceType"] == "Patient"}


def _wait_done(client: httpx.Client, location: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(location)
        if r.status_code == 200:
            body: dict[str, Any] = r.json()
            return body
        assert r.status_code == 202, r.text
        assert "X-Progress" in r.headers
        assert time.monotonic() < deadline, "reindex did not finish"
        time.sleep(0.1)


@pytest.fixture
def created(client: httpx.Client) -> Iterator[list[str]]:
    """SearchParameter ids this test created: deleted (deactivated) at the end."""
    ids: list[str] = []
    yield ids
    for id in ids:
        client.delete(f"/SearchParameter/{id}")


def test_custom_parameter_new_writes_then_reindex_then_delete(
    client: httpx.Client, tag: str, created: list[str]
) -> None:
    code = f"ethnic-{tag}"
    value = f"kinh-{tag}"
    old = client.post("/Patient", json=_patient(value)).json()["id"]
    assert client.get("/Patient", params={code: value}, headers=STRICT).status_code == 400  # unknown yet

    r = client.post("/SearchParameter", json=_sp(code))
    assert r.status_code == 201, r.text
    created.append(r.json()["id"])
    new = client.post("/Patient", json=_patient(value)).json()["id"]
    other = client.post("/Patient", json=_patient(f"tay-{tag}")).json()["id"]
    # Active at once for new writes; the older resource needs a reindex.
    assert _ids(client, {code: value}) == {new}
    assert _ids(client, {code: f"tay-{tag}"}) == {other}
    statement = client.get("/metadata").json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert code in {p["name"] for p in patient["searchParam"]}

    started = client.post("/Patient/$reindex", json={"resourceType": "Parameters"})
    assert started.status_code == 202, started.text
    location = started.headers["Content-Location"]
    assert "$reindex-status?job=" in location
    assert started.json()["resourceType"] == "OperationOutcome"
    status = _wait_done(client, location)
    params = {p["name"]: p for p in status["parameter"]}
    assert params["state"]["valueCode"] == "done"
    assert params["type"]["valueCode"] == "Patient"
    assert params["processed"]["valueInteger"] >= 3
    assert _ids(client, {code: value}) == {old, new}

    # Deleting the SearchParameter deactivates it: unknown again (400 in strict handling).
    assert client.delete(f"/SearchParameter/{created.pop()}").status_code in (200, 204)
    assert client.get("/Patient", params={code: value}, headers=STRICT).status_code == 400
    statement = client.get("/metadata").json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert code not in {p["name"] for p in patient["searchParam"]}


def test_retiring_deactivates_and_reactivating_works(client: httpx.Client, tag: str, created: list[str]) -> None:
    code = f"ethnic-{tag}"
    value = f"hoa-{tag}"
    r = client.post("/SearchParameter", json=_sp(code))
    sp = r.json()
    created.append(sp["id"])
    pid = client.post("/Patient", json=_patient(value)).json()["id"]
    assert _ids(client, {code: value}) == {pid}

    retired = client.put(f"/SearchParameter/{sp['id']}", json={**_sp(code, status="retired"), "id": sp["id"]})
    assert retired.status_code == 200, retired.text
    assert client.get("/Patient", params={code: value}, headers=STRICT).status_code == 400

    active = client.put(f"/SearchParameter/{sp['id']}", json={**_sp(code), "id": sp["id"]})
    assert active.status_code == 200, active.text
    assert _ids(client, {code: value}) == {pid}  # index rows written while it was active are current


def test_custom_parameter_overrides_and_other_types(client: httpx.Client, tag: str, created: list[str]) -> None:
    code = f"nick-{tag}"
    sp = _sp(code, type="string", expression="Patient.name.where(use = 'nickname').given")
    created.append(client.post("/SearchParameter", json=sp).json()["id"])
    pid = client.post(
        "/Patient", json={"resourceType": "Patient", "name": [{"use": "nickname", "given": [f"Tí{tag}"]}]}
    ).json()["id"]
    assert _ids(client, {code: f"tí{tag}"}) == {pid}  # string search: case and accent-insensitive prefix
    assert _ids(client, {f"{code}:exact": f"Tí{tag}"}) == {pid}


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"expression": None}, "expression"),
        ({"expression": "   "}, "expression"),
        ({"base": ["Patiant"]}, "base"),
        ({"base": []}, "base"),
        ({"type": "composite"}, "type"),
        ({"type": "special"}, "type"),
        ({"expression": "Patient.name.where(use = "}, "expression"),
        ({"expression": "Patient.nosuchfunction()"}, "expression"),
        ({"expression": "Observation.code"}, "expression"),
        ({"code": "_private"}, "code"),
        ({"code": "has space"}, "code"),
    ],
)
def test_invalid_search_parameter_refused(client: httpx.Client, tag: str, changes: dict[str, Any], needle: str) -> None:
    body = _sp(f"bad-{tag}", **changes)
    r = client.post("/SearchParameter", json=body)
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    errors = [i for i in outcome["issue"] if i["severity"] == "error"]
    assert any(needle in i["diagnostics"] and " / " in i["diagnostics"] for i in errors), errors  # bilingual
    # Nothing stored.
    found = client.get("/SearchParameter", params={"url": body["url"]}).json()
    assert found.get("entry", []) == [] or all(e["search"]["mode"] == "outcome" for e in found["entry"])
    # And a PUT (update-as-create) is refused the same way.
    assert client.put(f"/SearchParameter/{tag}", json={**body, "id": tag}).status_code == 400
    assert client.get(f"/SearchParameter/{tag}").status_code == 404


def test_retired_or_unknown_status_parameter_is_stored_inactive(
    client: httpx.Client, tag: str, created: list[str]
) -> None:
    code = f"old-{tag}"
    r = client.post("/SearchParameter", json=_sp(code, status="retired", type="composite"))
    assert r.status_code == 201, r.text  # not checked: it will never run
    created.append(r.json()["id"])
    assert client.get("/Patient", params={code: "x"}, headers=STRICT).status_code == 400


def test_unusable_draft_is_stored_with_warnings_but_stays_inactive(
    client: httpx.Client, tag: str, created: list[str]
) -> None:
    code = f"wip-{tag}"
    draft = _sp(code, status="draft", expression=None)
    checked = client.post("/SearchParameter/$validate", json=draft).json()
    warnings = [i for i in checked["issue"] if i["severity"] == "warning"]
    assert any("expression" in i["diagnostics"] and "inactive" in i["diagnostics"] for i in warnings), checked
    r = client.post("/SearchParameter", json=draft)
    assert r.status_code == 201, r.text
    created.append(r.json()["id"])
    assert client.get("/Patient", params={code: "x"}, headers=STRICT).status_code == 400
    # Fixed: the same draft becomes active.
    fixed = client.put(f"/SearchParameter/{created[0]}", json={**_sp(code, status="draft"), "id": created[0]})
    assert fixed.status_code == 200, fixed.text
    pid = client.post("/Patient", json=_patient(f"dao-{tag}")).json()["id"]
    assert _ids(client, {code: f"dao-{tag}"}) == {pid}


def test_rolled_back_activation_is_undone_by_sync(
    client: httpx.Client, services: Services, tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = f"ghost-{tag}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _sp(code), "request": {"method": "POST", "url": "SearchParameter"}},
            {
                "resource": {"resourceType": "Patient", "birthDate": "1990-31-01"},  # invalid: rolls all back
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    assert client.post("", json=bundle).status_code == 400
    registry: SearchParameterRegistry = services.extras["search_parameters"]
    monkeypatch.setattr(search_parameters, "PENDING_S", 0.0)
    registry.sync(services.store)
    assert code not in {sp["code"] for sp in registry.active.values()}
    assert client.get("/Patient", params={code: "x"}, headers=STRICT).status_code == 400


def test_active_parameters_are_loaded_at_start(
    client: httpx.Client, services: Services, tag: str, created: list[str]
) -> None:
    code = f"boot-{tag}"
    created.append(client.post("/SearchParameter", json=_sp(code)).json()["id"])
    fresh = Services(store=services.store, settings=services.settings, extractor=default_extractor())
    registry = search_parameters.install(fresh)
    assert code in {sp["code"] for sp in registry.active.values()}
    assert code in fresh.extractor.params_for("Patient")
    assert registry.after_write in fresh.after_write


def test_check_is_quiet_for_other_resources_and_valid_parameters(tag: str) -> None:
    assert check({"resourceType": "Patient"}) == []
    assert check(_sp(f"ok-{tag}")) == []
    assert check(_sp(f"ok-{tag}", base=["Resource"], expression="Resource.meta.source", type="uri")) == []
    assert (
        check(
            _sp(
                f"ok-{tag}",
                status="draft",
                base=["Patient", "Practitioner"],
                expression="Patient.gender | Practitioner.gender",
            )
        )
        == []
    )
    issues = check(_sp(f"ok-{tag}", base=["Patient", "Practitioner"], expression="Patient.gender"))
    assert [i.expression for i in issues] == [("SearchParameter.expression",)]
    assert "Practitioner" in issues[0].en and issues[0].vi
