"""``GET|POST /fhir/$export-xml130``: stored visits back to a claims XML envelope (QĐ 130/QĐ-BYT as amended by
QĐ 4750/QĐ-BYT), the inverse of ``$import-xml130`` (docs/xml130.md, "Export").

Parameters (query string, or a Parameters body with POST): ``encounter`` (``Encounter/<id>`` or the id) for
one visit, or ``start`` and ``end`` (FHIR dates or date-times: the visits whose Encounter period meets
them, Encounter ``date`` ``ge``/``le``) and optionally ``facility`` (MACSKCB). The answer is one
GIAMDINHHS envelope (``application/xml``, 200), so the visits must be one facility's: several facilities
without ``facility`` is 400 naming them. No visit is 404; a wrong or missing parameter 400.

Access ``read``: the caller's scopes and reach apply to every read and search the export makes, exactly
as to its own searches (a visit it may not see is not exported; a type of a visit it may not search is
403), and the audit trail names each patient whose visits the envelope carries.
"""

from __future__ import annotations

import re
from datetime import datetime

from ketnoi.claims.export import export_visits
from ketnoi.claims.from_fhir import VN_TIME, Tables
from ketnoi.fhir.outcome import FhirError, bad_request
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository, check_id
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.xml130.writer import envelope_bytes

NAME = "export-xml130"
PARAMETERS = ("encounter", "start", "end", "facility")
CONTENT_TYPE = "application/xml; charset=utf-8"
_DATE = re.compile(
    r"[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2}))?)?)?"
)
_FACILITY = re.compile(r"[A-Za-z0-9._-]{1,20}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _params(request: FhirRequest) -> dict[str, str]:
    """The parameters, from the query string and a POSTed Parameters; each at most once."""
    pairs = list(request.query)
    body = request.body
    if request.method == "POST" and body is not None:
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise bad_request(
                f"${NAME} with POST takes a Parameters resource", f"${NAME} với POST nhận một tài nguyên Parameters"
            )
        for param in body.get("parameter") or ():
            name = param.get("name") if isinstance(param, dict) else None
            values = [v for k, v in param.items() if k.startswith("value")] if isinstance(param, dict) else []
            value = values[0].get("reference") if len(values) == 1 and isinstance(values[0], dict) else None
            value = values[0] if len(values) == 1 and isinstance(values[0], str) else value
            if not isinstance(name, str) or not isinstance(value, str):
                raise bad_request(
                    "Each parameter needs a name and one value (a string, a date or a reference)",
                    "Mỗi tham số cần tên và một giá trị (chuỗi, ngày hoặc tham chiếu)",
                )
            pairs.append((name, value))
    found: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise bad_request(
                f"Unknown parameter '{name[:40]}' of ${NAME}: use {', '.join(PARAMETERS)}",
                f"Tham số '{name[:40]}' của ${NAME} không tồn tại: hãy dùng {', '.join(PARAMETERS)}",
            )
        if name in found:
            raise bad_request(f"Parameter '{name}' is given twice", f"Tham số '{name}' được cho hai lần")
        found[name] = value.strip()
    return found


def _encounter(value: str) -> str:
    rtype, slash, id = value.rpartition("/")
    if slash and rtype != "Encounter":
        raise bad_request(
            f"encounter must be Encounter/<id> or an id, not '{value[:80]}'",
            f"encounter phải là Encounter/<id> hoặc một id, không phải '{value[:80]}'",
        )
    check_id(id)
    return id


def _date(name: str, value: str) -> str:
    if not _DATE.fullmatch(value):
        raise bad_request(
            f"{name} must be a date (yyyy-mm-dd) or a date-time, not '{value[:40]}'",
            f"{name} phải là ngày (yyyy-mm-dd) hoặc thời điểm, không phải '{value[:40]}'",
        )
    return value


def _criteria(params: dict[str, str]) -> dict[str, str | None]:
    encounter, start, end = params.get("encounter"), params.get("start"), params.get("end")
    facility = params.get("facility")
    if facility is not None and not _FACILITY.fullmatch(facility):
        raise bad_request(
            f"facility must be a facility code (MACSKCB), not '{facility[:40]}'",
            f"facility phải là mã cơ sở khám chữa bệnh (MACSKCB), không phải '{facility[:40]}'",
        )
    if encounter is not None:
        if start is not None or end is not None:
            raise bad_request(
                "Give either encounter or start and end, not both",
                "Hãy cho encounter hoặc start và end, không cho cả hai",
            )
        return {"encounter": _encounter(encounter), "facility": facility}
    if start is None or end is None:
        raise bad_request(
            "Name the visits: encounter (Encounter/<id>), or a period with start and end (dates)",
            "Hãy nêu hồ sơ cần xuất: encounter (Encounter/<id>), hoặc khoảng thời gian với start và end (ngày)",
            code="required",
        )
    start, end = _date("start", start), _date("end", end)
    shortest = min(len(start), len(end), 10)
    if start[:shortest] > end[:shortest]:
        raise bad_request(f"start {start} is after end {end}", f"start {start} sau end {end}")
    return {"start": start, "end": end, "facility": facility}


def _one_facility(visits: list[tuple[str, Tables]]) -> str:
    facilities = sorted({facility for facility, _ in visits})
    if len(facilities) > 1:
        raise bad_request(
            f"The visits are of {len(facilities)} facilities ({', '.join(facilities[:10])}); an envelope holds one "
            "facility's: give facility",
            f"Các hồ sơ thuộc {len(facilities)} cơ sở ({', '.join(facilities[:10])}); mỗi tệp chỉ chứa hồ sơ của một "
            "cơ sở: hãy cho tham số facility",
            code="too-costly",
        )
    return facilities[0]


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    criteria = _criteria(_params(request))
    seen: list[bytes] = []
    visits = list(export_visits(repo, seen=seen, **criteria))
    if not visits:
        raise FhirError.of(
            404, "not-found", "No claims visit matches these parameters", "Không có hồ sơ nào khớp với các tham số này"
        )
    facility = _one_facility(visits)
    created = datetime.now(VN_TIME).strftime("%Y%m%d%H%M")
    try:
        body = envelope_bytes(facility, [tables for _, tables in visits], created=created)
    except ValueError as exc:  # a stored text XML cannot carry (a control character)
        raise FhirError.of(
            422,
            "processing",
            f"A stored value cannot be written in claims XML: {exc}",
            f"Một giá trị đã lưu không ghi được vào XML giám định: {exc}",
        ) from exc
    name = _UNSAFE.sub("_", facility)
    headers = {"Content-Type": CONTENT_TYPE, "Content-Disposition": f'attachment; filename="{name}-{created}.xml"'}
    return FhirResponse(200, raw=body, headers=headers, seen=seen)


OPERATION = Operation(
    name=NAME,
    handler=handle,
    levels=frozenset({"system"}),
    methods=frozenset({"GET", "POST"}),
    write=False,
    access="read",  # every read and search it makes is the caller's (scopes, patient compartment, reach)
    definition={"name": NAME, "definition": "urn:ketnoi:operation:export-xml130"},
)
