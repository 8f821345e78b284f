"""Subscriptions: R4 criteria subscriptions and the R5 Backport IG's topic-based ones, matched in the
write transaction from index rows and delivered by a relay from a transactional outbox (ADR 0025,
docs/subscriptions.md)."""

from __future__ import annotations

from ketnoi.interactions.services import Services
from ketnoi.subscriptions import service
from ketnoi.subscriptions.relay import Relay
from ketnoi.subscriptions.sockets import Hub

RELAY = "subscription_relay"
HUB = "subscription_hub"


def install(services: Services) -> Relay:
    """Hook subscriptions into the write path; the relay is returned unstarted (the server starts it)."""
    registry = service.install(services)
    hub = Hub()
    relay = Relay(services, registry, hub)
    services.extras[RELAY] = relay
    services.extras[HUB] = hub
    return relay


def relay_of(services: Services) -> Relay | None:
    relay = services.extras.get(RELAY)
    return relay if isinstance(relay, Relay) else None
