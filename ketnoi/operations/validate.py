"""``$validate`` (http://hl7.org/fhir/R4/resource-operation-validate.html): check a resource
against the base R4 structure without storing it. Answers 200 with an OperationOutcome whose
issues say what is wrong (an error issue means the resource would be refused)."""

from __future__ import annotations

from typing import Any

from ketnoi.fhir.outcome import Issue, bad_request, operation_outcome
from ketnoi.fhir.resource import loads
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse


def _resource_of(body: Any) -> Any:
    """The resource itself, or the ``resource`` parameter of a Parameters body."""
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for param in body.get("parameter", []):
            if isinstance(param, dict) and param.get("name") == "resource":
                return param.get("resource")
        raise bad_request(
            "$validate with Parameters needs a 'resource' parameter",
            "$validate với Parameters cần tham số 'resource'",
            code="required",
        )
    return body


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    resource = _resource_of(request.body)
    if resource is None and rtype and id:
        resource = loads(repo.read(rtype, id).content or b"{}")
    if not isinstance(resource, dict):
        raise bad_request(
            "$validate needs a resource in the body", "$validate cần một tài nguyên trong nội dung", code="required"
        )
    issues: list[Issue] = []
    if rtype is not None and resource.get("resourceType") != rtype:
        issues.append(Issue("error", "invalid", f"The resource is not a {rtype}", f"Tài nguyên không phải {rtype}"))
    validator = repo.services.validator
    if validator is not None:
        issues.extend(validator(resource, repo.services.settings.strict))
    return FhirResponse(200, resource=operation_outcome(issues))


OPERATION = Operation(
    name="validate",
    handler=handle,
    levels=frozenset({"type", "instance"}),
    methods=frozenset({"POST"}),
    write=False,
    access="read",  # validates a posted body, or reads the instance it names (read permission)
    definition={"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"},
)
