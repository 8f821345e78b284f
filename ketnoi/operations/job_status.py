"""What the asynchronous operations (``$import``, ``$export``) answer about their jobs, in one place:
the job number of a status request, a cancellation, a failure (http://hl7.org/fhir/R4/async.html)."""

from __future__ import annotations

from ketnoi.fhir.outcome import FhirError, Issue, bad_request, operation_outcome
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.jobs import Job


def job_number(request: FhirRequest) -> int:
    """``?job=N`` of a status request; 400 when it is missing or not a number."""
    value = request.param("job")
    if value is None or not value.isdigit():
        raise bad_request("Give the job number: ?job=N", "Cần số tác vụ: ?job=N", code="required")
    return int(value)


def cancelled(job: Job, what: tuple[str, str]) -> FhirResponse:
    """202 for a cancelled job; ``what``: its name in English and Vietnamese ("Export job", "tác vụ xuất")."""
    en, vi = what
    issue = Issue("information", "informational", f"{en} {job.id} cancelled", f"Đã huỷ {vi} {job.id}")
    return FhirResponse(202, resource=operation_outcome([issue]))


def failed(job: Job, what: tuple[str, str]) -> FhirError:
    """500 naming a job that failed and its error."""
    en, vi = what
    return FhirError.of(
        500, "exception", f"{en} {job.id} failed: {job.error}", f"{vi.capitalize()} {job.id} thất bại: {job.error}"
    )
