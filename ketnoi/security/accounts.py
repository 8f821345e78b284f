"""User accounts over the store: roles, password and TOTP sign-in with lock-out.

An account is one JSON record (kind ``"user"``, key = the user name) in ``security_record``.
Only the Argon2id hash of the password is kept; the TOTP secret is kept as is (the server must
compute codes from it) and is shown to the operator once, when it is created.

Sign-in follows NIST SP 800-63B: an unknown user name costs as much time as a wrong password
(:func:`~ketnoi.auth.passwords.burn_verify_time`), failures lock the account
(:mod:`ketnoi.auth.throttle`), a TOTP code is refused the second time it is used (RFC 6238 §5.2),
and old hashes are upgraded on success. The slow Argon2 check runs outside the write transaction;
the lock-out counter and the TOTP step are then read with ``for_update`` and written in one
transaction, so concurrent attempts never lose a failure nor accept one code twice.

Nothing here reads a clock: every time-dependent call takes ``now`` (epoch seconds).
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from ketnoi.auth import passwords
from ketnoi.auth.throttle import DEFAULT_POLICY, LockoutPolicy, LockoutState, after_failure, after_success, retry_after
from ketnoi.auth.totp import new_secret, verify_totp
from ketnoi.security import grants
from ketnoi.security.errors import Refused

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from ketnoi.store.base import Session, Store

    #: Called with the write transaction and the account as changed: the AuditEvent of the change.
    Recorder = Callable[[Session, "User"], None]

KIND: Final = "user"
# admin: a national administrator (no organization: tokens carry none, so the facility rule does
# not limit them; an organization given to one is recorded but not used). facility-admin: the
# administrator of one facility, limited like its clinicians to what the facility wrote.
ROLES: Final = ("admin", "facility-admin", "clinician", "provincial", "patient")
NEEDS_ORGANIZATION: Final = frozenset({"facility-admin", "clinician", "provincial"})
ADMINISTRATORS: Final = frozenset({"admin", "facility-admin"})  # a TOTP second factor by default
# What each role may be granted; a token's scope is the request narrowed by this
# (ketnoi.auth.scopes.ScopeSet.narrow). Patients act on their own compartment only. Staff may
# also take patient/ scopes: an app launched for one patient (SMART launch/patient) is confined
# to that patient's compartment, a subset of what their user/ scopes would reach.
ROLE_SCOPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "admin": "user/*.cruds patient/*.cruds system/*.cruds",
        "facility-admin": "user/*.cruds patient/*.cruds",  # as a clinician's, for now (issue 10)
        "clinician": "user/*.cruds patient/*.cruds",
        "provincial": "user/*.cruds patient/*.cruds",
        "patient": "patient/*.cruds",
    }
)
REASONS: Final = ("unknown", "disabled", "locked", "bad-password", "totp-required", "bad-totp")

_USERNAME = re.compile(r"[a-z0-9._-]{1,64}")
_ID = r"[A-Za-z0-9\-.]{1,64}"  # the FHIR id datatype
_ORGANIZATION = re.compile(rf"Organization/{_ID}")
_PATIENT = re.compile(rf"Patient/{_ID}")
_FHIR_USER = re.compile(rf"(Practitioner|PractitionerRole|Patient|RelatedPerson|Person)/{_ID}")
# User records never expire, so the instant given to a plain read does not matter.
_ANY_TIME = 0.0


class AccountError(Refused):
    """A refused account operation."""


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    organization: str | None  # "Organization/ID"
    patient: str | None  # "Patient/ID", patients only
    fhir_user: str | None  # "Practitioner/ID", "Patient/ID", ... (the SMART fhirUser claim)
    password_hash: str = field(repr=False)
    totp_secret: str | None = field(repr=False)  # None: no second factor
    totp_last_step: int | None  # the last TOTP step accepted (replay guard)
    failures: int
    locked_until: float
    disabled: bool
    created: float

    def lockout(self) -> LockoutState:
        return LockoutState(self.failures, self.locked_until)

    def context_claims(self) -> dict[str, str]:
        """The context claims of this user's tokens: fhirUser, patient (an id), organization (SMART),
        and ``role``, which the policy reads (e.g. only an administrator's ``user/*.cruds`` may run
        ``$import``). Our own signature vouches for it; no client can add or change it."""
        claims: dict[str, str] = {"role": self.role}
        if self.fhir_user:
            claims["fhirUser"] = self.fhir_user
        if self.role == "patient" and self.patient:
            claims["patient"] = self.patient.partition("/")[2]  # SMART launch context: the bare id
        if self.role in NEEDS_ORGANIZATION and self.organization:
            claims["organization"] = self.organization
        return claims


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of :meth:`Accounts.sign_in`: a user, or a ``reason`` from :data:`REASONS`.

    Show one message for ``unknown`` and ``bad-password`` (and ``disabled``): telling them apart
    tells an attacker which user names exist.
    """

    user: User | None
    reason: str | None
    retry_after: float = 0.0


