"""The SMART Bulk Data Tester (bdt: tests/bdt/tester, see its ORIGIN.md) against a live ``ketnoi serve`` with
``--auth on``, on SQLite and PostgreSQL: a backend client registered with ``ketnoi clients add`` and a
fresh EC key signs its ``private_key_jwt`` assertions (SMART Backend Services), and every applicable
bdt test must pass. The tests that do not apply are :data:`NOT_APPLICABLE`, with the reason (the same
list is in docs/bulk-export.md).

bdt is installed by ``scripts/bdt-install.sh`` into ``.bdt/`` (its Node packages come from npm then;
nothing is downloaded here). Without it this test skips, and fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from ketnoi.bulk.load import LoadReport, load_resources
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".bdt" / "build" / "lib" / "bin.js"
INSTALL = "run scripts/bdt-install.sh (copies the Bulk Data Tester into .bdt/ and runs npm install there)"
OPERATOR = RequestContext.operator("bdt")
GROUP = "bdt-cohort"
#: Patients besides the four with records. bdt's "Responds with 202 for active exports" asks for the
#: status right after the kick-off of an export of its "fastestResource" (Patient) and expects the
#: export to be still running: with four patients ketnoi had finished it first (CI failed so, once).
#: 15,000 make that export take a while (about 50 ms on SQLite, measured in-process: 4 patients 4 ms,
#: 3,000 10 ms, 10,000 33 ms) against the few milliseconds between kick-off and status, without a delay
#: put into the server for the tester's sake. The cost: each Patient download audits 15,000 patients.
CROWD = 15000

#: bdt tests that cannot pass on ketnoi by design, by name, with the reason (docs/bulk-export.md).
NOT_APPLICABLE: dict[str, str] = {
    "Accepts multiple includeAssociatedData values as comma separated list": (
        "includeAssociatedData is not supported (ADR 0024 decision 7): without Prefer: handling=lenient the "
        "kick-off is a 400 naming the supported values (none), as Bulk Data 2.0 says a server unable to "
        "support them SHOULD answer; bdt expects a 202"
    ),
    "Accepts multiple includeAssociatedData parameters": "the same: includeAssociatedData is refused (400)",
    "Includes lenient errors in the payload errors array": (
        "bdt looks for OperationOutcome resources inline in the manifest's error array; Bulk Data 2.0 puts "
        "{type, url} items there: ketnoi writes what handling=lenient ignored to the error file such an item "
        "names (and to the kick-off answer)"
    ),
    'Check if "patient-export" operation is defined in the CapabilityStatement': (
        "the CapabilityStatement lists the operation under rest.resource Patient as Bulk Data 2.0 does (name "
        "export, definition .../OperationDefinition/patient-export); bdt looks for the name patient-export"
    ),
    'Check if "group-export" operation is defined in the CapabilityStatement': "the same, for group-export",
    "Accepts wildcard resource scopes": (
        "a v1 request (system/*.read) is granted in SMART v2 form (system/*.rs, the same rights); bdt "
        "compares the scope text literally"
    ),
    "Supports mixed v1 and v2 scopes": "the same: system/Patient.read is granted as system/Patient.rs",
    "Handles V1 scopes correctly": (
        "bdt sends one client assertion several times; the token endpoint accepts each jti once (RFC 7523, "
        "SMART Backend Services) and answers the repeats invalid_client, not invalid_scope"
    ),
    "Handles V2 scopes correctly": "the same: one assertion (jti) replayed",
    "Rejects explicit mutation V2 scopes": "the same: one assertion (jti) replayed",
}

pytestmark = pytest.mark.slow


def _tester() -> Path:
    """The installed bdt, or skip (fail under CI=true) with the one line that installs it."""
    if not BIN.is_file() or shutil.which("node") is None:
        message = f"the Bulk Data Tester is not installed: {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return BIN


@dataclass
class Live:
    base: str  # the FHIR base
    client_id: str
    private_jwk: dict[str, Any]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _put(services: Services, resource: dict[str, Any]) -> None:
    path = f"{resource['resourceType']}/{resource['id']}"
    r = handle(
        services, FhirRequest("PUT", path, [], {"content-type": "application/fhir+json"}, resource, context=OPERATOR)
    )
    assert r.status in (200, 201), r.resource


def _data(services: Services) -> None:
    """A few patients with records, a crowd of bare ones (:data:`CROWD`), and a Group of two for the group level."""
    for i, gender in enumerate(("female", "male", "female", "male")):
        _put(services, {"resourceType": "Patient", "id": f"bdt-p{i}", "gender": gender, "active": True,
                        "name": [{"family": "Trần", "given": [f"Bệnh nhân {i}"]}]})  # fmt: skip
        _put(services, {"resourceType": "Observation", "id": f"bdt-o{i}", "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "subject": {"reference": f"Patient/bdt-p{i}"}, "valueQuantity": {"value": 70 + i}})  # fmt: skip
    crowd = ((f"crowd#{i}", {"resourceType": "Patient", "id": f"bdt-c{i}", "gender": "unknown"}) for i in range(CROWD))
    report = load_resources(services, crowd, LoadReport(), context=OPERATOR)
    assert report.written == CROWD and not report.failures, report
    members = [{"entity": {"reference": f"Patient/bdt-p{i}"}} for i in (0, 1)]
    _put(services, {"resourceType": "Group", "id": GROUP, "type": "person", "actual": True, "member": members})


def _register(url: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A backend client with a fresh ES384 key, registered as an operator would (``ketnoi clients add``)."""
    private = {**ECKey.generate_key("P-384", private=True).as_dict(private=True), "kid": "bdt-1", "alg": "ES384"}
    jwks = tmp_path / "bdt-jwks.json"
    jwks.write_text(json.dumps({"keys": [{k: v for k, v in private.items() if k != "d"}]}))
    done = subprocess.run(
        [sys.executable, "-m", "ketnoi", "clients", "add", "--database", url, "--name", "bdt",
         "--scope", "system/*.rs", "--jwks", str(jwks)],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    client_id = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("client_id: "))
    return client_id, private


