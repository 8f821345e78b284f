"""$export (Bulk Data Access): kick-off, status, files, cancel, resume, and the access policy, on both
backends (ketnoi/operations/bulk_export.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import orjson
import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.fhir import resource as res
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.jobs import Job, JobRunner
from ketnoi.operations import bulk_export
from ketnoi.store.base import Session

OPERATOR = RequestContext.operator("test")
ASYNC = {"prefer": "respond-async", "accept": "application/fhir+json"}
HR = {"system": "http://loinc.org", "code": "8867-4"}
BP = {"system": "http://loinc.org", "code": "85354-9"}


def call(s: Services, ctx: RequestContext, method: str, url: str, body: Any = None, **headers: str) -> FhirResponse:
    path, _, qs = url.partition("?")
    hdrs = {"content-type": "application/fhir+json", **headers}
    return handle(s, FhirRequest(method, path, parse_qsl(qs, keep_blank_values=True), hdrs, body, "http://x/fhir", ctx))


def put(s: Services, resource: dict[str, Any], ctx: RequestContext = OPERATOR) -> None:
    r = call(s, ctx, "PUT", f"{resource['resourceType']}/{resource['id']}", resource)
    assert r.status in (200, 201), r.resource


def obs(id: str, subject: str, code: dict[str, str] = HR) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [code]},
        "subject": {"reference": subject},
    }


@pytest.fixture
def world(fresh_services: Services, tmp_path: Path) -> Iterator[Services]:
    s = fresh_services
    s.settings = s.settings.with_(export_dir=str(tmp_path / "export"))
    put(s, {"resourceType": "Organization", "id": "org-1", "name": "Bệnh viện 1"})
    for p in ("p1", "p2", "p3"):
        put(s, {"resourceType": "Patient", "id": p, "name": [{"family": "Nguyễn", "given": [p]}]})
    put(s, obs("o1", "Patient/p1"))
    put(s, obs("o2", "Patient/p2", BP))
    put(s, obs("o3", "Patient/p3"))
    put(s, {**obs("o-group", "Group/g1"), "subject": {"reference": "Group/g1"}})  # about a group, nobody's
    put(
        s,
        {
            "resourceType": "Group",
            "id": "g1",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}],
        },
    )
    yield s


def kickoff(s: Services, url: str, ctx: RequestContext = OPERATOR, **headers: str) -> str:
    r = call(s, ctx, "GET", url, **(headers or ASYNC))
    assert r.status == 202, r.resource
    location = r.headers["Content-Location"]
    assert "$export-status?job=" in location
    return location.split("/fhir/", 1)[1]


def finish(s: Services, status_url: str, ctx: RequestContext = OPERATOR) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = call(s, ctx, "GET", status_url)
        if r.status != 202:
            assert r.status == 200, r.resource
            assert r.resource is not None
            return r.resource
        assert "X-Progress" in r.headers and r.headers["Retry-After"]
        assert time.monotonic() < deadline, "export did not finish"
        time.sleep(0.05)


def files(
    s: Services, manifest: dict[str, Any], ctx: RequestContext = OPERATOR, *, errors: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """The manifest's files, downloaded: type -> resources, in file order; with ``errors`` the error
    files too (under "error"), else the manifest must have none."""
    out: dict[str, list[dict[str, Any]]] = {}
    assert manifest["requiresAccessToken"] is True and (errors or manifest["error"] == [])
    for item in manifest["output"] + manifest["error"]:
        parts = urlsplit(item["url"])
        r = call(s, ctx, "GET", parts.path.split("/fhir/", 1)[1] + "?" + parts.query)
        assert r.status == 200 and r.headers["Content-Type"] == "application/fhir+ndjson"
        lines = [orjson.loads(line) for line in body(r).splitlines()]
        assert len(lines) == item["count"] and {x["resourceType"] for x in lines} == {item["type"]}
        out.setdefault("error" if item in manifest["error"] else item["type"], []).extend(lines)  # parts in order
    return out


def body(r: FhirResponse) -> bytes:
    """A streamed answer's bytes (an export file is never held whole: FhirResponse.stream)."""
    assert r.raw is None and r.stream is not None
    return b"".join(r.stream)


