"""The authorization endpoint's logic (RFC 6749 §4.1, SMART App Launch 2.x), without HTTP or HTML.

A browser arrives with an authorization request; :meth:`Authorizer.begin` checks it and keeps it
as a pending sign-in (kind ``signin``, ten minutes) bound to that browser by a random cookie whose
hash is stored: a sign-in form replayed from another browser, or a forged consent post, finds no
matching cookie (login CSRF). :meth:`Authorizer.sign_in` checks the password (and TOTP) through
:class:`~ketnoi.security.accounts.Accounts`, with its lock-out; :meth:`Authorizer.consent` shows
what the app would get; :meth:`Authorizer.decide` takes the pending record (once) and answers
with the redirect carrying a single-use code (:mod:`ketnoi.security.grants`) or ``access_denied``.

Errors before the client and its redirect URI are known are shown to the user, never redirected
(RFC 6749 §4.1.2.1: an unchecked redirect is an open redirector); later errors go back to the app.

The patient in context: a patient account always acts for its own record; an EHR launch
(``launch``, made by ``POST /auth/launch``) names one; a staff user asking ``launch/patient``
without one chooses it on the consent page, and may only choose a patient they can read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Final
from urllib.parse import urlencode, urlsplit

from ketnoi.auth.pkce import valid_challenge
from ketnoi.auth.scopes import ScopeSet, parse_scopes
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import unit_of_work
from ketnoi.interactions.services import Services
from ketnoi.security import auth_events, grants
from ketnoi.security.accounts import ROLE_SCOPES, Accounts, User
from ketnoi.security.clients import Client, Clients
from ketnoi.security.errors import Refused

PENDING_LIFETIME: Final = 600  # seconds to sign in and consent
LAUNCH_LIFETIME: Final = 3600  # an EHR launch handle
# Non-clinical scopes a user-facing app may be granted (if registered for them).
USER_OTHER: Final = frozenset(
    {"openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access", "online_access"}
)
_STATE_MAX = 1024
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


class PageError(Refused):
    """Shown to the user on the page: the request cannot be trusted to redirect anywhere."""


class PatientChoice(PageError):
    """The patient chosen on the consent page will not do; the page is shown again to correct it."""


@dataclass(frozen=True, slots=True)
class RedirectError(Exception):
    """An error response sent back to the app's (checked) redirect URI."""

    redirect_uri: str
    error: str
    description: str
    state: str | None


@dataclass(frozen=True, slots=True)
class AuthRequest:
    client_id: str
    redirect_uri: str
    scope: str  # as requested, canonical
    state: str | None
    challenge: str
    nonce: str | None
    launch_patient: str | None  # from an EHR launch
    lang: str  # "vi" | "en", for the pages
    client_name: str = ""  # what the pages call the app (read once, with the client)


@dataclass(frozen=True, slots=True)
class Pending:
    """A sign-in in progress; ``username`` is set once the password (and TOTP) checked out."""

    id: str
    request: AuthRequest
    browser: str  # SHA-256 of the cookie that binds it to one browser
    username: str | None = None
    auth_time: float = 0.0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "request": asdict(self.request)})

    @classmethod
    def from_json(cls, text: str) -> Pending:
        data = json.loads(text)
        return cls(**{**data, "request": AuthRequest(**data["request"])})


@dataclass(frozen=True, slots=True)
class Consent:
    """What the consent page shows."""

    client_name: str
    user: User
    scopes: ScopeSet  # what would be granted
    patient: str | None  # fixed patient context, if any
    choose_patient: bool  # the user must name the patient


def language(requested: str | None, accept_language: str | None) -> str:
    """Vietnamese unless ``ui_locales`` or the browser prefers English."""
    for value in (requested, accept_language):
        if value:
            first = value.replace(",", " ").split()[0].lower()
            return "en" if first.startswith("en") else "vi"
    return "vi"


def _browser_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8")).hexdigest()


def redirect_to(uri: str, params: Mapping[str, str | None]) -> str:
    """``uri`` with ``params`` added to its query (RFC 6749 §4.1.2: keep the URI's own query)."""
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{extra}"


