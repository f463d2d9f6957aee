"""The role a caller acts in, read from its access token (vnehr.auth.tokens.Principal).

- `clinical`: a hospital system (backend client) or a clinician of a facility: its
  facility's own data; patients in its care, referred to it or shared with it by consent.
- `citizen`: a citizen signed in (fhirUser `Patient/...`): their own record (every linked
  Patient of their person) and their wards'.
- `national`: a national service (`vnehr/national` scope, granted by an operator): every
  record.
- `public-health`: public health and analytics (`vnehr/public-health`): counts only.
- `registry`: an operator, or a backend client without facility: registries (facilities,
  practitioners, terminology); patient data only through break-the-glass.

No principal (development mode, the CLI) is not limited.
"""

from __future__ import annotations

from typing import Literal

from vnehr.auth.scopes import NATIONAL, PUBLIC_HEALTH
from vnehr.auth.tokens import Principal

Role = Literal["clinical", "citizen", "national", "public-health", "registry"]


def role_of(principal: Principal) -> Role:
    plain = principal.scopes.plain
    if PUBLIC_HEALTH in plain:
        return "public-health"
    if principal.kind == "user" and (principal.fhir_user or "").startswith("Patient/"):
        return "citizen"
    if NATIONAL in plain and principal.kind == "system" and not principal.facility:
        return "national"
    if principal.facility:
        return "clinical"
    return "registry"


def practitioner_of(principal: Principal) -> str | None:
    """`Practitioner/id` of a clinician signed in, or None."""
    user = principal.fhir_user or ""
    return user if user.startswith("Practitioner/") else None
