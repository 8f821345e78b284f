"""``POST /fhir/$import-xml130``: claims XML envelopes (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT) into FHIR.

The body is the envelope itself (``Content-Type: application/xml``; the HTTP edge hands it over as a
Binary) or a Parameters with one ``file`` attachment per envelope (``data`` in base64, ``title`` its name).
Each visit is imported in its own transaction with the caller's rights (``ketnoi.claims.importer``), so
the operation itself holds no write transaction. The answer is the report as an OperationOutcome: a
summary per file, then every problem with its table, MA_LK, field, value and rule (200), or 400 when a
file as a whole was refused and nothing was written.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ketnoi.claims.importer import Importer
from ketnoi.claims.report import to_outcome
from ketnoi.fhir.outcome import bad_request
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse

NAME = "import-xml130"


def _decode(data: Any, where: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise bad_request(f"{where} has no data", f"{where} không có dữ liệu", code="required")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{where}: data is not base64", f"{where}: data không phải base64") from None


def _files(body: Any) -> list[tuple[str, bytes]]:
    """(name, envelope) of each file the body carries."""
    if isinstance(body, dict) and body.get("resourceType") == "Binary":
        return [("request", _decode(body.get("data"), "Binary"))]
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise bad_request(
            "Send the envelope (Content-Type application/xml) or a Parameters with 'file' attachments",
            "Hãy gửi tệp hồ sơ (Content-Type application/xml) hoặc Parameters có các tham số 'file' đính kèm",
        )
    found: list[tuple[str, bytes]] = []
    for i, param in enumerate(body.get("parameter", [])):
        if not isinstance(param, dict) or param.get("name") != "file":
            continue
        attachment = param.get("valueAttachment")
        if not isinstance(attachment, dict):
            raise bad_request(
                f"parameter[{i}] 'file' needs a valueAttachment", f"tham số[{i}] 'file' cần valueAttachment"
            )
        title = attachment.get("title")
        name = title if isinstance(title, str) else f"file {len(found) + 1}"
        found.append((name, _decode(attachment.get("data"), f"parameter[{i}]")))
    if not found:
        raise bad_request(
            "The Parameters has no 'file' attachment", "Parameters không có tham số 'file' nào", code="required"
        )
    return found


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    importer = Importer(repo.services, repo.context)
    reports = [importer.import_file(data, name) for name, data in _files(request.body)]
    status = 400 if any(r.refused for r in reports) else 200
    return FhirResponse(status, resource=to_outcome(reports))


OPERATION = Operation(
    name=NAME,
    handler=handle,
    levels=frozenset({"system"}),
    methods=frozenset({"POST"}),
    write=False,  # each visit opens its own write transaction
    access="own-data",  # a facility's backend imports the claims its organization then owns
    definition={"name": NAME, "definition": "urn:ketnoi:operation:import-xml130"},
)
