"""The caller's access policy as a search condition (ir.Access), AND-ed into every query
that reads patient data: searches, reads, includes, chains, `_has`, conditional criteria,
`$everything` (docs/access.md)."""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import TYPE_CHECKING

from vnehr.auth.tokens import Principal
from vnehr.errors import Forbidden
from vnehr.fhir.instant import now_micros
from vnehr.identity.identifiers import CCCD
from vnehr.policy import rules
from vnehr.policy.persons import person_patients
from vnehr.policy.roles import practitioner_of, role_of
from vnehr.search import ir
from vnehr.search.query import patient_data

if TYPE_CHECKING:
    from vnehr.interactions.context import Context


@cache
def clinical_types() -> frozenset[str]:
    """Patient data: the Patient and the types of its compartment. Everything else
    (facilities, practitioners, medications, terminology) is shared reference data."""
    return frozenset({"Patient", *patient_data()})


def policed(principal: Principal | None, res_type: str) -> bool:
    """Whether the policy limits what `principal` sees of `res_type` ("*": every type)."""
    if principal is None or role_of(principal) == "national":
        return False
    return res_type == "*" or res_type in clinical_types()


def operator_party(principal: Principal) -> str:
    return f"operator/{principal.subject}"


def parties_of(principal: Principal) -> tuple[str, ...]:
    """The names rules give the caller: its facility, the clinician, an operator."""
    out = []
    if principal.facility:
        out.append(f"Organization/{principal.facility}")
    practitioner = practitioner_of(principal)
    if practitioner:
        out.append(practitioner)
    if not out:
        out.append(operator_party(principal))
    return tuple(out)


def condition(ctx: Context, principal: Principal, res_types: tuple[str, ...]) -> ir.Node | None:
    """What `principal` may see of `res_types` (None: all of it)."""
    types = tuple(sorted(clinical_types())) if "*" in res_types else res_types
    types = tuple(t for t in types if policed(principal, t))
    if not types:
        return None
    role = role_of(principal)
    now = now_micros()
    settings = ctx.settings
    if role == "public-health":
        raise Forbidden("Public health and analytics callers may count (_summary=count) only")
    if role == "citizen":
        return ir.Access(types, None, (), (), citizen_patients(ctx, principal, now), (), now)
    sensitive = settings.sensitive_labels
    if role == "registry":
        return ir.Access(types, None, parties_of(principal), (rules.BREAK_GLASS,), (), (), now)
    effects: tuple[str, ...] = (rules.REFERRAL, rules.PERMIT, rules.BREAK_GLASS)
    if settings.access_sharing == "opt-out":
        effects = (rules.CARE, *effects)
    owner = (rules.OWNER_SYSTEM, principal.facility) if principal.facility else None
    return ir.Access(types, owner, parties_of(principal), effects, (), sensitive, now)


_CACHE_SECONDS = 2.0
_cache: dict[tuple[str, str], tuple[float, tuple[str, ...]]] = {}
_cache_lock = threading.Lock()


def citizen_patients(ctx: Context, principal: Principal, now: int) -> tuple[str, ...]:
    """The Patients a citizen may see: every Patient of their own person, and of the
    people whose guardian they are (RelatedPerson rules naming their CCCD); cached for a
    couple of seconds per citizen, so a page of requests costs one look-up."""
    own = principal.patient or (principal.fhir_user or "").removeprefix("Patient/")
    if not own:
        return ()
    key = (principal.subject, own)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < _CACHE_SECONDS:
        return hit[1]
    patients = person_patients(ctx.store, [own])
    cccds = _cccds(ctx, sorted(patients))
    if cccds:
        marks = ", ".join("?" for _ in cccds)
        wards = ctx.store.rows(
            f"SELECT patient_id FROM access_rules WHERE party IN ({marks}) AND effect = ? "
            "AND start <= ? AND until > ?",
            [*(f"cccd/{c}" for c in cccds), rules.GUARDIAN, now, now],
        )
        patients |= person_patients(ctx.store, [str(w[0]) for w in wards])
    found = tuple(sorted(patients))
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (time.monotonic(), found)
    return found


def _cccds(ctx: Context, patient_ids: list[str]) -> list[str]:
    out: set[str] = set()
    for patient_id in patient_ids:
        try:
            resource = ctx.store.read("Patient", patient_id).resource()
        except Exception:  # deleted or gone: no identifiers to act on
            continue
        for identifier in resource.get("identifier") or []:
            if isinstance(identifier, dict) and identifier.get("system") == CCCD:
                value = identifier.get("value")
                if isinstance(value, str) and value:
                    out.add(value)
    return sorted(out)
