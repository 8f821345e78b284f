"""The R4 element model that search-expression compilation needs: what a path step leads to.

Built once from the base StructureDefinitions. For a type path (``"Observation"``,
``"Observation.component"``, ``"Quantity"``) and a child name (``"value"``) it answers which JSON keys
hold that child and the FHIR type each key carries — ``valueQuantity`` → ``Quantity`` for a choice
element, ``code`` → ``CodeableConcept`` otherwise. Backbone elements keep their own type path so that
navigation can continue below them; ``contentReference`` (e.g. ``Questionnaire.item.item``) is followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from ketnoi.fhir import definitions

# Constrained profiles of Quantity are not in the base (specialisation) set: navigate them as Quantity.
QUANTITY_PROFILES = frozenset({"Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity"})

_SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}


@dataclass(frozen=True, slots=True)
class Child:
    """One JSON key a child element may appear under, with the FHIR type it then carries."""

    key: str
    type: str  # FHIR type code ("Quantity", "dateTime") or, for backbone elements, the element path
    is_choice: bool


class TypeModel:
    """Child lookup over every base resource and data type definition."""

    def __init__(self, structure_definitions: dict[str, dict[str, Any]]) -> None:
        self._children: dict[str, tuple[Child, ...]] = {}
        self.types = frozenset(structure_definitions)
        self.resource_types = frozenset(
            name for name, sd in structure_definitions.items() if sd.get("kind") == "resource"
        )
        # Specialisation parents (canonical → uri, Age → Quantity, Patient → DomainResource…), as
        # FHIRPath `is`/`as` accept derived types: "(ConceptMap.source as uri)" includes canonicals.
        self._parent: dict[str, str] = dict.fromkeys(QUANTITY_PROFILES, "Quantity")
        for name, sd in structure_definitions.items():
            base = sd.get("baseDefinition", "")
            if base.startswith("http://hl7.org/fhir/StructureDefinition/"):
                self._parent[name] = base.rsplit("/", 1)[1]
            for element in sd.get("snapshot", {}).get("element", []):
                self._add(element)

    def _add(self, element: dict[str, Any]) -> None:
        path: str = element["path"]
        if "." not in path:
            return
        parent, name = path.rsplit(".", 1)
        if "contentReference" in element:
            # "#Questionnaire.item": the element repeats the structure found at that path.
            children: tuple[Child, ...] = (Child(name, element["contentReference"].lstrip("#"), False),)
        elif name.endswith("[x]"):
            base = name[:-3]
            children = tuple(Child(base + _upper_first(t), t, True) for t in self._type_codes(element))
            name = base
        else:
            codes = self._type_codes(element)
            if codes in (["BackboneElement"], ["Element"]):
                codes = [path]  # navigate into the element's own children
            children = tuple(Child(name, t, False) for t in codes[:1])
        self._children[f"{parent}.{name}"] = children

    @staticmethod
    def _type_codes(element: dict[str, Any]) -> list[str]:
        return [_SYSTEM_TYPES.get(t["code"], t["code"]) for t in element.get("type", [])]

    def children(self, type_path: str, name: str) -> tuple[Child, ...] | None:
        """JSON keys of child ``name`` below ``type_path``; ``None`` when no such element exists."""
        if type_path in QUANTITY_PROFILES:
            type_path = "Quantity"
        found = self._children.get(f"{type_path}.{name}")
        if found is None and type_path in self.resource_types:
            # Inherited elements (meta, text, contained…) are declared on every resource's snapshot,
            # but the abstract bases are the fallback when a type path is written as "Resource.meta".
            found = self._children.get(f"DomainResource.{name}") or self._children.get(f"Resource.{name}")
        return found

    def is_subtype(self, type_name: str, of: str) -> bool:
        """``type_name`` is ``of`` or derives from it (canonical is a uri, Age a Quantity)."""
        current: str | None = type_name
        while current is not None:
            if current == of:
                return True
            current = self._parent.get(current)
        return False


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


@cache
def r4_model() -> TypeModel:
    """The model of the packaged R4 definitions, built once per process."""
    return TypeModel(definitions.structure_definitions())
