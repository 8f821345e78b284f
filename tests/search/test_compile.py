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


def test_has_is_exists_correlated_on_the_referenced_row() -> None:
    page, count = compile_search(_query(("Patient",), ("_has:Observation:patient:code", "1")), "")
    assert "EXISTS (SELECT 1 FROM idx_reference hx0 WHERE hx0.resource_type = ? AND hx0.param = ?" in page.sql
    assert "hx0.target_id = r.id AND hx0.target_type = r.resource_type" in page.sql
    assert tuple(p for p in page.params if p in ("Observation", "patient"))[:2] == ("Observation", "patient")
    # the referenced side may be deleted: never counted from index rows alone
    assert count.sql.startswith("SELECT COUNT(*) FROM resource r WHERE ")


def test_nested_has_correlates_level_by_level() -> None:
    q = _query(("Patient",), ("_has:Encounter:subject:_has:Observation:encounter:code", "1"))
    page, _ = compile_search(q, "")
    assert "hx1.target_id = hx0.resource_id AND hx1.target_type = hx0.resource_type" in page.sql
    assert page.sql.count("?") == len(page.params)


def test_total_of_one_index_criterion_counts_index_rows_only() -> None:
    params: tuple[tuple[str, str], ...]
    for params in (
        (("code", "http://loinc.org|8867-4"),),
        (("subject:Patient.name", "an"),),
        (("component-code-value-quantity", "http://loinc.org|8480-6$gt100"),),
    ):
        _, count = compile_search(_query(("Observation",), *params), "")
        assert count.sql.startswith("SELECT COUNT(DISTINCT s.resource_id) FROM (")
        assert "FROM resource r" not in count.sql
        assert count.sql.count("?") == len(count.params)
    for params in (
        (("code", "1"), ("date", "ge2020")),
        (("_id", "a"),),
        (("_lastUpdated", "ge2020"),),
        (("code:not", "1"),),
        (("code:missing", "true"),),
        (("code:missing", "false"),),
    ):
        _, count = compile_search(_query(("Observation",), *params), "")
        assert count.sql.startswith("SELECT COUNT(*) FROM resource r WHERE r.deleted = ?"), params
    _, system = compile_search(_query((), ("_tag", "urn:t|x")), "")  # several (all) types
    assert system.sql.startswith("SELECT COUNT(*) FROM resource r WHERE r.deleted = ?")


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


def test_a_single_type_cursor_seeks_by_id() -> None:
    """One type: "type > T OR (type = T AND id > I)" is "id > I", which the (resource_type, id) index
    seeks to; the OR form (and "id IS NULL OR") made every page scan the type from its start."""
    after, _ = compile_search(_query(("Observation",)), "", Position((), "Observation", "o500"))
    assert "WHERE ((m.id > ?)) ORDER BY" in after.sql and "m.resource_type >" not in after.sql
    assert "m.id IS NULL" not in after.sql and after.sql.count("?") == len(after.params)
    several, _ = compile_search(_query(("Observation", "Patient")), "", Position((), "Observation", "o500"))
    assert "(m.resource_type > ?) OR (m.resource_type = ? AND m.id > ?)" in several.sql
    sorted_, _ = compile_search(_query(("Patient",), ("_sort", "family")), "", Position(("an",), "Patient", "p1"))
    assert "((m.k0 IS NULL OR m.k0 > ?)) OR (m.k0 = ? AND m.id > ?)" in sorted_.sql
