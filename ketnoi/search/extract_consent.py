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
  ``ref:Type/id`` for each ``provision.data`` resource (``dep:Type/id`` too when its meaning is
  ``dependents``: what refers to it), ``org:Organization/id`` for ``data`` of meaning
  ``authoredby`` an Organization (what that organization wrote), or :data:`WHOLE` (the whole
  record) when the provision names none of these;
- ``text``: when the rule holds, ``provision.period`` (intersected with the enclosing
  provisions'), as :func:`period_text`; ``None`` for always.

A provision whose ``purpose`` names purposes of use none of which is treatment (``TREAT``, the
purpose of every facility's access here; break-the-glass overrides Consents anyway) states no
rule, nor do the provisions nested in it. ``data`` the platform cannot evaluate (``authoredby`` a
Practitioner: versions record organizations, not people) fails closed: a deny made only of it
covers the whole record, a permit made only of it grants nothing. ``related`` covers the
instance only (what it refers to is not followed: ADR 0017). A Consent that is not ``active``
(draft, proposed, rejected, inactive: withdrawn, entered-in-error) states no rule, so withdrawing
or restoring one is an update of its status.
"""

from __future__ import annotations

from typing import Any, Final

from ketnoi.search.index import DATE_MAX, IndexRows, TokenRow
from ketnoi.search.normalize import date_range

PERMIT: Final = "~consent-permit"
DENY: Final = "~consent-deny"
ANYONE: Final = "*"  # a rule about every organization
WHOLE: Final = "*"  # a rule about the whole record
TYPE_PREFIX: Final = "type:"  # a rule about one resource type: "type:Observation"
PRIVACY: Final = ("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
REF_PREFIX: Final = "ref:"  # a rule about one resource: "ref:Observation/1"
DEPENDENT_PREFIX: Final = "dep:"  # about what refers to one resource: "dep:Encounter/1"
AUTHOR_PREFIX: Final = "org:"  # about what one organization wrote: "org:Organization/bv-1"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
TREATMENT: Final = frozenset({"TREAT"})  # the purpose of use of a facility's access
PERIOD_DIGITS: Final = 12  # epoch seconds, zero-padded: compared as text in SQL
ALWAYS: Final = (0, 10**PERIOD_DIGITS - 1)
MAX_DEPTH: Final = 8  # nested provisions followed at most (bad data cannot recurse without end)


def consent_rows(resource: dict[str, Any], rows: IndexRows) -> None:
    """Add the rule rows of ``resource`` (a Consent) to ``rows``; nothing for any other one."""
    if resource.get("status") != "active" or not _is_privacy(resource.get("scope")):
        return
    provision = resource.get("provision")
    if isinstance(provision, dict):
        seen: set[tuple[str, str, str, str | None]] = set()
        _provision(provision, (None, ALWAYS), rows, seen, 0)


def _is_privacy(scope: Any) -> bool:
    codings = scope.get("coding") if isinstance(scope, dict) else None
    return any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) == PRIVACY
        for c in (codings if isinstance(codings, list) else ())
    )


def _provision(
    node: dict[str, Any], inherited: tuple[str | None, tuple[int, int]], rows: IndexRows, seen: set[Any], depth: int
) -> None:
    if not _for_treatment(node.get("purpose")):
        return  # about other uses (research, marketing, ...): nor are its exceptions about care
    kind = node.get("type") if node.get("type") in ("permit", "deny") else inherited[0]
    span = _within(inherited[1], node.get("period"))
    if kind is not None and span is not None:
        param = PERMIT if kind == "permit" else DENY
        text = None if span == ALWAYS else period_text(*span)
        for actor in _actors(node):
            for key in _keys(node, kind):
                if (param, actor, key, text) not in seen:
                    seen.add((param, actor, key, text))
                    rows.token.append(TokenRow(param, actor, key, text))
    children = node.get("provision")
    if depth < MAX_DEPTH and isinstance(children, list) and span is not None:
        for child in children:
            if isinstance(child, dict):
                _provision(child, (kind, span), rows, seen, depth + 1)


def _for_treatment(purposes: Any) -> bool:
    """Whether a provision's ``purpose`` (none: any purpose) includes treatment."""
    codings = [c for c in purposes if isinstance(c, dict)] if isinstance(purposes, list) else []
    return not codings or any(c.get("system") == ACT_REASON and c.get("code") in TREATMENT for c in codings)


def _within(outer: tuple[int, int], period: Any) -> tuple[int, int] | None:
    """``outer`` narrowed to ``period`` (whole seconds, widened outward), or None when they do not
    meet; a period that cannot be read leaves ``outer`` as it is (the write validator refuses
    such a Consent before it is stored)."""
    if not isinstance(period, dict):
        return outer
    try:
        low = date_range(period["start"])[0] if isinstance(period.get("start"), str) else 0.0
        high = date_range(period["end"])[1] if isinstance(period.get("end"), str) else DATE_MAX
    except ValueError:
        return outer
    span = (max(outer[0], int(max(low, 0))), min(outer[1], int(min(high, ALWAYS[1]) + 0.999999)))
    return span if span[0] <= span[1] else None


def period_text(low: float, high: float) -> str:
    """A rule's time bounds as the text SQL compares: ``LOW/HIGH``, epoch seconds zero-padded to
    :data:`PERIOD_DIGITS` (times before 1970 count from 1970)."""
    return f"{max(int(low), 0):0{PERIOD_DIGITS}d}/{min(int(high), ALWAYS[1]):0{PERIOD_DIGITS}d}"


def now_text(now: float) -> str:
    """``now`` in the form of :func:`period_text`'s bounds."""
    return f"{int(now):0{PERIOD_DIGITS}d}"


def holds(text: str | None, now: float) -> bool:
    """Whether a rule whose period is ``text`` (:func:`period_text`, ``None``: always) holds at ``now``."""
    if not text:
        return True
    low, _, high = text.partition("/")
    return low <= now_text(now) <= high


def _actors(node: dict[str, Any]) -> list[str]:
    """The organizations a provision names (relative references), or [ANYONE]."""
    found: list[str] = []
    for actor in node.get("actor") or ():
        ref = actor.get("reference") if isinstance(actor, dict) else None
        text = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(text, str) and text.startswith("Organization/"):
            found.append(text.split("/_history/")[0])
    return found or [ANYONE]


def _keys(node: dict[str, Any], kind: str) -> list[str]:
    """What a provision covers, as rule keys, or [WHOLE]."""
    keys: list[str] = []
    for concept in node.get("code") or ():
        keys.extend(_coding_keys(concept.get("coding") if isinstance(concept, dict) else None))
    keys.extend(_coding_keys(node.get("securityLabel")))
    for coding in node.get("class") or ():
        if isinstance(coding, dict) and coding.get("system") == RESOURCE_TYPES and isinstance(coding.get("code"), str):
            keys.append(TYPE_PREFIX + coding["code"])
    data = [d for d in node.get("data") or () if isinstance(d, dict)]
    for item in data:
        keys.extend(_data_keys(item))
    if data and not keys and kind == "permit":
        return []  # only data the platform cannot evaluate: a permit of it grants nothing
    return keys or [WHOLE]


def _data_keys(item: dict[str, Any]) -> list[str]:
    """The keys of one ``provision.data``: its resource (and, by meaning, what refers to it, or
    what an organization wrote); none when the reference is not a relative ``Type/id``."""
    ref = item.get("reference")
    text = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(text, str) or text.count("/") not in (1, 3) or "://" in text:
        return []
    target = "/".join(text.split("/")[:2])
    meaning = item.get("meaning")
    if meaning == "authoredby":
        return [AUTHOR_PREFIX + target] if target.startswith("Organization/") else []
    if meaning == "dependents":
        return [REF_PREFIX + target, DEPENDENT_PREFIX + target]
    return [REF_PREFIX + target]


def _coding_keys(codings: Any) -> list[str]:
    return [
        f"{c['system']}|{c['code']}"
        for c in (codings if isinstance(codings, list) else ())
        if isinstance(c, dict) and isinstance(c.get("system"), str) and isinstance(c.get("code"), str)
    ]
