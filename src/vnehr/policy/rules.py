"""Access rules derived from resources as they are written (a commit hook of the store: in
the writing transaction, so a rule never exists without the resource that makes it, and
a failed transaction leaves none behind).

- Encounter (not cancelled or entered-in-error): `care` for its `serviceProvider` (else
  the owner facility), from the period's start until its end (or start) + the care window.
- Appointment (not cancelled, noshow, entered-in-error): `care` for the owner facility,
  around `start`.
- EpisodeOfCare: `care` for `managingOrganization`, while open and a care window after.
- ServiceRequest (active, on-hold, completed) with an Organization or Practitioner as
  performer (a referral): `referral` for each, from `authoredOn` + the care window.
- Consent (active): its provisions, nested ones too: `permit` or `deny` for each actor
  (none: everyone, `*`), per security label (none: the whole record), over
  `provision.period`.
- RelatedPerson (active, a guardian or a parent, identified by CCCD): `guardian` for
  `cccd/<number>`; a parent's ends when the child comes of age.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from vnehr.identity.identifiers import CCCD
from vnehr.search.extract.date import date_range
from vnehr.settings import Settings
from vnehr.storage.base import StoredVersion, WriteTransaction

CARE = "care"
REFERRAL = "referral"
PERMIT = "permit"
DENY = "deny"
GUARDIAN = "guardian"
BREAK_GLASS = "break-glass"
FOREVER = 253_402_300_799_000_000  # 9999-12-31, epoch microseconds
_DAY = 86_400_000_000
OWNER_SYSTEM = "https://vnehr.org/fhir/CodeSystem/owner-facility"
GUARDIAN_CODES = frozenset({"GUARD", "POWATT", "DPOWATT", "HPOWATT", "SPOWATT"})
PARENT_CODES = frozenset(
    {"PRN", "MTH", "FTH", "NPRN", "NMTH", "NFTH", "ADOPTP", "ADOPTM", "ADOPTF", "STPPRN"}
)
Rule = tuple[str, str, str, str, int, int, str | None]  # patient, party, effect, label, ...


def reference_id(value: Any, res_type: str) -> str | None:
    """The id of a `{"reference": "Type/id"}` (relative or absolute) of `res_type`."""
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    if not isinstance(ref, str):
        return None
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == res_type and parts[-1]:
        return parts[-1]
    return None


def owner_of(resource: dict[str, Any]) -> str | None:
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if isinstance(tag, dict) and tag.get("system") == OWNER_SYSTEM:
            code = tag.get("code")
            return code if isinstance(code, str) else None
    return None


def _instant(value: Any, high: bool = False) -> int | None:
    if not isinstance(value, str):
        return None
    found = date_range(value)
    if found is None:
        return None
    return found[1] if high else found[0]


def _period(period: Any) -> tuple[int | None, int | None]:
    if not isinstance(period, dict):
        return None, None
    return _instant(period.get("start")), _instant(period.get("end"), high=True)


_INSERT = (
    "INSERT INTO access_rules (source, patient_id, party, effect, label, start, until, "
    "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class AccessRules:
    """The commit hook: rewrites the rules of every resource of `types` written."""

    types = frozenset(
        {"Encounter", "Appointment", "EpisodeOfCare", "ServiceRequest", "Consent", "RelatedPerson"}
    )

    def __init__(self, settings: Settings) -> None:
        self.window = settings.access_care_window_days * _DAY
        self.guardian_age = settings.access_guardian_age

    def before_commit(self, txn: WriteTransaction, changed: list[StoredVersion]) -> None:
        latest = {(s.res_type, s.res_id): s for s in changed}
        # A first version (a create) has no rules yet; the others' are replaced. One DELETE
        # and one INSERT for the whole transaction: this runs on every clinical write.
        stale = [f"{t}/{i}" for (t, i), s in latest.items() if s.version > 1]
        for start in range(0, len(stale), 500):
            chunk = stale[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            txn.run(f"DELETE FROM access_rules WHERE source IN ({marks})", chunk)
        rows = [
            (f"{t}/{i}", *rule)
            for (t, i), s in latest.items()
            if not s.deleted
            for rule in self.rules_of(txn, s.resource())
        ]
        if rows:
            txn.run_many(_INSERT, rows)

    def write(
        self, txn: WriteTransaction, res_type: str, res_id: str, resource: dict[str, Any] | None
    ) -> None:
        source = f"{res_type}/{res_id}"
        txn.run("DELETE FROM access_rules WHERE source = ?", [source])
        if resource is None:
            return
        found = list(self.rules_of(txn, resource))
        if found:
            txn.run_many(_INSERT, [(source, *rule) for rule in found])

    def rules_of(self, txn: WriteTransaction, resource: dict[str, Any]) -> Iterator[Rule]:
        kind = resource.get("resourceType")
        status = resource.get("status")
        updated = _instant((resource.get("meta") or {}).get("lastUpdated")) or 0
        if kind == "Encounter":
            if status in ("cancelled", "entered-in-error"):
                return
            patient = reference_id(resource.get("subject"), "Patient")
            party = reference_id(resource.get("serviceProvider"), "Organization") or owner_of(
                resource
            )
            start, end = _period(resource.get("period"))
            start = start if start is not None else updated
            if patient and party:
                until = max(end or start, start) + self.window
                yield patient, f"Organization/{party}", CARE, "", start - _DAY, until, None
        elif kind == "EpisodeOfCare":
            if status in ("cancelled", "entered-in-error"):
                return
            patient = reference_id(resource.get("patient"), "Patient")
            party = reference_id(resource.get("managingOrganization"), "Organization")
            start, end = _period(resource.get("period"))
            start = start if start is not None else updated
            if patient and party:
                until = FOREVER if end is None else end + self.window
                yield patient, f"Organization/{party}", CARE, "", start - _DAY, until, None
        elif kind == "Appointment":
            if status in ("cancelled", "noshow", "entered-in-error"):
                return
            owner = owner_of(resource)
            at = _instant(resource.get("start")) or updated
            for participant in resource.get("participant") or []:
                if not isinstance(participant, dict):
                    continue
                patient = reference_id(participant.get("actor"), "Patient")
                if patient and owner:
                    until = max(_instant(resource.get("end"), True) or at, at) + self.window
                    yield patient, f"Organization/{owner}", CARE, "", updated - _DAY, until, None
        elif kind == "ServiceRequest":
            if status not in ("active", "completed", "on-hold"):
                return
            patient = reference_id(resource.get("subject"), "Patient")
            at = _instant(resource.get("authoredOn")) or updated
            if not patient:
                return
            for performer in resource.get("performer") or []:
                for res_type in ("Organization", "Practitioner"):
                    target = reference_id(performer, res_type)
                    if target:
                        party = f"{res_type}/{target}"
                        yield patient, party, REFERRAL, "", at - _DAY, at + self.window, None
        elif kind == "Consent":
            yield from self._consent(resource, updated)
        elif kind == "RelatedPerson":
            yield from self._guardian(txn, resource, updated)

    def _consent(self, resource: dict[str, Any], updated: int) -> Iterator[Rule]:
        if resource.get("status") != "active":
            return
        patient = reference_id(resource.get("patient"), "Patient")
        provision = resource.get("provision")
        if not patient or not isinstance(provision, dict):
            return
        stack: list[tuple[dict[str, Any], str | None, int, int]] = [
            (provision, None, _instant(resource.get("dateTime")) or updated, FOREVER)
        ]
        while stack:
            item, inherited, start, until = stack.pop()
            effect = item.get("type") or inherited
            low, high = _period(item.get("period"))
            start = low if low is not None else start
            until = high if high is not None else until
            if effect in (PERMIT, DENY):
                yield from self._provision(patient, item, str(effect), start, until, resource)
            for nested in item.get("provision") or []:
                if isinstance(nested, dict):
                    stack.append((nested, None, start, until))

    def _provision(
        self,
        patient: str,
        item: dict[str, Any],
        effect: str,
        start: int,
        until: int,
        resource: dict[str, Any],
    ) -> Iterator[Rule]:
        actors = [a for a in item.get("actor") or [] if isinstance(a, dict)]
        parties = [party for actor in actors for party in _parties(actor.get("reference"))]
        if actors and not parties:
            return  # actors vnehr cannot name (a RelatedPerson, a group): no rule
        labels = [
            str(label["code"])
            for label in item.get("securityLabel") or []
            if isinstance(label, dict) and isinstance(label.get("code"), str)
        ] or [""]
        reason = _text(resource)
        for party in parties or ["*"]:
            for label in labels:
                yield patient, party, effect, label, start, until, reason

    def _guardian(
        self, txn: WriteTransaction, resource: dict[str, Any], updated: int
    ) -> Iterator[Rule]:
        if resource.get("active") is False:
            return
        patient = reference_id(resource.get("patient"), "Patient")
        codes = {
            coding.get("code")
            for concept in resource.get("relationship") or []
            if isinstance(concept, dict)
            for coding in concept.get("coding") or []
            if isinstance(coding, dict)
        }
        cccds = [
            i["value"]
            for i in resource.get("identifier") or []
            if isinstance(i, dict) and i.get("system") == CCCD and isinstance(i.get("value"), str)
        ]
        if not patient or not cccds:
            return
        start, end = _period(resource.get("period"))
        start = start if start is not None else updated - _DAY
        until = end if end is not None else FOREVER
        if codes & GUARDIAN_CODES:
            pass
        elif codes & PARENT_CODES:
            of_age = self._of_age(txn, patient)
            if of_age is None:
                return  # no birth date: a parent's access cannot be bounded, so none
            until = min(until, of_age)
        else:
            return
        for cccd in cccds:
            yield patient, f"cccd/{cccd}", GUARDIAN, "", start, until, None

    def _of_age(self, txn: WriteTransaction, patient: str) -> int | None:
        try:
            birth = txn.read("Patient", patient).resource().get("birthDate")
        except Exception:  # unknown or deleted Patient: no rule
            return None
        if not isinstance(birth, str) or len(birth) < 4:
            return None
        try:
            year = int(birth[:4])
            month = int(birth[5:7]) if len(birth) >= 7 else 1
            day = int(birth[8:10]) if len(birth) >= 10 else 1
            day = min(day, 28) if month == 2 else day
            at = dt.datetime(year + self.guardian_age, month, day, tzinfo=dt.UTC)
        except ValueError:
            return None
        return int(at.timestamp() * 1_000_000)


def _parties(reference: Any) -> list[str]:
    """`Organization/x` or `Practitioner/x` of a Consent actor's reference (a Reference)."""
    if isinstance(reference, dict):
        reference = reference.get("reference")
    if not isinstance(reference, str):
        return []
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] in ("Organization", "Practitioner"):
        return [f"{parts[-2]}/{parts[-1]}"]
    return []


def _text(resource: dict[str, Any]) -> str | None:
    for concept in resource.get("category") or []:
        if isinstance(concept, dict) and isinstance(concept.get("text"), str):
            return str(concept["text"])
    return None
