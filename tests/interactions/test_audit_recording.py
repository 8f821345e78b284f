"""AuditEvents for every interaction (THREATS.md AUD-01, AUD-04; ADR 0015), on both backends.

A scripted session of a clinician (create, read, vread, a search returning two patients' data,
update, patch, delete, history, a transaction of three entries) and two refused reads must leave
exactly the expected records, BALP-shaped; a rolled-back write leaves no record of a write; the
chain verifies afterwards; reads answer only once their records are committed (group commit).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import orjson
import pytest

from ketnoi.auth.scopes import parse_scopes
from ketnoi.bulk.load import load_paths
from ketnoi.interactions import audit
from ketnoi.interactions.audit_events import narrative
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import unit_of_work
from ketnoi.interactions.services import Services
from ketnoi.security.audit import stored_ring, verify
from ketnoi.store.auditlog import AuditEntry
from ketnoi.validation.structure import validate
from tests.interactions.audit_helpers import (
    CLINICIAN,
    OPEN,
    Record,
    as_,
    body,
    call,
    create,
    head,
    observation,
    patient_ctx,
    records,
)

CODE = "http://loinc.org|8867-4"


def _in_care(s: Services, patient: str) -> None:
    """A current Encounter of ``patient`` at the clinician's facility: a care relation that opens
    the patient's record to it (written by an operator for that organization)."""
    encounter = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": date.today().isoformat()},
    }
    create(s, encounter, replace(OPEN, organization=CLINICIAN.organization))


def _script(s: Services, a: str, b: str, obs_b: str, obs_b2: str) -> dict[str, str]:
    """The clinician's session, one request id per step; the ids it made."""
    c = CLINICIAN
    o1 = str(body(call(s, as_(c, "s01"), "POST", "Observation", observation(a)))["id"])
    assert call(s, as_(c, "s02"), "GET", f"Observation/{o1}").status == 200
    assert call(s, as_(c, "s03"), "GET", f"Observation/{o1}/_history/1").status == 200
    # _elements drops the subject from the answer: the record still names both patients.
    found = body(call(s, as_(c, "s04"), "GET", f"Observation?code={CODE}&_elements=status"))
    assert {e["resource"]["id"] for e in found["entry"]} == {o1, obs_b}
    assert call(s, as_(c, "s05"), "PUT", f"Observation/{o1}", {**observation(a), "id": o1}).status == 200
    patch = [{"op": "replace", "path": "/status", "value": "amended"}]
    assert call(s, as_(c, "s06"), "PATCH", f"Observation/{o1}", patch, "application/json-patch+json").status == 200
    assert call(s, as_(c, "s07"), "DELETE", f"Observation/{o1}").status == 200
    assert call(s, as_(c, "s08"), "GET", f"Observation/{o1}/_history").status == 200
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": observation(b), "request": {"method": "POST", "url": "Observation"}},
            {
                "resource": {**observation(b), "id": obs_b2},
                "request": {"method": "PUT", "url": f"Observation/{obs_b2}"},
            },
            {"request": {"method": "GET", "url": f"Patient/{a}"}},
        ],
    }
    done = body(call(s, as_(c, "s09"), "POST", "", transaction))
    new = done["entry"][0]["response"]["location"].split("/")[-3]
    # Refused: another patient's data (404, as if nothing were there), and a type outside the scopes (403).
    assert call(s, patient_ctx(a, "s10", "patient/*.rs"), "GET", f"Observation/{obs_b}").status == 404
    narrow = as_(c, "s11", scopes=parse_scopes("user/Patient.rs"))
    assert call(s, narrow, "GET", f"Observation/{obs_b}").status == 403
    return {"o1": o1, "new": new}


