"""Composite search parameters (``code-value-quantity``, ``component-code-value-quantity``, ...).

A composite matches when its components match *within the same element* (one Observation.component,
one useContext). Rows are built per element at extraction time: for every element, every token of the
first component gives a key (``system|code``, ``|code`` without a system, and the bare ``code``) and
the second component's values are written to their own table (``idx_quantity``, ``idx_token``...)
under the parameter ``<code>$<key>``. A query ``code-value-quantity=http://loinc.org|8480-6$gt100``
is then one indexed lookup: ``param = 'code-value-quantity$http://loinc.org|8480-6' AND value > 100``.
No extra table is needed, and the pairing cannot cross elements.

Supported: two components, the first a token (41 of the 46 R4 composites). Not supported (the parser
reports them): ``DocumentReference.relationship`` (reference, token) and the three-component
MolecularSequence coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from ketnoi.fhir import definitions
from ketnoi.search.extract_model import TypeModel
from ketnoi.search.extract_paths import ANY_TYPE, Accessor, compile_part, part_root, split_union
from ketnoi.search.extract_values import WRITERS, Writer
from ketnoi.search.index import IndexRows

SEPARATOR = "$"


@cache
def _by_url() -> dict[str, dict[str, Any]]:
    return {sp["url"]: sp for sp in definitions.search_parameters() if "url" in sp}


def components(sp: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...] | None:
    """((code, type, relative expression), ...) of a supported composite, else None."""
    out: list[tuple[str, str, str]] = []
    for component in sp.get("component") or ():
        definition = _by_url().get(str(component.get("definition")))
        if definition is None or not component.get("expression"):
            return None
        out.append((str(definition["code"]), str(definition["type"]), str(component["expression"])))
    if len(out) != 2 or out[0][1] != "token" or out[1][1] not in WRITERS:
        return None
    return tuple(out)


def row_keys(system: str | None, code: str | None) -> tuple[str, ...]:
    """The keys a token of the first component is stored under."""
    if not code:
        return ()
    return (f"{system}|{code}", code) if system else (f"|{code}", code)


class CompositeExtractor:
    """Extracts the rows of one composite parameter for one resource type."""

    def __init__(self, code: str, sp: Mapping[str, Any], resource_type: str, model: TypeModel) -> None:
        comps = components(sp)
        assert comps is not None
        self.code = code
        self.model = model
        (_, _, self.first_expr), (_, self.second_type, self.second_expr) = comps
        self.writer: Writer = WRITERS[self.second_type]
        self.elements: list[Accessor] = []
        for part in split_union(str(sp.get("expression", ""))):
            if part_root(part, model) in (ANY_TYPE, resource_type):
                self.elements.append(compile_part(part, model, resource_type)[0])
        self._relative: dict[tuple[str, str], list[Accessor]] = {}

    def _accessors(self, element_type: str, expression: str) -> list[Accessor]:
        found = self._relative.get((element_type, expression))
        if found is None:
            found = [compile_part(p, self.model, element_type)[0] for p in split_union(expression)]
            self._relative[(element_type, expression)] = found
        return found

    def extract(self, resource: dict[str, Any], rows: IndexRows, keys_memo: KeysMemo | None = None) -> None:
        """``keys_memo``: shared by the composites of one resource, so that the first component's
        keys of an element (``Observation.code`` for the four ``code-value-*``) are read once."""
        for element_access in self.elements:
            for element, element_type in element_access(resource):
                if type(element) is not dict or not element_type:
                    continue
                memo_key = (id(element), self.first_expr)
                keys = keys_memo.get(memo_key) if keys_memo is not None else None
                if keys is None:
                    keys = self._first_keys(element, element_type)
                    if keys_memo is not None:
                        keys_memo[memo_key] = keys
                if not keys:
                    continue
                values = [v for a in self._accessors(element_type, self.second_expr) for v in a(element)]
                for key in keys:
                    for value, fhir_type in values:
                        self.writer(f"{self.code}{SEPARATOR}{key}", value, fhir_type, rows)

    def _first_keys(self, element: dict[str, Any], element_type: str) -> tuple[str, ...]:
        tokens = IndexRows()
        for access in self._accessors(element_type, self.first_expr):
            for value, fhir_type in access(element):
                WRITERS["token"]("", value, fhir_type, tokens)
        return tuple(dict.fromkeys(k for t in tokens.token for k in row_keys(t.system, t.code)))


# (id of an element, first component's expression) → its keys; valid for one resource's extraction
# only (ids of objects are reused once they are freed).
KeysMemo = dict[tuple[int, str], tuple[str, ...]]
