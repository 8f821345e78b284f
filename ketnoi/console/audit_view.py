"""AuditEvents as the rows the console shows (who, when, from which facility, what, why), read from
the events the FHIR API serves (``interactions.audit_api``, BALP-shaped: ``interactions.audit_events``).

Pure: no I/O. The pages fetch the events through the user's own token (:mod:`ketnoi.console.audit_pages`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ketnoi.console import show

USER_ID: Final = "https://fhir.ketnoi.vn/sid/user"
CLIENT_ID: Final = "https://fhir.ketnoi.vn/sid/client"
GLASS_PURPOSE: Final = "ETREAT"  # operations.break_glass: every opening is emergency treatment
GLASS_OPERATION: Final = "$break-the-glass"

# audit_events: the user is the information recipient (IRCP) or the author (AUT), DCM 110153 the client
# app, v3-RoleClass PROV the organization the caller acted for.
_USER_TYPES: Final = frozenset({"IRCP", "AUT"})
_CLIENT_TYPE: Final = "110153"
_ORG_TYPE: Final = "PROV"
# restful-interaction subtype → text key; the action letter when there is no subtype.
SUBTYPES: Final = {
    "read": "act_read", "vread": "act_read", "search-type": "act_search", "search-system": "act_search",
    "history-instance": "act_history", "history-type": "act_history", "history-system": "act_history",
    "create": "act_create", "update": "act_update", "patch": "act_update", "delete": "act_delete",
    "operation": "act_operation", "transaction": "act_batch", "batch": "act_batch",
}  # fmt: skip
ACTIONS: Final = {"C": "act_create", "R": "act_read", "U": "act_update", "D": "act_delete", "E": "act_operation"}
OUTCOMES: Final = {"0": "outcome_ok", "4": "outcome_refused", "8": "outcome_failed"}


@dataclass(frozen=True, slots=True)
class Row:
    """One AuditEvent in words (text keys for what has a fixed vocabulary)."""

    id: str
    recorded: str  # the instant as served (for <time datetime>)
    local: str  # dd/mm/yyyy HH:MM, Vietnam time
    user: str  # the signed-in user's account name (or fhirUser), "" when none
    client: str  # the app or backend's client_id, or its description
    facility: str  # "Organization/x" the caller acted for, "" when none
    action: str  # text key: act_read, act_search, ...
    operation: str  # "$break-the-glass" for an operation, else ""
    what: str  # the resource, else the query, else the patient
    what_type: str  # its resource type ("Observation"), "" when unknown
    outcome: str  # text key: outcome_ok | outcome_refused | outcome_failed
    outcome_text: str  # why it failed, when it did
    purpose: str  # v3-ActReason code (TREAT, ETREAT, ...), "" when none
    reason: str  # the stated reason (break-the-glass), "" when none

    @property
    def glass(self) -> bool:
        """A break-the-glass opening (or an access made under one): shown with a label, not colour alone."""
        return self.purpose == GLASS_PURPOSE or self.operation == GLASS_OPERATION


def row(event: dict[str, Any]) -> Row:
    agents = [a for a in event.get("agent") or () if isinstance(a, dict)]
    user = next((a for a in agents if _type(a) in _USER_TYPES), None)
    client = next((a for a in agents if _type(a) == _CLIENT_TYPE), None)
    org = next((a for a in agents if _type(a) == _ORG_TYPE), None)
    purpose = _first(event.get("purposeOfEvent"))
    subtypes = [c for c in event.get("subtype") or () if isinstance(c, dict)]
    codes = [str(c.get("code") or "") for c in subtypes]
    what = _what(event)
    recorded = str(event.get("recorded") or "")
    return Row(
        id=str(event.get("id") or ""),
        recorded=recorded,
        local=local_time(recorded),
        user=_user_name(user),
        client=_client_name(client),
        facility=str(((org or {}).get("who") or {}).get("reference") or ""),
        action=SUBTYPES.get(codes[0] if codes else "") or ACTIONS.get(str(event.get("action")), "act_operation"),
        operation=next((c for c in codes[1:] if c.startswith("$")), ""),
        what=what,
        what_type=what.split("?", 1)[0].split("/", 1)[0] if what and what[0].isupper() else "",
        outcome=OUTCOMES.get(str(event.get("outcome")), "outcome_failed"),
        outcome_text=str(event.get("outcomeDesc") or ""),
        purpose=_code(purpose),
        reason=str(purpose.get("text") or ""),
    )


def local_time(instant: str) -> str:
    """``2026-12-01T01:02:03.456Z`` → ``01/12/2026 08:02`` (Vietnam time); the text as is when unreadable."""
    return show.moment(instant, "%d/%m/%Y %H:%M")


def _type(agent: dict[str, Any]) -> str:
    return _code(agent.get("type"))


def _first(values: Any) -> dict[str, Any]:
    first = values[0] if isinstance(values, list) and values else None
    return first if isinstance(first, dict) else {}


def _code(concept: Any) -> str:
    """The first code of a CodeableConcept."""
    coding = _first(concept.get("coding")) if isinstance(concept, dict) else {}
    return str(coding.get("code") or "")


def _user_name(agent: dict[str, Any] | None) -> str:
    if agent is None:
        return ""
    who = agent.get("who") or {}
    ident = who.get("identifier") or {}
    return str(agent.get("name") or ident.get("value") or who.get("reference") or who.get("display") or "")


def _client_name(agent: dict[str, Any] | None) -> str:
    who = (agent or {}).get("who") or {}
    return str((who.get("identifier") or {}).get("value") or who.get("display") or "")


def _what(event: dict[str, Any]) -> str:
    """As ``audit_events._what``: the resource (role 4), else the query or job, else the patient."""
    entities = [e for e in event.get("entity") or () if isinstance(e, dict)]
    by_role = {str((e.get("role") or {}).get("code")): e for e in entities}
    data, other, patient = by_role.get("4"), by_role.get("24") or by_role.get("20"), by_role.get("1")
    if data is not None:
        return str((data.get("what") or {}).get("reference") or "")
    if other is not None:
        return str(other.get("description") or "")
    return str(((patient or {}).get("what") or {}).get("reference") or "")
