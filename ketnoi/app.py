"""Composition root: the only place that picks a storage backend and wires the services."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from ketnoi import operations, runtime, subscriptions
from ketnoi.config import ConfigError, Settings
from ketnoi.fhir.outcome import FhirError, Issue
from ketnoi.interactions import audit, conformance, organizations, search_parameters
from ketnoi.interactions.services import Services
from ketnoi.jobs import JobRunner
from ketnoi.mpi import background as mpi_background
from ketnoi.operations import bulk_export, bulk_import, reindex
from ketnoi.runtime import Throttled
from ketnoi.search.extract import default_extractor
from ketnoi.store.base import Store
from ketnoi.store.statistics import StatisticsKeeper
from ketnoi.terminology import membership
from ketnoi.validation import examine
from ketnoi.validation.conformance import CodeCheck
from ketnoi.validation.profiles import ProfileCache


def open_store(url: str) -> Store:
    """``sqlite:///path.db`` or ``postgresql://...`` → a Store (not yet migrated)."""
    if url.startswith("sqlite:///"):
        from ketnoi.store.sqlite import SqliteStore

        return SqliteStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from ketnoi.store.postgres import PostgresStore

        return PostgresStore.from_url(url)
    raise ConfigError(f"Unsupported database URL '{url}': use sqlite:///path.db or postgresql://user:pass@host/db")


VALIDATION_LEVELS = ("strict", "lenient", "off")


log = logging.getLogger("ketnoi")


@dataclass(frozen=True)
class WriteValidator:
    """What a write must pass (``Settings.validation``, ADR 0020, ADR 0021): the structural gate
    always (a resource that is not valid FHIR JSON is never stored); the base definitions'
    invariants, the profiles the resource claims and its extensions' definitions as errors
    (``strict``), as warnings returned with the stored resource (``lenient``), or not at all
    (``off``). A class, not a closure: ``ketnoi load --workers`` sends it to its processes, without
    the database-backed ``profiles`` and ``codes``: a worker checks against R4's and the shipped
    packages' definitions and the packaged terminology."""

    level: str
    profiles: ProfileCache | None = field(default=None, compare=False)
    codes: CodeCheck | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.level not in VALIDATION_LEVELS:
            raise ConfigError(f"KETNOI_VALIDATION must be one of {', '.join(VALIDATION_LEVELS)}, not {self.level!r}")

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (WriteValidator, (self.level,))

    def __call__(self, resource: dict[str, Any], strict: bool) -> list[Issue]:
        found = examine(
            resource,
            strict=strict,
            invariants=self.level != "off",
            cache=self.profiles,  # None: R4's and the shipped packages' (ketnoi.validation.profiles)
            codes=self.codes or membership.packaged(),
        )
        rules, profiles = found.rules, found.profiles
        if self.level == "lenient":
            rules = [replace(i, severity="warning") if i.code == "invariant" else i for i in rules]
            profiles = [replace(i, severity="warning") if i.severity in ("error", "fatal") else i for i in profiles]
        issues = [*found.structure, *rules, *profiles]
        if resource.get("resourceType") == "SearchParameter":
            issues.extend(search_parameters.check(resource))  # refuse one the server cannot run
        return issues


def build_services(settings: Settings, store: Store | None = None) -> Services:
    services = Services(
        store=store or open_store(settings.database),
        settings=settings,
        extractor=default_extractor(),
        operations={op.name: op for op in operations.builtin()},
    )
    # Profiles and value sets for validation: R4's, the shipped packages', the database's (ADR 0021).
    server = conformance.install(services)
    services.validator = WriteValidator(settings.validation, server.profiles, server.codes)
    # Custom SearchParameters: activated by the write hook, loaded from the database now.
    registry = search_parameters.install(services)
    # The Organization hierarchy (partOf) for access rules, cached, dropped when an Organization changes.
    organizations.install(services)
    # An AuditEvent for every interaction, in the hash-chained audit log (Settings.audit; ADR 0015).
    audit.install(services)
    # Background jobs: the runner thread starts with the server (create_app) or on the first job.
    runner = JobRunner(services.store)
    runner.idle_tasks.append(lambda: registry.sync(services.store))
    # Planner statistics follow the data without a manual ANALYZE (ketnoi.store.statistics).
    keeper = StatisticsKeeper(services.store)
    runner.idle_tasks.append(keeper)
    services.extras["statistics"] = keeper
    if settings.audit_checkpoint_s > 0:
        # Signed checkpoints of the audit log while it grows. Imported here: joserfc is not needed
        # by the commands that only open a store through this module.
        from ketnoi.security.audit import CheckpointKeeper
        from ketnoi.security.keystore import KeyStore

        checkpoints = CheckpointKeeper(
            services.store, KeyStore(services.store), settings.issuer(), settings.audit_checkpoint_s
        )
        runner.idle_tasks.append(checkpoints)
        services.extras["audit_checkpoints"] = checkpoints
    recorder = audit.recorder_of(services)
    if (
        recorder is not None and recorder.spool is not None
    ):  # a sibling process may die and leave its journal: drained within a minute
        runner.idle_tasks.append(Throttled(recorder.spool.recover, 60.0))
    reindex.install(services, runner)
    bulk_import.install(services, runner)
    bulk_export.install(services, runner)
    # The patient index: a Patient created or changed is matched in the background (docs/mpi.md).
    mpi_background.install(services, runner)
    services.extras["jobs"] = runner
    # Subscriptions: matched in the write transaction, delivered by the relay (started with the server).
    subscriptions.install(services)
    return services


