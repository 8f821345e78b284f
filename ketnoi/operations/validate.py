"""``$validate`` (http://hl7.org/fhir/R4/resource-operation-validate.html): check a resource without
storing it. Answers 200 with an OperationOutcome whose issues say what is wrong (an error issue means
the resource would be refused).

What is checked is what a write would get under the server's ``KETNOI_VALIDATION`` setting
(structure, base invariants, the profiles the resource claims, its extensions' definitions), and:

- ``profile`` (a canonical URL, in the query or the Parameters body): the resource is also checked
  against that profile; its errors are errors whatever the setting (it was asked for), and a profile
  the server does not know is an error.
- ``mode``: ``create`` (an id in the resource is noted: the server assigns its own), ``update``
  (the resource needs an id, the instance's when the operation is called on an instance),
  ``delete`` (on an instance: it must exist; nothing else is checked, ketnoi keeps no referential
  integrity on delete) and ``profile`` (only the profile check). Without ``mode``, a general check.
"""

from __future__ import annotations

from typing import Any

from ketnoi.fhir.outcome import Issue, bad_request, operation_outcome
from ketnoi.fhir.resource import loads
from ketnoi.interactions.conformance import conformance_of
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.validation import check_profiles

MODES = ("create", "update", "delete", "profile")


def _parameters(request: FhirRequest) -> tuple[Any, dict[str, list[str]]]:
    """The resource (the body itself, or the ``resource`` parameter of a Parameters body) and the
    ``mode``/``profile`` values from the query and the Parameters body."""
    found: dict[str, list[str]] = {"mode": [], "profile": []}
    for key, value in request.query:
        if key in found:
            found[key].append(value)
    body = request.body
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        return body, found
    resource: Any = None
    for param in body.get("parameter") or ():
        if not isinstance(param, dict):
            continue
        name = param.get("name")
        if name == "resource":
            resource = param.get("resource")
        elif name in found:
            given = [v for k, v in param.items() if k.startswith("value") and isinstance(v, str)]
            found[str(name)].extend(given[:1])
    if resource is None and found["mode"] != ["delete"]:
        raise bad_request(
            "$validate with Parameters needs a 'resource' parameter",
            "$validate với Parameters cần tham số 'resource'",
            code="required",
        )
    return resource, found


def _one(found: dict[str, list[str]], name: str) -> str | None:
    values = found[name]
    if len(values) > 1:
        raise bad_request(f"$validate takes one '{name}'", f"$validate chỉ nhận một '{name}'", code="invalid")
    return values[0] if values else None


def _mode_of(found: dict[str, list[str]]) -> str | None:
    mode = _one(found, "mode")
    if mode is not None and mode not in MODES:
        raise bad_request(
            f"$validate mode must be one of {', '.join(MODES)}, not '{mode[:40]}'",
            f"mode của $validate phải là một trong {', '.join(MODES)}, không phải '{mode[:40]}'",
            code="invalid",
        )
    return mode


def _delete(repo: Repository, rtype: str | None, id: str | None) -> FhirResponse:
    if rtype is None or id is None:
        raise bad_request(
            "$validate with mode=delete is called on the instance to delete: [type]/[id]/$validate?mode=delete",
            "$validate với mode=delete phải gọi trên tài nguyên cần xoá: [type]/[id]/$validate?mode=delete",
            code="required",
        )
    repo.read(rtype, id)  # 404/410 when there is nothing to delete (and the read rules apply)
    note = Issue(
        "information",
        "informational",
        f"{rtype}/{id} can be deleted (ketnoi keeps no referential integrity on delete)",
        f"Có thể xoá {rtype}/{id} (ketnoi không giữ ràng buộc tham chiếu khi xoá)",
    )
    return FhirResponse(200, resource=operation_outcome([note]))


def _mode_issues(mode: str | None, resource: dict[str, Any], id: str | None) -> list[Issue]:
    own = resource.get("id")
    if mode == "create" and own is not None:
        return [
            Issue(
                "information",
                "informational",
                f"The id '{own}' would be ignored: on create the server assigns the id",
                f"id '{own}' sẽ bị bỏ qua: khi tạo mới máy chủ tự cấp id",
            )
        ]
    if mode == "update" and (own is None or (id is not None and own != id)):
        en = f"An update needs the resource's id to be '{id}'" if id else "An update needs the resource's id"
        vi = f"Cập nhật cần id của tài nguyên là '{id}'" if id else "Cập nhật cần id của tài nguyên"
        return [Issue("error", "required", en, vi, ("id",))]
    return []


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    resource, found = _parameters(request)
    mode, profile = _mode_of(found), _one(found, "profile")
    if mode == "delete":
        return _delete(repo, rtype, id)
    if resource is None and rtype and id:
        resource = loads(repo.read(rtype, id).content or b"{}")
    if not isinstance(resource, dict):
        raise bad_request(
            "$validate needs a resource in the body", "$validate cần một tài nguyên trong nội dung", code="required"
        )
    issues: list[Issue] = []
    if rtype is not None and resource.get("resourceType") != rtype:
        issues.append(Issue("error", "invalid", f"The resource is not a {rtype}", f"Tài nguyên không phải {rtype}"))
    issues.extend(_mode_issues(mode, resource, id))
    validator = repo.services.validator
    if mode != "profile" and validator is not None:
        issues.extend(validator(resource, repo.services.settings.strict))
    if profile is not None and not any(i.severity in ("error", "fatal") and i.code == "structure" for i in issues):
        conformance = conformance_of(repo.services)
        issues.extend(
            check_profiles(
                resource,
                [profile],
                cache=conformance.profiles if conformance else None,
                codes=conformance.codes if conformance else None,
                claims=False,
            )
        )
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
