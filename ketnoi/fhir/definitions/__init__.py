"""The official FHIR R4 (4.0.1) definitions, packaged (gzip) so ketnoi works offline.

Files are the unmodified JSON from the HL7 R4 package (CC0), compressed. Each is loaded once,
on first use, and cached for the life of the process.
"""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources
from typing import Any

import orjson


def load(name: str) -> Any:
    """Return the parsed JSON of one packaged definitions file, e.g. ``"search-parameters"``."""
    return _load(name)


@cache
def _load(name: str) -> Any:
    data = resources.files(__name__).joinpath(f"{name}.json.gz").read_bytes()
    return orjson.loads(gzip.decompress(data))


def _bundle_resources(name: str) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in load(name).get("entry", [])]


@cache
def structure_definitions() -> dict[str, dict[str, Any]]:
    """Base StructureDefinitions of every resource and data type, keyed by their ``type``/name."""
    out: dict[str, dict[str, Any]] = {}
    for bundle in ("profiles-types", "profiles-resources"):
        for res in _bundle_resources(bundle):
            if res.get("resourceType") == "StructureDefinition" and res.get("derivation") != "constraint":
                out[res["id"]] = res
    return out


@cache
def canonical_structure_definitions() -> dict[str, dict[str, Any]]:
    """Every StructureDefinition of the R4 specification by canonical URL: the base types and
    resources, their constrained types (SimpleQuantity, ...), the other profiles (vital signs, ...;
    ``profiles-others``) and the extensions it defines (``extension-definitions``)."""
    out: dict[str, dict[str, Any]] = {}
    for bundle in ("profiles-types", "profiles-resources", "profiles-others", "extension-definitions"):
        for res in _bundle_resources(bundle):
            if res.get("resourceType") == "StructureDefinition" and isinstance(res.get("url"), str):
                out.setdefault(res["url"], res)
    return out


@cache
def resource_types() -> frozenset[str]:
    """Names of the concrete R4 resource types (145), excluding the abstract Resource/DomainResource."""
    return frozenset(
        sd["id"] for sd in structure_definitions().values() if sd.get("kind") == "resource" and not sd.get("abstract")
    )


@cache
def search_parameters() -> tuple[dict[str, Any], ...]:
    """Every SearchParameter of the R4 specification (the search-parameters.json bundle)."""
    return tuple(_bundle_resources("search-parameters"))


@cache
def patient_compartment() -> dict[str, Any]:
    """The R4 Patient CompartmentDefinition."""
    result: dict[str, Any] = load("compartmentdefinition-patient")
    return result


@cache
def terminology_resources() -> tuple[dict[str, Any], ...]:
    """The CodeSystems and ValueSets of the R4 specification (the valuesets.json bundle)."""
    return tuple(_bundle_resources("valuesets"))


_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
# FHIRPath system types used for the ``id``/``url``/``value`` elements when the definition carries
# no structuredefinition-fhir-type extension.
_SYSTEM_TYPES = {
    "String": "string",
    "Boolean": "boolean",
    "Integer": "integer",
    "Decimal": "decimal",
    "Date": "date",
    "DateTime": "dateTime",
    "Time": "time",
}


def element_type_code(entry: dict[str, Any]) -> str:
    """The FHIR type code of an ElementDefinition ``type`` entry: its own code, or for the FHIRPath
    system types of ``id``/``url``/primitive ``value`` elements, the FHIR type they stand for."""
    code: str = entry["code"]
    if not code.startswith(_SYSTEM_PREFIX):
        return code
    for ext in entry.get("extension", ()):
        if ext.get("url") == _FHIR_TYPE_EXT:
            value: str = ext["valueUrl"]
            return value
    return _SYSTEM_TYPES.get(code[len(_SYSTEM_PREFIX) :], "string")
