"""Composition root: the only place that picks a storage backend and wires the services."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from ketnoi import operations
from ketnoi.config import ConfigError, Settings
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.services import Services
from ketnoi.search.extract import default_extractor
from ketnoi.store.base import Store
from ketnoi.validation.structure import validate


def open_store(url: str) -> Store:
    """``sqlite:///path.db`` or ``postgresql://...`` → a Store (not yet migrated)."""
    if url.startswith("sqlite:///"):
        from ketnoi.store.sqlite import SqliteStore

        return SqliteStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from ketnoi.store.postgres import PostgresStore

        return PostgresStore.from_url(url)
    raise ConfigError(f"Unsupported database URL '{url}': use sqlite:///path.db or postgresql://user:pass@host/db")


def _validator(resource: dict[str, Any], strict: bool) -> list[Any]:
    return validate(resource, strict=strict)


def build_services(settings: Settings, store: Store | None = None) -> Services:
    return Services(
        store=store or open_store(settings.database),
        settings=settings,
        extractor=default_extractor(),
        validator=_validator,
        operations={op.name: op for op in operations.builtin()},
    )


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    from ketnoi.api.routes import create_app as create_http_app

    services = build_services(settings, store)
    return create_http_app(services)


class SchemaOutdated(Exception):
    pass


def check_schema(store: Store) -> None:
    from ketnoi.store.schema import SCHEMA_VERSION

    have = store.schema_version()
    if have < SCHEMA_VERSION:
        raise SchemaOutdated(
            f"The database schema is at version {have}, this ketnoi needs {SCHEMA_VERSION}: "
            "run `ketnoi migrate --database URL` first (or `ketnoi serve --migrate`)."
        )


__all__ = ["FhirError", "build_services", "check_schema", "create_app", "open_store"]
