"""Notification bodies (Subscriptions R5 Backport IG, R4 form; ADR 0025).

A notification is a ``Bundle`` of type ``history`` whose first entry is the subscription's status, a
``Parameters`` resource in the IG's ``backport-subscription-status-r4`` profile (R4 has no
SubscriptionStatus): the subscription, its topic, status, the notification type (``handshake``,
``heartbeat``, ``event-notification``, ``query-status``, ``query-event``), the number of events
since the subscription started, and one ``notification-event`` per event (number, timestamp,
focus). A client that sees a number skip knows it missed an event, and a number seen twice is a
duplicate (delivery is at least once). Then, per event, an entry for the focus: with
``id-only``, its URL and request; with ``full-resource``, the resource as well; with ``empty``,
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.repository import Repository
from ketnoi.store.base import StoredVersion, SubscriptionEvent
from ketnoi.subscriptions.spec import BACKPORT, Spec

STATUS_PROFILE = BACKPORT + "backport-subscription-status-r4"
NOTIFICATION_PROFILE = BACKPORT + "backport-subscription-notification-r4"


def focus_url(base: str, event: SubscriptionEvent) -> str:
    return f"{base}/{event.focus_type}/{event.focus_id}/_history/{event.focus_version}"


def focus_resources(repo: Repository, events: Sequence[SubscriptionEvent]) -> dict[int, dict[str, Any]]:
    """The version each event announced, by event number, as ``repo``'s caller may read it now (what
    it may not read is left out: the event goes without its resource). Usually the focus is still
    the current version: those are read in one query per type, only versions since replaced one by one."""
    current: dict[tuple[str, str], StoredVersion] = {}
    for rtype in {e.focus_type for e in events}:
        ids = [e.focus_id for e in events if e.focus_type == rtype]
        current |= {(v.resource_type, v.id): v for v in repo.read_many(rtype, ids)}
    out: dict[int, dict[str, Any]] = {}
    for event in events:
        stored = current.get((event.focus_type, event.focus_id))
        if stored is None or stored.version != event.focus_version:
            try:
                stored = repo.vread(event.focus_type, event.focus_id, str(event.focus_version))
            except FhirError:
                continue
        out[event.number or 0] = res.loads_object(stored.content)
    return out


def status(
    spec: Spec, kind: str, events_since_start: int, events: Sequence[SubscriptionEvent], base: str, state: str
) -> dict[str, Any]:
    """The status ``Parameters`` of one notification or ``$status`` answer."""
    params: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{spec.id}"}},
        {"name": "topic", "valueCanonical": spec.topic or f"{base}/Subscription/{spec.id}#criteria"},
        {"name": "status", "valueCode": state},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_since_start)},
    ]
    for event in events:
        part: list[dict[str, Any]] = [
            {"name": "event-number", "valueString": str(event.number)},
            {"name": "timestamp", "valueInstant": res.instant(event.recorded)},
        ]
        if spec.content != "empty":
            part.append({"name": "focus", "valueReference": {"reference": focus_url(base, event)}})
        params.append({"name": "notification-event", "part": part})
    return {"resourceType": "Parameters", "meta": {"profile": [STATUS_PROFILE]}, "parameter": params}


def bundle(
    spec: Spec,
    kind: str,
    events_since_start: int,
    events: Sequence[SubscriptionEvent],
    resources: dict[int, dict[str, Any]],
    base: str,
    state: str,
) -> dict[str, Any]:
    """A notification Bundle; ``resources``: the focus of each event by event number (full-resource)."""
    head = status(spec, kind, events_since_start, events, base, state)
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": head,
            "request": {"method": "GET", "url": f"{base}/Subscription/{spec.id}/$status"},
            "response": {"status": "200"},
        }
    ]
    if spec.content != "empty":
        entries.extend(_focus_entry(e, resources.get(e.number or 0), base) for e in events)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": res.instant(res.now()),
        "entry": entries,
    }


def _focus_entry(event: SubscriptionEvent, resource: dict[str, Any] | None, base: str) -> dict[str, Any]:
    created = event.focus_version == 1
    entry: dict[str, Any] = {
        "fullUrl": f"{base}/{event.focus_type}/{event.focus_id}",
        "request": {
            "method": "POST" if created else "PUT",
            "url": event.focus_type if created else f"{event.focus_type}/{event.focus_id}",
        },
        "response": {"status": "201" if created else "200", "etag": res.etag(event.focus_version)},
    }
    if resource is not None:
        entry["resource"] = resource
    return entry
