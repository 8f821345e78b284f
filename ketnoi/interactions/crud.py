"""create, read, vread, update, patch, delete and their conditional forms
(http://hl7.org/fhir/R4/http.html). Each takes a Repository bound to the caller's transaction."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError, Issue, bad_request, operation_outcome
from ketnoi.fhir.patch import apply_fhirpath_patch, apply_json_patch
from ketnoi.interactions import responses
from ketnoi.interactions.repository import Repository, check_type
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.search import find_ids
from ketnoi.store.base import StoredVersion


def read(repo: Repository, request: FhirRequest, rtype: str, id: str) -> FhirResponse:
    stored = repo.read(rtype, id)
    if _not_modified(request, stored):
        return FhirResponse(304, headers=responses.version_headers(stored, request.base_url, location=False))
    return responses.read_response(stored, request.base_url)


def vread(repo: Repository, request: FhirRequest, rtype: str, id: str, vid: str) -> FhirResponse:
    stored = repo.vread(rtype, id, vid)
    return responses.read_response(stored, request.base_url)


def _not_modified(request: FhirRequest, stored: StoredVersion) -> bool:
    none_match = request.header("if-none-match")
    if none_match is not None:
        tags = {res.parse_etag(t) for t in none_match.split(",")}
        return str(stored.version) in tags or "*" in tags
    since = request.header("if-modified-since")
    if since is not None:
        when = res.parse_http_date(since)
        return when is not None and stored.last_updated < when + 1  # HTTP dates have 1 s precision
    return False


def create(repo: Repository, request: FhirRequest, rtype: str) -> FhirResponse:
    check_type(rtype)
    body = _body_of_type(request, rtype)
    criteria = request.header("if-none-exist")
    if criteria:
        existing = conditional_match(repo, rtype, criteria, request)
        if existing is not None:
            return responses.write_response(request, existing, 200)
    stored = repo.create(body)
    return responses.write_response(request, stored, 201, repo.last_warnings)


def update(repo: Repository, request: FhirRequest, rtype: str, id: str) -> FhirResponse:
    body = _body_of_type(request, rtype)
    stored, created = repo.update(rtype, id, body, if_match=request.header("if-match"))
    return responses.write_response(request, stored, 201 if created else 200, repo.last_warnings)


def conditional_update(repo: Repository, request: FhirRequest, rtype: str) -> FhirResponse:
    """PUT [type]?criteria: 0 matches → create, 1 → update it, several → 412."""
    check_type(rtype)
    body = _body_of_type(request, rtype)
    ids = _match_ids(repo, rtype, request.query, request)
    if len(ids) > 1:
        raise _many(rtype, len(ids))
    if not ids:
        if "id" in body:
            stored, _ = repo.update(rtype, str(body["id"]), body)
        else:
            stored = repo.create(body)
        return responses.write_response(request, stored, 201, repo.last_warnings)
    if "id" in body and body["id"] != ids[0]:
        raise bad_request(
            f"Body id '{body['id']}' differs from the matching resource {rtype}/{ids[0]}",
            f"Id '{body['id']}' trong nội dung khác với tài nguyên khớp {rtype}/{ids[0]}",
        )
    body = {**body, "id": ids[0]}
    stored, created = repo.update(rtype, ids[0], body, if_match=request.header("if-match"))
    return responses.write_response(request, stored, 201 if created else 200, repo.last_warnings)


def delete(repo: Repository, request: FhirRequest, rtype: str, id: str) -> FhirResponse:
    stored = repo.delete(rtype, id, if_match=request.header("if-match"))
    return _deleted_response(request, [stored] if stored else [], f"{rtype}/{id}")


def conditional_delete(repo: Repository, request: FhirRequest, rtype: str) -> FhirResponse:
    """DELETE [type]?criteria: deletes the single match; several matches → 412 (single mode)."""
    check_type(rtype)
    ids = _match_ids(repo, rtype, request.query, request)
    if len(ids) > 1:
        raise _many(rtype, len(ids))
    done = [s for s in (repo.delete(rtype, i) for i in ids) if s is not None]
    return _deleted_response(request, done, rtype)


def _deleted_response(request: FhirRequest, done: list[StoredVersion], what: str) -> FhirResponse:
    headers = {"ETag": res.etag(done[0].version)} if done else {}
    if request.prefer.get("return") == "minimal":
        return FhirResponse(204, headers=headers)
    en = f"Deleted {what}" if done else f"Nothing to delete: {what} does not exist or is already deleted"
    vi = f"Đã xoá {what}" if done else f"Không có gì để xoá: {what} không tồn tại hoặc đã bị xoá"
    return FhirResponse(
        200, resource=operation_outcome([Issue("information", "informational", en, vi)]), headers=headers
    )


def patch(repo: Repository, request: FhirRequest, rtype: str, id: str) -> FhirResponse:
    current = repo.read(rtype, id)
    repo.check_if_match(current, request.header("if-match"), rtype, id)
    resource = res.loads(current.content or b"{}")
    patched = _apply_patch(resource, request)
    if patched.get("resourceType") != rtype or patched.get("id") != id:
        raise FhirError.of(
            422,
            "processing",
            "A patch may not change resourceType or id",
            "Bản vá không được thay đổi resourceType hoặc id",
        )
    stored = repo.replace_with(current, patched, "PATCH")
    return responses.write_response(request, stored, 200, repo.last_warnings)


def conditional_patch(repo: Repository, request: FhirRequest, rtype: str) -> FhirResponse:
    check_type(rtype)
    ids = _match_ids(repo, rtype, request.query, request)
    if len(ids) != 1:
        if not ids:
            raise FhirError.of(
                404, "not-found", f"No {rtype} matches the patch criteria", f"Không có {rtype} nào khớp tiêu chí vá"
            )
        raise _many(rtype, len(ids))
    return patch(repo, request, rtype, ids[0])


def _apply_patch(resource: dict[str, Any], request: FhirRequest) -> dict[str, Any]:
    ctype = (request.header("content-type") or "").split(";")[0].strip().lower()
    if ctype == "application/json-patch+json":
        return apply_json_patch(resource, request.body)
    if (
        ctype in ("application/fhir+json", "application/json")
        and isinstance(request.body, dict)
        and request.body.get("resourceType") == "Parameters"
    ):
        return apply_fhirpath_patch(resource, request.body)
    raise FhirError.of(
        415,
        "not-supported",
        "PATCH takes application/json-patch+json (JSON Patch) or a FHIRPath Patch Parameters "
        "resource as application/fhir+json",
        "PATCH nhận application/json-patch+json (JSON Patch) hoặc tài nguyên Parameters "
        "FHIRPath Patch dạng application/fhir+json",
    )


def _body_of_type(request: FhirRequest, rtype: str) -> dict[str, Any]:
    body = request.body
    if not isinstance(body, dict):
        raise bad_request(
            "The request body must be a FHIR resource (a JSON object)",
            "Nội dung yêu cầu phải là một tài nguyên FHIR (đối tượng JSON)",
            code="structure",
        )
    if body.get("resourceType") != rtype:
        raise bad_request(
            f"Body resourceType '{body.get('resourceType')}' does not match '{rtype}' in the URL",
            f"resourceType '{body.get('resourceType')}' trong nội dung khác với '{rtype}' trên URL",
        )
    return body


def conditional_match(repo: Repository, rtype: str, criteria: str, request: FhirRequest) -> StoredVersion | None:
    """If-None-Exist: the single existing match, None if none; several → 412."""
    query = parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
    ids = _match_ids(repo, rtype, query, request)
    if len(ids) > 1:
        raise _many(rtype, len(ids))
    return repo.read(rtype, ids[0]) if ids else None


def _match_ids(repo: Repository, rtype: str, query: list[tuple[str, str]], request: FhirRequest) -> list[str]:
    # Serialise conditional writers on the same criteria, so two racing conditional creates
    # cannot both see "no match" (PostgreSQL; SQLite has one writer already).
    repo.lock(f"{rtype}?{sorted(query)}")
    return find_ids(repo, rtype, query, request.base_url, limit=2)


def _many(rtype: str, n: int) -> FhirError:
    shown = f"{n}" if n < 2 else "several"
    return FhirError.of(
        412,
        "multiple-matches",
        f"The criteria match {shown} {rtype} resources; make them more selective",
        f"Tiêu chí khớp nhiều tài nguyên {rtype}; hãy thu hẹp tiêu chí",
    )
