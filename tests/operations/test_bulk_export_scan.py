"""$export's read in storage order (ADR 0024, decision 12), on both backends: the export is the
database as of its mark, each current resource once whatever is created, updated or deleted between
steps, across restarts, with ``_since`` and ``_type``; and which exports take that path."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.jobs import Job, JobRunner
from ketnoi.operations import bulk_export
from ketnoi.operations import bulk_export_scan as scan
from ketnoi.operations.reindex import runner_of
from ketnoi.store.base import Session

OPERATOR = RequestContext.operator("test")
ASYNC = {"prefer": "respond-async", "accept": "application/fhir+json"}
TYPES = sorted(resource_types())  # a system-level export of every type


def call(s: Services, ctx: RequestContext, method: str, url: str, body: Any = None, **headers: str) -> FhirResponse:
    path, _, qs = url.partition("?")
    hdrs = {"content-type": "application/fhir+json", **headers}
    return handle(s, FhirRequest(method, path, parse_qsl(qs, keep_blank_values=True), hdrs, body, "http://x/fhir", ctx))


def put(s: Services, resource: dict[str, Any]) -> None:
    r = call(s, OPERATOR, "PUT", f"{resource['resourceType']}/{resource['id']}", resource)
    assert r.status in (200, 201), r.resource


def delete(s: Services, key: str) -> None:
    assert call(s, OPERATOR, "DELETE", key).status in (200, 204)


def patient(id: str, family: str = "Nguyễn") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": id, "name": [{"family": family}]}


def obs(id: str, subject: str, status: str = "final") -> dict[str, Any]:
    code = {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}
    return {"resourceType": "Observation", "id": id, "status": status, "code": code, "subject": {"reference": subject}}


@pytest.fixture
def world(fresh_services: Services, tmp_path: Path) -> Iterator[Services]:
    s = fresh_services
    s.settings = s.settings.with_(export_dir=str(tmp_path / "export"))
    for p in ("p1", "p2", "p3", "p4"):
        put(s, patient(p))
    for n in range(1, 7):
        put(s, obs(f"o{n}", f"Patient/p{1 + n % 4}"))
    yield s


def submit(s: Services, runner: JobRunner, **params: Any) -> Job:
    base: dict[str, Any] = {
        "request": "r",
        "level": "system",
        "types": TYPES,
        "since": None,
        "filters": {},
        "members": [],
    }
    return runner.submit(
        bulk_export.KIND, {**base, "base_url": "http://x/fhir", **params}, {"index": 0, "after": None, "files": {}},
        owner=OPERATOR.to_json(),
    )  # fmt: skip


def exported(s: Services, job: Job) -> dict[str, dict[str, Any]]:
    """``Type/id`` -> the resource, from the job's files (only what its progress recorded), checking
    that no key is written twice and that the counts are the lines'."""
    folder = Path(s.settings.export_dir) / str(job.id)
    found: dict[str, dict[str, Any]] = {}
    for rtype, record in job.progress["files"].items():
        path = folder / f"{rtype}.ndjson"
        data = path.read_bytes()[: record["bytes"]] if path.exists() else b""
        lines = data.splitlines()
        assert len(lines) == record["count"]
        for line in lines:
            resource = orjson.loads(line)
            key = f"{resource['resourceType']}/{resource['id']}"
            assert key not in found, f"{key} exported twice"
            found[key] = resource
    return found


def changing(s: Services, changes: dict[int, Callable[[], None]]) -> Callable[[Job], None]:
    """The runner's ``on_progress``: ``changes[n]`` made (committed, in their own transactions) after
    the n-th committed step."""
    count = {"steps": 0}

    def after_step(job: Job) -> None:
        del job
        count["steps"] += 1
        change = changes.get(count["steps"])
        if change is not None:
            change()

    return after_step


