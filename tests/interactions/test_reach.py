"""Reach by organization (issue 10; ADR 0017): what a clinician, a facility's backend and a provincial
manager may see, on both backends, with the fixtures of THREATS.md §7.

Patients A and B; facilities F1 (province P1) and F2 (province P2) under the Ministry; a clinician at
F1 (``user/*.cruds``), a backend system of F1, provincial managers of P1 and P2. F2 holds data of both
patients; every resource of B carries the canary string, which must never appear in an answer that
may not reveal B. A's Observation at F1 points at B's data (``performer``, ``hasMember``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.fhir import resource as res
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.organizations import LEVEL_SYSTEM
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services

CANARY = "CANARY-B-7731"
F1, F2 = "Organization/F1", "Organization/F2"
OPERATOR = RequestContext.operator("test")
HIV = {"system": "http://snomed.info/sct", "code": "86406008"}
HR = {"system": "http://loinc.org", "code": "8867-4"}
PSY = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
DAY = 86_400.0


def staff(org: str | None, role: str = "clinician", scopes: str = "user/*.cruds", user: str = "p1") -> RequestContext:
    return RequestContext(
        authenticated=True, user=user, scopes=parse_scopes(scopes), organization=org, roles=frozenset({role})
    )


CLINICIAN = staff(F1)
F2_CLINICIAN = staff(F2, user="p2")
BACKEND = RequestContext(authenticated=True, client_id="his-f1", scopes=parse_scopes("system/*.rs"), organization=F1)
P1_MANAGER = staff("Organization/P1", "provincial", user="m1")
P2_MANAGER = staff("Organization/P2", "provincial", user="m2")
NATIONAL_MANAGER = staff("Organization/MOH", "provincial", user="n1")


def patient_ctx(id: str) -> RequestContext:
    return RequestContext(
        authenticated=True, user=id, scopes=parse_scopes("patient/*.rs"), patient=id, roles=frozenset({"patient"})
    )


def call(s: Services, ctx: RequestContext, method: str, url: str, body: Any = None) -> FhirResponse:
    path, _, qs = url.partition("?")
    headers = {"content-type": "application/fhir+json"}
    return handle(
        s, FhirRequest(method, path, parse_qsl(qs, keep_blank_values=True), headers, body, "http://x/fhir", ctx)
    )


def text(r: FhirResponse) -> bytes:
    return orjson.dumps(r.resource) if r.resource is not None else (r.raw or b"")


def body(r: FhirResponse) -> Any:
    return orjson.loads(text(r))


def put(s: Services, ctx: RequestContext, resource: dict[str, Any]) -> str:
    r = call(s, ctx, "PUT", f"{resource['resourceType']}/{resource['id']}", resource)
    assert r.status in (200, 201), text(r)[:400]
    return str(resource["id"])


def ids_of(r: FhirResponse) -> set[str]:
    assert r.status == 200, text(r)[:400]
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in body(r).get("entry", [])}


def org(id: str, level: str | None = None, part_of: str | None = None) -> dict[str, Any]:
    o: dict[str, Any] = {"resourceType": "Organization", "id": id, "name": id}
    if level:
        o["type"] = [{"coding": [{"system": LEVEL_SYSTEM, "code": level}]}]
    if part_of:
        o["partOf"] = {"reference": f"Organization/{part_of}"}
    return o


def obs(id: str, patient: str, code: dict[str, str] = HR, **extra: Any) -> dict[str, Any]:
    o = {"resourceType": "Observation", "id": id, "status": "final", "code": {"coding": [code]}}
    return {**o, "subject": {"reference": f"Patient/{patient}"}, **extra}


def encounter(
    id: str, patient: str, start: float, end: float | None = None, status: str = "finished"
) -> dict[str, Any]:
    period = {"start": res.instant(start)} | ({"end": res.instant(end)} if end is not None else {})
    return {
        "resourceType": "Encounter",
        "id": id,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "period": period,
    }


def consent(
    id: str, patient: str, kind: str, *, actor: str | None = None, status: str = "active", **what: Any
) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": kind, **what}
    if actor:
        provision["actor"] = [
            {
                "role": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]
                },
                "reference": {"reference": actor},
            }
        ]
    return {
        "resourceType": "Consent",
        "id": id,
        "status": status,
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "provision": provision,
    }


RESEARCH = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}
TREATMENT = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}


def period(start_days: float, end_days: float) -> dict[str, str]:
    """A Consent period from ``start_days`` to ``end_days`` from now (negative: ago)."""
    return {"start": res.instant(time.time() + start_days * DAY), "end": res.instant(time.time() + end_days * DAY)}


def data(meaning: str, ref: str) -> dict[str, Any]:
    return {"meaning": meaning, "reference": {"reference": ref}}


@pytest.fixture
def world(fresh_services: Services) -> Services:
    s = fresh_services
    for o in (
        org("MOH", "national"),
        org("P1", "province", "MOH"),
        org("P2", "province", "MOH"),
        org("F1", None, "P1"),
        org("F2", None, "P2"),
    ):
        put(s, OPERATOR, o)
    put(s, OPERATOR, {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Lan"}]})
    put(s, OPERATOR, {"resourceType": "Patient", "id": "A", "name": [{"family": "Nguyen", "given": ["An"]}]})
    put(s, OPERATOR, {"resourceType": "Patient", "id": "B", "name": [{"family": CANARY}]})
    f2 = staff(F2, user="p2")
    put(s, f2, obs("b-obs", "B", valueString=CANARY))
    put(s, f2, obs("b-obs-2", "B", valueString=CANARY, code={"system": "http://loinc.org", "code": "2093-3"}))
    put(s, f2, {**encounter("b-enc", "B", time.time() - DAY), "reasonCode": [{"text": CANARY}]})
    put(s, f2, obs("a-f2", "A", valueString="at F2"))
    put(
        s,
        f2,
        {"resourceType": "Condition", "id": "a-hiv", "code": {"coding": [HIV]}, "subject": {"reference": "Patient/A"}},
    )
    put(
        s,
        f2,
        obs(
            "a-label",
            "A",
            meta={"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]},
        ),
    )
    put(
        s,
        CLINICIAN,
        obs(
            "a-f1",
            "A",
            performer=[{"reference": "Practitioner/dr"}, {"reference": "Patient/B"}],
            hasMember=[{"reference": "Observation/b-obs"}],
        ),
    )
    return s


def give_care(
    s: Services, patient: str = "A", *, days_ago: float = 2, ended: float | None = None, by: RequestContext = CLINICIAN
) -> None:
    end = time.time() - ended * DAY if ended is not None else None
    id = f"care-{patient}" if by is CLINICIAN else f"care-{patient}-{by.organization or ''}".replace("/", "-")
    put(s, by, encounter(id, patient, time.time() - days_ago * DAY, end))


def visible(s: Services, ctx: RequestContext, ref: str) -> bool:
    r = call(s, ctx, "GET", ref)
    assert r.status in (200, 404), (ref, r.status, text(r)[:300])
    return r.status == 200


# ---- care relation --------------------------------------------------------------------------------


def test_without_a_care_relation_a_clinician_sees_own_data_and_the_directory_only(world: Services) -> None:
    s = world
    assert visible(s, CLINICIAN, "Observation/a-f1")  # F1 wrote it
    assert visible(s, CLINICIAN, "Practitioner/dr") and visible(s, CLINICIAN, "Organization/F2")  # directory
    for ref in ("Observation/a-f2", "Condition/a-hiv", "Patient/A", "Patient/B", "Observation/b-obs"):
        assert not visible(s, CLINICIAN, ref), ref
    assert ids_of(call(s, CLINICIAN, "GET", "Observation?subject=Patient/A")) == {"Observation/a-f1"}


def test_a_care_relation_opens_the_patients_record_held_elsewhere_but_no_one_elses(world: Services) -> None:
    s = world
    give_care(s)
    for ref in ("Observation/a-f2", "Condition/a-hiv", "Patient/A", "Observation/a-label"):
        assert visible(s, CLINICIAN, ref), ref
    assert ids_of(call(s, CLINICIAN, "GET", "Observation?subject=Patient/A")) == {
        "Observation/a-f1",
        "Observation/a-f2",
        "Observation/a-label",
    }
    assert not visible(s, CLINICIAN, "Observation/b-obs") and not visible(s, CLINICIAN, "Patient/B")
    everything = call(s, CLINICIAN, "GET", "Patient/A/$everything")
    assert {"Condition/a-hiv", "Observation/a-f2", "Encounter/care-A"} <= ids_of(everything)
    assert CANARY.encode() not in text(everything)
    assert call(s, CLINICIAN, "GET", "Patient/B/$everything").status == 404


def test_a_care_relation_expires_after_the_window_and_the_window_is_configurable(world: Services) -> None:
    s = world
    give_care(s, days_ago=50, ended=40)
    assert not visible(s, CLINICIAN, "Observation/a-f2")
    s.settings = replace(s.settings, care_window_days=60)
    assert visible(s, CLINICIAN, "Observation/a-f2")


def test_another_facilitys_encounter_and_a_cancelled_one_give_no_care_relation(world: Services) -> None:
    s = world
    give_care(s, by=F2_CLINICIAN)  # F2's encounter: F2's relation, not F1's
    assert not visible(s, CLINICIAN, "Observation/a-f2")
    put(s, CLINICIAN, encounter("cancelled", "A", time.time(), status="cancelled"))
    assert not visible(s, CLINICIAN, "Observation/a-f2")


def test_an_operator_loaded_encounter_counts_for_its_service_provider(world: Services) -> None:
    s = world
    loaded = {**encounter("loaded", "A", time.time() - DAY), "serviceProvider": {"reference": F1}}
    put(s, OPERATOR, loaded)  # no owner: the demo population is loaded like this
    assert visible(s, CLINICIAN, "Observation/a-f2")
    assert not visible(s, staff("Organization/F3", user="p3"), "Observation/a-f2")  # F3: no relation with A


def test_a_facility_backend_reads_like_its_facility(world: Services) -> None:
    s = world
    assert visible(s, BACKEND, "Observation/a-f1") and not visible(s, BACKEND, "Observation/a-f2")
    give_care(s)
    assert visible(s, BACKEND, "Observation/a-f2") and not visible(s, BACKEND, "Observation/b-obs")


# ---- Consent --------------------------------------------------------------------------------------


def test_a_consent_denying_the_facility_closes_the_record_and_withdrawing_it_reopens(world: Services) -> None:
    s = world
    give_care(s)
    patient_a = RequestContext(
        authenticated=True, user="A", scopes=parse_scopes("patient/*.cruds"), patient="A", roles=frozenset({"patient"})
    )
    put(s, patient_a, consent("no-f1", "A", "deny", actor=F1))
    assert not visible(s, CLINICIAN, "Observation/a-f2") and not visible(s, CLINICIAN, "Patient/A")
    assert visible(s, CLINICIAN, "Observation/a-f1")  # what F1 wrote stays F1's
    assert ids_of(call(s, CLINICIAN, "GET", "Observation?subject=Patient/A&_total=accurate")) == {"Observation/a-f1"}
    assert body(call(s, CLINICIAN, "GET", "Observation?subject=Patient/A&_total=accurate"))["total"] == 1
    put(s, patient_a, consent("no-f1", "A", "deny", actor=F1, status="inactive"))  # withdrawn
    assert visible(s, CLINICIAN, "Observation/a-f2")
    put(s, patient_a, consent("no-f1", "A", "deny", actor=F1))  # restored: applies to the next request
    assert not visible(s, CLINICIAN, "Observation/a-f2")


def test_a_consent_denying_a_category_hides_only_that_category(world: Services) -> None:
    s = world
    give_care(s)
    put(s, OPERATOR, consent("no-hiv", "A", "deny", code=[{"coding": [HIV]}]))
    label = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
    put(s, OPERATOR, consent("no-psy", "A", "deny", securityLabel=[label]))
    assert not visible(s, CLINICIAN, "Condition/a-hiv") and not visible(s, CLINICIAN, "Observation/a-label")
    assert visible(s, CLINICIAN, "Observation/a-f2") and visible(s, CLINICIAN, "Patient/A")
    assert ids_of(call(s, CLINICIAN, "GET", "Condition?subject=Patient/A")) == set()
    assert "Condition/a-hiv" not in ids_of(call(s, CLINICIAN, "GET", "Patient/A/$everything"))
    assert "Condition/a-hiv" not in ids_of(call(s, CLINICIAN, "GET", "Patient?_id=A&_revinclude=Condition:subject"))
    assert visible(s, F2_CLINICIAN, "Condition/a-hiv")  # F2 wrote it


def test_a_consent_permitting_a_facility_opens_the_record_without_a_care_relation(world: Services) -> None:
    s = world
    put(s, OPERATOR, consent("share-f1", "A", "permit", actor=F1))
    assert visible(s, CLINICIAN, "Observation/a-f2")
    assert not visible(s, staff("Organization/F3", user="p3"), "Observation/a-f2")


@pytest.mark.parametrize(
    ("rules", "closed"),
    [
        ("deny-f1-now", True),
        ("deny-f1-expired", False),
        ("deny-f1-future", False),
        ("deny-all-but-f1-expired", True),  # the exception ran out: the deny stands for F1 too
        ("deny-f1-research", False),  # about research, not the care F1 gives
        ("deny-f1-treatment", True),
        ("deny-authored-by-a-person", True),  # who wrote it is not recorded: fails closed
    ],
)
def test_a_consents_period_and_purpose_decide_whether_it_applies(world: Services, rules: str, closed: bool) -> None:
    s = world
    give_care(s)
    for rule in RULES[rules]:
        put(s, OPERATOR, rule)
    assert visible(s, CLINICIAN, "Observation/a-f2") is not closed
    assert ("Observation/a-f2" in ids_of(call(s, CLINICIAN, "GET", "Observation?_count=100"))) is not closed
    assert visible(s, CLINICIAN, "Observation/a-f1")  # F1's own, whatever the rules


def test_a_consent_withholds_the_data_it_names(world: Services) -> None:
    """``provision.data``: one resource (instance), what refers to one (dependents), what one
    organization wrote (authoredby); the rest of the record stays open."""
    s = world
    give_care(s)
    for rule in RULES["deny-dependents"]:
        put(s, OPERATOR, rule)
    assert not visible(s, CLINICIAN, "Encounter/a-visit") and not visible(s, CLINICIAN, "Observation/a-visit-obs")
    assert visible(s, CLINICIAN, "Observation/a-f2") and visible(s, CLINICIAN, "Patient/A")
    put(s, OPERATOR, consent("c1", "A", "deny", data=[data("instance", "Observation/a-f2")]))
    assert not visible(s, CLINICIAN, "Observation/a-f2") and visible(s, CLINICIAN, "Observation/a-visit-obs")
    assert ids_of(call(s, CLINICIAN, "GET", "Observation?subject=Patient/A")) >= {"Observation/a-visit-obs"}
    assert "Observation/a-f2" not in ids_of(call(s, CLINICIAN, "GET", "Observation?subject=Patient/A"))
    put(s, OPERATOR, consent("c1", "A", "deny", data=[data("authoredby", F2)]))
    f2_wrote = {"Observation/a-f2", "Condition/a-hiv", "Observation/a-label"}
    assert not any(visible(s, CLINICIAN, ref) for ref in f2_wrote)
    assert visible(s, CLINICIAN, "Observation/a-visit-obs") and visible(s, CLINICIAN, "Patient/A")
    assert all(visible(s, F2_CLINICIAN, ref) for ref in f2_wrote)


def test_deny_everyone_but_one_facility(world: Services) -> None:
    s = world
    give_care(s)
    give_care(s, "A", by=staff("Organization/F3", user="p3"))
    rule = consent("only-f1", "A", "deny")
    rule["provision"]["provision"] = [
        {"type": "permit", "actor": consent("x", "A", "permit", actor=F1)["provision"]["actor"]}
    ]
    put(s, OPERATOR, rule)
    assert visible(s, CLINICIAN, "Observation/a-f2")
    assert not visible(s, staff("Organization/F3", user="p3"), "Observation/a-f2")


# ---- break-the-glass ------------------------------------------------------------------------------


def _glass(s: Services, ctx: RequestContext, patient: str, reason: str | None = "Ngừng tim, cấp cứu") -> FhirResponse:
    params = [{"name": "reason", "valueString": reason}] if reason is not None else []
    return call(
        s, ctx, "POST", f"Patient/{patient}/$break-the-glass", {"resourceType": "Parameters", "parameter": params}
    )


def test_break_the_glass_opens_one_record_to_one_user_audited_and_visible_to_the_patient(world: Services) -> None:
    s = world
    put(s, OPERATOR, consent("no-f1", "B", "deny", actor=F1))  # an emergency overrides the patient's denial
    assert not visible(s, CLINICIAN, "Observation/b-obs")
    opened = _glass(s, CLINICIAN, "B")
    assert opened.status == 200, text(opened)
    assert visible(s, CLINICIAN, "Observation/b-obs") and visible(s, CLINICIAN, "Patient/B")
    assert not visible(s, staff(F1, user="someone-else"), "Observation/b-obs")  # the user, not the facility
    assert not visible(s, CLINICIAN, "Observation/a-f2")  # one patient
    events = body(call(s, patient_ctx("B"), "GET", "AuditEvent?patient=B"))["entry"]
    glass = [e["resource"] for e in events if (e["resource"].get("purposeOfEvent") or [{}])[0].get("text")]
    assert len(glass) == 1
    assert glass[0]["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    assert glass[0]["purposeOfEvent"][0]["text"] == "Ngừng tim, cấp cứu"
    assert "ETREAT: Ngừng tim, cấp cứu" in glass[0]["text"]["div"]


def test_break_the_glass_needs_a_reason_a_clinician_and_ends_on_time(world: Services) -> None:
    s = world
    assert _glass(s, CLINICIAN, "B", None).status == 400
    assert _glass(s, CLINICIAN, "nobody").status == 404
    assert _glass(s, BACKEND, "B").status == 403  # no user behind a backend
    assert _glass(s, patient_ctx("A"), "B").status == 403
    s.settings = replace(s.settings, break_glass_minutes=0.5 / 60)
    assert _glass(s, CLINICIAN, "B").status == 200
    assert visible(s, CLINICIAN, "Observation/b-obs")
    time.sleep(0.7)
    assert not visible(s, CLINICIAN, "Observation/b-obs")


# ---- THREATS.md §7 for a clinician without a relation to B ----------------------------------------


def test_az01_every_out_of_reach_read_answers_like_a_missing_resource(world: Services) -> None:
    s = world
    put(s, staff(F2, user="p2"), obs("b-gone", "B", valueString=CANARY))
    assert call(s, staff(F2, user="p2"), "DELETE", "Observation/b-gone").status in (200, 204)
    answers = [
        call(s, CLINICIAN, "GET", url)
        for url in ("Observation/b-obs", "Observation/b-obs/_history/1", "Observation/b-gone", "Observation/none")
    ]
    assert {r.status for r in answers} == {404}
    shapes = {
        text(r)
        .replace(b"b-obs/_history/1", b"X")
        .replace(b"b-obs", b"X")
        .replace(b"b-gone", b"X")
        .replace(b"none", b"X")
        for r in answers
    }
    assert len(shapes) <= 2  # "Observation/X" and ".../_history/1" wordings; never a 403 or 410
    assert all(CANARY.encode() not in text(r) for r in answers)


@pytest.mark.parametrize(
    "url",
    [
        "Observation?patient=B",
        "Observation?subject=Patient/B",
        "Observation?_id=b-obs",
        "Observation",
        "Observation?_summary=count",
        "Observation?_total=accurate",
        "Encounter?subject=Patient/B",
        "Patient?name=" + CANARY,
        "Observation?_include=Observation:performer&_include=Observation:has-member",
        "Observation?_include=*",
        "Observation?_include:iterate=Observation:has-member&_include:iterate=Observation:subject",
        "Patient?_id=A&_revinclude=Observation:subject",
        "Patient/B/Observation",
        "Patient?_has:Observation:patient:code=2093-3",
        "Observation?subject.name=" + CANARY,
        "Observation?subject:Patient.family=" + CANARY,
        "Observation?has-member.value-string=" + CANARY,
    ],
)
def test_az02_to_az04_searches_show_nothing_of_b(world: Services, url: str) -> None:
    r = call(world, CLINICIAN, "GET", url)
    assert r.status in (200, 404), text(r)[:300]
    answer = {k: v for k, v in body(r).items() if k != "link"}  # the links echo the caller's own query
    assert CANARY.encode() not in orjson.dumps(answer)
    if r.status == 200:
        found = body(r)
        assert not any("/b-" in e["fullUrl"] or e["fullUrl"].endswith("Patient/B") for e in found.get("entry", []))
        if "total" in found:
            assert found["total"] == len(
                [e for e in found.get("entry", []) if e["search"]["mode"] == "match"]
            ) or url.endswith("count")


def test_az02_totals_count_only_what_is_in_reach(world: Services) -> None:
    s = world
    assert body(call(s, CLINICIAN, "GET", "Observation?_summary=count"))["total"] == 1  # a-f1
    give_care(s)
    assert body(call(s, CLINICIAN, "GET", "Observation?_summary=count"))["total"] == 3
    assert body(call(s, OPERATOR, "GET", "Observation?_summary=count"))["total"] == 5


def test_az04_chains_and_has_answer_the_same_whether_or_not_b_matches(world: Services) -> None:
    s = world
    give_care(s)
    urls = [
        "Patient?_has:Observation:patient:code=2093-3",
        "Observation?has-member.code=2093-3",
        "Observation?subject:Patient.family=" + CANARY,
    ]
    before = [text(call(s, CLINICIAN, "GET", u)) for u in urls]
    put(s, staff(F2, user="p2"), obs("b-obs-3", "B", code={"system": "http://loinc.org", "code": "2093-3"}))
    put(s, staff(F2, user="p2"), obs("b-obs", "B", code={"system": "http://loinc.org", "code": "2093-3"}))
    after = [text(call(s, CLINICIAN, "GET", u)) for u in urls]
    strip = lambda b: orjson.loads(b).get("entry", [])  # noqa: E731 - ids and totals, not timestamps
    assert [strip(x) for x in before] == [strip(x) for x in after]
    assert all(b"total" not in x or orjson.loads(x).get("total") == 0 for x in after)


def test_az05_type_and_system_history_are_refused_and_instance_history_is_out_of_reach(world: Services) -> None:
    s = world
    assert call(s, CLINICIAN, "GET", "_history").status == 403
    assert call(s, CLINICIAN, "GET", "Observation/_history").status == 403
    assert call(s, CLINICIAN, "GET", "Observation/b-obs/_history").status == 404
    give_care(s)
    # B's Observation moved into A's record: A's carer must not see the versions from B's time
    put(s, staff(F2, user="p2"), obs("b-obs", "A", valueString="moved"))
    history = body(call(s, CLINICIAN, "GET", "Observation/b-obs/_history"))
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2"]
    assert call(s, CLINICIAN, "GET", "Observation/b-obs/_history/1").status == 404


def test_az08_a_facility_cannot_change_what_it_may_not_see_nor_what_another_owns(world: Services) -> None:
    s = world
    assert call(s, CLINICIAN, "PUT", "Observation/b-obs", obs("b-obs", "B")).status == 404
    assert call(s, CLINICIAN, "DELETE", "Observation/b-obs").status == 404
    patch = [{"op": "replace", "path": "/status", "value": "cancelled"}]
    r = handle(
        s,
        FhirRequest(
            "PATCH",
            "Observation/b-obs",
            [],
            {"content-type": "application/json-patch+json"},
            patch,
            "http://x/fhir",
            CLINICIAN,
        ),
    )
    assert r.status == 404
    give_care(s)
    refused = call(s, CLINICIAN, "PUT", "Observation/a-f2", obs("a-f2", "A", valueString="changed by F1"))
    assert refused.status == 403  # visible now, but F2's: a correction is a new resource
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": obs("new-1", "A"), "request": {"method": "PUT", "url": "Observation/new-1"}},
            {"resource": obs("a-f2", "A", valueString="x"), "request": {"method": "PUT", "url": "Observation/a-f2"}},
        ],
    }
    assert call(s, CLINICIAN, "POST", "", bundle).status == 403
    assert call(s, OPERATOR, "GET", "Observation/new-1").status == 404  # all or nothing
    assert body(call(s, OPERATOR, "GET", "Observation/a-f2"))["valueString"] == "at F2"


# ---- provincial and national managers -------------------------------------------------------------


def test_a_provincial_manager_sees_clinical_data_only_as_counts_of_the_province(world: Services) -> None:
    s = world
    assert call(s, P1_MANAGER, "GET", "Observation").status == 403
    assert not visible(s, P1_MANAGER, "Observation/a-f1")
    assert body(call(s, P1_MANAGER, "GET", "Observation?_summary=count"))["total"] == 1  # F1's
    assert body(call(s, P2_MANAGER, "GET", "Observation?_summary=count"))["total"] == 4  # F2's
    assert body(call(s, NATIONAL_MANAGER, "GET", "Observation?_summary=count"))["total"] == 5
    assert call(s, P1_MANAGER, "POST", "Observation", obs("x", "A")).status == 403


def test_a_provincial_manager_keeps_the_registries_of_the_province(world: Services) -> None:
    s = world
    location = {"resourceType": "Location", "id": "loc-f1", "name": "Khoa khám bệnh"}
    put(s, CLINICIAN, location)  # owned by F1, in P1
    put(s, P1_MANAGER, {**location, "name": "Khoa Khám bệnh (sửa)"})
    assert call(s, P2_MANAGER, "PUT", "Location/loc-f1", {**location, "name": "P2"}).status == 403
    device = {
        "resourceType": "Device",
        "id": "dev-f2",
        "deviceName": [{"name": "X-quang", "type": "user-friendly-name"}],
    }
    put(s, F2_CLINICIAN, device)
    assert visible(s, P2_MANAGER, "Device/dev-f2") and not visible(s, P1_MANAGER, "Device/dev-f2")
    assert visible(s, NATIONAL_MANAGER, "Device/dev-f2")
    created = call(s, P1_MANAGER, "POST", "Location", {"resourceType": "Location", "name": "Trạm y tế mới"})
    assert created.status == 201


def test_a_facility_reads_the_history_of_its_own_deleted_resource(world: Services) -> None:
    s = world
    put(s, CLINICIAN, obs("mine", "A", valueString="v1"))
    put(s, CLINICIAN, obs("mine", "A", valueString="v2"))
    assert call(s, CLINICIAN, "DELETE", "Observation/mine").status in (200, 204)
    history = body(call(s, CLINICIAN, "GET", "Observation/mine/_history"))
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "PUT"]
    assert call(s, CLINICIAN, "GET", "Observation/mine/_history/1").status == 200
    assert call(s, CLINICIAN, "GET", "Observation/mine").status == 410
    assert call(s, F2_CLINICIAN, "GET", "Observation/mine/_history/1").status == 404


RULES = {
    "none": [],
    "deny-f1": [consent("c1", "A", "deny", actor=F1)],
    "deny-all-but-f1": [
        {
            **consent("c1", "A", "deny"),
            "provision": {
                "type": "deny",
                "provision": [{"type": "permit", "actor": consent("x", "A", "permit", actor=F1)["provision"]["actor"]}],
            },
        }
    ],
    "deny-hiv": [consent("c1", "A", "deny", code=[{"coding": [HIV]}])],
    "deny-hiv-but-f1": [
        consent("c1", "A", "deny", code=[{"coding": [HIV]}]),
        consent("c2", "A", "permit", actor=F1, code=[{"coding": [HIV]}]),
    ],
    "deny-psy-f1": [consent("c1", "A", "deny", actor=F1, securityLabel=[PSY])],
    "deny-conditions": [
        consent("c1", "A", "deny", **{"class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}]})
    ],
    "permit-f1-no-care": [consent("c1", "A", "permit", actor=F1)],
    "withdrawn": [consent("c1", "A", "deny", actor=F1, status="inactive")],
    "deny-f1-now": [consent("c1", "A", "deny", actor=F1, period=period(-1, 1))],
    "deny-f1-expired": [consent("c1", "A", "deny", actor=F1, period=period(-9, -1))],
    "deny-f1-future": [consent("c1", "A", "deny", actor=F1, period={"start": "2999-01-01"})],
    "deny-all-but-f1-expired": [
        {
            **consent("c1", "A", "deny"),
            "provision": {
                "type": "deny",
                "provision": [
                    {"type": "permit", "period": period(-9, -1), **consent("x", "A", "permit", actor=F1)["provision"]}
                ],
            },
        }
    ],
    "deny-f1-research": [consent("c1", "A", "deny", actor=F1, purpose=[RESEARCH])],
    "deny-f1-treatment": [consent("c1", "A", "deny", actor=F1, purpose=[RESEARCH, TREATMENT])],
    "deny-instance": [consent("c1", "A", "deny", data=[data("instance", "Observation/a-f2")])],
    "deny-dependents": [
        obs("a-visit-obs", "A", encounter={"reference": "Encounter/a-visit"}),
        {**encounter("a-visit", "A", time.time() - DAY), "id": "a-visit"},
        consent("c1", "A", "deny", data=[data("dependents", "Encounter/a-visit")]),
    ],
    "deny-authored-by-f2": [consent("c1", "A", "deny", data=[data("authoredby", F2)])],
    "deny-authored-by-a-person": [consent("c1", "A", "deny", data=[data("authoredby", "Practitioner/dr")])],
    "permit-f1-authored-by-a-person": [
        consent("c1", "A", "permit", actor=F1, data=[data("authoredby", "Practitioner/dr")])
    ],
}


@pytest.mark.parametrize("rules", sorted(RULES))
def test_reads_pinned_searches_and_searches_across_patients_agree(world: Services, rules: str) -> None:
    """One rule, three evaluations: a read decides in Python (interactions.reach.in_reach), a search
    naming the patient uses the fast path (no criterion, or Withheld), a search across patients the
    whole rule in SQL (search.reach). They must show exactly the same resources."""
    s = world
    if rules != "permit-f1-no-care":
        give_care(s)
    for rule in RULES[rules]:
        put(s, OPERATOR, rule)
    everything = ids_of(call(s, OPERATOR, "GET", "Observation?_count=100")) | ids_of(
        call(s, OPERATOR, "GET", "Condition?_count=100")
    )
    everything |= {"Patient/A", "Patient/B"}
    by_read = {ref for ref in everything if visible(s, CLINICIAN, ref)}
    across = set()
    for rtype in ("Observation", "Condition", "Patient"):
        across |= ids_of(call(s, CLINICIAN, "GET", f"{rtype}?_count=100"))
    pinned = {"Patient/A"} & by_read
    for rtype in ("Observation", "Condition"):
        pinned |= ids_of(call(s, CLINICIAN, "GET", f"{rtype}?subject=Patient/A&_count=100"))
        pinned |= ids_of(call(s, CLINICIAN, "GET", f"{rtype}?subject=Patient/B&_count=100"))
    pinned |= {"Patient/B"} & by_read
    assert by_read == across == pinned, (rules, by_read, across, pinned)
    assert "Observation/a-f1" in by_read  # F1's own, whatever the rules


def test_patient_facts_say_what_decides_and_postgresqls_function_says_the_same(world: Services) -> None:
    """``search.reach.patient_facts`` gives the care, Consent and break-the-glass facts of one
    patient; on PostgreSQL ``ketnoi_patient_facts`` (migrations 12 and 13, a cached plan) is a copy
    of it frozen in a migration, and must give the same rows whatever the data."""
    from ketnoi.search.reach import patient_facts, patient_facts_call
    from ketnoi.sql import SqlQuery

    s = world
    give_care(s)
    give_care(s, "B", ended=40, days_ago=50)
    put(s, OPERATOR, consent("c1", "A", "deny", code=[{"coding": [HIV]}]))
    put(s, OPERATOR, consent("c2", "B", "permit", actor=F1))
    put(s, OPERATOR, consent("c3", "B", "deny", actor=F1, period={"start": "2020-01-01", "end": "2020-12-31"}))
    put(s, OPERATOR, {**encounter("void", "A", time.time(), status="cancelled"), "serviceProvider": {"reference": F1}})
    assert _glass(s, CLINICIAN, "B").status == 200
    now, cutoff = time.time(), time.time() - 30 * DAY

    def rows(query: Any) -> list[tuple[str, ...]]:
        with s.store.session(write=False) as session:
            found = session.query(SqlQuery(query.text, query.params))
        return sorted(tuple("" if v is None else str(v) for v in r) for r in found)

    # C: only a cancelled Encounter naming F1; D: a loaded one (no owner) naming F1; E: F2's own.
    put(
        s, OPERATOR, {**encounter("void-c", "C", time.time(), status="cancelled"), "serviceProvider": {"reference": F1}}
    )
    put(s, OPERATOR, {**encounter("named-d", "D", time.time() - DAY), "serviceProvider": {"reference": F1}})
    give_care(s, "E", by=F2_CLINICIAN)
    care = ("care", F1, "live", "names")  # one row when a relation exists, whichever Encounter makes it

    facts_a = rows(patient_facts("A", "F1", cutoff, "glass:p1", now))
    assert care in facts_a  # F1's own Encounter, recent (the cancelled one beside it changes nothing)
    assert ("~consent-deny", "*", "http://snomed.info/sct|86406008", "") in facts_a
    facts_b = rows(patient_facts("B", "F1", cutoff, "glass:p1", now))
    assert not [f for f in facts_b if f[0] == "care"]  # ended 40 days ago: no care relation
    assert ("glass", "B", "", "") in facts_b and ("~consent-permit", F1, "*", "") in facts_b
    assert ("~consent-deny", F1, "*", "001577836800/001609459200") in facts_b  # its period, as text
    assert ("glass", "B", "", "") not in rows(patient_facts("B", "F1", cutoff, None, now))
    assert rows(patient_facts("C", "F1", cutoff, None, now)) == []  # cancelled: no relation
    assert rows(patient_facts("D", "F1", cutoff, None, now)) == [care]  # loaded, names F1
    assert rows(patient_facts("E", "F1", cutoff, None, now)) == []  # another facility's
    if s.store.dialect == "postgresql":
        for patient in ("A", "B", "C", "D", "E", "nobody"):
            for glass in ("glass:p1", None):
                args = (patient, "F1", cutoff, glass, now)
                assert rows(patient_facts(*args)) == rows(patient_facts_call(*args)), (patient, glass)


def test_an_admission_in_a_transaction_opens_the_record_to_the_entries_after_it(world: Services) -> None:
    """One transaction: a conditional create that searches A's record (A not yet open: nothing
    found), the Encounter that admits A at F1, then a read of A's data held by F2. What the
    request learnt of A's openness before the admission must not outlive it."""
    s = world
    now = time.time()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": obs("x", "A", code={"system": "http://loinc.org", "code": "29463-7"}),
                "request": {"method": "POST", "url": "Observation", "ifNoneExist": "patient=A&code=29463-7"},
            },
            {"resource": encounter("admit", "A", now), "request": {"method": "PUT", "url": "Encounter/admit"}},
            {"request": {"method": "GET", "url": "Observation/a-f2"}},
        ],
    }
    r = call(s, CLINICIAN, "POST", "", bundle)
    assert r.status == 200, text(r)[:400]
    statuses = [e["response"]["status"] for e in body(r)["entry"]]
    assert statuses[2].startswith("200"), statuses


def test_a_search_of_every_type_shows_a_facility_only_its_own_and_several_types_are_refused(world: Services) -> None:
    s = world
    give_care(s)
    assert ids_of(call(s, CLINICIAN, "GET", "?_id=a-f1,a-f2,b-obs")) == {"Observation/a-f1"}
    assert call(s, CLINICIAN, "GET", "?_type=Observation,Condition").status == 403
