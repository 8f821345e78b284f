"""Deterministic synthetic Vietnamese population (FHIR R4), streamed to NDJSON files or transaction Bundles.

* Same ``patients`` and ``seed`` → byte-identical output. Each patient ``i`` has its own RNG seeded from
  ``(seed, i)``, so the first N patients of a bigger run are exactly the patients of a run of N.
* Memory is constant: one patient (and, for bundles, one Bundle) is held at a time.
* Shared resources (the health system) come first; they depend on the seed only.
"""

from __future__ import annotations

import csv
import io
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from ketnoi.demo import duplicates, facilities, ids, people, vaccines
from ketnoi.demo.care import PatientCare

Resource = dict[str, Any]

FORMATS = ("ndjson", "bundles", "xml130")
BUNDLE_TARGET = 250  # flush a Bundle once it holds this many entries...
BUNDLE_MAX = 500  # ...or before it would exceed this many (a single larger patient gets its own Bundle)
DUPLICATES_FILE = "duplicates.csv"
BUNDLES_DIR = "bundles"
_DUMPS_OPT = orjson.OPT_APPEND_NEWLINE


@dataclass(frozen=True, slots=True)
class DuplicateRecord:
    duplicate_id: str
    original_id: str
    errors: tuple[str, ...]


@dataclass(slots=True)
class Summary:
    patients: int
    seed: int
    fmt: str
    out: Path | None
    counts: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    bundles: int = 0
    seconds: float = 0.0

    @property
    def resources(self) -> int:
        return sum(self.counts.values())

    @property
    def patients_per_second(self) -> float:
        return self.patients / self.seconds if self.seconds > 0 else 0.0

    @property
    def resources_per_second(self) -> float:
        return self.resources / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> str:
        """A plain-text summary table."""
        width = max([len(k) for k in self.counts] + [len("Resource type")])
        lines = [f"{'Resource type':<{width}}  {'Count':>12}", f"{'-' * width}  {'-' * 12}"]
        lines += [f"{k:<{width}}  {v:>12,}" for k, v in sorted(self.counts.items())]
        lines += [f"{'-' * width}  {'-' * 12}", f"{'Total':<{width}}  {self.resources:>12,}", ""]
        lines.append(
            f"patients {self.patients:,} (+{self.duplicates:,} duplicates), seed {self.seed}, "
            f"format {self.fmt}" + (f", {self.bundles:,} bundles" if self.fmt == "bundles" else "")
        )
        lines.append(
            f"{self.seconds:.2f} s: {self.patients_per_second:,.0f} patients/s, "
            f"{self.resources_per_second:,.0f} resources/s"
        )
        if self.out is not None:
            lines.append(f"written to {self.out}")
        return "\n".join(lines)


def _patient_rng(seed: int, i: int) -> random.Random:
    return random.Random(f"ketnoi-demo:{seed}:patient:{i}")


def _duplicate_rng(seed: int, i: int) -> random.Random:
    return random.Random(f"ketnoi-demo:{seed}:duplicate:{i}")


def iter_blocks(
    patients: int,
    seed: int,
    duplicate_rate: float = 0.02,
    *,
    urn: bool = False,
    system: facilities.HealthSystem | None = None,
) -> Iterator[tuple[list[Resource], DuplicateRecord | None]]:
    """Per patient: its resources (and those of its duplicate, if any) and the duplicate's ground truth.

    With ``urn`` the references between a patient's resources are ``urn:uuid:<id>`` (for Bundles); the
    references to shared resources are always ``Type/<id>``.
    """
    if patients < 0:
        raise ValueError("patients must be >= 0")
    if not 0.0 <= duplicate_rate <= 1.0:
        raise ValueError("duplicate_rate must be between 0 and 1")
    hs = system or facilities.build(seed)
    for i in range(patients):
        rng = _patient_rng(seed, i)
        out: list[Resource] = []
        person = people.draw_person(rng, ids.rng_uuid(rng))
        station = hs.stations[person.province][person.commune]
        out.append(people.patient_resource(person, station.org_id))
        care = PatientCare(rng, person, hs, urn, out)
        if person.bhyt:
            out.append(
                people.coverage_resource(
                    care.new_id(), person, care.patient_ref["reference"], hs.payer_id, station.code
                )
            )
        vaccines.immunizations(care)
        care.build()
        record = None
        drng = _duplicate_rng(seed, i)
        if duplicate_rate > 0 and drng.random() < duplicate_rate:
            dup, errors = duplicates.make_duplicate(person, ids.rng_uuid(drng), drng)
            hospital = hs.provincial[person.province]
            out.append(people.patient_resource(dup, hospital.org_id))
            dcare = PatientCare(drng, dup, hs, urn, out)
            dcare.station = hospital  # registered and seen at another facility
            dcare.build(chronic=False, episodes=0.5, kinds=("AMB", "EMER"))
            if len(out) and out[-1]["resourceType"] == "Patient":  # no visit drawn: give it one
                dcare.followup(people.AS_OF.replace(day=1))
            record = DuplicateRecord(dup.id, person.id, tuple(errors))
        yield out, record


