"""vnehr's error hierarchy: one table from error kind to HTTP status and OperationOutcome code.

https://hl7.org/fhir/R4/operationoutcome.html, https://hl7.org/fhir/R4/http.html

    FhirError                      (500, exception)
     ├── InvalidRequest            (400, invalid)     malformed request, bad parameter
     │    ├── InvalidResource      (400, structure)   resource fails validation (issues attached)
     │    └── UnknownResourceType  (404, not-supported)
     ├── NotAuthorized             (401/403, security)
     ├── NotFound                  (404, not-found)
     ├── Gone                      (410, deleted)     read of a deleted resource
     ├── MethodNotAllowed          (405, not-supported)
     ├── NotAcceptable             (406, not-supported)
     ├── Conflict                  (409, conflict)
     │    └── VersionConflict      (412, conflict)    If-Match does not hold
     ├── PreconditionFailed        (412, multiple-matches / duplicate)
     ├── PayloadTooLarge           (413, too-long)
     ├── UnsupportedMediaType      (415, not-supported)
     ├── Unprocessable             (422, processing)  business rule, e.g. id mismatch
     └── StoreUnavailable          (503, transient)

Only the router turns these into an OperationOutcome, only the HTTP layer into a status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: what went wrong and where (a FHIRPath expression)."""

    severity: str  # fatal | error | warning | information
    code: str  # an IssueType code: invalid, structure, required, value, code-invalid, ...
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict[str, Any]:
    """An OperationOutcome resource listing `issues`."""
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


@dataclass
class FhirError(Exception):
    """Base of every error vnehr raises on purpose; carries its OperationOutcome issues."""

    diagnostics: str = "internal error"
    expression: tuple[str, ...] = ()
    issues: list[Issue] = field(default_factory=list)

    status = 500
    code = "exception"

    def __post_init__(self) -> None:
        super().__init__(self.diagnostics)
        if not self.issues:
            self.issues = [Issue("error", self.code, self.diagnostics, tuple(self.expression))]

    def __str__(self) -> str:
        return self.diagnostics

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class InvalidRequest(FhirError):
    status = 400
    code = "invalid"


class InvalidResource(InvalidRequest):
    """The resource fails validation; `issues` lists every problem found."""

    code = "structure"


class UnknownResourceType(InvalidRequest):
    status = 404
    code = "not-supported"


class NotAuthorized(FhirError):
    status = 401
    code = "security"


class Forbidden(FhirError):
    status = 403
    code = "forbidden"


class NotFound(FhirError):
    status = 404
    code = "not-found"


class Gone(FhirError):
    status = 410
    code = "deleted"


class MethodNotAllowed(FhirError):
    status = 405
    code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    code = "not-supported"


class Conflict(FhirError):
    status = 409
    code = "conflict"


class VersionConflict(Conflict):
    """If-Match names a version that is no longer current."""

    status = 412


class PreconditionFailed(FhirError):
    """Conditional interaction whose criteria match more than one resource."""

    status = 412
    code = "multiple-matches"


class PayloadTooLarge(FhirError):
    status = 413
    code = "too-long"


class UnsupportedMediaType(FhirError):
    status = 415
    code = "not-supported"


class Unprocessable(FhirError):
    status = 422
    code = "processing"


class StoreUnavailable(FhirError):
    status = 503
    code = "transient"
