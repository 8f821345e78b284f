"""The ``ketnoi`` command: migrate and serve, by flags and by environment, as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ketnoi.store.schema import SCHEMA_VERSION
from tests.conftest import _free_port


def _ketnoi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ketnoi", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@contextmanager
def _serving(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``ketnoi serve``; the port comes from KETNOI_PORT when the environment sets it."""
    env = env or {}
    port = int(env.get("KETNOI_PORT") or _free_port())
    port_args = [] if "KETNOI_PORT" in env else ["--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ketnoi", "serve", *port_args, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/metadata", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {proc.stdout.read() if proc.stdout else ''}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # reads and closes the pipe (an unclosed one is a ResourceWarning)


def test_migrate_then_serve(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/k.db"
    migrated = _ketnoi("migrate", "--database", url)
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema version {SCHEMA_VERSION}" in migrated.stdout
    again = _ketnoi("migrate", "--database", url)
    assert "up to date" in again.stdout
    with _serving("--database", url, "--auth", "off") as base:
        created = httpx.post(f"{base}/Patient", json={"resourceType": "Patient"})
        assert created.status_code == 201
        assert httpx.get(f"{base}/metadata").json()["fhirVersion"] == "4.0.1"
    assert (tmp_path / "k.db").exists()


def test_environment_variables(tmp_path: Path) -> None:
    env = {"KETNOI_DATABASE": f"sqlite:///{tmp_path}/env.db"}
    assert _ketnoi("migrate", env=env).returncode == 0
    assert (tmp_path / "env.db").exists()
    port = str(_free_port())
    with _serving(env={**env, "KETNOI_PORT": port}) as base:
        assert httpx.get(f"{base}/metadata").status_code == 200
        # Authorization is on by default: everything else needs a token.
        refused = httpx.get(f"{base}/Patient")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    bad = _ketnoi("serve", "--port", str(_free_port()), env={**env, "KETNOI_AUTH": "maybe"})
    assert bad.returncode == 2 and "KETNOI_AUTH" in bad.stderr and "Traceback" not in bad.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = _ketnoi("serve", "--database", f"sqlite:///{tmp_path}/new.db", "--port", str(_free_port()))
    assert result.returncode == 2
    assert "ketnoi migrate" in result.stderr


def test_load_into_an_unmigrated_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "p.ndjson").write_text('{"resourceType": "Patient", "id": "p1"}\n')
    result = _ketnoi("load", "--database", f"sqlite:///{tmp_path}/new.db", str(tmp_path / "p.ndjson"))
    assert result.returncode == 2
    assert "ketnoi migrate" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = _ketnoi("migrate", "--database", "mysql://nope")
    assert result.returncode == 2
    assert "Unsupported database URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_auth_off_is_refused_off_loopback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/k.db"
    assert _ketnoi("migrate", "--database", url).returncode == 0
    result = _ketnoi("serve", "--database", url, "--host", "0.0.0.0", "--port", str(_free_port()), "--auth", "off")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "loopback" in result.stderr


def test_serve_names_trusted_identity_providers_and_warns_when_they_cannot_apply(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/k.db"
    assert _ketnoi("migrate", "--database", url).returncode == 0
    issuer = "http://127.0.0.1:9/auth"
    for auth, expected in (("on", f"trusted identity provider: {issuer}"), ("off", "--oidc-issuer has no effect")):
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ketnoi", "serve", "--database", url, "--port", str(port),
             "--auth", auth, "--oidc-issuer", issuer],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
        assert expected in output, output
