"""Background jobs: a durable queue in the ``job`` table and a runner that works through it.

A job is a row (kind, params, state, progress); a *step* function registered for its kind does one
unit of work (one batch) in one write transaction and records its progress in the same
transaction, so a job that stops for any reason (crash, restart, shutdown) resumes where the last
committed step left it. See docs/jobs.md.
"""

from __future__ import annotations

from ketnoi.jobs.runner import FINISHED, Job, JobRunner, JobStep

__all__ = ["FINISHED", "Job", "JobRunner", "JobStep"]
