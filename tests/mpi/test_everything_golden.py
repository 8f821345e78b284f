"""``Patient/[golden]/$everything`` spans the records the golden record links, as far as the caller may
read them (ketnoi/operations/everything.py, ADR 0023)."""

from __future__ import annotations

from typing import Any

from ketnoi.auth.scopes import parse_scopes
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.services import Services
from tests.interactions.audit_helpers import body, call
from tests.mpi.people import patient

OPEN = RequestContext.operator("test")
GOLDEN = {"system": "https://fhir.ketnoi.vn/CodeSystem/mpi", "code": "golden"}


def staff(org: str, user: str) -> RequestContext:
    return RequestContext(
        authenticated=True,
        user=user,
        scopes=parse_scopes("user/*.cruds"),
        organization=f"Organization/{org}",
        roles=frozenset({"clinician"}),
    )


F1, F2 = staff("F1", "bs1"), staff("F2", "bs2")


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
    }


def everything(s: Services, ctx: RequestContext, id: str, count: int | None = None) -> set[str]:
    ids: set[str] = set()
    url = f"Patient/{id}/$everything" + (f"?_count={count}" if count else "")
    while url:
        r = call(s, ctx, "GET", url)
        assert r.status == 200, body(r)
        page = body(r)
        ids |= {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in page.get("entry", [])
                if e["search"]["mode"] == "match"}  # fmt: skip
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0].split("/fhir/", 1)[1] if nxt else ""
    return ids


def test_a_golden_records_everything_spans_its_sources_within_reach(fresh_services: Services) -> None:
    s = fresh_services
    for o in ("F1", "F2"):
        put(s, {"resourceType": "Organization", "id": o, "name": o})
    put(s, {**patient(), "id": "at-f1"}, F1)
    put(s, obs("o-f1", "at-f1"), F1)
    put(s, {**patient(given=("Bình",)), "id": "at-f2"}, F2)
    put(s, obs("o-f2", "at-f2"), F2)
    links = [{"other": {"reference": f"Patient/{p}"}, "type": "seealso"} for p in ("at-f1", "at-f2")]
    put(s, {**patient(), "id": "gold", "meta": {"tag": [GOLDEN]}, "link": links})
    whole = {"Patient/gold", "Patient/at-f1", "Observation/o-f1", "Patient/at-f2", "Observation/o-f2"}
    assert everything(s, OPEN, "gold") == whole
    assert everything(s, OPEN, "gold", count=2) == whole  # paged across the sources
    # F1's clinician reaches neither the golden record (no care relation with it) nor, through it, F2's data.
    r = call(s, F1, "GET", "Patient/gold/$everything")
    assert r.status == 404 and b"o-f2" not in (r.raw or b"") + str(r.resource).encode()
    assert everything(s, F1, "at-f1") == {"Patient/at-f1", "Observation/o-f1"}


def test_an_ordinary_patients_everything_does_not_follow_its_links(fresh_services: Services) -> None:
    s = fresh_services
    put(s, {**patient(), "id": "a"})
    put(s, {**patient(), "id": "b", "link": [{"other": {"reference": "Patient/a"}, "type": "seealso"}]})
    put(s, obs("o-a", "a"))
    assert everything(s, OPEN, "b") == {"Patient/b"}
