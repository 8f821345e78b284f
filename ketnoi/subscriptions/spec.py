"""A Subscription resource read into what the matcher and the relay need (:class:`Spec`), or a 400
that names what is wrong (ADR 0025).

Two kinds, both R4 ``Subscription`` resources:

- **Criteria** (R4): ``criteria`` is a search URL, ``Type?params``; a new or changed version that
  the search would return is an event.
- **Topic** (Subscriptions R5 Backport IG): ``criteria`` is the canonical URL of one of this server's
  topics (:mod:`ketnoi.subscriptions.topics`), narrowed by ``backport-filter-criteria`` extensions on
  ``_criteria`` (``Type?param=value`` on the topic's filter parameters).

What is sent (``content``): without ``channel.payload``, R4's bare ping (a POST with no body, or
``ping`` on a websocket); with a payload and the backport's ``backport-payload-content`` extension
(``empty``, ``id-only``, ``full-resource``), a notification Bundle; a topic subscription without it
gets ``id-only``; an R4 criteria subscription with a payload and no extension gets R4's ``PUT
[endpoint]/[type]/[id]`` of the resource.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson

from ketnoi.fhir.outcome import FhirError, bad_request
from ketnoi.subscriptions.topics import TOPICS

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
FILTER = BACKPORT + "backport-filter-criteria"
CONTENT = BACKPORT + "backport-payload-content"
HEARTBEAT = BACKPORT + "backport-heartbeat-period"
TIMEOUT = BACKPORT + "backport-timeout"
MAX_COUNT = BACKPORT + "backport-max-count"
CHANNELS = ("rest-hook", "websocket")
PAYLOADS = ("application/fhir+json", "application/json")
CONTENTS = ("empty", "id-only", "full-resource")
MAX_HEADERS = 10
MAX_HEADER_LENGTH = 1024
# Headers a subscriber may not set: the request's own framing, and nothing that could carry the
# server's identity to a third party.
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "cookie", "x-forwarded-for"}
)


@dataclass(frozen=True, slots=True)
class Spec:
    id: str
    status: str  # requested | active | error | off
    resource_type: str
    criteria: tuple[str, ...]  # query strings that must all match (the topic's, then the filters)
    interactions: tuple[str, ...]  # create | update | delete
    topic: str | None
    channel: str  # rest-hook | websocket
    endpoint: str
    headers: tuple[str, ...]
    content: str  # ping | put | empty | id-only | full-resource
    payload: str | None  # the MIME type sent
    heartbeat: int | None  # seconds between heartbeats (topic subscriptions)
    timeout: int  # seconds a delivery may take
    max_count: int  # events per notification
    end: str | None  # Subscription.end: no events after it

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> Spec:
        data = orjson.loads(text)
        for key in ("criteria", "interactions", "headers"):
            data[key] = tuple(data[key])
        return cls(**data)


def read(body: dict[str, Any]) -> Spec:
    """The Spec of a Subscription resource, or a 400 naming the problem."""
    channel = body.get("channel") or {}
    kind = str(channel.get("type") or "")
    if kind not in CHANNELS:
        raise _bad(
            f"Subscription channel.type '{kind[:40]}' is not supported: use rest-hook or websocket",
            f"Kênh '{kind[:40]}' không được hỗ trợ: dùng rest-hook hoặc websocket",
        )
    raw = str(body.get("criteria") or "")
    topic = TOPICS.get(raw)
    resource_type, criteria = _topic_criteria(body, raw) if topic is not None else _search_criteria(raw)
    content, payload = _content(channel, topic is not None)
    return Spec(
        id=str(body.get("id") or ""),
        status=str(body.get("status") or "requested"),
        resource_type=resource_type,
        criteria=criteria,
        interactions=topic.interactions if topic is not None else ("create", "update"),
        topic=topic.url if topic is not None else None,
        channel=kind,
        endpoint=_endpoint(channel, kind),
        headers=_headers(channel),
        content=content,
        payload=payload,
        heartbeat=_seconds(channel, HEARTBEAT, None),
        timeout=min(_seconds(channel, TIMEOUT, 10) or 10, 60),
        max_count=max(1, min(_seconds(channel, MAX_COUNT, 100) or 100, 100)),
        end=body.get("end"),
    )


def _search_criteria(raw: str) -> tuple[str, tuple[str, ...]]:
    rtype, sep, query = raw.partition("?")
    if not rtype or "/" in rtype or not rtype[:1].isupper():
        raise _bad(
            f"Subscription.criteria must be a search such as Observation?code=... or a topic URL, not '{raw[:100]}'",
            f"Subscription.criteria phải là một tìm kiếm như Observation?code=... hoặc URL chủ đề, "
            f"không phải '{raw[:100]}'",
        )
    return rtype, (query,) if sep else ("",)


def _topic_criteria(body: dict[str, Any], url: str) -> tuple[str, tuple[str, ...]]:
    topic = TOPICS[url]
    criteria = [topic.criteria]
    for ext in (body.get("_criteria") or {}).get("extension") or []:
        if ext.get("url") != FILTER:
            continue
        value = str(ext.get("valueString") or "")
        rtype, _, query = value.partition("?")
        if rtype != topic.resource_type:
            raise _bad(
                f"A filter of topic {url} is {topic.resource_type}?param=value, not '{value[:100]}'",
                f"Bộ lọc của chủ đề {url} có dạng {topic.resource_type}?tham-số=giá-trị, không phải '{value[:100]}'",
            )
        for name in (p.partition("=")[0].partition(":")[0] for p in query.split("&") if p):
            if name not in topic.filters:
                raise _bad(
                    f"Topic {url} cannot be filtered by '{name[:60]}' (it allows {', '.join(topic.filters)})",
                    f"Chủ đề {url} không lọc được theo '{name[:60]}' (cho phép {', '.join(topic.filters)})",
                )
        criteria.append(query)
    return topic.resource_type, tuple(criteria)


def _content(channel: dict[str, Any], topic: bool) -> tuple[str, str | None]:
    payload = channel.get("payload")
    ext = [e for e in (channel.get("_payload") or {}).get("extension") or [] if e.get("url") == CONTENT]
    if payload is None:
        if ext:
            raise _bad("backport-payload-content needs channel.payload", "backport-payload-content cần channel.payload")
        return ("id-only", "application/fhir+json") if topic else ("ping", None)
    if payload not in PAYLOADS:
        raise _bad(
            f"Subscription channel.payload '{str(payload)[:60]}' is not supported: use application/fhir+json",
            f"channel.payload '{str(payload)[:60]}' không được hỗ trợ: dùng application/fhir+json",
        )
    if not ext:
        return ("id-only" if topic else "put"), str(payload)
    content = str(ext[0].get("valueCode") or "")
    if content not in CONTENTS:
        raise _bad(
            f"Payload content '{content[:40]}' is not one of empty, id-only, full-resource",
            f"Nội dung '{content[:40]}' không thuộc empty, id-only, full-resource",
        )
    return content, str(payload)


def _endpoint(channel: dict[str, Any], kind: str) -> str:
    endpoint = str(channel.get("endpoint") or "")
    if kind == "rest-hook" and not endpoint:
        raise _bad("A rest-hook Subscription needs channel.endpoint", "Subscription rest-hook cần channel.endpoint")
    return endpoint


def _headers(channel: dict[str, Any]) -> tuple[str, ...]:
    headers = [str(h) for h in channel.get("header") or []]
    if len(headers) > MAX_HEADERS:
        raise _bad(f"At most {MAX_HEADERS} channel headers", f"Tối đa {MAX_HEADERS} tiêu đề kênh")
    for header in headers:
        name, sep, _ = header.partition(":")
        bad_name = not sep or not name.strip() or name.strip().lower() in FORBIDDEN_HEADERS
        if bad_name or len(header) > MAX_HEADER_LENGTH or any(c in header for c in "\r\n\0"):
            raise _bad(
                f"Channel header '{header[:60]}' is not allowed: 'Name: value', at most {MAX_HEADER_LENGTH} "
                "characters, not Host, Content-Type, Content-Length, Cookie or a line break",
                f"Tiêu đề kênh '{header[:60]}' không hợp lệ: 'Tên: giá trị', tối đa {MAX_HEADER_LENGTH} ký tự, "
                "không phải Host, Content-Type, Content-Length, Cookie hay xuống dòng",
            )
    return tuple(headers)


def _seconds(channel: dict[str, Any], url: str, default: int | None) -> int | None:
    for ext in channel.get("extension") or []:
        if ext.get("url") == url:
            value = ext.get("valueUnsignedInt", ext.get("valuePositiveInt"))
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _bad(
                    f"{url.rpartition('/')[2]} must be a whole number", f"{url.rpartition('/')[2]} phải là số nguyên"
                )
            return value
    return default


def _bad(en: str, vi: str) -> FhirError:
    return bad_request(en, vi)
