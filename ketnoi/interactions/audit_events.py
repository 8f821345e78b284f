"""AuditEvents shaped after IHE Basic Audit Log Patterns (BALP), for one FHIR interaction.

Pure (no I/O): a request, its caller and what it returned or wrote become AuditEvent JSON and the
audit log's entries (``ketnoi.store.auditlog.AuditEntry``); ``interactions.audit`` decides when and
in which transaction they are appended (ADR 0015). BALP (https://profiles.ihe.net/ITI/BALP/):

- ``type`` ``rest`` (audit-event-type), ``subtype`` the restful-interaction code (``read``,
  ``search-type``, ``create``...; an operation adds a coding naming it), ``action`` C/R/U/D/E,
  ``recorded``, ``outcome`` 0 (success), 4 (the request failed: 4xx, refusals included, with the
  reason in ``outcomeDesc``) or 8 (the server failed: 5xx).
- ``agent``: the user (requestor; ``who`` their fhirUser, else their account name as an
  identifier; roles, the token's ``jti`` as ``policy``, ``purposeOfUse``), the client app (its
  ``client_id``, with the network address the request came from, as BALP has it: "users are not
  network devices"), this server (with its FHIR base as network address) and the organization
  the caller acts for.
- ``entity``: the resource read or written with its version (``Observation/1/_history/2``), the
  patient whose data it is (role 1 "Patient"), for searches and other URLs with a query the
  query (base64 in ``query``, plain in ``description``), and the request id (BALP ``XrequestId``).

One event per patient whose data the interaction returned or wrote (BALP PatientQuery: "one
AuditEvent is created for every Patient identified in the resulting search set"), or one without
a patient when none is concerned. Served through the API, each event gets a short narrative in
Vietnamese and English for the patient's own view ("who read what, when, from where and why"),
made from its elements (:func:`narrative`).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ketnoi.fhir import resource as res
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.policy import compartment_params
from ketnoi.interactions.request import FhirRequest
from ketnoi.search.index import IndexRows
from ketnoi.store.auditlog import AuditEntry

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
OPERATION = "https://fhir.ketnoi.vn/CodeSystem/operation"  # names the $operation beside "operation"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
USER_ID = "https://fhir.ketnoi.vn/sid/user"  # a local account name (or an identity provider's subject)
CLIENT_ID = "https://fhir.ketnoi.vn/sid/client"  # an OAuth client_id
ROLE = "https://fhir.ketnoi.vn/CodeSystem/role"  # admin | facility-admin | clinician | provincial | patient

_ACTIONS = {"create": "C", "update": "U", "patch": "U", "delete": "D", "read": "R", "vread": "R"}
_ACTIONS |= {"history-instance": "R", "history-type": "R", "history-system": "R"}
_WRITES = {"POST": "create", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}
_MAX_TEXT = 2000  # characters of a query or reason kept in an event (the base64 query keeps it whole)


@dataclass(frozen=True, slots=True)
class Interaction:
    """What a request asked for, read from its method and URL (before, and whatever, it answered)."""

    subtype: str | None  # restful-interaction code; None for a URL that names no interaction
    action: str  # C | R | U | D | E
    resource_type: str | None = None
    id: str | None = None
    version: str | None = None
    operation: str | None = None  # "$import"
    patient: str | None = None  # the Patient the URL names (Patient/X, Patient/X/Observation)
    query: str | None = None  # the URL with its query, for searches, history, conditional writes, operations


def interaction_of(request: FhirRequest) -> Interaction:
    """The interaction a request asks for (the router's table, read for the audit trail)."""
    parts = [p for p in request.path.strip("/").split("/") if p]
    method = "GET" if request.method == "HEAD" else request.method
    n = len(parts)
    query = _query_text(request)
    if parts and parts[-1].startswith("$"):
        rtype = parts[0] if n > 1 else None
        id = parts[1] if n == 3 else None
        return _of("operation", rtype, id, operation=parts[-1], query=query)
    if n == 0:
        if method == "POST":
            kind = request.body.get("type") if isinstance(request.body, dict) else None
            return _of("transaction" if kind == "transaction" else "batch")
        return _of("search-system", query=query)
    head = parts[0]
    if n == 1 and head in ("_history", "_search", "metadata"):
        code = {"_history": "history-system", "_search": "search-system", "metadata": "capabilities"}[head]
        return _of(code, query=query)
    if n == 1:
        if method == "GET":
            return _of("search-type", head, query=query)
        criteria = request.header("if-none-exist") if method == "POST" else None
        conditional = f"{head}?{criteria.lstrip('?')}" if criteria else (query if request.query else None)
        return _of(_WRITES.get(method), head, query=conditional)
    if n == 2 and parts[1] in ("_search", "_history"):
        return _of("search-type" if parts[1] == "_search" else "history-type", head, query=query)
    if n == 2:
        return _of("read" if method == "GET" else _WRITES.get(method), head, parts[1])
    if n == 3 and parts[2] == "_history":
        return _of("history-instance", head, parts[1], query=query)
    if n == 4 and parts[2] == "_history":
        return _of("vread", head, parts[1], version=parts[3])
    if n in (3, 4):  # a compartment search: Patient/X/Observation
        return _of("search-type", parts[2], patient=parts[1] if head == "Patient" else None, query=query)
    return _of(None)


def _of(
    subtype: str | None,
    rtype: str | None = None,
    id: str | None = None,
    *,
    version: str | None = None,
    operation: str | None = None,
    patient: str | None = None,
    query: str | None = None,
) -> Interaction:
    if patient is None and rtype == "Patient":
        patient = id
    return Interaction(
        subtype,
        _ACTIONS.get(subtype or "", "E"),
        rtype,
        id,
        version,
        operation,
        patient if res.is_valid_id(patient) else None,
        query,
    )


def _query_text(request: FhirRequest) -> str:
    """The URL as asked, relative to the FHIR base (a POST ``_search`` form is in ``query`` too)."""
    path = request.path.strip("/")
    return f"{path}?{urlencode(request.query)}" if request.query else path


@dataclass(frozen=True, slots=True)
class Target:
    """What one AuditEvent is about: a resource (version) and the patient whose data it is."""

    what: str | None = None  # "Observation/1/_history/2"
    patient: str | None = None  # a bare Patient id
    action: str | None = None  # instead of the interaction's (an update that created: C)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the interaction ended: the HTTP status and, for a failure, why."""

    status: int
    reason: str | None = None

    @property
    def code(self) -> str:
        """AuditEvent.outcome: 0 success, 4 minor failure (the request was refused or wrong), 8 serious."""
        return "0" if self.status < 400 else "4" if self.status < 500 else "8"


def build(
    context: RequestContext,
    interaction: Interaction,
    target: Target,
    outcome: Outcome,
    *,
    recorded: float,
    base_url: str,
) -> dict[str, Any]:
    """One AuditEvent (JSON) of ``interaction`` by ``context`` about ``target``."""
    action = target.action or interaction.action
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": EVENT_TYPE, "code": "rest"},
    }
    subtype = _subtype(interaction)
    if subtype:
        event["subtype"] = subtype
    event["action"] = action
    event["recorded"] = res.instant(recorded)
    event["outcome"] = outcome.code
    if outcome.reason:
        event["outcomeDesc"] = outcome.reason[:_MAX_TEXT]
    purpose = _purpose(context)
    if purpose:
        event["purposeOfEvent"] = purpose
    event["agent"] = agents(context, action, base_url)
    event["source"] = {
        "site": base_url,
        "observer": {"display": "ketnoi"},
        "type": [{"system": SOURCE_TYPE, "code": "4"}],
    }
    event["entity"] = entities(context, interaction, target)
    return event


