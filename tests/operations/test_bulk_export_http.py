"""$export files over HTTP with ``--auth on``, on both backends: a file several megabytes long is streamed
from disk (the server never holds it whole), gzip when the client accepts it, and only to the caller
who started the export (ketnoi/operations/bulk_export_files.py, ketnoi/api/routes.py)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from ketnoi.auth.tokens import issue_access_token
from ketnoi.interactions.services import Services
from ketnoi.security.keystore import KeyStore
from ketnoi.security.urls import fhir_base, issuer_for
from ketnoi.store.auditlog import AuditEntry
from tests.conftest import LiveServer

BINARIES = 160
BLOB = 50_000  # bytes of data per Binary: a file of ~10 MB, many times the 64 KiB chunk
KICKOFF = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@dataclass
class Live:
    http: httpx.Client
    owner: dict[str, str]  # the exporting client's Authorization header
    other: dict[str, str]  # another client's, same scopes


def _token(services: Services, client_id: str) -> str:
    audience = fhir_base(services.settings)
    ring = KeyStore(services.store).ring(time.time())
    return issue_access_token(
        ring, issuer=issuer_for(audience), audience=audience, subject=client_id, client_id=client_id,
        scope="system/*.cruds", lifetime=300, now=time.time(),
    )  # fmt: skip


@pytest.fixture
def live(fresh_services: Services, tmp_path: Path) -> Iterator[Live]:
    from ketnoi.api.routes import create_app

    services = fresh_services
    services.settings = services.settings.with_(auth="on", export_dir=str(tmp_path / "export"))
    owner = {"Authorization": f"Bearer {_token(services, 'exporter')}"}
    other = {"Authorization": f"Bearer {_token(services, 'someone-else')}"}
    with LiveServer(create_app(services)) as server, httpx.Client(base_url=server.base, timeout=60) as http:
        for i in range(BINARIES):
            data = base64.b64encode(hashlib.sha256(str(i).encode()).digest() * (BLOB // 32)).decode()
            binary = {"resourceType": "Binary", "id": f"b{i}", "contentType": "application/octet-stream", "data": data}
            assert http.put(f"/Binary/b{i}", json=binary, headers=owner).status_code == 201
        yield Live(http, owner, other)


def _export(live: Live, url: str) -> dict[str, object]:
    kicked = live.http.get(url, headers={**KICKOFF, **live.owner})
    assert kicked.status_code == 202, kicked.text
    status = kicked.headers["Content-Location"]
    deadline = time.monotonic() + 120
    while (r := live.http.get(status, headers=live.owner)).status_code == 202:
        assert time.monotonic() < deadline, "export did not finish"
        time.sleep(0.1)
    assert r.status_code == 200, r.text
    manifest: dict[str, object] = r.json()
    assert r.headers["Expires"]
    return manifest


def _file_url(manifest: dict[str, object], rtype: str) -> str:
    output = manifest["output"]
    assert isinstance(output, list)
    return str(next(item["url"] for item in output if item["type"] == rtype))


def test_a_large_file_is_streamed_whole_and_never_held_in_memory(live: Live) -> None:
    url = _file_url(_export(live, "/$export?_type=Binary"), "Binary")
    digest, size = hashlib.sha256(), 0
    tracemalloc.start()
    try:
        with live.http.stream("GET", url, headers={**live.owner, "Accept-Encoding": "identity"}) as r:
            assert r.status_code == 200
            assert r.headers["Content-Type"] == "application/fhir+ndjson"
            assert "Content-Encoding" not in r.headers
            for chunk in r.iter_raw():
                digest.update(chunk)
                size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == int(r.headers["Content-Length"]) > BINARIES * BLOB
    # Server and client run in this process: together they never held a fifth of the file.
    assert peak < size / 5, f"peak {peak} bytes for a {size}-byte file"
    plain = live.http.get(url, headers={**live.owner, "Accept-Encoding": "identity"}).content
    assert hashlib.sha256(plain).digest() == digest.digest()
    lines = plain.splitlines()
    assert len(lines) == BINARIES
    assert {orjson.loads(line)["id"] for line in lines} == {f"b{i}" for i in range(BINARIES)}


def test_gzip_when_the_client_accepts_it_round_trips(live: Live) -> None:
    url = _file_url(_export(live, "/$export?_type=Binary"), "Binary")
    plain = live.http.get(url, headers={**live.owner, "Accept-Encoding": "identity"}).content
    with live.http.stream("GET", url, headers={**live.owner, "Accept-Encoding": "br;q=0.5, gzip"}) as r:
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
        assert r.headers["Content-Type"] == "application/fhir+ndjson" and "Accept-Encoding" in r.headers["Vary"]
        packed = b"".join(r.iter_raw())  # as sent, not decoded by httpx
    assert len(packed) < len(plain) and gzip.decompress(packed) == plain
    refused = live.http.get(url, headers={**live.owner, "Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers and refused.content == plain


def test_another_caller_gets_404_for_the_file_and_the_status(live: Live) -> None:
    manifest = _export(live, "/$export?_type=Binary")
    url = _file_url(manifest, "Binary")
    for target in (url, url.replace("$export-file", "$export-status").split("&")[0]):
        r = live.http.get(target, headers={**live.other, "Accept-Encoding": "gzip"})
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", target
        assert live.http.get(target).status_code == 401  # no token at all
    assert live.http.get(url, headers=live.owner).status_code == 200


def test_a_download_names_every_patient_in_batches_never_all_at_once(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ketnoi.interactions import audit

    for i in range(11):
        patient = {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": "Trần", "given": [f"Bình {i}"]}]}
        assert live.http.put(f"/Patient/p{i}", json=patient, headers=live.owner).status_code == 201
    url = _file_url(_export(live, "/$export?_type=Patient"), "Patient")
    batches: list[list[str]] = []
    commit = audit.Recorder.commit

    def spy(self: audit.Recorder, entries: list[AuditEntry]) -> None:
        batches.append([str(e.patient) for e in entries])
        commit(self, entries)

    monkeypatch.setattr(audit, "BATCH", 4)
    monkeypatch.setattr(audit.Recorder, "commit", spy)
    assert live.http.get(url, headers=live.owner).status_code == 200
    # One event per patient of the file, built and made durable four at a time (ADR 0024): a file of
    # a million patients holds one batch of AuditEvents in memory, not a million.
    assert [len(b) for b in batches] == [4, 4, 3]
    assert sorted(p for b in batches for p in b) == sorted(f"p{i}" for i in range(11))
