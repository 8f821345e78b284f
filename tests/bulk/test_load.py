"""Bulk load: NDJSON and Bundles through the one write path, resumable, with an error report."""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from ketnoi.bulk import load as bulk_load
from ketnoi.bulk.load import LoadReport, load_paths, write_batch
from ketnoi.bulk.owners import read_owners
from ketnoi.demo.generate import generate
from ketnoi.interactions.services import Services
from ketnoi.sql import SqlQuery
from ketnoi.store.base import StoredVersion


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


def _own_services(tmp_path: Path, name: str) -> Services:
    from ketnoi.app import build_services, open_store
    from ketnoi.config import Settings

    store = open_store(f"sqlite:///{tmp_path}/{name}.db")
    store.migrate()
    return build_services(Settings(database="test"), store)


def test_a_search_parameter_in_a_load_indexes_the_lines_after_it(tmp_path: Path) -> None:
    """The writer thread runs behind the preparing one: the line right after a SearchParameter
    must still be indexed with it (the batch is cut and written before that line is prepared)."""
    services = _own_services(tmp_path, "sp")
    ext = "https://fhir.ketnoi.vn/StructureDefinition/nickname"
    sp = {
        "resourceType": "SearchParameter",
        "id": "nickname",
        "url": "https://fhir.ketnoi.vn/SearchParameter/nickname",
        "name": "nickname",
        "status": "active",
        "description": "Tên gọi ở nhà (nickname)",
        "code": "nickname",
        "base": ["Patient"],
        "type": "string",
        "expression": f"Patient.extension('{ext}').value",
    }
    patients = [
        {"resourceType": "Patient", "id": f"p{i}", "extension": [{"url": ext, "valueString": f"Tí {i}"}]}
        for i in range(3)
    ]
    lines = [orjson.dumps(patients[0]), orjson.dumps(sp), *(orjson.dumps(p) for p in patients[1:])]
    (tmp_path / "mixed.ndjson").write_bytes(b"\n".join(lines))
    report = load_paths(services, [tmp_path / "mixed.ndjson"], batch_size=100)
    assert (report.written, report.failures) == (4, [])
    rows = _rows(services, "SELECT resource_id, norm FROM idx_string WHERE param = ? ORDER BY resource_id", "nickname")
    assert rows == [("p1", "ti 1"), ("p2", "ti 2")]  # p0 came before the parameter existed
    services.store.close()


def _rows(services: Services, sql: str, *params: object) -> list[tuple[object, ...]]:
    with services.store.session(write=False) as s:
        return [tuple(r) for r in s.query(SqlQuery(sql, params))]


def test_a_failing_writer_stops_the_load_and_settings_are_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = _own_services(tmp_path, "fail")
    generate(patients=10, seed=5, out=tmp_path / "demo", fmt="ndjson")
    before = gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count() > 0
    calls = []
    real = bulk_load.write_batch

    def second_fails(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk_load, "write_batch", second_fails)
    with pytest.raises(OSError, match="disk full"):
        load_paths(services, [tmp_path / "demo"], batch_size=20)
    assert len(calls) <= 4  # the producer stopped: at most the batches already queued were seen
    assert _rows(services, "SELECT COUNT(*) FROM resource") == [(20,)]  # the first batch, committed
    assert (gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count() > 0) == before
    services.store.close()


def test_a_concurrent_write_during_a_batch_is_retried_not_lost(postgres_url: str) -> None:
    """A version committed by another connection between the batch's read and its commit makes
    the commit fail; the batch is tried again and writes on top of it. PostgreSQL only: SQLite has
    a single writer, so nothing can commit inside another write transaction there."""
    from ketnoi.app import build_services, open_store
    from ketnoi.config import Settings
    from ketnoi.interactions.context import RequestContext
    from ketnoi.interactions.repository import Repository

    store = open_store(postgres_url)
    store.migrate()
    services = build_services(Settings(database="test"), store)

    ids = [f"cc-{uuid.uuid4().hex[:12]}" for _ in range(30)]  # >= 20: the COPY path of the store
    raced = ids[7]
    done: list[int] = []

    def race(repo: object, stored: StoredVersion, body: object) -> None:
        if stored.id == raced and not done:
            done.append(1)
            with services.store.session(write=True) as other:  # another pooled connection
                Repository(services, other, RequestContext.operator("test")).upsert(
                    {"resourceType": "Patient", "id": raced, "gender": "other"}
                )

    services.after_write.append(race)
    try:
        report = LoadReport()
        batch = [
            (f"x:{i}", {"resourceType": "Patient", "id": id_, "gender": "female"}, None, None)
            for i, id_ in enumerate(ids)
        ]
        write_batch(services, batch, report, context=RequestContext.operator("test"))
    finally:
        services.after_write.remove(race)
    assert (report.written, report.failures) == (30, [])
    versions = _rows(
        services,
        "SELECT version, method FROM resource_history WHERE resource_type = ? AND id = ? ORDER BY version",
        "Patient",
        raced,
    )
    assert [v for v, _ in versions] == [1, 2]  # the concurrent version kept, the load's on top
    with services.store.session(write=False) as s:
        current = s.current("Patient", raced)
        assert current is not None and current.version == 2
        assert orjson.loads(current.content or b"{}")["gender"] == "female"
    store.close()


