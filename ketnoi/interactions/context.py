"""RequestContext: who is calling, on whose behalf and why, carried through every interaction.

Made once at the edge (the HTTP layer from the request and, with sign-in, its access token; the
CLI for an operator's command) and handed down unchanged: to each entry of a Bundle, to every read
and write of the Repository, to write hooks, and into background jobs (a job stores the context of
whoever started it and runs with exactly those rights). Policy and audit read it; nothing below
the edge makes one up, except the internal ``system`` context of the server's own maintenance.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ketnoi.auth.scopes import ScopeSet, parse_scopes


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The caller of one request (or of the job it started)."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    source: str = "rest"  # rest | cli | job | internal
    authenticated: bool = False  # whether a verified credential stands behind the fields below
    user: str | None = None  # the signed-in user (local account name or the identity provider's sub)
    fhir_user: str | None = None  # the user's FHIR resource, e.g. "Practitioner/123"
    roles: frozenset[str] = frozenset()  # admin | facility-admin | clinician | provincial | patient
    client_id: str | None = None  # the OAuth client (app or backend system)
    scopes: ScopeSet | None = None  # granted scopes; None = not scope-limited (auth off, operator, internal)
    # The organization the caller acts for, "Organization/ID": every version it writes records it,
    # and it may change only what that organization wrote (policy.Access.may_change). None: the
    # national level, an operator, the server itself.
    organization: str | None = None
    patient: str | None = None  # the patient in context (SMART launch), a Patient id
    purpose_of_use: str | None = None  # e.g. TREAT, ETREAT (break-the-glass), HPAYMT
    remote_addr: str | None = None  # the network address the request came from
    token_id: str | None = None  # the access token's jti, for the audit trail (AuditEvent.agent.policy)

    @classmethod
    def operator(cls, command: str, organization: str | None = None) -> RequestContext:
        """An operator's command on the server machine (``ketnoi load``): the operator holds the
        database credentials, so the command is not scope-limited. ``organization``: the one it
        writes for (``ketnoi load --organization``), recorded on every version like a user's."""
        return cls(source="cli", user=f"operator:{command}", organization=organization)

    @classmethod
    def internal(cls, task: str) -> RequestContext:
        """The server's own maintenance (loading SearchParameters, statistics), never a caller's."""
        return cls(source="internal", user=f"ketnoi:{task}")

    @classmethod
    def of_job(cls, owner: dict[str, Any] | None) -> RequestContext:
        """The context a job's steps run with: its owner's, or (a job queued before jobs recorded
        their owner) the server's own."""
        return cls.from_json(owner).for_job() if owner is not None else cls.internal("job")

    def for_job(self) -> RequestContext:
        """The same caller, as seen by a background job it started."""
        return replace(self, source="job")

    def to_json(self) -> dict[str, Any]:
        """JSON for a job's parameters (scopes as their canonical text)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["roles"] = sorted(self.roles)
        out["scopes"] = self.scopes.text() if self.scopes is not None else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestContext:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["roles"] = frozenset(values.get("roles") or ())
        scopes = values.get("scopes")
        values["scopes"] = parse_scopes(scopes) if isinstance(scopes, str) else None
        return cls(**values)
