"""Token revocation (RFC 7009) and introspection (RFC 7662), without HTTP.

Revocation: a client ends its own tokens. A refresh token ends its whole grant (every refresh
token and, through the ``sid`` claim, every access token of it); an access token ends itself.
Another client's token, an unknown token or garbage is answered the same way — done — so the
endpoint tells nobody what exists (RFC 7009 §2.2).

Introspection: a resource server or backend asks whether a token is active. Only confidential and
backend clients may ask (a public client could use it to test stolen tokens). Anything not active —
expired, revoked, not ours, another client's refresh token, garbage — is exactly ``{"active": false}``
(RFC 7662 §2.2: nothing more may be said about it).
"""

from __future__ import annotations

from typing import Any, Final

from ketnoi.auth.tokens import AccessClaims, TokenError, VerifiedTokenCache, verify_access_token
from ketnoi.security import grants
from ketnoi.security.client_auth import OAuthError
from ketnoi.security.clients import Client
from ketnoi.security.oauth import TokenService

INACTIVE: Final = {"active": False}


class TokenStatus:
    """Revocation and introspection for one server, sharing its token service's state."""

    def __init__(self, tokens: TokenService) -> None:
        self.tokens = tokens
        self.store = tokens.store
        self.revocations = tokens.revocations
        self.cache = VerifiedTokenCache()

    def revoke(self, form: dict[str, str], authorization: str | None, now: float) -> None:
        """RFC 7009: revoke ``token`` if it is this client's; say nothing either way."""
        client = self.tokens.client_auth.authenticate(form, authorization, now)
        token = form.get("token", "")
        if not token:
            raise OAuthError("invalid_request", "the token to revoke is missing")
        if token.count(".") == 2:
            claims = self._access(token, now)
            if claims is not None and claims.client_id == client.client_id:
                self.revocations.add("jti", claims.jti, now)
            return
        with self.store.session(write=True) as session:
            family = grants.refresh_family_of(session, token, now)
            if family is not None and family.client_id == client.client_id:
                grants.end_family(session, family.family, now)
        self.revocations.reload()

    def introspect(self, form: dict[str, str], caller: Client | None, now: float) -> dict[str, Any]:
        """RFC 7662 for an authenticated confidential or backend ``caller`` (None: a bearer-token
        caller with a ``system/`` scope, checked by the edge)."""
        token = form.get("token", "")
        if not token:
            raise OAuthError("invalid_request", "the token to introspect is missing")
        if token.count(".") == 2:
            claims = self._access(token, now)
            return INACTIVE if claims is None else _active_access(claims)
        with self.store.session(write=False) as session:
            family = grants.refresh_family_of(session, token, now)
        if family is None or caller is None or family.client_id != caller.client_id:
            return INACTIVE
        return {
            "active": True, "token_type": "refresh_token", "scope": family.scope, "client_id": family.client_id,
            "sub": family.username, "exp": int(family.expires), "iss": self.tokens.issuer,
        }  # fmt: skip

    def may_introspect(self, form: dict[str, str], authorization: str | None, now: float) -> Client | None:
        """The client asking, if it may; a bearer-token caller is checked with :meth:`bearer_may`."""
        client = self.tokens.client_auth.authenticate(form, authorization, now)
        if client.kind == "public":
            raise OAuthError("invalid_client", "public clients cannot introspect tokens", 401)
        return client

    def bearer_may(self, token: str, now: float) -> bool:
        """Whether an access token lets its holder introspect: active, with a ``system/`` scope."""
        claims = self._access(token, now)
        return claims is not None and any(s.startswith("system/") for s in claims.scope.split())

    def _access(self, token: str, now: float) -> AccessClaims | None:
        """The claims of an active access token of this server, else None."""
        try:
            claims = verify_access_token(
                token, self.tokens.keys.ring(now), issuer=self.tokens.issuer, audience=self.tokens.audience,
                now=now, cache=self.cache,
            )  # fmt: skip
        except TokenError:
            return None
        return None if self.revocations.revoked(claims, now) else claims


def _active_access(claims: AccessClaims) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "active": True, "token_type": "Bearer", "scope": claims.scope, "client_id": claims.client_id,
        "sub": claims.sub, "exp": claims.exp, "iat": claims.iat, "iss": claims.issuer,
        "aud": claims.audience[0] if len(claims.audience) == 1 else list(claims.audience), "jti": claims.jti,
    }  # fmt: skip
    for name in ("patient", "fhirUser", "organization"):
        if isinstance(claims.extra.get(name), str):
            answer[name] = claims.extra[name]
    return answer
