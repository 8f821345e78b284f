"""Who owns each demo resource: the ``owners.csv`` that ``ketnoi demo generate`` writes beside its NDJSON
for ``ketnoi load --owners`` (docs/demo-data.md, ADR 0014).

A real facility loads its own data for itself (``ketnoi load --organization``); the demo population is
one load of many facilities' data, so the generator, which knows where each thing happened, says it:
an Encounter belongs to its ``serviceProvider``, whatever was recorded in an encounter (an Observation,
Condition, MedicationRequest, Immunization...) to that encounter's facility, a Patient to the facility
of its ``generalPractitioner`` (the commune station it is registered with), and what a patient has
outside any encounter (Coverage, Appointment) to that same facility. Registries (Organization, Location,
Practitioner, PractitionerRole) belong to the provincial health department (Sở Y tế) at or above the
facility they describe (``partOf``), so that its manager keeps them and no facility rewrites another's
entry (ADR 0014); the national level's own (the Ministry, the payer, central hospitals) stay unowned.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any, Final

from ketnoi.demo.facilities import ORG_LEVEL_SYSTEM

HEADER: Final = ("resource", "organization")
_PATIENT_FIELDS: Final = ("subject", "patient", "beneficiary")
_OWN_FIELD: Final = {"Encounter": "serviceProvider", "Patient": "generalPractitioner"}  # who owns it, said in it
_REGISTRY_ORG: Final = {"Location": "managingOrganization", "PractitionerRole": "organization"}


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


def registry_owners(registries: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(``Type/id``, Sở Y tế) for the registry entries within a province, in their order. A Practitioner
    belongs where its first role is; a Location, a role: where their organization is."""
    resources = list(registries)
    orgs = {r["id"]: r for r in resources if r["resourceType"] == "Organization"}
    owner: dict[str, str | None] = {f"Organization/{i}": _department_of(i, orgs) for i in orgs}
    for r in resources:
        here = f"{r['resourceType']}/{r['id']}"
        field = _REGISTRY_ORG.get(r["resourceType"])
        if field is not None:
            owner[here] = owner.get(_ref(r.get(field), "Organization/") or "")
        if r["resourceType"] == "PractitionerRole" and (who := _ref(r.get("practitioner"), "Practitioner/")):
            owner.setdefault(who, owner[here])
    keys = (f"{r['resourceType']}/{r['id']}" for r in resources)
    return [(key, org) for key in keys if (org := owner.get(key)) is not None]


def _department_of(org_id: str, orgs: dict[str, dict[str, Any]]) -> str | None:
    """The provincial health department at or above ``org_id`` along ``partOf``; None for the national level."""
    seen: set[str] = set()
    current: str | None = org_id
    while current is not None and current in orgs and current not in seen:
        seen.add(current)
        if _is_department(orgs[current]):
            return f"Organization/{current}"
        parent = _ref(orgs[current].get("partOf"), "Organization/")
        current = parent.removeprefix("Organization/") if parent else None
    return None


def _is_department(org: dict[str, Any]) -> bool:
    codings = (c for kind in org.get("type") or () for c in kind.get("coding") or ())
    return any(c.get("system") == ORG_LEVEL_SYSTEM and c.get("code") == "province" for c in codings)


class OwnersWriter:
    """``owners.csv``: the registries' rows first, then a block at a time."""

    def __init__(self, handle: IO[str], registries: Iterable[dict[str, Any]] = ()) -> None:
        self._csv = csv.writer(handle, lineterminator="\n")
        self._csv.writerow(HEADER)
        self._csv.writerows(registry_owners(registries))

    def add(self, resources: Iterable[dict[str, Any]]) -> None:
        self._csv.writerows(block_owners(resources))
