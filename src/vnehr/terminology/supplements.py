"""Code system supplements (CodeSystem.content `supplement`): designations and properties
that another CodeSystem adds to the concepts of a code system.

A supplement is used when it is asked for: by a `useSupplement` parameter, or by a value
set's `valueset-supplement` extension. A supplement asked for that is not known is an error
(`Required supplement not found`). Nothing is looked up when none is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from vnehr.terminology.code_systems import CodeSystems, ConceptRow, SystemVersion, version_matches
from vnehr.terminology.issues import TxError
from vnehr.terminology.model import Json

EXT_VS_SUPPLEMENT = "http://hl7.org/fhir/StructureDefinition/valueset-supplement"


def requested(vs: Json | None, parameters: Iterable[object] = ()) -> list[str]:
    """The canonicals of the supplements asked for (parameters, then the value set's)."""
    out = [v for v in parameters if isinstance(v, str) and v]
    for ext in (vs or {}).get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == EXT_VS_SUPPLEMENT:
            value = ext.get("valueCanonical") or ext.get("valueUri")
            if isinstance(value, str) and value:
                out.append(value)
    return out


@dataclass
class Supplements:
    """The supplements of one request, and which of them were used."""

    systems: CodeSystems
    found: list[SystemVersion] = field(default_factory=list)
    used: dict[str, None] = field(default_factory=dict)  # canonicals, in order of use

    @classmethod
    def resolve(cls, systems: CodeSystems, wanted: list[str]) -> Supplements:
        """The supplements `wanted` (canonicals); a TxError (404) for one not known."""
        out = cls(systems)
        for canonical in wanted:
            url, _, version = canonical.partition("|")
            match = [
                s
                for s in systems.supplement_versions(url)
                if not version or version_matches(version, s.version)
            ]
            if not match:
                raise TxError(
                    f"Required supplement not found: {canonical}",
                    status=404,
                    code="not-found",
                    tx_code="not-found",
                )
            if match[0] not in out.found:
                out.found.append(match[0])
        return out

    def of(self, system: SystemVersion) -> list[SystemVersion]:
        """The supplements (asked for) of code system `system`."""
        out = []
        for s in self.found:
            url, _, version = (s.supplements or "").partition("|")
            if url == system.url and (not version or version_matches(version, system.version)):
                out.append(s)
        return out

    def concepts(self, concept: ConceptRow) -> list[tuple[SystemVersion, ConceptRow]]:
        """What each supplement of the concept's code system says of it."""
        if not self.found or concept.system is None:
            return []
        out = []
        for s in self.of(concept.system):
            extra = self.systems.concept(s, concept.code)
            self.used.setdefault(s.canonical, None)
            if extra is not None:
                out.append((s, extra))
        return out

    def apply(self, concept: ConceptRow) -> ConceptRow:
        """The concept with the designations and properties of its supplements."""
        extra = self.concepts(concept)
        if not extra:
            return concept
        detail = dict(concept.detail)
        designations = list(detail.get("designation") or [])
        properties = list(detail.get("property") or [])
        for _, row in extra:
            designations += [d for d in row.designations if d not in designations]
            properties += [p for p in row.properties if p not in properties]
        if designations:
            detail["designation"] = designations
        if properties:
            detail["property"] = properties
        return ConceptRow(
            concept.cid,
            concept.code,
            concept.display,
            concept.inactive,
            concept.abstract,
            json.dumps(detail, ensure_ascii=False),
            concept.system,
        )
