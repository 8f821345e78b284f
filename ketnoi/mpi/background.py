"""Linking in the background: a Patient created or changed is matched by a job, never in the request.

After a transaction that wrote Patients commits, one ``mpi-link`` job is queued with their ids (after
the commit, so a write that rolled back queues nothing). Its steps (:data:`BATCH` patients each, in one
transaction with the server's rights) run :func:`ketnoi.mpi.link.link_patient`; each step leaves one
AuditEvent with what it wrote (golden records, review Tasks), like a bulk import step. A job that dies is
resumed from its last step by the runner (ketnoi.jobs).

A review Task completed by a data steward links its pair in the steward's own transaction (a write hook):
the decision and the link commit together, or neither does.

``Settings.mpi_link`` (``KETNOI_MPI_LINK``, on by default) turns the queueing off, e.g. for a large
initial load that ``ketnoi mpi dedupe`` will go through afterwards. ``ketnoi load`` queues nothing.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ketnoi.config import ConfigError
from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.services import Services
from ketnoi.jobs import Job, JobRunner, JobStep
from ketnoi.mpi import link
from ketnoi.mpi.matcher import model_for, registry_size
from ketnoi.search.extract_mpi import is_golden
from ketnoi.store.base import Session, StoredVersion

KIND: Final = "mpi-link"
BATCH: Final = 50
OWNER: Final = RequestContext.internal(KIND)


def install(services: Services, runner: JobRunner) -> None:
    path = services.settings.mpi_model
    try:
        model_for(path)  # a bad model file stops the start, not the first $match
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"KETNOI_MPI_MODEL {path}: not a patient-index model ({exc})") from exc
    runner.register(KIND, link_step(services))
    services.after_write.append(_on_review_task)
    if services.settings.mpi_link:
        services.after_commit.append(lambda context, written: queue(runner, written))


def queue(runner: JobRunner, written: list[StoredVersion]) -> None:
    ids = sorted({v.id for v in written if v.resource_type == "Patient" and not v.deleted and not _golden(v)})
    if ids:
        runner.submit(KIND, {"patients": ids}, {"done": 0}, owner=OWNER.to_json())


def link_step(services: Services) -> JobStep:
    def step(session: Session, job: Job) -> bool:
        ids = [str(i) for i in job.params.get("patients", [])]
        done = int(job.progress.get("done", 0))
        repo = Repository(services, session, RequestContext.of_job(job.owner))
        model = model_for(repo.services.settings.mpi_model).for_records(registry_size(repo))
        totals = {k: int(job.progress.get(k, 0)) for k in ("linked", "reviews", "skipped")}
        for pid in ids[done : done + BATCH]:
            outcome = link.link_patient(repo, pid, model)
            totals["linked"] += outcome.linked
            totals["reviews"] += outcome.reviews
            totals["skipped"] += outcome.skipped
        audit.record_bulk(repo, "patient index linking", job.id)
        job.progress.update(done=min(done + BATCH, len(ids)), **totals)
        return done + BATCH >= len(ids)

    return step


def _on_review_task(repo: Repository, stored: StoredVersion, body: dict[str, Any] | None) -> None:
    if stored.resource_type == "Task" and body is not None:
        link.on_task(repo.privileged(KIND), body)


def _golden(version: StoredVersion) -> bool:
    try:
        body = orjson.loads(version.content or b"{}")
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and is_golden(body)
