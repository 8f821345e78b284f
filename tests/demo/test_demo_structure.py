"""Generated resources are structurally valid FHIR R4 and use the expected terminologies."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from ketnoi.demo import catalog
from ketnoi.demo.generate import BUNDLES_DIR, Summary, iter_resources

DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}\+07:00)?")


def _sample() -> list[dict[str, Any]]:
    """About 2,000 resources: a slice of every shared type and all resources of ~50 patients."""
    resources = list(iter_resources(60, 4, duplicate_rate=0.1))
    by_type: Counter[str] = Counter()
    sample = []
    for res in resources:
        rtype = res["resourceType"]
        if rtype in {"Organization", "Location", "Practitioner", "PractitionerRole"}:
            by_type[rtype] += 1
            if by_type[rtype] > 150:
                continue
        sample.append(res)
    return sample


def test_no_structural_errors() -> None:
    structure = pytest.importorskip("ketnoi.validation.structure")
    sample = _sample()
    assert len(sample) > 1500
    for res in sample:
        errors = [i for i in structure.validate(res) if i.severity in ("error", "fatal")]
        assert not errors, (res["resourceType"], errors)


def test_bundles_have_no_structural_errors(bundles_run: tuple[Path, Summary]) -> None:
    structure = pytest.importorskip("ketnoi.validation.structure")
    out, _ = bundles_run
    for path in sorted((out / BUNDLES_DIR).glob("bundle-*.json"))[:12]:
        bundle = orjson.loads(path.read_bytes())
        errors = [i for i in structure.validate(bundle) if i.severity in ("error", "fatal")]
        assert not errors, errors[:5]


def test_clinical_content(ndjson_resources: list[dict[str, Any]]) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for res in ndjson_resources:
        by_type.setdefault(res["resourceType"], []).append(res)
    classes = Counter(e["class"]["code"] for e in by_type["Encounter"])
    assert set(classes) == {"AMB", "EMER", "IMP", "VR"}
    assert classes["AMB"] > classes["EMER"] + classes["IMP"] + classes["VR"]
    for e in by_type["Encounter"]:
        assert e["period"]["start"] <= e["period"]["end"]
        assert DATE_TIME.fullmatch(e["period"]["start"])
        assert e["period"]["end"][:10] <= "2026-06-30"
    icd = Counter(c["code"]["coding"][0]["code"] for c in by_type["Condition"])
    assert all(c["code"]["coding"][0]["system"] == catalog.ICD10 for c in by_type["Condition"])
    assert {"I10", "J06.9"} <= set(icd)
    assert all(re.fullmatch(r"[A-Z]\d{2}(\.\d{1,2})?", code) for code in icd)
    loinc = Counter(o["code"]["coding"][0]["code"] for o in by_type["Observation"])
    assert {"85354-9", "8867-4", "8310-5", "29463-7", "8302-2", "39156-5", "2345-7"} <= set(loinc)
    for o in by_type["Observation"]:
        assert o["code"]["coding"][0]["system"] == catalog.LOINC
        category = o["category"][0]["coding"][0]["code"]
        quantities = [o["valueQuantity"]] if "valueQuantity" in o else [c["valueQuantity"] for c in o["component"]]
        for q in quantities:
            assert q["system"] == catalog.UCUM and q["code"]
        if category == "laboratory":
            assert o["referenceRange"] and o["interpretation"]
        else:
            assert category == "vital-signs"
        if o["code"]["coding"][0]["code"] == "85354-9":
            assert [c["code"]["coding"][0]["code"] for c in o["component"]] == ["8480-6", "8462-4"]
    cvx = Counter(i["vaccineCode"]["coding"][0]["code"] for i in by_type["Immunization"])
    assert {"08", "19", "198", "05", "04", "39"} <= set(cvx)
    atc = Counter(m["medicationCodeableConcept"]["coding"][0]["code"] for m in by_type["MedicationRequest"])
    assert {"C08CA01", "A10BA02", "N02BE01"} <= set(atc) or {"N02BE01", "J01CA04"} <= set(atc)
    orgs = by_type["Organization"]
    codes = [i["value"] for o in orgs for i in o.get("identifier", []) if i["system"].endswith("/provider-code")]
    assert codes and all(re.fullmatch(r"\d{5}", c) for c in codes)
    assert len(codes) == len(set(codes))
    assert sum(1 for o in orgs if "partOf" not in o) == 2  # the Ministry of Health and the payer


def test_immunizations_follow_the_epi_schedule(ndjson_resources: list[dict[str, Any]]) -> None:
    births = {p["id"]: p["birthDate"] for p in ndjson_resources if p["resourceType"] == "Patient"}
    from datetime import date

    for imm in (r for r in ndjson_resources if r["resourceType"] == "Immunization"):
        born = date.fromisoformat(births[imm["patient"]["reference"].split("/")[1]])
        given = date.fromisoformat(imm["occurrenceDateTime"])
        days = (given - born).days
        code = imm["vaccineCode"]["coding"][0]["code"]
        assert 0 <= days < 800
        if code == "08":
            assert days <= 20  # hepatitis B birth dose
        if code == "198":
            assert 61 <= days <= 150  # 5-in-1 at 2, 3 and 4 months
        if code == "04":
            assert days >= 548  # MR at 18 months
