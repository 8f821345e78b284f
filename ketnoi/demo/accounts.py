"""``ketnoi demo accounts``: people and apps that can sign in to a database holding the demo population.

On a database loaded with ``ketnoi demo generate`` + ``ketnoi load`` it makes, through the security
layer's :class:`~ketnoi.security.accounts.Accounts` and :class:`~ketnoi.security.clients.Clients`:

* ``admin`` (role admin, with a TOTP second factor);
* ``clinician`` (role clinician) at the demo facility with the most Encounters, its ``fhirUser`` the
  Practitioner who attended most of that facility's Encounters: the clinician has a care relation
  (Encounter.serviceProvider) with that facility's patients, so it keeps seeing them once clinicians
  are limited to such patients;
* ``provincial`` (role provincial), a manager of the provincial health department above the clinician's
  facility (its dashboard counts what the province's facilities own: load with ``--owners``);
* ``patient`` (role patient), linked to the patient of that facility with the most Encounters there
  that also has Observations and Conditions;
* a confidential client "ketnoi demo backend" (a client secret, scope ``system/*.rs``) and a public
  client "ketnoi demo app" (PKCE, redirect URI ``{base}/auth/demo-callback``).

Every choice is deterministic (counts first, then ids), and the data are read the way any
non-HTTP caller reads them: FHIR searches through :func:`ketnoi.interactions.router.handle`, as
the operator. Passwords are random (:func:`ketnoi.auth.passwords.generate_password`), never on
argv; they are printed once as JSON on stdout and, with ``--out``, written to a new file only its
owner may read. A second run refuses (exit code 1: the passwords cannot be shown again) unless
``--reset`` is given, which sets new passwords and a new TOTP secret on the accounts and registers
new clients, revoking the earlier demo clients.

This module is the one part of ``ketnoi.demo`` that uses the server's layers (``ketnoi.app`` to open
the store, ``ketnoi.interactions`` to read, ``ketnoi.security`` to write): the contracts in
pyproject.toml allow exactly its imports; the generator itself stays stand-alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlsplit

from ketnoi import config
from ketnoi.app import build_services, check_schema, open_store, stop_services
from ketnoi.auth import passwords
from ketnoi.auth.totp import provisioning_uri
from ketnoi.demo.ids import FACILITY_SYSTEM
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.security.accounts import Accounts, User
from ketnoi.security.clients import Clients
from ketnoi.security.errors import Refused

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from ketnoi.interactions.services import Services
    from ketnoi.store.base import Store

# role -> user name
USERNAMES: Final = {"admin": "admin", "clinician": "clinician", "patient": "patient", "provincial": "provincial"}
ORG_LEVEL: Final = "https://fhir.ketnoi.vn/CodeSystem/org-level"  # a provincial health department is "province"
BACKEND_NAME: Final = "ketnoi demo backend"
APP_NAME: Final = "ketnoi demo app"
BACKEND_SCOPE: Final = "system/*.rs"
APP_SCOPE: Final = "launch/patient openid fhirUser offline_access patient/*.rs user/*.rs"
DEFAULT_BASE_URL: Final = "http://127.0.0.1:8080"
CALLBACK_PATH: Final = "/auth/demo-callback"
PASSWORD_LENGTH: Final = 20  # letters and digits: 119 bits
EXIT_EXISTS: Final = 1  # the accounts or the --out file exist already: nothing was changed
EXIT_ERROR: Final = 2  # any other refusal or failure, as the operators' commands
_CONTEXT: Final = RequestContext.operator("demo accounts")


class AlreadyDone(Refused):
    """The accounts (or the output file) exist: the passwords cannot be shown again."""


@dataclass(frozen=True, slots=True)
class DemoLinks:
    """Whom the demo accounts stand for: references that exist in the database."""

    organization: str  # "Organization/ID": the clinician's facility
    practitioner: str  # "Practitioner/ID": the clinician's fhirUser
    patient: str  # "Patient/ID": the patient account's record
    province: str  # "Organization/ID": the provincial health department above the clinician's facility


# ---- reading the demo data -------------------------------------------------------------------------


def _get(services: Services, path: str, query: list[tuple[str, str]] | None = None) -> tuple[int, dict[str, Any]]:
    response = handle(services, FhirRequest("GET", path, query=query or [], context=_CONTEXT))
    body = response.resource if response.resource is not None else json.loads(response.raw or b"{}")
    return response.status, body


def _search(services: Services, rtype: str, query: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    """Every match of a search, page after page (following the Bundles' ``next`` links)."""
    while True:
        status, bundle = _get(services, rtype, query)
        if status != 200:
            issues = "; ".join(i.get("diagnostics", "") for i in bundle.get("issue", []))
            raise RuntimeError(f"searching {rtype} failed (HTTP {status}): {issues}")
        for entry in bundle.get("entry", []):
            yield entry["resource"]
        following = [link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"]
        if not following:
            return
        query = parse_qsl(urlsplit(following[0]).query)


def _count(services: Services, rtype: str, query: list[tuple[str, str]]) -> int:
    status, bundle = _get(services, rtype, [*query, ("_summary", "count")])
    return int(bundle.get("total", 0)) if status == 200 else 0


def _ref(element: Any, rtype: str) -> str | None:
    """``rtype/ID`` if ``element`` is a reference to a resource of that type, else None."""
    reference = element.get("reference") if isinstance(element, dict) else None
    if isinstance(reference, str) and reference.startswith(f"{rtype}/") and reference.count("/") == 1:
        return reference
    return None


def _ranked(counts: Counter[str]) -> list[str]:
    """Most counted first; ties by reference, so that the same data always give the same order."""
    return sorted(counts, key=lambda ref: (-counts[ref], ref))


def _is_demo_facility(services: Services, reference: str) -> bool:
    status, organization = _get(services, reference)
    identifiers = organization.get("identifier", []) if status == 200 else []
    return any(isinstance(i, dict) and i.get("system") == FACILITY_SYSTEM for i in identifiers)


def _exists(services: Services, reference: str) -> bool:
    return _get(services, reference)[0] == 200


def find_demo_links(services: Services) -> DemoLinks:
    """The facility, practitioner and patient the demo accounts stand for (see the module docstring)."""
    encounters: Counter[str] = Counter()  # facility -> its Encounters
    patients: defaultdict[str, Counter[str]] = defaultdict(Counter)  # facility -> patient -> Encounters
    attenders: defaultdict[str, Counter[str]] = defaultdict(Counter)  # facility -> practitioner -> Encounters
    wanted = [("_count", str(services.settings.max_count)), ("_elements", "subject,participant,serviceProvider")]
    for encounter in _search(services, "Encounter", wanted):
        facility = _ref(encounter.get("serviceProvider"), "Organization")
        patient = _ref(encounter.get("subject"), "Patient")
        if facility is None or patient is None:
            continue
        encounters[facility] += 1
        patients[facility][patient] += 1
        for participant in encounter.get("participant", []):
            if isinstance(participant, dict) and (who := _ref(participant.get("individual"), "Practitioner")):
                attenders[facility][who] += 1
    for facility in _ranked(encounters):
        if not _is_demo_facility(services, facility):
            continue
        practitioner = next((p for p in _ranked(attenders[facility]) if _exists(services, p)), None)
        patient = next((p for p in _ranked(patients[facility]) if _has_clinical_data(services, p)), None)
        province = _province_of(services, facility)
        if practitioner is not None and patient is not None and province is not None:
            return DemoLinks(facility, practitioner, patient, province)
    raise Refused(
        "This database holds no demo data (a facility with Encounters, their Practitioner and a patient with "
        "Observations and Conditions): run `ketnoi demo generate` and `ketnoi load` first.",
        "Cơ sở dữ liệu này không có dữ liệu mẫu (cơ sở y tế có lượt khám, bác sĩ và bệnh nhân có Observation và "
        "Condition): hãy chạy `ketnoi demo generate` và `ketnoi load` trước.",
    )


def _province_of(services: Services, facility: str) -> str | None:
    """The provincial health department (``org-level`` province) a facility is part of, up its ``partOf``."""
    reference: str | None = facility
    for _ in range(6):  # ministry → department → hospital → commune station: a few steps at most
        if reference is None:
            return None
        status, organization = _get(services, reference)
        if status != 200:
            return None
        levels = [c.get("code") for t in organization.get("type", []) for c in t.get("coding", [])
                  if c.get("system") == ORG_LEVEL]  # fmt: skip
        if "province" in levels:
            return reference
        reference = _ref(organization.get("partOf"), "Organization")
    return None


def _has_clinical_data(services: Services, patient: str) -> bool:
    if not _exists(services, patient):
        return False
    subject = [("subject", patient)]
    return _count(services, "Observation", subject) > 0 and _count(services, "Condition", subject) > 0


# ---- making the accounts and clients ----------------------------------------------------------------


def new_password(username: str) -> str:
    """A random password that passes the password policy for ``username``."""
    while True:
        password = passwords.generate_password(PASSWORD_LENGTH)
        if not passwords.check_password_policy(password, username):
            return password


def _existing(accounts: Accounts, reset: bool) -> dict[str, User | None]:
    users = {role: accounts.get(name) for role, name in USERNAMES.items()}
    present = [name for role, name in USERNAMES.items() if users[role] is not None]
    if present and not reset:
        names = ", ".join(present)
        raise AlreadyDone(
            f"The demo accounts exist already ({names}) and their passwords cannot be shown again: "
            "run `ketnoi demo accounts --reset` to set new ones.",
            f"Tài khoản mẫu đã có ({names}) và không thể hiện lại mật khẩu: hãy chạy "
            "`ketnoi demo accounts --reset` để đặt mật khẩu mới.",
        )
    for role, user in users.items():
        if user is not None and user.role != role:
            raise Refused(
                f"The user {user.username!r} exists with the role {user.role}, not {role}: it is not a demo account.",
                f"Người dùng {user.username!r} đã có với vai trò {user.role}, không phải {role}: "
                "đó không phải tài khoản mẫu.",
            )
    return users


def provision(
    store: Store,
    services: Services,
    *,
    base_url: str = DEFAULT_BASE_URL,
    reset: bool = False,
    now: float,
    hasher: PasswordHasher = passwords.DEFAULT_HASHER,
    before_writing: Callable[[], None] | None = None,
) -> dict[str, dict[str, str]]:
    """Make (or, with ``reset``, renew) the demo accounts and clients; returns what to show, keyed by role.

    Everything is read and checked before the first write; ``before_writing`` runs between the two
    (the command reserves its output file there). AlreadyDone if an account exists and ``reset`` is
    false.
    """
    accounts, clients = Accounts(store, hasher=hasher), Clients(store, hasher=hasher)
    users = _existing(accounts, reset)
    links = None if all(users.values()) else find_demo_links(services)
    callback = base_url.rstrip("/") + CALLBACK_PATH
    if before_writing is not None:
        before_writing()
    # Clients first: a bad --base-url is refused before any account changes; the app (whose redirect
    # URI is checked) before the backend, so a refusal leaves no new client behind.
    earlier = [c.client_id for c in clients.list() if c.name in (BACKEND_NAME, APP_NAME) and not c.revoked]
    app, _ = clients.add(APP_NAME, APP_SCOPE, kind="public", redirect_uris=[callback], now=now)
    # A confidential client needs a redirect URI (ketnoi.security.clients); it only uses client_credentials.
    backend, secret = clients.add(BACKEND_NAME, BACKEND_SCOPE, kind="confidential", redirect_uris=[callback], now=now)
    assert secret is not None  # a confidential client always gets one
    for client_id in earlier:  # their secrets are lost with the earlier output: nobody can use them
        clients.revoke(client_id, now=now)
    shown: dict[str, dict[str, str]] = {}
    for role, name in USERNAMES.items():
        password = new_password(name)
        user, totp_secret = _account(accounts, role, name, password, users[role], links, now)
        shown[role] = {"username": user.username, "password": password, **_links_of(user)}
        if totp_secret is not None:
            shown[role] |= {"totp_secret": totp_secret, "totp_uri": provisioning_uri(totp_secret, user.username)}
    shown["backend"] = {"client_id": backend.client_id, "client_secret": secret, "scope": backend.scope}
    shown["app"] = {"client_id": app.client_id, "redirect_uri": callback, "scope": app.scope}
    return shown


def _account(
    accounts: Accounts, role: str, name: str, password: str, user: User | None, links: DemoLinks | None, now: float
) -> tuple[User, str | None]:
    if user is not None:  # --reset: a new password (lock-out cleared) and, for the admin, a new TOTP secret
        user = accounts.reset_password(name, password, now)
        return user, accounts.set_totp(name, now=now) if user.totp_secret is not None or role == "admin" else None
    assert links is not None  # read whenever an account is missing
    if role == "clinician":
        return accounts.add(
            name, password, role, organization=links.organization, fhir_user=links.practitioner, now=now
        )
    if role == "patient":
        return accounts.add(name, password, role, patient=links.patient, now=now)
    if role == "provincial":  # the clinician's province: its indicators include the clinician's facility
        return accounts.add(name, password, role, organization=links.province, now=now)
    return accounts.add(name, password, role, now=now)  # the admin: a TOTP secret by default


def _links_of(user: User) -> dict[str, str]:
    if user.role == "clinician":
        return {"organization": user.organization or "", "fhirUser": user.fhir_user or ""}
    if user.role == "provincial":
        return {"organization": user.organization or ""}
    if user.role == "patient":
        return {"patient": user.patient or ""}
    return {}


# ---- the command ----------------------------------------------------------------------------------


def _file_exists(path: Path) -> AlreadyDone:
    return AlreadyDone(
        f"{path} exists already: choose another --out file (it is never overwritten).",
        f"{path} đã tồn tại: hãy chọn tệp --out khác (tệp không bao giờ bị ghi đè).",
    )


class _PrivateFile:
    """The ``--out`` file, created before the first write (O_EXCL, mode 0600), removed if nothing got written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def reserve(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise _file_exists(self.path) from None
        os.fchmod(self.fd, 0o600)  # whatever the umask

    def write(self, text: str) -> None:
        assert self.fd is not None
        with os.fdopen(self.fd, "w", encoding="utf-8") as file:
            self.fd = None
            file.write(text)

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.path.unlink(missing_ok=True)


def _make(args: argparse.Namespace) -> None:
    out = _PrivateFile(args.out) if args.out is not None else None
    if out is not None and os.path.lexists(out.path):
        raise _file_exists(out.path)  # before opening the database; reserve() closes the race
    settings = config.from_env().with_(database=args.database)
    store = open_store(settings.database)
    try:
        check_schema(store)
        services = build_services(settings, store)
        try:
            shown = provision(
                store,
                services,
                base_url=args.base_url,
                reset=args.reset,
                now=time.time(),
                before_writing=out.reserve if out is not None else None,
            )
        except BaseException:
            if out is not None:
                out.discard()
            raise
        finally:
            stop_services(services)  # the reads' records, out of the journal into the log
    finally:
        store.close()
    text = json.dumps(shown, indent=2, ensure_ascii=False) + "\n"
    sys.stdout.write(text)  # first: should writing the file fail, the passwords are not lost
    if out is not None:
        out.write(text)


def _fail(exc: BaseException, code: int) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the error says
    sys.stderr.write(f"error: {message}\n")
    return code


def run(args: argparse.Namespace) -> int:
    """``ketnoi demo accounts``: 0 and the JSON on stdout; 1 if the accounts or the file exist; 2 on any other error."""
    try:
        _make(args)
    except AlreadyDone as exc:
        return _fail(exc, EXIT_EXISTS)
    except Exception as exc:  # the edge: a bad URL, an unreachable server, no demo data: one line, no traceback
        return _fail(exc, EXIT_ERROR)
    return 0
