"""One visit of the claims XML -> the FHIR resources that say the same thing (docs/xml130.md, the mapping).

``map_visit`` is pure: tables in, resources out, ids derived from business identifiers (the facility's
patient number, MA_LK, table and STT), so mapping the same visit twice gives the same resources and a
re-import updates them in place. It runs on visits whose checks passed; checking is ``ketnoi.xml130.rules``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json, VisitIds, by_identifier, coding
from ketnoi.claims.claim import claim
from ketnoi.claims.documents import document_lines
from ketnoi.claims.encounter import INPATIENT, body_weight, conditions, encounter
from ketnoi.claims.medication import drug_lines
from ketnoi.claims.patient import coverages, patient
from ketnoi.claims.progress import progress_lines
from ketnoi.claims.results import result_lines
from ketnoi.claims.row import Row
from ketnoi.claims.services import service_lines

Tables = Mapping[str, Sequence[Mapping[str, str]]]
# The types a visit's resources have (all carry the visit tag): what a corrected visit may leave behind.
VISIT_TYPES = (
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationAdministration",
    "ChargeItem",
    "Procedure",
    "DiagnosticReport",
    "ClinicalImpression",
    "Appointment",
    "ServiceRequest",
    "DocumentReference",
    "Claim",
)


@dataclass(slots=True)
class Mapped:
    """The resources of one visit, Patient first, Claim last; ``visit`` ones carry the visit tag."""

    patient: Json
    coverages: list[Json] = field(default_factory=list)
    visit: list[Json] = field(default_factory=list)

    @property
    def resources(self) -> list[Json]:
        return [self.patient, *self.coverages, *self.visit]


def patient_id(facility: str, ma_bn: str) -> str:
    return s.stable_id(s.patient_system(facility), ma_bn)


def facility_reference(facility: str, organization_id: str | None = None) -> Json:
    """The treating facility: by id when it is stored here, always by its code."""
    found = by_identifier("Organization", s.FACILITY_SYSTEM, facility)
    if organization_id:
        found = {"reference": f"Organization/{organization_id}", **found}
    return found


def _rows(tables: Tables, table: str) -> list[Row]:
    return [Row(table, raw) for raw in tables.get(table, ())]


def self_pay(ids: VisitIds) -> Json:
    """The Coverage of a visit without a card: the patient pays (Claim.insurance needs one)."""
    found = ids.start("Coverage", s.stable_id(s.SID + "self-pay", ids.patient))
    del found["meta"]
    found["status"] = "active"
    found["type"] = {"coding": [coding("http://terminology.hl7.org/CodeSystem/coverage-selfpay", "pay", "Pay")]}
    found["beneficiary"] = ids.patient_ref
    found["payor"] = [ids.patient_ref]
    return found


def map_visit(facility: str, tables: Tables, *, patient: str | None = None, facility_ref: Json | None = None) -> Mapped:
    """The FHIR resources of one visit. ``patient``: the id of a Patient already stored for this facility's
    patient number (else the id derived from it); ``facility_ref``: the treating facility's reference."""
    xml1 = Row("XML1", tables["XML1"][0])
    ma_bn = xml1.text("MA_BN") or ""
    ids = VisitIds(
        facility,
        xml1.text("MA_LK") or "",
        patient or patient_id(facility, ma_bn),
        facility_ref or facility_reference(facility),
    )
    mapped = Mapped(_patient(ids, xml1))
    mapped.coverages = coverages(ids, xml1) or [self_pay(ids)]
    diagnoses = conditions(ids, xml1)
    visit = mapped.visit
    visit.append(encounter(ids, xml1, diagnoses))
    visit.extend(c for _, c in diagnoses)
    weight = body_weight(ids, xml1)
    if weight is not None:
        visit.append(weight)
    drugs, services = _rows(tables, "XML2"), _rows(tables, "XML3")
    visit.extend(drug_lines(ids, drugs, (xml1.code("MA_LOAI_KCB") or "") in INPATIENT))
    visit.extend(service_lines(ids, services))
    visit.extend(result_lines(ids, _rows(tables, "XML4")))
    visit.extend(progress_lines(ids, _rows(tables, "XML5")))
    visit.extend(document_lines(ids, tables))
    lines = [("XML2", r) for r in drugs] + [("XML3", r) for r in services]
    visit.append(claim(ids, xml1, lines, diagnoses, [c["id"] for c in mapped.coverages]))
    return mapped


def _patient(ids: VisitIds, xml1: Row) -> Json:
    found = patient(ids, xml1)
    del found["meta"]  # the facility's patient outlives the visit: not tagged with it
    return found
