"""The server's profiles and value sets for validation: R4's, the shipped packages', and the database's.

Validation (``ketnoi.validation``) finds StructureDefinitions through a ``Source`` and decides
bindings through a ``CodeCheck``; it knows no database. This module gives it both over the store:

- :class:`StoredDefinitions`: a StructureDefinition by canonical URL: R4's and the shipped packages'
  first (they never change), then the database's (installed with ``ketnoi ig install`` or created
  through the API), the most recently updated one when several share a URL.
- :func:`stored_membership`: membership of a code in a value set (``ketnoi.terminology.membership``),
  from its expansion by the terminology service (stored ValueSets and CodeSystems first, then R4's,
  the Vietnamese code systems, the shipped packages'). A value set that cannot be expanded
  (unknown, a filter the service does not evaluate, too large) answers "cannot tell", never a guess.

Both cache what they found, and the write hook installed by :func:`install` drops the caches when a
StructureDefinition, ValueSet or CodeSystem is written. What another process wrote is seen within
:data:`TTL_S` seconds. Lookups run in their own read session, so validation inside a write
transaction does not touch that transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ketnoi.interactions.services import Services
from ketnoi.runtime import TimedCache
from ketnoi.store.base import Store, StoredVersion
from ketnoi.terminology.expand import expand
from ketnoi.terminology.lookup import Terminology
from ketnoi.terminology.membership import Membership
from ketnoi.validation.profiles import PackagedSource, ProfileCache

TTL_S = 60.0
_PROFILE_TYPES = frozenset({"StructureDefinition"})
_TERMINOLOGY_TYPES = frozenset({"ValueSet", "CodeSystem"})


class StoredDefinitions:
    """A ``ketnoi.validation.profiles.Source`` over the packaged definitions and the database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.packaged = PackagedSource()
        self._found: TimedCache[dict[str, Any] | None] = TimedCache(TTL_S)

    def structure_definition(self, url: str) -> dict[str, Any] | None:
        found = self.packaged.structure_definition(url)
        if found is not None:
            return found
        known, cached = self._found.get(url)
        if known:
            return cached
        stored = self._stored(url)
        self._found.put(url, stored)
        return stored

    def _stored(self, canonical: str) -> dict[str, Any] | None:
        url, _, version = canonical.partition("|")
        with self.store.session(write=False) as session:
            return Terminology(session.query).stored_canonical("StructureDefinition", url, version or None)

    def clear(self) -> None:
        self._found.clear()


def stored_membership(store: Store) -> Membership:
    """Membership over the terminology service with the database's ValueSets and CodeSystems."""

    def expander(value_set: str) -> frozenset[tuple[str, str]]:
        with store.session(write=False) as session:
            return expand(Terminology(session.query), value_set)

    return Membership(expander, ttl=TTL_S)


@dataclass(frozen=True, slots=True)
class Conformance:
    """What the validator checks profiles and bindings with, on this server."""

    definitions: StoredDefinitions
    profiles: ProfileCache
    codes: Membership

    def after_write(self, repo: Any, stored: StoredVersion, body: dict[str, Any] | None) -> None:
        del repo, body
        if stored.resource_type in _PROFILE_TYPES:
            self.definitions.clear()
            self.profiles.clear()
        elif stored.resource_type in _TERMINOLOGY_TYPES:
            self.codes.clear()


def build(store: Store) -> Conformance:
    definitions = StoredDefinitions(store)
    return Conformance(definitions, ProfileCache(definitions, ttl=TTL_S), stored_membership(store))


def install(services: Services) -> Conformance:
    """The server's :class:`Conformance`, its caches dropped by writes of what they hold."""
    conformance = build(services.store)
    services.after_write.append(conformance.after_write)
    services.extras["conformance"] = conformance
    return conformance


def conformance_of(services: Services) -> Conformance | None:
    found = services.extras.get("conformance")
    return found if isinstance(found, Conformance) else None
