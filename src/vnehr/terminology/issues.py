"""OperationOutcome issues of the terminology operations, in the form terminology clients
expect (https://hl7.org/fhir/extensions/CodeSystem-tx-issue-type.html): an IssueType `code`,
a `tx-issue-type` coding in `details` with the message as `details.text`, and where the
problem is (`location` and `expression`)."""

from __future__ import annotations

from typing import Any

from vnehr.errors import FhirError

Json = dict[str, Any]
TX_ISSUE_TYPE = "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type"
# Issues about the code or display that was given are located by `expression` only (the
# FHIRPath in the request); `location` (deprecated since R5) is kept for the issues about the
# code system, value set or version that was named, as tx.fhir.org answers.
EXPRESSION_ONLY = frozenset({"not-in-vs", "invalid-code", "this-code-not-in-vs", "invalid-display"})


def tx_issue(
    severity: str,
    code: str,
    tx_code: str | None,
    text: str,
    location: str | None = None,
    located: bool = True,
) -> Json:
    details: Json = {"text": text}
    if tx_code:
        details = {"coding": [{"system": TX_ISSUE_TYPE, "code": tx_code}], "text": text}
    issue: Json = {"severity": severity, "code": code, "details": details}
    if location:
        if located and tx_code not in EXPRESSION_ONLY:
            issue["location"] = [location]
        issue["expression"] = [location]
    return issue


def join_versions(versions: list[str]) -> str:
    """`1.0.0 or 1.2.0`, `a, b or c`."""
    if len(versions) <= 1:
        return "".join(versions)
    return ", ".join(versions[:-1]) + " or " + versions[-1]


class TxError(FhirError):
    """A terminology error answered as an OperationOutcome of tx issues."""

    status = 400
    code = "invalid"
    tx_code: str | None = "invalid-data"

    def __init__(
        self,
        text: str,
        *,
        location: str | None = None,
        status: int | None = None,
        code: str | None = None,
        tx_code: str | None = None,
    ) -> None:
        super().__init__(text, (location,) if location else ())
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if tx_code is not None:
            self.tx_code = tx_code
        self.location = location

    def outcome(self) -> Json:
        return {
            "resourceType": "OperationOutcome",
            "issue": [tx_issue("error", self.code, self.tx_code, self.diagnostics, self.location)],
        }


def not_found(text: str, location: str | None = None) -> TxError:
    return TxError(text, location=location, status=404, code="not-found", tx_code="not-found")
