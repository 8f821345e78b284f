"""``$operations`` (http://hl7.org/fhir/R4/operations.html): what an operation declares.

Operations live one module each under ``ketnoi.operations`` (above this layer); the composition
root registers them in ``Services.operations`` and the router dispatches ``$name`` to them, in a
transaction like any interaction, so they too write only through ``Repository``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ketnoi.interactions.request import FhirRequest, FhirResponse

# handler(repo, request, resource_type or None, id or None)
OperationHandler = Callable[[Any, FhirRequest, str | None, str | None], FhirResponse]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str  # without the "$"
    handler: OperationHandler
    levels: frozenset[str] = frozenset({"system"})  # system | type | instance
    types: frozenset[str] | None = None  # resource types it applies to; None = any
    methods: frozenset[str] = frozenset({"POST"})
    write: bool = True  # needs a write transaction
    # Who may call it (ketnoi.interactions.policy): "admin" (server administration: system/*.cruds,
    # or an administrator's user/*.cruds, never for an organization), "own-data" (the same scopes,
    # also for a backend acting for an organization: bulk work on data it then owns, $import) or
    # "read" (read permission on the instance's type). The default is the strict one, so an
    # operation that forgets to say is not open to everyone.
    access: str = "admin"
    definition: dict[str, Any] = field(default_factory=dict)  # OperationDefinition, for /metadata
