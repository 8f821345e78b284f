"""``ketnoi demo generate`` and ``ketnoi demo accounts``: the command-line entries to the demo data."""

from __future__ import annotations

import argparse
import json
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
    """Add ``demo generate`` and ``demo accounts`` to a CLI's subcommands."""
    demo = subparsers.add_parser("demo", help="synthetic demo data", description="Synthetic demo data.")
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="COMMAND", required=True)
    gen = demo_sub.add_parser(
        "generate",
        help="generate a synthetic Vietnamese population (FHIR R4, or claims XML)",
        description="Generate a deterministic synthetic Vietnamese population as FHIR R4 NDJSON files or "
        "transaction Bundles, with deliberate duplicate patients (ground truth in duplicates.csv; with "
        "--hard-duplicates also twins.csv), or the same "
        "patients' visits as claims XML (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT).",
    )
    gen.add_argument("--patients", type=_count, required=True, help="number of patients")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--out", type=Path, required=True, help="output directory")
    gen.add_argument(
        "--format",
        choices=FORMATS,
        default="ndjson",
        dest="fmt",
        help="ndjson: one file per resource type; bundles: transaction Bundles; xml130: the same patients' "
        "visits as claims XML envelopes of QĐ 130/4750 (out/xml130/<MACSKCB>-<nnnn>.xml, --duplicates ignored) "
        "(default ndjson)",
    )
    gen.add_argument(
        "--duplicates",
        type=_rate,
        default=0.02,
        metavar="RATE",
        help="share of patients registered a second time with errors (default 0.02)",
    )
    gen.add_argument(
        "--hard-duplicates",
        action="store_true",
        dest="hard",
        help="harder duplicates (2-4 errors each, CCCD missing in 70 %% and BHYT card in 80 %%) and twins of 1 %% "
        "of patients: other people with the same family name, birth date, sex and address (ground truth in "
        "twins.csv; not duplicates)",
    )
    gen.set_defaults(func=run_generate)
    _register_accounts(demo_sub)


def _register_accounts(demo_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = demo_sub.add_parser(
        "accounts",
        help="make sign-in accounts and OAuth clients for the demo data (prints their passwords once, as JSON)",
        description="On a database loaded with demo data (`ketnoi demo generate` + `ketnoi load`), make the "
        "accounts admin (with TOTP), clinician (at a demo facility, fhirUser one of its practitioners), provincial "
        "(its provincial health department) and "
        "patient (a demo patient with clinical data), a confidential client 'ketnoi demo backend' (system/*.rs) "
        "and a public client 'ketnoi demo app'. Prints the passwords and secrets once, as JSON. Exit code 1: "
        "the accounts or the --out file exist already (nothing changed); 2: any other error.",
    )
    accounts.add_argument("--database", help="sqlite:///path.db or postgresql://... (env KETNOI_DATABASE)")
    accounts.add_argument(
        "--out", type=Path, metavar="FILE", help="also write the JSON to FILE, a new file only its owner may read"
    )
    accounts.add_argument(
        "--base-url",
        default="http://127.0.0.1:8080",
        metavar="URL",
        help="the server's address, for the app's redirect URI URL/auth/demo-callback (default http://127.0.0.1:8080)",
    )
    accounts.add_argument(
        "--reset",
        action="store_true",
        help="the accounts exist: set new passwords (and a new TOTP secret) and register new clients, "
        "revoking the earlier demo clients",
    )
    accounts.set_defaults(func=run_accounts)
    sign_in = demo_sub.add_parser(
        "sign-in",
        help="print where to sign in and the demo accounts, from the file `ketnoi demo accounts --out` wrote",
    )
    sign_in.add_argument("file", type=Path, metavar="FILE", help="the JSON written by `ketnoi demo accounts --out`")
    sign_in.add_argument("--url", default="http://127.0.0.1:8080", help="the console's address (default %(default)s)")
    sign_in.set_defaults(func=run_sign_in)


def sign_in_text(shown: dict[str, dict[str, str]], url: str) -> str:
    """The lines ``make run`` prints: the console's address and each demo account's user name and password
    (the admin's second factor as its otpauth URI, for an authenticator app)."""
    lines = [f"Open {url.rstrip('/')}/ in a browser and sign in (Mở trình duyệt và đăng nhập):"]
    for role in ("clinician", "patient", "provincial", "admin"):
        account = shown.get(role)
        if account:
            lines.append(f"  {role:<10} {account['username']} / {account['password']}")
            if account.get("totp_uri"):
                lines.append(f"  {'':<10} TOTP: {account['totp_uri']}")
    return "\n".join(lines) + "\n"


def run_sign_in(args: argparse.Namespace) -> int:
    try:
        shown = json.loads(args.file.read_text(encoding="utf-8"))
        text = sign_in_text(shown, args.url)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        sys.stderr.write(f"error: cannot read the demo accounts from {args.file}: {' '.join(str(exc).split())}\n")
        return 2
    sys.stdout.write(text)
    return 0


def run_generate(args: argparse.Namespace) -> int:
    summary = generate(args.patients, args.seed, args.out, fmt=args.fmt, duplicate_rate=args.duplicates, hard=args.hard)
    sys.stdout.write(summary.table() + "\n")
    return 0


def run_accounts(args: argparse.Namespace) -> int:
    # Imported on use: it loads the server's layers, which `demo generate` and `ketnoi --help` do not need.
    from ketnoi.demo.accounts import run

    return run(args)