def stop_services(services: Services) -> None:
    """Stop what :func:`build_services` started, in order: the job runner, then the audit journal
    (what it holds is moved into the log); the store stays open (its opener closes it)."""
    services.extras["jobs"].stop()
    relay = subscriptions.relay_of(services)
    if relay is not None:
        relay.stop()
    audit.close(services)


def close_services(services: Services) -> None:
    """:func:`stop_services`, then the store they both write to."""
    stop_services(services)
    services.store.close()


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    from ketnoi import console
    from ketnoi.api.routes import create_app as create_http_app

    services = build_services(settings, store)
    app = console.mount(create_http_app(services), services)  # the web console at / (ADR 0026)
    runner: JobRunner = services.extras["jobs"]
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Any]:
        async with inner(app) as state:  # the inner one closes the store on the way out
            runtime.settle_heap()  # fewer GC passes over what start-up loaded (ketnoi.runtime)
            runner.start()  # resumes jobs left unfinished by an earlier run
            stop_relays = start_relays(services)  # delivers what the outbox holds, from before a restart too
            try:
                yield state
            finally:
                await run_in_threadpool(runner.stop)  # a job in progress goes back to the queue
                await run_in_threadpool(stop_relays)
                await run_in_threadpool(audit.close, services)  # the journal drained into the log

    app.router.lifespan_context = lifespan
    return app


def start_relays(services: Services) -> Callable[[], None]:
    """Start the delivery of notifications as ``Settings.subscription_relay`` says (ADR 0025): this
    process's relay thread always sends its own websockets; rest-hooks go from it too ("thread"),
    from a ``ketnoi relay`` child process ("process": another interpreter, so delivery does not
    compete with the API for one interpreter's lock), or from a relay run elsewhere ("off").
    Returns what stops them."""
    relay = subscriptions.relay_of(services)
    if relay is None:
        return lambda: None
    settings = services.settings
    if settings.subscription_relay != "thread":
        relay.channels = ("websocket",)
    relay.start()
    child = _ChildRelay(settings) if settings.subscription_relay == "process" else None

    def stop() -> None:
        relay.stop()
        if child is not None:
            child.stop()

    return stop


class _ChildRelay:
    """``ketnoi relay`` beside the server, started again if it dies, stopped with the server."""

    def __init__(self, settings: Settings) -> None:
        # Settings travel in the environment, never on the command line (a database URL holds a password).
        self.env = {**os.environ, "KETNOI_DATABASE": settings.database, "KETNOI_HOST": settings.host}
        self.env |= {"KETNOI_PORT": str(settings.port), "KETNOI_BASE_URL": settings.public_base()}
        self.env["KETNOI_RELAY_PARENT"] = str(os.getpid())  # it stops if this process dies (even by SIGKILL)
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # a restart and a stop never cross
        self.process = self._spawn()
        threading.Thread(target=self._watch, name="ketnoi-relay-watch", daemon=True).start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "ketnoi", "relay"], env=self.env)

    def _watch(self) -> None:
        while not self.stopping.is_set():
            code = self.process.wait()
            if self.stopping.wait(5.0):  # a relay that dies is started again after a pause
                return
            with self.lock:
                if self.stopping.is_set():
                    return
                log.warning("ketnoi relay exited with %s; starting it again", code)
                self.process = self._spawn()

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class SchemaOutdated(ConfigError):
    """The database needs ``ketnoi migrate`` first: one line on the command line, like any setting."""


def check_schema(store: Store) -> None:
    from ketnoi.store.schema import SCHEMA_VERSION

    have = store.schema_version()
    if have < SCHEMA_VERSION:
        raise SchemaOutdated(
            f"The database schema is at version {have}, this ketnoi needs {SCHEMA_VERSION}: "
            "run `ketnoi migrate --database URL` first (or `ketnoi serve --migrate`)."
        )


__all__ = ["FhirError", "build_services", "check_schema", "create_app", "open_store"]
