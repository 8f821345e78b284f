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
    definition: dict[str, Any] = field(default_factory=dict)  # OperationDefinition, for /metadata
