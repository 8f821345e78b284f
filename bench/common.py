"""Helpers shared by the benchmarks: a server subprocess, throwaway databases, timing, tables.

Nothing here imports ketnoi: benchmarks talk to the server over HTTP like any client would.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


# ---------------------------------------------------------------- machine and run description


def machine_info() -> dict[str, str]:
    """nproc, memory, CPU model, Python, date, git commit and the exact command line."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    commit = subprocess.run(
        "git rev-parse --short HEAD 2>/dev/null", shell=True, cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = ""
    if commit:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        dirty = " (plus uncommitted changes)" if status.strip() else ""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": (commit + dirty) if commit else "none (no commits yet)",
        "nproc": str(os.cpu_count() or "?") + f" (affinity {len(os.sched_getaffinity(0))})",
        "memory": mem,
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "command": " ".join(shlex.quote(a) for a in [Path(PYTHON).as_posix(), *sys.argv]),
    }


def print_machine(info: dict[str, str]) -> None:
    for key in ("date", "commit", "cpu", "nproc", "memory", "python", "os", "command"):
        print(f"{key + ':':9} {info[key]}")


# ---------------------------------------------------------------- databases


def pg_admin_url() -> str | None:
    """An admin URL that may create databases: ``KETNOI_BENCH_POSTGRES_URL`` or scripts/pg-test-setup.sh."""
    url = os.environ.get("KETNOI_BENCH_POSTGRES_URL")
    if url:
        return url
    script = ROOT / "scripts/pg-test-setup.sh"
    if not script.exists():
        return None
    proc = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    out = proc.stdout.strip().splitlines()
    return out[-1] if proc.returncode == 0 and out else None


def _with_dbname(url: str, name: str) -> str:
    head, _, tail = url.rpartition("/")
    query = ""
    if "?" in tail:
        query = "?" + tail.split("?", 1)[1]
    return f"{head}/{name}{query}"


@contextlib.contextmanager
def postgres_database(admin_url: str, prefix: str = "ketnoi_bench") -> Iterator[str]:
    """CREATE a fresh database, yield its URL, DROP ... WITH (FORCE) at the end."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(admin_url, name)
    finally:
        drop_database(admin_url, name)


def drop_database(admin_url: str, name: str, attempts: int = 60) -> None:
    """DROP ... WITH (FORCE), retried: FORCE may not end an autovacuum worker busy on the database
    (that needs a superuser), so wait for it to finish instead of failing the run."""
    import psycopg

    for attempt in range(attempts):
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


@contextlib.contextmanager
def sqlite_database(prefix: str = "ketnoi-bench-") -> Iterator[str]:
    """A fresh SQLite file in a temporary directory (removed at the end); yields its URL."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


@contextlib.contextmanager
def database(backend: str, admin_url: str | None) -> Iterator[str]:
    if backend == "sqlite":
        with sqlite_database() as url:
            yield url
    elif backend == "postgresql":
        if not admin_url:
            raise RuntimeError(
                "no PostgreSQL admin URL: set KETNOI_BENCH_POSTGRES_URL or make scripts/pg-test-setup.sh work"
            )
        with postgres_database(admin_url) as url:
            yield url
    else:
        raise ValueError(backend)


def pg_table_stats(url: str) -> dict[str, Any]:
    """Per ketnoi table: row estimate, whether it has planner statistics, and who took them (an
    ``ANALYZE`` command, e.g. the server's statistics keeper, or autovacuum) and how many rows
    changed since; plus the database size. Plans depend on it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, n_live_tup, last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL, analyze_count, "
            "autoanalyze_count, n_mod_since_analyze, GREATEST(last_analyze, last_autoanalyze) "
            "FROM pg_stat_user_tables WHERE relname LIKE 'idx_%' OR relname LIKE 'resource%' ORDER BY relname"
        ).fetchall()
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    return {
        "tables": {
            name: {
                "live_rows": live,
                "analyzed": analyzed,
                "analyze_count": manual,
                "autoanalyze_count": auto,
                "mod_since_analyze": changed,
                "last_analyzed": last.isoformat() if last else None,
            }
            for name, live, analyzed, manual, auto, changed, last in rows
        },
        "database_size": size[0] if size else "?",
    }


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str  # http://127.0.0.1:P/fhir
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def server(
    database_url: str,
    *,
    startup_timeout: float = 60.0,
    env: dict[str, str] | None = None,
    profile: Path | None = None,
    auth: str = "off",
) -> Iterator[Server]:
    """``python -m ketnoi serve --database URL --migrate`` on a free port; waits for /healthz.

    With ``profile``, the server runs under cProfile and writes its stats there when it stops.
    ``auth`` "off" (the default here): an open server, so that the figures measure FHIR work; the
    cost of tokens is measured separately with ``auth="on"``.
    """
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="ketnoi-bench-log-"))
    log = log_dir / "server.log"
    wrapper = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [
        PYTHON,
        *wrapper,
        "-m",
        "ketnoi",
        "serve",
        "--database",
        database_url,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--migrate",
        "--auth",
        auth,
    ]
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    srv = Server(f"http://127.0.0.1:{port}/fhir", proc, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{srv.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer within {startup_timeout:.0f} s:\n{srv.log_tail()}")
            time.sleep(0.1)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if sys.exc_info()[0] is None:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"server log kept: {log}", file=sys.stderr)


def client(base: str, timeout: float = 300.0) -> httpx.Client:
    """A keep-alive client that sends and accepts FHIR JSON."""
    return httpx.Client(
        base_url=base,
        timeout=timeout,
        headers={"content-type": "application/fhir+json", "accept": "application/fhir+json"},
    )


# ---------------------------------------------------------------- timing and tables


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_rate(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (pipes aligned, so it reads in a terminal too)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i]))
        return "| " + " | ".join(out) + " |"

    sep = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


# ---------------------------------------------------------------- latency series (bench/run.py and friends)


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 (nearest rank, in milliseconds) and the sample count of latencies given in seconds."""
    if not samples_s:
        return {"n": 0}
    ordered = sorted(samples_s)

    def rank(p: float) -> float:
        return ordered[min(len(ordered), max(1, math.ceil(p / 100 * len(ordered)))) - 1] * 1000

    return {"n": len(ordered), "p50": rank(50), "p95": rank(95), "p99": rank(99), "max": ordered[-1] * 1000}


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def fmt_pcts(p: dict[str, float] | None) -> str:
    """'p50 / p95 / p99' in ms, or n/a."""
    if not p or not p.get("n"):
        return "n/a"
    return " / ".join(fmt_ms(p[k]) for k in ("p50", "p95", "p99"))


def median_pcts(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Per-percentile median over several runs (each a percentiles() result)."""
    runs = [r for r in runs if r.get("n")]
    if not runs:
        return {"n": 0}
    out = {k: statistics.median(r[k] for r in runs) for k in ("p50", "p95", "p99", "max")}
    out["n"] = sum(r["n"] for r in runs)
    return out


def demo_data(patients: int, seed: int, out: Path, fmt: str = "ndjson") -> Path:
    """``ketnoi demo generate --patients N --seed S --out DIR --format F`` (NDJSON, or transaction
    Bundles under DIR/bundles), reused when already there."""
    stamp = out / ".complete"
    if not stamp.exists():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(
            [
                PYTHON,
                "-m",
                "ketnoi",
                "demo",
                "generate",
                "--patients",
                str(patients),
                "--seed",
                str(seed),
                "--out",
                str(out),
                "--format",
                fmt,
            ],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        stamp.write_text(f"{patients} {seed} {fmt}\n")
    return out


def ndjson_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ndjson"))
