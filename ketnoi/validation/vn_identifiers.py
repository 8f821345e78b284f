"""Vietnamese identifiers checked where they stand in a resource: every ``identifier`` whose system
is one of VN Core's (CCCD, BHYT card, facility code ...) or ketnoi's (social-insurance number,
licence) must pass the rule of ``ketnoi.vn.identifiers``; a Patient's CCCD must agree with its
``birthDate`` (digits 4-6: century and year) and ``gender`` (digit 4).

These are the Python form of the invariants ``ketnoi.vn.identifiers.invariants()`` states in
FHIRPath (``vn-cccd-1..4``, ``vn-bhyt-1..3``): the same rules, at the cost of a dictionary lookup for
an identifier of any other system. Reported like the base invariants (code ``invariant``), so
``KETNOI_VALIDATION`` decides whether they refuse a write (ADR 0020).
"""

from __future__ import annotations

from typing import Any

from ketnoi.fhir.outcome import Issue
from ketnoi.vn.identifiers import Problem, Rule, rule_for


def check_vn_identifiers(resource: object) -> list[Issue]:
    """Issues of the Vietnamese identifiers of ``resource`` (its own ``identifier`` list)."""
    if not isinstance(resource, dict):
        return []
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list):
        return []
    rtype = str(resource.get("resourceType", ""))
    issues: list[Issue] = []
    for index, identifier in enumerate(identifiers):
        found = _problems(resource, identifier)
        issues.extend(_issue(p, f"{rtype}.identifier[{index}].value") for p in found)
    return issues


def _problems(resource: dict[str, Any], identifier: Any) -> list[Problem]:
    if not isinstance(identifier, dict):
        return []
    system, value = identifier.get("system"), identifier.get("value")
    rule = rule_for(system) if isinstance(system, str) else None
    if rule is None or not isinstance(value, str):
        return []
    return _run(rule, value, resource)


def _run(rule: Rule, value: str, resource: dict[str, Any]) -> list[Problem]:
    if rule.kind != "cccd" or resource.get("resourceType") != "Patient":
        return rule.validate(value)
    birth, gender = resource.get("birthDate"), resource.get("gender")
    return rule.validate(
        value, birth_date=birth if isinstance(birth, str) else None, gender=gender if isinstance(gender, str) else None
    )


def _issue(problem: Problem, where: str) -> Issue:
    return Issue(
        "error",
        "invariant",
        f"Vietnamese identifier rule {problem.code}: {problem.en}",
        f"Quy tắc định danh Việt Nam {problem.code}: {problem.vi}",
        (where,),
    )
