"""``Patient/$merge`` and ``$unmerge`` on both backends: references move, the source is retired, a
Provenance records every version, the unmerge restores the exact state before, and every refusal
(itself, deleted, already merged, across facilities, a patient) writes nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.services import Services
from tests.interactions.audit_helpers import body, call
from tests.mpi.people import patient

OPEN = RequestContext.operator("test")
F1 = RequestContext(
    authenticated=True,
    user="bs1",
    scopes=parse_scopes("user/*.cruds"),
    organization="Organization/F1",
    roles=frozenset({"clinician"}),
)


def put(s: Services, resource: dict[str, Any], ctx: RequestContext = OPEN) -> None:
    r = call(s, ctx, "PUT", f"{resource['resourceType']}/{resource['id']}", resource)
    assert r.status in (200, 201), body(r)


def obs(id: str, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": f"Patient/{patient_id}"}],
    }


def params(**named: Any) -> dict[str, Any]:
    parameter = []
    for name, value in named.items():
        name = name.replace("_", "-")
        if isinstance(value, bool):
            parameter.append({"name": name, "valueBoolean": value})
        elif isinstance(value, dict) and "resourceType" in value:
            parameter.append({"name": name, "resource": value})
        elif isinstance(value, dict):
            parameter.append({"name": name, "valueIdentifier": value})
        else:
            parameter.append({"name": name, "valueReference": {"reference": value}})
    return {"resourceType": "Parameters", "parameter": parameter}


def op(s: Services, name: str, ctx: RequestContext = OPEN, **named: Any) -> Any:
    return call(s, ctx, "POST", f"Patient/${name}", params(**named))


def current(s: Services, ref: str) -> dict[str, Any]:
    r = call(s, OPEN, "GET", ref)
    assert r.status == 200, body(r)
    return dict(body(r))


def snapshot(s: Services, refs: list[str]) -> dict[str, Any]:
    """The resources without their version stamps: what an exact restore must give back."""
    out = {}
    for ref in refs:
        resource = current(s, ref)
        resource["meta"] = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
        out[ref] = resource
    return out


@pytest.fixture
def pair(fresh_services: Services) -> Services:
    s = fresh_services
    put(s, {**patient(cccd="001085012345"), "id": "keep"})
    put(s, {**patient(family="Nguyen", given=("Binh",)), "id": "dup", "meta": {"tag": [{"code": "desk-2"}]}})
    put(s, obs("o1", "dup"))
    put(s, obs("o2", "keep"))
    return s


REFS = ["Patient/keep", "Patient/dup", "Observation/o1", "Observation/o2"]


def test_merge_moves_references_retires_the_source_and_unmerge_restores_exactly(pair: Services) -> None:
    s = pair
    before = snapshot(s, REFS)
    r = op(s, "merge", source_patient="Patient/dup", target_patient="Patient/keep")
    assert r.status == 200, body(r)
    out = {p["name"]: p["resource"] for p in body(r)["parameter"]}
    assert out["result"]["id"] == "keep" and "1 resources now refer to the target" in str(out["outcome"])
    o1 = current(s, "Observation/o1")
    assert o1["subject"]["reference"] == "Patient/keep" and o1["performer"][0]["reference"] == "Patient/keep"
    dup = current(s, "Patient/dup")
    assert dup["active"] is False and dup["link"] == [{"other": {"reference": "Patient/keep"}, "type": "replaced-by"}]
    assert dup["meta"]["tag"] == [{"code": "desk-2"}]  # meta kept
    assert {"other": {"reference": "Patient/dup"}, "type": "replaces"} in current(s, "Patient/keep")["link"]
    assert current(s, "Observation/o2")["meta"]["versionId"] == "1"  # untouched
    (prov,) = [e["resource"] for e in body(call(s, OPEN, "GET", "Provenance?target=Patient/keep"))["entry"]]
    assert prov["activity"]["coding"][0]["code"] == "merge"
    assert {t["reference"] for t in prov["target"]} == {"Observation/o1/_history/2", "Patient/dup/_history/2",
                                                        "Patient/keep/_history/2"}  # fmt: skip
    assert {e["what"]["reference"] for e in prov["entity"]} == {"Observation/o1/_history/1", "Patient/dup/_history/1",
                                                               "Patient/keep/_history/1"}  # fmt: skip
    undone = op(s, "unmerge", source_patient="Patient/dup")
    assert undone.status == 200, body(undone)
    assert snapshot(s, REFS) == before  # the exact state before, as new versions
    assert current(s, "Patient/dup")["meta"]["versionId"] == "3"
    again = op(s, "unmerge", provenance=f"Provenance/{prov['id']}")
    assert again.status == 409 and "changed after the merge" in orjson.dumps(body(again)).decode()


def test_preview_writes_nothing_and_identifiers_name_the_patients(pair: Services) -> None:
    s = pair
    before = snapshot(s, REFS)
    cccd = {"system": "http://fhir.ehealth.gov.vn/core/sid/national_id", "value": "001085012345"}
    r = op(s, "merge", source_patient="Patient/dup", target_patient_identifier=cccd, preview=True)
    assert r.status == 200 and "Preview" in orjson.dumps(body(r)).decode(), body(r)
    assert snapshot(s, REFS) == before
    assert current(s, "Patient/dup")["meta"]["versionId"] == "1"


def test_unmerge_refuses_a_merge_changed_since_and_writes_nothing(pair: Services) -> None:
    s = pair
    assert op(s, "merge", source_patient="Patient/dup", target_patient="Patient/keep").status == 200
    changed = {**current(s, "Observation/o1"), "status": "amended"}
    put(s, changed)
    r = op(s, "unmerge", source_patient="Patient/dup")
    assert r.status == 409 and "Observation/o1 changed after the merge" in orjson.dumps(body(r)).decode()
    assert current(s, "Patient/dup")["active"] is False  # nothing undone


@pytest.mark.parametrize(
    ("named", "status", "needle"),
    [
        ({"source_patient": "Patient/keep", "target_patient": "Patient/keep"}, 400, "into itself"),
        ({"source_patient": "Patient/nobody", "target_patient": "Patient/keep"}, 404, "Patient/nobody"),
        ({"target_patient": "Patient/keep"}, 400, "'source-patient'"),
        ({"source_patient": "Observation/o1", "target_patient": "Patient/keep"}, 400, "must reference Patient/ID"),
        ({"source_patient": "Patient/dup", "target_patient": "Patient/gone"}, 409, "deleted"),
        ({"source_patient": "Patient/dup", "target_patient": "Patient/merged"}, 409, "already merged"),
    ],
)
def test_bad_merges_name_the_problem_and_change_nothing(
    pair: Services, named: dict[str, str], status: int, needle: str
) -> None:
    s = pair
    put(s, {**patient(given=("An",)), "id": "gone"})
    assert call(s, OPEN, "DELETE", "Patient/gone").status in (200, 204)
    put(s, {**patient(given=("Ba",)), "id": "merged", "active": False,
            "link": [{"other": {"reference": "Patient/keep"}, "type": "replaced-by"}]})  # fmt: skip
    before = snapshot(s, REFS)
    r = op(s, "merge", **named)
    text = orjson.dumps(body(r)).decode()
    assert r.status == status and needle in text and body(r)["resourceType"] == "OperationOutcome", text
    assert snapshot(s, REFS) == before


def test_a_merge_across_a_facility_boundary_is_refused_whole(fresh_services: Services) -> None:
    s = fresh_services
    put(s, {"resourceType": "Organization", "id": "F1", "name": "F1"})
    put(s, {**patient(), "id": "mine"}, F1)
    put(s, {**patient(given=("Bình",)), "id": "also-mine"}, F1)
    put(s, obs("theirs", "also-mine"))  # written at the national level: not F1's to change
    before = snapshot(s, ["Patient/mine", "Patient/also-mine", "Observation/theirs"])
    r = op(s, "merge", F1, source_patient="Patient/also-mine", target_patient="Patient/mine")
    assert r.status == 403 and "1 records that refer to Patient/also-mine are outside your access" in str(body(r))
    assert snapshot(s, ["Patient/mine", "Patient/also-mine", "Observation/theirs"]) == before


def test_a_patient_may_not_merge(pair: Services) -> None:
    me = RequestContext(
        authenticated=True,
        user="keep",
        scopes=parse_scopes("patient/*.cruds"),
        patient="keep",
        roles=frozenset({"patient"}),
    )
    r = op(pair, "merge", me, source_patient="Patient/dup", target_patient="Patient/keep")
    assert r.status == 403 and "data steward" in orjson.dumps(body(r)).decode()
