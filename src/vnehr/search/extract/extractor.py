"""The Extractor: a resource -> its IndexRows, from compiled per-type extraction plans.

For each resource type the plan lists, by top-level JSON key, the (walker, converter, code)
entries of the parameters that start from that key; extracting a resource is one pass over
its keys, so parameters whose elements are absent cost nothing. The entries of a key are
compiled into one handler: the converter itself for the common single plain entry, else a
loop over them that converts the values reached the same way (`code` for both `code` and
`combo-code`) once and copies the rows under the other codes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from vnehr.errors import InvalidResource
from vnehr.search.extract import date, number, quantity, reference, string, token, uri
from vnehr.search.extract.paths import Path, PathCompiler, PathError, Walker
from vnehr.search.index_rows import IndexRows
from vnehr.search.registry import ParamType, SearchParamRegistry, default_registry

log = logging.getLogger(__name__)

# (code, a list of values or one value as found in the resource, the rows to add to)
Converter = Callable[[str, Any, IndexRows], None]
# (walker over the key's values or None, converter, parameter code)
Entry = tuple[Walker | None, Converter, str]
# The values of one top-level key -> rows.
Handler = Callable[[Any, IndexRows], None]

CONVERTERS: dict[ParamType, Converter] = {
    ParamType.TOKEN: token.add_rows,
    ParamType.STRING: string.add_rows,
    ParamType.DATE: date.add_rows,
    ParamType.NUMBER: number.add_rows,
    ParamType.QUANTITY: quantity.add_rows,
    ParamType.REFERENCE: reference.add_rows,
    ParamType.URI: uri.add_rows,
}
# Kept by the store as columns of `resources`, so they have no index rows.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})


@dataclass(frozen=True, slots=True)
class CompileStats:
    """How the expressions of the resource types compiled so far were handled."""

    native: int = 0  # every union member compiled to Python
    fallback: int = 0  # at least one member evaluated by fhirpathpy
    failed: int = 0  # not compilable at all: the parameter has no rows
    skipped: int = 0  # composite, special, no expression, or kept as a column
    fallback_expressions: tuple[str, ...] = ()

    def __add__(self, other: CompileStats) -> CompileStats:
        return CompileStats(
            self.native + other.native,
            self.fallback + other.fallback,
            self.failed + other.failed,
            self.skipped + other.skipped,
            self.fallback_expressions + other.fallback_expressions,
        )


@dataclass(slots=True)
class _Plan:
    version: int
    by_key: dict[str, list[Entry]] = field(default_factory=dict)
    whole: list[tuple[Walker, Converter, str]] = field(default_factory=list)
    stats: CompileStats = CompileStats()
    handlers: dict[str, Handler] = field(default_factory=dict)


class Extractor:
    """Extracts the search index rows of resources, for the parameters of a registry."""

    def __init__(
        self,
        registry: SearchParamRegistry | None = None,
        *,
        column_params: Iterable[str] = COLUMN_PARAMS,
    ) -> None:
        self.registry = registry if registry is not None else default_registry()
        self._columns = frozenset(column_params)
        self._compiler = PathCompiler(self.registry.choice_elements, self.registry.resource_types)
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()

    def extract(self, resource: dict[str, Any]) -> IndexRows:
        """The index rows of `resource` (a plain FHIR JSON dict)."""
        resource_type = resource.get("resourceType")
        if type(resource_type) is not str:
            raise InvalidResource("A resource needs a resourceType", ("resourceType",))
        plan = self._plans.get(resource_type)
        if plan is None or plan.version != self.registry.version:
            plan = self._plan(resource_type)
        rows = IndexRows([], [], [], [], [], [], [])
        handlers = plan.handlers
        for key, value in resource.items():
            handler = handlers.get(key)
            if handler is not None:
                handler(value, rows)
        if plan.whole:
            focus = [resource]
            for walk_whole, convert, code in plan.whole:
                found = walk_whole(focus)
                if found:
                    convert(code, found, rows)
        _dedupe(rows)
        return rows

    def compile_all(self) -> CompileStats:
        """Compile the plans of every resource type now; how the expressions compiled."""
        total = CompileStats()
        for resource_type in sorted(self.registry.resource_types):
            total += self.stats(resource_type)
        return total

    def stats(self, resource_type: str) -> CompileStats:
        plan = self._plans.get(resource_type)
        if plan is None or plan.version != self.registry.version:
            plan = self._plan(resource_type)
        return plan.stats

    def _plan(self, resource_type: str) -> _Plan:
        with self._lock:
            version = self.registry.version
            existing = self._plans.get(resource_type)
            if existing is not None and existing.version == version:
                return existing  # built by another thread meanwhile
            plan = _Plan(version)
            native = fallback = failed = skipped = 0
            fallbacks: list[str] = []
            for code, param in self.registry.for_type(resource_type).items():
                convert = CONVERTERS.get(param.type)
                if convert is None or param.expression is None or code in self._columns:
                    skipped += 1
                    continue
                if param.type is ParamType.REFERENCE and param.targets:
                    convert = reference.add_rows_for(frozenset(param.targets))
                try:
                    path = self._compile(param.expression, resource_type)
                except PathError as exc:
                    log.warning("Search parameter %s.%s not indexed: %s", resource_type, code, exc)
                    failed += 1
                    continue
                if path.native:
                    native += 1
                else:
                    fallback += 1
                    fallbacks.append(f"{resource_type}.{code}: {param.expression}")
                for branch in path.branches:
                    for key in branch.keys:
                        plan.by_key.setdefault(key, []).append((branch.walk, convert, code))
                plan.whole.extend((walk, convert, code) for walk in path.whole)
            plan.stats = CompileStats(native, fallback, failed, skipped, tuple(fallbacks))
            plan.handlers = {key: _handler(entries) for key, entries in plan.by_key.items()}
            self._plans[resource_type] = plan
            return plan

    def _compile(self, expression: str, resource_type: str) -> Path:
        return self._compiler.compile(expression, resource_type)


def _handler(entries: list[Entry]) -> Handler:
    """One function for the entries of a key: (the key's value, rows) -> None."""
    if len(entries) == 1:
        walk, convert, code = entries[0]
        if walk is None:
            return partial(convert, code)  # converters take one value as well as a list
        only: Walker = walk

        def one(value: Any, rows: IndexRows) -> None:
            found = only(value if type(value) is list else [value])
            if found:
                convert(code, found, rows)

        return one

    plain = tuple(entries)

    def each(value: Any, rows: IndexRows) -> None:
        values = value if type(value) is list else [value]
        for walk, convert, code in plain:
            found = walk(values) if walk is not None else values
            if found:
                convert(code, found, rows)

    return each


def _dedupe(rows: IndexRows) -> None:
    # The same value reached twice (a name part under `name` twice, a union whose members
    # overlap) needs one row.
    if len(rows.tokens) > 1:
        rows.tokens = list(dict.fromkeys(rows.tokens))
    if len(rows.strings) > 1:
        rows.strings = list(dict.fromkeys(rows.strings))
    if len(rows.dates) > 1:
        rows.dates = list(dict.fromkeys(rows.dates))
    if len(rows.references) > 1:
        rows.references = list(dict.fromkeys(rows.references))
    if len(rows.quantities) > 1:
        rows.quantities = list(dict.fromkeys(rows.quantities))
    if len(rows.numbers) > 1:
        rows.numbers = list(dict.fromkeys(rows.numbers))
    if len(rows.uris) > 1:
        rows.uris = list(dict.fromkeys(rows.uris))