def normalize_username(text: str) -> str:
    """The stored form of a user name (case-folded); AccountError if it is not a valid one."""
    name = text.casefold()
    if _USERNAME.fullmatch(name) is None:
        raise AccountError(
            "A user name has 1 to 64 characters: lower-case letters, digits, '.', '_' or '-'.",
            "Tên đăng nhập gồm 1 đến 64 ký tự: chữ thường, chữ số, '.', '_' hoặc '-'.",
        )
    return name


def _check_reference(value: str | None, pattern: re.Pattern[str], example: str) -> None:
    if value is not None and pattern.fullmatch(value) is None:
        raise AccountError(
            f"{value!r} is not a reference such as {example}.", f"{value!r} không phải tham chiếu dạng {example}."
        )


def _check_links(role: str, organization: str | None, patient: str | None, fhir_user: str | None) -> None:
    if role not in ROLES:
        raise AccountError(
            f"Unknown role {role!r}: use admin, facility-admin, clinician, provincial or patient.",
            f"Vai trò {role!r} không tồn tại: dùng admin, facility-admin, clinician, provincial hoặc patient.",
        )
    _check_reference(organization, _ORGANIZATION, "Organization/123")
    _check_reference(patient, _PATIENT, "Patient/123")
    _check_reference(fhir_user, _FHIR_USER, "Practitioner/123")
    if role == "patient" and patient is None:
        raise AccountError(
            "A patient account must be linked to its record (Patient/ID).",
            "Tài khoản bệnh nhân phải được liên kết với hồ sơ của mình (Patient/ID).",
        )
    if role != "patient" and patient is not None:
        # A patient link is the launch context of every token: on a staff account it would
        # silently confine (or, worse, label) that person's access.
        raise AccountError(
            "Only a patient account is linked to a Patient record.",
            "Chỉ tài khoản bệnh nhân mới được liên kết với hồ sơ Patient.",
        )
    if role in NEEDS_ORGANIZATION and organization is None:
        raise AccountError(
            f"A {role} account must belong to an organization (Organization/ID).",
            f"Tài khoản {role} phải thuộc về một cơ sở (Organization/ID).",
        )


def _check_password(password: str, username: str) -> None:
    problems = passwords.check_password_policy(password, username)
    if problems:
        raise AccountError(" ".join(en for en, _ in problems), " ".join(vi for _, vi in problems))


def _no_such_user(username: str) -> AccountError:
    return AccountError(f"No user named {username!r}.", f"Không có người dùng tên {username!r}.")


def _to_json(user: User) -> str:
    return json.dumps(asdict(user), sort_keys=True)


def _from_json(text: str) -> User:
    data: dict[str, Any] = json.loads(text)
    # Unknown keys are skipped so that a record written by a newer version still loads.
    return User(**{f.name: data[f.name] for f in fields(User) if f.name in data})