def test_a_scripted_session_leaves_exactly_the_expected_audit_events(fresh_services: Services) -> None:
    s = fresh_services
    a, b = create(s, {"resourceType": "Patient"}), create(s, {"resourceType": "Patient"})
    obs_b, obs_b2 = create(s, observation(b)), create(s, observation(b, "1-1"))
    for patient in (a, b):  # the clinician's facility treats both: their records are open to it (ADR 0017)
        _in_care(s, patient)
    start = head(s)
    ids = _script(s, a, b, obs_b, obs_b2)
    o1, new = ids["o1"], ids["new"]
    log = records(s, start)
    v = f"Observation/{o1}/_history"
    expected = [
        ("s01", "create", "C", "0", f"{v}/1", a),
        ("s02", "read", "R", "0", f"{v}/1", a),
        ("s03", "vread", "R", "0", f"{v}/1", a),
        *sorted(("s04", "search-type", "E", "0", None, p) for p in (a, b)),
        ("s05", "update", "U", "0", f"{v}/2", a),
        ("s06", "patch", "U", "0", f"{v}/3", a),
        ("s07", "delete", "D", "0", f"{v}/4", a),  # the patient of the version it deleted
        ("s08", "history-instance", "R", "0", f"Observation/{o1}", a),
        ("s09", "create", "C", "0", f"Observation/{new}/_history/1", b),
        ("s09", "update", "U", "0", f"Observation/{obs_b2}/_history/2", b),
        ("s09", "read", "R", "0", f"Patient/{a}/_history/1", a),
        ("s09", "transaction", "E", "0", None, None),  # the Bundle itself
        ("s10", "read", "R", "4", f"Observation/{obs_b}", None),
        ("s11", "read", "R", "4", f"Observation/{obs_b}", None),
    ]
    # In request order: the log holds the reads' records once the journal moves them (ADR 0018),
    # so a later write's record may come before them; each carries the time it was made.
    assert sorted((r.key() for r in log), key=lambda k: k[0]) == expected
    assert [r.event["recorded"] for r in sorted(log, key=lambda r: r.request_id)] == sorted(
        r.event["recorded"] for r in log
    )
    for record in log:
        _check_shape(record)
    clinician = [r for r in log if r.request_id not in ("s10",)]
    for record in clinician:
        assert record.agent("110153")["who"]["identifier"]["value"] == "emr-f1"  # type: ignore[index]
        assert record.agent("110153")["network"]["address"] == "10.1.2.3"  # type: ignore[index]
        user = record.agent("IRCP") or record.agent("AUT")
        assert user is not None and user["who"]["reference"] == "Practitioner/dr-lan" and user["requestor"] is True
        assert user["who"]["identifier"]["value"] == "lan" and user["policy"] == ["jti-lan-1"]
        assert record.agent("PROV")["who"]["reference"] == "Organization/F1"  # type: ignore[index]
        assert record.event["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    writes = [r for r in log if r.event["action"] in ("C", "U", "D")]
    assert writes and all(r.agent("AUT") is not None for r in writes)  # BALP: the writer is the author
    assert "code=" in (next(r for r in log if r.request_id == "s04").query or "")
    refused = {r.request_id: r for r in log if r.event["outcome"] == "4"}
    assert "insufficient_scope" in refused["s11"].event["outcomeDesc"]
    assert refused["s10"].agent("110153")["network"]["address"] == "10.9.9.9"  # type: ignore[index]
    report = verify(s.store, None, stored_ring(s.store, time.time()))
    assert report.ok, report.line()


def _check_shape(record: Record) -> None:
    """BALP's required elements, and a valid R4 AuditEvent."""
    event = record.event
    assert event["type"]["code"] == "rest" and event["recorded"] and event["source"]["observer"]
    assert {a["type"]["coding"][0]["code"] for a in event["agent"]} >= {"110153", "110152"}
    request = record.entity("request")
    assert request is not None and request["what"]["identifier"]["value"] == record.request_id
    patient = record.entity("patient")
    assert (patient["what"]["reference"] if patient else None) == (
        f"Patient/{record.patient}" if record.patient else None
    )
    assert "text" not in event  # the narrative is made when the event is served (audit_events.narrative)
    assert 'lang="vi"' in narrative(event) and 'lang="en"' in narrative(event)
    errors = [i for i in validate(event, strict=True) if i.severity in ("error", "fatal")]
    assert errors == [], errors


def test_a_rolled_back_transaction_leaves_no_record_of_its_writes(fresh_services: Services) -> None:
    s = fresh_services
    a = create(s, {"resourceType": "Patient"})
    start = head(s)
    failing = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": observation(a), "request": {"method": "POST", "url": "Observation"}},
            {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    r = call(s, as_(CLINICIAN, "rb1"), "POST", "", failing)
    assert r.status == 400
    log = records(s, start)
    assert [rec.key() for rec in log] == [("rb1", "transaction", "E", "4", None, None)]  # the refusal only
    assert body(call(s, OPEN, "GET", f"Observation?subject=Patient/{a}"))["total"] == 0

    # In the store itself: records appended in a transaction that then fails are gone with it.
    before = head(s)
    entry = AuditEntry(time.time(), "rb2", a, b'{"resourceType":"AuditEvent"}')
    with pytest.raises(RuntimeError), unit_of_work(s, RequestContext.internal("t"), write=True) as repo:
        repo.create(observation(a))
        audit.append(repo, [entry])
        raise RuntimeError("after the append, before the commit")
    assert head(s) == before
    assert verify(s.store, None, stored_ring(s.store, time.time())).ok


def test_a_read_answers_only_once_its_record_is_committed(fresh_services: Services) -> None:
    """8 concurrent readers: every 200 finds its records in the log at the moment it returns."""
    s = fresh_services
    a = create(s, {"resourceType": "Patient"})
    obs = create(s, observation(a))
    _in_care(s, a)
    barrier = threading.Barrier(8)
    missing: list[str] = []
    statuses: list[int] = []

    def reader(n: int) -> None:
        barrier.wait()
        for k in range(5):
            rid = f"gc-{n}-{k}"
            r = call(s, as_(CLINICIAN, rid), "GET", f"Observation/{obs}")
            statuses.append(r.status)
            if r.status == 200 and rid not in {rec.request_id for rec in records(s, head(s) - 60)}:
                missing.append(rid)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 40 and missing == []
    reads = [r for r in records(s) if (r.request_id or "").startswith("gc-")]
    assert len(reads) == 40 and {r.patient for r in reads} == {a}


def test_group_commit_gathers_the_waiting_requests_into_one_transaction() -> None:
    first_taken = threading.Event()
    release = threading.Event()
    batches: list[int] = []

    def append(entries: list[AuditEntry]) -> None:
        batches.append(len(entries))
        if len(batches) == 1:
            first_taken.set()
            release.wait(10)  # the first transaction is slow: the others queue behind it

    group = audit.GroupCommit(append, wait_s=10)
    entry = AuditEntry(1.0, "r", None, b"{}")
    threads = [threading.Thread(target=group.append, args=([entry],)) for _ in range(8)]
    threads[0].start()
    assert first_taken.wait(10)
    for t in threads[1:]:
        t.start()
    time.sleep(0.3)
    release.set()
    for t in threads:
        t.join(10)
    assert batches == [1, 7]


def test_a_read_whose_record_cannot_be_written_answers_503(fresh_services: Services, tmp_path: Path) -> None:
    s = fresh_services
    a = create(s, {"resourceType": "Patient"})
    recorder = audit.recorder_of(s)
    assert recorder is not None

    def broken(entries: list[AuditEntry]) -> None:
        raise OSError("disk full")

    # The journal cannot be written (its folder is a file): 503, whatever the answer would be.
    journal, blocked = recorder.spool, tmp_path / "not-a-folder"
    blocked.write_text("")
    recorder.spool = audit.Spool(blocked, *audit.journal_log(s.store))
    try:
        r = call(s, as_(CLINICIAN, "down"), "GET", f"Patient/{a}")
    finally:
        recorder.spool = journal
    assert r.status == 503 and body(r)["issue"][0]["code"] == "transient"
    # Without a journal, the group commit: a failed append is a 503 too.
    saved, recorder.spool = recorder.group._append, None
    recorder.group._append = broken
    try:
        r = call(s, as_(CLINICIAN, "down2"), "GET", f"Patient/{a}")
    finally:
        recorder.group._append, recorder.spool = saved, journal
    assert r.status == 503 and body(r)["issue"][0]["code"] == "transient"
    assert not {"down", "down2"} & {rec.request_id for rec in records(s)}

    stuck = audit.GroupCommit(lambda entries: time.sleep(2), wait_s=0.2)
    holder = threading.Thread(target=stuck.append, args=([AuditEntry(1.0, "x", None, b"{}")],))
    holder.start()
    time.sleep(0.1)
    with pytest.raises(audit.AuditUnavailable):  # queued behind a transaction that outlasts its wait
        stuck.append([AuditEntry(1.0, "y", None, b"{}")])
    holder.join()


def test_bulk_loads_leave_one_record_per_batch(fresh_services: Services, tmp_path: Path) -> None:
    s = fresh_services
    lines = [{"resourceType": "Patient", "id": f"bulk-{n}"} for n in range(5)]
    lines += [{**observation(f"bulk-{n}"), "id": f"bulk-obs-{n}"} for n in range(5)]
    (tmp_path / "in.ndjson").write_bytes(b"\n".join(orjson.dumps(x) for x in lines))
    start = head(s)
    report = load_paths(s, [tmp_path / "in.ndjson"], batch_size=4)
    assert report.written == 10
    log = [r for r in records(s, start) if r.event["type"]["code"] == "110107"]
    assert len(log) == 3  # batches of 4, 4 and 2
    counts: dict[str, int] = {}
    for record in log:
        job = record.event["entity"][0]
        for detail in job["detail"]:
            counts[detail["type"]] = counts.get(detail["type"], 0) + int(detail["valueString"])
        assert record.patient is None and record.event["action"] == "C"
        assert [i for i in validate(record.event, strict=True) if i.severity in ("error", "fatal")] == []
    assert counts == {"Patient": 5, "Observation": 5}
    again = load_paths(s, [tmp_path / "in.ndjson"], batch_size=4)
    assert again.unchanged == 10
    assert len([r for r in records(s, start) if r.event["type"]["code"] == "110107"]) == 3  # nothing written


def test_auditing_can_be_turned_off(tmp_path: Path) -> None:
    from ketnoi.app import build_services, open_store, stop_services
    from ketnoi.config import ConfigError, Settings

    url = f"sqlite:///{tmp_path}/off.db"
    store = open_store(url)
    store.migrate()
    try:
        services = build_services(Settings(database=url, auth="off", audit="off"), store)
        create(services, {"resourceType": "Patient"})
        assert records(services) == []
        with pytest.raises(ConfigError):
            build_services(Settings(database=url, auth="off", audit="maybe"), store)
    finally:
        stop_services(services)
        store.close()
