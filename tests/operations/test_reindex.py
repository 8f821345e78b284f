"""$reindex: a resumable background job that rebuilds index rows of current versions.

The resume tests use a fresh database of each backend (so they know every resource in it); the
HTTP tests use the shared live server; the CLI test runs ``ketnoi`` as a process on SQLite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ketnoi.app import build_services, open_store
from ketnoi.config import Settings
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.services import Services
from ketnoi.jobs import Job, JobRunner
from ketnoi.operations import reindex
from ketnoi.search.index import IndexRows
from ketnoi.sql import SqlQuery
from ketnoi.store.base import Session, StoredVersion

ETHNICITY = "https://fhir.ketnoi.vn/StructureDefinition/ethnicity"


def _sp(code: str) -> dict[str, Any]:
    return {
        "resourceType": "SearchParameter",
        "id": code,
        "url": f"https://fhir.ketnoi.vn/SearchParameter/{code}",
        "name": code.replace("-", "_"),
        "status": "active",
        "description": "ethnicity / dân tộc",
        "code": code,
        "base": ["Patient"],
        "type": "token",
        "expression": f"Patient.extension('{ETHNICITY}').value.coding.code",
    }


def _patient(id: str, ethnicity: str) -> dict[str, Any]:
    ext = {"url": ETHNICITY, "valueCodeableConcept": {"coding": [{"code": ethnicity}]}}
    return {"resourceType": "Patient", "id": id, "extension": [ext], "name": [{"family": f"Nguyễn {id}"}]}


@pytest.fixture
def fresh(fresh_services: Services) -> Services:
    """Services over a new, empty, migrated database of each backend."""
    return fresh_services


def _write(services: Services, resources: list[dict[str, Any]]) -> None:
    with services.store.session(write=True) as session:
        repo = Repository(services, session, RequestContext.operator("test"))
        for resource in resources:
            repo.upsert(resource)


def _token_rows(services: Services, code: str) -> Counter[str]:
    with services.store.session(write=False) as session:
        rows = session.query(SqlQuery("SELECT resource_id FROM idx_token WHERE param = ?", (code,)))
    return Counter(row[0] for row in rows)


class _Spy:
    """A Session that records which resources a step reindexed (delegates everything)."""

    def __init__(self, session: Session, seen: list[str], fail_at: int | None) -> None:
        self._session = session
        self._seen = seen
        self._fail_at = fail_at

    def replace_indexes(self, entries: list[tuple[StoredVersion, IndexRows]]) -> list[bool]:
        if self._fail_at is not None:  # part of the batch written, then the crash: the step rolls back
            self._session.replace_indexes(entries[: self._fail_at])
            raise RuntimeError("simulated crash in the middle of a batch")
        self._seen.extend(stored.id for stored, _ in entries)
        return self._session.replace_indexes(entries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def test_reindex_resumes_where_it_stopped_and_indexes_each_resource_once(fresh: Services) -> None:
    ids = [f"p{n:03d}" for n in range(23)]
    _write(fresh, [_patient(id, "kinh") for id in ids])
    _write(fresh, [{"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}}])
    code = "ethnicity"
    _write(fresh, [_sp(code)])  # active now, but the patients were written before
    assert _token_rows(fresh, code) == Counter()

    committed: Counter[str] = Counter()
    crashes = {"left": 1}
    inner = reindex.reindex_step(fresh, batch_size=5)

    def step(session: Session, job: Job) -> bool:
        seen: list[str] = []
        fail_at = 2 if job.progress.get("processed") == 10 and crashes["left"] else None
        if fail_at is not None:
            crashes["left"] -= 1
        done = inner(_Spy(session, seen, fail_at), job)  # type: ignore[arg-type]
        committed.update(seen)  # reached only when the step did not raise (then it commits)
        return done

    # First runner: two batches, then it "dies" (its lease is left behind, job still running).
    first = JobRunner(fresh.store, lease_s=0.2, worker="first")
    first.register(reindex.KIND, step)
    job = first.submit(reindex.KIND, reindex.scope(["Patient"]))
    stopped = first.run(job.id, max_steps=2)
    assert stopped is not None and stopped.state == "running"
    assert sum(committed.values()) == 10

    # Nobody else may take it while the lease holds.
    second = JobRunner(fresh.store, lease_s=30, worker="second", retries=2)
    second.register(reindex.KIND, step)
    assert second.run(job.id) is None
    time.sleep(0.3)
    # After the lease: resumed after the last committed (type, id), across a failed-and-retried batch.
    finished = second.run(job.id)
    assert finished is not None and finished.state == "done", finished
    assert crashes["left"] == 0
    assert committed == Counter(dict.fromkeys(ids, 1))  # every patient exactly once, nothing else
    assert finished.progress["processed"] == len(ids)
    assert finished.progress["skipped"] == finished.progress["failed"] == 0
    assert _token_rows(fresh, code) == Counter(dict.fromkeys(ids, 1))
    stored = second.get(job.id)
    assert stored is not None and stored.state == "done" and stored.progress["after"] == ["Patient", ids[-1]]


def test_reindex_all_types_rewrites_rows_without_new_versions(fresh: Services) -> None:
    _write(fresh, [_patient("a", "kinh"), _patient("b", "tay")])
    _write(fresh, [{"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}}])
    _write(fresh, [_sp("eth")])
    before = _token_rows(fresh, "status")
    assert before == Counter({"o1": 1, "eth": 1})
    runner: JobRunner = fresh.extras["jobs"]
    job = runner.submit(reindex.KIND, reindex.scope(None))
    done = runner.run(job.id)
    assert done is not None and done.state == "done"
    assert done.progress["processed"] == 4  # 2 patients, 1 observation, 1 search parameter
    assert _token_rows(fresh, "eth") == Counter({"a": 1, "b": 1})
    assert _token_rows(fresh, "status") == before  # rebuilt, not duplicated
    with fresh.store.session(write=False) as session:
        current = session.current("Patient", "a")
    assert current is not None and current.version == 1


def test_reindex_skips_resources_changed_or_deleted_meanwhile(fresh: Services) -> None:
    _write(fresh, [_patient("a", "kinh"), _patient("b", "tay")])
    with fresh.store.session(write=True) as session:
        stored = session.current_page(["Patient"], None, 10)
        Repository(fresh, session, RequestContext.operator("test")).delete("Patient", "a")
        moved_on = replace(stored[1], version=7)
        entries = [(stored[0], IndexRows()), (moved_on, IndexRows()), (stored[1], IndexRows())]
        assert session.replace_indexes(entries) == [False, False, True]  # deleted, not current, current
        assert [s.id for s in session.current_page(["Patient"], None, 10)] == ["b"]
        assert [s.id for s in session.current_page(["Patient"], ("Patient", "a"), 10)] == ["b"]
        assert session.current_page(["Patient"], ("Patient", "b"), 10) == []
        assert session.current_page([], None, 10) == []


def test_a_failing_job_is_marked_failed_with_its_error(fresh: Services) -> None:
    runner = JobRunner(fresh.store, retries=1, worker="w")

    def broken(session: Session, job: Job) -> bool:
        raise ValueError("boom")

    runner.register("broken", broken)
    job = runner.submit("broken", {})
    failed = runner.run(job.id)
    assert failed is not None and failed.state == "failed"
    stored = runner.get(job.id)
    assert stored is not None and stored.state == "failed" and stored.error == "ValueError: boom"


# ---- HTTP ----------------------------------------------------------------------------------------
def test_status_endpoint_errors_and_cancel(client: httpx.Client, services: Services) -> None:
    assert client.get("/$reindex-status").status_code == 400
    assert client.get("/$reindex-status", params={"job": "abc"}).status_code == 400
    assert client.get("/$reindex-status", params={"job": "999999999"}).status_code == 404
    assert client.post("/$reindex", json={"resourceType": "Patient"}).status_code == 400
    bad_type = {"resourceType": "Parameters", "parameter": [{"name": "type", "valueCode": "Patiant"}]}
    assert client.post("/$reindex", json=bad_type).status_code == 400
    assert client.post("/Patiant/$reindex", json={"resourceType": "Parameters"}).status_code == 404
    assert client.get("/$reindex").status_code == 405

    # A job of a scope nobody uses, cancelled before (or while) it runs: then 404, as async.html says.
    runner: JobRunner = services.extras["jobs"]
    job = runner.submit("not-a-registered-kind", {})  # never claimed by the server's runner
    assert client.get("/$reindex-status", params={"job": str(job.id)}).status_code == 404  # not a reindex job
    types = {"resourceType": "Parameters", "parameter": [{"name": "type", "valueCode": "Linkage"}]}
    started = client.post("/$reindex", json=types)
    assert started.status_code == 202
    location = started.headers["Content-Location"]
    cancelled = client.delete(location)
    assert cancelled.status_code == 202
    state = {p["name"]: p for p in cancelled.json()["parameter"]}["state"]["valueCode"]
    assert state in ("cancelled", "done")  # it may have finished already: Linkage is rare
    if state == "cancelled":
        assert client.get(location).status_code == 404
    runner.cancel(job.id)


def test_reindex_all_types_over_http(client: httpx.Client) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "type", "valueCode": "Linkage"}, {"name": "type", "valueCode": "Basic"}],
    }
    started = client.post("/$reindex", json=body)
    assert started.status_code == 202
    location = started.headers["Content-Location"]
    deadline = time.monotonic() + 60
    while (r := client.get(location)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert r.status_code == 200
    params = r.json()["parameter"]
    assert {p["valueCode"] for p in params if p["name"] == "type"} == {"Basic", "Linkage"}
    assert next(p for p in params if p["name"] == "state")["valueCode"] == "done"


# ---- CLI -----------------------------------------------------------------------------------------
def _ketnoi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ketnoi", *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def _ndjson(path: Path, resources: list[dict[str, Any]]) -> str:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return str(path)


@pytest.mark.slow
def test_cli_reindex_resumes_an_unfinished_job(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    assert _ketnoi("migrate", "--database", url).returncode == 0
    ids = [f"p{n}" for n in range(12)]
    loaded = _ketnoi("load", "--database", url, _ndjson(tmp_path / "p.ndjson", [_patient(i, "kinh") for i in ids]))
    assert loaded.returncode == 0, loaded.stderr
    assert _ketnoi("load", "--database", url, _ndjson(tmp_path / "sp.ndjson", [_sp("ethnic")])).returncode == 0

    # An unfinished job for Patient: one batch of 5 done, then its runner "died" (lease expired).
    store = open_store(url)
    services = build_services(Settings(database=url, auth="off"), store)
    runner = JobRunner(store, lease_s=0.0, worker="dead")
    runner.register(reindex.KIND, reindex.reindex_step(services, batch_size=5))
    job = runner.submit(reindex.KIND, reindex.scope(["Patient"]))
    assert runner.run(job.id, max_steps=1) is not None
    store.close()

    result = _ketnoi("reindex", "--database", url, "--type", "Patient")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"job {job.id}" in result.stdout
    assert "resuming" in result.stdout
    assert "12 resources reindexed" in result.stdout

    again = _ketnoi("reindex", "--database", url)  # all types: a new job
    assert again.returncode == 0, again.stderr
    assert f"job {job.id + 1}" in again.stdout and "13 resources reindexed" in again.stdout

    # A new server process loads the active parameter from the database and finds everyone by it.
    store = open_store(url)
    try:
        services = build_services(Settings(database=url, auth="off"), store)
        assert "ethnic" in services.extractor.params_for("Patient")
        assert _token_rows(services, "ethnic") == Counter(dict.fromkeys(ids, 1))
    finally:
        store.close()
