"""``POST /fhir/$import-xml130`` over HTTP: the envelope itself as the body (Content-Type application/xml)."""

from __future__ import annotations

import httpx

from ketnoi.demo.xml130 import iter_visits
from ketnoi.xml130.writer import envelope_bytes


def test_the_envelope_posted_as_xml_is_imported_and_answered_with_the_report(client: httpx.Client) -> None:
    facility, tables = next(iter(iter_visits(1, 21)))
    envelope = envelope_bytes(facility, [tables], created="202611300800")
    posted = client.post("/$import-xml130", content=envelope, headers={"Content-Type": "application/xml"})
    assert posted.status_code == 200, posted.text
    outcome = posted.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "1 visits" in outcome["issue"][0]["diagnostics"]
    ma_lk = tables["XML1"][0]["MA_LK"]
    found = client.get("/Encounter", params={"identifier": f"https://fhir.ketnoi.vn/sid/ma-lk/{facility}|{ma_lk}"})
    assert found.json()["total"] == 1
    # FHIR XML stays refused everywhere else: the claims XML is this operation's own format.
    other = client.post("/Patient", content=b"<Patient/>", headers={"Content-Type": "application/xml"})
    assert other.status_code == 415
    hostile = b'<?xml version="1.0"?><!DOCTYPE GIAMDINHHS [<!ENTITY x SYSTEM "file:///etc/passwd">]><GIAMDINHHS>&x;</GIAMDINHHS>'
    refused = client.post("/$import-xml130", content=hostile, headers={"Content-Type": "text/xml"})
    assert refused.status_code == 400 and "root:" not in refused.text
