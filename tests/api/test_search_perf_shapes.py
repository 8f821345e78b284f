"""Searches whose SQL shape was tuned for large databases: exact results on both backends.

``_has`` is a correlated ``EXISTS``, nested ``_has`` correlates level by level, and ``_total`` on a
single index-table criterion counts index rows alone (ketnoi.search.compile.count_query). These
tests pin the *results* (id sets, totals) so a faster shape can never change what is found,
including deleted resources, duplicate index rows of one resource, and paging.

Every criterion uses a code system unique to the test (``urn:code:<tag>``) so that one criterion
alone isolates the test's data: that is the case the index-only count applies to.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def _make(client: httpx.Client, resource: dict[str, Any]) -> str:
    r = client.post(f"/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _search(client: httpx.Client, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    r = client.get(path, params=tuple(params))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _all_ids(client: httpx.Client, path: str, params: list[tuple[str, str]]) -> list[str]:
    """Every match, following ``next`` links (pages of 2) — checks order and no repeats too."""
    ids: list[str] = []
    bundle = _search(client, path, [*params, ("_count", "2")])
    while True:
        ids.extend(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match")
        nxt = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not nxt:
            break
        r = client.get(nxt[0])
        assert r.status_code == 200, r.text
        bundle = r.json()
    assert len(ids) == len(set(ids))
    return ids


def _total(client: httpx.Client, path: str, params: list[tuple[str, str]]) -> int:
    bundle = _search(client, path, [*params, ("_total", "accurate"), ("_count", "1")])
    return int(bundle["total"])


def _code(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


@pytest.fixture
def world(client: httpx.Client, tag: str) -> dict[str, Any]:
    sys = f"urn:code:{tag}"
    w: dict[str, Any] = {"sys": sys}
    for name in ("an", "binh", "chi", "dung", "gone"):
        w[name] = _make(client, {"resourceType": "Patient", "name": [{"family": f"{name}{tag[:8]}"}]})
    for name in ("gp1", "gp2"):
        w[name] = _make(client, {"resourceType": "Practitioner", "name": [{"family": f"gp{tag[:8]}{name}"}]})

    def encounter(patient: str, gp: str) -> str:
        return _make(
            client,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "type": [_code(sys, "visit")],
                "subject": {"reference": f"Patient/{w[patient]}"},
                "participant": [{"individual": {"reference": f"Practitioner/{w[gp]}"}}],
            },
        )

    w["e_an"], w["e_binh"], w["e_chi"] = encounter("an", "gp1"), encounter("binh", "gp2"), encounter("chi", "gp1")

    def observation(patient: str, codes: list[str], enc: str | None = None) -> str:
        body: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": sys, "code": c} for c in codes]},
            "subject": {"reference": f"Patient/{w[patient]}"},
        }
        if enc:
            body["encounter"] = {"reference": f"Encounter/{w[enc]}"}
        return _make(client, body)

    w["o_an_hr"] = observation("an", ["hr"], "e_an")
    w["o_an_hr2"] = observation("an", ["hr", "hr"], "e_an")  # two identical codings: two index rows
    w["o_binh_bp"] = observation("binh", ["bp"], "e_binh")
    w["o_chi_hr"] = observation("chi", ["hr"])  # no encounter
    w["o_gone_hr"] = observation("gone", ["hr"])  # its patient is deleted below
    w["o_dung_hr_deleted"] = observation("dung", ["hr"])
    assert client.delete(f"/Patient/{w['gone']}").status_code in (200, 204)
    assert client.delete(f"/Observation/{w['o_dung_hr_deleted']}").status_code in (200, 204)
    return w


def test_has_exact_ids_and_paging(client: httpx.Client, world: dict[str, Any]) -> None:
    w, sys = world, world["sys"]
    has = [("_has:Observation:subject:code", f"{sys}|hr")]
    ids = _all_ids(client, "/Patient", has)
    # dung's only heart rate is deleted; gone is deleted itself (its observation still points at it)
    assert ids == sorted([w["an"], w["chi"]])
    assert _total(client, "/Patient", has) == 2
    assert set(_all_ids(client, "/Patient", [("_has:Observation:subject:code", f"{sys}|bp,{sys}|hr")])) == {
        w["an"],
        w["binh"],
        w["chi"],
    }
    assert _all_ids(client, "/Patient", [("_has:Observation:subject:code", f"{sys}|none")]) == []
    # _has combined with another criterion on the outer resource
    both = [*has, ("name", f"an{w['sys'][-32:][:8]}")]
    assert _all_ids(client, "/Patient", both) == [w["an"]]
    # two _has criteria are ANDed
    two = [*has, ("_has:Encounter:subject:type", f"{sys}|visit")]
    assert _all_ids(client, "/Patient", two) == sorted([w["an"], w["chi"]])
    seen_by_gp2 = [*has, ("_has:Encounter:subject:participant", f"Practitioner/{w['gp2']}")]
    assert _all_ids(client, "/Patient", seen_by_gp2) == []
    seen_by_gp1 = [*has, ("_has:Encounter:subject:participant", f"Practitioner/{w['gp1']}")]
    assert _all_ids(client, "/Patient", seen_by_gp1) == sorted([w["an"], w["chi"]])


def test_nested_has_exact_ids(client: httpx.Client, world: dict[str, Any]) -> None:
    w, sys = world, world["sys"]
    nested = [("_has:Encounter:subject:_has:Observation:encounter:code", f"{sys}|hr")]
    assert _all_ids(client, "/Patient", nested) == [w["an"]]
    assert _total(client, "/Patient", nested) == 1
    bp = [("_has:Encounter:subject:_has:Observation:encounter:code", f"{sys}|bp")]
    assert _all_ids(client, "/Patient", bp) == [w["binh"]]
    # practitioners who saw a patient with a heart rate in that encounter
    gps = [("_has:Encounter:participant:_has:Observation:encounter:code", f"{sys}|hr")]
    assert _all_ids(client, "/Practitioner", gps) == [w["gp1"]]
    # _has whose inner criterion is a chain
    chained = [("_has:Observation:subject:encounter.type", f"{sys}|visit")]
    assert _all_ids(client, "/Patient", chained) == sorted([w["an"], w["binh"]])


def test_total_single_criterion_counts_each_current_match_once(client: httpx.Client, world: dict[str, Any]) -> None:
    w, sys = world, world["sys"]
    code = [("code", f"{sys}|hr")]
    expected = sorted([w["o_an_hr"], w["o_an_hr2"], w["o_chi_hr"], w["o_gone_hr"]])  # not the deleted one
    assert _all_ids(client, "/Observation", code) == expected
    assert _total(client, "/Observation", code) == 4
    assert _total(client, "/Observation", [("code", f"{sys}|hr,{sys}|bp")]) == 5
    assert _total(client, "/Observation", [("code", f"{sys}|none")]) == 0
    bundle = _search(client, "/Observation", [*code, ("_summary", "count")])
    assert bundle["total"] == 4
    # several criteria take the general count
    assert _total(client, "/Observation", [*code, ("subject", f"Patient/{w['an']}")]) == 2
    assert _total(client, "/Observation", [*code, ("_id", w["o_chi_hr"])]) == 1
    assert _total(client, "/Observation", [*code, ("encounter:missing", "true")]) == 2


def test_total_of_chains_and_compartments(client: httpx.Client, world: dict[str, Any]) -> None:
    w, sys = world, world["sys"]
    chain = [("encounter.type", f"{sys}|visit")]
    assert _all_ids(client, "/Observation", chain) == sorted([w["o_an_hr"], w["o_an_hr2"], w["o_binh_bp"]])
    assert _total(client, "/Observation", chain) == 3
    two_links = [("encounter.participant:Practitioner.family", f"gp{sys[-32:][:8]}gp1")]
    assert _all_ids(client, "/Observation", two_links) == sorted([w["o_an_hr"], w["o_an_hr2"]])
    assert _total(client, "/Observation", two_links) == 2
    compartment = _search(client, f"/Patient/{w['an']}/Observation", [("_total", "accurate")])
    assert compartment["total"] == 2
    assert {e["resource"]["id"] for e in compartment["entry"]} == {w["o_an_hr"], w["o_an_hr2"]}
    # the deleted patient's observation is still found by reference (the Observation is current)
    assert _total(client, "/Observation", [("subject", f"Patient/{w['gone']}")]) == 1
    # ...but not through a chain, whose target must be current
    assert _total(client, "/Observation", [("subject:Patient.family", f"gone{sys[-32:][:8]}")]) == 0
