"""Test fixtures: every backend (SQLite and PostgreSQL), each behind a real uvicorn server.

PostgreSQL comes from ``KETNOI_TEST_POSTGRES_URL`` (an admin URL that may create databases;
``make test`` sets it with scripts/pg-test-setup.sh). Each test session creates a throwaway
database and drops it afterwards. Without the URL the PostgreSQL tests skip, except in CI
(``CI=true``) where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from ketnoi.app import build_services, close_services, open_store
from ketnoi.config import Settings
from ketnoi.interactions.services import Services
from ketnoi.store.base import Store

BACKENDS = ["sqlite", "postgres"]
# The shared fixtures and the servers tests start run without background patient linking: the FHIR
# suites create look-alike Patients on purpose and count what a search returns, and a golden record
# appearing among them (docs/mpi.md) is not what they test. tests/mpi turns it on.
os.environ.setdefault("KETNOI_MPI_LINK", "off")
DATA = Path(__file__).parent / "data"


def postgres_admin_url() -> str | None:
    url = os.environ.get("KETNOI_TEST_POSTGRES_URL")
    if not url and os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but KETNOI_TEST_POSTGRES_URL is not set: PostgreSQL tests must run in CI")
    return url or None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL not configured (set KETNOI_TEST_POSTGRES_URL or run `make test`)")
    name = f"ketnoi_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    yield f"{base}/{name}"
    drop_database(admin, name)


@contextmanager
def throwaway_url(backend: str, tmp_path: Path, prefix: str = "ketnoi_fresh") -> Iterator[str]:
    """The URL of a new, empty database of ``backend`` (a file under ``tmp_path``, or a PostgreSQL
    database dropped on exit), for tests that must not share state with the session's database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/{prefix}.db"
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL not configured (set KETNOI_TEST_POSTGRES_URL)")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rpartition('/')[0]}/{name}"
    finally:
        drop_database(admin, name)


def drop_database(admin: str, name: str, attempts: int = 60) -> None:
    """DROP ... WITH (FORCE), retried: FORCE cannot end an autovacuum worker busy on the database
    without superuser rights (the server's statistics keeper makes that likelier), so wait for it."""
    for attempt in range(attempts):
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


@pytest.fixture(params=BACKENDS)
def fresh_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """Services over a new, empty, migrated database of each backend."""
    with throwaway_url(request.param, tmp_path) as url:
        store = open_store(url)
        store.migrate()
        # The audit journal in the test's folder (PostgreSQL's default is var/audit-spool/).
        settings = Settings(database=url, auth="off", audit_spool=str(tmp_path / "journal"), mpi_link=False)
        services = build_services(settings, store)
        try:
            yield services
        finally:
            close_services(services)


def make_store(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db')}/ketnoi.db"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_store(url)
    store.migrate()
    return store


@pytest.fixture(scope="session", params=BACKENDS)
def services(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Services over a migrated store of each backend (shared by the whole session)."""
    store = make_store(request.param, request, tmp_path_factory)
    # auth off: the FHIR suites test FHIR; tests/api/test_bearer.py and the policy tests turn it on.
    journal = str(tmp_path_factory.mktemp("journal"))
    services = build_services(Settings(database="test", auth="off", audit_spool=journal, mpi_link=False), store)
    yield services
    # The job runner thread (started by the first job a test queued) may be inside a query:
    # closing the store under it crashed the worker (SQLite segfaults on a connection closed by
    # another thread). Stop it first, as the server's lifespan does.
    close_services(services)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """A real uvicorn server on a free loopback port, in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or _free_port()  # given: the app's settings name it (its public base URL)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"


@pytest.fixture(scope="session")
def server(services: Services) -> Iterator[LiveServer]:
    from ketnoi.api.routes import create_app

    with LiveServer(create_app(services)) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=60, headers={"Accept": "application/fhir+json"}) as c:
        yield c


@pytest.fixture
def tag() -> str:
    """A unique code to tag and find this test's resources in a shared database."""
    return uuid.uuid4().hex
