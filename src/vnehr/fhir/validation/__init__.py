"""Structural validation of FHIR R4 resources against the base specification.

https://hl7.org/fhir/R4/validation.html. `validate(resource)` returns every issue found
(errors and warnings) and never raises for bad input; what is and is not checked is listed in
docs/validation.md.
"""

from __future__ import annotations

from typing import Any

from vnehr.errors import Issue
from vnehr.fhir.validation.walk import walk_resource

__all__ = ["has_errors", "validate"]


def validate(resource: Any) -> list[Issue]:
    """Every problem found in `resource` (a parsed JSON value), with its location."""
    out: list[Issue] = []
    try:
        walk_resource(resource, "", out)
    except RecursionError:
        out.append(Issue("error", "too-costly", "The resource is nested too deeply"))
    except Exception as exc:  # a validator bug must not become a server error
        out.append(Issue("error", "exception", f"The validator failed: {exc!r}"))
    return out


def has_errors(issues: list[Issue]) -> bool:
    """Whether any issue is an error or fatal (warnings alone do not reject a resource)."""
    return any(i.severity in ("error", "fatal") for i in issues)
