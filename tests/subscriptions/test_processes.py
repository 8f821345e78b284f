"""Delivery across real processes, on both backends: a server killed (SIGKILL) between the commit and
the delivery, whose notification a `ketnoi relay` started afterwards sends; and a server whose
rest-hooks go out from its `ketnoi relay` child (KETNOI_SUBSCRIPTION_RELAY=process), which stops
with it (ADR 0025)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, _free_port, throwaway_url
from tests.subscriptions.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
CONTENT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _env(url: str, tmp_path: Path, relay: str) -> dict[str, str]:
    return {
        **os.environ,
        "KETNOI_DATABASE": url,
        "KETNOI_SUBSCRIPTION_ENDPOINTS": "127.0.0.1",
        "KETNOI_SUBSCRIPTION_RELAY": relay,
        "KETNOI_AUDIT_SPOOL": str(tmp_path / "journal"),
        "KETNOI_MPI_LINK": "off",
    }


@contextmanager
def serving(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    port = _free_port()
    log = open(tmp_path / f"serve-{port}.log", "wb")  # noqa: SIM115 (closed below)
    cmd = [sys.executable, "-m", "ketnoi", "serve", "--port", str(port), "--auth", "off", "--migrate"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/fhir"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / f"serve-{port}.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "ketnoi serve did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=30) as client:
            yield proc, client
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        log.close()


def subscribe_and_change(client: httpx.Client, endpoint: str) -> None:
    sub = {
        "resourceType": "Subscription", "id": "s1", "status": "requested", "reason": "test",
        "criteria": "Observation?code=8867-4",
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": CONTENT, "valueCode": "id-only"}]}},
    }  # fmt: skip
    assert client.put("/Subscription/s1", json=sub).status_code == 201
    assert client.put("/Patient/p1", json={"resourceType": "Patient", "id": "p1"}).status_code == 201
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"coding": [{"code": "8867-4"}]},
           "subject": {"reference": "Patient/p1"}}  # fmt: skip
    assert client.put("/Observation/o1", json=obs).status_code == 201


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited (its new parent reaps it)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_change_committed_before_the_server_is_killed_is_delivered_by_the_next_relay(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    with throwaway_url(backend, tmp_path) as url:
        env = _env(url, tmp_path, "off")  # nobody in the server sends rest-hooks
        with serving(env, tmp_path) as (server, client):
            subscribe_and_change(client, receiver.url)
            time.sleep(0.5)
            assert receiver.requests == []
            server.send_signal(signal.SIGKILL)  # after the commit, before any delivery
            server.wait(10)
        relay = subprocess.Popen([sys.executable, "-m", "ketnoi", "relay"], cwd=ROOT, env=env)
        try:
            got = receiver.wait(1, timeout=30)
            time.sleep(1.0)  # nothing more comes
        finally:
            relay.terminate()
            assert relay.wait(30) == 0  # a clean stop on SIGTERM
    assert len(receiver.requests) == 1
    focus = [e["fullUrl"] for e in got[0].json()["entry"][1:]]
    assert len(focus) == 1 and focus[0].endswith("/Observation/o1")


@pytest.mark.parametrize("backend", BACKENDS)
def test_process_mode_sends_from_a_child_relay_that_stops_with_the_server(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    with throwaway_url(backend, tmp_path) as url, serving(_env(url, tmp_path, "process"), tmp_path) as started:
        server, client = started
        (relay,) = children(server.pid)  # ketnoi relay
        subscribe_and_change(client, receiver.url)
        assert len(receiver.wait(1, timeout=30)) == 1
        server.terminate()
        server.wait(30)
        assert _gone(relay)


def test_the_child_relay_of_a_killed_server_stops_too(tmp_path: Path) -> None:
    with throwaway_url("sqlite", tmp_path) as url, serving(_env(url, tmp_path, "process"), tmp_path) as started:
        server, _ = started
        (relay,) = children(server.pid)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        assert _gone(relay)  # no orphan delivering for a server that is gone


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)