def test_the_load_command_loads_for_an_organization(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ketnoi load --organization``: every version written records it (issue 10)."""
    from ketnoi.app import open_store
    from ketnoi.cli import main

    database, data = f"sqlite:///{tmp_path}/k.db", tmp_path / "p.ndjson"
    data.write_bytes(orjson.dumps({"resourceType": "Patient", "id": "p1"}))
    assert main(["load", "--database", database, "--organization", "bv-1", str(data)]) == 2
    assert "Organization/123" in capsys.readouterr().err
    assert main(["migrate", "--database", database]) == 0
    assert main(["load", "--database", database, "--organization", "Organization/bv-1", str(data)]) == 0
    store = open_store(database)
    try:
        with store.session(write=False) as s:
            current = s.current("Patient", "p1")
    finally:
        store.close()
    assert current is not None and current.org == "Organization/bv-1"


def _owners_of(services: Services) -> dict[str, object]:
    with services.store.session(write=False) as s:
        rows = s.query(SqlQuery("SELECT resource_type, id, org FROM resource", ()))
    return {f"{t}/{i}": org for t, i, org in rows}


def test_an_owners_file_says_whose_each_resource_is(fresh_services: Services, tmp_path: Path) -> None:
    """``ketnoi load --owners``: each resource it names is written for its organization, the others for
    ``--organization``; the demo's file gives every clinical resource a facility (ADR 0014)."""
    generate(patients=8, seed=5, out=tmp_path / "demo", fmt="ndjson")
    owners = read_owners(tmp_path / "demo" / "owners.csv")
    report = load_paths(
        fresh_services, [tmp_path / "demo"], batch_size=50, organization="Organization/so-y-te", owners=owners
    )
    assert report.written > len(owners) > 0 and not report.failures
    found = _owners_of(fresh_services)
    assert {ref: found[ref] for ref in owners} == owners
    assert {org for ref, org in found.items() if ref not in owners} == {"Organization/so-y-te"}
    assert {ref.split("/")[0] for ref in owners} >= {"Patient", "Encounter", "Observation", "Condition"}
    # Registry entries belong to the Sở Y tế above them (its manager keeps them); the national ones to nobody.
    departments = {
        f"Organization/{o['id']}"
        for line in (tmp_path / "demo" / "Organization.ndjson").read_bytes().splitlines()
        if "province" in str((o := orjson.loads(line)).get("type"))
    }
    registry = {
        ref: org for ref, org in owners.items() if ref.startswith(("Organization/", "Practitioner", "Location/"))
    }
    assert registry and set(registry.values()) <= departments
    assert {ref: org for ref, org in owners.items() if ref in departments} == {d: d for d in departments}
    # One transaction per batch whatever the owners: each batch leaves its one AuditEvent.
    assert _load_events(fresh_services) == math.ceil(len(found) / 50)


def _load_events(services: Services) -> int:
    with services.store.session(write=False) as s:
        rows = s.query(SqlQuery("SELECT event FROM audit_log", ()))
    return sum(b"ketnoi load" in bytes(event) for (event,) in rows)


def test_owners_hold_on_the_parallel_path_too(tmp_path: Path) -> None:
    generate(patients=6, seed=4, out=tmp_path / "demo", fmt="ndjson")
    owners = read_owners(tmp_path / "demo" / "owners.csv")
    seen = []
    for workers in (0, 2):
        services = _own_services(tmp_path, f"o{workers}")
        load_paths(services, [tmp_path / "demo"], batch_size=40, workers=workers, owners=owners)
        seen.append(_owners_of(services))
        services.store.close()
    assert seen[0] == seen[1] and {ref: seen[1][ref] for ref in owners} == owners


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Type,Org\nPatient/p1,Organization/o1\n", "resource,organization"),
        ("resource,organization\nPatient/p1,o1\n", ":2: expected Type/id,Organization/id"),
        ("resource,organization\nPatient/p1,Organization/o1\nnot a line\n", ":3:"),
        (None, "no such file"),
        (
            "resource,organization\nPatient/p1,Organization/o1\nPatient/p1,Organization/o1\n",
            ":3: Patient/p1 is listed twice",
        ),
        ("resource,organization\nNotAType/p1,Organization/o1\n", ":2: expected"),
    ],
)
def test_a_bad_owners_file_is_one_line_and_loads_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, says: str
) -> None:
    from ketnoi.app import open_store
    from ketnoi.cli import main

    database, data, owners = f"sqlite:///{tmp_path}/k.db", tmp_path / "p.ndjson", tmp_path / "owners.csv"
    data.write_bytes(orjson.dumps({"resourceType": "Patient", "id": "p1"}))
    if text is not None:
        owners.write_text(text, encoding="utf-8")
    assert main(["migrate", "--database", database]) == 0
    capsys.readouterr()
    assert main(["load", "--database", database, "--owners", str(owners), str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --owners:") and says in err, err
    store = open_store(database)
    try:
        with store.session(write=False) as s:
            assert s.current("Patient", "p1") is None
    finally:
        store.close()
