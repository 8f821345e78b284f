"""Chained parameters, reverse chaining (_has), _include/_revinclude: exact id sets on both backends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def _make(client: httpx.Client, tag: str, resource: dict[str, Any]) -> str:
    body = {**resource, "meta": {"tag": [{"system": "urn:test", "code": tag}]}}
    r = client.post(f"/{resource['resourceType']}", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _search(client: httpx.Client, path: str, tag: str, params: dict[str, str] | list[tuple[str, str]]) -> Any:
    items = list(params.items()) if isinstance(params, dict) else list(params)
    r = client.get(path, params=[("_tag", f"urn:test|{tag}"), ("_count", "100"), *items])
    assert r.status_code == 200, r.text
    return r.json()


def _ids(client: httpx.Client, path: str, tag: str, **params: str) -> set[str]:
    bundle = _search(client, path, tag, params)
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


def _included(bundle: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "include"
    }


@pytest.fixture
def world(client: httpx.Client, tag: str) -> dict[str, str]:
    """Two organisations, a practitioner, patients, encounters and observations linking them."""
    w: dict[str, str] = {}
    w["org_a"] = _make(
        client,
        tag,
        {
            "resourceType": "Organization",
            "name": "Bệnh viện Bạch Mai",
            "identifier": [{"system": "urn:bv", "value": f"{tag}-bm"}],
        },
    )
    w["org_b"] = _make(
        client,
        tag,
        {
            "resourceType": "Organization",
            "name": "Trạm y tế Phú Lương",
            "partOf": {"reference": f"Organization/{w['org_a']}"},
        },
    )
    w["gp"] = _make(
        client, tag, {"resourceType": "Practitioner", "name": [{"family": "Lê", "given": ["Minh"]}], "gender": "female"}
    )
    w["an"] = _make(
        client,
        tag,
        {
            "resourceType": "Patient",
            "name": [{"family": "Nguyễn", "given": ["An"]}],
            "gender": "male",
            "generalPractitioner": [{"reference": f"Practitioner/{w['gp']}"}],
            "managingOrganization": {"reference": f"Organization/{w['org_a']}"},
        },
    )
    w["binh"] = _make(
        client,
        tag,
        {
            "resourceType": "Patient",
            "name": [{"family": "Đặng", "given": ["Bình"]}],
            "gender": "female",
            "managingOrganization": {"reference": f"Organization/{w['org_b']}"},
        },
    )
    w["ward"] = _make(client, tag, {"resourceType": "Location", "name": "Nguyễn Trãi ward"})
    w["enc_a"] = _make(
        client,
        tag,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{w['an']}"},
            "serviceProvider": {"reference": f"Organization/{w['org_a']}"},
        },
    )
    w["enc_b"] = _make(
        client,
        tag,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{w['binh']}"},
            "serviceProvider": {"reference": f"Organization/{w['org_b']}"},
        },
    )

    def obs(subject: str, code: str, encounter: str | None = None) -> str:
        body: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": subject},
        }
        if encounter:
            body["encounter"] = {"reference": f"Encounter/{encounter}"}
        return _make(client, tag, body)

    w["obs_an_bp"] = obs(f"Patient/{w['an']}", "85354-9", w["enc_a"])
    w["obs_an_wt"] = obs(f"Patient/{w['an']}", "29463-7", w["enc_a"])
    w["obs_binh_wt"] = obs(f"Patient/{w['binh']}", "29463-7", w["enc_b"])
    w["obs_ward"] = obs(f"Location/{w['ward']}", "85354-9")
    return w


def test_chain_one_level(client: httpx.Client, tag: str, world: dict[str, str]) -> None:
    w = world
    assert _ids(client, "/Observation", tag, **{"subject:Patient.name": "nguyen"}) == {w["obs_an_bp"], w["obs_an_wt"]}
    assert _ids(client, "/Observation", tag, **{"patient.gender": "female"}) == {w["obs_binh_wt"]}
    assert _ids(client, "/Observation", tag, **{"subject:Patient.name": "nobody"}) == set()
    # An ambiguous target: subject may be a Patient or a Location (both have "name"), a Group (no "name").
    assert _ids(client, "/Observation", tag, **{"subject.name": "nguyen"}) == {
        w["obs_an_bp"],
        w["obs_an_wt"],
        w["obs_ward"],
    }
    assert _ids(client, "/Observation", tag, **{"subject:Location.name": "nguyen"}) == {w["obs_ward"]}
    assert _ids(client, "/Observation", tag, **{"subject._id": w["binh"]}) == {w["obs_binh_wt"]}


def test_chain_several_levels(client: httpx.Client, tag: str, world: dict[str, str]) -> None:
    w = world
    assert _ids(client, "/Observation", tag, **{"patient.general-practitioner.name": "le"}) == {
        w["obs_an_bp"],
        w["obs_an_wt"],
    }
    assert _ids(client, "/Observation", tag, **{"encounter.service-provider.identifier": f"urn:bv|{tag}-bm"}) == {
        w["obs_an_bp"],
        w["obs_an_wt"],
    }
    by_parent = {"patient.organization.partof.name": "benh vien bach"}
    assert _ids(client, "/Observation", tag, **by_parent) == {w["obs_binh_wt"]}
    # Chains combine with other criteria (AND) and with OR values.
    assert _ids(client, "/Observation", tag, **{"patient.name": "nguyen,dang", "code": "85354-9"}) == {w["obs_an_bp"]}


def test_chain_with_modifiers_on_the_last_link(client: httpx.Client, tag: str, world: dict[str, str]) -> None:
    w = world
    assert _ids(client, "/Observation", tag, **{"patient.family:exact": "Đặng"}) == {w["obs_binh_wt"]}
    assert _ids(client, "/Observation", tag, **{"patient.gender:not": "male"}) == {w["obs_binh_wt"]}
    assert _ids(client, "/Encounter", tag, **{"subject:Patient.general-practitioner:missing": "true"}) == {w["enc_b"]}


def test_chain_errors(client: httpx.Client) -> None:
    strict = {"Prefer": "handling=strict"}
    assert client.get("/Observation", params={"code.name": "x"}).status_code == 400  # not a reference
    assert client.get("/Observation", params={"subject:Nope.name": "x"}).status_code == 400
    assert client.get("/Observation", params={"subject:Medication.name": "x"}).status_code == 400  # not a target
    r = client.get("/Observation", params={"subject.bogus": "x"}, headers=strict)
    assert r.status_code == 400 and "bogus" in r.text
    lenient = client.get("/Observation", params={"subject.bogus": "x", "_count": "1"})
    assert lenient.status_code == 200 and "subject.bogus" in lenient.text
    deep = "patient.organization" + ".partof" * 6 + ".name"
    assert client.get("/Observation", params={deep: "x"}).status_code == 400


def test_has(client: httpx.Client, tag: str, world: dict[str, str]) -> None:
    w = world
    assert _ids(client, "/Patient", tag, **{"_has:Observation:patient:code": "85354-9"}) == {w["an"]}
    assert _ids(client, "/Patient", tag, **{"_has:Observation:subject:code": "29463-7"}) == {w["an"], w["binh"]}
    assert _ids(client, "/Patient", tag, **{"_has:Observation:patient:code": "00000-0"}) == set()
    # Nested: patients with an encounter that some observation of code 85354-9 belongs to.
    assert _ids(client, "/Patient", tag, **{"_has:Encounter:subject:_has:Observation:encounter:code": "85354-9"}) == {
        w["an"]
    }
    # _has combined with a chain inside it.
    assert _ids(client, "/Organization", tag, **{"_has:Patient:organization:general-practitioner.name": "le"}) == {
        w["org_a"]
    }
    assert _ids(client, "/Patient", tag, **{"_has:Observation:patient:code:not": "85354-9"}) == {w["an"], w["binh"]}


def test_has_errors(client: httpx.Client) -> None:
    assert client.get("/Patient", params={"_has:Observation:patient": "x"}).status_code == 400
    assert client.get("/Patient", params={"_has:Nope:patient:code": "x"}).status_code == 400
    assert (
        client.get(
            "/Patient", params={"_has:Observation:code:code": "x"}, headers={"Prefer": "handling=strict"}
        ).status_code
        == 400
    )
    assert client.get("/Patient", params={"_has:Observation:device:code": "x"}).status_code == 400  # never a Patient


def test_include(client: httpx.Client, tag: str, world: dict[str, str]) -> None:
    w = world
    bundle = _search(client, "/Observation", tag, {"code": "29463-7", "_include": "Observation:subject"})
    assert {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"} == {
        w["obs_an_wt"],
        w["obs_binh_wt"],
    }
    assert _included(bundle) == {f"Patient/{w['an']}", f"Patient/{w['binh']}"}  # An once, not twice
    typed = _search(client, "/Observation", tag, {"code": "85354-9", "_include": "Observation:subject:Location"})
    assert _included(typed) == {f"Location/{w['ward']}"}
    several = _search(
        client,
        "/Observation",
        tag,
        [("code", "29463-7"), ("_include", "Observation:subject"), ("_include", "Observation:encounter")],
    )
    assert _included(several) == {
        f"Patient/{w['an']}",
        f"Patient/{w['binh']}",
        f"Encounter/{w['enc_a']}",
        f"Encounter/{w['enc_b']}",
    }


def test_include_iterate_and_wildcard(client: httpx.Client, tag: str, world: dict[str, str]) -> None:
    w = world
    params = [
        ("_id", w["obs_binh_wt"]),
        ("_include", "Observation:patient"),
        ("_include:iterate", "Patient:organization"),
        ("_include:iterate", "Organization:partof"),
    ]
    bundle = _search(client, "/Observation", tag, params)
    assert _included(bundle) == {f"Patient/{w['binh']}", f"Organization/{w['org_b']}", f"Organization/{w['org_a']}"}
    without_iterate = _search(
        client,
        "/Observation",
        tag,
        [("_id", w["obs_binh_wt"]), ("_include", "Observation:patient"), ("_include", "Patient:organization")],
    )
    assert _included(without_iterate) == {f"Patient/{w['binh']}"}
    star = _search(client, "/Observation", tag, {"_id": w["obs_an_bp"], "_include": "Observation:*"})
    assert _included(star) == {f"Patient/{w['an']}", f"Encounter/{w['enc_a']}"}


def test_revinclude(client: httpx.Client, tag: str, world: dict[str, str]) -> None:
    w = world
    bundle = _search(client, "/Patient", tag, {"name": "nguyen", "_revinclude": "Observation:subject"})
    assert {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"} == {w["an"]}
    assert _included(bundle) == {f"Observation/{w['obs_an_bp']}", f"Observation/{w['obs_an_wt']}"}
    both = _search(
        client,
        "/Patient",
        tag,
        [("name", "nguyen"), ("_revinclude", "Encounter:subject"), ("_revinclude:iterate", "Observation:encounter")],
    )
    assert _included(both) == {
        f"Encounter/{w['enc_a']}",
        f"Observation/{w['obs_an_bp']}",
        f"Observation/{w['obs_an_wt']}",
    }
    # A match is never repeated as an include.
    orgs = _search(client, "/Organization", tag, {"_revinclude": "Organization:partof"})
    assert _included(orgs) == set()


def test_include_errors(client: httpx.Client) -> None:
    assert client.get("/Observation", params={"_include": "Observation"}).status_code == 400
    assert client.get("/Observation", params={"_include": "Nope:subject"}).status_code == 400
    assert client.get("/Observation", params={"_include:bogus": "Observation:subject"}).status_code == 400
    strict = client.get("/Observation", params={"_include": "Observation:code"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


def test_compartment(client: httpx.Client, tag: str, world: dict[str, str]) -> None:
    w = world
    assert _ids(client, f"/Patient/{w['an']}/Observation", tag) == {w["obs_an_bp"], w["obs_an_wt"]}
    assert _ids(client, f"/Patient/{w['an']}/Observation", tag, code="85354-9") == {w["obs_an_bp"]}
    assert _ids(client, f"/Patient/{w['an']}/Encounter", tag) == {w["enc_a"]}
    assert _ids(client, f"/Patient/{w['binh']}/Observation", tag) == {w["obs_binh_wt"]}
    assert _ids(client, "/Patient/nobody/Observation", tag) == set()
    assert client.get(f"/Patient/{w['an']}/Organization").status_code == 400  # not in the compartment
    assert client.get(f"/Practitioner/{w['gp']}/Observation").status_code == 404  # no such compartment packaged
