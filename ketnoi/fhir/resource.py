"""Small helpers on FHIR resources as plain dicts, JSON (de)serialisation and instants."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson

ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def dumps(resource: Any) -> bytes:
    return orjson.dumps(resource)


def loads_object(content: bytes | None) -> dict[str, Any]:
    """A stored version's content as a JSON object: ``{}`` for none (a deleted version) or a non-object."""
    loaded = orjson.loads(content or b"{}")
    return loaded if isinstance(loaded, dict) else {}


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def now() -> float:
    """Current time in epoch seconds, rounded to the millisecond FHIR instants carry."""
    return round(time.time(), 3)


def instant(ts: float) -> str:
    """Epoch seconds → FHIR instant, e.g. ``2026-11-27T03:50:08.123+00:00``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def http_date(ts: float) -> str:
    """Epoch seconds → RFC 9110 HTTP-date, for ``Last-Modified``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parse_http_date(value: str) -> float | None:
    try:
        return datetime.strptime(value.strip(), "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_etag(value: str) -> str:
    """``W/"3"`` or ``"3"`` or ``3`` → ``"3"``."""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def without_version_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without the server-managed ``meta.versionId``/``meta.lastUpdated`` (an empty
    meta is dropped), for comparing content across versions."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        out["meta"] = meta
    return out
