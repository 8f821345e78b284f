"""``ketnoi terminology load icd10 FILE``: store the operator's ICD-10 CSV as one CodeSystem.

The CSV is read and checked whole first (``ketnoi.terminology.icd10``): any problem is one line on
stderr naming the CSV line, exit code 2, and the database is not opened. The CodeSystem is then
written through the server's own write path as the operator (``RequestContext.operator("terminology
load")``: validation, search index, audit trail) by a conditional update on its ``url``, so a second
load replaces the first (a new version of the same resource) instead of adding a twin.

This package sits below ``ketnoi.interactions`` in the layers (pyproject.toml), so it cannot build
the services or call the router itself: ``ketnoi.cli`` (the edge) hands :func:`register` the
function that runs one FHIR interaction as the operator (:data:`Interact`). Any other failure (a bad
database URL, an outdated schema, a refused write) is one line and exit code 2 as well.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ketnoi.terminology.icd10 import ICD10_VN_URL, Icd10Error, code_system, read_csv

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

# interact(database or None, command, method, path, query, body) → (status, response resource)
Interact = Callable[
    [str | None, str, str, str, list[tuple[str, str]], dict[str, Any]], tuple[int, dict[str, Any] | None]
]
COMMAND = "terminology load"


def _fail(message: str) -> int:
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")  # one line, whatever it says
    return 2


def _load_icd10(args: argparse.Namespace, interact: Interact) -> int:
    try:
        rows = read_csv(args.file)
    except (Icd10Error, OSError) as exc:
        return _fail(str(exc))
    resource = code_system(rows, args.version or time.strftime("%Y-%m-%d"), args.url)
    try:
        status, answer = interact(args.database, COMMAND, "PUT", "CodeSystem", [("url", args.url)], resource)
    except Exception as exc:  # the edge: a bad URL or an unreachable database is one line, not a traceback
        return _fail(str(exc) or type(exc).__name__)
    if status >= 300:
        issues = (answer or {}).get("issue") or [{}]
        return _fail(f"the CodeSystem was refused ({status}): {issues[0].get('diagnostics', '')}")
    stored = answer or {}
    what = "created" if status == 201 else "replaced"
    sys.stdout.write(
        f"{what} CodeSystem/{stored.get('id')} ({args.url}, version {resource['version']}): {len(rows):,} codes\n"
    )
    return 0


def register(sub: SubParsers, interact: Interact) -> None:
    """Add ``terminology load icd10`` to the ``ketnoi`` subcommands."""
    group = sub.add_parser("terminology", help="code systems", description="code systems")
    commands = group.add_subparsers(dest="terminology_command", metavar="COMMAND", required=True)
    load = commands.add_parser("load", help="load a code system from a file", description="load a code system")
    kinds = load.add_subparsers(dest="terminology_kind", metavar="KIND", required=True)
    icd10 = kinds.add_parser(
        "icd10",
        help="the Ministry of Health's ICD-10 from a CSV: code,title_vi,title_en,parent (docs/terminology.md)",
        description="Store ICD-10 from a UTF-8 CSV with the header code,title_vi,title_en,parent as one "
        "CodeSystem, replacing an earlier load of the same url.",
    )
    icd10.add_argument("file", help="the CSV file")
    icd10.add_argument("--database", help="sqlite:///path.db or postgresql://... (env KETNOI_DATABASE)")
    icd10.add_argument("--url", default=ICD10_VN_URL, help=f"the CodeSystem url (default {ICD10_VN_URL})")
    icd10.add_argument("--version", help="the CodeSystem version (default: today, YYYY-MM-DD)")
    icd10.set_defaults(func=lambda args: _load_icd10(args, interact))