def entry(event: dict[str, Any], context: RequestContext, target: Target, recorded: float) -> AuditEntry:
    """The audit log's record of ``event`` (its ``patient`` column serves the patient's own view)."""
    return AuditEntry(recorded, context.request_id or None, target.patient, res.dumps(event))


def _subtype(interaction: Interaction) -> list[dict[str, Any]]:
    if interaction.subtype is None:
        return []
    codings = [{"system": RESTFUL, "code": interaction.subtype}]
    if interaction.operation:
        codings.append({"system": OPERATION, "code": interaction.operation[:64]})
    return codings


def _purpose(context: RequestContext) -> list[dict[str, Any]]:
    if not context.purpose_of_use:
        return []
    return [{"coding": [{"system": ACT_REASON, "code": context.purpose_of_use}]}]


def agents(context: RequestContext, action: str, base_url: str) -> list[dict[str, Any]]:
    """The user (when there is one), the client app with the network address, this server, and
    the organization the caller acts for (when it acts for one)."""
    user = _user(context, action)
    client: dict[str, Any] = {
        "type": {"coding": [{"system": DCM, "code": "110153"}]},
        "who": (
            {"identifier": {"system": CLIENT_ID, "value": context.client_id}}
            if context.client_id
            else {"display": "unidentified client" if context.source == "rest" else f"ketnoi ({context.source})"}
        ),
        "requestor": user is None,
    }
    if user is None and context.purpose_of_use:
        client["purposeOfUse"] = _purpose(context)
    if context.remote_addr:
        client["network"] = {"address": context.remote_addr, "type": "2"}  # 2: IP address
    server = {
        "type": {"coding": [{"system": DCM, "code": "110152"}]},
        "who": {"display": "ketnoi"},
        "requestor": False,
        "network": {"address": base_url, "type": "5"},  # 5: URI
    }
    found = [user] if user is not None else []
    found += [client, server]
    if context.organization:
        found.append(
            {
                "type": {"coding": [{"system": ROLE_CLASS, "code": "PROV"}]},
                "who": {"reference": context.organization},
                "requestor": False,
            }
        )
    return found


