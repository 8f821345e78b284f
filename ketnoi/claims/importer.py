"""Import claims XML through the repository's one write path: one visit, one transaction.

A file is read twice. The first pass only reads (the reader streams, memory stays bounded): a file that is
not XML or hides a DTD, an entity or an external reference anywhere is refused before anything of it is
written. The second pass checks each visit (``ketnoi.xml130.rules``), maps it (``to_fhir``) and writes its
resources in one transaction with the caller's rights, or writes none of them: a bad visit is reported
and the next one goes on.

Idempotent: every resource's id derives from its business identifier, and ``Repository.upsert`` skips a
resource identical to the stored one, so importing a file again writes nothing and a corrected visit (the
same MA_LK at the same facility) updates its resources in place; those the correction no longer has (found
by the visit tag) are deleted. The facility's Patient is found by its patient number first, so a Patient
created through the API with that identifier is the one updated.
"""

from __future__ import annotations

import io
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ketnoi.claims import systems as s
from ketnoi.claims.build import Json
from ketnoi.claims.report import FileReport, VisitResult, severity
from ketnoi.claims.to_fhir import VISIT_TYPES, Mapped, facility_reference, map_visit
from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository, unit_of_work
from ketnoi.interactions.search import find_ids
from ketnoi.interactions.services import Services
from ketnoi.xml130.problems import Problem, Xml130Error
from ketnoi.xml130.reader import Visit, read_envelope
from ketnoi.xml130.rules import check_visit, count_problem

Source = Path | bytes
log = logging.getLogger("ketnoi.claims")
WHAT = "$import-xml130"  # the audit trail's name for these writes


