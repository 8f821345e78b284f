"""GET /metadata: a CapabilityStatement generated from what is really implemented
(http://hl7.org/fhir/R4/capabilitystatement.html)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ketnoi
from ketnoi.fhir.definitions import resource_types
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.services import Extractor as ExtractorProtocol
from ketnoi.search.extract import Extractor
from ketnoi.search.parse import COMMON

_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]


def capability_statement(repo: Repository, request: FhirRequest) -> FhirResponse:
    statement = dict(_static(repo))
    statement["implementation"] = {"description": "ketnoi FHIR server", "url": request.base_url}
    settings = repo.services.settings
    if settings.auth == "on":
        statement["rest"] = [{**statement["rest"][0], "security": _security(settings.issuer())}]
    return FhirResponse(200, resource=statement)


def _security(issuer: str) -> dict[str, Any]:
    """SMART on FHIR security (http://hl7.org/fhir/smart-app-launch/conformance.html): the service
    code and the OAuth endpoints."""
    oauth = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    return {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 bearer tokens (SMART App Launch 2): sign-in at the authorize endpoint, "
                "tokens from the token endpoint",
            }
        ],
        "extension": [
            {
                "url": oauth,
                "extension": [
                    {"url": name, "valueUri": f"{issuer}/{path}"}
                    for name, path in (
                        ("token", "token"),
                        ("authorize", "authorize"),
                        ("revoke", "revoke"),
                        ("introspect", "introspect"),
                    )
                ],
            }
        ],
    }


def _static(repo: Repository) -> dict[str, Any]:
    """Built once per Services (about 150 types); a change of search parameters drops it."""
    services = repo.services
    statement: dict[str, Any] | None = services.extras.get("capability_statement")
    if statement is None:
        statement = _build(services.extractor)
        statement["rest"][0]["operation"] = [
            {"name": op.name, "definition": op.definition.get("definition", f"urn:ketnoi:operation:{op.name}")}
            for op in services.operations.values()
        ]
        _type_operations(statement, services.operations.values())
        for describe in services.capabilities:
            describe(statement)
        services.extras["capability_statement"] = statement
    return statement


def _type_operations(statement: dict[str, Any], operations: Iterable[Operation]) -> None:
    """Operations invoked on one resource type (``Patient/$export``) listed under that type too, with
    the type's own definition where the operation has one (Bulk Data's ``patient-export``)."""
    by_type = {entry["type"]: entry for entry in statement["rest"][0]["resource"]}
    for op in operations:
        if not op.types or not op.levels & {"type", "instance"}:
            continue
        per_type = op.definition.get("per_type", {})
        for rtype in sorted(op.types):
            if rtype in by_type:
                url = per_type.get(rtype) or op.definition.get("definition", f"urn:ketnoi:operation:{op.name}")
                by_type[rtype].setdefault("operation", []).append({"name": op.name, "definition": url})


def _build(extractor: ExtractorProtocol) -> dict[str, Any]:
    resources = []
    for rtype in sorted(resource_types()):
        params = [{"name": code, "type": kind} for code, kind in COMMON.items()]
        unsupported = _unsupported(extractor, rtype)
        for code, sp in sorted(extractor.params_for(rtype).items()):
            if code in unsupported or code in COMMON:
                continue  # not searchable (e.g. near, _query): do not advertise it
            params.append({"name": code, "type": str(sp.get("type")), "definition": str(sp.get("url", ""))})
        if rtype == "AuditEvent":
            resources.append(_audit_event())
            continue
        resources.append(
            {
                "type": rtype,
                "interaction": [{"code": c} for c in _INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "full-support",
                "conditionalUpdate": True,
                "conditionalDelete": "single",
                "searchParam": params,
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-27",
        "publisher": "ketnoi",
        "kind": "instance",
        "software": {"name": "ketnoi", "version": ketnoi.__version__},
        "fhirVersion": ketnoi.FHIR_VERSION,
        "format": ["application/fhir+json", "application/json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                    {"code": "history-system"},
                ],
            }
        ],
    }


def _audit_event() -> dict[str, Any]:
    """AuditEvent is the audit log, read-only (``interactions.audit_api``): read and search by
    patient, date and agent; the server alone writes it."""
    return {
        "type": "AuditEvent",
        "documentation": "The audit trail: written by the server only; administrators read all, a patient their own",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {"name": "patient", "type": "reference"},
            {"name": "date", "type": "date"},
            {
                "name": "agent",
                "type": "reference",
                "documentation": "An agent's who: Organization/[id] the facility the caller acted for, "
                "Practitioner/[id] a user; agent:identifier=[system|]value a user's account name or a client id",
            },
        ],
    }


def _unsupported(extractor: ExtractorProtocol, rtype: str) -> set[str]:
    """Codes the extractor cannot index for ``rtype`` (its plans say why)."""
    if isinstance(extractor, Extractor):
        return {plan.code for plan in extractor.plans(rtype) if plan.status == "unsupported"}
    return {code for code, sp in extractor.params_for(rtype).items() if sp.get("type") == "special"}
