"""Type, system and compartment search (http://hl7.org/fhir/R4/search.html): parse, compile, run, page.

Paging is keyset-based: ``next``/``previous`` links carry an opaque signed ``_cursor`` (see
``ketnoi.search.paging``) holding the edge row's sort key and (type, id), so pages stay correct while
data changes. ``_offset`` is still accepted for a first jump; the links it produces are cursors.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import Issue, bad_request, operation_outcome
from ketnoi.interactions.elements import subset
from ketnoi.interactions.repository import Repository, check_type
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.search.compile import Position, compile_search
from ketnoi.search.includes import MAX_INCLUDED
from ketnoi.search.paging import decode_cursor, encode_cursor
from ketnoi.search.parse import parse
from ketnoi.search.query import Criterion, SearchQuery
from ketnoi.sql import SqlQuery
from ketnoi.terminology.modifiers import resolve_modifiers

_PAGING = ("_offset", "_count", "_cursor")


def _query(repo: Repository, types: tuple[str, ...], params: list[tuple[str, str]], strict: bool) -> SearchQuery:
    _refuse_control_characters(params)
    settings = repo.services.settings
    params_for = repo.services.extractor.params_for
    query = parse(
        types,
        params,
        params_for,
        strict=strict,
        default_count=settings.default_count,
        max_count=settings.max_count,
    )
    # :in / :not-in / :above / :below → plain token criteria (ValueSets and CodeSystems: stored, then R4).
    query.filters = resolve_modifiers(query.filters, types, repo.terminology(), params_for)
    return query


def _refuse_control_characters(params: list[tuple[str, str]]) -> None:
    """No stored value can contain them (the validator refuses NUL; PostgreSQL text cannot hold
    it), so a search for one is a mistake: a 400, not a database error."""
    for key, value in params:
        if any(ord(ch) < 0x20 and ch not in "\t\r\n" for ch in key + value):
            raise bad_request(
                f"Search parameter {key[:40]!r} contains a control character",
                f"Tham số tìm kiếm {key[:40]!r} chứa ký tự điều khiển",
            )


def find_ids(repo: Repository, rtype: str, params: list[tuple[str, str]], base_url: str, limit: int) -> list[str]:
    """Ids matching search criteria (conditional operations and references); always strict.

    Only real criteria may select a resource: without one, every resource of the type would
    match, and a conditional update would overwrite the only one there is (R4 defines
    ``PUT [type]/[id]`` and ``PUT [type]?[criteria]``, nothing else)."""
    params = [(k, v) for k, v in params if k not in ("_format", "_pretty")]
    query = _query(repo, (rtype,), params, strict=True)
    if not query.filters:
        raise bad_request(
            f"A conditional operation or reference on {rtype} needs search criteria: without any, it would "
            f"select every {rtype}. Parameters such as _format, _count or _sort are not criteria; "
            f"to write one known resource use {rtype}/[id]",
            f"Thao tác hoặc tham chiếu có điều kiện trên {rtype} cần tiêu chí tìm kiếm: nếu không có, nó sẽ "
            f"chọn mọi {rtype}. Các tham số như _format, _count hay _sort không phải là tiêu chí; "
            f"để ghi một tài nguyên đã biết hãy dùng {rtype}/[id]",
        )
    query.count, query.offset, query.cursor = limit, 0, None
    return [row[1] for row in repo.search_page(query, base_url)][:limit]


def compiled_search(repo: Repository, rtype: str, params: list[tuple[str, str]], base_url: str) -> SqlQuery:
    """The page query a type search runs, as this store's dialect gets it (plan checks, EXPLAIN)."""
    query = _query(repo, (rtype,), params, strict=True)
    page, _ = compile_search(query, base_url, dialect=repo.services.store.dialect)
    return page


def search_type(repo: Repository, request: FhirRequest, rtype: str) -> FhirResponse:
    check_type(rtype)
    return run_search(repo, request, (rtype,), f"{request.base_url}/{rtype}")


def search_system(repo: Repository, request: FhirRequest) -> FhirResponse:
    types: tuple[str, ...] = ()
    for key, value in request.query:
        if key == "_type":
            types += tuple(t for t in value.split(",") if t)
    for rtype in types:
        if rtype not in resource_types():
            raise bad_request(
                f"Unknown resource type '{rtype[:60]}' in _type",
                f"Loại tài nguyên '{rtype[:60]}' trong _type không tồn tại",
            )
    return run_search(repo, request, types, request.base_url)


def parse_type_query(repo: Repository, rtype: str, query_string: str, *, strict: bool) -> SearchQuery:
    """A search of ``rtype`` from a query string (``code=...&date=ge...``), parsed as a search request's
    (``$export``'s ``_typeFilter`` and ``_since``)."""
    return _query(repo, (rtype,), parse_qsl(query_string, keep_blank_values=True), strict)