@pytest.fixture
def live(fresh_services: Services, tmp_path: Path) -> Iterator[Live]:
    _tester()
    url = fresh_services.settings.database
    _data(fresh_services)
    client_id, private = _register(url, tmp_path)
    port = _free_port()
    env = {
        **os.environ,
        "KETNOI_EXPORT_DIR": str(tmp_path / "export"),
        "KETNOI_AUDIT_SPOOL": str(tmp_path / "journal"),
        "KETNOI_MPI_LINK": "off",
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "ketnoi", "serve", "--database", url, "--port", str(port), "--auth", "on"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_ready(f"http://127.0.0.1:{port}", server, tmp_path / "server.log")
        yield Live(f"http://127.0.0.1:{port}/fhir", client_id, private)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wait_ready(root: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"ketnoi serve exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{root}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("ketnoi serve did not start")


def _config(live: Live) -> dict[str, Any]:
    return {
        "baseURL": live.base + "/",
        "authentication": {
            "type": "backend-services",
            "optional": False,
            "clientId": live.client_id,
            "scope": "system/*.rs",
            "tokenEndpoint": live.base.removesuffix("/fhir") + "/auth/token",
            "privateKey": live.private_jwk,
            "tokenSignAlgorithm": "ES384",
            "tokenExpiresIn": "5m",
            "customTokenClaims": {},
            "customTokenHeaders": {},
        },
        "requests": {"strictSSL": True, "timeout": 30000, "customHeaders": {}},
        "groupId": GROUP,
        "systemExportEndpoint": "$export",
        "patientExportEndpoint": "Patient/$export",
        "groupExportEndpoint": f"Group/{GROUP}/$export",
        "fastestResource": "Patient",
        "supportedResourceTypes": ["Patient", "Observation", "Group"],
    }


def run_bdt(live: Live, folder: Path) -> list[dict[str, Any]]:
    """Every bdt test's end event (name, path, status, error) of one run with the JSON reporter."""
    config = folder / "bdt-config.js"
    config.write_text(f"module.exports = {json.dumps(_config(live), indent=2)};\n")
    done = subprocess.run(
        ["node", "--require", str(ROOT / "scripts" / "bdt-pace.js"), str(_tester()), "test", "-c", str(config),
         "-r", "json"],
        capture_output=True, text=True, cwd=ROOT / ".bdt", timeout=600,
    )  # fmt: skip
    (folder / "bdt-output.jsonl").write_text(done.stdout)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    ended = [e["data"] for e in events if e.get("type") == "testEnd"]
    assert ended, f"bdt ran no test (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return ended


def test_bdt_passes_every_applicable_test(live: Live, tmp_path: Path) -> None:
    results = run_bdt(live, tmp_path)
    by_status: dict[str, list[str]] = {}
    for r in results:
        by_status.setdefault(str(r.get("status")), []).append(f"{r['path']} {r['name']}")
    failed = [r for r in results if r.get("status") == "failed" and r["name"] not in NOT_APPLICABLE]
    report = "\n".join(f"{r['path']} {r['name']}: {json.dumps(r.get('error'))[:600]}" for r in failed)
    assert not failed, f"bdt failures ({len(failed)} of {len(results)}):\n{report}"
    # The list stays honest: a test named there must still fail for the stated reason, not pass.
    passing = {r["name"] for r in results if r.get("status") == "succeeded"}
    assert not passing & NOT_APPLICABLE.keys(), "a NOT_APPLICABLE test passes now: remove it from the list"
    assert len(by_status.get("succeeded", [])) > 100, {k: len(v) for k, v in by_status.items()}
    print({k: len(v) for k, v in by_status.items()})  # noqa: T201 (the counts, for the record: pytest -s)