def ids(found: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {f"{r['resourceType']}/{r['id']}" for rows in found.values() for r in rows}


def test_a_system_export_writes_every_resource_once_by_type(world: Services) -> None:
    manifest = finish(world, kickoff(world, "$export"))
    found = files(world, manifest)
    assert ids(found) == {
        "Organization/org-1", "Patient/p1", "Patient/p2", "Patient/p3", "Observation/o1", "Observation/o2",
        "Observation/o3", "Observation/o-group", "Group/g1",
    }  # fmt: skip
    assert manifest["request"] == "http://x/fhir/$export"
    p1 = next(r for r in found["Patient"] if r["id"] == "p1")
    assert p1["name"][0]["family"] == "Nguyễn" and p1["meta"]["versionId"] == "1"


def test_type_since_and_type_filter_narrow_the_export(world: Services) -> None:
    only = files(world, finish(world, kickoff(world, "$export?_type=Observation,Patient")))
    assert set(only) == {"Observation", "Patient"}
    filtered = files(
        world, finish(world, kickoff(world, "$export?_type=Observation&_typeFilter=Observation%3Fcode%3D85354-9"))
    )
    assert ids(filtered) == {"Observation/o2"}
    time.sleep(0.01)
    since = res.instant(time.time())
    put(world, obs("o-late", "Patient/p1"))
    later = files(world, finish(world, kickoff(world, f"$export?_since={quote(since)}")))
    assert ids(later) == {"Observation/o-late"}
    by_post = call(
        world,
        OPERATOR,
        "POST",
        "$export",
        {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Group"}]},
        **ASYNC,
    )
    assert by_post.status == 202
    assert ids(files(world, finish(world, by_post.headers["Content-Location"].split("/fhir/", 1)[1]))) == {"Group/g1"}


def test_elements_keep_the_named_elements_and_what_is_mandatory_tagged_subsetted(world: Services) -> None:
    found = files(
        world, finish(world, kickoff(world, "$export?_type=Observation,Patient&_elements=Patient.gender,code"))
    )
    o1 = next(r for r in found["Observation"] if r["id"] == "o1")
    assert set(o1) == {"resourceType", "id", "meta", "status", "code"}  # status: mandatory; subject dropped
    p1 = next(r for r in found["Patient"] if r["id"] == "p1")
    assert "name" not in p1 and {"code": "SUBSETTED"}.items() <= p1["meta"]["tag"][-1].items()


def test_patient_and_group_exports_hold_only_patients_compartments(world: Services) -> None:
    patients = files(world, finish(world, kickoff(world, "Patient/$export")))
    assert "Observation/o-group" not in ids(patients) and "Organization/org-1" not in ids(patients)
    assert {"Observation/o1", "Observation/o2", "Observation/o3", "Patient/p3"} <= ids(patients)
    group = files(world, finish(world, kickoff(world, "Group/g1/$export")))
    # the members' compartments only (the Group itself is in them: its member is a compartment link)
    assert ids(group) == {"Patient/p1", "Patient/p2", "Observation/o1", "Observation/o2", "Group/g1"}


@pytest.mark.parametrize(
    ("url", "headers", "status", "needle"),
    [
        ("$export", {}, 400, "Prefer: respond-async"),
        ("$export?_type=Nonsense", ASYNC, 400, "Nonsense"),
        ("$export?_since=yesterday", ASYNC, 400, "_since"),
        ("$export?_since=2999-01-01T00:00:00Z", ASYNC, 400, "future"),
        ("$export?_outputFormat=text/csv", ASYNC, 400, "_outputFormat"),
        ("$export?includeAssociatedData=LatestProvenanceResources", ASYNC, 400, "includeAssociatedData"),
        ("$export?_type=Observation&_typeFilter=Observation%3Fnonsense%3D1", ASYNC, 400, "nonsense"),
        ("$export?_type=Patient&_typeFilter=Observation%3Fcode%3D1", ASYNC, 400, "_typeFilter"),
        ("Group/missing/$export", ASYNC, 404, "missing"),
        ("Patient/p1/$export", ASYNC, 400, "Group/[id]/$export"),
        ("$export-status?job=999", {}, 404, "999"),
        ("$export-status", {}, 400, "job"),
    ],
)
def test_bad_kickoffs_are_answered_and_start_nothing(
    world: Services, url: str, headers: dict[str, str], status: int, needle: str
) -> None:
    r = call(world, OPERATOR, "GET", url, **headers)
    assert r.status == status, r.resource
    assert needle in orjson.dumps(r.resource).decode()
    with world.store.session(write=False) as session:
        assert session.jobs(bulk_export.KIND, ("queued", "running", "done")) == []


def test_cancel_removes_the_job_and_its_files(world: Services) -> None:
    status_url = kickoff(world, "$export")
    manifest = finish(world, status_url)
    assert manifest["output"]
    job = status_url.split("job=")[1]
    folder = Path(world.settings.export_dir) / job
    assert folder.is_dir()
    assert call(world, OPERATOR, "DELETE", status_url).status == 202
    assert not folder.exists()
    assert call(world, OPERATOR, "GET", status_url).status == 404


def test_a_finished_export_expires_with_its_files(world: Services) -> None:
    status_url = kickoff(world, "$export?_type=Patient")
    manifest = finish(world, status_url)
    folder = Path(world.settings.export_dir) / status_url.split("job=")[1]
    assert folder.is_dir() and files(world, manifest)
    world.settings = world.settings.with_(export_keep_hours=0)
    time.sleep(0.01)
    assert call(world, OPERATOR, "GET", status_url).status == 404
    assert not folder.exists()
    world.settings = world.settings.with_(export_keep_hours=24)
    assert call(world, OPERATOR, "GET", status_url).status == 404  # gone for good, not back when kept longer


def test_a_type_s_output_is_split_into_parts_that_the_manifest_lists(world: Services) -> None:
    """Parts of at most ``export_part_resources`` resources (ADR 0024, decision 13): each listed with its
    own count and served alone; a name the manifest does not list is 404, whatever its spelling."""
    world.settings = world.settings.with_(export_part_resources=2)
    status_url = kickoff(world, "$export?_type=Observation,Patient")
    manifest = finish(world, status_url)
    job = status_url.split("job=")[1]
    listed = [(o["type"], o["url"].rsplit("file=", 1)[1], o["count"]) for o in manifest["output"]]
    assert listed == [
        ("Observation", "Observation.ndjson", 2), ("Observation", "Observation-2.ndjson", 2),
        ("Patient", "Patient.ndjson", 2), ("Patient", "Patient-2.ndjson", 1),
    ]  # fmt: skip
    found = files(world, manifest)
    assert ids(found) == {"Observation/o1", "Observation/o2", "Observation/o3", "Observation/o-group",
                          "Patient/p1", "Patient/p2", "Patient/p3"}  # fmt: skip
    assert sum(len(v) for v in found.values()) == 7  # each once across the parts
    for name in ("Observation-3.ndjson", "Observation-1.ndjson", "Observation-02.ndjson", "Patient-2.json"):
        assert call(world, OPERATOR, "GET", f"$export-file?job={job}&file={name}").status == 404, name


def test_an_interrupted_export_resumes_across_parts_with_every_resource_once(world: Services) -> None:
    """Parts of 3, pages of 2: a step that dies after beginning a new part is redone from the part's
    start (the file a dead step began is cut), and every part holds exactly what its record says."""
    world.settings = world.settings.with_(export_part_resources=3)
    for n in range(7):
        put(world, obs(f"x{n}", "Patient/p1"))
    inner = bulk_export.export_step(world, page=2, pages=1)
    deaths = {"left": 3}

    def step(session: Session, job: Job) -> bool:
        done = inner(session, job)
        if deaths["left"] and job.progress["files"].get("Observation", {}).get("parts"):
            deaths["left"] -= 1
            raise RuntimeError("killed between the file write and the commit")
        return done

    runner = JobRunner(world.store, lease_s=0.1, worker="t", retries=5)
    runner.register(bulk_export.KIND, step)
    params = {"request": "r", "level": "system", "types": ["Observation"], "since": None, "filters": {},
              "members": [], "base_url": "http://x/fhir"}  # fmt: skip
    job = runner.submit(bulk_export.KIND, params, {"index": 0, "after": None, "files": {}}, owner=OPERATOR.to_json())
    finished = runner.run(job.id)
    assert finished is not None and finished.state == "done" and deaths["left"] == 0
    folder = Path(world.settings.export_dir) / str(job.id)
    record = finished.progress["files"]["Observation"]
    assert record["count"] == 11 and [c for c, _ in record["parts"]] == [3, 3, 3]
    keys: list[str] = []
    for number, (count, length) in enumerate([*record["parts"], [2, record["bytes"]]], 1):
        data = (folder / ("Observation.ndjson" if number == 1 else f"Observation-{number}.ndjson")).read_bytes()
        assert len(data) == length and data.count(b"\n") == count
        keys += [orjson.loads(line)["id"] for line in data.splitlines()]
    assert sorted(keys) == sorted({"o1", "o2", "o3", "o-group", *(f"x{n}" for n in range(7))})


@pytest.mark.parametrize("pages", [1, 3])
def test_an_interrupted_export_resumes_with_every_resource_exactly_once(world: Services, pages: int) -> None:
    """Pages of 2, one or three a step; a step dies after writing its pages to the file but before its
    progress commits (twice): the next run cuts the file back and writes them again, so nothing is lost
    or doubled."""
    inner = bulk_export.export_step(world, page=2 if pages == 1 else 1, pages=pages)
    deaths = {"left": 2}

    def step(session: Session, job: Job) -> bool:
        done = inner(session, job)
        if deaths["left"] and (job.progress.get("after") or (job.progress.get("scan") or {}).get("after")):
            deaths["left"] -= 1
            raise RuntimeError("killed between the file write and the commit")
        return done

    runner = JobRunner(world.store, lease_s=0.1, worker="t", retries=5)
    runner.register(bulk_export.KIND, step)
    job = runner.submit(
        bulk_export.KIND,
        {
            "request": "r",
            "level": "system",
            "types": ["Observation", "Patient"],
            "since": None,
            "filters": {},
            "members": [],
            "base_url": "http://x/fhir",
        },
        {"index": 0, "after": None, "files": {}},
        owner=OPERATOR.to_json(),
    )
    finished = runner.run(job.id)
    assert finished is not None and finished.state == "done" and deaths["left"] == 0
    folder = Path(world.settings.export_dir) / str(job.id)
    lines = [
        orjson.loads(x)
        for name in ("Observation", "Patient")
        for x in (folder / f"{name}.ndjson").read_bytes().splitlines()
    ]
    keys = [f"{r['resourceType']}/{r['id']}" for r in lines]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 7  # 4 Observations, 3 Patients, once each
    for name, count in (("Observation", 4), ("Patient", 3)):  # a page is written whole: one line per resource
        data = (folder / f"{name}.ndjson").read_bytes()
        assert data.endswith(b"\n") and b"\n\n" not in data and data.count(b"\n") == count
        assert finished.progress["files"][name] == {"count": count, "bytes": len(data)}


def test_a_facility_exports_what_it_may_see_and_nobody_else_reads_its_files(world: Services) -> None:
    s = world
    f1 = RequestContext(
        authenticated=True, client_id="his-f1", scopes=parse_scopes("system/*.rs"), organization="Organization/F1"
    )
    put(s, {"resourceType": "Organization", "id": "F1", "name": "F1"})
    writer = RequestContext(
        authenticated=True, client_id="his-f1-w", scopes=parse_scopes("system/*.cruds"), organization="Organization/F1"
    )
    put(s, obs("f1-own", "Patient/p3"), writer)  # F1 wrote it
    status_url = kickoff(s, "$export?_type=Observation,Patient", f1)
    found = files(s, finish(s, status_url, f1), f1)
    assert ids(found) == {"Observation/f1-own"}  # no care relation with anyone: its own data only
    other = RequestContext(
        authenticated=True, client_id="his-f2", scopes=parse_scopes("system/*.rs"), organization="Organization/F2"
    )
    assert call(s, other, "GET", status_url).status == 404  # another caller's job is not found
    narrow = RequestContext(authenticated=True, client_id="his-f3", scopes=parse_scopes("system/Patient.rs"))
    assert call(s, narrow, "GET", "$export?_type=Observation", **ASYNC).status == 403
    only_patients = files(s, finish(s, kickoff(s, "$export", narrow), narrow), narrow)
    assert set(only_patients) == {"Patient"}


def test_a_province_exports_its_registries_only(world: Services) -> None:
    s = world
    manager = RequestContext(
        authenticated=True,
        user="m1",
        scopes=parse_scopes("user/*.cruds"),
        organization="Organization/P1",
        roles=frozenset({"provincial"}),
    )
    put(s, {"resourceType": "Organization", "id": "P1", "name": "Sở Y tế P1"})
    put(
        s, {"resourceType": "Organization", "id": "station", "name": "Trạm", "partOf": {"reference": "Organization/P1"}}
    )
    for refused in ("Patient/$export", "$export?_type=Observation", "Group/g1/$export"):
        assert call(s, manager, "GET", refused, **ASYNC).status in (403, 404), refused
    registries = files(s, finish(s, kickoff(s, "$export", manager), manager), manager)
    assert set(registries) <= {"Organization", "Location", "Practitioner", "PractitionerRole", "HealthcareService",
                               "Device", "Medication", "Endpoint", "Substance"}  # fmt: skip
    assert "Organization/station" in ids(registries)


def test_az07_a_group_export_holds_no_other_group_and_a_patient_token_exports_nothing(world: Services) -> None:
    """THREATS.md AZ-07 (HAPI #3700: a Group's export also exported another Group sharing a member, the
    Group being in its members' compartment): only the asked Group and its own members' data; a patient
    token may not start a bulk export at any level (403)."""
    s = world
    put(
        s,
        {
            "resourceType": "Group",
            "id": "g2",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p3"}}],
        },
    )
    found = ids(files(s, finish(s, kickoff(s, "Group/g1/$export"))))
    assert "Group/g2" not in found and "Patient/p3" not in found and "Observation/o3" not in found
    assert "Group/g1" in found
    p1 = RequestContext(
        authenticated=True, user="p1", scopes=parse_scopes("patient/*.rs"), patient="p1", roles=frozenset({"patient"})
    )
    for url in ("$export", "Patient/$export", "Group/g1/$export"):
        assert call(s, p1, "GET", url, **ASYNC).status == 403, url


def test_files_that_do_not_exist_are_answered_with_an_outcome(world: Services) -> None:
    status_url = kickoff(world, "$export?_type=Patient")
    job = status_url.split("job=")[1]
    finish(world, status_url)
    for name in ("Observation.ndjson", "Patient.json", "../Patient.ndjson", ""):
        r = call(world, OPERATOR, "GET", f"$export-file?job={job}&file={name}")
        assert r.status == 404 and r.resource is not None and r.resource["resourceType"] == "OperationOutcome", name


def test_a_failed_export_is_answered_with_its_error(world: Services) -> None:
    runner = JobRunner(world.store, retries=1, worker="t")  # the server's own runner is never started here
    runner.register(bulk_export.KIND, bulk_export.export_step(world))
    job = runner.submit(
        bulk_export.KIND,
        {
            "request": "r",
            "level": "system",
            "types": ["Patient"],
            "since": None,
            "filters": {"Patient": "nonsense=1"},
            "members": [],
            "base_url": "http://x/fhir",
        },
        {"index": 0, "after": None, "files": {}},
        owner=OPERATOR.to_json(),
    )
    ended = runner.run(job.id)
    assert ended is not None and ended.state == "failed"
    r = call(world, OPERATOR, "GET", f"$export-status?job={job.id}")
    assert r.status == 500 and r.resource is not None and r.resource["resourceType"] == "OperationOutcome"
    assert f"Export job {job.id} failed" in r.resource["issue"][0]["diagnostics"]


def post_kickoff(
    s: Services, url: str, parameters: list[dict[str, Any]], ctx: RequestContext = OPERATOR
) -> FhirResponse:
    return call(s, ctx, "POST", url, {"resourceType": "Parameters", "parameter": parameters}, **ASYNC)


def patient_ref(*ids: str) -> list[dict[str, Any]]:
    return [{"name": "patient", "valueReference": {"reference": f"Patient/{i}"}} for i in ids]


def test_the_patient_parameter_limits_patient_and_group_exports_to_those_patients(world: Services) -> None:
    s = world
    r = post_kickoff(s, "Patient/$export", patient_ref("p1", "p3"))
    assert r.status == 202, r.resource
    found = ids(files(s, finish(s, r.headers["Content-Location"].split("/fhir/", 1)[1])))
    assert found == {"Patient/p1", "Patient/p3", "Observation/o1", "Observation/o3", "Group/g1"}
    # a Group export: the asked patients that are members (p3 is not one of g1's: nothing of p3)
    r = post_kickoff(s, "Group/g1/$export", [*patient_ref("p1", "p3"), {"name": "_type", "valueString": "Patient"}])
    assert ids(files(s, finish(s, r.headers["Content-Location"].split("/fhir/", 1)[1]))) == {"Patient/p1"}
    # in the query string too, as Patient/[id] or under this server's base; a patient nobody has: nothing
    url = "Patient/$export?_type=Patient,Observation&patient=http://x/fhir/Patient/p2&patient=Patient/nobody"
    assert ids(files(s, finish(s, kickoff(s, url)))) == {"Patient/p2", "Observation/o2"}


def test_the_patient_parameter_exports_nothing_of_a_patient_the_caller_may_not_see(world: Services) -> None:
    s = world
    f1 = RequestContext(
        authenticated=True, client_id="his-f1", scopes=parse_scopes("system/*.rs"), organization="Organization/F1"
    )
    r = post_kickoff(s, "Patient/$export", patient_ref("p1"), f1)
    assert r.status == 202, r.resource
    assert files(s, finish(s, r.headers["Content-Location"].split("/fhir/", 1)[1], f1), f1) == {}


@pytest.mark.parametrize(
    ("url", "parameters", "needle"),
    [
        ("$export", patient_ref("p1"), "not a system-level export"),
        ("Patient/$export", [{"name": "patient", "valueReference": {"reference": "Observation/o1"}}], "Patient/[id]"),
        ("Patient/$export", [{"name": "patient", "valueReference": {"reference": "Patient/"}}], "Patient/[id]"),
        ("Group/g1/$export", [{"name": "patient", "valueReference": {"display": "An"}}], "no value"),
        ("Patient/$export", [{"name": "patient", "valueReference": {"reference": "Patient/a b"}}], "Patient/[id]"),
        ("$export", [{"name": "_since", "valueInstant": f"202{i}-01-01"} for i in (0, 1)], "_since once"),
    ],
)  # fmt: skip
def test_a_malformed_patient_parameter_is_a_400_that_starts_nothing(
    world: Services, url: str, parameters: list[dict[str, Any]], needle: str
) -> None:
    r = post_kickoff(world, url, parameters)
    assert r.status == 400 and needle in orjson.dumps(r.resource).decode(), r.resource
    assert r.resource is not None and "/" in r.resource["issue"][0]["diagnostics"]  # English / Vietnamese
    with world.store.session(write=False) as session:
        assert session.jobs(bulk_export.KIND, ("queued", "running", "done")) == []


def test_several_type_filters_for_one_type_export_their_union_each_resource_once(world: Services) -> None:
    s = world
    heart, of_p1 = quote("Observation?code=8867-4"), quote("Observation?subject=Patient/p1")
    both = files(s, finish(s, kickoff(s, f"$export?_type=Observation&_typeFilter={heart}&_typeFilter={of_p1}")))
    assert [r["id"] for r in both["Observation"]].count("o1") == 1  # o1 matches both
    assert ids(both) == {"Observation/o1", "Observation/o3", "Observation/o-group"}
    # one comma-separated value; a comma inside a query is that query's own list of values
    listed = quote("Observation?subject=Patient/p2,Observation?code=8867-4,85354-9&subject=Patient/p3")
    found = files(s, finish(s, kickoff(s, f"$export?_type=Observation,Patient&_typeFilter={listed}")))
    assert ids(found) == {"Observation/o2", "Observation/o3", "Patient/p1", "Patient/p2", "Patient/p3"}


def test_type_filter_union_holds_across_pages(world: Services) -> None:
    """Pages of 2 over 4 Observations, the page's key advanced past rows no filter keeps."""
    runner = JobRunner(world.store, lease_s=0.1, worker="t", retries=5)
    runner.register(bulk_export.KIND, bulk_export.export_step(world, page=2, pages=1))
    params = {
        "request": "r", "level": "system", "types": ["Observation"], "since": None, "members": [],
        "filters": {"Observation": ["subject=Patient/p3", "code=85354-9", "subject=Patient/p3&code=8867-4"]},
        "base_url": "http://x/fhir",
    }  # fmt: skip
    job = runner.submit(bulk_export.KIND, params, {"index": 0, "after": None, "files": {}}, owner=OPERATOR.to_json())
    finished = runner.run(job.id)
    assert finished is not None and finished.state == "done", finished
    lines = (Path(world.settings.export_dir) / str(job.id) / "Observation.ndjson").read_bytes().splitlines()
    assert sorted(orjson.loads(x)["id"] for x in lines) == ["o2", "o3"]


def test_lenient_handling_ignores_what_is_not_supported_and_says_so(world: Services) -> None:
    s = world
    unknown = quote("Patient?status=active")  # Patient has no "status" search parameter
    assert call(s, OPERATOR, "GET", f"$export?_typeFilter={unknown}", **ASYNC).status == 400
    lenient = {**ASYNC, "prefer": "respond-async, handling=lenient"}
    patients = files(s, finish(s, kickoff(s, f"$export?_type=Patient&_typeFilter={unknown}", **lenient)), errors=True)
    # What lenient handling ignored is in the export's error file too, for a client reading the manifest.
    error = patients.pop("error")
    assert [e["issue"][0]["severity"] for e in error] == ["warning"]
    assert (
        "status" in error[0]["issue"][0]["diagnostics"]
        and "Patient?status=active" in error[0]["issue"][0]["diagnostics"]
    )
    assert ids(patients) == {"Patient/p1", "Patient/p2", "Patient/p3"}
    r = call(s, OPERATOR, "GET", "$export?_type=Patient&includeAssociatedData=LatestProvenanceResources", **lenient)
    assert r.status == 202 and r.resource is not None
    warning = r.resource["issue"][1]
    assert warning["severity"] == "warning" and "includeAssociatedData" in warning["diagnostics"]
    assert "supported values: none" in warning["diagnostics"]


def test_the_kickoff_needs_accept_fhir_json(world: Services) -> None:
    for accept in (None, "text/html"):
        headers = {"prefer": "respond-async", **({"accept": accept} if accept else {})}
        r = call(world, OPERATOR, "GET", "$export", **headers)
        assert r.status == 400 and "Accept: application/fhir+json" in orjson.dumps(r.resource).decode()
    assert call(world, OPERATOR, "GET", "$export", prefer="respond-async", accept="*/*").status == 202
