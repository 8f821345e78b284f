"""history at instance, type and system level (http://hl7.org/fhir/R4/http.html#history).

Pages are cut by the global write sequence (``_page=<seq>``), not by offset, so a page stays
correct while new versions are written.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import bad_request, not_found
from ketnoi.interactions.repository import Repository, check_type
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.search.normalize import date_range
from ketnoi.store.base import StoredVersion

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def history(repo: Repository, request: FhirRequest, rtype: str | None = None, id: str | None = None) -> FhirResponse:
    if rtype is not None:
        check_type(rtype)
    if id is not None and rtype is not None and not repo.exists(rtype, id):
        raise not_found(f"{rtype}/{id} not found", f"Không tìm thấy {rtype}/{id}")
    settings = repo.services.settings
    count = min(_int(request, "_count", settings.default_count), settings.max_count)
    since = _date(request, "_since", low=True)
    at_value = request.param("_at")
    at = _range(at_value) if at_value else None
    before = _int(request, "_page", 0) or None
    versions = repo.history(rtype, id, since=since, at=at, before_seq=before, limit=count + 1)
    has_next = len(versions) > count
    versions = versions[:count]
    base = "/".join(p for p in (request.base_url, rtype, id, "_history") if p)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
    kept = [(k, v) for k, v in request.query if k != "_page"]
    links = [{"relation": "self", "url": f"{base}?{urlencode(request.query)}" if request.query else base}]
    if has_next and versions:
        links.append({"relation": "next", "url": f"{base}?{urlencode([*kept, ('_page', str(versions[-1].seq))])}"})
    bundle["link"] = links
    if not has_next and before is None:
        bundle["total"] = len(versions)
    bundle["entry"] = [_entry(request.base_url, v) for v in versions]
    # For the audit trail; a deletion carries no content, and no one's data.
    return FhirResponse(200, resource=bundle, seen=[v.content for v in versions if v.content is not None])


def _entry(base_url: str, v: StoredVersion) -> dict[str, Any]:
    url = f"{v.resource_type}/{v.id}"
    entry: dict[str, Any] = {"fullUrl": f"{base_url}/{url}"}
    if v.content is not None:
        entry["resource"] = res.loads(v.content)
    method = v.method if v.method in _STATUS else "PUT"
    entry["request"] = {"method": method, "url": v.resource_type if method == "POST" else url}
    entry["response"] = {
        "status": _STATUS[method],
        "etag": res.etag(v.version),
        "lastModified": res.instant(v.last_updated),
    }
    return entry


def _int(request: FhirRequest, name: str, default: int) -> int:
    value = request.param(name)
    if value is None:
        return default
    if not value.isdigit() or len(value) > 18:
        raise bad_request(f"{name} must be a non-negative integer", f"{name} phải là số nguyên không âm")
    return int(value)


def _range(value: str) -> tuple[float, float]:
    try:
        return date_range(value)
    except ValueError:
        raise bad_request(
            f"'{value[:60]}' is not a valid date/time", f"'{value[:60]}' không phải ngày/giờ hợp lệ"
        ) from None


def _date(request: FhirRequest, name: str, *, low: bool) -> float | None:
    value = request.param(name)
    if value is None:
        return None
    bounds = _range(value)
    return bounds[0] if low else bounds[1]
