"""Deterministic synthetic Vietnamese population (FHIR R4), streamed to NDJSON files or transaction Bundles.

* Same ``patients`` and ``seed`` → byte-identical output. Each patient ``i`` has its own RNG seeded from
  ``(seed, i)``, so the first N patients of a bigger run are exactly the patients of a run of N.
* Memory is constant: one patient (and, for bundles, one Bundle) is held at a time.
* Shared resources (the health system) come first; they depend on the seed only.
* Ground truth for record linkage: ``duplicates.csv`` (ketnoi.demo.duplicates) and, with ``hard``,
  ``twins.csv`` (ketnoi.demo.twins). ``iter_blocks_truth`` yields both per patient; ``iter_blocks`` keeps
  its ``(resources, duplicate)`` pairs.
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

from ketnoi.demo import appointments, duplicates, facilities, ids, people, twins, vaccines
from ketnoi.demo.care import PatientCare
from ketnoi.demo.owners import OwnersWriter

Resource = dict[str, Any]

FORMATS = ("ndjson", "bundles", "xml130")
OWNERS_FILE = "owners.csv"  # who owns each resource, for `ketnoi load --owners` (ketnoi.demo.owners)
BUNDLE_TARGET = 250  # flush a Bundle once it holds this many entries...
BUNDLE_MAX = 500  # ...or before it would exceed this many (a single larger patient gets its own Bundle)
DUPLICATES_FILE = "duplicates.csv"
TWINS_FILE = "twins.csv"
BUNDLES_DIR = "bundles"
_DUMPS_OPT = orjson.OPT_APPEND_NEWLINE


@dataclass(frozen=True, slots=True)
class DuplicateRecord:
    duplicate_id: str
    original_id: str
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TwinRecord:
    """A different person who shares the sibling's family name, birth date, sex and address (hard mode)."""

    twin_id: str
    sibling_id: str


