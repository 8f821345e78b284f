"""OAuth 2 clients registered by operators: who may ask for tokens, how they prove it, and for what.

Three kinds (SMART App Launch 2.x, "client authentication"):

* ``public``: a browser or phone app that cannot keep a secret; PKCE only (RFC 7636).
* ``confidential``: a server-side app with a client secret. The secret is random (256 bits), shown
  once by :meth:`Clients.add` and stored only as its Argon2id hash.
* ``backend``: a system without a user (SMART Backend Services), authenticated by a JWT signed with
  its own key (``private_key_jwt``, RFC 7523): its public JWK Set, or an https URL serving it.

Redirect URIs must later match exactly (RFC 9700 §4.1.3: no pattern or prefix matching), so they
are checked here once: absolute, no fragment (RFC 6749 §3.1.2), https except on the loopback
interface (RFC 8252 §7.3). The scope a client may be granted is validated with the SMART grammar
and kept in canonical form; one invalid scope refuses the whole registration.

One JSON record per client (kind ``"client"``, key = client_id). A revoked client keeps its record
so that its id is never reused and its registration can still be read.
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ketnoi.auth import passwords
from ketnoi.auth.keys import PRIVATE_MEMBERS
from ketnoi.auth.scopes import parse_scopes
from ketnoi.security import grants
from ketnoi.security.errors import Refused

if TYPE_CHECKING:
    from collections.abc import Callable

    from argon2 import PasswordHasher

    from ketnoi.store.base import Session, Store

    #: Called with the write transaction and the client as changed: the AuditEvent of the change.
    Recorder = Callable[[Session, "Client"], None]

KIND: Final = "client"
KINDS: Final = ("public", "confidential", "backend")
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
# client_id: 192 random bits in hex (48 characters). Not url-safe base64: an id starting with "-"
# (one in 64 of those) reads as an option to `ketnoi clients revoke --client-id ID`.
_ID_BYTES = 24
_SECRET_BYTES = 32  # client secret: 256 random bits
_MAX_NAME = 200
_ANY_TIME = 0.0  # client records never expire, so the instant given to a read does not matter
_ORGANIZATION = re.compile(r"Organization/[A-Za-z0-9\-.]{1,64}")  # the FHIR id datatype


class ClientError(Refused):
    """A refused client registration or change."""


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    kind: str  # public | confidential | backend
    secret_hash: str | None = field(repr=False)  # confidential clients only
    jwks: dict[str, Any] | None  # backend clients: their public JWK Set ...
    jwks_url: str | None  # ... or where to fetch it
    redirect_uris: tuple[str, ...]
    scope: str  # what it may be granted, canonical SMART scopes
    revoked: bool
    created: float
    # The organization it acts for with client_credentials ("Organization/ID"): in its tokens'
    # ``organization`` claim, recorded on every version it writes; None: the national level.
    organization: str | None = None


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > _MAX_NAME:
        raise ClientError(
            f"A client needs a name of 1 to {_MAX_NAME} characters.",
            f"Ứng dụng cần một tên dài 1 đến {_MAX_NAME} ký tự.",
        )


def _checked_scope(scope: str) -> str:
    parsed = parse_scopes(scope)
    if parsed.invalid:
        bad = ", ".join(parsed.invalid)
        raise ClientError(f"Invalid scopes: {bad}.", f"Phạm vi (scope) không hợp lệ: {bad}.")
    if not parsed.clinical and not parsed.other:
        raise ClientError("A client needs at least one scope.", "Ứng dụng cần ít nhất một phạm vi (scope).")
    return parsed.text()


def _allowed_url(url: str) -> bool:
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return False  # urlsplit drops tabs and newlines silently; the stored text must be what matched
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises for a port that is not a number
    except ValueError:  # also an invalid IPv6 literal
        return False
    if not host or parts.fragment:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK)


def _check_url(url: str, what: str) -> None:
    """Absolute, no fragment, https (http only on the loopback interface); ClientError otherwise."""
    if not _allowed_url(url):
        raise ClientError(
            f"{what} {url!r} must be an absolute https URL without '#' (http only for 127.0.0.1 or localhost).",
            f"{what} {url!r} phải là URL https tuyệt đối, không có '#' (chỉ dùng http cho 127.0.0.1 hoặc localhost).",
        )


def _check_jwks(jwks: Mapping[str, Any]) -> None:
    """A public JWK Set of EC/RSA keys, each with its own ``kid``: the key is picked by kid alone."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise ClientError("The JWK Set needs a non-empty 'keys' list.", "Bộ khóa JWK cần danh sách 'keys' không rỗng.")
    for key in keys:
        if PRIVATE_MEMBERS & key.keys():
            raise ClientError(
                "The JWK Set holds a private key: register the public keys only.",
                "Bộ khóa JWK chứa khóa bí mật: chỉ đăng ký khóa công khai.",
            )
        if key.get("kty") not in ("EC", "RSA") or not isinstance(key.get("kid"), str) or not key["kid"]:
            raise ClientError("Every key needs kty EC or RSA and a kid.", "Mỗi khóa cần kty EC hoặc RSA và một kid.")
    kids = [key["kid"] for key in keys]
    if len(set(kids)) != len(kids):
        raise ClientError("Two keys share one kid.", "Hai khóa trùng kid.")


def _check_organization(kind: str, organization: str | None) -> None:
    if organization is None:
        return
    if _ORGANIZATION.fullmatch(organization) is None:
        raise ClientError(
            f"{organization!r} is not a reference such as Organization/123.",
            f"{organization!r} không phải tham chiếu dạng Organization/123.",
        )
    if kind == "public":
        # A public app has no token of its own (no client_credentials): it acts for its users,
        # whose organization comes from their accounts.
        raise ClientError(
            "Only backend and confidential clients act for an organization of their own.",
            "Chỉ ứng dụng backend và confidential mới hoạt động cho một cơ sở riêng.",
        )


