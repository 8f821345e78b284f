"""Services: what every interaction needs (store, settings, extractor, validator, hooks).

Built once by the composition root (``ketnoi.app``); passed down explicitly, never global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ketnoi.config import Settings
from ketnoi.fhir.outcome import Issue
from ketnoi.interactions.operation import Operation
from ketnoi.search.index import IndexRows
from ketnoi.store.base import Store, StoredVersion


class Extractor(Protocol):
    def extract(self, resource: dict[str, Any]) -> IndexRows: ...

    def extract_some(self, resource: dict[str, Any], codes: frozenset[str]) -> IndexRows: ...

    def params_for(self, resource_type: str) -> dict[str, dict[str, Any]]: ...


if TYPE_CHECKING:
    from ketnoi.interactions.context import RequestContext
    from ketnoi.interactions.repository import Repository

Validator = Callable[[dict[str, Any], bool], list[Issue]]
# Called inside the write transaction after a version is stored, with the Repository of that
# transaction (its caller's context; what the hook writes through it commits or rolls back with
# the write): audit, provenance, change events.
WriteHook = Callable[["Repository", StoredVersion, dict[str, Any] | None], None]
# Called once the transaction has committed, with its caller and every version it wrote:
# notifications and subscriptions, which must never announce a write that was rolled back.
CommitHook = Callable[["RequestContext", list[StoredVersion]], None]
# Called inside the write transaction with the index rows extracted for the version (None for a
# deletion), before the write hooks: subscriptions match new versions from these rows.
IndexHook = Callable[["Repository", StoredVersion, IndexRows | None], None]


@dataclass(slots=True)
class Services:
    store: Store
    settings: Settings
    extractor: Extractor
    validator: Validator | None = None
    after_write: list[WriteHook] = field(default_factory=list)
    after_commit: list[CommitHook] = field(default_factory=list)
    after_index: list[IndexHook] = field(default_factory=list)
    # What features add to the CapabilityStatement when it is built (the subscription topics, ...)
    capabilities: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    operations: dict[str, Operation] = field(default_factory=dict)  # name (without $) → Operation
    extras: dict[str, Any] = field(default_factory=dict)  # long-lived state of features (job runners, ...)
