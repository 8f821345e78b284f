"""Terminology lookup: a stored ValueSet/CodeSystem wins over the packaged R4 one; lookups are cached."""

from __future__ import annotations

from typing import Any

import orjson

from ketnoi.sql import SqlQuery
from ketnoi.terminology.expand import expand
from ketnoi.terminology.lookup import Terminology

GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"


def test_stored_wins_over_packaged_and_is_cached() -> None:
    stored = {
        "resourceType": "ValueSet",
        "url": GENDER_VS,
        "compose": {"include": [{"system": "urn:local", "concept": [{"code": "x"}]}]},
    }
    seen: list[SqlQuery] = []

    def query(q: SqlQuery) -> list[tuple[Any, ...]]:
        seen.append(q)
        if "ValueSet" in q.params and GENDER_VS in q.params:
            return [("ValueSet", "1", orjson.dumps(stored))]
        return []

    terminology = Terminology(query)
    assert expand(terminology, GENDER_VS) == {("urn:local", "x")}
    assert terminology.value_set(GENDER_VS) is not None and len(seen) == 1
    # nothing stored: the packaged CodeSystem (after one database lookup)
    assert terminology.code_system("http://hl7.org/fhir/administrative-gender") is not None
    assert len(seen) == 2
    assert Terminology(lambda q: []).value_set("ValueSet/123") is None
