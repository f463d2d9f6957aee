"""Reading code systems from the terminology tables: which version, a concept, its
neighbours, subsumption."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from vnehr.terminology.model import Json

Rows = Callable[[str, Sequence[Any]], list[Any]]


@dataclass(frozen=True, slots=True)
class SystemVersion:
    """One stored code system (a CodeSystem resource's current version)."""

    sid: int
    res_id: str
    url: str
    version: str
    content: str
    case_sensitive: bool
    supplements: str | None
    concepts: int
    first_cid: int  # its concepts' keys: first_cid .. first_cid + concepts - 1

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}" if self.version else self.url

    def key(self, code: str) -> str:
        return code if self.case_sensitive else code.lower()


@dataclass
class ConceptRow:
    cid: int
    code: str
    display: str | None
    inactive: bool
    abstract: bool
    raw_detail: str | None = None
    system: SystemVersion | None = field(default=None, repr=False)

    @cached_property
    def detail(self) -> Json:
        return json.loads(self.raw_detail) if self.raw_detail else {}

    @property
    def designations(self) -> list[Json]:
        return list(self.detail.get("designation") or [])

    @property
    def properties(self) -> list[Json]:
        return list(self.detail.get("property") or [])

    @property
    def definition(self) -> str | None:
        value = self.detail.get("definition")
        return value if isinstance(value, str) else None


CONCEPT_COLUMNS = "c.cid, c.code, c.display, c.inactive, c.abstract, c.detail"
_SYSTEM_COLUMNS = (
    "sid, res_id, url, version, content, case_sensitive, supplements, concepts, first_cid"
)


def concept_row(row: Sequence[Any], system: SystemVersion | None = None) -> ConceptRow:
    return ConceptRow(int(row[0]), row[1], row[2], bool(row[3]), bool(row[4]), row[5], system)


