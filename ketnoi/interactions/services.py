"""Services: what every interaction needs (store, settings, extractor, validator, hooks).

Built once by the composition root (``ketnoi.app``); passed down explicitly, never global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ketnoi.config import Settings
from ketnoi.fhir.outcome import Issue
from ketnoi.interactions.operation import Operation
from ketnoi.search.index import IndexRows
from ketnoi.store.base import Store, StoredVersion


class Extractor(Protocol):
    def extract(self, resource: dict[str, Any]) -> IndexRows: ...

    def params_for(self, resource_type: str) -> dict[str, dict[str, Any]]: ...


Validator = Callable[[dict[str, Any], bool], list[Issue]]
# Called inside the write transaction after a version is stored (audit, change events, ...).
WriteHook = Callable[[StoredVersion, dict[str, Any] | None], None]


@dataclass(slots=True)
class Services:
    store: Store
    settings: Settings
    extractor: Extractor
    validator: Validator | None = None
    after_write: list[WriteHook] = field(default_factory=list)
    operations: dict[str, Operation] = field(default_factory=dict)  # name (without $) → Operation
    extras: dict[str, Any] = field(default_factory=dict)  # long-lived state of features (job runners, ...)
