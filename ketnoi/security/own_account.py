"""A signed-in user's own account (issue 15; ADR 0027 decision 6): its facts, its password, its TOTP.

Every function takes the caller's :class:`RequestContext` and acts on the account the context names (the
verified token's subject), never on one named by a form: there is no parameter to name another. The
server has no account to manage when it runs with ``--auth off`` or for a token without a local account;
that is refused (:class:`~ketnoi.security.admin.NotAllowed`, 403).

Each change asks for the current password again (re-authentication: a stolen console session alone
cannot change the password or replace the second factor), and a code from the authenticator where one
proves something: the new secret's code proves the phone holds it, the old secret's that the person who
set it up agrees to replace or remove it. Wrong answers count on the account's lock-out, the one sign-in
uses (:mod:`ketnoi.auth.throttle`): the fifth wrong answer in a row locks the account (30 s, doubling),
here and at the sign-in page alike, and while it is locked nothing is checked (:class:`Locked`, 429).
The Argon2 check runs outside the write transaction; the account is then read ``for_update`` and the
outcome (the change, or one more failure) written with its AuditEvent in one transaction, as
:mod:`ketnoi.security.accounts` does for sign-in.

Every change and every refused attempt is in the audit log (DICOM 110113/110137 with a ketnoi code,
:mod:`ketnoi.security.admin`); no password, secret or code ever enters an event. Administrators'
accounts keep their second factor: turning it off is refused for the roles that get one by default.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from ketnoi.auth import passwords
from ketnoi.auth.throttle import DEFAULT_POLICY, LockoutPolicy, after_failure, retry_after
from ketnoi.auth.totp import new_secret, verify_totp
from ketnoi.fhir import resource as res
from ketnoi.interactions.context import RequestContext
from ketnoi.security import admin, grants
from ketnoi.security.accounts import ADMINISTRATORS, Accounts, User, read_locked, write
from ketnoi.security.errors import Refused
from ketnoi.store.auditlog import AuditEntry

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from ketnoi.store.base import Session, Store

#: The roles that must keep a second factor: those that get one when their account is made.
TOTP_REQUIRED: Final = ADMINISTRATORS


class Locked(Refused):
    """Too many wrong answers: the account is locked for ``retry_after`` seconds (HTTP 429)."""

    status: Final = 429

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, round(retry_after))
        super().__init__(
            f"Too many wrong answers: try again in {seconds} seconds.",
            f"Nhập sai quá nhiều lần: hãy thử lại sau {seconds} giây.",
        )
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Mine:
    """What the account page shows of the caller's account (no hash, no secret)."""

    username: str
    role: str
    organization: str | None
    patient: str | None
    totp: bool  # a second factor is on
    totp_required: bool  # and may not be turned off (an administrator)


def _mine(user: User) -> Mine:
    return Mine(
        user.username, user.role, user.organization, user.patient, user.totp_secret is not None,
        user.role in TOTP_REQUIRED,
    )  # fmt: skip


def _field(en: str, vi: str, field: str) -> admin.FieldRefused:
    return admin.FieldRefused(Refused(en, vi), field)


def _wrong_password() -> admin.FieldRefused:
    return _field("The current password is wrong.", "Mật khẩu hiện tại không đúng.", "password")


def _wrong_code(field: str) -> admin.FieldRefused:
    if field == "old_code":
        return _field(
            "The code from your current authenticator is wrong or was already used.",
            "Mã từ ứng dụng xác thực đang dùng không đúng hoặc đã được dùng.",
            field,
        )
    return _field(
        "The code is wrong or was already used: type the 6 digits the app shows now for this new key.",
        "Mã không đúng hoặc đã được dùng: hãy nhập 6 chữ số ứng dụng đang hiện cho khoá mới này.",
        field,
    )


