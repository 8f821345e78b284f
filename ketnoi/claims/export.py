"""Stored visits back to claims XML tables: the export (docs/xml130.md, "Export").

A visit is an Encounter with a MA_LK identifier (system ``https://fhir.ketnoi.vn/sid/ma-lk/<MACSKCB>``);
its resources are those with its visit tag, its Patient the Encounter's subject, its cards the Coverages
of that Patient that its Claim names. Everything is read through the caller's ``Repository``, so what the
caller may not see is not exported: a visit it may not read is not found, a type it may not search is 403.
"""

from __future__ import annotations

from collections.abc import Iterator

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json
from ketnoi.claims.from_fhir import Tables, visit_key, visit_tables
from ketnoi.claims.to_fhir import VISIT_TYPES
from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import bad_request
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.search import find_ids

MAX_VISITS = 2_000  # one answer holds the whole envelope in memory
_LINES = 10_000  # resources of one visit, of one type


def export_visits(
    repo: Repository,
    *,
    encounter: str | None = None,
    start: str | None = None,
    end: str | None = None,
    facility: str | None = None,
    seen: list[bytes] | None = None,
) -> Iterator[tuple[str, Tables]]:
    """(MACSKCB, tables) of each visit: the Encounter ``encounter`` (an id), or those of the period
    ``start``..``end`` (FHIR dates; Encounter ``date`` search, ``ge``/``le``), of ``facility`` only when
    given, ordered by admission then MA_LK. ``seen`` receives the stored Patients read, for the audit trail
    (whose data the answer carries). 400 when a period has more than ``MAX_VISITS`` visits."""
    base = repo.services.settings.public_base()
    for found in _encounters(repo, base, encounter, start, end, facility):
        key = visit_key(found)
        if key is not None:
            yield visit_tables(*_resources(repo, base, found, *key, seen))


def _read(repo: Repository, rtype: str, id: str) -> tuple[Json, bytes]:
    stored = repo.read(rtype, id)
    content = stored.content or b"{}"
    return res.loads(content), content


def _encounters(
    repo: Repository, base: str, encounter: str | None, start: str | None, end: str | None, facility: str | None
) -> list[Json]:
    if encounter is not None:
        found = _read(repo, "Encounter", encounter)[0]
        key = visit_key(found)
        return [found] if key is not None and facility in (None, key[0]) else []
    params = [("date", f"ge{start}")] if start else []
    params += [("date", f"le{end}")] if end else []
    if facility:
        params.append(("identifier", f"{s.visit_system(facility)}|"))
    else:
        params.append(("_tag", f"{s.VISIT_TAG}|"))
    ids = find_ids(repo, "Encounter", params, base, MAX_VISITS + 1)
    if len(ids) > MAX_VISITS:
        raise bad_request(
            f"More than {MAX_VISITS} visits in this period: export a shorter period, or one facility at a time",
            f"Có hơn {MAX_VISITS} hồ sơ trong khoảng thời gian này: hãy xuất khoảng ngắn hơn, hoặc từng cơ sở",
            code="too-costly",
        )
    encounters = [_read(repo, "Encounter", id)[0] for id in ids]
    visits = [e for e in encounters if visit_key(e) is not None]
    return sorted(visits, key=lambda e: (str(e.get("period", {}).get("start", "")), visit_key(e)))


def _resources(
    repo: Repository, base: str, encounter: Json, facility: str, ma_lk: str, seen: list[bytes] | None
) -> tuple[Json, list[Json], list[Json]]:
    tag = f"{s.VISIT_TAG}|{facility}/{ma_lk}"
    visit = [encounter]
    for rtype in VISIT_TYPES:
        for id in find_ids(repo, rtype, [("_tag", tag)], base, _LINES):
            if rtype != "Encounter":
                visit.append(_read(repo, rtype, id)[0])
    subject = str(encounter.get("subject", {}).get("reference", ""))
    patient_type, _, patient_id = subject.partition("/")
    if patient_type != "Patient" or not patient_id:
        raise bad_request(
            f"Encounter/{encounter.get('id')} has no Patient subject: the visit cannot be exported",
            f"Encounter/{encounter.get('id')} không có bệnh nhân (subject): không xuất được hồ sơ",
        )
    patient, content = _read(repo, "Patient", patient_id)
    if seen is not None:
        seen.append(content)
    coverages = [
        _read(repo, "Coverage", id)[0]
        for id in find_ids(repo, "Coverage", [("beneficiary", f"Patient/{patient_id}")], base, _LINES)
    ]
    return patient, coverages, visit
