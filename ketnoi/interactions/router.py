"""(method, path) → interaction handler. The single entry point of the FHIR core.

``handle`` opens the transaction; ``dispatch`` runs a handler inside a transaction the caller
already holds (Bundle entries use it, so an entry takes exactly the route a REST call takes).
Every request leaves AuditEvents (``interactions.audit``): ``handle`` records each interaction in
its transaction (writes) or before answering (everything else), and ``bundle`` each entry; a
request that fails is recorded as a failure. ``AuditEvent`` URLs read the audit log
(``interactions.audit_api``), never the resource tables.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions import audit, audit_api, bundle, capabilities, crud, history, search
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.policy import Access
from ketnoi.interactions.repository import Repository, check_type, conflict, unit_of_work
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.services import Services
from ketnoi.store.base import VersionConflict

log = logging.getLogger("ketnoi")
Handler = Callable[..., FhirResponse]
_TYPE = re.compile(r"[A-Z][A-Za-z]+")
READ_METHODS = {"GET", "HEAD"}


def handle(services: Services, request: FhirRequest) -> FhirResponse:
    """Run one interaction in its own transaction; errors become OperationOutcome responses. The
    answer goes out only once its AuditEvents are durable (else 503: ``audit.Trail.finish``)."""
    trail = audit.trail(services, request)
    try:
        response = _handle(services, request, trail)
    except FhirError as exc:
        response = error_response(exc)
    except VersionConflict as exc:  # raised when buffered writes reach the database at commit
        response = error_response(conflict(exc))
    return trail.finish(request, response)


def _handle(services: Services, request: FhirRequest, trail: audit.Trail) -> FhirResponse:
    if request.path.strip("/") == "" and request.method == "POST":
        return bundle.process(services, request, dispatch, trail)
    operation = find_operation(services, request)
    if operation is not None:
        op, op_args = operation
        authorize_operation(Access(request.context), op, *op_args)
        with unit_of_work(services, request.context, write=op.write) as repo:
            response = op.handler(repo, request, *op_args)
            trail.record(repo, request, response, write=op.write)  # last, before the commit
        trail.settle()
        return response
    handler, args = route(request)
    authorize(Access(request.context), request)
    write = request.method not in READ_METHODS and not request.path.endswith("_search")
    if not write and audit_api.TYPE in request.path.strip("/").split("/")[:3]:
        audit.flush(services)  # a reader of the log sees the reads this process answered (ADR 0018)
    with unit_of_work(services, request.context, write=write) as repo:
        response = handler(repo, request, *args)
        trail.record(repo, request, response, write=write)  # last, before the commit
    trail.settle()
    return response


def dispatch(repo: Repository, request: FhirRequest) -> FhirResponse:
    operation = find_operation(repo.services, request)
    if operation is not None:
        op, op_args = operation
        authorize_operation(repo.access, op, *op_args)
        return op.handler(repo, request, *op_args)
    handler, args = route(request)
    authorize(repo.access, request)
    return handler(repo, request, *args)


def authorize(access: Access, request: FhirRequest) -> None:
    """403 unless the caller's scopes allow this interaction on its type (before anything runs).
    Confinement to a patient and granular criteria are applied by the Repository."""
    if access.limited:
        for rtype, letter in permissions(request):
            access.require(rtype, letter)


def authorize_operation(access: Access, op: Operation, rtype: str | None, id: str | None) -> None:
    if not access.limited:
        return
    if op.access == "read":
        if rtype is not None and id is not None:
            access.require(rtype, "r")
        return
    access.require_admin(f"${op.name}", own_data=op.access == "own-data")


_CONDITIONAL = {"POST": "c", "PUT": "u", "DELETE": "d", "PATCH": "u"}
_INSTANCE = {"GET": "r", "PUT": "u", "DELETE": "d", "PATCH": "u"}


def permissions(request: FhirRequest) -> list[tuple[str, str]]:
    """(resource type or "*", SMART permission letter) that an interaction needs. A conditional
    operation searches too (``s``): without it, ``If-None-Exist`` would tell whether data exists."""
    parts = [p for p in request.path.strip("/").split("/") if p]
    method = "GET" if request.method == "HEAD" else request.method
    if not parts:
        types = [t for k, v in request.query if k == "_type" for t in v.split(",") if t]
        if method != "GET":
            return []  # a batch or transaction: each entry is authorized on its own
        return [(t, "s") for t in types] or [("*", "s")]
    head, n = parts[0], len(parts)
    if head == "metadata":
        return []
    if head in ("_history", "_search"):
        return [("*", "s")]
    if n == 1:
        if method == "GET":
            return [(head, "s")]
        conditional = bool(request.query) or (method == "POST" and request.header("if-none-exist"))
        return [(head, _CONDITIONAL[method])] + ([(head, "s")] if conditional else [])
    if n == 2:
        return [(head, "s")] if parts[1] in ("_search", "_history") else [(head, _INSTANCE[method])]
    if n == 3 and parts[2] == "_history":
        return [(head, "r")]
    if n in (3, 4) and parts[2] != "_history":
        return [(parts[2], "s")]
    return [(head, "r")]


def find_operation(services: Services, request: FhirRequest) -> tuple[Operation, tuple[str | None, str | None]] | None:
    """The registered operation a ``$name`` path names (None if the path has no ``$``); 404/405 otherwise."""
    parts = [p for p in request.path.strip("/").split("/") if p]
    if not parts or not parts[-1].startswith("$"):
        return None
    name = parts[-1][1:]
    level = {1: "system", 2: "type", 3: "instance"}.get(len(parts))
    op = services.operations.get(name)
    rtype = parts[0] if len(parts) > 1 else None
    if rtype is not None:
        check_type(rtype)
    if op is None or level not in op.levels or (rtype is not None and op.types is not None and rtype not in op.types):
        raise FhirError.of(
            404,
            "not-supported",
            f"Operation '${name}' is not supported at '{request.path}'",
            f"Không hỗ trợ thao tác '${name}' tại '{request.path}'",
        )
    method = "GET" if request.method == "HEAD" else request.method
    if method not in op.methods:
        raise FhirError.of(
            405,
            "not-supported",
            f"Operation '${name}' does not accept {request.method}",
            f"Thao tác '${name}' không nhận {request.method}",
        )
    return op, (rtype, parts[1] if len(parts) == 3 else None)


def error_response(exc: FhirError) -> FhirResponse:
    return FhirResponse(exc.status, resource=exc.outcome())


def route(request: FhirRequest) -> tuple[Handler, tuple[str, ...]]:
    """Find the handler for a request, or raise 404/405 with an OperationOutcome."""
    parts = [p for p in request.path.strip("/").split("/") if p]
    method = "GET" if request.method == "HEAD" else request.method
    table = _routes(parts)
    if table is None:
        raise FhirError.of(
            404, "not-found", f"No FHIR endpoint at '{request.path}'", f"Không có điểm cuối FHIR tại '{request.path}'"
        )
    handlers, args = table
    if method not in handlers:
        raise FhirError.of(
            405,
            "not-supported",
            f"Method {request.method} is not allowed on '{request.path}' (allowed: {', '.join(sorted(handlers))})",
            f"Phương thức {request.method} không được phép tại '{request.path}'",
        )
    return handlers[method], args


def _routes(parts: list[str]) -> tuple[dict[str, Handler], tuple[str, ...]] | None:
    n = len(parts)
    if n == 0:
        return {"GET": search.search_system, "POST": _bundle_only}, ()
    head = parts[0]
    if n == 1 and head == "metadata":
        return {"GET": capabilities.capability_statement}, ()
    if n == 1 and head == "_history":
        return {"GET": history.history}, ()
    if n == 1 and head == "_search":
        return {"POST": search.search_system}, ()
    if not _TYPE.fullmatch(head):
        return None
    check_type(head)
    if head == audit_api.TYPE:  # the audit log, read-only; never the resource tables
        return audit_api.routes(parts)
    if n == 1:
        return {
            "GET": search.search_type,
            "POST": crud.create,
            "PUT": crud.conditional_update,
            "DELETE": crud.conditional_delete,
            "PATCH": crud.conditional_patch,
        }, (head,)
    if n == 2 and parts[1] == "_search":
        return {"POST": search.search_type}, (head,)
    if n == 2 and parts[1] == "_history":
        return {"GET": history.history}, (head,)
    if n == 2:
        return {"GET": crud.read, "PUT": crud.update, "DELETE": crud.delete, "PATCH": crud.patch}, (head, parts[1])
    if n == 3 and parts[2] == "_history":
        return {"GET": history.history}, (head, parts[1])
    if n == 3 and parts[2] == audit_api.TYPE:
        return {"GET": audit_api.search_compartment}, (head, parts[1], parts[2])
    if n == 3 and _TYPE.fullmatch(parts[2]):
        from ketnoi.interactions import compartment

        return {"GET": compartment.search_compartment}, (head, parts[1], parts[2])
    if n == 4 and parts[3] == "_search" and _TYPE.fullmatch(parts[2]):
        from ketnoi.interactions import compartment

        return {"POST": compartment.search_compartment}, (head, parts[1], parts[2])
    if n == 4 and parts[2] == "_history":
        return {"GET": crud.vread}, (head, parts[1], parts[3])
    return None


def _bundle_only(repo: Repository, request: FhirRequest) -> FhirResponse:
    raise FhirError.of(
        400, "invalid", "A Bundle inside a Bundle cannot be processed", "Không thể xử lý Bundle lồng trong Bundle"
    )
