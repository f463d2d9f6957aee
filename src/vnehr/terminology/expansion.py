"""Value sets: evaluating a ValueSet's `compose` against the stored code systems.

An include names a system (all its codes, the listed `concept`s, or the codes passing every
`filter`) and/or other value sets (their intersection); excludes take codes out. Filters run
as SQL on the terminology tables: `concept` `is-a`, `descendent-of`, `is-not-a`,
`generalizes`, `child-of`, `in`, `not-in`, `=`, `regex`; any property with `=`, `in`,
`not-in`, `regex`, `exists`. The `filter` text of `$expand` (type-ahead) keeps the codes
whose display or designations have a word starting with each word typed, compared without
case and accents (`dương` = `duong`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import re2

from vnehr.errors import InvalidRequest, NotFound
from vnehr.fhir.definitions import code_systems as builtin_code_systems
from vnehr.fhir.definitions import value_set_codes
from vnehr.terminology.code_systems import (
    CONCEPT_COLUMNS,
    CodeSystems,
    ConceptRow,
    SystemVersion,
    _version_key,
    concept_row,
    version_matches,
)
from vnehr.terminology.issues import TxError, join_versions, tx_issue
from vnehr.terminology.model import Json
from vnehr.terminology.tables import NOT_SELECTABLE, NOT_SELECTABLE_URI, words

EXPANDING = "the value set cannot be expanded"
MAX_EXPANSION = 10_000  # members computed for one unpaged expansion
MAX_DEPTH = 8  # value sets including value sets
# A text filter whose rarest word prefix starts more words than this is "common": the
# concepts are probed in order rather than listed, and the total is counted up to
# TEXT_TOTAL_CAP (beyond it, left out: a type-ahead list needs the first page only).
COMMON_PREFIX = 5_000
TEXT_TOTAL_CAP = 1_000
_CONCEPT_OPS = (
    "is-a",
    "descendent-of",
    "is-not-a",
    "generalizes",
    "child-of",
    "in",
    "not-in",
    "=",
    "regex",
    "descendent-leaf",
)
_PROPERTY_OPS = ("=", "in", "not-in", "regex", "exists")


class TerminologyError(InvalidRequest):
    """A value set or code system that cannot be used as asked (400, with its location)."""

    tx_code: str | None = None

    def outcome(self) -> Json:
        location = self.expression[0] if self.expression else None
        return {
            "resourceType": "OperationOutcome",
            "issue": [tx_issue("error", self.code, self.tx_code, self.diagnostics, location)],
        }


class InvalidValueSet(TerminologyError):
    """A value set whose definition is broken: no answer can be given about it."""

    tx_code = "vs-invalid"


class TooCostly(TerminologyError):
    code = "too-costly"


class UnknownCodeSystem(NotFound):
    """A code system that is not stored (nor one of the R4 specification's)."""

    location: str | None = None

    def outcome(self) -> Json:
        return {
            "resourceType": "OperationOutcome",
            "issue": [tx_issue("error", "not-found", "not-found", self.diagnostics, self.location)],
        }


def unknown_code_system(
    url: str,
    version: str | None,
    location: str | None,
    known: Sequence[str] = (),
    purpose: str = "the code cannot be validated",
) -> UnknownCodeSystem:
    text = (
        f"A definition for CodeSystem '{url}'"
        + (f" version '{version}'" if version else "")
        + f" could not be found, so {purpose}"
    )
    if version:
        text += (
            f". Valid versions: {join_versions(list(known))}"
            if known
            else ". No versions of this code system are known"
        )
    err = UnknownCodeSystem(text, (location,) if location else ())
    err.location = location
    return err


def version_not_allowed(url: str, version: str, check: str, location: str | None) -> TxError:
    return TxError(
        f"The version '{version}' is not allowed for system '{url}': required to be '{check}' "
        "by a version-check parameter",
        location=location,
        code="exception",
        tx_code="version-error",
    )


@dataclass(slots=True)
class Member:
    """A code in an expansion."""

    system: str
    version: str
    code: str
    display: str | None
    inactive: bool = False
    abstract: bool = False
    concept: ConceptRow | None = field(default=None, repr=False)
    vs_status: str | None = None  # the value set marks the code deprecated (or withdrawn)
    status_extensions: list[Json] | None = None  # ...with these extensions (echoed)

    @property
    def key(self) -> tuple[str, str]:
        return self.system, self.code


@dataclass(slots=True)
class Options:
    """What an `$expand` or `$validate-code` asked for, beyond the value set itself."""

    text: str | None = None  # `filter`
    active_only: bool = False
    system_versions: dict[str, str] = field(default_factory=dict)  # system-version
    force_versions: dict[str, str] = field(default_factory=dict)  # force-system-version
    check_versions: dict[str, str] = field(default_factory=dict)  # check-system-version
    limit: int = MAX_EXPANSION


@dataclass(slots=True)
class Expansion:
    members: list[Member]
    total: int | None  # None: more than TEXT_TOTAL_CAP matches of a text filter
    used: dict[str, str] = field(default_factory=dict)  # system url -> canonical used


ValueSetFinder = Callable[[str], "Json | None"]


class Evaluator:
    """Evaluates compose definitions; `find_value_set(url)` resolves value set references."""

    def __init__(self, systems: CodeSystems, find_value_set: ValueSetFinder, options: Options):
        self.systems = systems
        self.find_value_set = find_value_set
        self.options = options
        self.used: dict[str, str] = {}
        self.used_systems: dict[str, SystemVersion] = {}  # canonical -> the stored system
        self.used_value_sets: dict[str, Json] = {}  # canonical -> value sets it imported
        # version parameters that chose a code system version: (name, url|version)
        self.params: dict[tuple[str, str], None] = {}
        self.purpose = EXPANDING
        self._stack: list[str] = []
        # the CodeSystem resource (without concepts) of a stored code system, by res_id
        self.header: Callable[[str], Json] | None = None

    # -- value sets
    def value_set(self, url: str, location: str = "ValueSet") -> Json:
        found = self.find_value_set(url)
        if found is None:
            raise TerminologyError(
                f"A definition for the value Set '{url}' could not be found", (location,)
            )
        return found

    def expand(self, vs: Json, offset: int = 0, count: int | None = None) -> Expansion:
        """The members of `vs` (page `offset`/`count`) and how many there are in all."""
        key = _vs_key(vs)
        if key in self._stack:
            raise TerminologyError(
                f"Value set {key} includes itself (through {' -> '.join(self._stack)})",
                ("ValueSet.compose.include",),
            )
        if len(self._stack) > MAX_DEPTH:
            raise TerminologyError("Value sets nest too deep", ("ValueSet.compose.include",))
        self._stack.append(key)
        try:
            return self._expand(vs, offset, count)
        finally:
            self._stack.pop()

    def _expand(self, vs: Json, offset: int, count: int | None) -> Expansion:
        compose = vs.get("compose")
        if not isinstance(compose, dict):
            expansion = vs.get("expansion")
            if isinstance(expansion, dict):
                listed = self._active(_from_expansion(expansion.get("contains") or []), True)
                return Expansion(
                    listed[offset:][:count] if count is not None else listed[offset:],
                    len(listed),
                    dict(self.used),
                )
            raise TerminologyError(
                f"Value set {_vs_key(vs)} has no compose and no expansion", ("ValueSet.compose",)
            )
        includes = [i for i in compose.get("include") or [] if isinstance(i, dict)]
        excludes = [i for i in compose.get("exclude") or [] if isinstance(i, dict)]
        inactive_ok = compose.get("inactive") is not False
        if not includes:
            raise TerminologyError("A value set's compose needs an include", ("ValueSet.compose",))
        # One include of a stored system, nothing else to combine: page in SQL.
        if (
            len(includes) == 1
            and not excludes
            and not includes[0].get("valueSet")
            and not includes[0].get("concept")
            and includes[0].get("system")
        ):
            system = self._system(includes[0], "ValueSet.compose.include[0]")
            if system is not None:
                return self._paged(system, includes[0], offset, count, inactive_ok)
        # Two versions of one code system may both be included: a code is one member per
        # version (an exclude without a version takes the code out of every version).
        members: dict[tuple[str, str, str], Member] = {}
        for i, include in enumerate(includes):
            for m in self._include(include, f"ValueSet.compose.include[{i}]"):
                members.setdefault((m.system, m.version, m.code), m)
                if len(members) > self.options.limit:
                    raise TooCostly(
                        f"The expansion of {_vs_key(vs)} has more than {self.options.limit} codes:"
                        " use count and offset, or a filter",
                        ("ValueSet.compose",),
                    )
        for i, exclude in enumerate(excludes):
            gone = self._include(exclude, f"ValueSet.compose.exclude[{i}]")
            if exclude.get("version"):
                for m in gone:
                    members.pop((m.system, m.version, m.code), None)
            else:
                codes = {m.key for m in gone}
                members = {k: m for k, m in members.items() if m.key not in codes}
        out = self._active(list(members.values()), inactive_ok)
        if self.options.text:
            wanted = words(self.options.text)
            out = [m for m in out if _text_match(m, wanted)]
        total = len(out)
        page = out[offset:] if count is None else out[offset : offset + count]
        return Expansion(page, total, dict(self.used))

    def _active(self, members: list[Member], inactive_ok: bool) -> list[Member]:
        if self.options.active_only or not inactive_ok:
            return [m for m in members if not m.inactive]
        return members

    def _paged(
        self,
        system: SystemVersion,
        include: Json,
        offset: int,
        count: int | None,
        inactive_ok: bool,
    ) -> Expansion:
        where, args, post = self._conditions(system, include, "ValueSet.compose.include[0]")
        if self.options.active_only or not inactive_ok:
            where.append("c.inactive = ?")
            args.append(False)
        common, single = self._text(system, where, args)
        # The system and one word typed, nothing else: count from the words alone.
        word_only = single is not None and len(where) == 2
        if common:
            # Walk the system's concepts in key order (its keys are one range), probing each.
            where[0] = f"c.cid >= ? AND c.cid < ? AND {self.systems.unindexed('c.sid')} = ?"
            args[0:1] = [system.first_cid, system.first_cid + system.concepts, system.sid]
        elif len(where) > 1:
            where[0] = f"{self.systems.unindexed('c.sid')} = ?"
        clause = " AND ".join(where)
        total: int | None
        if post:  # a regex: filter in Python, then page
            rows = self.systems.rows(
                f"SELECT {CONCEPT_COLUMNS} FROM tx_concepts c WHERE {clause} ORDER BY c.cid", args
            )
            concepts = [
                c for c in (concept_row(r, system) for r in rows) if all(p(c) for p in post)
            ]
            total = len(concepts)
            concepts = concepts[offset:] if count is None else concepts[offset : offset + count]
        else:
            if common and count is not None:
                # Type-ahead on a common prefix: counted up to a cap, beyond it left out.
                if word_only and single is not None:
                    statement = (
                        "SELECT COUNT(*) FROM (SELECT DISTINCT w.cid FROM tx_words w "
                        "WHERE w.sid = ? AND w.word >= ? AND w.word < ? LIMIT ?) x"
                    )
                    counting = [system.sid, *single, TEXT_TOTAL_CAP + 1]
                else:
                    statement = (
                        f"SELECT COUNT(*) FROM (SELECT 1 FROM tx_concepts c WHERE {clause} "
                        "LIMIT ?) x"
                    )
                    counting = [*args, TEXT_TOTAL_CAP + 1]
                counted = int(self.systems.rows(statement, counting)[0][0])
                total = counted if counted <= TEXT_TOTAL_CAP else None
            elif word_only and single is not None:
                total = int(
                    self.systems.rows(
                        "SELECT COUNT(DISTINCT w.cid) FROM tx_words w WHERE w.sid = ? "
                        "AND w.word >= ? AND w.word < ?",
                        [system.sid, *single],
                    )[0][0]
                )
            else:
                total = int(
                    self.systems.rows(f"SELECT COUNT(*) FROM tx_concepts c WHERE {clause}", args)[
                        0
                    ][0]
                )
            if count is None and (total is None or total - offset > self.options.limit):
                raise TooCostly(
                    f"The expansion has {total} codes, more than {self.options.limit}:"
                    " use count and offset, or a filter",
                    ("ValueSet.compose",),
                )
            limit = (total if count is None else count) or 0
            rows = self.systems.rows(
                f"SELECT {CONCEPT_COLUMNS} FROM tx_concepts c WHERE {clause} "
                "ORDER BY c.cid LIMIT ? OFFSET ?",
                [*args, limit, offset],
            )
            concepts = [concept_row(r, system) for r in rows]
        return Expansion([_member(system, c) for c in concepts], total, dict(self.used))

    def _text(
        self, system: SystemVersion, where: list[str], args: list[Any]
    ) -> tuple[bool, tuple[str, str] | None]:
        """Conditions for the `filter` text; True when a word prefix is common (more than
        COMMON_PREFIX concepts): then each concept is probed, in code system order, instead
        of listing every concept with the prefix; and, for one word typed, its range."""
        if not self.options.text:
            return False, None
        ranges = [
            (token, token[:-1] + chr(ord(token[-1]) + 1))
            for token in sorted(words(self.options.text))
        ]
        sizes = [
            int(
                self.systems.rows(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM tx_words w WHERE w.sid = ? "
                    "AND w.word >= ? AND w.word < ? LIMIT ?) x",
                    [system.sid, low, high, COMMON_PREFIX + 1],
                )[0][0]
            )
            for low, high in ranges
        ]
        common = min(sizes, default=0) > COMMON_PREFIX
        for low, high in ranges:
            if common:
                where.append(
                    "EXISTS (SELECT 1 FROM tx_words w WHERE w.cid = c.cid AND w.word >= ? "
                    "AND w.word < ?)"
                )
                args += [low, high]
            else:
                where.append(
                    "c.cid IN (SELECT w.cid FROM tx_words w WHERE w.sid = ? AND w.word >= ? "
                    "AND w.word < ?)"
                )
                args += [system.sid, low, high]
        return common, (ranges[0] if len(ranges) == 1 else None)

    # -- includes
    def include_version(self, url: str, version: str | None) -> tuple[str | None, str | None]:
        """The version an include of `url` (with its own `version`, if any) uses, and the
        request parameter that chose it: `force-system-version` always, else the include's
        version, else `system-version`, else `check-system-version` (as a default)."""
        forced = self.options.force_versions.get(url)
        if forced:
            return forced, "force-system-version"
        if version:
            return version, None
        default = self.options.system_versions.get(url)
        if default:
            return default, "system-version"
        check = self.options.check_versions.get(url)
        if check:
            return check, "check-system-version"
        return None, None

    def _system(self, include: Json, location: str) -> SystemVersion | None:
        """The stored code system an include names (None: a built-in R4 code system);
        UnknownCodeSystem if neither."""
        url = include["system"]
        version, param = self.include_version(url, include.get("version"))
        found = self.systems.resolve(url, version)
        if found is None:
            if not version and url in builtin_code_systems():
                return None
            # (tx.fhir.org names no element for an expansion's unknown code system version)
            where = None if self.purpose == EXPANDING and version else f"{location}.system"
            raise self.unknown_system(url, version, where)
        if param is not None:
            self.params.setdefault((param, f"{url}|{version}"), None)
        check = self.options.check_versions.get(url)
        if (
            check
            and self.purpose == EXPANDING
            and param != "force-system-version"
            and not version_matches(check, found.version)
        ):
            raise version_not_allowed(url, found.version, check, None)
        self.used[found.canonical] = found.canonical
        self.used_systems.setdefault(found.canonical, found)
        return found

    def unknown_system(
        self, url: str, version: str | None, location: str | None
    ) -> UnknownCodeSystem:
        known = sorted(
            {s.version for s in self.systems.versions(url) if s.version}, key=_version_key
        )
        return unknown_code_system(url, version, location, known, self.purpose)

    def _include(self, include: Json, location: str) -> list[Member]:
        members: list[Member] | None = None
        if include.get("system"):
            members = self._system_members(include, location)
        for j, ref in enumerate(include.get("valueSet") or []):
            if not isinstance(ref, str):
                continue
            imported = self.value_set(ref, f"{location}.valueSet[{j}]")
            self.used_value_sets.setdefault(canonical_of(imported), imported)
            other = self.expand(imported).members
            if members is None:
                members = other
            else:
                keep = {m.key for m in other}
                members = [m for m in members if m.key in keep]
        return members or []

    def _system_members(self, include: Json, location: str) -> list[Member]:
        listed = [c for c in include.get("concept") or [] if isinstance(c, dict)]
        try:
            system = self._system(include, location)
        except UnknownCodeSystem:
            if not listed or include.get("filter"):
                raise
            # Codes listed from a code system the server does not hold: taken as listed.
            return [
                Member(include["system"], include.get("version") or "", c["code"], c.get("display"))
                for c in listed
                if isinstance(c.get("code"), str)
            ]
        if system is None:  # a code system of the R4 specification: codes, no displays
            url = include["system"]
            codes, _ = builtin_code_systems()[url]
            if include.get("filter"):
                raise TerminologyError(
                    f"Filters on code system {url} are not supported", (f"{location}.filter",)
                )
            chosen = [c["code"] for c in listed if isinstance(c.get("code"), str)] or sorted(codes)
            return [Member(url, "", code, None) for code in chosen]
        if listed:
            out = []
            for c in listed:
                code = c.get("code")
                if not isinstance(code, str):
                    continue
                concept = self.systems.concept(system, code)
                if concept is None:
                    continue
                member = _member(system, concept)
                if isinstance(c.get("display"), str):
                    member.display = c["display"]
                member.vs_status = listed_status(c)
                if member.vs_status:
                    member.status_extensions = status_extensions(c)
                out.append(member)
            if include.get("filter"):
                allowed = {m.code for m in self._filtered(system, include, location)}
                out = [m for m in out if m.code in allowed]
            return out
        return self._filtered(system, include, location)

    def _filtered(self, system: SystemVersion, include: Json, location: str) -> list[Member]:
        where, args, post = self._conditions(system, include, location)
        rows = self.systems.rows(
            f"SELECT {CONCEPT_COLUMNS} FROM tx_concepts c WHERE {' AND '.join(where)} "
            "ORDER BY c.cid LIMIT ?",
            [*args, self.options.limit + 1],
        )
        concepts = [concept_row(r, system) for r in rows]
        return [_member(system, c) for c in concepts if all(p(c) for p in post)]

    def _conditions(
        self, system: SystemVersion, include: Json, location: str
    ) -> tuple[list[str], list[Any], list[Callable[[ConceptRow], bool]]]:
        where = ["c.sid = ?"]
        args: list[Any] = [system.sid]
        post: list[Callable[[ConceptRow], bool]] = []
        for k, f in enumerate(include.get("filter") or []):
            at = f"{location}.filter[{k}]"
            if not isinstance(f, dict):
                raise TerminologyError("A filter must be an object", (at,))
            prop, op, value = f.get("property"), f.get("op"), f.get("value")
            if isinstance(prop, str) and isinstance(op, str) and value is None:
                raise InvalidValueSet(
                    f"The system {system.url} filter with property = {prop}, op = {op} has no "
                    "value",
                    (at,),
                )
            if not isinstance(prop, str) or not isinstance(op, str) or not isinstance(value, str):
                raise TerminologyError("A filter needs a property, an op and a value", (at,))
            if prop == "concept" or (prop == "code" and op in _CONCEPT_OPS):
                self._concept_filter(system, op, value, at, where, args, post)
            else:
                self._property_filter(system, prop, op, value, at, where, args, post)
        if len(where) > 1:
            # The other conditions select few concepts: drive from them, not from every
            # concept of the system (SQLite, without statistics, would take the sid index).
            where[0] = f"{self.systems.unindexed('c.sid')} = ?"
        return where, args, post

    def _anchor(self, system: SystemVersion, value: str, at: str) -> int:
        concept = self.systems.concept(system, value)
        if concept is None:
            return -1  # matches nothing
        return concept.cid

    def _concept_filter(
        self,
        system: SystemVersion,
        op: str,
        value: str,
        at: str,
        where: list[str],
        args: list[Any],
        post: list[Callable[[ConceptRow], bool]],
    ) -> None:
        if op in (
            "is-a",
            "descendent-of",
            "is-not-a",
            "generalizes",
            "child-of",
            "descendent-leaf",
        ):
            cid = self._anchor(system, value, at)
            below = "SELECT descendant FROM tx_closure WHERE ancestor = ?"
            if op == "is-a":
                where.append(f"c.cid IN (SELECT ? UNION ALL {below})")
                args += [cid, cid]
            elif op == "descendent-of":
                where.append(f"c.cid IN ({below})")
                args.append(cid)
            elif op == "descendent-leaf":
                where.append(
                    f"c.cid IN ({below}) AND NOT EXISTS "
                    "(SELECT 1 FROM tx_edges e WHERE e.parent = c.cid)"
                )
                args.append(cid)
            elif op == "is-not-a":
                where.append(f"c.cid <> ? AND c.cid NOT IN ({below})")
                args += [cid, cid]
            elif op == "child-of":
                where.append("c.cid IN (SELECT child FROM tx_edges WHERE parent = ?)")
                args.append(cid)
            else:  # generalizes
                where.append(
                    "c.cid IN (SELECT ? UNION ALL SELECT ancestor FROM tx_closure "
                    "WHERE descendant = ?)"
                )
                args += [cid, cid]
        elif op in ("in", "not-in", "="):
            codes = [system.key(v.strip()) for v in value.split(",") if v.strip()]
            if op == "=":
                codes = [system.key(value)]
            marks = ", ".join("?" for _ in codes) or "NULL"
            where.append(f"c.ckey {'NOT IN' if op == 'not-in' else 'IN'} ({marks})")
            args += codes
        elif op == "regex":
            pattern = _regex(value, at)
            post.append(lambda c: pattern.fullmatch(c.code) is not None)
        else:
            raise TerminologyError(
                f"The filter operator '{op}' is not supported on 'concept'", (f"{at}.op",)
            )

    def _property_codes(self, system: SystemVersion, code: str, uri: str) -> list[str]:
        """`code` and the codes the code system declares for the property `uri`."""
        declared = self.header(system.res_id).get("property") if self.header else None
        return [code] + [
            str(p["code"])
            for p in declared or []
            if isinstance(p, dict) and p.get("uri") == uri and p.get("code") not in (None, code)
        ]

    def _property_filter(
        self,
        system: SystemVersion,
        prop: str,
        op: str,
        value: str,
        at: str,
        where: list[str],
        args: list[Any],
        post: list[Callable[[ConceptRow], bool]],
    ) -> None:
        if op not in _PROPERTY_OPS:
            raise TerminologyError(
                f"The filter operator '{op}' is not supported on property '{prop}'", (f"{at}.op",)
            )
        if prop == "display":
            if op == "regex":
                pattern = _regex(value, at)
                post.append(lambda c: pattern.fullmatch(c.display or "") is not None)
            elif op == "=":
                where.append("c.display = ?")
                args.append(value)
            else:
                raise TerminologyError(
                    f"The filter operator '{op}' is not supported on 'display'", (f"{at}.op",)
                )
            return
        if prop == "inactive" and op == "=":
            where.append("c.inactive = ?")
            args.append(value == "true")
            return
        if prop == NOT_SELECTABLE and op == "=":
            # true: the abstract concepts; false: those that say they are selectable (a
            # concept that says nothing is in neither); a boolean is `true` or `false` exactly
            if value == "true":
                where.append("c.abstract = ?")
                args.append(True)
            elif value == "false":
                codes = self._property_codes(system, NOT_SELECTABLE, NOT_SELECTABLE_URI)
                marks = ", ".join("?" for _ in codes)
                where.append(
                    "c.abstract = ? AND c.cid IN (SELECT p.cid FROM tx_properties p "
                    f"WHERE p.sid = ? AND p.property IN ({marks}) AND p.value = ?)"
                )
                args += [False, system.sid, *codes, "false"]
            else:
                where.append("1 = 0")
            return
        if not self.systems.rows(
            "SELECT 1 FROM tx_properties WHERE sid = ? AND property = ? LIMIT 1", [system.sid, prop]
        ):
            raise TerminologyError(
                f"The filter property '{prop}' is not a property of any concept of code system "
                f"{system.canonical}",
                (f"{at}.property",),
            )
        base = "SELECT p.cid FROM tx_properties p WHERE p.sid = ? AND p.property = ?"
        if op == "exists":
            neg = "" if value == "true" else "NOT "
            where.append(f"c.cid {neg}IN ({base})")
            args += [system.sid, prop]
        elif op in ("=", "in", "not-in"):
            values = [value] if op == "=" else [v.strip() for v in value.split(",") if v.strip()]
            marks = ", ".join("?" for _ in values) or "NULL"
            neg = "NOT " if op == "not-in" else ""
            where.append(f"c.cid {neg}IN ({base} AND p.value IN ({marks}))")
            args += [system.sid, prop, *values]
        else:  # regex over the property's values
            pattern = _regex(value, at)
            matching = [
                int(r[0])
                for r in self.systems.rows(
                    "SELECT p.cid, p.value FROM tx_properties p WHERE p.sid = ? AND p.property = ?",
                    [system.sid, prop],
                )
                if pattern.fullmatch(r[1])
            ]
            marks = ", ".join("?" for _ in matching) or "NULL"
            where.append(f"c.cid IN ({marks})")
            args += matching

    # -- membership
    def member(
        self, vs: Json, system: str | None, code: str, version: str | None = None
    ) -> Member | None:
        """The member of `vs` with this code (and system), without expanding all of `vs`."""
        key = _vs_key(vs)
        if key in self._stack:
            raise TerminologyError(
                f"Value set {key} includes itself", ("ValueSet.compose.include",)
            )
        self._stack.append(key)
        try:
            return self._member(vs, system, code, version)
        finally:
            self._stack.pop()

    def _member(
        self, vs: Json, system: str | None, code: str, version: str | None
    ) -> Member | None:
        compose = vs.get("compose")
        if not isinstance(compose, dict):
            for m in self.expand(vs).members:
                if m.code == code and (system is None or m.system == system):
                    return m
            return None
        inactive_ok = compose.get("inactive") is not False
        found: Member | None = None
        for i, include in enumerate(compose.get("include") or []):
            if not isinstance(include, dict):
                continue
            found = self._in_include(
                include, system, code, version, f"ValueSet.compose.include[{i}]"
            )
            if found is not None:
                break
        if found is None:
            return None
        for i, exclude in enumerate(compose.get("exclude") or []):
            if isinstance(exclude, dict) and self._in_include(
                exclude, found.system, found.code, None, f"ValueSet.compose.exclude[{i}]"
            ):
                return None
        if found.inactive and (self.options.active_only or not inactive_ok):
            return None
        return found

    def _in_include(
        self, include: Json, system: str | None, code: str, version: str | None, location: str
    ) -> Member | None:
        found: Member | None = None
        if include.get("system"):
            if system is not None and include["system"] != system:
                return None
            inc = include
            own = include.get("version")
            if (
                version
                and (not own or (isinstance(own, str) and version_matches(own, version)))
                and not self.options.force_versions.get(include["system"])
            ):
                inc = {**include, "version": version}
            listed = [c for c in include.get("concept") or [] if isinstance(c, dict)]
            try:
                stored = self._system(inc, location)
            except UnknownCodeSystem:
                if not listed or include.get("filter"):
                    raise
                match = [c for c in listed if c.get("code") == code]
                if not match:
                    return None
                found = Member(include["system"], "", code, match[0].get("display"))
                stored = None
            if found is not None:
                pass
            elif stored is None:
                codes, insensitive = builtin_code_systems()[include["system"]]
                enumerated = {
                    c.get("code") for c in include.get("concept") or [] if isinstance(c, dict)
                }
                probe = code.lower() if insensitive else code
                if (enumerated and code in enumerated) or (not enumerated and probe in codes):
                    found = Member(include["system"], "", code, None)
                else:
                    return None
            else:
                concept = self.systems.concept(stored, code)
                if concept is None:
                    return None
                if listed:
                    match = [
                        c for c in listed if stored.key(str(c.get("code"))) == stored.key(code)
                    ]
                    if not match:
                        return None
                    found = _member(stored, concept)
                    if isinstance(match[0].get("display"), str):
                        found.display = match[0]["display"]
                    found.vs_status = listed_status(match[0])
                if include.get("filter"):
                    where, args, post = self._conditions(stored, include, location)
                    where.append("c.cid = ?")
                    args.append(concept.cid)
                    ok = self.systems.rows(
                        f"SELECT 1 FROM tx_concepts c WHERE {' AND '.join(where)}", args
                    )
                    if not ok or not all(p(concept) for p in post):
                        return None
                found = found or _member(stored, concept)
        for j, ref in enumerate(include.get("valueSet") or []):
            if not isinstance(ref, str):
                continue
            imported = self.value_set(ref, f"{location}.valueSet[{j}]")
            self.used_value_sets.setdefault(canonical_of(imported), imported)
            inner = self.member(imported, system, code, version)
            if inner is None:
                return None
            found = found or inner
        return found


def _member(system: SystemVersion, concept: ConceptRow) -> Member:
    return Member(
        system.url,
        system.version,
        concept.code,
        concept.display,
        concept.inactive,
        concept.abstract,
        concept,
    )


def _from_expansion(items: list[Any]) -> list[Member]:
    out: list[Member] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("code"), str):
            out.append(
                Member(
                    item.get("system") or "",
                    item.get("version") or "",
                    item["code"],
                    item.get("display"),
                    bool(item.get("inactive")),
                    bool(item.get("abstract")),
                )
            )
        out += _from_expansion(item.get("contains") or [])
    return out