def _version_key(version: str) -> tuple[Any, ...]:
    """Versions compare as numbers where they are numbers: 1.10.0 after 1.9.0."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-]", version))


def is_version_pattern(version: str) -> bool:
    """`1.x`, `1.0.x`, `1.*`: a version with a wildcard part."""
    return any(p in ("x", "X", "*") for p in version.split("."))


def version_matches(pattern: str, version: str) -> bool:
    """An exact version, or a pattern whose `x` / `*` parts match any part (`1.x.x`,
    `1.0.x`; a trailing wildcard also matches any further parts: `1.x` matches `1.2.0`)."""
    if pattern == version:
        return True
    if not is_version_pattern(pattern):
        return False
    wanted = pattern.split(".")
    have = version.split(".")
    for i, part in enumerate(wanted):
        if part in ("x", "X", "*"):
            if i == len(wanted) - 1:
                return len(have) >= i + 1
            if i >= len(have):
                return False
            continue
        if i >= len(have) or have[i] != part:
            return False
    return len(have) == len(wanted)


class CodeSystems:
    """The stored code systems, read through `rows` (the store's, or a transaction's)."""

    def __init__(self, rows: Rows, unindexed: Callable[[str], str] = lambda expr: expr) -> None:
        self.rows = rows
        # `expr` written so the planner does not drive from its index (SQLite has no
        # statistics and would walk every concept of a system instead of the few selected).
        self.unindexed = unindexed
        # What one request has read already: the versions of a system, concepts by code.
        self._versions: dict[str, list[SystemVersion]] = {}
        self._concepts: dict[tuple[int, str], ConceptRow | None] = {}

    def _systems(self, where: str, args: Sequence[Any]) -> list[SystemVersion]:
        """Stored systems: request-scoped (tx-resource) ones first, then the highest version."""
        out = [
            SystemVersion(int(r[0]), r[1], r[2], r[3], r[4], bool(r[5]), r[6], int(r[7]), int(r[8]))
            for r in self.rows(f"SELECT {_SYSTEM_COLUMNS} FROM tx_systems WHERE {where}", args)
        ]
        out.sort(key=lambda s: (not s.res_id.startswith("tx-resource:"), latest_first(s.version)))
        return out

    def versions(self, url: str) -> list[SystemVersion]:
        cached = self._versions.get(url)
        if cached is None:
            cached = self._versions[url] = self._systems("url = ? AND supplements IS NULL", [url])
        return list(cached)

    def supplements(self, url: str) -> list[SystemVersion]:
        """The supplements of the code system `url`."""
        return self._systems("supplements = ? OR supplements LIKE ?", [url, f"{url}|%"])

    def supplement_versions(self, url: str) -> list[SystemVersion]:
        """The supplements stored under the url `url` (highest version first)."""
        return self._systems("url = ? AND supplements IS NOT NULL", [url])

    def resolve(self, url: str, version: str | None = None) -> SystemVersion | None:
        """The code system `url` in `version` (exact, or `1.x`), else its latest version."""
        found = self.versions(url)
        if version:
            exact = [s for s in found if s.version == version]
            if exact:
                return exact[0]
            matching = [s for s in found if version_matches(version, s.version)]
            return matching[0] if matching else None
        return found[0] if found else None

    def concept(self, system: SystemVersion, code: str) -> ConceptRow | None:
        key = (system.sid, system.key(code))
        if key in self._concepts:
            return self._concepts[key]
        found = self.rows(
            f"SELECT {CONCEPT_COLUMNS} FROM tx_concepts c WHERE c.sid = ? AND c.ckey = ?",
            list(key),
        )
        concept = concept_row(found[0], system) if found else None
        self._concepts[key] = concept
        return concept

    def concepts(self, system: SystemVersion, cids: Sequence[int]) -> list[ConceptRow]:
        out: list[ConceptRow] = []
        for start in range(0, len(cids), 500):
            chunk = list(cids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            out += [
                concept_row(r, system)
                for r in self.rows(
                    f"SELECT {CONCEPT_COLUMNS} FROM tx_concepts c WHERE c.cid IN ({marks})", chunk
                )
            ]
        order = {cid: i for i, cid in enumerate(cids)}
        out.sort(key=lambda c: order.get(c.cid, 0))
        return out

    def parents(self, concept: ConceptRow) -> list[ConceptRow]:
        return [
            concept_row(r, concept.system)
            for r in self.rows(
                f"SELECT {CONCEPT_COLUMNS} FROM tx_edges e JOIN tx_concepts c ON c.cid = e.parent"
                " WHERE e.child = ? ORDER BY c.cid",
                [concept.cid],
            )
        ]

    def children(self, concept: ConceptRow) -> list[ConceptRow]:
        return [
            concept_row(r, concept.system)
            for r in self.rows(
                f"SELECT {CONCEPT_COLUMNS} FROM tx_edges e JOIN tx_concepts c ON c.cid = e.child"
                " WHERE e.parent = ? ORDER BY c.cid",
                [concept.cid],
            )
        ]

    def is_ancestor(self, ancestor: int, descendant: int) -> bool:
        return bool(
            self.rows(
                "SELECT 1 FROM tx_closure WHERE ancestor = ? AND descendant = ?",
                [ancestor, descendant],
            )
        )

    def subsumption(self, a: ConceptRow, b: ConceptRow) -> str:
        """`equivalent`, `subsumes` (a is an ancestor of b), `subsumed-by`, `not-subsumed`."""
        if a.cid == b.cid:
            return "equivalent"
        if self.is_ancestor(a.cid, b.cid):
            return "subsumes"
        if self.is_ancestor(b.cid, a.cid):
            return "subsumed-by"
        return "not-subsumed"

    def descendants(self, concept: ConceptRow) -> list[int]:
        return [
            int(r[0])
            for r in self.rows(
                "SELECT descendant FROM tx_closure WHERE ancestor = ?", [concept.cid]
            )
        ]

    def ancestors(self, concept: ConceptRow) -> list[int]:
        return [
            int(r[0])
            for r in self.rows(
                "SELECT ancestor FROM tx_closure WHERE descendant = ?", [concept.cid]
            )
        ]


def latest_first(version: str) -> tuple[Any, ...]:
    """Sort key putting the highest version first."""
    return tuple((-a, -b, _Reverse(c)) for a, b, c in _version_key(version or "0"))


class _Reverse:
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)
