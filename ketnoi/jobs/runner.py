"""The job queue and its runner.

States: ``queued`` → ``running`` → ``done`` | ``failed``; ``cancelled`` at any time before the end.
A runner *claims* a job (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: inside the single write
transaction), which leases it to that runner for ``lease_s`` seconds. Every step renews the lease
and saves the progress in the step's own transaction, but only while the runner still holds the
job (same worker, still running): a job cancelled meanwhile, or taken over after its lease expired,
makes the step roll back and the runner let go. A runner that dies leaves a lease that expires, and
the next claim (by any process: the server's runner thread or ``ketnoi reindex``) resumes the job
from its last saved progress. A runner stopped cleanly hands its job back (queued) at once.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ketnoi.store.base import JobRecord, Session, Store

log = logging.getLogger("ketnoi.jobs")

FINISHED = frozenset({"done", "failed", "cancelled"})
OWNER = "_owner"  # the key of the starting caller in a job's parameters
UNFINISHED = ("queued", "running")


@dataclass(slots=True)
class Job:
    id: int
    kind: str
    params: dict[str, Any]
    state: str
    progress: dict[str, Any]
    error: str | None
    created: float
    updated: float
    worker: str | None = None
    lease_until: float | None = None

    @classmethod
    def of(cls, record: JobRecord) -> Job:
        return cls(
            record.id,
            record.kind,
            orjson.loads(record.params),
            record.state,
            orjson.loads(record.progress),
            record.error,
            record.created,
            record.updated,
            record.worker,
            record.lease_until,
        )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def owner(self) -> dict[str, Any] | None:
        """Who started the job (a RequestContext as JSON): its steps run with that caller's rights."""
        owner = self.params.get(OWNER)
        return owner if isinstance(owner, dict) else None


# One unit of work (e.g. one batch of 500) inside the given write transaction: it updates
# ``job.progress`` in place and returns True once the job is complete. Raising rolls the step back
# (progress included); the runner retries it, then fails the job.
JobStep = Callable[[Session, Job], bool]


class _LostJob(Exception):
    """The job was cancelled or taken over by another runner while this one worked on it."""