class Importer:
    """Imports envelopes for one caller (its context decides what it may write, as for any write)."""

    def __init__(self, services: Services, context: RequestContext) -> None:
        self.services = services
        self.context = context
        self.base = services.settings.public_base()
        self._facilities: dict[str, Json] = {}
        self._own_facility: str | None = None

    def import_file(self, source: Source, name: str) -> FileReport:
        report = FileReport(name)
        header: dict[str, str] = {}
        try:
            count = sum(1 for _ in _visits(source, header))
        except Xml130Error as exc:
            report.refused = True
            report.problems.append(Problem(exc.rule, exc.message_vi, exc.message_en))
            return report
        report.facility = header.get("MACSKCB", "")
        for visit in _visits(source, {}):
            report.visits.append(self.import_visit(visit))
        mismatch = count_problem(header, count)
        if mismatch is not None:
            report.problems.append(mismatch)
        return report

    def import_visit(self, visit: Visit) -> VisitResult:
        problems = [*visit.problems, *(check_visit(visit.tables, visit.ma_lk) if "XML1" in visit.tables else [])]
        result = VisitResult(visit.index, visit.ma_lk, "rejected", problems)
        if any(severity(p) == "error" for p in problems):
            return result
        try:
            with unit_of_work(self.services, self.context, write=True) as repo:
                result.status, result.written = self._write(repo, visit)
        except FhirError as exc:  # rolled back: nothing of the visit was written
            result.status = "rejected"
            result.written = Counter()
            result.problems.append(_refused(visit, exc))
        except (KeyError, IndexError, TypeError, ValueError):  # a visit the checks let through but the mapping
            # could not take: our defect, not the hospital's, but still one visit that must not stop the file
            log.exception("claims visit %s (MA_LK %s) could not be mapped", visit.index, visit.ma_lk)
            result.status = "rejected"
            result.written = Counter()
            result.problems.append(
                Problem(
                    "mapping-failed",
                    "Không chuyển được hồ sơ sang FHIR (lỗi của ketnoi, đã ghi nhật ký); không ghi gì",
                    "the visit could not be mapped to FHIR (a ketnoi defect, logged); nothing was written",
                    "",
                    visit.ma_lk,
                )
            )
        return result

    # ---- one visit, in its transaction ---------------------------------------------------------------
    def _write(self, repo: Repository, visit: Visit) -> tuple[str, Counter[str]]:
        self._check_facility(repo, visit.facility)
        ma_bn = visit.tables["XML1"][0].get("MA_BN", "").strip()
        mapped = map_visit(
            visit.facility,
            visit.tables,
            patient=self._stored_patient(repo, visit.facility, ma_bn),
            facility_ref=self._facility(repo, visit.facility),
        )
        encounter = mapped.visit[0]["id"]
        existed = repo.exists("Encounter", encounter)  # imported before (deleted since, or not)
        repo.prefetch([(r["resourceType"], r["id"]) for r in mapped.resources])
        written: Counter[str] = Counter()
        for resource in mapped.resources:
            if repo.upsert(resource):
                written[resource["resourceType"]] += 1
        if existed:
            written.update(self._drop_stale(repo, visit, mapped))
        audit.record_bulk(repo, WHAT)
        return ("updated" if written else "unchanged") if existed else "created", written

    def _drop_stale(self, repo: Repository, visit: Visit, mapped: Mapped) -> Counter[str]:
        """Delete what an earlier version of this visit had and the corrected one does not."""
        keep = {(r["resourceType"], r["id"]) for r in mapped.visit}
        tag = f"{s.VISIT_TAG}|{visit.facility}/{visit.ma_lk}"
        dropped: Counter[str] = Counter()
        for rtype in VISIT_TYPES:
            for id in find_ids(repo, rtype, [("_tag", tag)], self.base, 10_000):
                if (rtype, id) not in keep and repo.delete(rtype, id) is not None:
                    dropped[f"{rtype} (deleted)"] += 1
        return dropped

    def _stored_patient(self, repo: Repository, facility: str, ma_bn: str) -> str | None:
        found = find_ids(repo, "Patient", [("identifier", f"{s.patient_system(facility)}|{ma_bn}")], self.base, 2)
        if len(found) > 1:
            raise FhirError.of(
                409,
                "duplicate",
                f"Two Patients carry patient number {ma_bn} of facility {facility}; merge them first",
                f"Hai Patient cùng mã bệnh nhân {ma_bn} của cơ sở {facility}; hãy gộp trước",
            )
        return found[0] if found else None

    def _facility(self, repo: Repository, facility: str) -> Json:
        if facility not in self._facilities:
            found = find_ids(repo, "Organization", [("identifier", f"{s.FACILITY_SYSTEM}|{facility}")], self.base, 1)
            self._facilities[facility] = facility_reference(facility, found[0] if found else None)
        return self._facilities[facility]

    def _check_facility(self, repo: Repository, facility: str) -> None:
        """A facility's account imports its own claims only (MACSKCB is its facility code)."""
        org = self.context.organization
        if org is None:
            return
        if self._own_facility is None:
            stored = repo.read("Organization", org.partition("/")[2])
            body = res.loads(stored.content) if stored.content else {}
            codes = [i.get("value") for i in body.get("identifier", []) if i.get("system") == s.FACILITY_SYSTEM]
            self._own_facility = str(codes[0]) if codes else ""
        if facility != self._own_facility:
            raise FhirError.of(
                403,
                "forbidden",
                f"The file is facility {facility}'s; this account acts for facility {self._own_facility or org}",
                f"Tệp là của cơ sở {facility}; tài khoản này thuộc cơ sở {self._own_facility or org}",
            )


def _refused(visit: Visit, exc: FhirError) -> Problem:
    first = exc.issues[0] if exc.issues else None
    return Problem(
        "fhir-refused" if exc.status != 403 else "forbidden",
        first.vi if first else str(exc),
        first.en if first else str(exc),
        "",
        visit.ma_lk,
    )


@contextmanager
def _opened(source: Source) -> Iterator[BinaryIO | str]:
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    else:
        yield os.fspath(source)


def _visits(source: Source, header: dict[str, str]) -> Iterator[Visit]:
    with _opened(source) as opened:
        yield from read_envelope(opened, header=header)