def test_changes_between_steps_leave_the_export_as_of_its_mark_each_resource_once(world: Services) -> None:
    """Before the mark: o6 deleted (not exported), p4 updated (its new version). After it, between
    steps: updates of rows read and not yet read, deletions of both, creations: the export holds the
    version of each resource at the mark, once, and nothing created after it."""
    delete(world, "Observation/o6")
    put(world, patient("p4", "Trần"))

    def early() -> None:  # after the first step: o5 not read yet (the history is read in seq order)
        put(world, obs("o5", "Patient/p1", "amended"))
        delete(world, "Observation/o4")
        put(world, patient("p9"))  # created after the mark

    def late() -> None:  # p1 and p2 were read by now
        put(world, patient("p1", "Lê"))
        delete(world, "Patient/p2")
        put(world, obs("o9", "Patient/p1"))

    runner = JobRunner(world.store, lease_s=5, worker="t")
    runner.register(bulk_export.KIND, bulk_export.export_step(world, page=2, pages=1))
    finished = runner.run(submit(world, runner).id, on_progress=changing(world, {1: early, 3: late}))
    assert finished is not None and finished.state == "done"
    assert finished.progress["scan"]["types"] == TYPES and finished.progress["scan"]["done"]
    found = exported(world, finished)
    assert set(found) == {"Patient/p1", "Patient/p2", "Patient/p3", "Patient/p4"} | {
        f"Observation/o{n}" for n in range(1, 6)
    }
    assert found["Patient/p4"]["name"][0]["family"] == "Trần" and found["Patient/p4"]["meta"]["versionId"] == "2"
    assert found["Patient/p1"]["name"][0]["family"] == "Nguyễn"  # updated after the mark: the version at it
    assert found["Observation/o5"]["status"] == "final" and found["Observation/o5"]["meta"]["versionId"] == "1"
    assert list(finished.progress["files"]) == TYPES  # the manifest's order: the types asked, not as met


def test_the_export_equals_the_database_at_its_mark_byte_for_byte(world: Services) -> None:
    """Without changes, the files hold exactly the stored JSON of every current resource: the same as
    the keyset search's export (a _typeFilter that keeps everything sends Observation that way)."""
    runner = JobRunner(world.store, lease_s=5, worker="t")
    runner.register(bulk_export.KIND, bulk_export.export_step(world, page=3, pages=2))
    scanned = runner.run(submit(world, runner).id)
    keyset = runner.run(submit(world, runner, filters={"Observation": ["status=final"]}).id)
    assert scanned is not None and keyset is not None
    assert keyset.progress["scan"]["types"] == [t for t in TYPES if t != "Observation"]
    folder = Path(world.settings.export_dir)
    for rtype in ("Patient", "Observation"):
        a = (folder / str(scanned.id) / f"{rtype}.ndjson").read_bytes().splitlines()
        b = (folder / str(keyset.id) / f"{rtype}.ndjson").read_bytes().splitlines()
        assert sorted(a) == sorted(b) and len(a) == (4 if rtype == "Patient" else 6)


@pytest.mark.parametrize("filters", [{}, {"Observation": ["status=final"]}])
def test_a_restart_mid_scan_continues_without_duplicates_or_loss(world: Services, filters: dict[str, Any]) -> None:
    """A step dies after appending its page, before its commit (three times), while resources change:
    the next attempt cuts the files back to the saved lengths and reads again from the saved seq."""
    inner = bulk_export.export_step(world, page=2, pages=1)

    def late() -> None:  # Observations go the keyset way with the filter: an update is read once there too
        delete(world, "Patient/p4")
        put(world, obs("o1", "Patient/p2"))

    changes = changing(world, {2: lambda: put(world, patient("p3", "Phạm")), 4: late})
    deaths = {"left": 3}

    def step(session: Session, job: Job) -> bool:
        done = inner(session, job)
        moved = (job.progress.get("scan") or {}).get("after") or job.progress.get("after")
        if deaths["left"] and moved:
            deaths["left"] -= 1
            raise RuntimeError("killed between the file write and the commit")
        return done

    runner = JobRunner(world.store, lease_s=0.1, worker="t", retries=5)
    runner.register(bulk_export.KIND, step)
    finished = runner.run(submit(world, runner, filters=filters).id, on_progress=changes)
    assert finished is not None and finished.state == "done" and deaths["left"] == 0
    found = exported(world, finished)
    assert set(found) == {f"Patient/p{n}" for n in range(1, 5)} | {f"Observation/o{n}" for n in range(1, 7)}
    assert found["Patient/p3"]["name"][0]["family"] == "Nguyễn"  # as of the mark, as is p4


def test_since_and_type_through_the_scan(world: Services) -> None:
    """``_since`` is applied by the scan; ``_type`` sends the export the keyset way (still right)."""
    time.sleep(0.01)
    since = res.instant(time.time())
    time.sleep(0.01)
    put(world, obs("o-late", "Patient/p1"))
    put(world, patient("p1", "Lê"))
    delete(world, "Observation/o2")
    later = _kicked(world, f"$export?_since={quote(since)}")
    assert later.progress["scan"]["types"] == TYPES
    assert set(exported(world, later)) == {"Observation/o-late", "Patient/p1"}
    typed = _kicked(world, "$export?_type=Observation")
    assert typed.progress["scan"] == {"types": []}
    observations = {f"Observation/o{n}" for n in (1, 3, 4, 5, 6)} | {"Observation/o-late"}
    assert set(exported(world, typed)) == observations