class OwnAccount:
    """The caller's own account in ``store``; ``base``: the public FHIR base (the events' source);
    ``hasher``: the Argon2id parameters of new hashes (tests pass cheap ones)."""

    def __init__(
        self,
        store: Store,
        *,
        base: str,
        hasher: PasswordHasher = passwords.DEFAULT_HASHER,
        policy: LockoutPolicy = DEFAULT_POLICY,
    ) -> None:
        self._store = store
        self._base = base
        self._hasher = hasher
        self._policy = policy
        self._accounts = Accounts(store, hasher=hasher, policy=policy)

    # ---- reading ------------------------------------------------------------------------------
    def view(self, context: RequestContext) -> Mine:
        """The caller's account (a look at one's own account is not recorded: it shows no one else's)."""
        return _mine(self._own(context, None))

    def new_totp(self, context: RequestContext) -> str:
        """A new TOTP secret for the caller to scan: it changes nothing until :meth:`set_totp` confirms
        it (the caller keeps it meanwhile: the console, in the signed-in session on the server)."""
        self._own(context, "account-totp")
        return new_secret()

    # ---- changes ------------------------------------------------------------------------------
    def set_totp(
        self, context: RequestContext, secret: str, *, password: str, code: str, old_code: str = "", now: float
    ) -> Mine:
        """Turn the second factor on with ``secret`` (or replace the current one): the current password,
        ``code`` from the new secret, and for a replacement ``old_code`` from the current one."""

        def change(user: User) -> User:
            replacing = user.totp_secret is not None
            if replacing and verify_totp(user.totp_secret or "", old_code.strip(), now, user.totp_last_step) is None:
                raise _wrong_code("old_code")
            # The step that matched is kept as used: the code typed here cannot sign in a second time.
            step = verify_totp(secret, code.strip(), now, None)
            if step is None:
                raise _wrong_code("code")
            return replace(user, totp_secret=secret, totp_last_step=step)

        return _mine(self._reauthenticated(context, "account-totp", password, now, change))

    def remove_totp(self, context: RequestContext, *, password: str, code: str, now: float) -> Mine:
        """Turn the second factor off: the current password and a current code; never an administrator's."""
        user = self._own(context, "account-totp-off")
        if user.role in TOTP_REQUIRED:
            raise self._refusal(context, "account-totp-off", user.username, admin.NotAllowed(
                "An administrator's account must keep its second factor; it can be replaced, not turned off.",
                "Tài khoản quản trị phải luôn có bước xác thực thứ hai; chỉ được thay, không được tắt.",
            ))  # fmt: skip
        if user.totp_secret is None:
            raise self._refusal(context, "account-totp-off", user.username, Refused(
                "Two-step sign-in is already off.", "Đăng nhập hai bước đang tắt."
            ))  # fmt: skip

        def change(current: User) -> User:
            if current.totp_secret is None or verify_totp(
                current.totp_secret, code.strip(), now, current.totp_last_step
            ) is None:  # fmt: skip
                raise _wrong_code("old_code")
            return replace(current, totp_secret=None, totp_last_step=None)

        return _mine(self._reauthenticated(context, "account-totp-off", password, now, change))

    def change_password(
        self, context: RequestContext, *, current: str, new: str, keep: str | None, now: float
    ) -> tuple[Mine, int]:
        """A new password (the platform's policy) for the current one; every other sign-in of the account
        ends: each refresh-token grant but ``keep`` (the ``sid`` of the session making the change) is
        revoked, its access tokens with it. Returns the account and how many grants ended."""
        user = self._own(context, "account-password")
        problems = passwords.check_password_policy(new, user.username)
        if not problems and new == current:
            problems = [("The new password must differ from the current one.", "Mật khẩu mới phải khác mật khẩu cũ.")]
        if problems:
            weak = Refused(" ".join(en for en, _ in problems), " ".join(vi for _, vi in problems))
            raise self._refusal(context, "account-password", user.username, admin.FieldRefused(weak, "new"))
        # Hashed before the transaction, as sign-in does: Argon2 takes tens of milliseconds.
        new_hash = passwords.hash_password(new, self._hasher)
        ended: list[int] = []

        def change(account: User) -> User:
            return replace(account, password_hash=new_hash)

        def others_signed_out(session: Session, account: User) -> None:
            ended.append(_end_grants(session, account.username, keep, now))

        changed = self._reauthenticated(context, "account-password", current, now, change, others_signed_out)
        return _mine(changed), ended[0] if ended else 0

    # ---- the common steps ---------------------------------------------------------------------
    def _own(self, context: RequestContext, action: str | None) -> User:
        """The caller's account: the verified token's subject, enabled. Refused (and, for a change,
        recorded) when there is none: --auth off, or a token of no local account."""
        user = self._accounts.get(context.user or "") if context.authenticated and context.user else None
        if user is not None and not user.disabled:
            return user
        refused = admin.NotAllowed(
            "You are not signed in to an account of this server.",
            "Bạn không đăng nhập bằng tài khoản của máy chủ này.",
        )
        if action is not None:
            self._record(context, action, (context.user or "")[:200], None, refused)
        raise refused

    def _reauthenticated(
        self,
        context: RequestContext,
        action: str,
        password: str,
        now: float,
        change: Callable[[User], User],
        also: Callable[[Session, User], None] | None = None,
    ) -> User:
        """Check the current password (and, in ``change``, the codes), then write the change, or one more
        failure on the lock-out, with its AuditEvent in one transaction; raise the refusal after it commits."""
        user = self._own(context, action)
        wait = retry_after(user.lockout(), now)
        if wait > 0:  # no check while locked: guessing gains nothing (ketnoi.auth.throttle.after_failure)
            raise self._refusal(context, action, user.username, Locked(wait))
        password_ok = passwords.verify_password(user.password_hash, password, self._hasher)
        refused: Refused | None = None
        with self._store.session(write=True) as session:
            current = read_locked(session, user.username, now)
            if current is None or current.disabled:
                refused = admin.NotAllowed("This account is disabled.", "Tài khoản này đã bị vô hiệu hoá.")
                self._append(session, context, action, user.username, None, refused)
            elif retry_after(current.lockout(), now) > 0:  # locked by a concurrent attempt meanwhile
                refused = Locked(retry_after(current.lockout(), now))
                self._append(session, context, action, user.username, None, refused)
            else:
                if current.password_hash != user.password_hash:  # changed while we checked: check again
                    password_ok = passwords.verify_password(current.password_hash, password, self._hasher)
                try:
                    if not password_ok:
                        raise _wrong_password()
                    changed = replace(change(current), failures=0, locked_until=0.0)
                except admin.FieldRefused as exc:
                    state = after_failure(current.lockout(), now, self._policy)
                    write(session, replace(current, failures=state.failures, locked_until=state.locked_until), now)
                    self._append(session, context, action, current.username, None, exc)
                    refused = exc
                else:
                    write(session, changed, now)
                    if also is not None:
                        also(session, changed)
                    self._append(session, context, action, changed.username, changed, None)
                    return changed
        assert refused is not None
        raise refused

    # ---- the audit trail ----------------------------------------------------------------------
    def _refusal(self, context: RequestContext, action: str, target: str, refused: Refused) -> Refused:
        self._record(context, action, target, None, refused)
        return refused

    def _record(
        self, context: RequestContext, action: str, target: str, changed: User | None, refused: Refused | None
    ) -> None:
        with self._store.session(write=True) as session:
            self._append(session, context, action, target, changed, refused)

    def _append(
        self,
        session: Session,
        context: RequestContext,
        action: str,
        target: str,
        changed: User | None,
        refused: Refused | None,
    ) -> None:
        """The change's event (the account's role and whether TOTP is on: no secret), or the refusal's (its
        English reason: none of them repeats what was typed)."""
        facts = {"role": changed.role, "totp": str(changed.totp_secret is not None).lower()} if changed else {}
        body = admin.event(
            context, action, target, facts, "4" if refused else "0", refused.en if refused else None,
            time.time(), self._base,
        )  # fmt: skip
        session.audit_append([AuditEntry(time.time(), context.request_id or None, None, res.dumps(body))])


def _end_grants(session: Session, username: str, keep: str | None, now: float) -> int:
    """End every refresh-token grant (family) of ``username`` but ``keep``: their refresh tokens die with
    the family record, their access tokens by ``sid`` (ketnoi.security.grants). Access tokens issued
    without a refresh token carry no ``sid``; they run out within their 15 minutes."""
    ended = 0
    for key, text in session.security_list("family", now):
        if key != keep and grants.Grant.from_json(text).username == username:
            grants.end_family(session, key, now)
            ended += 1
    return ended