def _user(context: RequestContext, action: str) -> dict[str, Any] | None:
    if not context.user and not context.fhir_user:
        return None
    # BALP: a reader is the information recipient; a writer the author.
    kind = "IRCP" if action in ("R", "E") else "AUT"
    who: dict[str, Any] = {"reference": context.fhir_user} if context.fhir_user else {}
    if context.user:
        who["identifier"] = {"system": USER_ID, "value": context.user}
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": PARTICIPATION, "code": kind}]},
        "who": who,
    }
    if context.user:
        agent["name"] = context.user
    agent["requestor"] = True
    if context.roles:
        agent["role"] = [{"coding": [{"system": ROLE, "code": role}]} for role in sorted(context.roles)]
    if context.token_id:
        agent["policy"] = [context.token_id]
    if context.purpose_of_use:
        agent["purposeOfUse"] = _purpose(context)
    return agent


def entities(context: RequestContext, interaction: Interaction, target: Target) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if target.what:
        found.append(
            {
                "what": {"reference": target.what[:_MAX_TEXT]},
                "type": {"system": ENTITY_TYPE, "code": "2"},
                "role": {"system": OBJECT_ROLE, "code": "4"},
            }
        )
    if target.patient:
        found.append(
            {
                "what": {"reference": f"Patient/{target.patient}"},
                "type": {"system": ENTITY_TYPE, "code": "1"},
                "role": {"system": OBJECT_ROLE, "code": "1"},
            }
        )
    if interaction.query:
        found.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2"},
                "role": {"system": OBJECT_ROLE, "code": "24"},
                "description": interaction.query[:_MAX_TEXT],
                "query": base64.b64encode(interaction.query.encode("utf-8")).decode("ascii"),
            }
        )
    if context.request_id:
        found.append(
            {
                "what": {"identifier": {"value": context.request_id}},
                "type": {"system": BALP_ENTITY, "code": "XrequestId"},
            }
        )
    return found


# ---- narrative: who did what, when, for whom and why (Vietnamese first, then English) ---------------
_VERBS = {
    "read": ("đã xem", "read"),
    "vread": ("đã xem", "read"),
    "search-type": ("đã tìm kiếm", "searched"),
    "search-system": ("đã tìm kiếm", "searched"),
    "history-instance": ("đã xem lịch sử", "read the history of"),
    "history-type": ("đã xem lịch sử", "read the history of"),
    "history-system": ("đã xem lịch sử", "read the history of"),
    "create": ("đã tạo", "created"),
    "update": ("đã cập nhật", "updated"),
    "patch": ("đã sửa", "patched"),
    "delete": ("đã xoá", "deleted"),
    "operation": ("đã chạy", "ran"),
    "transaction": ("đã gửi giao dịch", "sent a transaction"),
    "batch": ("đã gửi lô yêu cầu", "sent a batch"),
}


