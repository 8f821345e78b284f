"""batch and transaction Bundles (http://hl7.org/fhir/R4/http.html#transaction).

A transaction runs in one database transaction: ids are assigned and conditional creates,
updates and references resolved first, ``urn:uuid:`` references rewritten, then entries run in
the spec's order (DELETE, POST, PUT/PATCH, GET) through the same handlers as REST calls. Any
failure rolls everything back and the answer names the entry. A batch runs each entry in its own
transaction and answers per entry.

Each entry leaves its AuditEvents as a REST call would (``interactions.audit``), and the Bundle one
of its own: a transaction appends them all in its transaction, last; a batch entry that writes, in
its own; the rest wait for the group commit before the Bundle is answered.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError, Issue, bad_request
from ketnoi.interactions import responses
from ketnoi.interactions.audit import Trail, append
from ketnoi.interactions.repository import Repository, conflict, unit_of_work
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.search import find_ids
from ketnoi.interactions.services import Services
from ketnoi.store.base import VersionConflict

Dispatch = Callable[[Repository, FhirRequest], FhirResponse]
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_REASON = {
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
}


def process(services: Services, request: FhirRequest, dispatch: Dispatch, trail: Trail) -> FhirResponse:
    bundle = request.body
    kind = _check_bundle(bundle, services.settings.max_bundle_entries)
    entries: list[dict[str, Any]] = bundle.get("entry", [])
    if kind == "batch":
        return _batch(services, request, entries, dispatch, trail)
    return _transaction(services, request, entries, dispatch, trail)


def _check_bundle(bundle: Any, max_entries: int) -> str:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise bad_request(
            "POST to the FHIR base takes a Bundle of type batch or transaction",
            "POST tới địa chỉ gốc FHIR nhận Bundle loại batch hoặc transaction",
        )
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise bad_request(
            f"Bundle type '{kind}' cannot be processed; use batch or transaction",
            f"Không xử lý được Bundle loại '{kind}'; hãy dùng batch hoặc transaction",
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise bad_request(
            "Bundle.entry must be an array of objects", "Bundle.entry phải là mảng các đối tượng", code="structure"
        )
    if len(entries) > max_entries:
        raise FhirError.of(
            413,
            "too-costly",
            f"The Bundle has {len(entries)} entries; the limit is {max_entries}",
            f"Bundle có {len(entries)} mục; giới hạn là {max_entries}",
        )
    return str(kind)


def _entry_request(parent: FhirRequest, entry: dict[str, Any]) -> FhirRequest:
    req = entry.get("request")
    if not isinstance(req, dict) or not isinstance(req.get("method"), str) or not isinstance(req.get("url"), str):
        raise bad_request(
            "Each entry needs request.method and request.url",
            "Mỗi mục cần request.method và request.url",
            code="required",
        )
    method = req["method"].upper()
    if method not in _ORDER:
        raise bad_request(f"Unknown method '{req['method']}'", f"Phương thức '{req['method']}' không hợp lệ")
    url = req["url"]
    base = parent.base_url.rstrip("/") + "/"
    if url.startswith(base):
        url = url[len(base) :]
    split = urlsplit(url)
    headers: dict[str, str] = {}
    for field, header in (
        ("ifMatch", "if-match"),
        ("ifNoneMatch", "if-none-match"),
        ("ifNoneExist", "if-none-exist"),
        ("ifModifiedSince", "if-modified-since"),
    ):
        if isinstance(req.get(field), str):
            headers[header] = req[field]
    if "prefer" in parent.headers:
        headers["prefer"] = parent.headers["prefer"]
    body = entry.get("resource")
    if method == "PATCH" and isinstance(body, dict) and body.get("resourceType") == "Binary":
        headers["content-type"] = str(body.get("contentType", ""))
        body = _binary_json(body.get("data"))
    elif method == "PATCH":
        headers["content-type"] = "application/fhir+json"
    query = parse_qsl(split.query, keep_blank_values=True)
    return FhirRequest(method, split.path, query, headers, body, parent.base_url, parent.context)


def _binary_json(data: Any) -> Any:
    """The JSON Patch document carried base64-encoded in a Binary entry."""
    try:
        return res.loads(base64.b64decode(data if isinstance(data, str) else "", validate=True))
    except ValueError:  # bad base64 (binascii.Error) or bad JSON (orjson.JSONDecodeError)
        raise bad_request(
            "Binary.data must be a base64-encoded JSON Patch document",
            "Binary.data phải là tài liệu JSON Patch mã hoá base64",
        ) from None


def _at(index: int, exc: FhirError) -> FhirError:
    """The same error, its messages prefixed with the entry that caused it."""
    issues = [
        Issue(
            i.severity,
            i.code,
            f"Bundle.entry[{index}]: {i.en}",
            f"Bundle.entry[{index}]: {i.vi}",
            i.expression or (f"Bundle.entry[{index}]",),
        )
        for i in exc.issues
    ]
    return FhirError(exc.status, issues)


def _response_entry(resp: FhirResponse) -> dict[str, Any]:
    out: dict[str, Any] = {"status": f"{resp.status} {_REASON.get(resp.status, '')}".strip()}
    for header, field in (("Location", "location"), ("ETag", "etag")):
        if header in resp.headers:
            out[field] = resp.headers[header]
    if resp.last_updated is not None:
        out["lastModified"] = res.instant(resp.last_updated)
    entry: dict[str, Any] = {"response": out}
    if resp.raw is not None:
        entry["resource"] = res.loads(resp.raw)
    elif resp.resource is not None:
        if resp.status >= 400 or resp.resource.get("resourceType") == "OperationOutcome":
            out["outcome"] = resp.resource
        else:
            entry["resource"] = resp.resource
    return entry


def _batch(
    services: Services, request: FhirRequest, entries: list[dict[str, Any]], dispatch: Dispatch, trail: Trail
) -> FhirResponse:
    results: list[dict[str, Any]] = []
    for entry in entries:
        sub = request  # until the entry's own request is read (a malformed entry is the Bundle's failure)
        try:
            sub = _entry_request(request, entry)
            write = sub.method not in ("GET", "HEAD")
            with unit_of_work(services, sub.context, write=write) as repo:
                resp = dispatch(repo, sub)
                trail.record(repo, sub, resp, write=write)  # last, before the entry's commit
        except FhirError as exc:
            resp = FhirResponse(exc.status, resource=exc.outcome())
            trail.later(sub, resp)
        except VersionConflict as exc:
            resp = FhirResponse(409, resource=conflict(exc).outcome())
            trail.later(sub, resp)
        results.append(_response_entry(resp))
    response = FhirResponse(200, resource={"resourceType": "Bundle", "type": "batch-response", "entry": results})
    trail.later(request, response)  # the Bundle itself
    return response


def _transaction(
    services: Services, request: FhirRequest, entries: list[dict[str, Any]], dispatch: Dispatch, trail: Trail
) -> FhirResponse:
    subs = [_step(i, _entry_request, request, e) for i, e in enumerate(entries)]
    results: list[dict[str, Any] | None] = [None] * len(entries)
    order = sorted(range(len(subs)), key=lambda i: _ORDER[subs[i].method])
    deletes = [i for i in order if subs[i].method == "DELETE"]
    others = [i for i in order if subs[i].method != "DELETE"]
    with unit_of_work(services, request.context, write=True) as repo:
        plan = _Plan(repo, request, entries, subs)
        events = []  # every entry's, appended together at the end: the log's lock is held briefly

        def run(index: int) -> None:
            before = len(repo.written)
            resp = _step(index, plan.run, index, dispatch)
            if resp.status >= 400:
                raise _at(index, FhirError(resp.status, [Issue("error", "processing", "entry failed", "mục thất bại")]))
            results[index] = _response_entry(resp)
            events.extend(trail.events(repo, subs[index], resp, repo.written[before:]))

        # Deletions first, so that conditional creates and references below no longer see them.
        for index in deletes:
            _step(index, plan.resolve, index)
            run(index)
        for index in others:
            _step(index, plan.resolve, index)
        repo.prefetch(plan.targets)  # lock and read every resource to be updated, in one query
        for index in others:
            _step(index, plan.rewrite, index)
        for index in others:
            run(index)
        response = FhirResponse(
            200, resource={"resourceType": "Bundle", "type": "transaction-response", "entry": results}
        )
        append(repo, [*events, *trail.events(repo, request, response, ())])  # last, before the commit
    trail.settle()
    return response


def _step(index: int, action: Callable[..., Any], *args: Any) -> Any:
    """Run one step for an entry; an error names the entry (and rolls the transaction back)."""
    try:
        return action(*args)
    except FhirError as exc:
        raise _at(index, exc) from None


class _Plan:
    """Transaction pre-processing: id assignment, conditional resolution, reference rewriting."""

    def __init__(
        self, repo: Repository, request: FhirRequest, entries: list[dict[str, Any]], subs: list[FhirRequest]
    ) -> None:
        self.repo, self.request, self.entries, self.subs = repo, request, entries, subs
        self.mapping: dict[str, str] = {}  # fullUrl → "Type/id"
        self.new_ids: dict[int, str] = {}  # POST entry index → assigned id
        self.existing: dict[int, str] = {}  # conditional create that matched → existing id
        self.seen: set[str] = set()  # resources already targeted by an entry
        self.targets: list[tuple[str, str]] = []  # (type, id) that PUT/PATCH entries will update

    def resolve(self, index: int) -> None:
        self._resolve_entry(index, self.entries[index], self.subs[index], self.seen)

    def rewrite(self, index: int) -> None:
        sub = self.subs[index]
        if isinstance(sub.body, dict | list):
            sub.body = self._rewrite(sub.body)

    def _resolve_entry(self, index: int, entry: dict[str, Any], sub: FhirRequest, seen: set[str]) -> None:
        full_url = entry.get("fullUrl")
        parts = [p for p in sub.path.split("/") if p]
        if sub.method == "POST" and len(parts) == 1:
            rtype = parts[0]
            id = None
            criteria = sub.header("if-none-exist")
            if criteria:
                ids = find_ids(
                    self.repo,
                    rtype,
                    parse_qsl(criteria.lstrip("?"), keep_blank_values=True),
                    self.request.base_url,
                    limit=2,
                )
                if len(ids) > 1:
                    raise FhirError.of(
                        412,
                        "multiple-matches",
                        f"ifNoneExist matches several {rtype} resources",
                        f"ifNoneExist khớp nhiều tài nguyên {rtype}",
                    )
                if ids:
                    id = self.existing[index] = ids[0]
            if id is None:
                id = self.new_ids[index] = str(uuid.uuid4())
            target = f"{rtype}/{id}"
        elif sub.method in ("PUT", "PATCH", "DELETE") and len(parts) == 1 and sub.query:
            rtype = parts[0]
            ids = find_ids(self.repo, rtype, sub.query, self.request.base_url, limit=2)
            if len(ids) > 1:
                raise FhirError.of(
                    412,
                    "multiple-matches",
                    f"The conditional URL matches several {rtype} resources",
                    f"URL có điều kiện khớp nhiều tài nguyên {rtype}",
                )
            target = f"{rtype}/{ids[0]}" if ids else ""
        elif sub.method in ("PUT", "PATCH", "DELETE") and len(parts) == 2:
            target = "/".join(parts)
        else:
            return
        if target and sub.method in ("PUT", "PATCH"):
            rtype_, _, id_ = target.partition("/")
            self.targets.append((rtype_, id_))
        if target and sub.method != "PATCH":
            key = f"{target}"
            if key in seen:
                raise bad_request(
                    f"{target} appears in more than one entry of the transaction",
                    f"{target} xuất hiện trong nhiều mục của giao dịch",
                )
            seen.add(key)
        if isinstance(full_url, str) and target:
            self.mapping[full_url] = target

    def _rewrite(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: self._rewrite_ref(v) if k == "reference" and isinstance(v, str) else self._rewrite(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._rewrite(v) for v in value]
        if isinstance(value, str):
            if value in self.mapping:
                return self.mapping[value]
            if "urn:uuid:" in value and value.startswith("<div"):
                for full_url, target in self.mapping.items():
                    value = value.replace(f'"{full_url}"', f'"{target}"')
        return value

    def _rewrite_ref(self, ref: str) -> str:
        if ref in self.mapping:
            return self.mapping[ref]
        if "?" in ref and not ref.startswith(("http://", "https://", "urn:")):
            rtype, _, criteria = ref.partition("?")
            ids = find_ids(
                self.repo, rtype, parse_qsl(criteria, keep_blank_values=True), self.request.base_url, limit=2
            )
            if len(ids) != 1:
                raise FhirError.of(
                    412 if ids else 404,
                    "not-found" if not ids else "multiple-matches",
                    f"Conditional reference '{ref}' matches {len(ids) if ids else 'no'} resources; "
                    "it must match exactly one",
                    f"Tham chiếu có điều kiện '{ref}' phải khớp đúng một tài nguyên",
                )
            return f"{rtype}/{ids[0]}"
        if ref.startswith("urn:uuid:") or ref.startswith("urn:oid:"):
            raise bad_request(
                f"Reference '{ref}' does not match any fullUrl in the transaction",
                f"Tham chiếu '{ref}' không khớp fullUrl nào trong giao dịch",
            )
        return ref

    def run(self, index: int, dispatch: Dispatch) -> FhirResponse:
        sub = self.subs[index]
        if index in self.existing:
            stored = self.repo.read(sub.path.strip("/"), self.existing[index])
            return responses.write_response(sub, stored, 200)
        if index in self.new_ids:
            rtype = sub.path.strip("/")
            if not isinstance(sub.body, dict) or sub.body.get("resourceType") != rtype:
                raise bad_request(
                    f"The entry's resource is not a {rtype} as its request.url says",
                    f"Tài nguyên của mục không phải {rtype} như request.url ghi",
                )
            stored = self.repo.create(sub.body, id=self.new_ids[index])
            return responses.write_response(sub, stored, 201)
        return dispatch(self.repo, sub)
