"""``ketnoi audit verify|checkpoint``: check the audit trail, and sign its head to copy off the machine.

``verify`` first moves into the log the read records a stopped server left in the audit journal
(ADR 0018), then walks the whole log and its checkpoints (``ketnoi.security.audit.verify``): it prints
``ok: N records, head seq S hash H`` and exits 0, or prints ``error: audit record S: why`` (the
first bad record) and exits 1. ``checkpoint`` signs the head and prints the checkpoint, or writes
it to ``--out FILE``: a file meant to be kept elsewhere, and given back to ``verify --checkpoint``
to prove the log still holds what it held then. Any other failure (a bad URL, an unreadable file,
an outdated schema) is one line on stderr and exit code 2, as for the other operators' commands
(``ketnoi.security.commands``), whose plumbing this module shares.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ketnoi import config
from ketnoi.security.commands import _command, _group, _out
from ketnoi.security.urls import fhir_base, issuer_for

if TYPE_CHECKING:
    from ketnoi.store.base import Store

    OpenStore = Callable[[str], Store]
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def _verify(args: argparse.Namespace, store: Store) -> int:
    # Imported on use, like the token commands: joserfc is not needed by `ketnoi --help`.
    from ketnoi.auth.keys import KeyRing
    from ketnoi.interactions.audit import recover_journal
    from ketnoi.security.audit import stored_ring, verify

    moved = recover_journal(store, config.from_env())
    if moved:  # a server stopped before moving them: they belong in the log being checked
        _out(f"moved {moved} audit records left in the journal by a stopped server into the log")
    now = time.time()
    checkpoint = _read(args.checkpoint) if args.checkpoint else None
    keys = KeyRing.from_public_jwks(json.loads(_read(args.jwks)), now=now) if args.jwks else stored_ring(store, now)
    report = verify(store, checkpoint, keys)
    if not report.ok:
        sys.stderr.write(report.line() + "\n")
        return 1
    _out(report.line())
    if report.checkpoints:
        unchecked = f" ({report.unsigned} signed by keys no longer in the ring: hash only)" if report.unsigned else ""
        _out(f"checkpoints matched: {report.checkpoints}{unchecked}")
    return 0


def _checkpoint(args: argparse.Namespace, store: Store) -> int:
    from ketnoi.auth.tokens import unverified
    from ketnoi.security.audit import make_checkpoint

    statement = make_checkpoint(store, time.time(), issuer=issuer_for(fhir_base(config.from_env())))
    if not args.out:
        _out(statement)
        return 0
    with open(args.out, "w", encoding="utf-8") as file:
        file.write(statement + "\n")
    claims = unverified(statement, 1)
    _out(f"checkpoint of audit record {claims.get('seq')} (hash {claims.get('hash')}) written to {args.out}")
    return 0


def register(sub: SubParsers, open_store: OpenStore) -> None:
    """Add ``audit verify`` and ``audit checkpoint`` to the ``ketnoi`` subcommands."""
    audit = _group(sub, "audit", "the tamper-evident audit trail")
    check = _command(audit, "verify", "check the audit log's hash chain and checkpoints", _verify, open_store)
    check.add_argument(
        "--checkpoint", metavar="FILE", help="a checkpoint kept off the machine (ketnoi audit checkpoint)"
    )
    check.add_argument(
        "--jwks",
        metavar="FILE",
        help="check signatures with this JWK Set (e.g. saved from /auth/jwks with the checkpoints) instead of the "
        "database's key ring",
    )
    sign = _command(
        audit, "checkpoint", "sign the head of the audit log (to copy off the machine)", _checkpoint, open_store
    )
    sign.add_argument("--out", metavar="FILE", help="write the checkpoint to this file (default: print it)")