class Accounts:
    """The accounts kept in ``store``. ``hasher``: the Argon2id parameters (tests pass cheap ones)."""

    def __init__(
        self, store: Store, *, hasher: PasswordHasher = passwords.DEFAULT_HASHER, policy: LockoutPolicy = DEFAULT_POLICY
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._policy = policy

    def add(
        self,
        username: str,
        password: str,
        role: str,
        *,
        organization: str | None = None,
        patient: str | None = None,
        fhir_user: str | None = None,
        now: float,
        totp: bool | None = None,
        audit: Recorder | None = None,
    ) -> tuple[User, str | None]:
        """Create an account; returns it and its new TOTP secret (administrators get one unless ``totp=False``).

        ``fhir_user`` defaults to ``patient``. AccountError for a taken name, a weak password or
        links that do not fit the role. ``audit`` (here and in the other changes) is called in the
        change's own transaction, so that the change and its AuditEvent commit or roll back together.
        """
        name = normalize_username(username)
        _check_links(role, organization, patient, fhir_user)
        _check_password(password, name)
        wants_totp = role in ADMINISTRATORS if totp is None else totp
        secret = new_secret() if wants_totp else None
        password_hash = passwords.hash_password(password, self._hasher)
        user = User(
            name, role, organization, patient, fhir_user or patient, password_hash, secret, None, 0, 0.0, False, now
        )
        with self._store.session(write=True) as session:
            # Insert-if-absent is the check: two concurrent adds of one name cannot both win.
            if not session.security_add(KIND, name, _to_json(user), None, now):
                raise AccountError(f"The user name {name!r} is already taken.", f"Tên đăng nhập {name!r} đã được dùng.")
            if audit is not None:
                audit(session, user)
        return user, secret

    def get(self, username: str) -> User | None:
        try:
            name = normalize_username(username)
        except AccountError:
            return None
        with self._store.session(write=False) as session:
            text = session.security_get(KIND, name, _ANY_TIME)
        return None if text is None else _from_json(text)

    def list(self) -> builtins.list[User]:
        """Every account, by user name."""
        with self._store.session(write=False) as session:
            return [_from_json(text) for _, text in session.security_list(KIND, _ANY_TIME)]

    def disable(self, username: str, *, now: float, audit: Recorder | None = None) -> User:
        """Disable an account; the tokens it holds are refused from now on (and refreshed no more)."""

        def revoked(session: Session, user: User) -> None:  # in the same transaction as the change
            grants.revoke(session, "sub", user.username, now)
            if audit is not None:
                audit(session, user)

        return self._update(username, now, lambda user: replace(user, disabled=True), revoked)

    def enable(self, username: str, *, now: float, audit: Recorder | None = None) -> User:
        return self._update(username, now, lambda user: replace(user, disabled=False), audit)

    def reset_password(self, username: str, password: str, now: float, audit: Recorder | None = None) -> User:
        """Set a new password (policy-checked) and clear the lock-out."""
        name = normalize_username(username)
        _check_password(password, name)
        password_hash = passwords.hash_password(password, self._hasher)

        def change(user: User) -> User:
            return _with_state(replace(user, password_hash=password_hash), after_success())

        return self._update(name, now, change, audit)

    def set_totp(self, username: str, *, now: float, audit: Recorder | None = None) -> str:
        """Give the account a new TOTP secret (replacing any old one) and return it, to show once."""
        secret = new_secret()
        self._update(username, now, lambda user: replace(user, totp_secret=secret, totp_last_step=None), audit)
        return secret

    def _update(self, username: str, now: float, change: Callable[[User], User], audit: Recorder | None = None) -> User:
        name = normalize_username(username)
        with self._store.session(write=True) as session:
            user = _read(session, name, now)
            if user is None:
                raise _no_such_user(name)
            updated = change(user)
            session.security_put(KIND, name, _to_json(updated), None, now)
            if audit is not None:
                audit(session, updated)
        return updated

    def sign_in(self, username: str, password: str, totp_code: str | None, now: float) -> SignIn:
        """Check a password (and TOTP code); the lock-out state is updated in the store."""
        user = self.get(username)
        if user is None or user.disabled:
            passwords.burn_verify_time(self._hasher)  # same cost as a wrong password (no user enumeration)
            return SignIn(None, "unknown" if user is None else "disabled")
        wait = retry_after(user.lockout(), now)
        if wait > 0:
            return SignIn(None, "locked", wait)  # no password check while locked (throttle.after_failure)
        password_ok = passwords.verify_password(user.password_hash, password, self._hasher)
        # The new hash is made here, outside the transaction, like the check: Argon2 takes tens of
        # milliseconds and SQLite has a single writer.
        rehashed = passwords.hash_password(password, self._hasher) if password_ok and self._stale(user) else None
        with self._store.session(write=True) as session:
            current = _read(session, user.username, now)
            if current is not None and current.password_hash != user.password_hash:
                # Changed while we checked (a reset, or another sign-in upgrading the hash): the
                # old answer may be wrong either way, so check again; a rare race, paid in it only.
                password_ok = passwords.verify_password(current.password_hash, password, self._hasher)
            outcome, updated = self._decide(current, password_ok, totp_code, now)
            if outcome.user is not None and rehashed is not None:
                updated = replace(outcome.user, password_hash=rehashed)
                outcome = replace(outcome, user=updated)
            if updated is not None and updated != current:  # a success that changes nothing writes nothing
                session.security_put(KIND, updated.username, _to_json(updated), None, now)
        return outcome

    def _stale(self, user: User) -> bool:
        return passwords.needs_rehash(user.password_hash, self._hasher)

    def _decide(
        self, current: User | None, password_ok: bool, code: str | None, now: float
    ) -> tuple[SignIn, User | None]:
        """The outcome on the freshly locked record, and the record to write (None: unchanged)."""
        if current is None or current.disabled:
            return SignIn(None, "unknown" if current is None else "disabled"), None
        wait = retry_after(current.lockout(), now)
        if wait > 0:
            return SignIn(None, "locked", wait), None  # locked by a concurrent attempt meanwhile
        if not password_ok:
            return self._fail(current, "bad-password", now)
        if current.totp_secret is not None:
            if not code:
                return SignIn(None, "totp-required"), None  # the first step of a two-step form
            step = verify_totp(current.totp_secret, code, now, current.totp_last_step)
            if step is None:
                return self._fail(current, "bad-totp", now)
            current = replace(current, totp_last_step=step)
        signed_in = _with_state(current, after_success())
        return SignIn(signed_in, None), signed_in

    def _fail(self, user: User, reason: str, now: float) -> tuple[SignIn, User]:
        state = after_failure(user.lockout(), now, self._policy)
        return SignIn(None, reason, retry_after(state, now)), _with_state(user, state)


def _with_state(user: User, state: LockoutState) -> User:
    return replace(user, failures=state.failures, locked_until=state.locked_until)


def _read(session: Session, username: str, now: float) -> User | None:
    """The account, locked until the transaction ends (the read half of a read-modify-write)."""
    text = session.security_get(KIND, username, now, for_update=True)
    return None if text is None else _from_json(text)


def read_locked(session: Session, username: str, now: float) -> User | None:
    """The account locked for a read-modify-write in the caller's transaction (the self-service changes
    of :mod:`ketnoi.security.own_account`, which check a password and a code before changing it)."""
    return _read(session, username, now)


def write(session: Session, user: User, now: float) -> None:
    """Store ``user`` as changed, in the caller's transaction (after :func:`read_locked`)."""
    session.security_put(KIND, user.username, _to_json(user), None, now)
