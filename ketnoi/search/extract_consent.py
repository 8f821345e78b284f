"""A patient's privacy Consent as index rows the access policy can query (ADR 0017).

R4 has no search parameter for ``Consent.provision.type``, so no search can tell a permit from a
deny; the policy needs both, inside the database query that selects what a facility may see
(``ketnoi.search.reach``). So an active ``patient-privacy`` Consent also gets one ``idx_token`` row
per rule it states, under parameters no search can name (``~`` is not a search parameter
character), kept, replaced and dropped with the Consent's other index rows:

- ``param`` :data:`PERMIT` or :data:`DENY` (the provision's ``type``, inherited by nested
  provisions that state none);
- ``system``: whom the rule is about, ``Organization/ID`` from ``provision.actor.reference``, or
  :data:`ANYONE` when the provision names no organization;
- ``code``: what it covers: ``system|code`` of each ``provision.code`` coding and
  ``provision.securityLabel``, ``type:Observation`` for each ``provision.class`` resource type,
  or :data:`WHOLE` (the whole record) when the provision names none of these.

A Consent that is not ``active`` (draft, proposed, rejected, inactive: withdrawn,
entered-in-error) states no rule, so withdrawing or restoring one is an update of its status.
``provision.period``, ``data`` and ``purpose`` are not evaluated (docs/security.md).
"""

from __future__ import annotations

from typing import Any, Final

from ketnoi.search.index import IndexRows, TokenRow

PERMIT: Final = "~consent-permit"
DENY: Final = "~consent-deny"
ANYONE: Final = "*"  # a rule about every organization
WHOLE: Final = "*"  # a rule about the whole record
TYPE_PREFIX: Final = "type:"  # a rule about one resource type: "type:Observation"
PRIVACY: Final = ("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
MAX_DEPTH: Final = 8  # nested provisions followed at most (bad data cannot recurse without end)


def consent_rows(resource: dict[str, Any], rows: IndexRows) -> None:
    """Add the rule rows of ``resource`` (a Consent) to ``rows``; nothing for any other one."""
    if resource.get("status") != "active" or not _is_privacy(resource.get("scope")):
        return
    provision = resource.get("provision")
    if isinstance(provision, dict):
        seen: set[tuple[str, str, str]] = set()
        _provision(provision, None, rows, seen, 0)


def _is_privacy(scope: Any) -> bool:
    codings = scope.get("coding") if isinstance(scope, dict) else None
    return any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) == PRIVACY
        for c in (codings if isinstance(codings, list) else ())
    )


def _provision(node: dict[str, Any], inherited: str | None, rows: IndexRows, seen: set[Any], depth: int) -> None:
    kind = node.get("type") if node.get("type") in ("permit", "deny") else inherited
    if kind is not None:
        param = PERMIT if kind == "permit" else DENY
        for actor in _actors(node):
            for key in _keys(node):
                if (param, actor, key) not in seen:
                    seen.add((param, actor, key))
                    rows.token.append(TokenRow(param, actor, key, None))
    children = node.get("provision")
    if depth < MAX_DEPTH and isinstance(children, list):
        for child in children:
            if isinstance(child, dict):
                _provision(child, kind, rows, seen, depth + 1)


def _actors(node: dict[str, Any]) -> list[str]:
    """The organizations a provision names (relative references), or [ANYONE]."""
    found: list[str] = []
    for actor in node.get("actor") or ():
        ref = actor.get("reference") if isinstance(actor, dict) else None
        text = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(text, str) and text.startswith("Organization/"):
            found.append(text.split("/_history/")[0])
    return found or [ANYONE]


def _keys(node: dict[str, Any]) -> list[str]:
    """What a provision covers, as rule keys, or [WHOLE]."""
    keys: list[str] = []
    for concept in node.get("code") or ():
        keys.extend(_coding_keys(concept.get("coding") if isinstance(concept, dict) else None))
    keys.extend(_coding_keys(node.get("securityLabel")))
    for coding in node.get("class") or ():
        if isinstance(coding, dict) and coding.get("system") == RESOURCE_TYPES and isinstance(coding.get("code"), str):
            keys.append(TYPE_PREFIX + coding["code"])
    return keys or [WHOLE]


def _coding_keys(codings: Any) -> list[str]:
    return [
        f"{c['system']}|{c['code']}"
        for c in (codings if isinstance(codings, list) else ())
        if isinstance(c, dict) and isinstance(c.get("system"), str) and isinstance(c.get("code"), str)
    ]
