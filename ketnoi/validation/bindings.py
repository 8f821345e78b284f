"""Required bindings to closed value sets of the R4 core, compiled for the structural gate.

An element bound *required* (http://hl7.org/fhir/R4/terminologies.html#required) may only hold a
code from its value set: ``Patient.gender`` is one of four codes, and an ``Observation.status``
outside its eight codes leaves the observation's meaning undefined (it is a modifier). Most such
value sets are small closed enumerations of the core: a list of concepts, or every concept of a
complete core CodeSystem. Those are compiled here into frozen sets once, so checking a code is a
set lookup. A value set that is open — a filter, an external system (MIME types, languages,
UCUM, currencies), a CodeSystem that is not ``complete`` — is left to the terminology
validation that comes later, never guessed at here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from ketnoi.fhir.definitions import terminology_resources

Code = tuple[str, str]  # (system, code)


@dataclass(frozen=True, slots=True)
class Binding:
    """The closed value set an element is bound to (required strength)."""

    url: str  # canonical, without version
    name: str  # for messages
    codes: frozenset[Code]
    plain: frozenset[str]  # the codes alone: what a ``code`` element holds

    def shown(self, limit: int = 12) -> str:
        """The allowed codes for a message: all of them when few, else the first ones and a count."""
        codes = sorted(self.plain)
        if len(codes) <= limit:
            return ", ".join(codes)
        return f"{', '.join(codes[:limit])}, … ({len(codes)} codes)"


@cache
def _resources() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    value_sets: dict[str, dict[str, Any]] = {}
    code_systems: dict[str, dict[str, Any]] = {}
    for res in terminology_resources():
        target = value_sets if res.get("resourceType") == "ValueSet" else code_systems
        if isinstance(res.get("url"), str):
            target[res["url"]] = res
    return value_sets, code_systems


@cache
def required_binding(canonical: str) -> Binding | None:
    """The compiled value set at ``canonical`` (``url|version`` accepted), None if it is not closed."""
    url = canonical.partition("|")[0]
    value_set = _resources()[0].get(url)
    codes = _closed(url, ())
    if value_set is None or codes is None or not codes:
        return None
    name = str(value_set.get("title") or value_set.get("name") or url)
    return Binding(url, name, codes, frozenset(code for _, code in codes))


def _closed(url: str, seen: tuple[str, ...]) -> frozenset[Code] | None:
    value_set = _resources()[0].get(url)
    compose = value_set.get("compose") if value_set else None
    if not isinstance(compose, dict) or compose.get("exclude") or url in seen:
        return None
    out: set[Code] = set()
    for include in compose.get("include", ()):
        part = _include(include, (*seen, url))
        if part is None:
            return None
        out |= part
    return frozenset(out)


def _include(include: dict[str, Any], seen: tuple[str, ...]) -> set[Code] | None:
    if include.get("filter"):
        return None
    out: set[Code] = set()
    for imported in include.get("valueSet", ()):
        codes = _closed(str(imported).partition("|")[0], seen)
        if codes is None:
            return None
        out |= codes
    system = include.get("system")
    if "concept" in include:
        out |= {(str(system), str(c["code"])) for c in include["concept"]}
    elif system is not None:
        code_system = _resources()[1].get(system)
        if code_system is None or code_system.get("content") != "complete":
            return None
        out |= {(str(system), code) for code in _concept_codes(code_system.get("concept", ()))}
    return out


def _concept_codes(concepts: Any) -> list[str]:
    codes: list[str] = []
    for concept in concepts:
        codes.append(str(concept["code"]))
        codes.extend(_concept_codes(concept.get("concept", ())))
    return codes


def element_binding(definition: dict[str, Any]) -> Binding | None:
    """The closed required binding of one ElementDefinition, if it has one."""
    binding = definition.get("binding")
    if not isinstance(binding, dict) or binding.get("strength") != "required":
        return None
    value_set = binding.get("valueSet")
    return required_binding(value_set) if isinstance(value_set, str) else None