def iter_resources(patients: int, seed: int, duplicate_rate: float = 0.02) -> Iterator[Resource]:
    """Every resource, shared ones first, with relative references ``Type/<id>`` (the NDJSON content)."""
    hs = facilities.build(seed)
    yield from hs.resources
    for block, _dup in iter_blocks(patients, seed, duplicate_rate, system=hs):
        yield from block


class _NdjsonWriter:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: dict[str, IO[bytes]] = {}

    def write(self, res: Resource) -> None:
        rtype = res["resourceType"]
        f = self.files.get(rtype)
        if f is None:
            f = self.files[rtype] = open(self.out / f"{rtype}.ndjson", "wb", buffering=1 << 20)  # noqa: SIM115
        f.write(orjson.dumps(res, option=_DUMPS_OPT))

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _entry_put(res: Resource) -> Resource:
    rtype, rid = res["resourceType"], res["id"]
    return {
        "fullUrl": f"urn:uuid:{rid}",
        "resource": res,
        "request": {"method": "PUT", "url": f"{rtype}/{rid}"},
    }


def _entry_post(res: Resource) -> Resource:
    rid = res.pop("id")
    return {
        "fullUrl": f"urn:uuid:{rid}",
        "resource": res,
        "request": {"method": "POST", "url": res["resourceType"]},
    }


def bundle_name(number: int) -> str:
    """File name of the ``number``-th Bundle (1-based); names sort in load order."""
    return f"bundle-{number:07d}.json"


def _bundle(entries: list[Resource]) -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}, option=_DUMPS_OPT)


def generate(patients: int, seed: int, out: Path, fmt: str = "ndjson", duplicate_rate: float = 0.02) -> Summary:
    """Write ``patients`` synthetic patients (plus duplicates) and the health system under ``out``.

    ``fmt="ndjson"``: ``out/<ResourceType>.ndjson``, one resource per line. ``fmt="bundles"``:
    ``out/bundles/bundle-NNNNNNN.json``, one transaction Bundle per file, in load order: first the shared
    resources (PUT with ids), then the patients' care (POST, ``urn:uuid:`` references), whole patients per
    Bundle; ``ketnoi load out/bundles`` or a POST of each file to the server base loads them. Both write
    ``out/duplicates.csv`` (duplicate_id, original_id, errors separated by ";"). ``fmt="xml130"``: the same
    patients' visits as claims XML envelopes, ``out/xml130/<MACSKCB>-<nnnn>.xml`` (``ketnoi.demo.xml130``;
    no duplicates, no FHIR files).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "xml130":
        from ketnoi.demo.xml130 import generate_xml130  # imports this module: imported on use

        return generate_xml130(patients, seed, Path(out))
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary(patients, seed, fmt, out)
    counts = summary.counts
    hs = facilities.build(seed)
    for res in hs.resources:
        counts[res["resourceType"]] = counts.get(res["resourceType"], 0) + 1
    urn = fmt == "bundles"
    with open(out / DUPLICATES_FILE, "w", encoding="utf-8", newline="") as dup_file:
        dup_csv = csv.writer(dup_file, lineterminator="\n")
        dup_csv.writerow(("duplicate_id", "original_id", "errors"))
        blocks = iter_blocks(patients, seed, duplicate_rate, urn=urn, system=hs)
        if fmt == "ndjson":
            writer = _NdjsonWriter(out)
            try:
                for res in hs.resources:
                    writer.write(res)
                for block, record in blocks:
                    for res in block:
                        rtype = res["resourceType"]
                        counts[rtype] = counts.get(rtype, 0) + 1
                        writer.write(res)
                    if record:
                        summary.duplicates += 1
                        dup_csv.writerow((record.duplicate_id, record.original_id, ";".join(record.errors)))
            finally:
                writer.close()
        else:
            bundle_dir = out / BUNDLES_DIR
            bundle_dir.mkdir(exist_ok=True)
            for stale in bundle_dir.glob("bundle-*.json"):
                stale.unlink()

            def write_bundle(entries: list[Resource]) -> None:
                summary.bundles += 1
                (bundle_dir / bundle_name(summary.bundles)).write_bytes(_bundle(entries))

            shared = [_entry_put(res) for res in hs.resources]
            for k in range(0, len(shared), BUNDLE_MAX):
                write_bundle(shared[k : k + BUNDLE_MAX])
            entries: list[Resource] = []
            for block, record in blocks:
                if entries and len(entries) + len(block) > BUNDLE_MAX:
                    write_bundle(entries)
                    entries = []
                for res in block:
                    rtype = res["resourceType"]
                    counts[rtype] = counts.get(rtype, 0) + 1
                    entries.append(_entry_post(res))
                if record:
                    summary.duplicates += 1
                    dup_csv.writerow((record.duplicate_id, record.original_id, ";".join(record.errors)))
                if len(entries) >= BUNDLE_TARGET:
                    write_bundle(entries)
                    entries = []
            if entries:
                write_bundle(entries)
    summary.seconds = time.perf_counter() - started
    return summary


def read_duplicates(path: Path) -> list[DuplicateRecord]:
    """Parse a ``duplicates.csv`` written by ``generate``."""
    text = Path(path).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return [DuplicateRecord(r[0], r[1], tuple(x for x in r[2].split(";") if x)) for r in rows[1:]]
