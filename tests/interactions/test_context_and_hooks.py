"""The request context travels with every interaction, and the write hooks the security and
sharing features build on: in-transaction hooks that see the caller and may write (without calling
themselves again), and after-commit hooks that only ever see durable writes.

Each test runs a real server over a fresh database of each backend.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.services import Services
from ketnoi.store.base import StoredVersion
from tests.conftest import LiveServer


@dataclass
class Seen:
    writes: list[tuple[str, str, str]] = field(default_factory=list)  # (request id, source, type/id)
    commits: list[tuple[str, list[str]]] = field(default_factory=list)  # (request id, [type/id ...])


@pytest.fixture
def hooked(fresh_services: Services, tmp_path: Path) -> Iterator[tuple[httpx.Client, Seen, Services]]:
    """A server whose hooks record what they see; every Patient written gets a Provenance written
    by the hook in the same transaction (as audit will)."""
    from ketnoi.api.routes import create_app

    seen = Seen()

    def provenance(repo: Repository, stored: StoredVersion, body: dict[str, Any] | None) -> None:
        ctx = repo.context
        seen.writes.append((ctx.request_id, ctx.source, f"{stored.resource_type}/{stored.id}"))
        if stored.resource_type == "Patient":
            repo.create(
                {
                    "resourceType": "Provenance",
                    "target": [{"reference": f"Patient/{stored.id}"}],
                    "recorded": "2026-11-30T08:00:00+07:00",
                    "agent": [{"who": {"display": ctx.request_id}}],
                }
            )

    def committed(ctx: RequestContext, versions: list[StoredVersion]) -> None:
        seen.commits.append((ctx.request_id, [f"{v.resource_type}/{v.id}" for v in versions]))

    fresh_services.after_write.append(provenance)
    fresh_services.after_commit.append(committed)
    fresh_services.settings = fresh_services.settings.with_(import_dir=str(tmp_path))
    with LiveServer(create_app(fresh_services)) as live, httpx.Client(base_url=live.base, timeout=60) as client:
        yield client, seen, fresh_services


def _count(client: httpx.Client, rtype: str) -> int:
    return int(client.get(f"/{rtype}", params={"_summary": "count"}).json()["total"])


def test_the_request_id_reaches_the_hooks_and_comes_back(hooked: tuple[httpx.Client, Seen, Services]) -> None:
    client, seen, _ = hooked
    r = client.post("/Patient", json={"resourceType": "Patient"}, headers={"X-Request-Id": "req-42.a"})
    assert r.status_code == 201
    assert r.headers["X-Request-Id"] == "req-42.a"
    pid = r.json()["id"]
    # The Patient, then the Provenance the hook wrote through the same Repository; the hook saw its
    # own write (other hooks would) but was not called again for it.
    assert seen.writes[0] == ("req-42.a", "rest", f"Patient/{pid}")
    assert [w[2].split("/")[0] for w in seen.writes] == ["Patient"]
    assert seen.commits == [("req-42.a", [f"Patient/{pid}", seen.commits[0][1][1]])]
    assert seen.commits[0][1][1].startswith("Provenance/")
    assert _count(client, "Provenance") == 1


def test_a_request_id_that_is_not_a_plain_token_is_replaced(hooked: tuple[httpx.Client, Seen, Services]) -> None:
    client, seen, _ = hooked
    r = client.post("/Patient", json={"resourceType": "Patient"}, headers={"X-Request-Id": "x <script>"})
    assert r.headers["X-Request-Id"] != "x <script>" and len(r.headers["X-Request-Id"]) == 32
    assert seen.writes[0][0] == r.headers["X-Request-Id"]


def test_bundle_entries_carry_the_callers_context(hooked: tuple[httpx.Client, Seen, Services]) -> None:
    client, seen, _ = hooked
    entry = {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry, entry]}
    assert client.post("", json=bundle, headers={"X-Request-Id": "tx-1"}).status_code == 200
    assert {w[0] for w in seen.writes} == {"tx-1"} and len(seen.writes) == 2
    assert len(seen.commits) == 1 and len(seen.commits[0][1]) == 4  # 2 Patients, 2 Provenances, one commit


def test_a_rolled_back_transaction_takes_the_hooks_writes_with_it(
    hooked: tuple[httpx.Client, Seen, Services],
) -> None:
    client, seen, _ = hooked
    good = {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
    bad = {
        "resource": {"resourceType": "Patient", "gender": "nonsense"},
        "request": {"method": "POST", "url": "Patient"},
    }
    r = client.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": [good, bad]})
    assert r.status_code == 400
    assert seen.writes  # the hook ran for the first entry...
    assert (_count(client, "Patient"), _count(client, "Provenance")) == (0, 0)  # ...and nothing stayed
    assert seen.commits == []  # after-commit hooks never hear of a rollback


def test_a_job_runs_with_the_context_of_whoever_started_it(hooked: tuple[httpx.Client, Seen, Services]) -> None:
    client, seen, services = hooked
    Path(services.settings.import_dir, "p.ndjson").write_text('{"resourceType": "Patient", "id": "imp-1"}\n')
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
            {
                "name": "input",
                "part": [{"name": "type", "valueCode": "Patient"}, {"name": "url", "valueUrl": "file:p.ndjson"}],
            },
        ],
    }
    kickoff = client.post("/$import", json=parameters, headers={"Prefer": "respond-async", "X-Request-Id": "imp"})
    assert kickoff.status_code == 202, kickoff.text
    deadline = time.monotonic() + 60
    while client.get(kickoff.headers["Content-Location"]).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ("imp", "job", "Patient/imp-1") in seen.writes


def _provenance(patient: str | None, target: str) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": "2026-11-30T08:00:00+07:00",
        "agent": [{"who": {"reference": f"Patient/{patient}"}}],
    }


def test_a_hook_records_what_the_caller_may_not_write(fresh_services: Services) -> None:
    """A hook writes a Provenance for a patient's own change, which that patient's scopes could
    not write: through Repository.privileged, in the same transaction, once. (AuditEvents are not
    resources here: the server appends them to the audit log, ketnoi.interactions.audit.)"""
    from ketnoi.auth.scopes import parse_scopes
    from ketnoi.fhir.outcome import FhirError
    from ketnoi.interactions.repository import unit_of_work

    audited: list[str] = []

    def audit(repo: Repository, stored: StoredVersion, body: dict[str, Any] | None) -> None:
        if stored.resource_type == "Provenance":
            audited.append("re-entered")  # must not happen: the hook's own write does not call it again
            return
        event = _provenance(repo.context.patient, f"{stored.resource_type}/{stored.id}")
        audited.append(repo.privileged("audit").create(event).id)

    committed: list[list[str]] = []
    with unit_of_work(fresh_services, RequestContext.internal("setup"), write=True) as repo:
        pid = repo.create({"resourceType": "Patient"}).id
    fresh_services.after_write.append(audit)
    fresh_services.after_commit.append(lambda ctx, versions: committed.append([v.resource_type for v in versions]))
    patient = RequestContext(authenticated=True, scopes=parse_scopes("patient/Observation.cruds"), patient=pid)
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "mạch"}}
    with unit_of_work(fresh_services, patient, write=True) as repo:
        obs = repo.create({**observation, "subject": {"reference": f"Patient/{pid}"}})
    assert len(audited) == 1 and audited[0] != "re-entered"
    assert committed == [["Observation", "Provenance"]]
    with unit_of_work(fresh_services, RequestContext.internal("check"), write=False) as repo:
        assert repo.read("Provenance", audited[0]).resource_type == "Provenance"
    fresh_services.after_write.remove(audit)
    with pytest.raises(FhirError) as refused, unit_of_work(fresh_services, patient, write=True) as repo:
        repo.create(_provenance(pid, f"Observation/{obs.id}"))  # the same record, by the patient: refused
    assert refused.value.status == 403
