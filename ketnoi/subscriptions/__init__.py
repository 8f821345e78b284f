"""Subscriptions: R4 criteria subscriptions and the R5 Backport IG's topic-based ones, matched in the
write transaction from index rows and delivered by a relay from a transactional outbox (ADR 0025,
docs/subscriptions.md)."""

from __future__ import annotations

from typing import Any

from ketnoi.interactions.services import Services
from ketnoi.subscriptions import service
from ketnoi.subscriptions.relay import Relay
from ketnoi.subscriptions.sockets import Hub
from ketnoi.subscriptions.spec import BACKPORT
from ketnoi.subscriptions.topics import TOPICS

RELAY = "subscription_relay"
HUB = "subscription_hub"


def install(services: Services) -> Relay:
    """Hook subscriptions into the write path; the relay is returned unstarted (the server starts it)."""
    registry = service.install(services)
    hub = Hub()
    relay = Relay(services, registry, hub)
    services.extras[RELAY] = relay
    services.extras[HUB] = hub
    services.capabilities.append(describe)
    return relay


def describe(statement: dict[str, Any]) -> None:
    """The Subscription entry of the CapabilityStatement names the topics (backport IG) and channels."""
    for resource in statement["rest"][0]["resource"]:
        if resource["type"] == "Subscription":
            resource["extension"] = [
                {"url": BACKPORT + "capabilitystatement-subscriptiontopic-canonical", "valueCanonical": url}
                for url in TOPICS
            ]
            resource["supportedProfile"] = [BACKPORT + "backport-subscription"]
            resource["documentation"] = (
                "R4 criteria subscriptions and the R5 Backport topics listed here; channels rest-hook "
                "(endpoints in KETNOI_SUBSCRIPTION_ENDPOINTS) and websocket ([base]/$websocket); payload "
                "none, application/fhir+json with backport-payload-content empty, id-only or full-resource"
            )


def relay_of(services: Services) -> Relay | None:
    relay = services.extras.get(RELAY)
    return relay if isinstance(relay, Relay) else None
