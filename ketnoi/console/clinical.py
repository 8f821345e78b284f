"""The clinician's parts of a patient's record (issue 15): immunisations against the national schedule,
diagnostic reports and documents, and what the observation and note forms write. Everything is read and
written through :class:`ketnoi.console.records.Reader` with the signed-in user's context (ADR 0026
decision 3): an attachment is served only from a DocumentReference the caller may read.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from urllib.parse import quote

from ketnoi.console import immunization, records, show
from ketnoi.interactions.context import RequestContext
from ketnoi.vn.epi_schedule import in_cohort

PAGE: Final = 20
IMMUNIZATIONS: Final = 100  # a child's programme doses are 15; an adult's record a few more
WRITERS: Final = frozenset({"clinician"})  # offered the forms; the API decides anyway
_MEDIA_TYPE = re.compile(r"[a-zA-Z0-9][\w!#$&^.+-]*/[a-zA-Z0-9][\w!#$&^.+-]*")


def may_record(context: RequestContext, open_access: bool) -> bool:
    """Whether the record offers the forms: a clinician acting for a facility (or --auth off)."""
    return open_access or bool(context.roles & WRITERS and context.organization)


def today() -> date:
    return datetime.now(show.VIETNAM).date()


def sections(reader: records.Reader, patient: dict[str, Any], open_access: bool) -> dict[str, Any]:
    """The record page's clinical sections (added to :func:`records.record`'s)."""
    subject = f"Patient/{patient.get('id')}"
    shots = reader.search(
        "Immunization",
        [("patient", subject), ("_count", str(IMMUNIZATIONS)), ("_include", "Immunization:location")],
    )
    reports = reader.search(
        "DiagnosticReport",
        [("patient", subject), ("_sort", "-date"), ("_count", str(PAGE)), ("_include", "DiagnosticReport:performer")],
    )
    documents = reader.search(
        "DocumentReference",
        [("patient", subject), ("_sort", "-date"), ("_count", str(PAGE)),
         ("_include", "DocumentReference:author"), ("_include", "DocumentReference:custodian")],
    )  # fmt: skip
    birth = _date(patient.get("birthDate"))
    doses: list[immunization.ScheduledDose] = []
    others = shots.entries
    if birth is not None and in_cohort(birth):
        doses, others = immunization.schedule(birth, today(), shots.entries)
    return {
        "doses": doses,
        "other_immunizations": others,
        "reports": reports.entries,
        "documents": [(d, attachments(d)) for d in documents.entries],  # each with its attachments, by index
        "clinical_names": _names([*shots.included, *reports.included, *documents.included]),
        "may_record": may_record(reader.context, open_access),
    }


def _names(included: list[dict[str, Any]]) -> dict[str, str]:
    """``Type/id`` → name of the included facilities, sites and people (a person's name is a HumanName)."""
    people = {
        f"{r['resourceType']}/{r.get('id')}": show.name(r)
        for r in included
        if r.get("resourceType") in ("Practitioner", "RelatedPerson", "Patient") and r.get("name")
    }
    return records.names(included) | people


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value or "")[:10])
    except ValueError:
        return None


# ---- documents -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Download:
    content: bytes
    media_type: str
    filename: str


def attachments(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A DocumentReference's attachments, in order (their index is the download's ``n``)."""
    return [
        c["attachment"]
        for c in document.get("content") or ()
        if isinstance(c, dict) and isinstance(c.get("attachment"), dict)
    ]


def download(reader: records.Reader, patient_id: str, document_id: str, index: str) -> Download | None:
    """Attachment ``index`` of the patient's DocumentReference, its inline ``data`` decoded; None when the
    caller may not read the document, it is another patient's, or there is no such inline attachment
    (a ``url`` is never fetched: the console would become a proxy to wherever it points)."""
    document = reader.read("DocumentReference", document_id)
    if document is None or (document.get("subject") or {}).get("reference") != f"Patient/{patient_id}":
        return None
    found = attachments(document)
    if not index.isdigit() or int(index) >= len(found):
        return None
    attachment = found[int(index)]
    if not isinstance(attachment.get("data"), str) or not attachment["data"]:
        return None
    try:
        content = base64.b64decode("".join(attachment["data"].split()), validate=True)  # FHIR allows spaces
    except (binascii.Error, ValueError):
        return None
    kind = str(attachment.get("contentType") or "").split(";")[0].strip()
    media_type = kind if _MEDIA_TYPE.fullmatch(kind) else "application/octet-stream"
    return Download(content, media_type, str(attachment.get("title") or f"{document_id}-{index}"))


def disposition(filename: str) -> str:
    """``Content-Disposition: attachment`` with the title as file name: an ASCII fallback (no quotes,
    separators or controls) and the UTF-8 original (RFC 6266/5987) for Vietnamese titles."""
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", filename.encode("ascii", "replace").decode())[:100] or "file"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename[:200], safe='')}"
