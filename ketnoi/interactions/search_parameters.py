"""Custom SearchParameter resources (http://hl7.org/fhir/R4/searchparameter.html): storing one
activates it, deleting or retiring it deactivates it.

- ``check`` (part of the validator, so before anything is written) refuses an active
  SearchParameter the server cannot run: no or bad ``code``, unknown ``base``, a ``type`` without
  an index table (composite, special), an ``expression`` missing, unparseable or not applying to
  its base. A draft with such a problem is stored with warnings and stays inactive; retired and
  unknown-status ones are stored as they are and stay inactive.
- ``SearchParameterRegistry.after_write`` (a write hook) swaps ``Services.extractor`` for one that
  also knows the active custom parameters (a custom (base, code) overrides an official one), so
  new writes are indexed by it and searches accept it; the cached CapabilityStatement is dropped.
- Resources stored before the change are not reindexed automatically: ``$reindex`` does that.
- ``load`` reads the active ones from the database at start-up; ``sync`` (run by the job runner
  between jobs) re-reads them when the database changed (another node, ``ketnoi load``) and undoes
  an activation whose transaction rolled back (a failed transaction Bundle).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from ketnoi.fhir import definitions
from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.fhirpath_syntax import syntax_error
from ketnoi.fhir.outcome import Issue
from ketnoi.interactions.services import Services
from ketnoi.search.extract import Extractor, default_extractor
from ketnoi.search.extract_model import r4_model
from ketnoi.search.extract_paths import ANY_TYPE, compile_fallback, compile_part, part_root, split_union
from ketnoi.search.extract_values import WRITERS
from ketnoi.store.base import Session, Store, StoredVersion

log = logging.getLogger("ketnoi.search_parameters")

RESOURCE_TYPE = "SearchParameter"
ACTIVE_STATUSES = frozenset({"active", "draft"})
ABSTRACT_BASES = frozenset({"Resource", "DomainResource"})
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
PENDING_S = 300.0  # how long an activation may wait for its transaction to show up as committed
_PAGE = 500


def is_active(resource: dict[str, Any] | None) -> bool:
    return resource is not None and resource.get("status") in ACTIVE_STATUSES


def usable(resource: dict[str, Any] | None) -> bool:
    """Active or draft, and runnable here: what gets activated."""
    return resource is not None and is_active(resource) and not check(resource)


def check(resource: dict[str, Any]) -> list[Issue]:
    """What makes an active/draft SearchParameter unusable here (empty if fine or inactive): errors
    for an active one (refused), warnings for a draft (stored, but it stays inactive until fixed,
    as a draft is work in progress; the official R4 examples include such drafts)."""
    if resource.get("resourceType") != RESOURCE_TYPE or not is_active(resource):
        return []
    issues: list[Issue] = []
    draft = resource.get("status") == "draft"

    def error(en: str, vi: str, where: str, code: str = "invalid") -> None:
        if draft:
            en += " (this draft stays inactive until fixed)"
            vi += " (bản nháp này chưa được kích hoạt cho đến khi sửa)"
        issues.append(Issue("warning" if draft else "error", code, en, vi, (f"SearchParameter.{where}",)))

    code = resource.get("code")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        error(
            f"SearchParameter.code {code!r} must be a name of letters, digits, '-', '_' or '.' starting with a letter",
            f"SearchParameter.code {code!r} phải là tên gồm chữ, số, '-', '_' hoặc '.', bắt đầu bằng chữ cái",
            "code",
        )
    bases = resource.get("base")
    valid_bases: list[str] = []
    if not isinstance(bases, list) or not bases:
        error("SearchParameter.base is required", "Cần có SearchParameter.base", "base", "required")
    else:
        for base in bases:
            if isinstance(base, str) and (base in resource_types() or base in ABSTRACT_BASES):
                valid_bases.append(base)
            else:
                error(
                    f"SearchParameter.base {base!r} is not an R4 resource type",
                    f"SearchParameter.base {base!r} không phải loại tài nguyên FHIR R4",
                    "base",
                )
    sp_type = resource.get("type")
    if sp_type not in WRITERS:
        error(
            f"SearchParameter.type {sp_type!r} is not supported for custom parameters "
            f"(supported: {', '.join(sorted(WRITERS))})",
            f"Không hỗ trợ SearchParameter.type {sp_type!r} cho tham số tự định nghĩa "
            f"(hỗ trợ: {', '.join(sorted(WRITERS))})",
            "type",
            "not-supported",
        )
    expression = resource.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        error(
            "SearchParameter.expression (FHIRPath) is required: ketnoi extracts index values with it",
            "Cần có SearchParameter.expression (FHIRPath): ketnoi dùng nó để trích giá trị chỉ mục",
            "expression",
            "required",
        )
    else:
        for base in valid_bases:
            problem = _expression_problem(expression, base)
            if problem:
                error(
                    f"SearchParameter.expression {expression!r} cannot be used on {base}: {problem}",
                    f"Không dùng được SearchParameter.expression {expression!r} cho {base}: {problem}",
                    "expression",
                )
    return issues


def _expression_problem(expression: str, base: str) -> str | None:
    model = r4_model()
    error = syntax_error(expression)
    if error:
        return error
    parts = [p for p in split_union(expression) if part_root(p, model) in (ANY_TYPE, base)]
    if not parts:
        return f"no part of the expression starts at {base}"
    for part in parts:
        try:
            access = compile_fallback(part) if base in ABSTRACT_BASES else compile_part(part, model, base)[0]
            access({"resourceType": "Patient" if base in ABSTRACT_BASES else base, "id": "x"})
        except Exception as exc:  # fhirpathpy raises many kinds of parse and evaluation errors
            return f"{type(exc).__name__}: {str(exc)[:200] or 'invalid FHIRPath'}"
    return None


class SearchParameterRegistry:
    """The active custom SearchParameters of one ``Services``, applied to its extractor."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._official = tuple(definitions.search_parameters())
        self._active: dict[str, dict[str, Any]] = {}  # SearchParameter id → resource, oldest first
        # Changes applied by the write hook whose transaction was not yet seen committed:
        # id → (version, time.monotonic() when applied).
        self._pending: dict[str, tuple[int, float]] = {}
        self._stamp: int | None = None
        self._lock = threading.RLock()

    @property
    def active(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._active)

    # ---- the write hook ------------------------------------------------------------------------
    def after_write(self, repo: Any, stored: StoredVersion, body: dict[str, Any] | None) -> None:
        del repo  # the registry is shared by every caller: the context does not matter here
        if stored.resource_type != RESOURCE_TYPE:
            return
        with self._lock:
            was = self._active.pop(stored.id, None)
            if not stored.deleted and body is not None and usable(body):
                self._active[stored.id] = body
            elif was is None:
                return  # an inactive one stayed inactive
            self._pending[stored.id] = (stored.version, time.monotonic())
            self._apply()

    # ---- from the database ---------------------------------------------------------------------
    def load(self, session: Session) -> None:
        """Replace the active set by the database's (keeping changes whose commit is pending)."""
        with self._lock:  # no write hook applies a change while the database is being read
            stamp = session.latest_seq(RESOURCE_TYPE)
            # Pending changes first: one seen committed now is also in the pages read after it.
            now = time.monotonic()
            uncommitted: set[str] = set()
            for id, (version, when) in list(self._pending.items()):
                current = session.current(RESOURCE_TYPE, id)
                if (current is not None and current.version >= version) or now - when > PENDING_S:
                    del self._pending[id]  # committed (the database says so), or rolled back long ago
                else:
                    uncommitted.add(id)  # not visible yet: keep what the write hook applied
            found: list[tuple[int, str, dict[str, Any]]] = []
            after: tuple[str, str] | None = None
            while True:
                page = session.current_page([RESOURCE_TYPE], after, _PAGE)
                for stored in page:
                    body = res.loads(stored.content or b"{}")
                    if usable(body):
                        found.append((stored.seq, stored.id, body))
                if len(page) < _PAGE:
                    break
                after = (page[-1].resource_type, page[-1].id)
            old = self._active
            active = {id: body for _, id, body in sorted(found, key=lambda f: f[0]) if id not in uncommitted}
            active.update((id, old[id]) for id in uncommitted if id in old)
            changed = list(active.items()) != list(old.items())
            self._active = active
            self._stamp = stamp
            if changed:
                self._apply()

    def load_from(self, store: Store) -> None:
        with store.session(write=False) as session:
            self.load(session)

    def sync(self, store: Store) -> None:
        """Re-read the database when a SearchParameter changed there (cheap when nothing did)."""
        with store.session(write=False) as session:
            if not self._pending and session.latest_seq(RESOURCE_TYPE) == self._stamp:
                return
            self.load(session)

    # ---- internals -----------------------------------------------------------------------------
    def _apply(self) -> None:
        custom = list(self._active.values())
        extractor = Extractor([*self._official, *custom]) if custom else default_extractor()
        self.services.extractor = extractor
        self.services.extras.pop("capability_statement", None)
        log.info("search parameters: %d custom active", len(custom))


def install(services: Services) -> SearchParameterRegistry:
    """Register the write hook and load the active custom SearchParameters from the database."""
    registry = SearchParameterRegistry(services)
    services.after_write.append(registry.after_write)
    services.extras["search_parameters"] = registry
    if services.store.schema_version() >= 1:
        registry.load_from(services.store)
    return registry
