"""Every official R4 search parameter against every official example; checks docs/search-coverage.md.

Each (parameter, base type) pair of the R4 SearchParameter bundle gets a status: supported (rows are
extracted, or the value lives on the resource table), composite-deferred, or unsupported with a
reason. The unsupported set is pinned below, so a parameter silently dropping out fails the test.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from ketnoi.fhir.definitions import resource_types, search_parameters
from ketnoi.search.extract import Extractor, ParamPlan
from ketnoi.search.index import IndexRows

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "data" / "fhir-r4-examples" / "json"
REPORT = ROOT / "docs" / "search-coverage.md"

EXPECTED_UNSUPPORTED = {
    ("Location", "near"),
    ("Resource", "_query"),
    # composites the row model cannot hold: a reference first component, or three components
    ("DocumentReference", "relationship"),
    ("MolecularSequence", "chromosome-variant-coordinate"),
    ("MolecularSequence", "chromosome-window-coordinate"),
    ("MolecularSequence", "referenceseqid-variant-coordinate"),
    ("MolecularSequence", "referenceseqid-window-coordinate"),
}
NON_DOMAIN = {"Bundle", "Binary", "Parameters"}


@dataclass
class Pair:
    base: str
    code: str
    type: str
    status: str
    reason: str
    fast: int
    parts: int
    examples: int
    with_rows: int


def params_with_rows(rows: IndexRows) -> set[str]:
    found: set[str] = set()
    for kind in ("string", "token", "date", "number", "quantity", "reference", "uri"):
        for row in getattr(rows, kind):
            found.add(row.param.split(":", 1)[0])
    return found


@pytest.fixture(scope="module")
def examples() -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(EXAMPLES.glob("*.json")):
        resource = orjson.loads(path.read_bytes())
        assert resource["resourceType"] == path.name.split("-", 1)[0], path.name
        by_type[resource["resourceType"]].append(resource)
    return by_type


@pytest.fixture(scope="module")
def pairs(examples: dict[str, list[dict[str, Any]]]) -> list[Pair]:
    extractor = Extractor(search_parameters(), strict=True)  # strict: any failing expression raises
    produced: dict[str, list[set[str]]] = {
        rtype: [params_with_rows(extractor.extract(r)) for r in resources] for rtype, resources in examples.items()
    }
    out: list[Pair] = []
    for sp in search_parameters():
        for base in sp["base"]:
            types = _concrete(base)
            plan = _plan(extractor, types[0], sp["code"])
            hits = [found for t in types for found in produced.get(t, [])]
            out.append(
                Pair(
                    base,
                    sp["code"],
                    sp["type"],
                    _status(plan),
                    plan.reason,
                    plan.fast_parts,
                    len(plan.parts),
                    len(hits),
                    sum(sp["code"] in found for found in hits),
                )
            )
    return out


def _concrete(base: str) -> list[str]:
    if base == "Resource":
        return sorted(resource_types())
    if base == "DomainResource":
        return sorted(resource_types() - NON_DOMAIN)
    return [base]


def _plan(extractor: Extractor, resource_type: str, code: str) -> ParamPlan:
    return next(p for p in extractor.plans(resource_type) if p.code == code)


def _status(plan: ParamPlan) -> str:
    return {
        "supported": "supported",
        "resource-column": "supported",
        "composite": "supported",
        "unsupported": "unsupported",
    }[plan.status]


def test_every_pair_has_a_status(pairs: list[Pair]) -> None:
    total = sum(len(sp["base"]) for sp in search_parameters())
    counts: dict[str, int] = defaultdict(int)
    for pair in pairs:
        counts[pair.status] += 1
    assert len(pairs) == total == 1706
    assert counts["supported"] + counts["unsupported"] == total


def test_unsupported_is_exactly_the_expected_set(pairs: list[Pair]) -> None:
    assert {(p.base, p.code) for p in pairs if p.status == "unsupported"} == EXPECTED_UNSUPPORTED
    assert all(p.reason for p in pairs if p.status != "supported" or p.code in ("_id", "_lastUpdated"))


def test_composites_are_supported_but_five(pairs: list[Pair]) -> None:
    composites = [p for p in pairs if p.type == "composite"]
    assert len(composites) == 72  # 46 composite parameters, some on several bases
    assert sum(p.status == "supported" for p in composites) == 67


def test_every_supported_expression_compiles_to_parts(pairs: list[Pair]) -> None:
    extracted = [
        p
        for p in pairs
        if p.status == "supported"
        and p.type != "composite"  # extracted from their components' expressions (search/composite.py)
        and p.code not in ("_id", "_lastUpdated", "_text", "_content")
    ]
    assert [(p.base, p.code) for p in extracted if p.parts == 0] == []
    # The fast path covers nearly everything; fhirpathpy is the exception, not the rule.
    fast = sum(p.fast for p in extracted)
    assert fast / sum(p.parts for p in extracted) > 0.99


def test_examples_produce_rows(pairs: list[Pair]) -> None:
    covered = [p for p in pairs if p.status == "supported" and p.with_rows > 0]
    # A regression in a value writer or the type model shows up as a collapse of this number.
    assert len(covered) >= 700, len(covered)


def test_report_is_current(pairs: list[Pair]) -> None:
    """docs/search-coverage.md is checked, not rewritten, by the suite: a change in coverage must
    come with the regenerated report (``KETNOI_WRITE_REPORTS=1`` writes it)."""
    text = _report(pairs)
    if os.environ.get("KETNOI_WRITE_REPORTS") == "1":
        REPORT.write_text(text, encoding="utf-8")
    assert REPORT.read_text(encoding="utf-8") == text, (
        "docs/search-coverage.md is out of date: run KETNOI_WRITE_REPORTS=1 "
        ".venv/bin/pytest tests/search/test_extract_coverage.py and commit it"
    )


def _report(pairs: list[Pair]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for pair in pairs:
        counts[pair.status] += 1
    with_rows = sum(1 for p in pairs if p.status == "supported" and p.with_rows)
    parts = sum(p.parts for p in pairs)
    fast = sum(p.fast for p in pairs)
    lines = [
        "# Search parameter coverage (FHIR R4)",
        "",
        "Generated by `tests/search/test_extract_coverage.py`; do not edit by hand.",
        "",
        f"- (parameter, base type) pairs: **{len(pairs)}** ({len(search_parameters())} SearchParameter resources)",
        f"- supported: **{counts['supported']}** (of which {with_rows} produced rows from at least one "
        "official example; `_id`/`_lastUpdated` are served by the resource table)",
        f"- unsupported: **{counts['unsupported']}**",
        f"- expression parts: {parts}, of which {fast} run on the compiled fast path and {parts - fast} on fhirpathpy",
        "",
        "Examples = official examples of the base type (all types for Resource/DomainResource); "
        "rows = examples that produced at least one row. Path: fast/fhirpath parts.",
        "",
        "| type | code | search type | rows / examples | status | path | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in sorted(pairs, key=lambda p: (p.base, p.code)):
        path = f"{p.fast}/{p.parts - p.fast}" if p.parts else ""
        rows = f"{p.with_rows} / {p.examples}"
        lines.append(f"| {p.base} | {p.code} | {p.type} | {rows} | {p.status} | {path} | {p.reason} |")
    return "\n".join(lines) + "\n"
