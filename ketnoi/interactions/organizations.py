"""The Organization hierarchy (``Organization.partOf``) that access rules stand on: Bộ Y tế (the
Ministry) → Sở Y tế (a provincial health department) → hospitals and regional centres → commune
stations (issue 10; ADR 0014).

- Read through the Repository with the server's own rights: the hierarchy is shared directory data
  that decides a caller's rights, not something a caller reads, so it must not depend on them.
- Cached per process. An after-commit hook drops the cache when this process commits an
  Organization; writes by other processes (another node, ``ketnoi load``) are noticed by the
  Organizations' write stamp (``Repository.latest_seq``), compared at most every
  :data:`RECHECK_S` seconds, so a change elsewhere applies here within that time.
- Only relative references ``Organization/ID`` in ``partOf`` count (an absolute URL may name
  another server's organization). A cycle in ``partOf`` ends the walk where it closes, and no
  chain is followed beyond :data:`MAX_DEPTH` levels (Vietnam has four), so bad data cannot hang
  a request.
- A provincial health department is an Organization with a ``type`` coding
  ``{LEVEL_SYSTEM}|province``; ``national`` marks the Ministry. The Ministry's draft VN Core IG has
  no code for the administrative level, so ketnoi defines this one (ADR 0014).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Final

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository, unit_of_work
from ketnoi.interactions.services import Services
from ketnoi.store.base import StoredVersion

log = logging.getLogger("ketnoi.organizations")

LEVEL_SYSTEM: Final = "https://fhir.ketnoi.vn/CodeSystem/org-level"
NATIONAL: Final = "national"  # Bộ Y tế, the Ministry of Health
PROVINCE: Final = "province"  # Sở Y tế, a provincial health department
MAX_ORGANIZATIONS: Final = 100_000  # organizations below one at most (Vietnam has ~13,000 facilities)
MAX_DEPTH: Final = 16  # partOf levels followed at most (ministry → province → hospital → station is 4)
RECHECK_S: Final = 15.0  # how stale the cache may be after another process changed an Organization
TYPE: Final = "Organization"
_PREFIX = f"{TYPE}/"
_EXTRAS_KEY = "organizations"


@dataclass(frozen=True, slots=True)
class Node:
    """What the hierarchy keeps of one Organization."""

    parent: str | None  # "Organization/ID" of partOf, when it is a relative reference
    levels: frozenset[str]  # codes of LEVEL_SYSTEM in its type


MISSING = Node(None, frozenset())  # an Organization that does not exist (or was deleted)


def is_reference(text: str) -> bool:
    """Whether ``text`` is a relative reference ``Organization/ID`` (the form contexts carry)."""
    return text.startswith(_PREFIX) and res.is_valid_id(text[len(_PREFIX) :])


def parent_of(body: dict[str, Any]) -> str | None:
    """``partOf`` as ``Organization/ID``, or None (absent, absolute, another type, a bad id)."""
    part_of = body.get("partOf")
    reference = part_of.get("reference") if isinstance(part_of, dict) else None
    if not isinstance(reference, str) or not reference.startswith(_PREFIX):
        return None
    found = reference.split("/_history/")[0]
    return found if is_reference(found) else None


def levels_of(body: dict[str, Any]) -> frozenset[str]:
    """The LEVEL_SYSTEM codes in ``Organization.type``."""
    codes: set[str] = set()
    for concept in body.get("type") or ():
        codings = concept.get("coding") if isinstance(concept, dict) else None
        for coding in codings if isinstance(codings, list) else ():
            if (
                isinstance(coding, dict)
                and coding.get("system") == LEVEL_SYSTEM
                and isinstance(coding.get("code"), str)
            ):
                codes.add(coding["code"])
    return frozenset(codes)


class Hierarchy:
    """The Organization tree of one ``Services``, cached; safe to share between threads."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._nodes: dict[str, Node] = {}
        self._children: dict[str, tuple[str, ...]] | None = None  # parent → children (within)
        self._generation = 0  # bumped by every invalidation: a read begun before it is not cached
        self._stamp: int | None = None  # Organizations' write stamp when the cache was last checked
        self._checked = 0.0  # time.monotonic() of that check
        self._warned: set[str] = set()  # bad chains already logged (once each, per process)

    # ---- the questions ---------------------------------------------------------------------------
    # ``repo``: the caller's Repository; pass it when asking during a request. The hierarchy is then
    # read in its transaction with the server's rights (``Repository.privileged``), not in a second
    # one, which SQLite could not open on the thread's connection while the caller's is open.
    def ancestors(self, org: str, repo: Repository | None = None) -> list[str]:
        """The organizations ``org`` is part of, nearest first (its parent, its parent's, ...)."""
        chain: list[str] = []
        with self._reader(repo) as read:
            parent = read(org).parent
            while parent is not None:
                if parent == org or parent in chain:
                    self._warn(org, "Organization.partOf above %s forms a cycle; the walk stops at %s", parent)
                    break
                if len(chain) == MAX_DEPTH:
                    self._warn(org, "Organization.partOf above %s is deeper than %d levels; cut there", MAX_DEPTH)
                    break
                chain.append(parent)
                parent = read(parent).parent
        return chain

    def is_within(self, org: str, ancestor: str, repo: Repository | None = None) -> bool:
        """Whether ``org`` is ``ancestor`` or lies below it."""
        return org == ancestor or ancestor in self.ancestors(org, repo)

    def province_of(self, org: str, repo: Repository | None = None) -> str | None:
        """The provincial health department ``org`` belongs to (itself, if it is one), or None."""
        for candidate in (org, *self.ancestors(org, repo)):
            if PROVINCE in self.node(candidate, repo).levels:
                return candidate
        return None

    def within(self, org: str, repo: Repository | None = None) -> frozenset[str]:
        """``org`` and every organization below it (a province's hospitals and commune stations),
        from the ``partof`` references of all Organizations, read in one query and cached."""
        with self._reader(repo) as read:
            children = read.children()
        found = {org}
        frontier = [org]
        while frontier and len(found) < MAX_ORGANIZATIONS:
            below = [c for parent in frontier for c in children.get(parent, ()) if c not in found]
            found.update(below)
            frontier = below
        return frozenset(found)

    def node(self, org: str, repo: Repository | None = None) -> Node:
        """What is known of one Organization (:data:`MISSING` if it does not exist)."""
        with self._reader(repo) as read:
            return read(org)

    def _warn(self, org: str, message: str, detail: object) -> None:
        """Log bad data once per organization, not on every question asked about it."""
        with self._lock:
            if org in self._warned:
                return
            self._warned.add(org)
        log.warning(message, org, detail)

    # ---- the cache -------------------------------------------------------------------------------
    def invalidate(self) -> None:
        with self._lock:
            self._nodes.clear()
            self._children = None
            self._generation += 1
            self._stamp = None

    def after_commit(self, context: RequestContext, written: list[StoredVersion]) -> None:
        """An after-commit hook: an Organization written by this process changes the tree at once."""
        del context
        if any(v.resource_type == TYPE for v in written):
            self.invalidate()

    @contextmanager
    def _reader(self, caller: Repository | None) -> Iterator[_Reader]:
        """Reads nodes for one question: from the cache, else through ``caller``'s transaction or
        one read transaction opened on the first miss (a cold walk up four levels costs one
        transaction, not four). Nothing read in a transaction that itself wrote an Organization is
        cached: it may yet roll back, and no hook says so."""
        with ExitStack() as stack:
            repo = caller.privileged("organizations") if caller is not None else None

            def opened() -> Repository:
                nonlocal repo
                if repo is None:
                    repo = stack.enter_context(unit_of_work(self.services, _CONTEXT, write=False))
                return repo

            generation: int | None = self._checked_generation(opened)
            if caller is not None and any(v.resource_type == TYPE for v in caller.written):
                generation = None
            yield _Reader(self, opened, generation)

    def _checked_generation(self, opened: Callable[[], Repository]) -> int:
        """The cache generation this question may fill: the current one, once the cache is dropped
        if another process wrote Organizations since the last check (made at most every RECHECK_S)."""
        now = time.monotonic()
        with self._lock:
            generation = self._generation
            if self._stamp is not None and now - self._checked < RECHECK_S:
                return generation
        stamp = opened().latest_seq(TYPE)
        with self._lock:
            if generation != self._generation:
                return generation  # invalidated meanwhile: what this question reads is not kept
            if stamp != self._stamp:
                self._nodes.clear()
                self._children = None
                self._generation += 1
            self._stamp, self._checked = stamp, now
            return self._generation

    def _cached(self, org: str) -> Node | None:
        with self._lock:
            return self._nodes.get(org)

    def _children_of(self, generation: int | None) -> dict[str, tuple[str, ...]] | None:
        with self._lock:
            return self._children if generation is not None and generation == self._generation else None

    def _keep_children(self, children: dict[str, tuple[str, ...]], generation: int | None) -> None:
        with self._lock:
            if generation is not None and generation == self._generation:
                self._children = children

    def _keep(self, org: str, node: Node, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._nodes[org] = node


class _Reader:
    """One question's access to the hierarchy: cached nodes and links, else read and (when the
    generation allows) kept."""

    def __init__(self, owner: Hierarchy, opened: Callable[[], Repository], generation: int | None) -> None:
        self.owner, self.opened, self.generation = owner, opened, generation

    def __call__(self, org: str) -> Node:
        cached = self.owner._cached(org) if self.generation is not None else None
        if cached is not None:
            return cached
        node = _read(self.opened(), org)
        if self.generation is not None:
            self.owner._keep(org, node, self.generation)
        return node

    def children(self) -> dict[str, tuple[str, ...]]:
        """parent → its direct children, every one ``Organization/ID``."""
        cached = self.owner._children_of(self.generation)
        if cached is not None:
            return cached
        grouped: dict[str, list[str]] = {}
        for child, parent in self.opened().organization_links():
            grouped.setdefault(_PREFIX + parent, []).append(_PREFIX + child)
        found = {parent: tuple(sorted(kids)) for parent, kids in grouped.items()}
        self.owner._keep_children(found, self.generation)
        return found


def _read(repo: Repository, org: str) -> Node:
    if not is_reference(org):
        return MISSING
    try:
        stored = repo.read(TYPE, org[len(_PREFIX) :])
    except FhirError:  # 404 or 410: not (or no longer) an organization
        return MISSING
    body: dict[str, Any] = res.loads(stored.content or b"{}")
    return Node(parent_of(body), levels_of(body))


_CONTEXT = RequestContext.internal("organizations")


def install(services: Services) -> Hierarchy:
    """Keep a Hierarchy in ``services`` and register its after-commit hook (once)."""
    found = services.extras.get(_EXTRAS_KEY)
    if isinstance(found, Hierarchy):
        return found
    hierarchy = Hierarchy(services)
    services.after_commit.append(hierarchy.after_commit)
    services.extras[_EXTRAS_KEY] = hierarchy
    return hierarchy


def hierarchy(services: Services) -> Hierarchy:
    """The Organization hierarchy of ``services`` (installed on first use if the composition root
    did not)."""
    return install(services)