def cursor_secret(repo: Repository) -> bytes:
    """The key that signs paging cursors: ``settings.extra['cursor_secret']``, else one derived from the
    database URL (stable across restarts and across nodes sharing a database, unknown to clients)."""
    settings = repo.services.settings
    secret = settings.extra.get("cursor_secret")
    if isinstance(secret, str) and secret:
        return secret.encode()
    return hashlib.sha256(b"ketnoi-cursor\0" + settings.database.encode()).digest()


def _sort_signature(query: SearchQuery) -> str:
    return ",".join(("-" if k.descending else "") + k.param for k in query.sort)


def run_search(
    repo: Repository,
    request: FhirRequest,
    types: tuple[str, ...],
    self_base: str,
    extra: list[Criterion] | None = None,
) -> FhirResponse:
    strict = request.prefer.get("handling") == "strict"
    query = _query(repo, types, request.query, strict)
    query.filters.extend(extra or ())
    secret = cursor_secret(repo)
    signature = _sort_signature(query)
    position = decode_cursor(query.cursor, signature, secret) if query.cursor is not None else None
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if query.summary == "count":
        bundle["total"] = repo.search_count(query, request.base_url)
        bundle["link"] = [{"relation": "self", "url": _url(self_base, request.query)}]
        return FhirResponse(200, resource=bundle, seen=[])
    rows = repo.search_page(query, request.base_url, position) if query.count > 0 else []
    more = len(rows) > query.count  # another page beyond this one, in the direction of travel
    rows = rows[: query.count]
    backwards = position is not None and position.before
    if backwards:
        rows.reverse()
    has_next = (not backwards and more) or (backwards and bool(rows))
    has_previous = (backwards and more) or (not backwards and (position is not None or query.offset > 0))
    if query.total in ("accurate", "estimate") or query.count == 0:
        bundle["total"] = repo.search_count(query, request.base_url)
    elif query.total != "none" and position is None and not has_next:
        bundle["total"] = query.offset + len(rows)  # the last page tells the total for free
    kept = [(k, v) for k, v in request.query if k not in _PAGING]

    def page(cursor: Position | None) -> str:
        extra_params = [("_cursor", encode_cursor(cursor, signature, secret))] if cursor is not None else []
        return _url(self_base, [*kept, ("_count", str(query.count)), *extra_params])

    links = [{"relation": "self", "url": _url(self_base, request.query)}]
    if position is not None or query.offset > 0:
        links.append({"relation": "first", "url": page(None)})
    if has_previous:
        if rows:
            links.append({"relation": "previous", "url": page(_edge(rows[0], len(query.sort), before=True))})
        elif query.offset > 0:
            offset = max(0, query.offset - query.count)
            links.append(
                {
                    "relation": "previous",
                    "url": _url(self_base, [*kept, ("_count", str(query.count)), ("_offset", str(offset))]),
                }
            )
    if has_next and rows:
        links.append({"relation": "next", "url": page(_edge(rows[-1], len(query.sort), before=False))})
    bundle["link"] = links
    entries = [_entry(request.base_url, row, query, "match") for row in rows]
    seen = [row[2] for row in rows]  # for the audit trail: whose data this page carries
    notes = _notes(query)
    if query.includes and rows:
        included, capped = repo.included(query.includes, [(r[0], r[1]) for r in rows])
        entries.extend(_entry(request.base_url, row, query, "include") for row in included)
        seen.extend(row[2] for row in included)
        if capped:
            notes.append(include_cap_warning())
    if notes:
        entries.append({"resource": operation_outcome(notes), "search": {"mode": "outcome"}})
    bundle["entry"] = entries
    return FhirResponse(200, resource=bundle, seen=seen)


def include_cap_warning() -> Issue:
    """The warning of a page whose included resources reached the cap (search, ``$everything``)."""
    return Issue(
        "warning",
        "too-costly",
        f"Only the first {MAX_INCLUDED} included resources are returned",
        f"Chỉ trả về {MAX_INCLUDED} tài nguyên kèm theo đầu tiên",
    )


def _edge(row: tuple[Any, ...], nkeys: int, *, before: bool) -> Position:
    return Position(tuple(row[3 : 3 + nkeys]), row[0], row[1], before)


def _entry(base_url: str, row: tuple[Any, ...], query: SearchQuery, mode: str) -> dict[str, Any]:
    rtype, id, content = row[0], row[1], row[2]
    resource = res.loads(content)
    if query.summary or query.elements:
        resource = subset(resource, query.summary, query.elements)
    return {"fullUrl": f"{base_url}/{rtype}/{id}", "resource": resource, "search": {"mode": mode}}


def _notes(query: SearchQuery) -> list[Issue]:
    notes = [
        Issue(
            "warning",
            "not-supported",
            f"Search parameter '{p[:80]}' was ignored (not supported)",
            f"Tham số tìm kiếm '{p[:80]}' bị bỏ qua (không được hỗ trợ)",
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
