"""A code system's content as the terminology service stores it: one `Concept` per code.

Readers of published code systems (vnehr.terminology.sources: LOINC's Loinc.csv, ICD-10
lists, the national lab catalogue) and CodeSystem resources alike are turned into a
`CodeSystemContent`: the CodeSystem resource without its concepts (`header`) and the concepts
themselves, which go to the concept tables (docs/terminology.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass(slots=True)
class Concept:
    """One code of a code system.

    `designations` and `properties` are FHIR JSON as in CodeSystem.concept.designation and
    CodeSystem.concept.property (`{"code": "parent", "valueCode": "A00"}`); `parents` are the
    codes this one is directly subsumed by (nesting in CodeSystem.concept, `parent` /
    `subsumedBy` properties, a published hierarchy); `inactive` and `abstract` (not
    selectable) are read from the `status`, `inactive` and `notSelectable` properties by the
    reader that knows where its source keeps them.
    """

    code: str
    display: str | None = None
    definition: str | None = None
    designations: list[Json] = field(default_factory=list)
    properties: list[Json] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    inactive: bool = False
    abstract: bool = False


@dataclass(slots=True)
class CodeSystemContent:
    """A CodeSystem resource without `concept` (`header`), and its concepts.

    For a published code system loaded from files the header says `"content": "not-present"`
    (the concepts live in the concept tables, not in the resource) and `count`.
    """

    header: Json
    concepts: Iterable[Concept]
