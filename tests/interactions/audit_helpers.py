"""Helpers of the audit trail tests: calls through the router, and the log read back as it is stored."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ketnoi.auth.scopes import parse_scopes
from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import unit_of_work
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services

OPEN = RequestContext.operator("test")
BASE = "http://x/fhir"


def call(
    services: Services,
    ctx: RequestContext,
    method: str,
    url: str,
    body: Any = None,
    content_type: str = "application/fhir+json",
) -> FhirResponse:
    path, _, qs = url.partition("?")
    headers = {"content-type": content_type}
    request = FhirRequest(method, path, parse_qsl(qs, keep_blank_values=True), headers, body, BASE, ctx)
    return handle(services, request)


def body(r: FhirResponse) -> Any:
    return r.resource if r.resource is not None else orjson.loads(r.raw or b"null")


def create(services: Services, resource: dict[str, Any], ctx: RequestContext = OPEN) -> str:
    r = call(services, ctx, "POST", resource["resourceType"], resource)
    assert r.status == 201, body(r)
    return str(body(r)["id"])


def observation(patient: str, code: str = "8867-4") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


@dataclass(frozen=True)
class Record:
    """One audit log record, its event parsed."""

    seq: int
    request_id: str | None
    patient: str | None
    event: dict[str, Any]

    @property
    def subtype(self) -> str | None:
        return self.event["subtype"][0]["code"] if "subtype" in self.event else None

    def entity(self, kind: str) -> dict[str, Any] | None:
        """The entity of a kind: data (role 4), patient (role 1), query (role 24), request (XrequestId)."""
        for e in self.event.get("entity", []):
            code = (e.get("role") or {}).get("code") or e["type"]["code"]
            if {"data": "4", "patient": "1", "query": "24", "request": "XrequestId"}[kind] == code:
                return dict(e)
        return None

    @property
    def what(self) -> str | None:
        data = self.entity("data")
        return data["what"]["reference"] if data else None

    @property
    def query(self) -> str | None:
        query = self.entity("query")
        return base64.b64decode(query["query"]).decode() if query else None

    def agent(self, code: str) -> dict[str, Any] | None:
        """The agent whose type has this code (IRCP/AUT: the user; 110153: the client; PROV: the organization)."""
        for a in self.event["agent"]:
            if a["type"]["coding"][0]["code"] == code:
                return dict(a)
        return None

    def key(self) -> tuple[Any, ...]:
        e = self.event
        return (self.request_id, self.subtype, e["action"], e["outcome"], self.what, self.patient)


def records(services: Services, after: int = 0) -> list[Record]:
    """Every record after ``after``, in order, read straight from the log (not through the API),
    once the reads' records still in the journal are in it (ADR 0018)."""
    assert audit.flush(services)
    with unit_of_work(services, RequestContext.internal("test"), write=False) as repo:
        rows = repo.audit_records(
            patient=None, after_seq=after, before_seq=None, since=None, until=None, limit=100_000, newest_first=False
        )
    return [Record(r.seq, r.request_id, r.patient, orjson.loads(r.event)) for r in rows]


def head(services: Services) -> int:
    found = records(services)
    return found[-1].seq if found else 0


CLINICIAN = RequestContext(
    request_id="-",
    authenticated=True,
    user="lan",
    fhir_user="Practitioner/dr-lan",
    roles=frozenset({"clinician"}),
    client_id="emr-f1",
    scopes=parse_scopes("user/*.cruds"),
    organization="Organization/F1",
    purpose_of_use="TREAT",
    remote_addr="10.1.2.3",
    token_id="jti-lan-1",
)


def as_(ctx: RequestContext, request_id: str, **changes: Any) -> RequestContext:
    return replace(ctx, request_id=request_id, **changes)


def patient_ctx(patient: str, request_id: str, scopes: str = "patient/*.cruds") -> RequestContext:
    return RequestContext(
        request_id=request_id,
        authenticated=True,
        user=f"bn-{patient[:8]}",
        fhir_user=f"Patient/{patient}",
        roles=frozenset({"patient"}),
        client_id="patient-app",
        scopes=parse_scopes(scopes),
        patient=patient,
        remote_addr="10.9.9.9",
    )
