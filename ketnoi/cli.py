"""The ``ketnoi`` command: parses arguments and calls the composition root. Nothing else."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ketnoi import config

if TYPE_CHECKING:
    from ketnoi.interactions.services import Services
    from ketnoi.store.base import Store


def _database_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", help="sqlite:///path.db or postgresql://... (env KETNOI_DATABASE)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ketnoi", description="ketnoi FHIR R4 platform")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the FHIR API over HTTP")
    _database_arg(serve)
    serve.add_argument("--host", help="interface to listen on (env KETNOI_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env KETNOI_PORT, default 8080)")
    serve.add_argument(
        "--auth",
        choices=["on", "off"],
        default=None,
        help="on (default; env KETNOI_AUTH): every FHIR request but /fhir/metadata needs a bearer token "
        "(sign-in at /auth/authorize, tokens at /auth/token, docs/security.md); off: an open server for "
        "local experiments, loopback only",
    )
    serve.add_argument("--migrate", action="store_true", help="apply pending schema migrations first")
    serve.add_argument(
        "--oidc-issuer",
        action="append",
        dest="oidc_issuers",
        metavar="URL",
        help="also accept access tokens of this OpenID Connect provider for local accounts (repeat; "
        "https, http only on loopback; env KETNOI_OIDC_ISSUER, comma-separated)",
    )
    serve.set_defaults(func=_serve)

    relay = sub.add_parser(
        "relay",
        help="deliver Subscription rest-hook notifications from the outbox (beside or instead of the "
        "server's own relay: KETNOI_SUBSCRIPTION_RELAY, docs/subscriptions.md)",
    )
    _database_arg(relay)
    relay.set_defaults(func=_relay)

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    _database_arg(migrate)
    migrate.set_defaults(func=_migrate)

    load = sub.add_parser("load", help="bulk-load NDJSON files, Bundles or folders of them")
    _database_arg(load)
    load.add_argument("paths", nargs="+", help=".ndjson / .json files or folders")
    load.add_argument("--batch-size", type=int, default=None, help="resources per database transaction (default 5,000)")
    load.add_argument("--errors", help="write the per-resource error report (NDJSON) to this file")
    load.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that parse, validate and index NDJSON lines while the main one writes "
        "(default: one fewer than the CPUs from 4 CPUs up, else 0: on 2 cores it measured no gain)",
    )
    load.add_argument(
        "--organization",
        metavar="Organization/ID",
        help="the organization the data is loaded for: every version records it as its owner, and "
        "resources another organization wrote are not changed (default: none, the national level)",
    )
    load.add_argument(
        "--owners",
        metavar="FILE",
        help="CSV 'resource,organization' (Type/id,Organization/id per line): the organization each resource "
        "named is loaded for (its owner); the others get --organization. `ketnoi demo generate` writes one",
    )
    load.set_defaults(func=_load)

    reindex = sub.add_parser(
        "reindex", help="rebuild the search index of current resources (resumes an unfinished run of the same scope)"
    )
    _database_arg(reindex)
    reindex.add_argument(
        "--type", action="append", dest="types", metavar="TYPE", help="resource type to reindex (repeat; default all)"
    )
    reindex.add_argument("--batch-size", type=int, default=500, help="resources per database transaction")
    reindex.set_defaults(func=_reindex)

    from ketnoi.security.commands import register as register_security

    register_security(sub, _open_store)
    from ketnoi.security.audit_commands import register as register_audit

    register_audit(sub, _open_store)
    from ketnoi.terminology.commands import register as register_terminology

    register_terminology(sub, _operator_interaction)
    from ketnoi.ig.commands import register as register_ig

    register_ig(sub, _open_store)
    from ketnoi.claims.commands import register as register_claims

    register_claims(sub, _services)
    from ketnoi.mpi.commands import register as register_mpi

    register_mpi(sub, _services)

    try:
        from ketnoi.demo.commands import register as register_demo
    except ImportError:  # the demo package is optional in trimmed installs
        pass
    else:
        register_demo(sub)
    return parser


def _open_store(url: str) -> Store:
    # Imported on use: ketnoi.app pulls in the web stack, which `ketnoi --help` does not need.
    from ketnoi.app import open_store

    return open_store(url)


@contextmanager
def _services(database: str | None) -> Iterator[Services]:
    """The server's services on a migrated database, for a command that writes through them."""
    from ketnoi.app import build_services, check_schema, close_services, open_store

    settings = config.from_env().with_(database=database)
    store = open_store(settings.database)
    try:
        check_schema(store)
        services = build_services(settings, store)
    except BaseException:
        store.close()
        raise
    try:
        yield services
    finally:
        close_services(services)