class JobRunner:
    """Claims and runs jobs: in a background thread (``start``) or in the caller's thread (``run``)."""

    def __init__(
        self,
        store: Store,
        *,
        poll_s: float = 1.0,
        lease_s: float = 60.0,
        retries: int = 3,
        worker: str | None = None,
    ) -> None:
        self.store = store
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.retries = retries
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.steps: dict[str, JobStep] = {}
        self.idle_tasks: list[Callable[[], None]] = []  # run between jobs (each poll)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def register(self, kind: str, step: JobStep) -> None:
        self.steps[kind] = step

    # ---- the queue -------------------------------------------------------------------------------
    def submit(
        self,
        kind: str,
        params: dict[str, Any],
        progress: dict[str, Any] | None = None,
        *,
        owner: dict[str, Any] | None = None,
    ) -> Job:
        """Queue a job (committed on return) and wake the runner thread. ``owner``: the caller who
        started it (kept with the parameters, so the job runs with that caller's rights)."""
        stored = {**params, OWNER: owner} if owner is not None else params
        with self.store.session(write=True) as session:
            record = session.add_job(kind, _dumps(stored), _dumps(progress or {}), time.time())
        self._wake.set()
        return Job.of(record)

    def get(self, id: int) -> Job | None:
        with self.store.session(write=False) as session:
            record = session.job(id)
        return Job.of(record) if record else None

    def find_unfinished(self, kind: str, params: dict[str, Any]) -> Job | None:
        """The oldest queued or running job of ``kind`` with exactly these params (to resume it)."""
        with self.store.session(write=False) as session:
            records = session.jobs(kind, UNFINISHED)
        for record in records:
            job = Job.of(record)
            if {k: v for k, v in job.params.items() if k != OWNER} == params:
                return job
        return None

    def cancel(self, id: int, *, finished_too: bool = False) -> Job | None:
        """Cancel a job that has not finished (its runner lets go after the current step); with
        ``finished_too`` a finished one as well (an export whose files the client deletes)."""
        with self.store.session(write=True) as session:
            record = session.job(id)
            if record is None or (record.state in FINISHED and not (finished_too and record.state != "cancelled")):
                return Job.of(record) if record else None
            session.update_job(
                id, None, state="cancelled", progress=record.progress, error=None, lease_until=None, now=time.time()
            )
            record = session.job(id)
        return Job.of(record) if record else None

    # ---- running ---------------------------------------------------------------------------------
    def run(
        self,
        job_id: int | None = None,
        *,
        kinds: Sequence[str] | None = None,
        max_steps: int | None = None,
        on_progress: Callable[[Job], None] | None = None,
    ) -> Job | None:
        """Claim one job (``job_id``, or the oldest of ``kinds``, default every registered kind) and
        run it in this thread until it finishes, is lost, the runner stops, or ``max_steps`` steps
        are done (then it stays running under this runner's lease, as if the process had died).
        None when there was nothing to claim (no such job, finished, or leased by another runner)."""
        kinds = list(kinds if kinds is not None else self.steps)
        if job_id is None and not self._anything_to_claim(kinds):
            return None  # the idle poll stays a read: no write transaction (SQLite's single writer)
        now = time.time()
        with self.store.session(write=True) as session:
            record = session.claim_job(kinds, self.worker, now, now + self.lease_s, job_id=job_id)
        if record is None:
            return None
        job = Job.of(record)
        step = self.steps.get(job.kind)
        if step is None:
            self._fail(job, f"no handler for jobs of kind '{job.kind}'")
            return job
        log.info("job %s (%s) claimed by %s", job.id, job.kind, self.worker)
        steps = failures = 0
        while True:
            if max_steps is not None and steps >= max_steps:
                return job
            if self._stopping.is_set():
                self._release(job)
                return job
            saved = copy.deepcopy(job.progress)
            try:
                done = self._step(step, job)
            except _LostJob:
                job.progress = saved
                log.info("job %s was cancelled or taken over; %s lets go", job.id, self.worker)
                return self.get(job.id) or job
            except Exception as exc:
                job.progress = saved
                failures += 1
                log.warning("job %s step failed (try %d of %d)", job.id, failures, self.retries + 1, exc_info=True)
                if failures > self.retries:
                    self._fail(job, f"{type(exc).__name__}: {exc}")
                    return job
                time.sleep(min(0.2 * 2**failures, 5.0))
                continue
            failures = 0
            steps += 1
            if on_progress is not None:
                on_progress(job)
            if done:
                log.info("job %s (%s) done", job.id, job.kind)
                return job

    def _anything_to_claim(self, kinds: list[str]) -> bool:
        with self.store.session(write=False) as session:
            return any(session.jobs(kind, UNFINISHED) for kind in kinds)

    def _step(self, step: JobStep, job: Job) -> bool:
        with self.store.session(write=True) as session:
            done = step(session, job)
            now = time.time()
            state = "done" if done else "running"
            lease = None if done else now + self.lease_s
            if not session.update_job(
                job.id, self.worker, state=state, progress=_dumps(job.progress), error=None, lease_until=lease, now=now
            ):
                raise _LostJob  # rolls this step back
        job.state, job.updated, job.lease_until = state, now, lease
        return done

    def _fail(self, job: Job, error: str) -> None:
        log.error("job %s (%s) failed: %s", job.id, job.kind, error)
        with self.store.session(write=True) as session:
            if session.update_job(
                job.id,
                self.worker,
                state="failed",
                progress=_dumps(job.progress),
                error=error[:4000],
                lease_until=None,
                now=time.time(),
            ):
                job.state, job.error = "failed", error

    def _release(self, job: Job) -> None:
        """Hand a job back to the queue (clean shutdown): the next runner resumes it without waiting."""
        with self.store.session(write=True) as session:
            if session.update_job(
                job.id,
                self.worker,
                state="queued",
                progress=_dumps(job.progress),
                error=None,
                lease_until=None,
                now=time.time(),
            ):
                job.state = "queued"

    # ---- the background thread -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the runner thread (idempotent)."""
        with self._start_lock:
            if self.running:
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name="ketnoi-jobs", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current step; a job in progress goes back to the queue."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        errors = 0
        while not self._stopping.is_set():
            job = None
            try:
                job = self.run()
                if job is None:
                    for task in self.idle_tasks:
                        task()
                errors = 0
            except Exception as exc:
                if "closed" in str(exc).lower():  # the store was closed under us (shutdown): stop
                    log.info("job runner stops: %s", exc)
                    return
                errors += 1
                log.warning("job runner error", exc_info=errors == 1)
            if job is None or errors:
                self._wake.wait(self.poll_s if not errors else min(self.poll_s * 2**errors, 60.0))
                self._wake.clear()


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
