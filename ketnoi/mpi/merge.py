"""Merging one Patient into another, and undoing it exactly (``Patient/$merge``, ``Patient/$unmerge``).

A merge, in one transaction with the caller's rights (every write passes the scopes and the facility
ownership rule, so a merge across an access boundary is refused whole, nothing written):

1. every resource that references the source Patient is updated to reference the target instead
   (Patient links included), or, with ``KETNOI_MERGE_MOVES_REFERENCES=off``, left on the source;
2. the source becomes inactive with a ``replaced-by`` link to the target; the target gains a
   ``replaces`` link to the source (or is replaced by the ``result-patient`` the caller sent);
3. a Provenance (activity ``merge`` of ISO 21089) names every version the merge wrote (``target``) and,
   for each, the version it replaced (``entity``, role ``revision``).

The unmerge reads that Provenance and puts every resource back to the version before the merge (as a new
version with the old content: history is never rewritten), provided none changed since (409 otherwise:
undoing would silently drop a later change), and records its own Provenance (activity ``unmerge``).
Nothing is deleted by either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError, bad_request, not_found
from ketnoi.interactions.repository import Repository
from ketnoi.store.base import StoredVersion

LIFECYCLE: Final = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
TARGET_URL: Final = "https://fhir.ketnoi.vn/StructureDefinition/merge-target"  # the Patient merged into
MPI_TAG: Final = {"system": "https://fhir.ketnoi.vn/CodeSystem/mpi", "code": "merge"}


@dataclass(slots=True)
class Plan:
    """What a merge changes: the two Patients and the resources whose references move."""

    source: StoredVersion
    target: StoredVersion
    referrers: list[StoredVersion] = field(default_factory=list)


def plan(repo: Repository, source_id: str, target_id: str, move_references: bool = True) -> Plan:
    """Check the pair and find what refers to the source; 400/403/404/409 naming the problem."""
    if source_id == target_id:
        raise bad_request(
            f"Patient/{source_id} cannot be merged into itself: name two different patients",
            f"Không thể gộp Patient/{source_id} vào chính nó: hãy chọn hai bệnh nhân khác nhau",
        )
    source, target = _live(repo, source_id, "source"), _live(repo, target_id, "target")
    for role, stored in (("source", source), ("target", target)):
        body = res.loads_object(stored.content)
        if body.get("active") is False and _replaced_by(body):
            raise FhirError.of(
                409,
                "conflict",
                f"The {role} Patient/{stored.id} was already merged into {_replaced_by(body)}",
                f"Patient/{stored.id} ({role}) đã được gộp vào {_replaced_by(body)}",
            )
    referrers = [v for v in _referrers(repo, source_id) if (v.resource_type, v.id) != ("Patient", target_id)]
    if move_references:
        _check_reach(repo, source_id, referrers)
    return Plan(source, target, referrers)


def _check_reach(repo: Repository, source_id: str, referrers: list[StoredVersion]) -> None:
    """403 when the merge would move references in records the caller may not even read: it must not
    change (nor reveal) another facility's data; the facility that holds them has to take part."""
    hidden = [v for v in referrers if not repo.exists(v.resource_type, v.id)]
    if hidden:
        raise FhirError.of(
            403,
            "forbidden",
            f"{len(hidden)} records that refer to Patient/{source_id} are outside your access, so the merge "
            "cannot move them: ask a data steward with access to every facility involved",
            f"{len(hidden)} hồ sơ tham chiếu Patient/{source_id} nằm ngoài quyền truy cập của bạn nên không "
            "thể gộp: hãy nhờ người quản lý dữ liệu có quyền với mọi cơ sở liên quan",
        )


def merge(repo: Repository, p: Plan, result: dict[str, Any] | None, move_references: bool) -> dict[str, Any]:
    """Carry out ``p``; returns the target Patient as stored."""
    written: list[tuple[StoredVersion, StoredVersion]] = []  # (before, after)
    if move_references:
        for before in p.referrers:
            body = res.loads_object(before.content)
            if _repoint(body, p.source.id, p.target.id):
                if isinstance(body.get("link"), list):  # a golden record that named both: once
                    body["link"] = list({orjson.dumps(link): link for link in body["link"]}.values())
                written.append((before, _update(repo, body)))
    source = res.loads_object(p.source.content)
    source["active"] = False
    source["link"] = [*_other_links(source, p.target.id), _link(p.target.id, "replaced-by")]
    written.append((p.source, _update(repo, source)))
    target = _target_body(p, result)
    after_target = _update(repo, target)
    written.append((p.target, after_target))
    _provenance(repo, "merge", written, p.target.id)
    return res.loads_object(after_target.content)


def unmerge(repo: Repository, provenance_id: str) -> dict[str, Any]:
    """Undo the merge recorded by ``Provenance/provenance_id``; returns the restored target Patient."""
    record = res.loads_object(repo.read("Provenance", provenance_id).content)
    if _activity(record) != "merge":
        raise bad_request(
            f"Provenance/{provenance_id} does not record a merge",
            f"Provenance/{provenance_id} không ghi nhận một lần gộp",
        )
    written = []
    for after_ref, before_ref in _pairs(record):
        rtype, rid, after_version = after_ref
        current = repo.read(rtype, rid)
        if current.version != after_version:
            raise FhirError.of(
                409,
                "conflict",
                f"{rtype}/{rid} changed after the merge (version {current.version}, the merge wrote "
                f"{after_version}): undo that change first, or correct the records by hand",
                f"{rtype}/{rid} đã thay đổi sau lần gộp (phiên bản {current.version}, lần gộp ghi {after_version})",
            )
        old = res.loads_object(repo.vread(rtype, rid, str(before_ref[2])).content)
        written.append((current, _update(repo, old)))
    target = _merge_target(record)
    _provenance(repo, "unmerge", written, target.removeprefix("Patient/"))
    restored = [after for _, after in written if f"{after.resource_type}/{after.id}" == target]
    return res.loads_object(restored[0].content) if restored else {}


