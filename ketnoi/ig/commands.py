"""``ketnoi ig install|list``: install a FHIR NPM package into a database, list what is there.

``install PACKAGE.tgz`` reads and checks the archive (``ketnoi.ig.npm``) and registers its
conformance resources through the server's write path as the operator (``ketnoi.ig.install``); it
prints one line with the counts, then the ignored resource types. ``list`` prints one line per
package: the shipped ones (available in every database) and the installed ones. Any refusal or
error (a bad archive, a missing dependency, a conflicting resource, an outdated schema) is one line
on stderr and exit code 2, as for the other operators' commands (``ketnoi.security.commands``),
whose plumbing this module shares.
"""

from __future__ import annotations

import argparse
import getpass
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from ketnoi import config
from ketnoi.fhir import packages
from ketnoi.ig.install import installed, when
from ketnoi.security.commands import _command, _group, _out

if TYPE_CHECKING:
    from ketnoi.store.base import Store

    OpenStore = Callable[[str], Store]
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _operator() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"operator:ig-install ({user})"


def _install(args: argparse.Namespace, store: Store) -> int:
    # Imported on use: the composition root loads the whole server, which `ketnoi --help` does not need.
    from ketnoi.app import build_services, stop_services
    from ketnoi.ig.install import install
    from ketnoi.ig.npm import read_package

    package = read_package(args.package)
    services = build_services(config.from_env().with_(database=args.database), store)
    try:
        report = install(services, package, by=_operator(), allow_missing=tuple(args.allow_missing or ()))
    finally:
        stop_services(services)  # the store itself is closed by the caller
    state = "already installed, " if report.already_installed and not report.written else ""
    _out(
        f"{report.package}: {state}{len(report.written)} resources written, {len(report.unchanged)} unchanged, "
        f"{len(report.ignored)} ignored"
    )
    if report.ignored:
        kinds = Counter(item.partition(" ")[0] for item in report.ignored)
        _out("  ignored (not a registered type): " + ", ".join(f"{n} {t}" for t, n in sorted(kinds.items())))
    if package.ignored:
        _out(f"  ignored: {len(package.ignored)} files not directly under package/ or not .json")
    if report.missing_allowed:
        _out(f"  missing dependencies allowed and recorded: {', '.join(report.missing_allowed)}")
    return 0


def _list(args: argparse.Namespace, store: Store) -> int:
    for shipped in packages.shipped():
        _out(
            f"{shipped.label}  shipped (available in every database)  {len(shipped.resources)} resources"
            + (f"  {shipped.canonical}" if shipped.canonical else "")
        )
    for record in installed(store):
        missing = f"  missing: {', '.join(record.missing_dependencies)}" if record.missing_dependencies else ""
        _out(
            f"{record.label}  installed {when(record.installed_at)} by {record.installed_by}  "
            f"{record.resources} resources" + (f"  {record.canonical}" if record.canonical else "") + missing
        )
    return 0


def register(sub: SubParsers, open_store: OpenStore) -> None:
    """Add ``ig install`` and ``ig list`` to the ``ketnoi`` subcommands."""
    ig = _group(sub, "ig", "FHIR implementation-guide packages (NPM .tgz)")
    add = _command(ig, "install", "register a package's conformance resources in the database", _install, open_store)
    add.add_argument("package", metavar="PACKAGE.tgz", help="a FHIR NPM package archive")
    add.add_argument(
        "--allow-missing-dependency",
        action="append",
        dest="allow_missing",
        metavar="NAME",
        help="install although the dependency NAME is neither shipped nor installed (repeat; recorded)",
    )
    _command(ig, "list", "the shipped and installed packages, one line each", _list, open_store)
