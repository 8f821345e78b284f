"""search.compile: SQL shape, bound values only, keyset conditions."""

from __future__ import annotations

from ketnoi.search.compile import Position, compile_search
from ketnoi.search.extract import default_extractor
from ketnoi.search.parse import parse
from ketnoi.search.query import SearchQuery


def _query(types: tuple[str, ...], *params: tuple[str, str]) -> SearchQuery:
    return parse(types, list(params), default_extractor().params_for, strict=True)


def test_values_are_bound_never_inlined() -> None:
    evil = "x' OR '1'='1"
    q = _query(
        ("Observation",),
        ("subject:Patient.name", evil),
        ("_has:Provenance:target:agent", evil),
        ("code", evil),
        ("component-code-value-quantity", f"{evil}$1"),
    )
    page, count = compile_search(q, "http://h/fhir")
    for sql in (page, count):
        assert evil not in sql.sql and "OR '1'" not in sql.sql
        assert sql.sql.count("?") == len(sql.params)
    assert evil in page.params


def test_chain_compiles_to_nested_in_subqueries() -> None:
    page, _ = compile_search(_query(("Observation",), ("patient.general-practitioner.name", "le")), "")
    assert page.sql.count("FROM idx_reference") == 2
    assert page.sql.count("(target_type, target_id) IN (") == 2
    assert "FROM idx_string" in page.sql


def test_has_selects_the_referenced_side() -> None:
    page, _ = compile_search(_query(("Patient",), ("_has:Observation:patient:code", "1")), "")
    assert "SELECT target_type, target_id FROM idx_reference" in page.sql
    assert tuple(p for p in page.params if p in ("Observation", "patient"))[:2] == ("Observation", "patient")


def test_sort_and_keyset_position() -> None:
    q = _query(("Patient",), ("_sort", "-birthdate,family"))
    first, _ = compile_search(q, "")
    assert "ORDER BY (m.k0 IS NULL) ASC, m.k0 DESC, (m.k1 IS NULL) ASC, m.k1 ASC, m.resource_type ASC, m.id ASC" in (
        first.sql
    )
    after, _ = compile_search(q, "", Position((1.0e9, None), "Patient", "p1"))
    assert "m.k0 IS NULL OR m.k0 < ?" in after.sql
    assert after.sql.count("?") == len(after.params)
    before, _ = compile_search(q, "", Position((1.0e9, "an"), "Patient", "p1", before=True))
    assert "ORDER BY (m.k0 IS NULL) DESC, m.k0 ASC" in before.sql
