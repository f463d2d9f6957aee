"""Break-the-glass: a clinician opens a record outside the policy in an emergency.

`POST Patient/{id}/$break-glass` with a reason (purpose of use ETREAT) writes a rule that
lets the clinician (or, for a hospital system, its facility) read the person's whole
record for `access_break_glass_minutes`; every access in that time is flagged in the audit
trail, and the citizen is told through the outbox.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import TYPE_CHECKING, Any

from vnehr.auth.outbox import Outbox
from vnehr.auth.tokens import Principal
from vnehr.errors import Forbidden, InvalidRequest, NotFound
from vnehr.fhir.ids import new_id
from vnehr.fhir.instant import format_instant, now_micros
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.operations.parameters import OperationInput
from vnehr.operations.registry import Operation
from vnehr.policy.persons import Rows
from vnehr.policy.roles import practitioner_of, role_of
from vnehr.search.query import Unknown, build_query

if TYPE_CHECKING:
    from vnehr.interactions.context import Context

log = logging.getLogger("vnehr.security")

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


def break_glass(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    """`POST Patient/{id}/$break-glass` (or `Patient/$break-glass` with `identifier`):
    `reason` (required), `purpose` (default ETREAT)."""
    principal = request.principal
    inp = OperationInput(request)
    reason = (inp.text("reason") or "").strip()
    purpose = (inp.text("purpose") or "ETREAT").strip()
    if len(reason) < 10:
        raise InvalidRequest(
            "Breaking the glass needs a reason (at least 10 characters): it is shown to the "
            "patient and to auditors",
            ("Parameters.parameter.where(name='reason')",),
        )
    if purpose not in PURPOSES:
        raise InvalidRequest(
            f"purpose must be one of {', '.join(sorted(PURPOSES))}",
            ("Parameters.parameter.where(name='purpose')",),
        )
    patient_id = res_id or _by_identifier(ctx, inp.text("identifier"))
    if principal is None:
        raise Forbidden("Breaking the glass needs a clinician's access token")
    party = party_of(principal)
    if role_of(principal) not in ("clinical", "registry") or party is None:
        raise Forbidden("Only clinicians, hospital systems and operators can break the glass")
    patient = ctx.store.read("Patient", patient_id).resource()  # 404 / 410 as a read
    now = now_micros()
    until = now + ctx.settings.access_break_glass_minutes * 60_000_000
    who = principal.fhir_user or principal.client_id
    facility = f" ({principal.facility})" if principal.facility else ""
    with ctx.store.transaction() as txn:
        txn.run(
            "INSERT INTO access_rules (source, patient_id, party, effect, label, start, "
            "until, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                f"break-glass/{new_id()}",
                patient_id,
                party,
                EFFECT,
                "",
                now,
                until,
                f"{purpose}: {reason}",
            ],
        )
        phone = _phone(patient)
        if phone:
            Outbox(ctx.store).add_in(
                txn,
                "sms",
                phone,
                f"vnehr: {who}{facility} da mo ho so suc khoe cua ban trong truong hop khan "
                f"cap luc {format_instant(now)[:16]}. Ly do: {unaccented(reason)[:80]}. "
                "Xem nhat ky truy cap tren cong thong tin.",
            )
    log.warning(
        "BREAK-THE-GLASS %s%s opened Patient/%s until %s: %s",
        who,
        facility,
        patient_id,
        format_instant(until),
        reason,
    )
    return FhirResponse(
        200,
        resource={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "patient", "valueReference": {"reference": f"Patient/{patient_id}"}},
                {"name": "until", "valueInstant": format_instant(until)},
                {"name": "purpose", "valueCode": purpose},
                {"name": "notified", "valueBoolean": bool(phone)},
            ],
        },
    )


def unaccented(text: str) -> str:
    """`text` without diacritics (đ -> d), case kept: SMS texts stay in the 7-bit alphabet,
    160 characters a part."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


PURPOSES = frozenset({"ETREAT", "BTG", "ERTREAT"})


def _by_identifier(ctx: Context, text: str | None) -> str:
    if not text or "|" not in text:
        raise InvalidRequest(
            "Give the Patient (Patient/{id}/$break-glass) or identifier=system|value",
            ("Parameters.parameter.where(name='identifier')",),
        )
    query = build_query(ctx.registry, ("Patient",), [("identifier", text)], Unknown(strict=True))
    found = ctx.store.search_ids(query, 2)
    if len(found) != 1:
        raise NotFound(f"No single Patient has the identifier {text}")
    return found[0]


def _phone(patient: dict[str, Any]) -> str | None:
    for telecom in patient.get("telecom") or []:
        if isinstance(telecom, dict) and telecom.get("system") in ("phone", "sms"):
            value = telecom.get("value")
            if isinstance(value, str) and value.strip():
                return value.replace(" ", "")
    return None


OPERATION = Operation(
    code="break-glass",
    definition="https://vnehr.org/fhir/OperationDefinition/break-glass",
    system=False,
    type=True,
    instance=True,
    resource_types=("Patient",),
    affects_state=False,
    methods=("POST",),
    handler=break_glass,
    documentation="Emergency access to a person's whole record outside the policy, for "
    "access_break_glass_minutes: reason (required), purpose (ETREAT); flagged in the audit "
    "trail, the patient told by SMS (docs/access.md)",
    scope_type="Patient",
)