def find_merge(repo: Repository, source_id: str) -> str:
    """The id of the latest merge Provenance of ``Patient/source_id`` (404 when it was never merged)."""
    for _, pid in repo.referring(("Patient", source_id), resource_type="Provenance", param="target"):
        record = res.loads_object(repo.read("Provenance", pid).content)
        if _activity(record) == "unmerge":
            break  # the latest merge of it was undone already
        if _activity(record) == "merge" and any(ref[:2] == ("Patient", source_id) for ref, _ in _pairs(record)):
            return pid
    raise not_found(
        f"No merge of Patient/{source_id} to undo", f"Không có lần gộp nào của Patient/{source_id} để hoàn tác"
    )


def _live(repo: Repository, id: str, role: str) -> StoredVersion:
    """The current version as the caller may read it: 404 when missing or out of reach, 409 when deleted."""
    try:
        return repo.read("Patient", id)
    except FhirError as exc:
        if exc.status != 410:
            raise
        raise FhirError.of(
            409, "conflict", f"The {role} Patient/{id} is deleted", f"Patient/{id} ({role}) đã bị xoá"
        ) from exc


def _referrers(repo: Repository, patient: str) -> list[StoredVersion]:
    """The current resources that reference the Patient, read with the server's rights (whether the caller
    may change them is decided by :func:`_check_reach` and by each write)."""
    server = repo.privileged("patient-merge")
    found = []
    for rtype, rid in sorted(repo.referring(("Patient", patient))):
        if rtype != "Provenance":  # the record of what happened stays as it was written
            found.append(server.read(rtype, rid))
    return found


def _target_body(p: Plan, result: dict[str, Any] | None) -> dict[str, Any]:
    body = dict(result) if result is not None else res.loads_object(p.target.content)
    if body.get("id") != p.target.id:
        raise bad_request(
            f"'result-patient' must be Patient/{p.target.id}, the target",
            f"'result-patient' phải là Patient/{p.target.id}, bệnh nhân đích",
        )
    body["link"] = [*_other_links(body, p.source.id), _link(p.source.id, "replaces")]
    return body


def _repoint(node: Any, source: str, target: str) -> bool:
    """Rewrite every reference to the source Patient in place; whether anything changed."""
    changed = False
    for holder in _references(node):
        ref = str(holder["reference"])
        if ref == f"Patient/{source}" or ref.endswith(f"/Patient/{source}"):
            holder["reference"] = ref[: -len(source)] + target
            changed = True
    return changed


def _references(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _update(repo: Repository, body: dict[str, Any]) -> StoredVersion:
    """Store ``body`` as the next version (its ``meta`` kept: profiles, tags and labels stay; the server
    sets the version and time)."""
    stored, _ = repo.update(str(body["resourceType"]), str(body["id"]), body)
    return stored


def _provenance(
    repo: Repository, activity: str, written: list[tuple[StoredVersion, StoredVersion]], target: str
) -> None:
    user = repo.context.user or repo.context.client_id or "unknown"
    agent: dict[str, Any] = {"who": {"display": user}}
    if repo.context.organization:
        agent["onBehalfOf"] = {"reference": repo.context.organization}
    record = {
        "resourceType": "Provenance",
        "meta": {"tag": [MPI_TAG]},
        "extension": [{"url": TARGET_URL, "valueReference": {"reference": f"Patient/{target}"}}],
        "target": [{"reference": _versioned(after)} for _, after in written],
        "recorded": res.instant(res.now()),
        "activity": {"coding": [{"system": LIFECYCLE, "code": activity}]},
        "agent": [agent],
        "entity": [{"role": "revision", "what": {"reference": _versioned(before)}} for before, _ in written],
    }
    repo.privileged(f"patient-{activity}").create(record)


def _pairs(record: dict[str, Any]) -> list[tuple[tuple[str, str, int], tuple[str, str, int]]]:
    targets = [_parse(t.get("reference")) for t in record.get("target", [])]
    befores = [_parse((e.get("what") or {}).get("reference")) for e in record.get("entity", [])]
    return [(a, b) for a, b in zip(targets, befores, strict=False) if a and b]


def _parse(ref: Any) -> tuple[str, str, int] | None:
    parts = str(ref or "").split("/")
    if len(parts) == 4 and parts[2] == "_history" and parts[3].isdigit():
        return parts[0], parts[1], int(parts[3])
    return None


def _merge_target(record: dict[str, Any]) -> str:
    for ext in record.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == TARGET_URL:
            return str((ext.get("valueReference") or {}).get("reference", ""))
    return ""


def _activity(record: dict[str, Any]) -> str:
    codings = (record.get("activity") or {}).get("coding") or [{}]
    return str(codings[0].get("code", "")) if codings[0].get("system") == LIFECYCLE else ""


def _versioned(v: StoredVersion) -> str:
    return f"{v.resource_type}/{v.id}/_history/{v.version}"


def _link(patient: str, kind: str) -> dict[str, Any]:
    return {"other": {"reference": f"Patient/{patient}"}, "type": kind}


def _other_links(body: dict[str, Any], patient: str) -> list[dict[str, Any]]:
    return [
        link
        for link in body.get("link") or []
        if not (isinstance(link, dict) and (link.get("other") or {}).get("reference") == f"Patient/{patient}")
    ]


def _replaced_by(body: dict[str, Any]) -> str | None:
    for link in body.get("link") or []:
        if isinstance(link, dict) and link.get("type") == "replaced-by":
            return str((link.get("other") or {}).get("reference"))
    return None