def _check_credentials(kind: str, redirect_uris: tuple[str, ...], jwks: Any, jwks_url: str | None) -> None:
    if kind not in KINDS:
        raise ClientError(
            f"Unknown client kind {kind!r}: use public, confidential or backend.",
            f"Loại ứng dụng {kind!r} không tồn tại: dùng public, confidential hoặc backend.",
        )
    if kind == "backend":
        _check_backend(redirect_uris, jwks, jwks_url)
    elif not redirect_uris:
        raise ClientError(
            f"A {kind} client needs at least one redirect URI.", f"Ứng dụng {kind} cần ít nhất một redirect URI."
        )
    elif jwks is not None or jwks_url is not None:
        raise ClientError("Only backend clients register keys.", "Chỉ ứng dụng backend mới đăng ký khóa.")
    for uri in redirect_uris:
        _check_url(uri, "Redirect URI")


def _check_backend(redirect_uris: tuple[str, ...], jwks: Any, jwks_url: str | None) -> None:
    if (jwks is None) == (jwks_url is None):
        raise ClientError(
            "A backend client needs its JWK Set or a JWK Set URL (one of them).",
            "Ứng dụng backend cần bộ khóa JWK hoặc URL của bộ khóa (một trong hai).",
        )
    if redirect_uris:
        raise ClientError("A backend client has no redirect URI.", "Ứng dụng backend không có redirect URI.")
    if jwks_url is not None:
        _check_url(jwks_url, "JWK Set URL")
    if jwks is not None:
        if not isinstance(jwks, Mapping):
            raise ClientError("The JWK Set must be a JSON object.", "Bộ khóa JWK phải là một đối tượng JSON.")
        _check_jwks(jwks)


def _to_json(client: Client) -> str:
    return json.dumps(asdict(client), sort_keys=True)


def _from_json(text: str) -> Client:
    data: dict[str, Any] = json.loads(text)
    known = {f.name: data[f.name] for f in fields(Client) if f.name in data}
    return Client(**{**known, "redirect_uris": tuple(known.get("redirect_uris", ()))})


class Clients:
    """The clients registered in ``store``. ``hasher``: the Argon2id parameters (tests pass cheap ones)."""

    def __init__(self, store: Store, *, hasher: PasswordHasher = passwords.DEFAULT_HASHER) -> None:
        self._store = store
        self._hasher = hasher

    def add(
        self,
        name: str,
        scope: str,
        *,
        kind: str,
        redirect_uris: tuple[str, ...] | builtins.list[str] = (),
        jwks: Mapping[str, Any] | None = None,
        jwks_url: str | None = None,
        organization: str | None = None,
        now: float,
        audit: Recorder | None = None,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and, for a confidential one, its secret (shown once, never stored).
        ``audit`` (here and in :meth:`revoke`) is called in the change's own transaction."""
        _check_name(name)
        uris = tuple(dict.fromkeys(redirect_uris))  # duplicates collapse, order kept
        _check_credentials(kind, uris, jwks, jwks_url)
        _check_organization(kind, organization)
        canonical = _checked_scope(scope)
        secret = secrets.token_urlsafe(_SECRET_BYTES) if kind == "confidential" else None
        secret_hash = None if secret is None else passwords.hash_password(secret, self._hasher)
        stored_jwks = None if jwks is None else json.loads(json.dumps(jwks))  # a plain, detached copy
        client_id = secrets.token_hex(_ID_BYTES)
        client = Client(
            client_id, name, kind, secret_hash, stored_jwks, jwks_url, uris, canonical, False, now, organization
        )
        with self._store.session(write=True) as session:
            if not session.security_add(KIND, client_id, _to_json(client), None, now):
                raise RuntimeError("client_id collision")  # 192 random bits: never, short of a broken RNG
            if audit is not None:
                audit(session, client)
        return client, secret

    def get(self, client_id: str) -> Client | None:
        with self._store.session(write=False) as session:
            text = session.security_get(KIND, client_id, _ANY_TIME)
        return None if text is None else _from_json(text)

    def list(self) -> builtins.list[Client]:
        """Every client, revoked ones included, by client_id."""
        with self._store.session(write=False) as session:
            return [_from_json(text) for _, text in session.security_list(KIND, _ANY_TIME)]

    def revoke(self, client_id: str, *, now: float, audit: Recorder | None = None) -> Client:
        """Mark a client revoked: it gets no new tokens, its secret stops working, and the tokens it
        already holds are refused from now on (the revocation list, ketnoi.security.grants)."""
        with self._store.session(write=True) as session:
            text = session.security_get(KIND, client_id, now, for_update=True)
            if text is None:
                raise ClientError(f"No client with id {client_id!r}.", f"Không có ứng dụng với id {client_id!r}.")
            client = replace(_from_json(text), revoked=True)
            session.security_put(KIND, client_id, _to_json(client), None, now)
            grants.revoke(session, "client", client_id, now)
            if audit is not None:
                audit(session, client)
        return client

    def verify_secret(self, client_id: str, secret: str) -> Client | None:
        """The active confidential client whose secret this is, else None, at the same cost either way."""
        client = self.get(client_id)
        if client is None or client.revoked or client.secret_hash is None:
            # Spend a verification anyway, so the answer time does not say which ids exist.
            passwords.burn_verify_time(self._hasher)
            return None
        return client if passwords.verify_password(client.secret_hash, secret, self._hasher) else None
