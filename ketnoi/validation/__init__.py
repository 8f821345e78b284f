"""Validation of FHIR R4 resources: structure (``structure.validate``), then, on request, the FHIRPath
invariants of the base definitions (``invariants.check_invariants``), the specification's other
rules (``resource_rules.check_resource_rules``), the Vietnamese identifier rules
(``vn_identifiers.check_vn_identifiers``) and the content rules, and the profiles: the ones the
resource claims in ``meta.profile``, the ones asked for, and the definition of every extension it
carries (``conformance``, ``extensions``), when the structure has no error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ketnoi.fhir.outcome import Issue

from . import structure
from .conformance import Checker, CodeCheck
from .content_rules import check_content_rules
from .extensions import check_extensions
from .invariants import check_invariants
from .profiles import ProfileCache
from .resource_rules import check_resource_rules
from .vn_identifiers import check_vn_identifiers


@dataclass(slots=True)
class Findings:
    """What validation found, by stage: the structural gate, the rules of the base specification
    (invariants and the rules of its text), and the profiles (claimed, asked, extension definitions)."""

    structure: list[Issue] = field(default_factory=list)
    rules: list[Issue] = field(default_factory=list)
    profiles: list[Issue] = field(default_factory=list)

    def all(self) -> list[Issue]:
        return [*self.structure, *self.rules, *self.profiles]


def examine(
    resource: object,
    *,
    strict: bool = True,
    invariants: bool = False,
    invariant_warnings: bool = False,
    profiles: Sequence[str] = (),
    cache: ProfileCache | None = None,
    codes: CodeCheck | None = None,
) -> Findings:
    """:func:`validate`, with the findings kept apart by stage (the write path treats them apart)."""
    found = Findings(structure.validate(resource, strict=strict))
    if not invariants or any(issue.severity == "error" for issue in found.structure):
        return found
    assert isinstance(resource, dict)  # the structural gate refuses anything else
    rules = check_invariants(resource)
    found.rules = rules if invariant_warnings else [i for i in rules if i.severity == "error"]
    # Rules of the specification text (Bundle fullUrl and references, absolute Extension.url):
    # reported with the invariants, since they too are beyond the structural gate.
    found.rules.extend(check_resource_rules(resource))
    found.rules.extend(check_vn_identifiers(resource))  # VN Core's identifiers (ketnoi.vn)
    found.rules.extend(check_content_rules(resource))  # Attachment.size, the narrative's XHTML (txt-1)
    found.profiles = check_profiles(resource, profiles, cache=cache, codes=codes)
    return found


def check_profiles(
    resource: dict[str, Any],
    profiles: Sequence[str] = (),
    *,
    cache: ProfileCache | None = None,
    codes: CodeCheck | None = None,
    claims: bool = True,
) -> list[Issue]:
    """Profile issues: every extension against its definition and the ``meta.profile`` claims (an
    unknown one is a warning) unless ``claims=False``, and ``profiles`` (asked for: an unknown one
    is an error)."""
    checker = Checker(cache, codes)
    meta = resource.get("meta")
    claimed = meta.get("profile") if isinstance(meta, dict) and claims else None
    if claims:
        check_extensions(checker, resource)
    if isinstance(claimed, list) and claimed:
        checker.check_resource(resource, [p for p in claimed if isinstance(p, str)], claimed=True)
    if profiles:
        checker.check_resource(resource, list(profiles), claimed=False)
    return checker.issues


def validate(
    resource: object,
    *,
    strict: bool = True,
    invariants: bool = False,
    invariant_warnings: bool = False,
    profiles: Sequence[str] = (),
    cache: ProfileCache | None = None,
    codes: CodeCheck | None = None,
) -> list[Issue]:
    """Structural issues, then (``invariants=True``) invariant errors and profile issues when the
    structure is sound.

    Empty list = valid. With ``strict=False`` unknown elements are reported as warnings instead of
    errors. Invariant warnings (``dom-6`` "should have narrative" fires on most minimal resources)
    are only added with ``invariant_warnings=True`` as well. ``profiles``: canonical URLs to check
    the resource against besides those it claims; ``cache`` finds and keeps compiled profiles (R4
    and the shipped packages by default); ``codes`` decides bindings (R4's closed value sets by
    default).
    """
    return examine(
        resource,
        strict=strict,
        invariants=invariants,
        invariant_warnings=invariant_warnings,
        profiles=profiles,
        cache=cache,
        codes=codes,
    ).all()


__all__ = [
    "Findings",
    "check_content_rules",
    "check_invariants",
    "check_profiles",
    "check_resource_rules",
    "check_vn_identifiers",
    "examine",
    "validate",
]
