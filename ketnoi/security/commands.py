"""``ketnoi users|clients|keys|token``: the operators' commands for accounts, OAuth clients and keys.

:func:`register` adds them to the ``ketnoi`` parser; the function that opens a store is passed
in by ``ketnoi.cli``, so this module never imports the composition root (``ketnoi.app``) and
knows no storage backend. Every command takes ``--database`` (else ``KETNOI_DATABASE``), refuses
a database whose schema is behind this ketnoi, reports any error as one line on stderr with exit
code 2 (no traceback), and closes the store. Passwords are read with ``getpass`` or, with
``--password-stdin``, from the first line of stdin, never from the command line: argv is visible
to every user of the machine (``ps``) and lands in shell history.

Tokens from ``ketnoi token issue`` (for operators and tests) are what the server verifies:

* audience: the FHIR base, ``KETNOI_BASE_URL``, else ``http://{KETNOI_HOST or 127.0.0.1}:{KETNOI_PORT
  or 8080}/fhir`` (:func:`fhir_base`), unless ``--audience`` names another;
* issuer: the audience with its trailing ``/fhir`` replaced by ``/auth`` (``/auth`` appended when it
  does not end in ``/fhir``) (:func:`issuer_for`), unless ``--issuer`` names another (this database
  acting as the OpenID provider of another server, ``ketnoi.security.oidc``);
* scope: the requested scopes narrowed by what the user's role (``accounts.ROLE_SCOPES``) or the
  client's registration allows; a ``patient/`` scope only with a patient launch context.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ketnoi import config
from ketnoi.auth.scopes import ScopeSet, parse_scopes
from ketnoi.auth.totp import provisioning_uri
from ketnoi.security.accounts import ROLE_SCOPES, ROLES, Accounts, User
from ketnoi.security.errors import Refused
from ketnoi.security.urls import fhir_base, issuer_for
from ketnoi.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from ketnoi.store.base import Store

    OpenStore = Callable[[str], Store]
    Handler = Callable[[argparse.Namespace, Store], int]
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

# Clients, KeyStore and the token module are imported inside the commands that use them: they load
# joserfc and cryptography (0.1-0.2 s), which `ketnoi --help` and the other commands do not need.

CLI_CLIENT_ID = "ketnoi-cli"  # the client_id of user tokens made here, where no OAuth client is involved


# ---- the audience and issuer rule (the server verifies exactly these) -----------------------------


# ---- plumbing -------------------------------------------------------------------------------------


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _fail(exc: BaseException) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the error says
    sys.stderr.write(f"error: {message}\n")
    return 2


def _check_schema(store: Store) -> None:
    have = store.schema_version()
    if have < SCHEMA_VERSION:
        raise Refused(
            f"The database schema is at version {have}, this ketnoi needs {SCHEMA_VERSION}: run `ketnoi migrate`.",
            f"Lược đồ cơ sở dữ liệu ở phiên bản {have}, ketnoi này cần {SCHEMA_VERSION}: hãy chạy `ketnoi migrate`.",
        )


def _run(handler: Handler, open_store: OpenStore, args: argparse.Namespace) -> int:
    try:
        store = open_store(config.from_env().with_(database=args.database).database)
    except Exception as exc:  # the edge: a bad URL or an unreachable server is one line, not a traceback
        return _fail(exc)
    try:
        _check_schema(store)
        return handler(args, store)
    except Exception as exc:
        return _fail(exc)
    finally:
        store.close()


def _command(sub: SubParsers, name: str, help: str, handler: Handler, open_store: OpenStore) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help)
    parser.add_argument("--database", help="sqlite:///path.db or postgresql://... (env KETNOI_DATABASE)")
    parser.set_defaults(func=functools.partial(_run, handler, open_store))
    return parser


def _group(sub: SubParsers, name: str, help: str) -> SubParsers:
    parser = sub.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        _out("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        # Only the line break is removed: spaces at either end may belong to a passphrase.
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise Refused("No password on the first line of stdin.", "Không có mật khẩu ở dòng đầu của stdin.")
        return password
    password = getpass.getpass("Password / Mật khẩu: ")
    if getpass.getpass("Again / Nhập lại: ") != password:
        raise Refused("The two passwords differ.", "Hai mật khẩu không khớp.")
    return password


# ---- users ---------------------------------------------------------------------------------------


def _users_add(args: argparse.Namespace, store: Store) -> int:
    password = _read_password(args)
    user, secret = Accounts(store).add(
        args.username,
        password,
        args.role,
        organization=args.organization,
        patient=args.patient,
        fhir_user=args.fhir_user,
        now=time.time(),
        totp=True if args.totp else None,
    )
    link = user.organization or user.patient or "-"
    _out(f"added user / đã thêm người dùng: {user.username} ({user.role}, {link}, fhirUser {user.fhir_user or '-'})")
    if user.role == "admin" and user.organization:
        _out(
            "note: an admin is a national administrator and acts for no organization; a facility's "
            "administrator is --role facility-admin / quản trị viên cơ sở: --role facility-admin"
        )
    if secret is not None:
        _show_totp(user.username, secret)
    return 0


def _show_totp(username: str, secret: str) -> None:
    _out("TOTP secret, shown once: add it to an authenticator app now / chỉ hiện một lần, hãy thêm vào ứng dụng:")
    _out(f"  {secret}")
    _out(f"  {provisioning_uri(secret, username)}")


def _state(user: User, now: float) -> str:
    if user.disabled:
        return "disabled"
    return f"locked {user.locked_until - now:.0f}s" if user.locked_until > now else "active"


def _user_row(user: User, now: float) -> list[str]:
    link = user.organization or user.patient or "-"
    totp = "yes" if user.totp_secret else "no"
    return [user.username, user.role, link, user.fhir_user or "-", totp, _state(user, now), _when(user.created)]


def _users_list(args: argparse.Namespace, store: Store) -> int:
    now = time.time()
    rows = [_user_row(user, now) for user in Accounts(store).list()]
    _table(["USERNAME", "ROLE", "LINK", "FHIR_USER", "TOTP", "STATE", "CREATED"], rows)
    return 0


def _users_disable(args: argparse.Namespace, store: Store) -> int:
    user = Accounts(store).disable(args.username, now=time.time())
    _out(f"disabled user / đã vô hiệu hóa người dùng: {user.username}")
    return 0


def _users_enable(args: argparse.Namespace, store: Store) -> int:
    user = Accounts(store).enable(args.username, now=time.time())
    _out(f"enabled user / đã kích hoạt lại người dùng: {user.username}")
    return 0


def _users_reset_password(args: argparse.Namespace, store: Store) -> int:
    user = Accounts(store).reset_password(args.username, _read_password(args), time.time())
    _out(f"new password set, lock-out cleared / đã đặt mật khẩu mới: {user.username}")
    return 0


def _users_reset_totp(args: argparse.Namespace, store: Store) -> int:
    secret = Accounts(store).set_totp(args.username, now=time.time())
    _show_totp(args.username.casefold(), secret)
    return 0


def _register_users(sub: SubParsers, open_store: OpenStore) -> None:
    users = _group(sub, "users", "user accounts (sign-in for people)")
    add = _command(users, "add", "add a user account", _users_add, open_store)
    add.add_argument("--username", required=True, help="1-64 characters: a-z 0-9 . _ -")
    add.add_argument("--role", required=True, choices=ROLES)
    link = add.add_mutually_exclusive_group()
    link.add_argument(
        "--organization",
        metavar="Organization/ID",
        help="required for facility-admin, clinician and provincial (an admin is national: its tokens carry none)",
    )
    link.add_argument("--patient", metavar="Patient/ID", help="required for patient")
    add.add_argument("--fhir-user", metavar="TYPE/ID", help="the fhirUser of the tokens (default: --patient)")
    add.add_argument("--totp", action="store_true", help="require a TOTP code at sign-in (always on for admin)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    _command(users, "list", "list user accounts", _users_list, open_store)
    for name, help, handler in (
        ("disable", "disable a user account", _users_disable),
        ("enable", "enable a disabled user account", _users_enable),
        ("reset-totp", "give a user a new TOTP secret (a lost phone)", _users_reset_totp),
    ):
        _command(users, name, help, handler, open_store).add_argument("--username", required=True)
    reset = _command(
        users, "reset-password", "set a new password and clear the lock-out", _users_reset_password, open_store
    )
    reset.add_argument("--username", required=True)
    reset.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")


# ---- clients -------------------------------------------------------------------------------------


def _read_jwks(path: str) -> Any:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _clients_add(args: argparse.Namespace, store: Store) -> int:
    from ketnoi.security.clients import Clients

    kind = "backend" if args.jwks or args.jwks_url else "confidential" if args.secret else "public"
    client, secret = Clients(store).add(
        args.name,
        args.scope,
        kind=kind,
        redirect_uris=args.redirect_uri,
        jwks=_read_jwks(args.jwks) if args.jwks else None,
        jwks_url=args.jwks_url,
        organization=args.organization,
        now=time.time(),
    )
    _out(f"client_id: {client.client_id}")
    if secret is not None:
        _out(f"client_secret: {secret}")
        _out("The secret is shown once: store it now / Mật khẩu ứng dụng chỉ hiện một lần: hãy lưu ngay.")
    return 0


def _clients_list(args: argparse.Namespace, store: Store) -> int:
    from ketnoi.security.clients import Clients

    rows = [
        [c.client_id, c.kind, "revoked" if c.revoked else "active", _when(c.created), c.name, c.scope]
        for c in Clients(store).list()
    ]
    _table(["CLIENT_ID", "KIND", "STATE", "CREATED", "NAME", "SCOPE"], rows)
    return 0


def _clients_revoke(args: argparse.Namespace, store: Store) -> int:
    from ketnoi.security.clients import Clients

    client = Clients(store).revoke(args.client_id, now=time.time())
    _out(f"revoked client / đã thu hồi ứng dụng: {client.client_id} ({client.name})")
    return 0


def _register_clients(sub: SubParsers, open_store: OpenStore) -> None:
    clients = _group(sub, "clients", "OAuth clients (apps and backend services)")
    add = _command(clients, "add", "register a client", _clients_add, open_store)
    add.add_argument("--name", required=True)
    add.add_argument("--scope", required=True, help='the scopes it may be granted, e.g. "system/*.rs"')
    how = add.add_mutually_exclusive_group(required=True)
    how.add_argument("--jwks", metavar="FILE", help="backend service: its public JWK Set (JSON file)")
    how.add_argument("--jwks-url", metavar="URL", help="backend service: the https URL of its JWK Set")
    how.add_argument("--secret", action="store_true", help="confidential app: make a client secret")
    how.add_argument("--public", action="store_true", help="public app (browser, phone): PKCE, no secret")
    add.add_argument("--redirect-uri", action="append", default=[], metavar="URI", help="exact redirect URI (repeat)")
    add.add_argument(
        "--organization",
        metavar="Organization/ID",
        help="backend or confidential client: the organization its client_credentials tokens act for "
        "(recorded on what it writes; it may change only that organization's records)",
    )
    _command(clients, "list", "list clients", _clients_list, open_store)
    revoke = _command(clients, "revoke", "revoke a client", _clients_revoke, open_store)
    revoke.add_argument("--client-id", required=True)


# ---- keys ----------------------------------------------------------------------------------------


def _keys_rotate(args: argparse.Namespace, store: Store) -> int:
    from ketnoi.security.keystore import KeyStore

    keys = KeyStore(store)
    kid = keys.rotate(time.time(), alg=args.alg)
    _out(f"new signing key / khóa ký mới: {kid} ({args.alg}); earlier keys stay published until their tokens expire")
    return 0


def _keys_list(args: argparse.Namespace, store: Store) -> int:
    from ketnoi.security.keystore import KeyStore

    ring = KeyStore(store).ring(time.time())
    rows = [[k.kid, k.alg, _when(k.created_at), _when(k.retire_after)] for k in ring.all_keys()]
    _table(["KID", "ALG", "CREATED", "RETIRE_AFTER"], rows)
    return 0


def _register_keys(sub: SubParsers, open_store: OpenStore) -> None:
    keys = _group(sub, "keys", "the server's token signing keys")
    rotate = _command(keys, "rotate", "make a new signing key (old ones stay published)", _keys_rotate, open_store)
    rotate.add_argument("--alg", choices=["ES256", "RS256"], default="ES256")
    _command(keys, "list", "list signing keys (the first is made on first use)", _keys_list, open_store)


# ---- token ---------------------------------------------------------------------------------------


def _user_grant(store: Store, username: str) -> tuple[str, str, ScopeSet, dict[str, str]]:
    user = Accounts(store).get(username)
    if user is None or user.disabled:
        raise Refused(f"No active user {username!r}.", f"Không có người dùng {username!r} đang hoạt động.")
    allowed = parse_scopes(ROLE_SCOPES[user.role])
    if user.role != "patient":
        # Staff take patient/ scopes only with a patient chosen at launch; the CLI has no launch.
        allowed = ScopeSet(tuple(s for s in allowed.clinical if s.context != "patient"), allowed.other)
    return user.username, CLI_CLIENT_ID, allowed, user.context_claims()


def _client_grant(store: Store, client_id: str) -> tuple[str, str, ScopeSet, dict[str, str]]:
    from ketnoi.security.clients import Clients

    client = Clients(store).get(client_id)
    if client is None or client.revoked:
        raise Refused(f"No active client {client_id!r}.", f"Không có ứng dụng {client_id!r} đang hoạt động.")
    extra = {"organization": client.organization} if client.organization else {}
    return client.client_id, client.client_id, parse_scopes(client.scope), extra


def _granted(requested_text: str, allowed: ScopeSet, extra: dict[str, str]) -> ScopeSet:
    requested = parse_scopes(requested_text)
    if requested.invalid:
        bad = ", ".join(requested.invalid)
        raise Refused(f"Invalid scopes: {bad}.", f"Phạm vi (scope) không hợp lệ: {bad}.")
    granted = requested.narrow(allowed)
    if not granted.clinical and not granted.other:
        raise Refused("None of the requested scopes is allowed.", "Không phạm vi nào được yêu cầu được phép.")
    if "patient" in granted.contexts() and "patient" not in extra:
        # A patient/ scope means "this patient's compartment": without a patient it means nothing.
        raise Refused("patient/ scopes need a patient user.", "Phạm vi patient/ cần người dùng là bệnh nhân.")
    return granted


def _token_issue(args: argparse.Namespace, store: Store) -> int:
    from ketnoi.auth.tokens import MAX_LIFETIME, issue_access_token
    from ketnoi.security.keystore import KeyStore

    if not 0 < args.lifetime <= MAX_LIFETIME:
        raise Refused(
            f"The lifetime must be 1 to {MAX_LIFETIME} seconds.", f"Thời hạn phải từ 1 đến {MAX_LIFETIME} giây."
        )
    now = time.time()
    grant = _user_grant(store, args.user) if args.user else _client_grant(store, args.client)
    subject, client_id, allowed, extra = grant
    granted = _granted(args.scope, allowed, extra)
    audience = (args.audience or fhir_base(config.from_env())).rstrip("/")
    token = issue_access_token(
        KeyStore(store).ring(now),
        issuer=args.issuer or issuer_for(audience),
        audience=audience,
        subject=subject,
        client_id=client_id,
        scope=granted.text(),
        lifetime=args.lifetime,
        now=now,
        extra=extra,
    )
    _out(token)
    return 0


def _register_token(sub: SubParsers, open_store: OpenStore) -> None:
    token = _group(sub, "token", "access tokens for operators and tests")
    issue = _command(token, "issue", "print a short-lived access token", _token_issue, open_store)
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="USERNAME")
    who.add_argument("--client", metavar="CLIENT_ID")
    issue.add_argument("--scope", required=True, help='e.g. "user/Patient.rs"')
    issue.add_argument("--lifetime", type=int, default=300, help="seconds (default 300, at most 3600)")
    issue.add_argument("--audience", metavar="URL", help="the FHIR base (default: KETNOI_BASE_URL or host and port)")
    issue.add_argument(
        "--issuer",
        metavar="URL",
        help="the iss claim (default: the audience's /auth): when this database acts as another server's "
        "OpenID provider, its own issuer URL",
    )


def register(sub: SubParsers, open_store: OpenStore) -> None:
    """Add ``users``, ``clients``, ``keys`` and ``token`` to the ``ketnoi`` subcommands."""
    _register_users(sub, open_store)
    _register_clients(sub, open_store)
    _register_keys(sub, open_store)
    _register_token(sub, open_store)
