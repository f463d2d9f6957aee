"""Local codes: a facility's own lab and diagnosis codes, mapped to the national ones.

A facility uploads a ConceptMap from its local code system (`group.source`) to the national
lab catalogue, LOINC or ICD-10 (`group.target`). When an Observation, ServiceRequest,
DiagnosticReport or Condition arrives whose `code` carries a local coding, vnehr adds the
national codings the stored maps give (and, through the national catalogue's own map, its
LOINC code) next to the local one: nothing the sender sent is removed or changed.

A local coding whose `code` has no national coding after that is *unmapped*: the commit
hook records it in `tx_unmapped` (system, code, display, the sending facility, how often and
when), the list the Ministry reads with `GET /$unmapped-codes` or `vnehr terminology
unmapped`. A code that gets a map later drops out of the list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from vnehr.fhir.instant import now_micros
from vnehr.storage.base import StoredVersion, WriteTransaction
from vnehr.terminology.code_systems import Rows
from vnehr.terminology.model import Json
from vnehr.terminology.systems import CATALOGUE_URL, ICD10, LOINC, SNOMED

# Codings of these systems are national or international codes, never local ones.
NATIONAL_PREFIXES = (
    LOINC,
    ICD10,
    SNOMED,
    "http://hl7.org/fhir/",
    "http://terminology.hl7.org/",
    "http://unitsofmeasure.org",
    "http://fhir.ehealth.gov.vn/",
    "https://fhir.moh.gov.vn/",
)
CODED = {
    "Observation": "code",
    "ServiceRequest": "code",
    "DiagnosticReport": "code",
    "Condition": "code",
}
MAX_HOPS = 2  # local -> national catalogue -> LOINC
_SYSTEMS = re.compile(rb'"system"\s*:\s*"([^"]*)"')


def is_national(system: str, national: Sequence[str] = ()) -> bool:
    return system.startswith(NATIONAL_PREFIXES) or system in national


def _local_codings(resource: Json, national: Sequence[str]) -> list[Json] | None:
    element = CODED.get(str(resource.get("resourceType")))
    concept = resource.get(element) if element else None
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return None
    return [
        c
        for c in concept["coding"]
        if isinstance(c, dict)
        and isinstance(c.get("system"), str)
        and isinstance(c.get("code"), str)
        and not is_national(c["system"], national)
    ]


def add_national_codings(rows: Rows, resource: Json, national: Sequence[str] = ()) -> int:
    """Add to `resource` (in place) the national codings its local codes map to: how many."""
    local = _local_codings(resource, national)
    if not local:
        return 0
    element = CODED[resource["resourceType"]]
    codings: list[Any] = resource[element]["coding"]
    have = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
    added = 0
    frontier = [(c["system"], c["code"]) for c in local]
    for _ in range(MAX_HOPS):
        found: list[tuple[str, str]] = []
        for system, code in frontier:
            for tsystem, tcode, tdisplay in rows(
                "SELECT target_system, target_code, target_display FROM tx_map_elements "
                "WHERE source_system = ? AND source_code = ? AND target_code IS NOT NULL "
                "AND equivalence IN ('equivalent', 'equal', 'relatedto', 'wider', 'subsumes') "
                "ORDER BY mid",
                [system, code],
            ):
                if (tsystem, tcode) in have or not is_national(tsystem, national):
                    continue
                coding = {"system": tsystem, "code": tcode}
                if tdisplay:
                    coding["display"] = tdisplay
                codings.append(coding)
                have.add((tsystem, tcode))
                found.append((tsystem, tcode))
                added += 1
        frontier = found
        if not frontier:
            break
    return added


def facility_of(resource: Json) -> str | None:
    """Who sent it: `meta.source`, else the first Organization it names as performer."""
    meta = resource.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("source"), str):
        return str(meta["source"])
    for key in ("performer", "requester", "recorder", "asserter"):
        refs = resource.get(key)
        for ref in refs if isinstance(refs, list) else [refs]:
            if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("Organization/"):
                return str(ref["reference"])
    return None


class UnmappedCodes:
    """A commit hook recording local codes that reached the store without a national code."""

    types = frozenset(CODED)

    def __init__(self, national: Sequence[str] = (CATALOGUE_URL,)) -> None:
        self.national = tuple(national)
        self._known = tuple(s.encode() for s in (*NATIONAL_PREFIXES, *self.national))

    def _may_have_local(self, content: bytes | None) -> bool:
        """Whether the JSON names any code system that is not a national one (a cheap look
        at the text, so that most writes are not parsed again)."""
        if not content:
            return False
        return any(not system.startswith(self._known) for system in _SYSTEMS.findall(content))

    def before_commit(self, txn: WriteTransaction, changed: list[StoredVersion]) -> None:
        now = now_micros()
        for stored in changed:
            if stored.deleted or not self._may_have_local(stored.content):
                continue
            resource = stored.resource()
            local = _local_codings(resource, self.national)
            if not local:
                continue
            codings = resource[CODED[resource["resourceType"]]]["coding"]
            if any(
                isinstance(c, dict) and is_national(str(c.get("system", "")), self.national)
                for c in codings
            ):
                continue
            facility = facility_of(resource)
            for coding in local:
                txn.run(
                    "INSERT INTO tx_unmapped (system, code, display, facility, resource_type, "
                    "first_seen, last_seen, seen) VALUES (?, ?, ?, ?, ?, ?, ?, 1) "
                    "ON CONFLICT (system, code) DO UPDATE SET last_seen = excluded.last_seen, "
                    "seen = tx_unmapped.seen + 1",
                    [
                        coding["system"],
                        coding["code"],
                        coding.get("display"),
                        facility,
                        resource["resourceType"],
                        now,
                        now,
                    ],
                )


def unmapped(rows: Rows, facility: str | None = None, system: str | None = None) -> list[Json]:
    """The local codes still without a map, most seen first."""
    where = [
        "NOT EXISTS (SELECT 1 FROM tx_map_elements e WHERE e.source_system = u.system "
        "AND e.source_code = u.code AND e.target_code IS NOT NULL)"
    ]
    args: list[Any] = []
    if facility:
        where.append("u.facility = ?")
        args.append(facility)
    if system:
        where.append("u.system = ?")
        args.append(system)
    found = rows(
        "SELECT u.system, u.code, u.display, u.facility, u.resource_type, u.first_seen, "
        f"u.last_seen, u.seen FROM tx_unmapped u WHERE {' AND '.join(where)} "
        "ORDER BY u.seen DESC, u.system, u.code LIMIT 10000",
        args,
    )
    keys = (
        "system",
        "code",
        "display",
        "facility",
        "resourceType",
        "firstSeen",
        "lastSeen",
        "seen",
    )
    return [dict(zip(keys, row, strict=True)) for row in found]
