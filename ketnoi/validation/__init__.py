"""Validation of FHIR R4 resources: structure (``structure.validate``), then, on request, the FHIRPath
invariants of the base definitions (``invariants.check_invariants``) and the specification's other
rules (``resource_rules.check_resource_rules``) and the Vietnamese identifier rules
(``vn_identifiers.check_vn_identifiers``) when the structure has no error."""

from __future__ import annotations

from ketnoi.fhir.outcome import Issue

from . import structure
from .content_rules import check_content_rules
from .invariants import check_invariants
from .resource_rules import check_resource_rules
from .vn_identifiers import check_vn_identifiers


def validate(
    resource: object, *, strict: bool = True, invariants: bool = False, invariant_warnings: bool = False
) -> list[Issue]:
    """Structural issues, then (``invariants=True``) invariant errors when the structure is sound.

    Empty list = valid. With ``strict=False`` unknown elements are reported as warnings instead of
    errors. Invariant warnings (``dom-6`` "should have narrative" fires on most minimal resources)
    are only added with ``invariant_warnings=True`` as well.

    Invariants are opt-in for now: turning them on by default changes the outcome of callers that
    expect ``[]`` on data that breaks a base invariant (docs/validation.md lists them).
    """
    issues = structure.validate(resource, strict=strict)
    if invariants and not any(issue.severity == "error" for issue in issues):
        found = check_invariants(resource)
        issues.extend(found if invariant_warnings else [i for i in found if i.severity == "error"])
        # Rules of the specification text (Bundle fullUrl and references, absolute Extension.url):
        # reported with the invariants, since they too are beyond the structural gate.
        issues.extend(check_resource_rules(resource))
        issues.extend(check_vn_identifiers(resource))  # VN Core's identifiers (ketnoi.vn)
        issues.extend(check_content_rules(resource))  # Attachment.size, the narrative's XHTML (txt-1)
    return issues


__all__ = ["check_content_rules", "check_invariants", "check_resource_rules", "check_vn_identifiers", "validate"]
