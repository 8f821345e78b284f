"""A patient's privacy Consents, made and read in the shapes the platform's access policy enforces
(``search.extract_consent``, docs/security.md "A patient is open to a facility"):

- deny one facility the whole record: an active ``patient-privacy`` Consent whose provision is
  ``deny`` with that ``Organization`` as ``actor``;
- deny every facility a category: ``deny`` with the category's ``securityLabel`` (matched against a
  resource's ``meta.security``) and codes (matched against its ``code``), no actor.

Withdrawing or restoring is an update of ``status`` (``inactive`` states no rule, ``active`` again
does). Pure: the pages write these through the FHIR interactions as the patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

SCOPE: Final = {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
CATEGORY: Final = {"system": "http://loinc.org", "code": "59284-0"}  # Patient consent
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED: Final = "http://snomed.info/sct"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


@dataclass(frozen=True, slots=True)
class Category:
    """A kind of sensitive information a patient may withhold: the v3 sensitivity label that marks it,
    and the codes of the findings themselves (a record not labelled is still caught by its code)."""

    label: str  # v3-ActCode (InformationSensitivityPolicy)
    codes: tuple[tuple[str, str], ...] = ()  # (system, code)


# Text keys cat_<name>. The labels are HL7's sensitivity codes, the ones the platform's rules match.
CATEGORIES: Final[dict[str, Category]] = {
    "hiv": Category("HIV", ((SNOMED, "86406008"),)),  # 86406008: HIV infection
    "psy": Category("PSY"),  # mental health
    "sex": Category("SEX"),  # sexual and reproductive health
    "std": Category("STD"),  # sexually transmitted disease
    "eth": Category("ETH"),  # substance use
}
_BY_LABEL: Final = {category.label: name for name, category in CATEGORIES.items()}


def deny_facility(patient_id: str, organization: str, now: str) -> dict[str, Any]:
    """A new Consent: ``organization`` (``Organization/x``) may not see the patient's record."""
    actor = {"role": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]}, "reference": {"reference": organization}}
    return _consent(patient_id, now, {"type": "deny", "actor": [actor]})


def deny_category(patient_id: str, name: str, now: str) -> dict[str, Any]:
    """A new Consent: no facility (but the one that wrote it) sees the category ``name`` of CATEGORIES."""
    category = CATEGORIES[name]
    provision: dict[str, Any] = {"type": "deny", "securityLabel": [{"system": ACT_CODE, "code": category.label}]}
    if category.codes:
        provision["code"] = [{"coding": [{"system": s, "code": c}]} for s, c in category.codes]
    return _consent(patient_id, now, provision)


def _consent(patient_id: str, now: str, provision: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [SCOPE]},
        "category": [{"coding": [CATEGORY]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": now,
        "provision": provision,
    }


@dataclass(frozen=True, slots=True)
class Choice:
    """One of the patient's Consents in words."""

    id: str
    status: str  # active | inactive | draft | ...
    kind: str  # deny | permit | "" (no provision type)
    privacy: bool  # a patient-privacy Consent (the only kind the platform enforces)
    facilities: tuple[str, ...]  # "Organization/x" the rule is about; () for every facility
    categories: tuple[str, ...]  # CATEGORIES names
    others: tuple[str, ...]  # codes and labels outside CATEGORIES
    date: str  # Consent.dateTime, else when it was last changed

    @property
    def whole(self) -> bool:
        """About the whole record (no category, code or label named)."""
        return not self.categories and not self.others

    def same_rule(self, other: Choice) -> bool:
        return (self.kind, self.facilities, self.categories, self.others) == (
            other.kind,
            other.facilities,
            other.categories,
            other.others,
        )


def describe(consent: dict[str, Any]) -> Choice:
    """The top-level provision of ``consent`` in words (nested exceptions are not shown: the console
    makes none, and the API keeps them)."""
    provision = consent.get("provision") if isinstance(consent.get("provision"), dict) else {}
    assert isinstance(provision, dict)
    facilities = tuple(
        str(ref["reference"])
        for actor in provision.get("actor") or ()
        if isinstance(actor, dict)
        and isinstance(ref := actor.get("reference"), dict)
        and str(ref.get("reference") or "").startswith("Organization/")
    )
    labels = [str(c.get("code")) for c in provision.get("securityLabel") or () if isinstance(c, dict)]
    codes = [
        f"{c.get('system')}|{c.get('code')}"
        for concept in provision.get("code") or ()
        if isinstance(concept, dict)
        for c in concept.get("coding") or ()
        if isinstance(c, dict)
    ]
    known = {f"{s}|{c}" for category in CATEGORIES.values() for s, c in category.codes}
    categories = tuple(sorted({_BY_LABEL[label] for label in labels if label in _BY_LABEL}))
    others = tuple(sorted({label for label in labels if label not in _BY_LABEL} | set(codes) - known))
    scope = consent.get("scope") if isinstance(consent.get("scope"), dict) else {}
    assert isinstance(scope, dict)
    privacy = any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) == (SCOPE["system"], SCOPE["code"])
        for c in scope.get("coding") or ()
    )
    meta = consent.get("meta") if isinstance(consent.get("meta"), dict) else {}
    assert isinstance(meta, dict)
    return Choice(
        id=str(consent.get("id") or ""),
        status=str(consent.get("status") or ""),
        kind=str(provision.get("type") or ""),
        privacy=privacy,
        facilities=facilities,
        categories=categories,
        others=others,
        date=str(consent.get("dateTime") or meta.get("lastUpdated") or ""),
    )


def with_status(consent: dict[str, Any], status: str) -> dict[str, Any]:
    """``consent`` withdrawn (``inactive``) or restored (``active``); the rest as it was."""
    changed = {k: v for k, v in consent.items() if k not in ("meta", "text")}
    changed["status"] = status
    return changed
