"""``ketnoi mpi dedupe`` and ``ketnoi mpi train``: the patient index over a whole database (docs/mpi.md).

``dedupe`` reads every current Patient (golden records aside) in pages, finds and grades the candidate
pairs in memory (:mod:`ketnoi.mpi.dedupe`, the same keys ``$match`` looks up), then acts on each pair
as the background linking does (:func:`ketnoi.mpi.link.decide`): certain pairs are linked into golden
records, probable and possible ones become review Tasks, :data:`BATCH` pairs per transaction, each
with its AuditEvent. It is resumable by running it again: a pair already linked or with a Task is
skipped, so an interrupted run picks up where it stopped and a second run writes nothing new.

``train`` estimates the weights from the database's own Patients (EM, no labels) and writes the model
as JSON; point ``KETNOI_MPI_MODEL`` at it and restart the server to use it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import orjson

from ketnoi.interactions import audit
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import unit_of_work
from ketnoi.interactions.services import Services
from ketnoi.mpi import link
from ketnoi.mpi.dedupe import Pair, candidate_pairs, key_buckets, scored_pairs
from ketnoi.mpi.matcher import model_for
from ketnoi.mpi.train import train
from ketnoi.search.extract_mpi import PatientView, is_golden, patient_view

PAGE = 5000  # Patients read per transaction
BATCH = 200  # pairs acted on per transaction
Opener = Callable[[str | None], AbstractContextManager[Services]]


def read_views(services: Services, show: Callable[[str], None]) -> tuple[list[str], list[PatientView]]:
    """Every current Patient but the golden records: (ids, views), in id order."""
    ids: list[str] = []
    views: list[PatientView] = []
    after: tuple[str, str] | None = None
    while True:
        with unit_of_work(services, RequestContext.internal("mpi"), write=False) as repo:
            page = repo.current_page(["Patient"], after, PAGE)
        for version in page:
            body = orjson.loads(version.content or b"{}")
            if isinstance(body, dict) and not is_golden(body):
                ids.append(version.id)
                views.append(patient_view(body))
        if len(page) < PAGE:
            return ids, views
        after = ("Patient", page[-1].id)
        show(f"read {len(ids):,} patients")


def graded_pairs(services: Services, ids: list[str], views: list[PatientView]) -> list[Pair]:
    """The pairs that may be one person, strongest first (certain ones are linked before the rest)."""
    model = model_for(services.settings.mpi_model).for_records(max(len(views), 2))
    pairs = candidate_pairs(views, key_buckets(views))
    found = [p for p in scored_pairs(views, model, pairs) if p.match.grade != "certainly-not"]
    found.sort(key=lambda p: (-p.match.probability, ids[p.a], ids[p.b]))
    return found


def apply(services: Services, ids: list[str], pairs: list[Pair], show: Callable[[str], None]) -> link.Outcome:
    outcome = link.Outcome()
    context = RequestContext.operator("mpi dedupe")
    for start in range(0, len(pairs), BATCH):
        with unit_of_work(services, context, write=True) as repo:
            for pair in pairs[start : start + BATCH]:
                outcome.count(link.decide(repo, ids[pair.a], ids[pair.b], pair.match))
            audit.record_bulk(repo, "ketnoi mpi dedupe")
        show(f"pairs {min(start + BATCH, len(pairs)):,}/{len(pairs):,}: {_counts(outcome)}")
    return outcome


def _counts(o: link.Outcome) -> str:
    return f"{o.linked:,} linked, {o.reviews:,} sent to review, {o.skipped:,} judged before"


def _show(text: str) -> None:
    if sys.stderr.isatty():
        print(f"\r  {text}\033[K", end="", file=sys.stderr, flush=True)


def dedupe(args: argparse.Namespace, opener: Opener) -> int:
    started = time.perf_counter()
    with opener(args.database) as services:
        ids, views = read_views(services, _show)
        pairs = graded_pairs(services, ids, views)
        certain = sum(1 for p in pairs if p.match.grade == "certain")
        print(f"{len(views):,} patients: {len(pairs):,} pairs may be one person ({certain:,} certain)")
        if args.dry_run:
            return 0
        outcome = apply(services, ids, pairs, _show)
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the progress line
    print(f"{_counts(outcome)} in {time.perf_counter() - started:.1f} s")
    return 0


def train_command(args: argparse.Namespace, opener: Opener) -> int:
    with opener(args.database) as services:
        _ids, views = read_views(services, _show)
    if len(views) < 100:
        print(f"error: {len(views)} patients are too few to estimate weights (at least 100)", file=sys.stderr)
        return 2
    model = train(views, random_pairs=args.random_pairs)
    args.out.write_text(json.dumps(model.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    info = model.trained
    print(f"model of {info['records']:,} patients ({info['candidate_pairs']:,} candidate pairs) written to {args.out};"
          f" use it with KETNOI_MPI_MODEL={args.out}")  # fmt: skip
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], opener: Opener) -> None:
    mpi = subparsers.add_parser("mpi", help="the master patient index over a whole database (docs/mpi.md)")
    commands = mpi.add_subparsers(dest="mpi_command", metavar="COMMAND", required=True)
    cmd = commands.add_parser(
        "dedupe",
        help="find the duplicate patients of the whole database: link certain ones, send the rest to review",
        description="Link the certain duplicate pairs into golden records and write a review Task for each "
        "probable or possible one. Run it again to resume: judged pairs are skipped.",
    )
    cmd.add_argument("--database", help="sqlite:///path.db or postgresql://... (env KETNOI_DATABASE)")
    cmd.add_argument("--dry-run", action="store_true", help="count the pairs, write nothing")
    cmd.set_defaults(func=lambda args: _guarded(dedupe, args, opener))
    cmd = commands.add_parser("train", help="estimate the matching weights from the database's patients (EM)")
    cmd.add_argument("--database", help="sqlite:///path.db or postgresql://... (env KETNOI_DATABASE)")
    cmd.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write the model (JSON)")
    cmd.add_argument("--random-pairs", type=int, default=200_000, help="random pairs for the u probabilities")
    cmd.set_defaults(func=lambda args: _guarded(train_command, args, opener))


def _guarded(command: Callable[[argparse.Namespace, Opener], int], args: argparse.Namespace, opener: Opener) -> int:
    try:
        return command(args, opener)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
