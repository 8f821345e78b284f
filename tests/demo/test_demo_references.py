"""References resolve inside the generated set; Bundles are well-formed transactions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ketnoi.demo.generate import BUNDLE_MAX, BUNDLES_DIR, Summary


def references(value: Any) -> Iterator[str]:
    """Every Reference.reference string anywhere inside a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def test_ndjson_files_hold_one_type_each(ndjson_run: tuple[Path, Summary]) -> None:
    out, summary = ndjson_run
    for path in out.glob("*.ndjson"):
        lines = path.read_bytes().splitlines()
        assert len(lines) == summary.counts[path.stem]
        assert all(orjson.loads(line)["resourceType"] == path.stem for line in lines)


def test_every_ndjson_reference_resolves(ndjson_resources: list[dict[str, Any]]) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in ndjson_resources}
    assert len(known) == len(ndjson_resources)  # ids are unique
    targets: Counter[str] = Counter()
    for res in ndjson_resources:
        for ref in references(res):
            assert ref in known, (res["resourceType"], ref)
            targets[ref.split("/")[0]] += 1
    assert {"Patient", "Encounter", "Organization", "Location", "Practitioner", "Condition"} <= set(targets)


def test_bundles_are_valid_transactions(bundles_run: tuple[Path, Summary]) -> None:
    out, summary = bundles_run
    lines = [p.read_bytes() for p in sorted((out / BUNDLES_DIR).glob("bundle-*.json"))]
    assert len(lines) == summary.bundles
    put: set[str] = set()
    counts: Counter[str] = Counter()
    seen_post = False
    patients_per_bundle = []
    sizes = []
    for line in lines:
        bundle = orjson.loads(line)
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        entries = bundle["entry"]
        assert 0 < len(entries) <= BUNDLE_MAX
        full_urls = {e["fullUrl"] for e in entries}
        assert len(full_urls) == len(entries)
        for e in entries:
            res, req = e["resource"], e["request"]
            counts[res["resourceType"]] += 1
            assert e["fullUrl"].startswith("urn:uuid:") and len(e["fullUrl"]) == 45
            if req["method"] == "PUT":
                assert not seen_post, "shared resources come first"
                assert req["url"] == f"{res['resourceType']}/{res['id']}"
                assert e["fullUrl"] == f"urn:uuid:{res['id']}"
                put.add(req["url"])
            else:
                seen_post = True
                assert req["method"] == "POST" and req["url"] == res["resourceType"]
                assert "id" not in res
        for e in entries:
            for ref in references(e["resource"]):
                if ref.startswith("urn:uuid:"):
                    assert ref in full_urls, ref  # resolves within the same Bundle
                else:
                    assert ref in put, ref  # or to a shared resource PUT by an earlier/this Bundle
        if seen_post:
            sizes.append(len(entries))
            patients_per_bundle.append(sum(1 for e in entries if e["resource"]["resourceType"] == "Patient"))
    assert dict(counts) == summary.counts
    assert all(n >= 1 for n in patients_per_bundle)
    # Patient Bundles hold 100-500 entries (the last one may be smaller).
    assert all(100 <= n <= BUNDLE_MAX for n in sizes[:-1])
    assert sum(patients_per_bundle) == summary.patients + summary.duplicates


def test_patient_care_stays_in_one_bundle(bundles_run: tuple[Path, Summary]) -> None:
    out, _ = bundles_run
    for path in sorted((out / BUNDLES_DIR).glob("bundle-*.json")):
        line = path.read_bytes()
        bundle = orjson.loads(line)
        patients = {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"}
        for e in bundle["entry"]:
            res = e["resource"]
            subject = res.get("subject") or res.get("patient") or res.get("beneficiary")
            if subject:
                assert subject["reference"] in patients
