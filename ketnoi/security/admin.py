"""Administration for the console's operators' pages (ADR 0027): what ``ketnoi users|clients`` does on the
server machine, for a national administrator signed in to the browser.

Every function takes the caller's :class:`RequestContext` and refuses (:class:`NotAllowed`, 403) unless
the caller is a national administrator: role ``admin`` from a verified token, or anyone on a server run
with ``--auth off`` (ADR 0026: the console then runs open, as the API does). The operator at the command
line holds the database credentials and needs no such check; a browser does.

Every change appends an AuditEvent to the hash-chained log (ADR 0013) in the change's own transaction:
a change is never unrecorded, and an event never describes a change that rolled back. A refused attempt
(not an administrator, or a value the accounts or clients refuse) is recorded too, in a transaction of
its own. Shaped after DICOM's Security Alert (110113), subtype 110136 Security Roles Changed (an account
or a client created: who may do what) or 110137 User Security Attributes Changed (disabled, enabled,
password, TOTP, revoked), with a ketnoi code naming the action; the account or client is the entity and
the administrator the agent. Secrets (passwords, TOTP secrets, client secrets) never enter an event.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ketnoi import __version__
from ketnoi.auth.passwords import check_password_policy, generate_password
from ketnoi.fhir import resource as res
from ketnoi.interactions.audit_events import DCM, agents
from ketnoi.interactions.context import RequestContext
from ketnoi.jobs.runner import Job
from ketnoi.security.accounts import ROLES, AccountError, Accounts, User, normalize_username
from ketnoi.security.clients import Client, ClientError, Clients
from ketnoi.security.errors import Refused
from ketnoi.store.auditlog import AuditEntry

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from ketnoi.store.base import Session, Store

ACTION: Final = "https://fhir.ketnoi.vn/CodeSystem/admin-action"  # users-add, clients-revoke, ...
USER: Final = "https://fhir.ketnoi.vn/sid/user"  # an account's user name
CLIENT: Final = "https://fhir.ketnoi.vn/sid/client"  # an OAuth client_id
_ALERT = {"system": DCM, "code": "110113", "display": "Security Alert"}
_ROLES_CHANGED = {"system": DCM, "code": "110136", "display": "Security Roles Changed"}
_ATTRIBUTES_CHANGED = {"system": DCM, "code": "110137", "display": "User Security Attributes Changed"}
_SYSTEM_OBJECT = {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"}
_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
#: What an administrator looked at (read or listed): recorded like a FHIR read, each a ketnoi action code.
READS: Final = {"users-list": "users", "clients-list": "clients", "jobs-list": "jobs", "server-status": "server"}
#: action → (DICOM subtype, AuditEvent.action): creating grants rights, the rest changes attributes.
ACTIONS: Final = {
    "users-add": (_ROLES_CHANGED, "C"),
    "users-disable": (_ATTRIBUTES_CHANGED, "U"),
    "users-enable": (_ATTRIBUTES_CHANGED, "U"),
    "users-reset-password": (_ATTRIBUTES_CHANGED, "U"),
    "users-reset-totp": (_ATTRIBUTES_CHANGED, "U"),
    "clients-add": (_ROLES_CHANGED, "C"),
    "clients-revoke": (_ATTRIBUTES_CHANGED, "U"),
    # A user's changes to their own account (ketnoi.security.own_account, ADR 0027 decision 6).
    "account-password": (_ATTRIBUTES_CHANGED, "U"),
    "account-totp": (_ATTRIBUTES_CHANGED, "U"),
    "account-totp-off": (_ATTRIBUTES_CHANGED, "U"),
}
JOB_PAGE: Final = 20


class NotAllowed(Refused):
    """The caller is not a national administrator (HTTP 403)."""

    status: Final = 403


class FieldRefused(Refused):
    """A value the accounts or clients refused, with the form field it concerns."""

    def __init__(self, refused: Refused, field: str) -> None:
        super().__init__(refused.en, refused.vi)
        self.field = field


@dataclass(frozen=True, slots=True)
class NewUser:
    """A new account's answer: what is shown once and never again (nor stored: the password's hash is)."""

    user: User
    password: str | None  # the generated password; None when the administrator typed one
    totp: str | None  # the TOTP secret, when the account has a second factor


@dataclass(frozen=True, slots=True)
class ServerFacts:
    version: str
    backend: str  # sqlite | postgresql
    schema: int
    auth: str  # on | off
    public: str  # the public FHIR base
    database_bytes: int | None  # SQLite's file size; None where it is not cheap to know
    jobs: dict[str, int]  # by state
    audit_records: int
    last_checkpoint: float | None  # epoch s of the newest signed checkpoint


class Admin:
    """The administrative actions over ``store``, as the caller whose context each one is given.

    ``open_access``: the server runs with ``--auth off``; ``base``: its public FHIR base (the audit
    events' source); ``hasher``: the Argon2id parameters (tests pass cheap ones)."""

    def __init__(self, store: Store, *, open_access: bool, base: str, hasher: PasswordHasher | None = None) -> None:
        self._store = store
        self._open = open_access
        self._base = base
        self._accounts = Accounts(store) if hasher is None else Accounts(store, hasher=hasher)
        self._clients = Clients(store) if hasher is None else Clients(store, hasher=hasher)

    # ---- who may ----------------------------------------------------------------------------------
    def allowed(self, context: RequestContext) -> bool:
        """A national administrator: a verified token's ``admin`` role (a facility's administrator is
        not one: its reach is its facility's records, not the server's accounts)."""
        return self._open or (context.authenticated and "admin" in context.roles)

    def _check(self, context: RequestContext, action: str, target: str = "") -> None:
        """Refuse (and record the attempt) unless the caller is an administrator; a look (``READS``) is
        recorded when allowed too: every page of the operators' console leaves a trace."""
        if self.allowed(context):
            if action in READS:
                self._record_read(context, action, "0", None)
            return
        refused = NotAllowed(
            "Only a national administrator may manage the server.",
            "Chỉ quản trị viên quốc gia mới được quản lý máy chủ.",
        )
        if action in READS:
            self._record_read(context, action, "4", refused.en)
        else:
            self._record_refusal(context, action, target, refused)
        raise refused

    # ---- reading ------------------------------------------------------------------------------------
    def users(self, context: RequestContext) -> list[User]:
        self._check(context, "users-list")
        return self._accounts.list()

    def clients(self, context: RequestContext) -> list[Client]:
        self._check(context, "clients-list")
        return self._clients.list()

    def jobs(self, context: RequestContext, before: int | None = None, limit: int = JOB_PAGE) -> list[Job]:
        """Jobs of every kind, newest first; ``before``: the id the previous page ended at."""
        self._check(context, "jobs-list")
        with self._store.session(write=False) as session:
            return [Job.of(record) for record in session.recent_jobs(before, limit)]

    def facts(self, context: RequestContext, database: str, auth: str) -> ServerFacts:
        """The server's state for the status page (``database``: the configured URL, read for its kind
        and, for SQLite, its file's size; never shown, it may hold a password)."""
        self._check(context, "server-status")
        with self._store.session(write=False) as session:
            jobs = session.job_counts()
            head, _ = session.audit_head()
            checkpoint = session.last_checkpoint()
        backend = "sqlite" if database.startswith("sqlite") else "postgresql"
        return ServerFacts(
            __version__, backend, self._store.schema_version(), auth, self._base, _sqlite_bytes(database), jobs,
            head, checkpoint.recorded if checkpoint is not None else None,
        )  # fmt: skip

    # ---- accounts -----------------------------------------------------------------------------------
    def add_user(
        self,
        context: RequestContext,
        username: str,
        role: str,
        *,
        password: str | None,
        organization: str | None = None,
        patient: str | None = None,
        totp: bool | None = None,
        now: float | None = None,
    ) -> NewUser:
        """Create an account; ``password`` None: generate one (returned, to be shown once)."""
        self._check(context, "users-add", username)
        generated = generate_password() if password is None else None
        try:
            name = self._checked_new(username, role, password or generated or "")
            user, secret = self._accounts.add(
                name, password or generated or "", role, organization=organization, patient=patient,
                now=now or time.time(), totp=totp, audit=self._recorder(context, "users-add", _user_detail),
            )  # fmt: skip
        except Refused as exc:  # the checks' FieldRefused, or the accounts' own (the links: organization)
            raise self._refused(context, "users-add", username, exc, "organization") from exc
        return NewUser(user, generated, secret)

    def _checked_new(self, username: str, role: str, password: str) -> str:
        """The fields checked one by one, so that a refusal names its field (the accounts check them all
        again, and the name's insert-if-absent stays the check that two adds cannot both pass)."""
        try:
            name = normalize_username(username)
        except AccountError as exc:
            raise FieldRefused(exc, "username") from exc
        if self._accounts.get(name) is not None:
            taken = AccountError(f"The user name {name!r} is already taken.", f"Tên đăng nhập {name!r} đã được dùng.")
            raise FieldRefused(taken, "username")
        if role not in ROLES:
            unknown = AccountError(f"Unknown role {role!r}.", f"Vai trò {role!r} không tồn tại.")
            raise FieldRefused(unknown, "role")
        problems = check_password_policy(password, name)
        if problems:
            weak = AccountError(" ".join(en for en, _ in problems), " ".join(vi for _, vi in problems))
            raise FieldRefused(weak, "password")
        return name

    def disable_user(self, context: RequestContext, username: str) -> User:
        return self._change_user(context, "users-disable", username, self._accounts.disable)

    def enable_user(self, context: RequestContext, username: str) -> User:
        return self._change_user(context, "users-enable", username, self._accounts.enable)

    def _change_user(self, context: RequestContext, action: str, username: str, change: Callable[..., User]) -> User:
        self._check(context, action, username)
        try:
            return change(username, now=time.time(), audit=self._recorder(context, action, _user_detail))
        except AccountError as exc:
            raise self._refused(context, action, username, exc, "username") from exc

    def reset_password(self, context: RequestContext, username: str) -> str:
        """A new generated password (returned, to be shown once); the lock-out is cleared."""
        self._check(context, "users-reset-password", username)
        password = generate_password()
        try:
            self._accounts.reset_password(
                username, password, time.time(), audit=self._recorder(context, "users-reset-password", _user_detail)
            )
        except AccountError as exc:
            raise self._refused(context, "users-reset-password", username, exc, "username") from exc
        return password

    def reset_totp(self, context: RequestContext, username: str) -> str:
        """A new TOTP secret (returned, to be shown once), replacing the old one (a lost phone)."""
        self._check(context, "users-reset-totp", username)
        try:
            return self._accounts.set_totp(
                username, now=time.time(), audit=self._recorder(context, "users-reset-totp", _user_detail)
            )
        except AccountError as exc:
            raise self._refused(context, "users-reset-totp", username, exc, "username") from exc

    # ---- clients ------------------------------------------------------------------------------------
    def add_client(
        self,
        context: RequestContext,
        name: str,
        scope: str,
        *,
        kind: str,
        redirect_uris: list[str],
        jwks: Any = None,
        organization: str | None = None,
    ) -> tuple[Client, str | None]:
        """Register a client; a confidential one's secret is returned, to be shown once."""
        self._check(context, "clients-add", name)
        try:
            return self._clients.add(
                name, scope, kind=kind, redirect_uris=redirect_uris, jwks=jwks, organization=organization,
                now=time.time(), audit=self._recorder(context, "clients-add", _client_detail),
            )  # fmt: skip
        except ClientError as exc:
            raise self._refused(context, "clients-add", name, exc, _client_field(exc)) from exc

    def revoke_client(self, context: RequestContext, client_id: str) -> Client:
        self._check(context, "clients-revoke", client_id)
        try:
            return self._clients.revoke(
                client_id, now=time.time(), audit=self._recorder(context, "clients-revoke", _client_detail)
            )
        except ClientError as exc:
            raise self._refused(context, "clients-revoke", client_id, exc, "client_id") from exc

    # ---- the audit trail ----------------------------------------------------------------------------
    def _recorder(
        self, context: RequestContext, action: str, detail: Callable[[Any], tuple[str, dict[str, str]]]
    ) -> Callable[[Session, Any], None]:
        """The hook the accounts and clients call inside the change's transaction."""

        def record(session: Session, changed: User | Client) -> None:
            target, facts = detail(changed)
            body = event(context, action, target, facts, "0", None, time.time(), self._base)
            session.audit_append([_entry(context, body)])

        return record

    def _refused(self, context: RequestContext, action: str, target: str, exc: Refused, field: str) -> FieldRefused:
        """Record the refused change, and name the form field it concerns."""
        refused = FieldRefused(exc, exc.field if isinstance(exc, FieldRefused) else field)
        self._record_refusal(context, action, target, refused)
        return refused

    def _record_read(self, context: RequestContext, action: str, outcome: str, reason: str | None) -> None:
        """A look at accounts, clients, jobs or the server's state: committed before the page is answered,
        without a disk flush of its own (as read events are, ADR 0016)."""
        body = read_event(context, action, outcome, reason, time.time(), self._base)
        with self._store.session(write=True, durable=False) as session:
            session.audit_append([_entry(context, body)])

    def _record_refusal(self, context: RequestContext, action: str, target: str, refused: Refused) -> None:
        body = event(context, action, target[:200], {}, "4", refused.en, time.time(), self._base)
        with self._store.session(write=True) as session:
            session.audit_append([_entry(context, body)])


def event(
    context: RequestContext,
    action: str,
    target: str,
    facts: dict[str, str],
    outcome: str,
    reason: str | None,
    recorded: float,
    base: str,
) -> dict[str, Any]:
    """The AuditEvent of one administrative action on ``target`` (a user name or a client_id, or for a
    refused add the name asked for); ``facts``: what the entity's details say (role, kind: no secret)."""
    subtype, code = ACTIONS[action]
    system = CLIENT if action.startswith("clients") else USER
    entity: dict[str, Any] = {"what": {"identifier": {"system": system, "value": target}}, "type": _SYSTEM_OBJECT}
    if facts:
        entity["detail"] = [{"type": key, "valueString": value} for key, value in sorted(facts.items())]
    body: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _ALERT,
        "subtype": [subtype, {"system": ACTION, "code": action}],
        "action": code,
        "recorded": res.instant(recorded),
        "outcome": outcome,
    }
    if reason:
        body["outcomeDesc"] = reason[:500]
    body["agent"] = agents(context, code, base)
    body["source"] = {"site": base, "observer": {"display": "ketnoi"}}
    body["entity"] = [entity]
    return body


