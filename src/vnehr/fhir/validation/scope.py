"""Where the walker is: the resource being validated and its local references."""

from __future__ import annotations

from typing import Any

from vnehr.errors import Issue
from vnehr.fhir.validation.fhirpath_compile import Env


class Scope:
    """The resource being walked, and what its local (`#id`) references need to resolve.

    A contained resource gets its own scope (for %resource) but records its references in the
    container's (`top`), because `#id` always names a resource contained in the container.
    """

    __slots__ = ("env", "origin", "refs", "top")

    def __init__(self, resource: dict[str, Any], parent: Scope | None, origin: int) -> None:
        self.top: Scope = parent.top if parent is not None else self
        self.origin = origin  # index in the container's `contained`, -1 for the container
        root = parent.top.env.resource if parent is not None else resource
        self.env: Env = Env(resource, root)
        # (reference, location, origin, is a Reference.reference) of every `#...` value
        self.refs: list[tuple[str, str, int, bool]] = []

    def local_ref(self, value: str, loc: str, is_reference: bool) -> None:
        self.top.refs.append((value, loc, self.origin, is_reference))


def error(out: list[Issue], code: str, message: str, loc: str) -> None:
    """Append an error issue at `loc`."""
    out.append(Issue("error", code, message, (loc,)))


def warning(out: list[Issue], code: str, message: str, loc: str) -> None:
    """Append a warning issue at `loc`."""
    out.append(Issue("warning", code, message, (loc,)))