@dataclass(frozen=True, slots=True)
class Block:
    """One patient's resources (then its duplicate's, then its twin's) and the ground truth about them."""

    resources: list[Resource]
    duplicate: DuplicateRecord | None
    twin: TwinRecord | None


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
    hard: bool = False
    twins: int = 0

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
        extra = f" (+{self.duplicates:,} duplicates)"
        if self.hard:
            extra = f" (+{self.duplicates:,} hard duplicates, +{self.twins:,} twins)"
        lines.append(
            f"patients {self.patients:,}{extra}, seed {self.seed}, "
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


def _twin_rng(seed: int, i: int) -> random.Random:
    # A stream of its own: with hard off it is never drawn from, so the normal output does not change.
    return random.Random(f"ketnoi-demo:{seed}:twin:{i}")


def _add_person(
    rng: random.Random, person: people.Person, hs: facilities.HealthSystem, urn: bool, out: list[Resource]
) -> None:
    """The person's Patient, Coverage, immunizations and care, registered at its commune's station."""
    station = hs.stations[person.province][person.commune]
    out.append(people.patient_resource(person, station.org_id))
    care = PatientCare(rng, person, hs, urn, out)
    if person.bhyt:
        out.append(
            people.coverage_resource(care.new_id(), person, care.patient_ref["reference"], hs.payer_id, station.code)
        )
    vaccines.immunizations(care)
    care.build()
    appointments.appointments(care)


def _add_duplicate(
    drng: random.Random,
    person: people.Person,
    hs: facilities.HealthSystem,
    urn: bool,
    out: list[Resource],
    hard: bool,
) -> DuplicateRecord:
    """The person registered again, with errors, at the provincial hospital, with visits there."""
    dup, errors = duplicates.make_duplicate(person, ids.rng_uuid(drng), drng, hard)
    hospital = hs.provincial[person.province]
    out.append(people.patient_resource(dup, hospital.org_id))
    dcare = PatientCare(drng, dup, hs, urn, out)
    dcare.station = hospital  # registered and seen at another facility
    dcare.build(chronic=False, episodes=0.5, kinds=("AMB", "EMER"))
    if len(out) and out[-1]["resourceType"] == "Patient":  # no visit drawn: give it one
        dcare.followup(people.AS_OF.replace(day=1))
    return DuplicateRecord(dup.id, person.id, tuple(errors))


def _add_twin(
    trng: random.Random, sibling: people.Person, hs: facilities.HealthSystem, urn: bool, out: list[Resource]
) -> TwinRecord | None:
    if trng.random() >= twins.TWIN_RATE:
        return None
    twin = twins.draw_twin(trng, sibling, ids.rng_uuid(trng))
    _add_person(trng, twin, hs, urn, out)
    return TwinRecord(twin.id, sibling.id)


def iter_blocks_truth(
    patients: int,
    seed: int,
    duplicate_rate: float = 0.02,
    *,
    hard: bool = False,
    urn: bool = False,
    system: facilities.HealthSystem | None = None,
) -> Iterator[Block]:
    """Per patient a ``Block``: its resources, those of its duplicate and (``hard``) its twin, if any, and
    the ground truth of both.

    ``hard`` draws the duplicates' errors as ``duplicates.HARD`` and gives 1 % of patients a twin.
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
        _add_person(rng, person, hs, urn, out)
        record = None
        drng = _duplicate_rng(seed, i)
        if duplicate_rate > 0 and drng.random() < duplicate_rate:
            record = _add_duplicate(drng, person, hs, urn, out, hard)
        twin = _add_twin(_twin_rng(seed, i), person, hs, urn, out) if hard else None
        yield Block(out, record, twin)


def iter_blocks(
    patients: int,
    seed: int,
    duplicate_rate: float = 0.02,
    *,
    hard: bool = False,
    urn: bool = False,
    system: facilities.HealthSystem | None = None,
) -> Iterator[tuple[list[Resource], DuplicateRecord | None]]:
    """Per patient: its resources (and those of its duplicate and twin, if any) and the duplicate's ground
    truth. The twins' ground truth is in ``iter_blocks_truth``."""
    for block in iter_blocks_truth(patients, seed, duplicate_rate, hard=hard, urn=urn, system=system):
        yield block.resources, block.duplicate


def iter_resources(patients: int, seed: int, duplicate_rate: float = 0.02, *, hard: bool = False) -> Iterator[Resource]:
    """Every resource, shared ones first, with relative references ``Type/<id>`` (the NDJSON content)."""
    hs = facilities.build(seed)
    yield from hs.resources
    for block, _dup in iter_blocks(patients, seed, duplicate_rate, hard=hard, system=hs):
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


class _Truth:
    """Writes ``duplicates.csv`` and, in hard mode, ``twins.csv`` (removing a stale one otherwise)."""

    def __init__(self, out: Path, summary: Summary) -> None:
        self.summary = summary
        self.dup_file = open(out / DUPLICATES_FILE, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.dups = csv.writer(self.dup_file, lineterminator="\n")
        self.dups.writerow(("duplicate_id", "original_id", "errors"))
        self.twin_file: IO[str] | None = None
        if summary.hard:
            self.twin_file = open(out / TWINS_FILE, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self.twins = csv.writer(self.twin_file, lineterminator="\n")
            self.twins.writerow(("twin_id", "sibling_id"))
        else:
            (out / TWINS_FILE).unlink(missing_ok=True)  # it would describe another run

    def add(self, block: Block) -> None:
        counts = self.summary.counts
        for res in block.resources:
            counts[res["resourceType"]] = counts.get(res["resourceType"], 0) + 1
        if block.duplicate:
            d = block.duplicate
            self.summary.duplicates += 1
            self.dups.writerow((d.duplicate_id, d.original_id, ";".join(d.errors)))
        if block.twin:
            self.summary.twins += 1
            self.twins.writerow((block.twin.twin_id, block.twin.sibling_id))

    def close(self) -> None:
        self.dup_file.close()
        if self.twin_file is not None:
            self.twin_file.close()


def _write_ndjson(out: Path, hs: facilities.HealthSystem, blocks: Iterator[Block], truth: _Truth) -> None:
    writer = _NdjsonWriter(out)
    with (out / OWNERS_FILE).open("w", encoding="utf-8", newline="") as owners_file:
        owners = OwnersWriter(owners_file, hs.resources)
        try:
            for res in hs.resources:
                writer.write(res)
            for block in blocks:
                truth.add(block)
                owners.add(block.resources)
                for res in block.resources:
                    writer.write(res)
        finally:
            writer.close()


def _write_bundles(out: Path, hs: facilities.HealthSystem, blocks: Iterator[Block], truth: _Truth) -> None:
    summary = truth.summary
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
    for block in blocks:
        if entries and len(entries) + len(block.resources) > BUNDLE_MAX:
            write_bundle(entries)
            entries = []
        truth.add(block)
        entries.extend(_entry_post(res) for res in block.resources)
        if len(entries) >= BUNDLE_TARGET:
            write_bundle(entries)
            entries = []
    if entries:
        write_bundle(entries)


def generate(
    patients: int, seed: int, out: Path, fmt: str = "ndjson", duplicate_rate: float = 0.02, hard: bool = False
) -> Summary:
    """Write ``patients`` synthetic patients (plus duplicates) and the health system under ``out``.

    ``fmt="ndjson"``: ``out/<ResourceType>.ndjson``, one resource per line. ``fmt="bundles"``:
    ``out/bundles/bundle-NNNNNNN.json``, one transaction Bundle per file, in load order: first the shared
    resources (PUT with ids), then the patients' care (POST, ``urn:uuid:`` references), whole patients per
    Bundle; ``ketnoi load out/bundles`` or a POST of each file to the server base loads them. Both write
    ``out/duplicates.csv`` (duplicate_id, original_id, errors separated by ";") and, with ``hard``
    (harder duplicates and 1 % twins, see ``iter_blocks_truth``), ``out/twins.csv`` (twin_id, sibling_id).
    ``fmt="xml130"``: the same patients' visits as claims XML envelopes, ``out/xml130/<MACSKCB>-<nnnn>.xml``
    (``ketnoi.demo.xml130``; no duplicates, no twins, no FHIR files).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "xml130":
        from ketnoi.demo.xml130 import generate_xml130  # imports this module: imported on use

        return generate_xml130(patients, seed, Path(out))
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary(patients, seed, fmt, out, hard=hard)
    hs = facilities.build(seed)
    for res in hs.resources:
        summary.counts[res["resourceType"]] = summary.counts.get(res["resourceType"], 0) + 1
    blocks = iter_blocks_truth(patients, seed, duplicate_rate, hard=hard, urn=fmt == "bundles", system=hs)
    truth = _Truth(out, summary)
    try:
        (_write_ndjson if fmt == "ndjson" else _write_bundles)(out, hs, blocks, truth)
    finally:
        truth.close()
    summary.seconds = time.perf_counter() - started
    return summary


def read_duplicates(path: Path) -> list[DuplicateRecord]:
    """Parse a ``duplicates.csv`` written by ``generate``."""
    text = Path(path).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return [DuplicateRecord(r[0], r[1], tuple(x for x in r[2].split(";") if x)) for r in rows[1:]]


def read_twins(path: Path) -> list[TwinRecord]:
    """Parse a ``twins.csv`` written by ``generate`` with ``hard``."""
    text = Path(path).read_text(encoding="utf-8")
    return [TwinRecord(r[0], r[1]) for r in list(csv.reader(io.StringIO(text)))[1:]]
