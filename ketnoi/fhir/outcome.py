"""FhirError and OperationOutcome: every error ketnoi reports, in English and Vietnamese.

http://hl7.org/fhir/R4/operationoutcome.html — ``issue.code`` uses the IssueType value set
(invalid, structure, required, value, not-found, deleted, conflict, too-costly, not-supported, ...).
The human text carries both languages ("English / Tiếng Việt") because the same outcome is read by
a hospital integrator abroad and a commune-station operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue."""

    severity: str  # fatal | error | warning | information
    code: str  # IssueType code
    en: str
    vi: str
    expression: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.text,
            "details": {"text": self.text},
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue

    @property
    def text(self) -> str:
        return self.en if not self.vi or self.vi == self.en else f"{self.en} / {self.vi}"


@dataclass(slots=True)
class FhirError(Exception):
    """An error with an HTTP status and the OperationOutcome issues that explain it."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(i.text for i in self.issues) or f"HTTP {self.status}"

    @classmethod
    def of(cls, status: int, code: str, en: str, vi: str, expression: tuple[str, ...] = ()) -> FhirError:
        return cls(status, [Issue("error", code, en, vi, expression)])

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    """Build an OperationOutcome resource from issues (an informational one if there are none)."""
    if not issues:
        issues = [Issue("information", "informational", "All OK", "Thành công")]
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def bad_request(en: str, vi: str, code: str = "invalid", expression: tuple[str, ...] = ()) -> FhirError:
    return FhirError.of(400, code, en, vi, expression)


def not_found(en: str, vi: str) -> FhirError:
    return FhirError.of(404, "not-found", en, vi)
