"""Bulk load: NDJSON and Bundles through the one write path, resumable, with an error report."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from ketnoi.bulk.load import load_paths
from ketnoi.demo.generate import generate
from ketnoi.interactions.services import Services
from ketnoi.sql import SqlQuery


def _count(services: Services, sql: str, *params: object) -> int:
    with services.store.session(write=False) as s:
        return int(s.query(SqlQuery(sql, params))[0][0])


def test_load_is_complete_and_resumable(services: Services, tmp_path: Path) -> None:
    summary = generate(patients=15, seed=7, out=tmp_path / "demo", fmt="ndjson")
    expected = sum(summary.counts.values())
    report = load_paths(services, [tmp_path / "demo"], batch_size=100)
    assert report.failures == []
    assert report.dangling == []
    assert report.written + report.unchanged == expected
    patients = [orjson.loads(line) for line in (tmp_path / "demo" / "Patient.ndjson").read_bytes().splitlines()]
    versions_before = _count(services, "SELECT COUNT(*) FROM resource_history WHERE resource_type = ?", "Patient")
    again = load_paths(services, [tmp_path / "demo"], batch_size=100)
    assert again.written == 0  # a re-run (e.g. after a crash) writes nothing twice
    assert again.unchanged == expected
    assert (
        _count(services, "SELECT COUNT(*) FROM resource_history WHERE resource_type = ?", "Patient") == versions_before
    )
    stored = _count(
        services,
        "SELECT COUNT(*) FROM resource WHERE resource_type = ? AND id IN (" + ",".join("?" * len(patients)) + ")",
        "Patient",
        *[p["id"] for p in patients],
    )
    assert stored == len(patients)


def test_bad_lines_are_reported_and_the_rest_loads(services: Services, tmp_path: Path) -> None:
    good = {"resourceType": "Patient", "id": f"ok-{uuid.uuid4().hex[:8]}"}
    bad = {"resourceType": "Patient", "id": f"bad-{uuid.uuid4().hex[:8]}", "birthDate": "tomorrow"}
    no_id = {"resourceType": "Patient"}
    lines = [orjson.dumps(good), b"{not json", orjson.dumps(bad), orjson.dumps(no_id), b""]
    (tmp_path / "p.ndjson").write_bytes(b"\n".join(lines))
    report = load_paths(services, [tmp_path / "p.ndjson"])
    assert report.written == 1
    assert [f.source for f in report.failures] == ["p.ndjson:2", "p.ndjson:3", "p.ndjson:4"]
    assert "birthDate" in report.failures[1].message
    assert "id" in report.failures[2].message
    with services.store.session(write=False) as s:
        assert s.current("Patient", good["id"]) is not None
        assert s.current("Patient", bad["id"]) is None


def test_dangling_references_are_reported(services: Services, tmp_path: Path) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    obs = {
        "resourceType": "Observation",
        "id": f"o-{uuid.uuid4().hex[:8]}",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{missing}"},
    }
    (tmp_path / "o.ndjson").write_bytes(orjson.dumps(obs))
    report = load_paths(services, [tmp_path / "o.ndjson"])
    assert report.written == 1
    assert [(d.what, missing in d.message) for d in report.dangling] == [(f"Observation/{obs['id']}", True)]


def test_transaction_bundles_load_through_the_bundle_path(services: Services, tmp_path: Path) -> None:
    generate(patients=3, seed=11, out=tmp_path / "b", fmt="bundles")
    report = load_paths(services, [tmp_path / "b"])
    assert report.failures == []
    assert report.written > 3 * 5


def test_cli_load_with_error_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/k.db"
    run = [sys.executable, "-m", "ketnoi"]
    assert subprocess.run([*run, "migrate", "--database", url], capture_output=True, timeout=120).returncode == 0
    (tmp_path / "in.ndjson").write_bytes(
        b'{"resourceType": "Patient", "id": "a1"}\n{"resourceType": "Nope", "id": "x"}\n'
    )
    result = subprocess.run(
        [*run, "load", "--database", url, str(tmp_path / "in.ndjson"), "--errors", str(tmp_path / "errors.ndjson")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1  # something failed
    assert "loaded 1 resources" in result.stdout
    errors = [orjson.loads(line) for line in (tmp_path / "errors.ndjson").read_bytes().splitlines()]
    assert errors[0]["source"] == "in.ndjson:2"
    assert "Nope" in errors[0]["error"]


def _index_snapshot(services: Services) -> dict[str, list[tuple[object, ...]]]:
    from ketnoi.store.schema import INDEX_COLUMNS

    out = {}
    with services.store.session(write=False) as s:
        for kind in INDEX_COLUMNS:
            rows = s.query(SqlQuery(f"SELECT * FROM idx_{kind}", ()))
            out[kind] = sorted(rows, key=repr)
        out["resource"] = sorted(s.query(SqlQuery("SELECT resource_type, id, version, deleted FROM resource", ())))
    return out


def test_parallel_load_writes_exactly_what_the_serial_load_writes(tmp_path: Path) -> None:
    from ketnoi.app import build_services, open_store
    from ketnoi.config import Settings

    generate(patients=12, seed=3, out=tmp_path / "demo", fmt="ndjson")
    (tmp_path / "demo" / "Bad.ndjson").write_bytes(
        b'{"resourceType": "Patient", "id": "zz", "birthDate": "x"}\n{oops\n'
    )
    snapshots, reports = [], []
    for workers in (0, 2):
        store = open_store(f"sqlite:///{tmp_path}/w{workers}.db")
        store.migrate()
        services = build_services(Settings(database="test"), store)
        reports.append(load_paths(services, [tmp_path / "demo"], batch_size=64, workers=workers))
        snapshots.append(_index_snapshot(services))
        store.close()
    serial, parallel = reports
    assert (parallel.written, parallel.unchanged) == (serial.written, serial.unchanged)
    assert [(f.source, f.message) for f in parallel.failures] == [(f.source, f.message) for f in serial.failures]
    assert len(serial.failures) == 2
    assert snapshots[0] == snapshots[1]
