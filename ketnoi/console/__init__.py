"""The web console (ADR 0026): server-rendered pages for clinicians, facilities, provinces and patients,
mounted at ``/`` beside the FHIR API (``/fhir``) and the sign-in pages (``/auth``).

The console is an OAuth client of this server (:mod:`ketnoi.console.sessions`) and reads everything
through the FHIR interactions with the signed-in user's token (:mod:`ketnoi.console.records`).
"""

from __future__ import annotations

from starlette.applications import Starlette

from ketnoi.console import (
    account_pages,
    audit_pages,
    clinical_pages,
    dashboard_pages,
    import_pages,
    ops_pages,
    portal_pages,
    registry_pages,
    review_pages,
)
from ketnoi.console.sessions import ConsoleAuth
from ketnoi.console.views import Console, routes
from ketnoi.interactions.services import Services
from ketnoi.security.oauth import TokenService


def mount(app: Starlette, services: Services) -> Starlette:
    """Put the console's pages in front of ``app``'s routes (``/`` is the console's home page)."""
    authenticator = app.state.authenticator
    auth = None
    if authenticator is not None:  # --auth on: sign-in through this server's own OAuth endpoints
        tokens = TokenService(services.settings, services.store, authenticator.keys, authenticator.revocations)
        origin = services.settings.public_base().removesuffix("/fhir")
        auth = ConsoleAuth(services, tokens, origin)
    console = Console(services, auth, authenticator)
    # One module per group of pages, each returning its routes (its navigation row is in views.NAV).
    app.router.routes[0:0] = [
        *account_pages.routes(console),
        *audit_pages.routes(console),
        *clinical_pages.routes(console),
        *dashboard_pages.routes(console),
        *portal_pages.routes(console),
        *registry_pages.routes(console),
        *review_pages.routes(console),
        *import_pages.routes(console),
        *ops_pages.routes(console),
        *routes(console),
    ]
    return app


__all__ = ["mount"]
