"""$import: asynchronous bulk import of NDJSON files, resumable, with status and error report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ketnoi.demo.generate import generate
from ketnoi.interactions.services import Services
from ketnoi.jobs import JobRunner
from ketnoi.operations import bulk_import


@pytest.fixture
def import_dir(services: Services, tmp_path: Path) -> Iterator[Path]:
    """Point the shared test server's import folder at this test's temporary folder."""
    before = services.settings
    services.settings = before.with_(import_dir=str(tmp_path))
    yield tmp_path
    services.settings = before


def _kickoff(client: httpx.Client, inputs: list[tuple[str, str]]) -> httpx.Response:
    params: list[dict[str, Any]] = [{"name": "inputFormat", "valueCode": "application/fhir+ndjson"}]
    params += [
        {"name": "input", "part": [{"name": "type", "valueCode": t}, {"name": "url", "valueUrl": u}]} for t, u in inputs
    ]
    return client.post(
        "/$import", json={"resourceType": "Parameters", "parameter": params}, headers={"Prefer": "respond-async"}
    )


def _wait(client: httpx.Client, location: str) -> httpx.Response:
    deadline = time.monotonic() + 120
    while True:
        status = client.get(location)
        if status.status_code != 202:
            return status
        assert "X-Progress" in status.headers
        assert time.monotonic() < deadline, "import did not finish"
        time.sleep(0.1)


def test_import_loads_every_file(client: httpx.Client, import_dir: Path) -> None:
    summary = generate(patients=4, seed=21, out=import_dir / "demo", fmt="ndjson")
    files = sorted((import_dir / "demo").glob("*.ndjson"))
    kickoff = _kickoff(client, [(f.stem, f.as_uri()) for f in files])
    assert kickoff.status_code == 202
    location = kickoff.headers["content-location"]
    assert "$import-status?job=" in location
    done = _wait(client, location)
    assert done.status_code == 200
    manifest = done.json()
    assert {o["type"]: o["count"] for o in manifest["output"]} == summary.counts
    assert manifest["error"] == []
    patient = orjson.loads((import_dir / "demo" / "Patient.ndjson").read_bytes().splitlines()[0])
    assert client.get(f"/Patient/{patient['id']}").status_code == 200


def test_refused_lines_are_reported_with_their_place(client: httpx.Client, import_dir: Path, tag: str) -> None:
    lines = [
        orjson.dumps({"resourceType": "Patient", "id": f"i-{tag[:12]}"}),
        b"",
        b"{broken",
        orjson.dumps({"resourceType": "Observation", "id": f"o-{tag[:12]}"}),
        orjson.dumps({"resourceType": "Patient", "id": f"j-{tag[:12]}", "gender": 3}),
    ]
    (import_dir / "mixed.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    done = _wait(client, _kickoff(client, [("Patient", "file:mixed.ndjson")]).headers["content-location"])
    manifest = done.json()
    assert manifest["output"] == [{"type": "Patient", "inputUrl": "file:mixed.ndjson", "count": 1}]
    assert manifest["error"][0]["count"] == 3
    errors = client.get(manifest["error"][0]["url"].split("/fhir", 1)[1]).json()
    texts = [e["resource"]["issue"][0]["diagnostics"] for e in errors["entry"]]
    assert [t.split(": ")[0] for t in texts] == [
        "file:mixed.ndjson line 3",
        "file:mixed.ndjson line 4",
        "file:mixed.ndjson line 5",
    ]
    assert "JSON" in texts[0] and "Observation" in texts[1] and "gender" in texts[2]


def test_kickoff_refusals(client: httpx.Client, import_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside") / "x.ndjson"
    outside.write_bytes(b"{}\n")
    assert _kickoff(client, [("Patient", outside.as_uri())]).status_code == 403
    assert _kickoff(client, [("Patient", "file:../../etc/passwd")]).status_code == 403
    assert _kickoff(client, [("Patient", "file:missing.ndjson")]).status_code == 404
    assert _kickoff(client, [("Patient", "https://example.org/p.ndjson")]).status_code == 400
    assert _kickoff(client, [("Nope", "file:x.ndjson")]).status_code == 400
    assert _kickoff(client, []).status_code == 400
    assert client.post("/$import", json={"resourceType": "Patient"}).status_code == 400
    assert client.get("/$import-status", params={"job": "999999"}).status_code == 404


def test_import_resumes_after_a_crash_without_duplicates(services: Services, import_dir: Path, tag: str) -> None:
    ids = [f"r{n:02d}-{tag[:10]}" for n in range(23)]
    (import_dir / "p.ndjson").write_bytes(b"\n".join(orjson.dumps({"resourceType": "Patient", "id": i}) for i in ids))
    inputs = bulk_import._inputs(
        {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "input",
                    "part": [{"name": "type", "valueCode": "Patient"}, {"name": "url", "valueUrl": "file:p.ndjson"}],
                }
            ],
        },
        import_dir,
    )
    first = JobRunner(services.store, lease_s=0.2, worker="crashing")
    bulk_import.install(services, first, batch_size=5)
    job = first.submit(
        bulk_import.KIND, {"request": "test"}, {"inputs": inputs, "current": 0, "errors": [], "since": None}
    )
    stopped = first.run(job.id, max_steps=2)  # two batches of 5, then the runner "dies"
    assert stopped is not None and stopped.progress["inputs"][0]["count"] == 10
    time.sleep(0.3)  # its lease runs out
    second = JobRunner(services.store, worker="second")
    bulk_import.install(services, second, batch_size=5)
    finished = second.run(job.id)
    assert finished is not None and finished.state == "done"
    assert finished.progress["inputs"][0]["count"] == 23
    with services.store.session(write=False) as session:
        versions = [len(session.history("Patient", i, since=None, at=None, before_seq=None, limit=5)) for i in ids]
    assert versions == [1] * 23  # each resource written exactly once


def test_a_facility_backend_sees_only_its_own_organizations_import_jobs(services: Services, tag: str) -> None:
    """$import is bulk work on data the caller's organization will own, so a facility's backend may
    start one and read its status; job numbers are sequential, so it must not read another
    organization's (404, like a job that does not exist). $reindex is the whole server's: refused."""
    from urllib.parse import parse_qsl

    from ketnoi.auth.scopes import parse_scopes
    from ketnoi.interactions.context import RequestContext
    from ketnoi.interactions.request import FhirRequest
    from ketnoi.interactions.router import handle

    def backend(org: str) -> RequestContext:
        return RequestContext(
            authenticated=True, client_id=f"his-{tag}", scopes=parse_scopes("system/*.cruds"), organization=org
        )

    f1, f2 = backend("Organization/F1"), backend("Organization/F2")
    runner = JobRunner(services.store, worker="idle")  # queued only: nobody runs it here
    job = runner.submit(
        bulk_import.KIND,
        {"request": tag},
        {"inputs": [], "current": 0, "errors": [], "since": None},
        owner=f1.to_json(),
    )

    def call(ctx: RequestContext, url: str) -> int:
        path, _, qs = url.partition("?")
        return handle(services, FhirRequest("GET", path, parse_qsl(qs), {}, None, "http://x/fhir", ctx)).status

    assert call(f1, f"$import-status?job={job.id}") in (200, 202)
    assert call(f2, f"$import-status?job={job.id}") == 404
    assert call(f2, f"$import-errors?job={job.id}") == 404
    assert call(RequestContext.operator("test"), f"$import-status?job={job.id}") in (200, 202)
    post = FhirRequest("POST", "$reindex", [], {}, None, "http://x/fhir", f1)
    assert handle(services, post).status == 403
    runner.cancel(job.id)
