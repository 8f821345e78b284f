"""What the operators' pages show, shaped for their templates: a background job's progress, the resource
counts of the status page, the QR code of a new TOTP secret. No reading of its own: the pages hand in
what :mod:`ketnoi.security.admin` and the FHIR interactions answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import segno

from ketnoi.auth.totp import provisioning_uri
from ketnoi.console import records, show
from ketnoi.jobs.runner import FINISHED, Job

#: The types the status page counts (``_summary=count`` through the interactions, as the caller): the
#: registries and the clinical record's main parts, not all 145.
COUNTED: Final = (
    "Patient", "Organization", "Practitioner", "Encounter", "Observation", "Condition", "MedicationRequest",
    "Immunization", "Claim",
)  # fmt: skip
#: The job kinds whose status URL cancels them (``DELETE [base]/$<kind>-status?job=N``, docs/jobs.md).
CANCELLABLE: Final = frozenset({"import", "export", "reindex"})


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    kind: str
    state: str
    done: int
    total: int | None  # None: the job does not know how much is left (a <progress> without a value)
    unit: str  # the text key of what ``done`` counts
    created: str  # Vietnam time
    updated: str
    error: str | None
    cancellable: bool

    @property
    def percent(self) -> int | None:
        return None if not self.total else min(100, round(100 * self.done / self.total))


def job_row(job: Job) -> JobRow:
    done, total, unit = _progress(job)
    if job.state == "done" and total is not None:
        done = total  # a finished export stops counting at its last type
    return JobRow(
        job.id, job.kind, job.state, done, total, unit,
        show.epoch_moment(job.created), show.epoch_moment(job.updated), job.error,
        job.kind in CANCELLABLE and job.state not in FINISHED,
    )  # fmt: skip


def _progress(job: Job) -> tuple[int, int | None, str]:
    """(done, out of, unit) from the progress each kind's step keeps (ketnoi.operations, ketnoi.mpi)."""
    progress, params = job.progress, job.params
    if job.kind == "import":
        return _int(progress.get("current")), len(progress.get("inputs") or ()), "ops_unit_files"
    if job.kind == "export":
        return _int(progress.get("index")), len(params.get("types") or ()), "ops_unit_types"
    if job.kind == "mpi-link":
        return _int(progress.get("done")), len(params.get("patients") or ()), "ops_unit_patients"
    if job.kind == "reindex":
        return _int(progress.get("processed")), None, "ops_unit_resources"
    return 0, None, "ops_unit_steps"


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def counts(reader: records.Reader) -> list[tuple[str, int | None]]:
    """(type, how many the caller may see; None when the count was refused)."""
    return [(rtype, reader.count(rtype, []).total) for rtype in COUNTED]


def size(value: int | None) -> str:
    """Bytes for people: 12.3 MB."""
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TB"  # unreachable: the loop returns at GB


def duration(seconds: float) -> str:
    """Uptime as days, hours and minutes: 2d 03:15."""
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    return f"{days}d {minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class Totp:
    """A new TOTP secret as shown once: the text to type and the QR code an authenticator app scans."""

    secret: str
    uri: str  # otpauth://totp/ketnoi:name?secret=...&issuer=ketnoi
    qr: str  # a data: URI of the QR code's SVG (the pages' CSP allows img-src data:, no inline script)


def totp(secret: str, username: str) -> Totp:
    uri = provisioning_uri(secret, username)
    # Error correction M (15%): a phone reads it off a dim or scratched screen; 4 px modules fit a phone.
    qr = segno.make(uri, error="m").svg_data_uri(scale=4, border=4)
    return Totp(secret, uri, qr)
