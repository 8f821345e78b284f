"""``ketnoi demo generate``: the command-line entry to the synthetic population generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ketnoi.demo.generate import FORMATS, generate


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return rate


def _count(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo generate`` to a CLI's subcommands."""
    demo = subparsers.add_parser("demo", help="synthetic demo data", description="Synthetic demo data.")
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="COMMAND", required=True)
    gen = demo_sub.add_parser(
        "generate",
        help="generate a synthetic Vietnamese population (FHIR R4)",
        description="Generate a deterministic synthetic Vietnamese population as FHIR R4 NDJSON files or "
        "transaction Bundles, with deliberate duplicate patients (ground truth in duplicates.csv).",
    )
    gen.add_argument("--patients", type=_count, required=True, help="number of patients")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--out", type=Path, required=True, help="output directory")
    gen.add_argument(
        "--format",
        choices=FORMATS,
        default="ndjson",
        dest="fmt",
        help="ndjson: one file per resource type; bundles: transaction Bundles (default ndjson)",
    )
    gen.add_argument(
        "--duplicates",
        type=_rate,
        default=0.02,
        metavar="RATE",
        help="share of patients registered a second time with errors (default 0.02)",
    )
    gen.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    summary = generate(args.patients, args.seed, args.out, fmt=args.fmt, duplicate_rate=args.duplicates)
    sys.stdout.write(summary.table() + "\n")
    return 0