def _operator_interaction(
    database: str | None, command: str, method: str, path: str, query: list[tuple[str, str]], body: dict[str, Any]
) -> tuple[int, dict[str, Any] | None]:
    """One FHIR interaction through the server's write path as the operator running ``command``
    (for the commands of packages below ``ketnoi.interactions``: ``ketnoi terminology load``)."""
    from ketnoi.app import build_services, check_schema, close_services, open_store
    from ketnoi.interactions.context import RequestContext
    from ketnoi.interactions.request import FhirRequest
    from ketnoi.interactions.router import handle

    settings = config.from_env().with_(database=database)
    store = open_store(settings.database)
    try:
        check_schema(store)
    except BaseException:
        store.close()
        raise
    services = build_services(settings, store)
    try:
        headers = {"content-type": "application/fhir+json", "prefer": "return=representation"}
        request = FhirRequest(method, path, query, headers, body, context=RequestContext.operator(command))
        response = handle(services, request)
        if response.resource is None and response.raw:
            import orjson

            return response.status, orjson.loads(response.raw)
        return response.status, response.resource
    finally:
        close_services(services)


def _settings(args: argparse.Namespace) -> config.Settings:
    return config.from_env().with_(
        database=getattr(args, "database", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def _migrate(args: argparse.Namespace) -> int:
    from ketnoi.app import open_store

    settings = _settings(args)
    store = open_store(settings.database)
    try:
        applied = store.migrate()
        print(
            f"{settings.database}: schema version {store.schema_version()}"
            + (f"; applied: {', '.join(applied)}" if applied else " (up to date)")
        )
    finally:
        store.close()
    return 0


def _load(args: argparse.Namespace) -> int:
    from ketnoi.app import build_services, check_schema, open_store
    from ketnoi.bulk.load import BATCH_SIZE, LoadReport, load_paths
    from ketnoi.bulk.owners import read_owners
    from ketnoi.interactions.organizations import is_reference

    if args.organization is not None and not is_reference(args.organization):
        what = f"--organization takes a reference such as Organization/123, not {args.organization!r}"
        print(f"error: {what}", file=sys.stderr)
        return 2
    try:  # the whole file is read and checked before anything is loaded
        owners = read_owners(args.owners) if args.owners else None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"error: --owners: {exc}", file=sys.stderr)
        return 2
    # A bulk load queues no patient-index linking: a million patients linked one job at a time would
    # outlast the load many times over; `ketnoi mpi dedupe` links a whole database in one pass.
    settings = _settings(args).with_(mpi_link=False)
    store = open_store(settings.database)
    try:
        check_schema(store)
        services = build_services(settings, store)

        def progress(report: LoadReport) -> None:
            done = report.written + report.unchanged
            print(
                f"\r  {done:,} resources ({report.written:,} written, {report.unchanged:,} unchanged, "
                f"{len(report.failures):,} failed)",
                end="",
                file=sys.stderr,
                flush=True,
            )

        workers = args.workers if args.workers is not None else _default_workers()
        report = load_paths(
            services,
            args.paths,
            batch_size=args.batch_size or BATCH_SIZE,
            workers=workers,
            progress=progress if sys.stderr.isatty() else None,
            organization=args.organization,
            owners=owners,
        )
    finally:
        store.close()
    print(file=sys.stderr)
    print(
        f"loaded {report.written:,} resources ({report.unchanged:,} unchanged, {len(report.failures):,} failed) "
        f"in {report.seconds:.1f} s, {report.rate:,.0f}/s"
    )
    for failure in report.failures[:20]:
        print(f"  {failure.source} {failure.what}: {failure.message}", file=sys.stderr)
    if report.dangling:
        print(
            f"warning: {len(report.dangling):,} references point to resources that do not exist, e.g.:", file=sys.stderr
        )
        for failure in report.dangling[:10]:
            print(f"  {failure.what} {failure.message}", file=sys.stderr)
    if args.errors:
        import orjson

        with open(args.errors, "wb") as out:
            for failure in [*report.failures, *report.dangling]:
                out.write(
                    orjson.dumps({"source": failure.source, "resource": failure.what, "error": failure.message}) + b"\n"
                )
    return 1 if report.failures else 0


def _reindex(args: argparse.Namespace) -> int:
    from ketnoi.app import build_services, check_schema, open_store
    from ketnoi.fhir.definitions import resource_types
    from ketnoi.jobs import Job
    from ketnoi.operations.reindex import run_foreground

    unknown = [t for t in args.types or () if t not in resource_types()]
    if unknown:
        print(f"error: unknown resource type(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    settings = _settings(args)
    store = open_store(settings.database)
    try:
        check_schema(store)
        services = build_services(settings, store)
        what = ", ".join(sorted(set(args.types))) if args.types else "all types"

        def start(job: Job, resumed: bool) -> None:
            after = job.progress.get("after")
            where = f" after {after[0]}/{after[1]}" if resumed and after else ""
            print(f"reindex job {job.id} ({what}): {'resuming' + where if resumed else 'starting'}", flush=True)

        def progress(job: Job) -> None:
            p = job.progress
            print(
                f"\r  {p.get('processed', 0):,} reindexed, {p.get('skipped', 0):,} skipped, "
                f"{p.get('failed', 0):,} failed ({job.state})",
                end="",
                file=sys.stderr,
                flush=True,
            )

        job = run_foreground(
            services,
            args.types,
            batch_size=args.batch_size,
            on_start=start,
            on_progress=progress if sys.stderr.isatty() else None,
        )
    finally:
        store.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    p = job.progress
    print(
        f"reindex job {job.id} {job.state}: {p.get('processed', 0):,} resources reindexed, "
        f"{p.get('skipped', 0):,} skipped (changed meanwhile), {p.get('failed', 0):,} failed"
    )
    for issue in p.get("issues", [])[:20]:
        print(f"  {issue}", file=sys.stderr)
    if job.error:
        print(f"error: {job.error}", file=sys.stderr)
    return 0 if job.state == "done" and not p.get("failed") else 1


def _default_workers() -> int:
    cpus = os.cpu_count() or 1
    return cpus - 1 if cpus >= 4 else 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ketnoi.app import create_app
    from ketnoi.security.oidc import check_issuers

    settings = _settings(args).with_(auth=args.auth, oidc_issuers=tuple(args.oidc_issuers or ()) or None)
    check_issuers(settings)  # ConfigError: one line and exit code 2 (main)
    if settings.auth not in ("on", "off"):
        raise config.ConfigError(f"KETNOI_AUTH must be 'on' or 'off', not {settings.auth!r}")
    if settings.auth == "off" and settings.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"error: --auth off serves an open server and only on loopback, not on {settings.host}; "
            "use --auth on / --auth off chỉ phục vụ trên địa chỉ loopback",
            file=sys.stderr,
        )
        return 2
    if settings.auth == "off":
        print("warning: --auth off: anyone who can reach the port can read and change every record", file=sys.stderr)
        if settings.oidc_issuers:
            print("warning: --oidc-issuer has no effect with --auth off (no token is checked)", file=sys.stderr)
    store = _current_store(settings, migrate=args.migrate)
    if store is None:
        return 2
    app = create_app(settings, store)
    print(
        f"ketnoi serving {settings.database}\n  FHIR base: http://{settings.host}:{settings.port}/fhir"
        f"\n  authorization: {settings.auth}"
        + (" (open server on loopback: for local experiments only)" if settings.auth == "off" else "")
        + "".join(f"\n  trusted identity provider: {issuer}" for issuer in settings.oidc_issuers),
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0


def _current_store(settings: config.Settings, *, migrate: bool) -> Store | None:
    """The database, migrated first if asked; None (after one line on stderr) when its schema is behind."""
    from ketnoi.app import SchemaOutdated, check_schema, open_store

    store = open_store(settings.database)
    if migrate:
        store.migrate()
    try:
        check_schema(store)
    except SchemaOutdated as exc:
        print(f"error: {exc}", file=sys.stderr)
        store.close()
        return None
    return store


def _relay(args: argparse.Namespace) -> int:
    """Rest-hook delivery until SIGTERM or SIGINT; any number of relays may run (a lease per subscription)."""
    from ketnoi import subscriptions
    from ketnoi.app import build_services, close_services

    settings = _settings(args)
    store = _current_store(settings, migrate=False)
    if store is None:
        return 2
    services = build_services(settings, store)
    relay = subscriptions.relay_of(services)
    assert relay is not None
    relay.channels = ("rest-hook",)  # websockets belong to the server that holds them
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    relay.start()
    print(f"ketnoi relay: delivering rest-hook notifications of {store.location}", flush=True)
    parent = os.environ.get("KETNOI_RELAY_PARENT")  # set by `ketnoi serve`: its child ends with it
    while not stop.wait(1.0):
        if parent is not None and str(os.getppid()) != parent:
            break
    close_services(services)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
