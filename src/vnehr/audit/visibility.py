"""Who may read which audit records (docs/audit.md).

| role (vnehr.policy.roles) | reads |
| --- | --- |
| no principal (development mode, the CLI) | every record |
| `citizen` | the records about their own person's Patients and their wards' (guardians) |
| `clinical` | the records of its own facility's accesses |
| `national`; `registry` with the `vnehr/admin` scope (operators) | every record |
| anyone else (`public-health`, `registry` without `vnehr/admin`) | nothing: 403 |

On top of the role, the token needs a SMART scope that allows reading or searching
AuditEvent (`patient/*.rs`, `user/AuditEvent.rs`, `system/*.rs`, ...), checked by
vnehr.auth.access like any other type; a `patient/` scope narrows a clinician to the launch
patient's person, and a scope with a query on AuditEvent is refused rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vnehr.auth import access
from vnehr.auth.scopes import ADMIN
from vnehr.auth.tokens import Principal
from vnehr.errors import Forbidden
from vnehr.fhir.instant import now_micros
from vnehr.policy.conditions import citizen_patients
from vnehr.policy.persons import person_patients
from vnehr.policy.roles import role_of

if TYPE_CHECKING:
    from vnehr.interactions.context import Context


@dataclass(frozen=True, slots=True)
class Visible:
    """The records a caller may read: all of them, or those matching every limit set."""

    everything: bool = False
    patients: frozenset[str] | None = None  # only records about these Patients
    facility: str | None = None  # only records of accesses by this facility
    # Citizens do not see the raw queries of others' searches: a query may name other people.
    redact_queries: bool = False


EVERYTHING = Visible(everything=True)


def visible_to(ctx: Context, principal: Principal | None, permission: str) -> Visible:
    """What `principal` may read with `permission` (r: by id, s: search), or Forbidden."""
    if principal is None:
        return EVERYTHING
    found = access.require(principal, "AuditEvent", permission)
    if found.query:
        raise Forbidden("A scope with a query on AuditEvent cannot be applied to the audit trail")
    role = role_of(principal)
    if role == "citizen":
        # The same Patients as their clinical data: their own person's and their wards'.
        patients = frozenset(citizen_patients(ctx, principal, now_micros()))
        seen = Visible(patients=patients, redact_queries=True)
    elif role == "clinical" and principal.facility:
        seen = Visible(facility=principal.facility)
    elif role == "national" or (role == "registry" and ADMIN in principal.scopes.plain):
        seen = EVERYTHING
    else:
        raise Forbidden(f"The audit trail is not open to the role {role!r}")
    if found.compartment is not None and found.compartment[0] == "Patient":
        launch = frozenset(person_patients(ctx.store, [found.compartment[1]]))
        patients = launch if seen.patients is None else seen.patients & launch
        seen = Visible(False, patients, seen.facility, seen.redact_queries)
    return seen
