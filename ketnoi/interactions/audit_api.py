"""The audit log through the FHIR API, read-only: ``GET AuditEvent/{seq}``, ``GET AuditEvent?...``.

AuditEvents live in the hash-chained audit log only (ADR 0013, 0015), never in the resource
tables: the router sends every ``AuditEvent`` URL here. A record's id is its ``seq`` in the log.

- **Who reads**: a ``system/`` token that may read AuditEvent, an administrator (role ``admin``)
  with a ``user/`` scope that may, and a patient (``patient/AuditEvent.rs`` or ``patient/*.rs``)
  for the records of their own Patient only; everyone else 403. Records of other patients answer
  404 (read) or are not found (search), exactly like records that do not exist.
- **Search**: ``patient`` (an id or ``Patient/id``), ``date`` (``ge``/``gt``/``le``/``lt``/``eq``,
  repeatable), ``agent`` (R4's: an agent's ``who``, as ``Type/id``: ``agent=Organization/bv1`` finds
  what was done for that facility, whose PROV agent names it; ``agent:identifier=[system|]value``
  the user's account name or a client id; comma for either, repeated for both), ``_count``,
  ``_sort`` (``date``, the default, or ``-date`` for newest first) and ``_page``
  (the ``next`` link's position in the log). Anything else is refused (400) rather than ignored,
  so nobody mistakes an unfiltered answer for a filtered one. ``Patient/X/AuditEvent`` is the
  same search for patient X.
- **No writes**: create, update, patch and delete (plain, conditional, in Bundles) answer 405;
  the router records them as refused attempts. Reading the log is itself recorded, like any read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError, bad_request, not_found
from ketnoi.interactions.audit_events import narrative
from ketnoi.interactions.policy import Access, insufficient_scope
from ketnoi.interactions.repository import Repository, audit_write_refused
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.search.normalize import date_range
from ketnoi.store.auditlog import AgentMatch, AuditRow

TYPE = "AuditEvent"
_SEARCH_PARAMS = ("patient", "date", "agent", "agent:identifier", "_count", "_sort", "_page")
Handlers = dict[str, Any]


def routes(parts: list[str]) -> tuple[Handlers, tuple[str, ...]] | None:
    """The handlers of an ``AuditEvent`` URL (``parts[0] == "AuditEvent"``), as ``router._routes``."""
    n = len(parts)
    writes = {"POST": refuse_write, "PUT": refuse_write, "DELETE": refuse_write, "PATCH": refuse_write}
    if n == 1:
        return {"GET": search, **writes}, (TYPE,)
    if n == 2 and parts[1] == "_search":
        return {"POST": search}, (TYPE,)
    if n == 2 and parts[1] == "_history":
        return {"GET": not_supported}, (TYPE,)
    if n == 2:
        return {"GET": read, "PUT": refuse_write, "DELETE": refuse_write, "PATCH": refuse_write}, (TYPE, parts[1])
    if (n == 3 and parts[2] == "_history") or (n == 4 and parts[2] == "_history"):
        return {"GET": not_supported}, (TYPE,)
    return None


def refuse_write(repo: Repository, request: FhirRequest, *args: str) -> FhirResponse:
    raise audit_write_refused()


def not_supported(repo: Repository, request: FhirRequest, *args: str) -> FhirResponse:
    raise FhirError.of(
        405,
        "not-supported",
        "AuditEvent supports read and search only (a record of the audit log has one version)",
        "AuditEvent chỉ hỗ trợ đọc và tìm kiếm (mỗi bản ghi nhật ký kiểm toán chỉ có một phiên bản)",
    )


def reader(access: Access, letter: str) -> str | None:
    """Whose records the caller may read: None for all, a Patient id for that patient's only; 403
    for anyone else. Granular (filtered) scopes do not count: the log is not searched by them."""
    context = access.context
    scopes = context.scopes
    if scopes is None:
        return None  # not scope-limited: an operator, the server itself, --auth off on loopback
    granting = [s for s in scopes.grants(None, TYPE, letter) if not s.filters]
    if any(s.context == "system" for s in granting):
        return None
    if "admin" in context.roles and any(s.context == "user" for s in granting):
        return None
    if context.patient and any(s.context == "patient" for s in granting):
        return context.patient
    raise insufficient_scope("reading the audit trail (administrators, and each patient their own)", TYPE)


def read(repo: Repository, request: FhirRequest, rtype: str, id: str) -> FhirResponse:
    patient = reader(repo.access, "r")
    row = _record(repo, id)
    if row is None or (patient is not None and row.patient != patient):
        raise not_found(f"{TYPE}/{id[:80]} not found", f"Không tìm thấy {TYPE}/{id[:80]}")
    headers = {"ETag": res.etag(1), "Last-Modified": res.http_date(row.recorded)}
    return FhirResponse(200, raw=res.dumps(resource(row)), headers=headers, last_updated=row.recorded)


def _record(repo: Repository, id: str) -> AuditRow | None:
    if not id.isdigit() or len(id) > 18:
        return None
    seq = int(id)
    rows = repo.audit_records(
        patient=None, after_seq=seq - 1, before_seq=seq + 1, since=None, until=None, limit=1, newest_first=False
    )
    return rows[0] if rows else None


def resource(row: AuditRow) -> dict[str, Any]:
    """A record as served: the event as stored, with its ``seq`` as id and its narrative."""
    event: dict[str, Any] = res.loads(row.event)
    meta = {"versionId": "1", "lastUpdated": res.instant(row.recorded)}
    text = {"status": "generated", "div": narrative(event)}
    body = {k: v for k, v in event.items() if k not in ("resourceType", "text")}
    return {"resourceType": TYPE, "id": str(row.seq), "meta": meta, "text": text, **body}


def search_compartment(repo: Repository, request: FhirRequest, ctype: str, cid: str, rtype: str) -> FhirResponse:
    """``Patient/X/AuditEvent``: the search for patient X."""
    if ctype != "Patient":
        raise FhirError.of(
            404, "not-supported", f"The {ctype} compartment is not supported", f"Không hỗ trợ ngăn {ctype}"
        )
    return _search(repo, request, [*request.query, ("patient", cid)], f"{request.base_url}/Patient/{cid}/{TYPE}")


def search(repo: Repository, request: FhirRequest, rtype: str) -> FhirResponse:
    return _search(repo, request, request.query, f"{request.base_url}/{TYPE}")


def _search(repo: Repository, request: FhirRequest, query: list[tuple[str, str]], self_base: str) -> FhirResponse:
    confined = reader(repo.access, "s")
    unknown = sorted({k for k, _ in query if k not in _SEARCH_PARAMS})
    if unknown:
        raise bad_request(
            f"AuditEvent search supports {', '.join(_SEARCH_PARAMS)}; not {', '.join(unknown)[:200]}",
            f"Tìm kiếm AuditEvent hỗ trợ {', '.join(_SEARCH_PARAMS)}; không hỗ trợ {', '.join(unknown)[:200]}",
        )
    patients = {_patient_id(v) for k, v in query if k == "patient"}
    if len(patients) > 1 or (confined is not None and patients - {confined}):
        return _bundle(request, self_base, query, [], None)  # nobody's records, or not the caller's: none
    patient = next(iter(patients), None) or confined
    since, until = _dates([v for k, v in query if k == "date"])
    settings = repo.services.settings
    count = min(_int(query, "_count", settings.default_count), settings.max_count)
    newest_first = _sort(query)
    page = _int(query, "_page", 0) or None
    rows = repo.audit_records(
        patient=patient,
        after_seq=None if newest_first else page,
        before_seq=page if newest_first else None,
        since=since,
        until=until,
        limit=count + 1,
        newest_first=newest_first,
        agents=_agents(query),
    )
    more = len(rows) > count
    rows = rows[:count]
    return _bundle(request, self_base, query, rows, rows[-1].seq if more and rows else None, first=page is None)


def _bundle(
    request: FhirRequest,
    self_base: str,
    query: list[tuple[str, str]],
    rows: list[AuditRow],
    next_seq: int | None,
    *,
    first: bool = True,
) -> FhirResponse:
    links = [{"relation": "self", "url": f"{self_base}?{urlencode(query)}" if query else self_base}]
    if next_seq is not None:
        kept = [(k, v) for k, v in query if k != "_page"]
        links.append({"relation": "next", "url": f"{self_base}?{urlencode([*kept, ('_page', str(next_seq))])}"})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if next_seq is None and first:
        bundle["total"] = len(rows)  # the only page: the total for free
    bundle["link"] = links
    base = request.base_url
    bundle["entry"] = [
        {"fullUrl": f"{base}/{TYPE}/{row.seq}", "resource": resource(row), "search": {"mode": "match"}} for row in rows
    ]
    return FhirResponse(200, resource=bundle, seen=[row.event for row in rows])


def _patient_id(value: str) -> str:
    """``X``, ``Patient/X`` or ``[base]/Patient/X`` → ``X``."""
    head, _, tail = value.rpartition("Patient/")
    return tail if head == "" or head.endswith("/") else value


def _agents(query: list[tuple[str, str]]) -> list[list[AgentMatch]]:
    """One group per ``agent`` / ``agent:identifier`` parameter (all must hold), its comma-separated
    values the alternatives (any may)."""
    groups: list[list[AgentMatch]] = []
    for key, value in query:
        if key not in ("agent", "agent:identifier"):
            continue
        texts = [v.strip() for v in value.split(",")]
        if not all(texts) or len(texts) > 20 or any(len(t) > 256 for t in texts):
            raise bad_request(
                f"{key}: 1 to 20 comma-separated values of at most 256 characters",
                f"{key}: từ 1 đến 20 giá trị cách nhau bởi dấu phẩy, mỗi giá trị tối đa 256 ký tự",
            )
        groups.append([_agent(key, text) for text in texts])
    return groups


def _agent(key: str, text: str) -> AgentMatch:
    if key == "agent:identifier":
        system, bar, value = text.rpartition("|")
        if bar and not value:
            raise bad_request("agent:identifier takes [system|]value", "agent:identifier nhận [hệ thống|]giá trị")
        return AgentMatch(system=system or None, value=value)
    # A reference as the event records it: Type/id (a bare id could be anyone's: refused, not guessed).
    kind, slash, id = text.rpartition("/")
    kind = kind.rsplit("/", 1)[-1]  # [base]/Type/id → Type/id
    if not slash or not kind[:1].isupper() or not id:
        raise bad_request(
            f"agent: '{text[:60]}' is not a reference Type/id (e.g. Organization/bv1, Practitioner/p1); "
            "a user's account name is agent:identifier",
            f"agent: '{text[:60]}' không phải tham chiếu Loại/id (ví dụ Organization/bv1, Practitioner/p1); "
            "tên tài khoản người dùng dùng agent:identifier",
        )
    return AgentMatch(reference=f"{kind}/{id}")


def _dates(values: list[str]) -> tuple[float | None, float | None]:
    """``since <= recorded < until`` from the ``date`` parameters (every one must hold)."""
    since: float | None = None
    until: float | None = None
    for value in values:
        prefix = value[:2] if value[:2] in ("eq", "ge", "gt", "le", "lt") else "eq"
        text = value[2:] if value[:2] == prefix else value
        try:
            low, high = date_range(text)
        except ValueError:
            raise bad_request(
                f"date: '{value[:60]}' is not a date (prefixes eq, ge, gt, le, lt)",
                f"date: '{value[:60]}' không phải ngày (tiền tố eq, ge, gt, le, lt)",
            ) from None
        lower = {"eq": low, "ge": low, "gt": high}.get(prefix)
        upper = {"eq": high, "le": high, "lt": low}.get(prefix)
        if lower is not None:
            since = lower if since is None else max(since, lower)
        if upper is not None:
            until = upper if until is None else min(until, upper)
    return since, until


def _int(query: list[tuple[str, str]], name: str, default: int) -> int:
    values = [v for k, v in query if k == name]
    if not values:
        return default
    value = values[-1]
    if not value.isdigit() or len(value) > 18:
        raise bad_request(f"{name} must be a non-negative integer", f"{name} phải là số nguyên không âm")
    return int(value)


def _sort(query: list[tuple[str, str]]) -> bool:
    """Whether newest first (``_sort=-date``); oldest first by default."""
    values = [v for k, v in query if k == "_sort"]
    if not values:
        return False
    if values[-1] in ("date", "_lastUpdated"):
        return False
    if values[-1] in ("-date", "-_lastUpdated"):
        return True
    raise bad_request("AuditEvent _sort takes date or -date", "_sort của AuditEvent nhận date hoặc -date")
