"""FhirRequest and FhirResponse: what the HTTP edge hands the core, and what it gets back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ketnoi.interactions.context import RequestContext


@dataclass(slots=True)
class FhirRequest:
    """One FHIR interaction. ``path`` is relative to the FHIR base, without a leading slash."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None  # parsed JSON, or None
    base_url: str = "http://127.0.0.1:8080/fhir"
    context: RequestContext = field(default_factory=RequestContext)  # who is calling (made at the edge)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    @property
    def prefer(self) -> dict[str, str]:
        """Parsed ``Prefer`` header: ``return=minimal, handling=strict`` → {"return": "minimal", ...}."""
        out: dict[str, str] = {}
        for part in (self.headers.get("prefer") or "").replace(";", ",").split(","):
            key, _, value = part.strip().partition("=")
            if key:
                out[key.lower()] = value.strip().strip('"')
        return out


@dataclass(slots=True)
class FhirResponse:
    """The result. ``raw`` carries already-serialised JSON (a stored resource), else ``resource``;
    ``stream`` a body too large to hold in memory (an export file), sent chunk by chunk as read."""

    status: int
    resource: dict[str, Any] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    last_updated: float | None = None  # of the version the response is about (Bundle lastModified)
    # The stored contents whose data the answer carries (search matches and includes, history
    # versions), for the audit trail: the body itself may show less of them (_elements, _summary).
    # Iterable: an export file's lines are read one at a time, never held all at once.
    seen: Iterable[bytes] | None = None
    stream: Iterator[bytes] | None = None