def _text_match(member: Member, wanted: set[str]) -> bool:
    texts = [member.display]
    if member.concept is not None:
        texts += [d.get("value") for d in member.concept.designations]
    have = words(member.code, *texts)
    return all(any(w.startswith(t) for w in have) for t in wanted)


class _Pattern(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _regex(value: str, at: str) -> _Pattern:
    """A filter's regex, compiled by RE2: matching takes time linear in the text, so that no
    pattern (such as the catastrophic `(a+)+`) can hold the server. RE2 has no back-references
    or look-arounds (nor has the XML Schema regex language of FHIR's `regex` filter)."""
    try:
        pattern: _Pattern = re2.compile(value, options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise TerminologyError(
            f"The filter value {value!r} is not a valid regex: {reason}", (f"{at}.value",)
        ) from None
    return pattern


def canonical_of(resource: Json) -> str:
    """url|version of a value set or code system (url alone without a version)."""
    url = str(resource.get("url") or f"{resource.get('resourceType')}/{resource.get('id')}")
    version = resource.get("version")
    return f"{url}|{version}" if isinstance(version, str) and version else url


EXT_STANDARDS_STATUS = (
    "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"
)


def status_warnings(resource: Json, standards_only: bool = False) -> list[str]:
    """What a client should be told about a code system or value set it uses: `withdrawn`,
    `deprecated` (its standards status), and for a code system also `draft` (its status) and
    `experimental` (tx.fhir.org does not warn of draft or experimental value sets)."""
    out: list[str] = []
    for ext in resource.get("extension") or []:
        if (
            isinstance(ext, dict)
            and ext.get("url") == EXT_STANDARDS_STATUS
            and ext.get("valueCode") in ("withdrawn", "deprecated")
        ):
            out.append(str(ext["valueCode"]))
    if standards_only:
        return out
    if resource.get("status") == "draft":
        out.append("draft")
    if resource.get("experimental") is True:
        out.append("experimental")
    return out


EXT_VS_DEPRECATED = "http://hl7.org/fhir/StructureDefinition/valueset-deprecated"


def listed_status(listed: Json) -> str | None:
    """`deprecated` (or `withdrawn`) when a value set marks a code it lists so."""
    for ext in listed.get("extension") or []:
        if not isinstance(ext, dict):
            continue
        flag = ext.get("valueCode", ext.get("valueBoolean"))
        if ext.get("url") == EXT_VS_DEPRECATED and flag in ("true", True):
            return "deprecated"
        if ext.get("url") == EXT_STANDARDS_STATUS and ext.get("valueCode") in (
            "deprecated",
            "withdrawn",
        ):
            return str(ext["valueCode"])
    return None


def status_extensions(listed: Json) -> list[Json]:
    return [
        ext
        for ext in listed.get("extension") or []
        if isinstance(ext, dict) and ext.get("url") in (EXT_VS_DEPRECATED, EXT_STANDARDS_STATUS)
    ]


def _vs_key(vs: Json) -> str:
    url = vs.get("url") or f"ValueSet/{vs.get('id')}"
    return f"{url}|{vs['version']}" if vs.get("version") else str(url)


def builtin_value_set(url: str) -> Json | None:
    """A value set of the R4 specification, as a ValueSet listing its codes."""
    canonical = url.split("|", 1)[0]
    codes = value_set_codes(canonical)
    if codes is None:
        return None
    return {
        "resourceType": "ValueSet",
        "url": canonical,
        "status": "active",
        "compose": {
            "include": [
                {"system": system, "concept": [{"code": c} for c in sorted(values)]}
                for system, values in sorted(codes.items())
            ]
        },
    }