class Authorizer:
    """The authorization endpoint of one server."""

    def __init__(self, services: Services, accounts: Accounts | None = None) -> None:
        self.services = services
        self.store = services.store
        self.audience = services.settings.public_base()
        self.issuer = services.settings.issuer()
        self.clients = Clients(self.store)
        self.accounts = accounts or Accounts(self.store)

    # ---- step 1: the request ------------------------------------------------------------------
    def begin(self, params: Mapping[str, str], accept_language: str | None, now: float) -> tuple[Pending, str]:
        """Check an authorization request; the pending sign-in and the cookie that binds it."""
        request = self._parse(params, accept_language, now)
        cookie = secrets.token_urlsafe(32)
        pending = Pending(secrets.token_urlsafe(24), request, _browser_hash(cookie))
        with self.store.session(write=True) as session:
            session.security_put("signin", pending.id, pending.to_json(), now + PENDING_LIFETIME, now)
        return pending, cookie

    def _parse(self, params: Mapping[str, str], accept_language: str | None, now: float) -> AuthRequest:
        lang = language(params.get("ui_locales"), accept_language)
        client = self._client(params.get("client_id", ""))
        redirect_uri = self._redirect_uri(client, params.get("redirect_uri"))
        state = params.get("state")

        def fail(error: str, description: str) -> RedirectError:
            return RedirectError(redirect_uri, error, description, state)

        if state is not None and len(state) > _STATE_MAX:
            raise fail("invalid_request", f"state is longer than {_STATE_MAX} characters")
        if params.get("response_type") != "code":
            raise fail("unsupported_response_type", "only response_type=code is supported")
        if not valid_challenge(params.get("code_challenge"), params.get("code_challenge_method")):
            raise fail("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
        if params.get("aud", "").rstrip("/") != self.audience:
            # SMART: the app names the FHIR server it will call, so a token cannot be phished for another.
            raise fail("invalid_request", f"aud must be this server's FHIR base URL: {self.audience}")
        requested = parse_scopes(params.get("scope", ""), resource_types())
        if requested.invalid:
            raise fail("invalid_scope", f"invalid scopes: {' '.join(requested.invalid)[:200]}")
        launch_patient = self._launch(params.get("launch"), requested, fail, now)
        return AuthRequest(
            client.client_id, redirect_uri, requested.text(), state, params["code_challenge"],
            params.get("nonce"), launch_patient, lang, client.name,
        )  # fmt: skip

    def _client(self, client_id: str) -> Client:
        client = self.clients.get(client_id) if client_id else None
        if client is None or client.revoked or client.kind == "backend":
            raise PageError(
                "This application is not registered here (unknown or revoked client_id).",
                "Ứng dụng này chưa được đăng ký tại đây (client_id không tồn tại hoặc đã bị thu hồi).",
            )
        return client

    def _redirect_uri(self, client: Client, given: str | None) -> str:
        if given is None and len(client.redirect_uris) == 1:
            return client.redirect_uris[0]
        if given not in client.redirect_uris:  # exact match only (RFC 9700 §4.1.3)
            raise PageError(
                "The redirect_uri is not one this application registered.",
                "redirect_uri không phải địa chỉ mà ứng dụng đã đăng ký.",
            )
        return given

    def _launch(
        self, launch: str | None, requested: ScopeSet, fail: Callable[[str, str], RedirectError], now: float
    ) -> str | None:
        if launch is None:
            return None
        with self.store.session(write=False) as session:
            text = session.security_get("launch", grants.digest(launch), now)
        if text is None or "launch" not in requested.other:
            raise fail("invalid_request", "unknown or expired launch, or the launch scope is missing")
        patient: str | None = json.loads(text).get("patient")
        return patient

    # ---- step 2: sign-in ----------------------------------------------------------------------
    def pending(self, pending_id: str, cookie: str | None, now: float) -> Pending:
        """The pending sign-in of this browser, or PageError (expired, or another browser's)."""
        with self.store.session(write=False) as session:
            text = session.security_get("signin", pending_id, now) if pending_id else None
        pending = None if text is None else Pending.from_json(text)
        if pending is None or cookie is None or not hmac.compare_digest(pending.browser, _browser_hash(cookie)):
            raise PageError(
                "This sign-in page has expired or belongs to another browser window; start again from the app.",
                "Trang đăng nhập đã hết hạn hoặc thuộc cửa sổ trình duyệt khác; hãy bắt đầu lại từ ứng dụng.",
            )
        return pending

    def sign_in(
        self, pending: Pending, username: str, password: str, totp: str | None, now: float, address: str | None = None
    ) -> tuple[Pending, str | None, float]:
        """The pending sign-in with its user, or a reason (accounts.REASONS) and seconds to wait.
        Either way an AuditEvent records the attempt (who tried, from where, for which app)."""
        outcome = self.accounts.sign_in(username, password, totp or None, now)
        who = RequestContext(
            user=outcome.user.username if outcome.user else username[:64], client_id=pending.request.client_id,
            remote_addr=address, fhir_user=outcome.user.fhir_user if outcome.user else None,
        )  # fmt: skip
        status = 200 if outcome.user is not None else 429 if outcome.reason == "locked" else 401
        auth_events.record(self.store, who, "login", status, outcome.reason, self.issuer)
        if outcome.user is None:
            return pending, outcome.reason, outcome.retry_after
        signed = replace(pending, username=outcome.user.username, auth_time=now)
        with self.store.session(write=True) as session:
            session.security_put("signin", signed.id, signed.to_json(), now + PENDING_LIFETIME, now)
        return signed, None, 0.0

    # ---- step 3: consent ----------------------------------------------------------------------
    def consent(self, pending: Pending) -> Consent:
        """What the signed-in user is asked to allow."""
        user = self._user(pending)
        client = self._client(pending.request.client_id)
        scopes = self._granted(client, user, pending.request)
        patient = self._fixed_patient(user, pending.request)
        choose = patient is None and ("launch/patient" in scopes.other or "patient" in scopes.contexts())
        return Consent(client.name, user, scopes, patient, choose)

    def decide(self, pending: Pending, allow: bool, chosen_patient: str | None, now: float) -> str:
        """The URL to send the browser to: the app's redirect URI with a code, or with an error."""
        request = pending.request
        consent = self.consent(pending) if allow else None
        patient = None
        if consent is not None:
            # Checked before the pending sign-in is taken: a mistyped patient id may be corrected.
            patient = consent.patient or (
                self._chosen(consent.user, chosen_patient) if consent.choose_patient else None
            )
            if patient is None and "patient" in consent.scopes.contexts():
                raise PatientChoice(
                    "Choose the patient this app will act for.", "Hãy chọn bệnh nhân mà ứng dụng sẽ làm việc cùng."
                )
        with self.store.session(write=True) as session:
            taken = session.security_take("signin", pending.id, now)  # a consent is given once
        if taken is None:
            raise PageError("This consent was already answered.", "Yêu cầu cấp quyền này đã được trả lời.")
        if consent is None:
            return redirect_to(
                request.redirect_uri,
                {"error": "access_denied", "error_description": "the user declined", "state": request.state},
            )
        scopes = consent.scopes
        grant = grants.Grant(
            consent.user.username, request.client_id, scopes.text(), patient,
            {k: v for k, v in consent.user.context_claims().items() if k != "patient"},
            request.nonce, pending.auth_time,
        )  # fmt: skip
        code = grants.put_code(self.store, grant, request.redirect_uri, request.challenge, now)
        # RFC 9207: naming the issuer lets an app that talks to several servers spot a mix-up.
        return redirect_to(request.redirect_uri, {"code": code, "state": request.state, "iss": self.issuer})

    def _user(self, pending: Pending) -> User:
        user = self.accounts.get(pending.username) if pending.username else None
        if user is None or user.disabled:
            raise PageError("Sign in first.", "Hãy đăng nhập trước.")
        return user

    def _granted(self, client: Client, user: User, request: AuthRequest) -> ScopeSet:
        """Requested ∩ what the client is registered for ∩ what the user's role allows. A staff user
        gets ``patient/`` scopes only with a patient context to use them in: an EHR launch, or
        ``launch/patient`` (then they choose the patient). So an app asking ``user/*`` and ``patient/*``
        alike (the console, ADR 0026) gets ``user/`` scopes for staff and ``patient/`` ones for a patient."""
        known = resource_types()
        requested = parse_scopes(request.scope, known)
        by_client = requested.narrow(parse_scopes(client.scope, known))
        by_role = by_client.narrow(parse_scopes(ROLE_SCOPES[user.role], known))
        clinical = by_role.clinical
        if user.role != "patient" and request.launch_patient is None and "launch/patient" not in requested.other:
            clinical = tuple(s for s in clinical if s.context != "patient")
        return ScopeSet(clinical, by_client.other & USER_OTHER)

    def _fixed_patient(self, user: User, request: AuthRequest) -> str | None:
        if user.role == "patient":
            return user.patient.partition("/")[2] if user.patient else None
        return request.launch_patient

    def _chosen(self, user: User, chosen: str | None) -> str:
        """A staff user's choice of patient: a Patient id they are allowed to read."""
        pid = (chosen or "").strip().removeprefix("Patient/")
        if not _ID.fullmatch(pid) or not self._can_read_patient(user, pid):
            raise PatientChoice(
                "No patient with that id that you may see.", "Không có bệnh nhân với id đó mà bạn được phép xem."
            )
        return pid

    def _can_read_patient(self, user: User, pid: str) -> bool:
        context = context_of(user)
        try:
            with unit_of_work(self.services, context, write=False) as repo:
                repo.read("Patient", pid)
        except FhirError:
            return False
        return True

    # ---- EHR launch ---------------------------------------------------------------------------
    def new_launch(self, patient: str, now: float) -> str:
        """An opaque launch handle naming ``patient`` (a bare id), valid :data:`LAUNCH_LIFETIME` seconds."""
        launch = secrets.token_urlsafe(24)
        with self.store.session(write=True) as session:
            value = json.dumps({"patient": patient})
            session.security_put("launch", grants.digest(launch), value, now + LAUNCH_LIFETIME, now)
        return launch


def context_of(user: User) -> RequestContext:
    """The request context of a signed-in user acting with everything their role allows."""
    claims = user.context_claims()
    return RequestContext(
        source="rest",
        authenticated=True,
        user=user.username,
        fhir_user=user.fhir_user,
        roles=frozenset({user.role}),
        scopes=parse_scopes(ROLE_SCOPES[user.role], resource_types()),
        organization=claims.get("organization"),  # as in their tokens: none for a national admin
        patient=claims.get("patient"),
    )
