"""The durable job queue and its runner, on a fresh database of each backend."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ketnoi.app import open_store
from ketnoi.jobs import Job, JobRunner
from ketnoi.store.base import Session, Store
from tests.conftest import BACKENDS, throwaway_url


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with throwaway_url(request.param, tmp_path, "ketnoi_jobs") as url:
        opened = open_store(url)
        opened.migrate()
        yield opened
        opened.close()


def _counting(total: int, per_step: int = 1, delay: float = 0.0) -> tuple[Counter[int], object]:
    """A step that counts to ``total`` in the job's progress, recording every committed value."""
    seen: Counter[int] = Counter()

    def step(session: Session, job: Job) -> bool:
        if delay:
            time.sleep(delay)
        start = job.progress.get("n", 0)
        end = min(start + per_step, total)
        job.progress["n"] = end
        seen.update(range(start, end))
        return end >= total

    return seen, step


def _wait(runner: JobRunner, job_id: int, states: set[str], timeout: float = 30) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = runner.get(job_id)
        assert job is not None
        if job.state in states:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def test_background_runner_runs_queued_jobs_in_order(store: Store) -> None:
    runner = JobRunner(store, poll_s=0.05)
    _, step = _counting(7, per_step=3)
    runner.register("count", step)  # type: ignore[arg-type]
    first = runner.submit("count", {"name": "a"})
    second = runner.submit("count", {"name": "b"})
    assert first.state == "queued" and first.progress == {}
    runner.start()
    runner.start()  # idempotent
    try:
        done = _wait(runner, second.id, {"done"})
        assert done.progress == {"n": 7} and done.params == {"name": "b"}
        earlier = runner.get(first.id)
        assert earlier is not None and earlier.state == "done" and earlier.updated <= done.updated
    finally:
        runner.stop()
    assert not runner.running


def test_stop_hands_the_job_back_and_another_runner_resumes_it(store: Store) -> None:
    seen, step = _counting(40, delay=0.01)
    one = JobRunner(store, poll_s=0.05, lease_s=60, worker="one")
    one.register("count", step)  # type: ignore[arg-type]
    job = one.submit("count", {})
    one.start()
    _wait(one, job.id, {"running"})
    time.sleep(0.05)
    one.stop()
    stopped = one.get(job.id)
    assert stopped is not None and stopped.state in ("queued", "done")
    two = JobRunner(store, lease_s=60, worker="two")  # no need to wait for the 60 s lease
    two.register("count", step)  # type: ignore[arg-type]
    finished = two.run(job.id) if stopped.state == "queued" else stopped
    assert finished is not None and finished.state == "done"
    assert seen == Counter(dict.fromkeys(range(40), 1))  # every unit of work once


def test_cancel_makes_the_runner_let_go(store: Store) -> None:
    runner = JobRunner(store, lease_s=60)

    def step(session: Session, job: Job) -> bool:
        job.progress["steps"] = job.progress.get("steps", 0) + 1
        return False  # never finishes by itself

    runner.register("forever", step)
    job = runner.submit("forever", {})
    # Cancelled from outside between steps (another transaction): the next step's save fails.
    result = runner.run(job.id, on_progress=lambda j: runner.cancel(j.id) if j.progress["steps"] == 3 else None)
    assert result is not None and result.state == "cancelled"
    stored = runner.get(job.id)
    assert stored is not None and stored.state == "cancelled" and stored.progress["steps"] == 3
    assert runner.cancel(job.id) is not None  # finished jobs stay as they are
    assert runner.cancel(987654) is None


def test_a_job_with_an_unknown_kind_fails_and_claims_are_exclusive(store: Store) -> None:
    runner = JobRunner(store, worker="w")
    job = runner.submit("mystery", {})
    result = runner.run(job.id, kinds=["mystery"])
    assert result is not None and result.state == "failed" and "mystery" in (result.error or "")
    assert runner.run(job.id, kinds=["mystery"]) is None  # finished: nothing to claim

    # Many runners racing for many jobs: each job is claimed by exactly one of them.
    jobs = [runner.submit("race", {"n": n}).id for n in range(12)]
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()

    def claim(worker: str) -> None:
        while True:
            with store.session(write=True) as session:
                now = time.time()
                record = session.claim_job(["race"], worker, now, now + 60)
            if record is None:
                return
            with lock:
                claimed.append((worker, record.id))

    threads = [threading.Thread(target=claim, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(id for _, id in claimed) == jobs
