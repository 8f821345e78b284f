"""``ketnoi import xml130``: claims files into the database, with a progress line and a summary, the
per-visit, per-field error report as CSV (``--errors``), and a watched inbox folder (``--watch``).

The inbox: a hospital drops envelopes (``*.xml``) into the folder; each is imported once its size has
stopped changing, then moved to ``done/`` (or ``refused/`` when the file as a whole was refused) with its
report beside it (``<name>.report.csv``). A file is never imported twice: it leaves the inbox when it is
done, and were the move to fail after the import (a crash), importing it again changes nothing.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from pathlib import Path

from ketnoi.claims.importer import Importer
from ketnoi.claims.report import FileReport, summary_line, to_csv
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.services import Services

SETTLE_SECONDS = 1.0  # a file whose size and time have not changed for this long is complete


class UsageError(Exception):
    """A command-line mistake: one line, no traceback."""


def files_of(paths: list[str]) -> list[Path]:
    """The envelopes named: files as given, folders by their ``*.xml`` files in name order."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".xml"))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"không có tệp hoặc thư mục {text} / no such file or folder: {text}")
    return found


def _progress(done: int, report: FileReport) -> None:
    if sys.stderr.isatty():
        print(
            f"\r  {report.name}: {len(report.visits):,} hồ sơ/visits, {done:,} files",
            end="",
            file=sys.stderr,
            flush=True,
        )


def import_files(importer: Importer, files: list[Path], errors: Path | None = None) -> list[FileReport]:
    reports = []
    for done, path in enumerate(files, 1):
        report = importer.import_file(path, path.name)
        reports.append(report)
        _progress(done, report)
        vi, en = summary_line(report)
        print(f"{en} | {vi}")
    if errors is not None:
        errors.write_text(to_csv(reports), encoding="utf-8")
    return reports


def totals(reports: list[FileReport], seconds: float) -> str:
    visits = sum(len(r.visits) for r in reports)
    imported = sum(r.imported for r in reports)
    rejected = sum(r.count("rejected") for r in reports)
    refused = sum(1 for r in reports if r.refused)
    rate = visits / seconds if seconds else 0.0
    return (
        f"{len(reports)} files, {visits:,} visits: {imported:,} imported, {rejected:,} rejected, "
        f"{refused} files refused; {sum(r.resources for r in reports):,} resources written in {seconds:.1f} s "
        f"({rate:,.0f} visits/s)"
    )


def exit_code(reports: list[FileReport]) -> int:
    return 1 if any(r.refused or r.count("rejected") for r in reports) else 0


def _settled(path: Path, seen: dict[Path, tuple[int, float]], now: float) -> bool:
    """Whether a dropped file is complete: the same size and time as at the last look, a while ago."""
    stat = path.stat()
    mark = (stat.st_size, stat.st_mtime)
    if seen.get(path) != mark:
        seen[path] = mark
        return False
    return now - stat.st_mtime >= SETTLE_SECONDS


def watch_once(importer: Importer, inbox: Path, seen: dict[Path, tuple[int, float]]) -> list[FileReport]:
    """One look at the inbox: import each settled file, then move it and its report aside."""
    reports = []
    for path in sorted(p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() == ".xml"):
        if not _settled(path, seen, time.time()):
            continue
        report = importer.import_file(path, path.name)
        target = inbox / ("refused" if report.refused else "done")
        target.mkdir(exist_ok=True)
        (target / f"{path.name}.report.csv").write_text(to_csv([report]), encoding="utf-8")
        path.replace(target / path.name)
        seen.pop(path, None)
        vi, en = summary_line(report)
        print(f"{en} | {vi}", flush=True)
        reports.append(report)
    return reports


def watch(importer: Importer, inbox: Path, interval: float, stop: Callable[[], bool] = lambda: False) -> None:
    if not inbox.is_dir():
        raise UsageError(f"không có thư mục {inbox} / no such folder: {inbox}")
    print(f"watching {inbox} (Ctrl-C to stop) | đang theo dõi {inbox}", flush=True)
    seen: dict[Path, tuple[int, float]] = {}
    while not stop():
        watch_once(importer, inbox, seen)
        time.sleep(interval)


# ---- the command line ------------------------------------------------------------------------------------
Opener = Callable[[str | None], AbstractContextManager[Services]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], opener: Opener) -> None:
    """Add ``import xml130`` to a CLI; ``opener(database)`` gives the server's services for a database."""
    imports = subparsers.add_parser("import", help="import hospital data formats (the claims XML of QĐ 130/4750)")
    kinds = imports.add_subparsers(dest="import_command", metavar="FORMAT", required=True)
    cmd = kinds.add_parser(
        "xml130",
        help="import claims XML envelopes (GIAMDINHHS, QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT)",
        description="Import claims XML envelopes into FHIR: one visit per transaction, imported whole or not at "
        "all; importing again updates instead of duplicating. Exit code 0: every visit imported; 1: some visit "
        "rejected or a file refused (see --errors); 2: a usage error.",
    )
    cmd.add_argument("--database", help="sqlite:///path.db or postgresql://... (env KETNOI_DATABASE)")
    cmd.add_argument("paths", nargs="*", metavar="FILE", help="envelopes (.xml) or folders of them")
    cmd.add_argument("--errors", type=Path, metavar="FILE", help="write the per-visit, per-field report as CSV")
    cmd.add_argument("--watch", type=Path, metavar="DIR", help="watch an inbox folder and import what is dropped in it")
    cmd.add_argument("--interval", type=float, default=2.0, help="seconds between looks at the inbox (default 2)")
    cmd.add_argument(
        "--organization",
        metavar="Organization/ID",
        help="the facility the files are imported for: it owns what is written, and only its own files "
        "(MACSKCB) are accepted (default: none, the national level)",
    )
    cmd.set_defaults(func=lambda args: run(args, opener))


def run(args: argparse.Namespace, opener: Opener) -> int:
    try:
        if not args.paths and args.watch is None:
            raise UsageError("cần tệp hoặc --watch THƯ_MỤC / give files or --watch DIR")
        files = files_of(args.paths)
        if args.organization is not None and not args.organization.startswith("Organization/"):
            raise UsageError(
                f"--organization cần dạng Organization/ID / --organization takes Organization/ID, "
                f"not {args.organization!r}"
            )
        with opener(args.database) as services:
            importer = Importer(services, RequestContext.operator("import xml130", args.organization))
            # Files named on the command line first, then (with --watch) the inbox until interrupted.
            started = time.perf_counter()
            reports = import_files(importer, files, args.errors) if files or args.watch is None else []
            if reports or args.watch is None:
                print(totals(reports, time.perf_counter() - started))
            if args.watch is not None:
                # Ctrl-C, or SIGTERM from a service manager, ends the watch, not in error: a visit
                # being imported is rolled back whole and its file stays in the inbox.
                signal.signal(signal.SIGTERM, signal.default_int_handler)
                with suppress(KeyboardInterrupt):
                    watch(importer, args.watch, args.interval)
            return exit_code(reports)
    except (UsageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
