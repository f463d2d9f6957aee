"""Break-the-glass: a clinician opens a record outside the policy in an emergency.

`POST Patient/{id}/$break-glass` with a reason (purpose of use ETREAT) writes a rule that
lets the clinician (or, for a hospital system, its facility) read the person's whole
record for `access_break_glass_minutes`; every access in that time is flagged in the audit
trail, and the citizen is told through the outbox.
"""

from __future__ import annotations

from vnehr.auth.tokens import Principal
from vnehr.policy.persons import Rows
from vnehr.policy.roles import practitioner_of

EFFECT = "break-glass"


def party_of(principal: Principal) -> str | None:
    """Who a break-the-glass rule of this caller names: the clinician, or for a hospital
    system its facility."""
    return practitioner_of(principal) or (
        f"Organization/{principal.facility}" if principal.facility else None
    )


def active_for(source: Rows, principal: Principal, now: int) -> dict[str, int]:
    """Patient ids the caller has broken the glass for, with when each access ends (epoch
    microseconds)."""
    party = party_of(principal)
    if party is None:
        return {}
    rows = source.rows(
        "SELECT patient_id, MAX(until) FROM access_rules WHERE party = ? AND effect = ? "
        "AND until > ? GROUP BY patient_id",
        [party, EFFECT, now],
    )
    return {str(r[0]): int(r[1]) for r in rows}
