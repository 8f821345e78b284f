"""System-level ``$export`` of a loaded database against the raw dump of the same rows, and the server's
memory while it exports (issue 14).

Per backend (SQLite, PostgreSQL):

1. **The database**: ``ketnoi demo generate --patients N --seed S`` (reused from
   ``/tmp/ketnoi-bench-data``), ``ketnoi migrate`` + ``ketnoi load`` into a throwaway database
   (PostgreSQL then ``ANALYZE``), or ``--database BACKEND=URL``: one loaded before (a million resources
   take about 10 minutes to load per backend). The export job and its audit rows are added to it.
2. **The raw limit** of the rows the export writes, in the same run on the same database: PostgreSQL
   ``COPY (SELECT convert_from(h.content, 'UTF8') FROM resource r JOIN resource_history h ON h.seq =
   r.seq WHERE NOT r.deleted) TO STDOUT`` through psycopg's ``copy``, each chunk written to a file;
   SQLite the same ``SELECT h.content`` streamed by ``sqlite3``, each content written as a line
   (10,000 rows a write). The stored content *is* the exported line (JSON bytes, uncompressed), so
   this is all the raw path has to do; one ``fsync`` at the end. Run before and after the export;
   the faster of the two is the limit.
3. **The export**: ``ketnoi serve --auth off`` on it (``KETNOI_EXPORT_DIR`` a temporary folder,
   ``KETNOI_MPI_LINK=off``, ``KETNOI_SUBSCRIPTION_RELAY=thread``), ``GET [base]/$export`` with
   ``Prefer: respond-async`` and ``Accept: application/fhir+json``, ``$export-status`` polled every
   0.2 s until 200: export seconds = kick-off to manifest. Then every file of the manifest downloaded
   (streamed to ``/dev/null``, ``Accept-Encoding: identity`` unless ``--gzip``): download seconds; a
   download's audit names every patient in the file, so the script then waits (``--audit-wait``) for
   the server and the database to go idle, and on PostgreSQL ends what a stopped server left running
   (each server gets its own audit journal folder). Resources/s = exported resources / export seconds.
4. **Memory**: the server's resident set (``VmRSS`` of ``/proc/PID/status``) sampled every 0.2 s by a
   thread: before the kick-off (after a warm-up search), the peak during the export, the peak in its
   first and second half (a bounded export peaks early and stays there), and the peak during the
   downloads. The same for a small export (``--small-type``, default ``Patient``) in its own fresh
   server process, to compare growth with export size.
5. **Checks**: the manifest's count per type equals ``SELECT count(*) FROM resource WHERE NOT
   deleted`` per type, each downloaded file has as many lines as its count, and the files on disk hold
   every current ``(type, id)`` of the database exactly once (parsed after the timing). The exit status
   is 1 when any check fails.

It prints the machine, then one table: backend, resources, export s, res/s, raw res/s, ratio, RSS
before / peak (MiB), growth, the small export's growth, download s. ``--json OUT`` keeps every figure.

    .venv/bin/python bench/export.py --patients 2000                       # ~56k resources, a few minutes
    .venv/bin/python bench/export.py                     # 41,000 patients: 1.2M resources (10 min load a backend)
    .venv/bin/python bench/export.py --backends postgresql --database postgresql=postgresql://.../db
    .venv/bin/python bench/export.py --patients 100 --profile /tmp/export-profile   # py-spy of the export
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from load import ketnoi_load

DATA = Path("/tmp/ketnoi-bench-data")
POLL_S = 0.2
MIB = 1024 * 1024

RAW_SELECT = "FROM resource r JOIN resource_history h ON h.seq = r.seq WHERE NOT r.deleted"


# ---------------------------------------------------------------- memory


class RssSampler:
    """VmRSS of one process every ``interval`` seconds in a thread, with the time of each sample."""

    def __init__(self, pid: int, interval: float = POLL_S) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []  # (perf_counter, bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> int:
        return status_kib(self.pid, "VmRSS") * 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                self.samples.append((time.perf_counter(), self.read()))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(OSError, ValueError):
            self.samples.append((time.perf_counter(), self.read()))

    def peak(self, start: float | None = None, end: float | None = None) -> int:
        window = [b for t, b in self.samples if (start is None or t >= start) and (end is None or t <= end)]
        return max(window, default=0)


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise ValueError(f"{key} not in /proc/{pid}/status")


# ---------------------------------------------------------------- the database


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def db_keys(backend: str, url: str) -> dict[str, int]:
    """Current (not deleted) resources per type, straight from the ``resource`` table."""
    sql = "SELECT resource_type, count(*) FROM resource WHERE NOT deleted GROUP BY resource_type"
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            return dict(conn.execute(sql).fetchall())
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return dict(conn.execute(sql).fetchall())


def db_ids(backend: str, url: str) -> set[tuple[str, str]]:
    sql = "SELECT resource_type, id FROM resource WHERE NOT deleted"
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            return set(conn.execute(sql))
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return {(t, i) for t, i in conn.execute(sql)}


def analyze(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


@dataclass
class Raw:
    rows: int
    bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def raw_dump(backend: str, url: str, out: Path) -> Raw:
    """The rows the export writes, as NDJSON lines into ``out``, as fast as the driver gives them."""
    start = time.perf_counter()
    rows = 0
    with out.open("wb") as f:
        if backend == "sqlite":
            import sqlite3

            conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
            try:
                cur = conn.execute(f"SELECT h.content {RAW_SELECT}")
                while batch := cur.fetchmany(10_000):
                    f.write(b"\n".join(c for (c,) in batch) + b"\n")
                    rows += len(batch)
            finally:
                conn.close()
        else:
            import psycopg

            with psycopg.connect(url) as conn, conn.cursor() as cur:
                sql = f"COPY (SELECT convert_from(h.content, 'UTF8') {RAW_SELECT}) TO STDOUT"
                with cur.copy(sql) as copy:
                    for data in copy:  # one row's line at a time, a view of the driver's buffer
                        f.write(data)
                rows = cur.rowcount  # from the command tag, "COPY n"
        f.flush()
        os.fsync(f.fileno())
        size = f.tell()
    return Raw(rows, size, time.perf_counter() - start)


# ---------------------------------------------------------------- the export


@dataclass
class Export:
    what: str
    seconds: float = 0.0
    resources: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    download_s: float = 0.0
    downloaded_lines: dict[str, int] = field(default_factory=dict)
    rss_before: int = 0
    rss_peak: int = 0
    rss_peak_first_half: int = 0
    rss_peak_second_half: int = 0
    rss_download_peak: int = 0
    hwm_before: int = 0
    hwm_after: int = 0
    polls: int = 0
    audit_quiet_s: float | None = 0.0  # after the downloads, until server and database were idle; None: not
    job_dir: str = ""
    failures: list[str] = field(default_factory=list)  # counts or ids wrong: the figures mean nothing
    download_failures: list[str] = field(default_factory=list)  # a file not served (e.g. 503)

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


def run_export(
    srv: common.Server,
    what: str,
    params: dict[str, str],
    export_dir: Path,
    *,
    download: bool = True,
    gzip: bool = False,
    quiet: Callable[[], bool] | None = None,
    quiet_wait: float = 0.0,
) -> Export:
    pid = srv.process.pid
    result = Export(what)
    headers = {"accept": "application/fhir+json", "prefer": "respond-async"}
    with httpx.Client(timeout=600) as http:
        # warm-up: a search and a count, so the baseline holds what any request loads
        http.get(f"{srv.base}/Patient", params={"_count": "10"}, headers={"accept": "application/fhir+json"})
        time.sleep(1.0)
        result.rss_before = status_kib(pid, "VmRSS") * 1024
        result.hwm_before = status_kib(pid, "VmHWM") * 1024
        with RssSampler(pid) as sampler:
            start = time.perf_counter()
            kick = http.get(f"{srv.base}/$export", params=params, headers=headers)
            if kick.status_code != 202:
                result.failures.append(f"kick-off {kick.status_code}: {kick.text[:300]}")
                return result
            status_url = urljoin(srv.base + "/", kick.headers["content-location"])
            while True:
                answer = http.get(status_url, headers={"accept": "application/json"})
                result.polls += 1
                if answer.status_code == 200:
                    break
                if answer.status_code != 202:
                    result.failures.append(f"status {answer.status_code}: {answer.text[:300]}")
                    return result
                time.sleep(POLL_S)
            end = time.perf_counter()
        result.seconds = end - start
        result.rss_peak = sampler.peak(start, end)
        middle = start + result.seconds / 2
        result.rss_peak_first_half = sampler.peak(start, middle)
        result.rss_peak_second_half = sampler.peak(middle, end)
        manifest = answer.json()
        result.counts = {}
        for output in manifest["output"]:  # a type's output may come in several parts
            result.counts[output["type"]] = result.counts.get(output["type"], 0) + int(output["count"])
        result.resources = sum(result.counts.values())
        if manifest.get("error"):
            result.failures.append(f"manifest errors: {manifest['error']}")
        job = status_url.rsplit("job=", 1)[-1]
        result.job_dir = str(export_dir / job)
        if not download:
            return result
        # the files, streamed to nowhere
        with RssSampler(pid) as sampler:
            start = time.perf_counter()
            for output in manifest["output"]:
                lines = 0
                encoding = {"accept-encoding": "gzip" if gzip else "identity"}
                with http.stream("GET", output["url"], headers=encoding) as answer:
                    if answer.status_code != 200:
                        result.download_failures.append(f"download {output['type']}: {answer.status_code}")
                        continue
                    for chunk in answer.iter_bytes(1 << 20):  # gzip: decompressed here
                        result.bytes += len(chunk)
                        lines += chunk.count(b"\n")
                name = output["url"].rsplit("file=", 1)[-1]
                result.downloaded_lines[name] = lines
                if lines != int(output["count"]):
                    result.failures.append(f"{name}: {lines} lines downloaded, manifest says {output['count']}")
            result.download_s = time.perf_counter() - start
        result.rss_download_peak = sampler.peak()
        result.hwm_after = status_kib(pid, "VmHWM") * 1024
    # A download's audit names every patient in the file; the events reach the log after the answer
    # (PostgreSQL: through the audit journal). Wait for the server and the database to go quiet.
    if quiet is not None:
        start = time.perf_counter()
        result.audit_quiet_s = None
        while time.perf_counter() - start < quiet_wait:
            if quiet():
                result.audit_quiet_s = time.perf_counter() - start
                break
            time.sleep(1.0)
    return result


def file_keys(folder: Path) -> tuple[dict[tuple[str, str], int], list[str]]:
    """(type, id) -> times seen, over every NDJSON file of an export folder, and any line that is not a
    resource of its file's type."""
    seen: dict[tuple[str, str], int] = {}
    bad: list[str] = []
    for path in sorted(folder.glob("*.ndjson")):
        rtype = path.stem.partition("-")[0]  # a part: Observation-2.ndjson
        with path.open("rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                body = orjson.loads(line)
                if body.get("resourceType") != rtype:
                    bad.append(f"{path.name}: a {body.get('resourceType')}")
                key = (rtype, body.get("id"))
                seen[key] = seen.get(key, 0) + 1
    return seen, bad


def check_exactly_once(export: Export, expected: dict[str, int], ids: set[tuple[str, str]] | None) -> list[str]:
    problems = []
    if export.counts != {t: n for t, n in expected.items() if n}:
        differ = sorted(t for t in set(export.counts) | set(expected) if export.counts.get(t, 0) != expected.get(t, 0))
        problems.append(
            "manifest counts differ from the database: "
            + ", ".join(f"{t} {export.counts.get(t, 0)} vs {expected.get(t, 0)}" for t in differ[:10])
        )
    if ids is not None:
        seen, bad = file_keys(Path(export.job_dir))
        twice = [k for k, n in seen.items() if n > 1]
        missing = ids - seen.keys()
        extra = seen.keys() - ids
        if twice:
            problems.append(f"{len(twice)} resources exported more than once, e.g. {twice[:3]}")
        if missing:
            problems.append(f"{len(missing)} resources not exported, e.g. {sorted(missing)[:3]}")
        if extra:
            problems.append(f"{len(extra)} exported resources not current in the database, e.g. {sorted(extra)[:3]}")
        problems.extend(bad[:5])
    return problems


class Quiet:
    """True once the server used no CPU for a second and (PostgreSQL) no other session of the database
    is running a statement."""

    def __init__(self, pid: int, backend: str, url: str) -> None:
        self.pid, self.backend, self.url = pid, backend, url
        self.last = -1

    def __call__(self) -> bool:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = int(fields[11]) + int(fields[12])  # utime + stime, in ticks
        idle, self.last = cpu == self.last, cpu
        if not idle or self.backend != "postgresql":
            return idle
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state = 'active'"
            ).fetchone()
        return not busy or busy[0] == 0