def _kicked(s: Services, url: str) -> Job:
    """The finished job of a kick-off at ``url`` (run by the server's own runner)."""
    status = call(s, OPERATOR, "GET", url, **ASYNC)
    assert status.status == 202
    runner = runner_of(s)
    job_id = int(status.headers["Content-Location"].rsplit("=", 1)[1])
    deadline = time.monotonic() + 60
    while (job := runner.get(job_id)) is not None and job.state != "done":
        assert time.monotonic() < deadline and job.state != "failed"
        time.sleep(0.05)
    assert job is not None
    return job


def test_a_write_in_flight_at_the_kick_off_moves_transaction_time_back_to_it(world: Services) -> None:
    """A write stamped before the kick-off that took its seq after the mark (in flight then) is not read
    as of the mark: the manifest's transactionTime moves to just before it, so that the next export
    ``_since`` that time gets it (changes up to transactionTime are in one export or the next)."""
    with world.store.session(write=False) as session:
        taken = scan.mark_now(session)
    runner = JobRunner(world.store, lease_s=5, worker="t")
    runner.register(bulk_export.KIND, bulk_export.export_step(world, page=3, pages=2))
    job = submit(world, runner, mark=taken)
    put(world, patient("late"))  # its seq is after the mark; its time is then set back before the kick-off
    stamped = job.created - 0.25
    with world.store.session(write=True) as session:
        sql = "UPDATE resource_history SET last_updated = ? WHERE resource_type = 'Patient' AND id = 'late'"
        session.execute(sql, (stamped,))  # type: ignore[attr-defined]
    finished = runner.run(job.id)
    assert finished is not None and finished.state == "done"
    assert "Patient/late" not in exported(world, finished) and "Patient/p1" in exported(world, finished)
    moved = finished.progress["transaction_time"]
    assert moved == math.floor(stamped * 1000) / 1000 < job.created
    following = _kicked(world, f"$export?_since={quote(res.instant(moved))}")
    assert "Patient/late" in exported(world, following)
    quiet = runner.run(submit(world, runner, mark=_mark(world)).id)
    assert quiet is not None and quiet.progress["transaction_time"] == quiet.created  # nothing in flight


def _mark(s: Services) -> dict[str, Any]:
    with s.store.session(write=False) as session:
        return scan.mark_now(session)


def test_a_caller_the_policy_narrows_keeps_the_keyset_search(world: Services) -> None:
    facility = RequestContext(
        authenticated=True, client_id="his-f1", scopes=parse_scopes("system/*.rs"), organization="Organization/F1"
    )
    runner = JobRunner(world.store, lease_s=5, worker="t")
    runner.register(bulk_export.KIND, bulk_export.export_step(world))
    job = runner.submit(
        bulk_export.KIND,
        {"request": "r", "level": "system", "types": TYPES, "since": None, "filters": {}, "members": [],
         "base_url": "http://x/fhir"},
        {"index": 0, "after": None, "files": {}},
        owner=facility.to_json(),
    )  # fmt: skip
    finished = runner.run(job.id)
    assert finished is not None and finished.state == "done"
    scanned = finished.progress["scan"]["types"]  # what the policy leaves as it is (registries)
    assert "Patient" not in scanned and "Observation" not in scanned and "Organization" in scanned
    patient_level = runner.run(submit(world, runner, level="patient").id)
    assert patient_level is not None and patient_level.progress["scan"] == {"types": []}


def test_the_mark_waits_for_the_writes_in_flight_when_it_was_taken(world: Services) -> None:
    """PostgreSQL: a version whose seq was handed out before the mark but not committed yet is one of
    the transactions to wait for; once it commits, the mark is settled."""
    if world.store.dialect != "postgresql":
        pytest.skip("SQLite commits in seq order: its mark is settled at once")
    writing, marked, done = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:
        with world.store.session(write=True) as session:
            current = session.current("Observation", "o1", for_update=True)
            assert current is not None
            session.write(replace(current, version=current.version + 1), None)
            session.flush()
            writing.set()
            marked.wait(10)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert writing.wait(10)
    with world.store.session(write=False) as session:
        seq, running = session.export_mark()
    assert running and not _settled(world, running)
    marked.set()
    assert done.wait(10)
    thread.join()
    assert _settled(world, running)
    with world.store.session(write=False) as session:
        rows = session.export_scan(["Observation"], 0, seq, seq, None)
    assert [(t, i) for _, t, i, _ in rows].count(("Observation", "o1")) == 1


def _settled(s: Services, running: list[str]) -> bool:
    with s.store.session(write=False) as session:
        return session.export_settled(running)
