"""Type and system search (http://hl7.org/fhir/R4/search.html): parse, compile, run, page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import Issue, bad_request, operation_outcome
from ketnoi.interactions.elements import subset
from ketnoi.interactions.repository import Repository, check_type
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.search.compile import compile_search
from ketnoi.search.parse import parse
from ketnoi.search.query import SearchQuery


def _query(repo: Repository, types: tuple[str, ...], params: list[tuple[str, str]], strict: bool) -> SearchQuery:
    extractor = repo.services.extractor
    searchable: dict[str, dict[str, Any]] = {}
    for rtype in types or ("Resource",):
        searchable.update(extractor.params_for(rtype))
    settings = repo.services.settings
    return parse(
        types, params, searchable, strict=strict, default_count=settings.default_count, max_count=settings.max_count
    )


def find_ids(repo: Repository, rtype: str, params: list[tuple[str, str]], base_url: str, limit: int) -> list[str]:
    """Ids matching search criteria (conditional operations); always strict."""
    params = [(k, v) for k, v in params if k not in ("_format", "_pretty")]
    query = _query(repo, (rtype,), params, strict=True)
    query.count, query.offset = limit, 0
    page, _ = compile_search(query, base_url)
    return [row[1] for row in repo.session.query(page)][:limit]


def search_type(repo: Repository, request: FhirRequest, rtype: str) -> FhirResponse:
    check_type(rtype)
    return _search(repo, request, (rtype,), f"{request.base_url}/{rtype}")


def search_system(repo: Repository, request: FhirRequest) -> FhirResponse:
    types: tuple[str, ...] = ()
    for key, value in request.query:
        if key == "_type":
            types += tuple(t for t in value.split(",") if t)
    for rtype in types:
        if rtype not in resource_types():
            raise bad_request(
                f"Unknown resource type '{rtype}' in _type", f"Loại tài nguyên '{rtype}' trong _type không tồn tại"
            )
    return _search(repo, request, types, request.base_url)


def _search(repo: Repository, request: FhirRequest, types: tuple[str, ...], self_base: str) -> FhirResponse:
    strict = request.prefer.get("handling") == "strict"
    query = _query(repo, types, request.query, strict)
    page_sql, count_sql = compile_search(query, request.base_url)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if query.summary == "count":
        bundle["total"] = repo.session.query(count_sql)[0][0]
        bundle["link"] = [{"relation": "self", "url": _url(self_base, request.query)}]
        return FhirResponse(200, resource=bundle)
    rows = repo.session.query(page_sql) if query.count > 0 else []
    has_next = len(rows) > query.count
    rows = rows[: query.count]
    if query.total == "accurate" or query.count == 0:
        bundle["total"] = repo.session.query(count_sql)[0][0]
    elif query.total != "none" and not has_next:
        bundle["total"] = query.offset + len(rows)  # the last page tells the total for free
    bundle["link"] = _links(self_base, request.query, query, has_next)
    entries = [_entry(request.base_url, row, query) for row in rows]
    notes = _notes(query)
    if notes:
        entries.append({"resource": operation_outcome(notes), "search": {"mode": "outcome"}})
    bundle["entry"] = entries
    return FhirResponse(200, resource=bundle)


def _entry(base_url: str, row: tuple[Any, ...], query: SearchQuery) -> dict[str, Any]:
    rtype, id, content = row
    resource = res.loads(content)
    if query.summary or query.elements:
        resource = subset(resource, query.summary, query.elements)
    return {"fullUrl": f"{base_url}/{rtype}/{id}", "resource": resource, "search": {"mode": "match"}}


def _notes(query: SearchQuery) -> list[Issue]:
    notes = [
        Issue(
            "warning",
            "not-supported",
            f"Search parameter '{p}' was ignored (not supported)",
            f"Tham số tìm kiếm '{p}' bị bỏ qua (không được hỗ trợ)",
        )
        for p in query.ignored
    ]
    if query.count_capped:
        notes.append(
            Issue(
                "information",
                "informational",
                f"_count was reduced to the maximum, {query.count}",
                f"_count đã được giảm xuống mức tối đa {query.count}",
            )
        )
    return notes


def _url(base: str, params: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params)}" if params else base


def _links(base: str, params: list[tuple[str, str]], query: SearchQuery, has_next: bool) -> list[dict[str, str]]:
    kept = [(k, v) for k, v in params if k not in ("_offset", "_count")]

    def page(offset: int) -> str:
        return _url(base, [*kept, ("_count", str(query.count)), ("_offset", str(offset))])

    links = [{"relation": "self", "url": page(query.offset)}]
    if has_next:
        links.append({"relation": "next", "url": page(query.offset + query.count)})
    if query.offset > 0:
        links.append({"relation": "previous", "url": page(max(0, query.offset - query.count))})
    return links