def narrative(event: dict[str, Any]) -> str:
    """The event in one sentence per language, for the patient's view. Made when the event is
    served (``audit_api``), not stored: recording a read costs no text, and the wording may change
    without touching the hash-chained records."""
    agents = {_code(a.get("type")): a for a in event.get("agent", []) if isinstance(a, dict)}
    user = agents.get("IRCP") or agents.get("AUT") or agents.get("110153") or {}
    who_ref = user.get("who") or {}
    who = who_ref.get("reference") or (who_ref.get("identifier") or {}).get("value") or who_ref.get("display") or "?"
    org = ((agents.get("PROV") or {}).get("who") or {}).get("reference")
    subtype = _code({"coding": event.get("subtype", [])}) or ""
    vi_verb, en_verb = _VERBS.get(subtype, ("đã gửi yêu cầu", "requested"))
    if event.get("action") == "R" and subtype in ("create", "update", "patch", "delete"):
        vi_verb, en_verb = _VERBS["read"]  # a write that wrote nothing and answered what exists
    purpose = (event.get("purposeOfEvent") or [{}])[0]
    why = _code(purpose)
    if why and isinstance(purpose, dict) and purpose.get("text"):
        why = f"{why}: {purpose['text']}"  # break-the-glass: the clinician's stated reason
    vi = f"{who}{f' ({org})' if org else ''} {vi_verb} {_what(event)} lúc {event.get('recorded', '?')}"
    en = f"{who}{f' at {org}' if org else ''} {en_verb} {_what(event)} at {event.get('recorded', '?')}"
    if why:
        vi, en = f"{vi} vì {why}", f"{en} for {why}"
    if event.get("outcome") not in (None, "0"):
        vi, en = f"{vi} — bị từ chối", f"{en} — refused"
    return (
        '<div xmlns="http://www.w3.org/1999/xhtml">'
        f'<p lang="vi">{html.escape(vi[:_MAX_TEXT])}</p><p lang="en">{html.escape(en[:_MAX_TEXT])}</p></div>'
    )


def _what(event: dict[str, Any]) -> str:
    """The resource an event is about, else its query or job, else its patient."""
    found = {(e.get("role") or {}).get("code"): e for e in event.get("entity", []) if isinstance(e, dict)}
    data, other = found.get("4"), found.get("24") or found.get("20")
    if data is not None:
        return str((data.get("what") or {}).get("reference") or "")
    if other is not None:
        return str(other.get("description") or "")
    return str(((found.get("1") or {}).get("what") or {}).get("reference") or "")


def _code(concept: Any) -> str | None:
    """The first code of a CodeableConcept-like ``{"coding": [...]}``, if any."""
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if isinstance(codings, list) and codings and isinstance(codings[0], dict):
        code = codings[0].get("code")
        return code if isinstance(code, str) else None
    return None


# ---- whose data: the R4 Patient compartment of a resource ------------------------------------------
Extract = Callable[[dict[str, Any]], IndexRows]


def patients_of(resource: Any, extract: Callable[[str], Extract | None]) -> list[str]:
    """The Patient ids whose compartment ``resource`` is in (its own id for a Patient), sorted.
    ``extract(rtype)``: index extraction limited to the compartment parameters of ``rtype``."""
    if not isinstance(resource, dict):
        return []
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        id = resource.get("id")
        return [id] if isinstance(id, str) and res.is_valid_id(id) else []
    if not isinstance(rtype, str):
        return []
    params = compartment_params(rtype)
    run = extract(rtype) if params else None
    if run is None or params is None:
        return []
    rows = run(resource).reference
    found = {r.target_id for r in rows if r.param in params and r.target_type == "Patient" and r.target_id}
    return sorted(p for p in found if p is not None and res.is_valid_id(p))


def patients_in(resources: Iterable[Any], extract: Callable[[str], Extract | None]) -> list[str]:
    """The union of :func:`patients_of` over several resources, sorted."""
    found: set[str] = set()
    for resource in resources:
        found.update(patients_of(resource, extract))
    return sorted(found)


def bulk(
    context: RequestContext,
    what: str,
    counts: dict[str, int],
    job: int | None,
    *,
    recorded: float,
    base_url: str,
    export: bool = False,
) -> dict[str, Any]:
    """The AuditEvent of one bulk write batch (DICOM 110107 "Import"), or with ``export`` of one bulk
    read batch (110106 "Export", action R): no patient (a batch holds many); the counts by type as
    the job entity's details."""
    action = "R" if export else "C"
    import_ = Interaction("operation", action, operation=what if what.startswith("$") else None)
    label = f"{what} (job {job})" if job is not None else what
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": "110106" if export else "110107"},
    }
    if import_.operation:
        event["subtype"] = _subtype(import_)
    event |= {"action": action, "recorded": res.instant(recorded), "outcome": "0"}
    event["agent"] = agents(context, action, base_url)
    event["source"] = {
        "site": base_url,
        "observer": {"display": "ketnoi"},
        "type": [{"system": SOURCE_TYPE, "code": "4"}],
    }
    job_entity: dict[str, Any] = {
        "type": {"system": ENTITY_TYPE, "code": "2"},
        "role": {"system": OBJECT_ROLE, "code": "20"},
        "description": label,
        "detail": [{"type": rtype, "valueString": str(n)} for rtype, n in sorted(counts.items())],
    }
    if job is not None:
        job_entity["what"] = {"identifier": {"value": str(job)}}
    event["entity"] = [job_entity, *entities(context, _of(None), Target())]
    return event
