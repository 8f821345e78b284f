"""Who owns each demo resource: the ``owners.csv`` that ``ketnoi demo generate`` writes beside its NDJSON
for ``ketnoi load --owners`` (docs/demo-data.md, ADR 0014).

A real facility loads its own data for itself (``ketnoi load --organization``); the demo population is
one load of many facilities' data, so the generator, which knows where each thing happened, says it:
an Encounter belongs to its ``serviceProvider``, whatever was recorded in an encounter (an Observation,
Condition, MedicationRequest, Immunization...) to that encounter's facility, a Patient to the facility
of its ``generalPractitioner`` (the commune station it is registered with), and what a patient has
outside any encounter (Coverage, Appointment) to that same facility. Registries (Organization, Location,
Practitioner, PractitionerRole) are left to the national level that loads them: no owner.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any, Final

HEADER: Final = ("resource", "organization")
_PATIENT_FIELDS: Final = ("subject", "patient", "beneficiary")
_OWN_FIELD: Final = {"Encounter": "serviceProvider", "Patient": "generalPractitioner"}  # who owns it, said in it


def _ref(value: Any, prefix: str) -> str | None:
    """The first reference to a ``prefix`` (e.g. "Organization/") in a reference or a list of them."""
    for item in value if isinstance(value, list) else [value]:
        ref = item.get("reference") if isinstance(item, dict) else None
        if isinstance(ref, str) and ref.startswith(prefix):
            return ref
    return None


def _patient_of(resource: dict[str, Any]) -> str | None:
    for name in _PATIENT_FIELDS:
        if ref := _ref(resource.get(name), "Patient/"):
            return ref
    actors = [p.get("actor") for p in resource.get("participant") or () if isinstance(p, dict)]
    return _ref(actors, "Patient/")  # an Appointment's patient


def block_owners(resources: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(``Type/id``, ``Organization/id``) for the resources of one patient's block that have an owner.
    Two passes: a block lists an encounter's resources in no promised order relative to it."""
    resources = list(resources)
    owner: dict[str, str] = {}
    for r in resources:
        here = f"{r['resourceType']}/{r['id']}"
        field = _OWN_FIELD.get(r["resourceType"])
        if field is not None and (org := _ref(r.get(field), "Organization/")):
            owner[here] = org
    found = []
    for r in resources:
        here = f"{r['resourceType']}/{r['id']}"
        encounter = _ref(r.get("encounter"), "Encounter/")
        patient = _patient_of(r)
        org = owner.get(here) or owner.get(encounter or "") or owner.get(patient or "")
        if org is not None:
            found.append((here, org))
    return found


class OwnersWriter:
    """``owners.csv``, a block at a time."""

    def __init__(self, handle: IO[str]) -> None:
        self._csv = csv.writer(handle, lineterminator="\n")
        self._csv.writerow(HEADER)

    def add(self, resources: Iterable[dict[str, Any]]) -> None:
        self._csv.writerows(block_owners(resources))