def read_event(
    context: RequestContext, action: str, outcome: str, reason: str | None, recorded: float, base: str
) -> dict[str, Any]:
    """The AuditEvent of an administrator's look at ``READS[action]`` (no entity detail: a list is read)."""
    body: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _REST,
        "subtype": [{"system": ACTION, "code": action}],
        "action": "R",
        "recorded": res.instant(recorded),
        "outcome": outcome,
    }
    if reason:
        body["outcomeDesc"] = reason[:500]
    body["agent"] = agents(context, "R", base)
    body["source"] = {"site": base, "observer": {"display": "ketnoi"}}
    body["entity"] = [{"what": {"display": READS[action]}, "type": _SYSTEM_OBJECT}]
    return body


def _entry(context: RequestContext, body: dict[str, Any]) -> AuditEntry:
    return AuditEntry(time.time(), context.request_id or None, None, res.dumps(body))


def _user_detail(user: User) -> tuple[str, dict[str, str]]:
    facts = {
        "role": user.role,
        "disabled": str(user.disabled).lower(),
        "totp": str(user.totp_secret is not None).lower(),
    }
    if user.organization:
        facts["organization"] = user.organization
    return user.username, facts


def _client_detail(client: Client) -> tuple[str, dict[str, str]]:
    return client.client_id, {
        "name": client.name,
        "kind": client.kind,
        "scope": client.scope,
        "revoked": str(client.revoked).lower(),
    }


# The clients module's refusals name no field; their English text does, and this table maps it (the
# tests add a client with each kind of mistake, so that a reworded message fails there, not silently).
_CLIENT_FIELDS: Final = (
    ("scope", "scope"), ("jwk", "jwks"), ("key", "jwks"), ("redirect", "redirect_uris"),
    ("organization", "organization"), ("kind", "kind"), ("name", "name"),
)  # fmt: skip


def _client_field(exc: Refused) -> str:
    text = exc.en.casefold()
    return next((field for word, field in _CLIENT_FIELDS if word in text), "name")


def _sqlite_bytes(database: str) -> int | None:
    """The SQLite file's size (the main file; the write-ahead log comes and goes)."""
    path = database.removeprefix("sqlite:///") if database.startswith("sqlite:///") else None
    if not path or path == ":memory:":
        return None
    try:
        return os.path.getsize(path)
    except OSError:
        return None
