"""AuditEvents of sign-in and token issue (issue 10: "every ... sign-in, token issue ... and denied
attempt"), in the same hash-chained log as the FHIR interactions' (ADR 0013, 0015).

Shaped after DICOM's User Authentication event (type 110114; subtype 110122 Login for the
sign-in form, and a ketnoi code ``token`` for the token endpoint), action E, with the user, the
client app and its network address as agents, the outcome and, for a refusal, the reason. They
are committed like read events (ADR 0016): before the answer, without a disk flush each. A
failure to record is logged and does not turn a sign-in into an error: the sign-in itself changes
no patient data, and a flooded or failing log must not lock every user out.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from ketnoi.fhir import resource as res
from ketnoi.interactions.audit_events import DCM, agents
from ketnoi.interactions.context import RequestContext
from ketnoi.store.auditlog import AuditEntry
from ketnoi.store.base import Store

KIND: Final = "https://fhir.ketnoi.vn/CodeSystem/auth-event"  # login | token
_LOGIN = {"system": DCM, "code": "110122", "display": "Login"}
log = logging.getLogger("ketnoi.security")


def event(
    context: RequestContext, what: str, status: int, reason: str | None, recorded: float, base: str
) -> dict[str, Any]:
    """The AuditEvent of one sign-in (``what`` = "login") or token request ("token")."""
    subtype = [_LOGIN] if what == "login" else [{"system": KIND, "code": what}]
    body: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": "110114", "display": "User Authentication"},
        "subtype": subtype,
        "action": "E",
        "recorded": res.instant(recorded),
        "outcome": "0" if status < 400 else "4",
    }
    if reason:
        body["outcomeDesc"] = reason[:500]
    body["agent"] = agents(context, "E", base)
    body["source"] = {"site": base, "observer": {"display": "ketnoi"}}
    return body


def record(
    store: Store,
    context: RequestContext,
    what: str,
    status: int,
    reason: str | None,
    base: str,
    patient: str | None = None,
) -> None:
    """Append the event; durable against a crash of the server before this returns."""
    now = time.time()
    entry = AuditEntry(
        now, context.request_id or None, patient, res.dumps(event(context, what, status, reason, now, base))
    )
    try:
        with store.session(write=True, durable=False) as session:
            session.audit_append([entry])
    except Exception:  # see the module's docstring: logged, not fatal
        log.exception("the %s audit event could not be recorded", what)
