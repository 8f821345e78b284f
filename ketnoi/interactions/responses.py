"""Building FhirResponses for stored versions, honouring ``Prefer: return=...``."""

from __future__ import annotations

from typing import Any

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import Issue, operation_outcome
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.store.base import StoredVersion


def version_headers(stored: StoredVersion, base_url: str, *, location: bool) -> dict[str, str]:
    headers = {"ETag": res.etag(stored.version), "Last-Modified": res.http_date(stored.last_updated)}
    if location:
        headers["Location"] = f"{base_url}/{stored.resource_type}/{stored.id}/_history/{stored.version}"
    return headers


def read_response(stored: StoredVersion, base_url: str) -> FhirResponse:
    return FhirResponse(
        200,
        raw=stored.content,
        headers=version_headers(stored, base_url, location=False),
        last_updated=stored.last_updated,
    )


def write_response(
    request: FhirRequest, stored: StoredVersion, status: int, issues: list[Issue] | None = None
) -> FhirResponse:
    """201/200 after a write: body per ``Prefer: return`` (representation by default)."""
    headers = version_headers(stored, request.base_url, location=True)
    preference = request.prefer.get("return", "representation")
    if preference == "minimal":
        return FhirResponse(status, headers=headers, last_updated=stored.last_updated)
    if preference == "OperationOutcome":
        return FhirResponse(
            status, resource=outcome_for(stored, issues), headers=headers, last_updated=stored.last_updated
        )
    return FhirResponse(status, raw=stored.content, headers=headers, last_updated=stored.last_updated)


def outcome_for(stored: StoredVersion, issues: list[Issue] | None = None) -> dict[str, Any]:
    done = Issue(
        "information",
        "informational",
        f"{stored.resource_type}/{stored.id} version {stored.version} stored",
        f"Đã lưu {stored.resource_type}/{stored.id} phiên bản {stored.version}",
    )
    return operation_outcome([done, *(issues or [])])
