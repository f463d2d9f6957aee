"""What every written resource is checked against: the R4 structure (fhir/validation) and,
for people, the national identifier rules (identity/identifiers.py: CCCD, CMND, BHYT, ...)."""

from __future__ import annotations

from typing import Any

from vnehr.errors import Issue
from vnehr.fhir.validation import validate
from vnehr.identity.identifiers import check_patient_identifiers, outcome_issues

# Resources that carry a person's national identifiers.
PEOPLE = frozenset({"Patient", "Person", "RelatedPerson", "Practitioner"})


def check(resource: dict[str, Any]) -> list[Issue]:
    issues = list(validate(resource))
    if resource.get("resourceType") in PEOPLE:
        issues += outcome_issues(check_patient_identifiers(resource))
    return issues
