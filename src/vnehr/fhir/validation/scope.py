"""Where the walker is: the resource being validated and its local references."""

from __future__ import annotations

from typing import Any

from vnehr.errors import Issue
from vnehr.fhir.validation.fhirpath_compile import Env


class Scope(Env):
    """The resource being walked, and what its local (`#id`) references need to resolve.

    It is also the environment of the invariants evaluated in it (%resource, %rootResource).
    A contained resource gets its own scope (for %resource) but records its references in the
    container's list (`refs` is shared), because `#id` always names a resource contained in the
    container.
    """

    __slots__ = ("origin", "refs")

    def __init__(self, resource: dict[str, Any], parent: Scope | None, origin: int) -> None:
        self.resource = resource
        self.context = []
        self.origin = origin  # index in the container's `contained`, -1 for the container
        if parent is None:
            self.root = resource
            # (reference, location, origin, is a Reference.reference) of every `#...` value
            self.refs: list[tuple[str, str, int, bool]] = []
        else:
            self.root = parent.root
            self.refs = parent.refs

    @property
    def env(self) -> Env:
        return self

    def local_ref(self, value: str, loc: str, is_reference: bool) -> None:
        self.refs.append((value, loc, self.origin, is_reference))


def error(out: list[Issue], code: str, message: str, loc: str) -> None:
    """Append an error issue at `loc`."""
    out.append(Issue("error", code, message, (loc,)))


def warning(out: list[Issue], code: str, message: str, loc: str) -> None:
    """Append a warning issue at `loc`."""
    out.append(Issue("warning", code, message, (loc,)))
