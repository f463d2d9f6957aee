"""FhirRequest and FhirResponse: a REST interaction without HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vnehr.auth.tokens import Principal


@dataclass(slots=True)
class FhirRequest:
    method: str  # GET | POST | PUT | PATCH | DELETE | HEAD
    path: str  # relative to the FHIR base, no leading slash: "Patient/1/_history/2"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes | None = None
    resource: dict[str, Any] | None = None  # an already parsed body (bundle entries)
    base_url: str = ""
    # Who is calling (an access token's claims); None in development mode and for trusted
    # local callers (the CLI, loading), which may do everything.
    principal: Principal | None = None
    # The caller's network address (the HTTP layer's peer), for the audit trail.
    address: str | None = None
    # The answer may embed stored resources as they are stored (fhir.json.stored: not
    # parsed, written out unchanged): set by the HTTP layer, whose serialiser does that.
    stored_json: bool = False

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class FhirResponse:
    status: int
    resource: dict[str, Any] | None = None
    body: bytes | None = None  # pre-serialised JSON (a stored version), used when resource is None
    headers: dict[str, str] = field(default_factory=dict)
