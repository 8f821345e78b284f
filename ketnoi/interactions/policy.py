"""Access policy: what the caller's SMART scopes allow, applied where data is read and written.

One object per request (``Access``), built from the ``RequestContext``. A context without scopes
(auth off on loopback, an operator's command, the server's own maintenance) is not scope-limited.
Otherwise (http://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):

- **Type and permission**: each interaction needs its letter (c r u d s) on its resource type from
  some granted scope, else 403 ``insufficient_scope`` (:meth:`Access.require`). The router asks
  before running any interaction or Bundle entry; conditional operations also need ``s``.
- **Patient confinement**: when only ``patient/`` scopes grant the access, the caller sees and
  changes nothing outside the R4 Patient compartment of the patient in context. Searches get the
  compartment as an extra criterion (so totals, paging, chains and ``_has`` only ever consider that
  patient's data: no oracle), reads of anything else answer 404 exactly like a resource that does
  not exist, includes outside it are left out, and a write may neither touch another patient's
  resource nor put one into another patient's compartment. A ``patient/`` scope without a patient
  in context fails closed. Types outside the compartment are readable only when they are shared
  directory or definitional data (:data:`SHARED_TYPES`); ``Bundle``, ``Binary``, ``Task`` and the
  like may carry anyone's data and are refused.
- **Granular scopes** (``patient/Observation.rs?category=laboratory``) add their parameters as
  search criteria; a read of one resource is checked by the same search on its id.
- **Reach by organization** (ADR 0017, ``interactions.reach``): a caller acting for a facility
  sees, beyond directory data, what its facility owns and the records of the patients open to it
  (care relation, Consent, break-the-glass); a provincial manager the province's registries and
  counts of its data. Added to every query as criteria, like the patient compartment.
- **Ownership** (whatever the scopes): every version records the organization it was written for
  (``StoredVersion.org``, from the context); a resource's owner is the organization of its latest
  version that records one. A caller acting for an organization may update, patch or delete only
  resources its own organization owns, or that no organization owns (written before the store
  recorded owners, or only ever by callers without one): :meth:`Access.may_change`, applied by
  ``ownership.check_owner``. A correction by another facility is a new resource that references
  the old one. Callers without an organization (national administrators, operators, the server
  itself, auth off) are not limited by it, and what they write leaves the owner as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ketnoi.auth.scopes import ClinicalScope
from ketnoi.fhir.definitions import patient_compartment
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.context import RequestContext
from ketnoi.search.index import IndexRows

# Directory and definitional resources: nobody's health data, needed to show a patient's record.
SHARED_TYPES = frozenset(
    {
        "Practitioner", "PractitionerRole", "Organization", "OrganizationAffiliation", "Location",
        "HealthcareService", "Endpoint", "InsurancePlan", "Medication", "MedicationKnowledge", "Substance",
        "ValueSet", "CodeSystem", "ConceptMap", "NamingSystem", "StructureDefinition", "SearchParameter",
        "OperationDefinition", "CapabilityStatement", "Questionnaire", "ActivityDefinition", "PlanDefinition",
        "Library", "ObservationDefinition", "SpecimenDefinition",
    }
)  # fmt: skip
# What provincial managers maintain for their province (issue 10): the directory, plus Device.
REGISTRY_TYPES = frozenset(
    {
        "Organization", "OrganizationAffiliation", "Location", "Practitioner", "PractitionerRole",
        "HealthcareService", "Endpoint", "Device", "Medication", "MedicationKnowledge", "Substance", "InsurancePlan",
    }
)  # fmt: skip
WIDE = ("user", "system")


@cache
def compartment_params(resource_type: str) -> tuple[str, ...] | None:
    """The reference parameters that put a resource of this type in a Patient's compartment (R4)."""
    for entry in patient_compartment().get("resource", ()):
        if entry.get("code") == resource_type and entry.get("param"):
            return tuple(entry["param"])
    return None


@dataclass(frozen=True, slots=True)
class Grant:
    """How an allowed access is limited: to a patient's compartment, and/or by search criteria."""

    patient: str | None = None  # confined to this Patient's compartment
    filters: tuple[tuple[str, str], ...] = ()  # granular scope criteria (ANDed)


FULL = Grant()


def insufficient_scope(what: str, rtype: str) -> FhirError:
    return FhirError.of(
        403,
        "forbidden",
        f"insufficient_scope: the access token does not allow {what} on {rtype}",
        f"insufficient_scope: mã truy cập không cho phép {what} trên {rtype}",
    )


def not_owner(rtype: str, id: str, owner: str) -> FhirError:
    """403 for a change of another organization's resource (:meth:`Access.may_change`)."""
    return FhirError.of(
        403,
        "forbidden",
        f"{owner} wrote {rtype}/{id}; another facility may not change it: create a new resource of your own "
        "that references it (e.g. with 'replaces')",
        f"{owner} đã ghi {rtype}/{id}; cơ sở khác không được thay đổi: hãy tạo một tài nguyên mới của mình "
        "tham chiếu đến nó (ví dụ bằng 'replaces')",
    )


_VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


class Access:
    """The policy for one caller."""

    __slots__ = ("context",)

    def __init__(self, context: RequestContext) -> None:
        self.context = context

    @property
    def limited(self) -> bool:
        return self.context.scopes is not None

    @property
    def level(self) -> str:
        """The organizational level the caller reads at (ADR 0017; ``interactions.reach``):
        ``open`` (not scope-limited, no organization, a national administrator, or a patient, whom
        the patient/ scopes confine), ``region`` (a provincial manager) or ``facility``."""
        c = self.context
        if c.scopes is None or c.organization is None or "admin" in c.roles or "patient" in c.roles:
            return "open"
        return "region" if "provincial" in c.roles else "facility"

    def grant(self, rtype: str, letter: str) -> Grant | None:
        """How ``letter`` on ``rtype`` is allowed, or None when it is not."""
        scopes = self.context.scopes
        if scopes is None:
            return FULL
        found = scopes.grants(None, rtype, letter)
        if not found:
            return None
        wide = [s for s in found if s.context in WIDE]
        if any(not s.filters for s in wide):
            return FULL
        if wide:
            return _filtered(wide)
        if self.context.patient is None:
            raise FhirError.of(
                403,
                "forbidden",
                "A patient/ scope needs a patient in context, and this token has none",
                "Phạm vi patient/ cần một bệnh nhân trong ngữ cảnh, mã truy cập này không có",
            )
        if rtype not in SHARED_TYPES and compartment_params(rtype) is None and rtype != "Patient":
            return None  # may hold anyone's data: not reachable with patient scopes
        narrowed = _filtered(found)
        shared = rtype in SHARED_TYPES
        return Grant(None if shared else self.context.patient, narrowed.filters)

    def require(self, rtype: str, letter: str) -> Grant:
        """The grant for ``letter`` on ``rtype``; 403 insufficient_scope when there is none."""
        found = self.grant(rtype, letter)
        if found is None:
            raise insufficient_scope(_VERBS.get(letter, letter), rtype)
        return found

    def may_change(self, owner: str | None) -> bool:
        """Whether the caller may change a resource that ``owner`` owns: always without an
        organization of its own, or when no organization owns it; otherwise only its own
        organization's. Exact match: a parent organization does not own its facilities' data."""
        org = self.context.organization
        return org is None or owner is None or owner == org

    def require_admin(self, what: str, *, own_data: bool = False) -> None:
        """Server administration ($reindex, $import): a backend system with ``system/*.cruds``, or
        an administrator's ``user/*.cruds``; never a patient's or a clinician's token. Work on the
        whole server ($reindex) is national: not for a caller acting for an organization;
        ``own_data`` work ($import, whose resources the caller's organization then owns) is, a
        facility administrator's (role ``facility-admin``) included."""
        scopes = self.context.scopes
        if scopes is None:
            return
        if not own_data and self.level != "open":
            raise insufficient_scope(what, "the server (its administration is national, not a facility's)")
        full = frozenset("cruds")
        roles = self.context.roles
        # A facility's administrator does its own data's bulk work as its backend system may (a clerk
        # uploading the day's claims XML in the console); the facility rule still bounds what it writes.
        administrator = "admin" in roles or (own_data and "facility-admin" in roles)
        if not any(
            s.resource_type == "*"
            and not s.filters
            and s.permissions >= full
            and (s.context == "system" or (s.context == "user" and administrator))
            for s in scopes.clinical
        ):
            raise insufficient_scope(what, "the server")


def _filtered(scopes: list[ClinicalScope]) -> Grant:
    """One granting scope's filters, or several scopes' filters on one parameter merged into an OR;
    anything else cannot be said as one search and is refused rather than widened."""
    if any(not s.filters for s in scopes):
        return FULL
    if len(scopes) == 1:
        return Grant(None, scopes[0].filters)
    names = {s.filters[0][0] for s in scopes if len(s.filters) == 1}
    if len(names) == 1 and all(len(s.filters) == 1 for s in scopes):
        return Grant(None, ((names.pop(), ",".join(s.filters[0][1] for s in scopes)),))
    raise FhirError.of(
        403,
        "forbidden",
        "Several granular scopes with different criteria grant this access; ask for one",
        "Nhiều phạm vi chi tiết với tiêu chí khác nhau cùng cấp quyền này; hãy yêu cầu một phạm vi",
    )


def in_compartment(rtype: str, id: str, body: dict[str, Any] | None, patient: str, extract: Extract) -> bool:
    """Whether this version of a resource belongs to ``Patient/patient``'s compartment."""
    if rtype == "Patient":
        return id == patient
    params = compartment_params(rtype)
    if params is None or body is None:
        return False
    rows = extract(body)
    return any(r.param in params and r.target_type == "Patient" and r.target_id == patient for r in rows.reference)


Extract = Callable[[dict[str, Any]], IndexRows]