def end_backends(backend: str, url: str) -> int:
    """PostgreSQL: end the sessions a stopped server left running in the database (a long audit append
    goes on after its client is gone, and would load the next measurement)."""
    if backend != "postgresql":
        return 0
    import psycopg

    time.sleep(0.5)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
    return len(rows)


# ---------------------------------------------------------------- py-spy


@contextlib.contextmanager
def py_spy(pid: int, out: Path | None) -> Iterator[None]:
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(common.PYTHON).parent / "py-spy")
    proc = subprocess.Popen(
        [spy, "record", "-p", str(pid), "-f", "raw", "-o", str(out), "-r", "50", "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    try:
        yield
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def summarize_profile(path: Path, top: int = 15) -> str:
    """Own and inclusive sample counts of the frames in py-spy's raw (collapsed stacks) output."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for frame in set(frames):
                incl[frame] = incl.get(frame, 0) + n
    if not total:
        return "(no samples)"
    lines = [f"{total} samples; own time:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    lines.append("inclusive (ketnoi frames):")
    ours = [(f, n) for f, n in incl.items() if "ketnoi/" in f or "sqlite3" in f or "psycopg" in f]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in sorted(ours, key=lambda kv: -kv[1])[:top]]
    return "\n".join(lines)


# ---------------------------------------------------------------- per backend


def run_backend(backend: str, url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend, "failures": []}
    if backend == "postgresql":
        analyze(url)
    expected = db_keys(backend, url)
    out["database"] = expected
    total = sum(expected.values())
    print(f"[{backend}] {total:,} current resources in {len(expected)} types", flush=True)

    raws = []
    raw_file = work / "raw.ndjson"
    raws.append(raw_dump(backend, url, raw_file))
    raw_file.unlink()
    print(f"[{backend}] raw dump: {raws[-1].rows:,} rows, {raws[-1].bytes / MIB:,.0f} MiB in {raws[-1].seconds:.1f} s")

    export_root = work / "export"

    def env(name: str) -> dict[str, str]:
        out = {
            "KETNOI_EXPORT_DIR": str(export_root),
            "KETNOI_MPI_LINK": "off",
            "KETNOI_SUBSCRIPTION_RELAY": "thread",
        }
        if backend == "postgresql":  # a journal per server: what one leaves undrained stalls no other's start
            out["KETNOI_AUDIT_SPOOL"] = str(work / f"audit-spool-{name}")
        return out

    exports: list[Export] = []
    if args.small_type:
        with common.server(url, env=env("small")) as srv:
            params = {"_type": args.small_type}
            small = run_export(srv, f"_type={args.small_type}", params, export_root, download=False)
        end_backends(backend, url)
        small.failures += check_exactly_once(small, {args.small_type: expected.get(args.small_type, 0)}, None)
        shutil.rmtree(small.job_dir, ignore_errors=True)
        exports.append(small)
        print(f"[{backend}] small export ({small.what}): {small.resources:,} in {small.seconds:.1f} s", flush=True)
    with common.server(url, env=env("full")) as srv:
        profile = work / f"py-spy-{backend}.txt" if args.profile else None
        with py_spy(srv.process.pid, profile):
            full = run_export(
                srv,
                "system",
                {},
                export_root,
                download=not (args.no_download or args.profile),  # a profile of the export alone
                gzip=args.gzip,
                quiet=Quiet(srv.process.pid, backend, url),
                quiet_wait=args.audit_wait,
            )
    left = end_backends(backend, url)
    if left:
        print(f"[{backend}] ended {left} database session(s) the server left running (its audit append)", flush=True)
    print(
        f"[{backend}] export: {full.resources:,} in {full.seconds:.1f} s, download {full.download_s:.1f} s",
        flush=True,
    )
    raws.append(raw_dump(backend, url, raw_file))
    raw_file.unlink()
    print(f"[{backend}] raw dump again: {raws[-1].rows:,} rows in {raws[-1].seconds:.1f} s", flush=True)
    ids = None if args.no_id_check else db_ids(backend, url)
    full.failures += check_exactly_once(full, expected, ids)
    if raws[-1].rows != total:
        full.failures.append(f"raw dump wrote {raws[-1].rows} rows, the database has {total}")
    if full.bytes and raws[-1].bytes and full.bytes != raws[-1].bytes and backend == "sqlite":
        full.failures.append(f"export {full.bytes} bytes, raw dump {raws[-1].bytes}: not the same lines")
    shutil.rmtree(full.job_dir, ignore_errors=True)
    exports.append(full)
    if profile is not None and args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        kept = args.profile / profile.name
        with contextlib.suppress(OSError):
            shutil.copy(profile, kept)
            out["profile"] = summarize_profile(kept)
            out["profile_file"] = str(kept)
    out["raw"] = [asdict(r) | {"rate": r.rate} for r in raws]
    out["exports"] = [asdict(e) | {"rate": e.rate} for e in exports]
    out["raw_best"] = max(raws, key=lambda r: r.rate)
    out["full"], out["small"] = full, (exports[0] if len(exports) > 1 else None)
    for e in exports:
        out["failures"] += [f"{backend} {e.what}: {f}" for f in e.failures + e.download_failures]
    return out


def mib(value: int) -> str:
    return f"{value / MIB:,.0f}"


def row(r: dict[str, Any]) -> list[str]:
    full: Export = r["full"]
    small: Export | None = r["small"]
    raw: Raw = r["raw_best"]
    ratio = f"{full.rate / raw.rate:.0%}" if full.rate and raw.rate else "n/a"
    return [
        r["backend"],
        f"{full.resources:,}",
        f"{full.seconds:,.1f}",
        common.fmt_rate(full.rate) if not full.failures else "n/a",
        common.fmt_rate(raw.rate),
        ratio if not full.failures else "n/a",
        f"{mib(full.rss_before)} / {mib(full.rss_peak)}",
        f"+{mib(full.rss_peak - full.rss_before)}",
        f"+{mib(small.rss_peak - small.rss_before)} ({small.resources:,})" if small else "",
        f"{full.download_s:,.1f}",
        "failed"
        if full.failures
        else f"{len(full.download_failures)} downloads failed"
        if full.download_failures
        else "ok",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--patients", type=int, default=41_000, help="synthetic patients (41,000: 1.2M resources)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database", action="append", default=[], metavar="BACKEND=URL", help="a database loaded before (repeat)"
    )
    parser.add_argument("--small-type", default="Patient", help="the small export's _type (empty: none)")
    parser.add_argument("--gzip", action="store_true", help="download with Accept-Encoding: gzip (default: identity)")
    parser.add_argument("--no-download", action="store_true", help="do not download the files")
    parser.add_argument(
        "--audit-wait", type=float, default=180.0, help="seconds to wait after the downloads for the audit to settle"
    )
    parser.add_argument("--no-id-check", action="store_true", help="skip reading the files back for ids")
    parser.add_argument("--profile", type=Path, help="py-spy the server during the export; raw stacks go here")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    given = dict(d.split("=", 1) for d in args.database)
    info = common.machine_info()
    common.print_machine(info)
    admin = common.pg_admin_url() if "postgresql" in backends and "postgresql" not in given else None
    folder = None
    if any(b not in given for b in backends):
        folder = common.demo_data(args.patients, args.seed, DATA / f"patients-{args.patients}-seed-{args.seed}")
    results = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="ketnoi-bench-export-") as tmp:
            work = Path(tmp)
            with contextlib.ExitStack() as stack:
                if backend in given:
                    url = given[backend]
                    load = None
                else:
                    if backend == "postgresql" and not admin:
                        print("[postgresql] skipped: no admin URL (KETNOI_BENCH_POSTGRES_URL)", file=sys.stderr)
                        continue
                    url = stack.enter_context(common.database(backend, admin))
                    assert folder is not None
                    load = ketnoi_load(url, folder)
                    print(f"[{backend}] loaded {load.resources:,} in {load.seconds:.0f} s ({load.failed} failed)")
                r = run_backend(backend, url, args, work)
                r["load"] = asdict(load) if load else None
                results.append(r)
    print()
    header = [
        "backend",
        "resources",
        "export s",
        "res/s",
        "raw res/s",
        "ratio",
        "RSS before / peak MiB",
        "growth",
        "small export growth (res)",
        "download s",
        "checks",
    ]
    print(common.table(header, [row(r) for r in results]))
    print()
    for r in results:
        full, raw = r["full"], r["raw_best"]
        print(f"{r['backend']}:")
        for x in r["raw"]:
            print(
                f"  raw dump: {x['rows']:,} rows, {x['bytes'] / MIB:,.0f} MiB, {x['seconds']:.1f} s, {x['rate']:,.0f}/s"
            )
        for e in r["exports"]:
            print(
                f"  export {e['what']}: {e['resources']:,} resources, {e['bytes'] / MIB:,.0f} MiB"
                f" in {e['seconds']:.1f} s ({e['rate']:,.0f}/s, {e['polls']} polls);"
                f" RSS {mib(e['rss_before'])} MiB before,"
                f" peak {mib(e['rss_peak'])} (first half {mib(e['rss_peak_first_half'])},"
                f" second half {mib(e['rss_peak_second_half'])}), downloads {mib(e['rss_download_peak'])};"
                f" VmHWM {mib(e['hwm_before'])} -> {mib(e['hwm_after'])}; download {e['download_s']:.1f} s"
            )
        settled = full.audit_quiet_s
        print(
            f"  after the downloads, server and database idle after {settled:.0f} s"
            if settled is not None
            else f"  after the downloads, server or database still busy after {args.audit_wait:.0f} s (ended)"
        )
        if raw.bytes and full.bytes:
            print(f"  export bytes / raw bytes: {full.bytes / raw.bytes:.4f}")
        if r.get("profile"):
            print(f"  py-spy of the export ({r['profile_file']}):")
            print("    " + r["profile"].replace("\n", "\n    "))
    failures = [f for r in results for f in r["failures"]]
    for f in failures:
        print(f"FAILED: {f}")
    if args.json:
        payload = {
            "machine": info,
            "results": [{k: v for k, v in r.items() if k not in ("full", "small", "raw_best")} for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    return 1 if failures or not results else 0


if __name__ == "__main__":
    sys.exit(main())
