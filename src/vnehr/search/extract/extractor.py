"""The Extractor: a resource -> its IndexRows, from compiled per-type extraction plans.

For each resource type the plan lists, by top-level JSON key, the (walker, converter, code)
entries of the parameters that start from that key; extracting a resource is one pass over
its keys, so parameters whose elements are absent cost nothing. The entries of a key are
compiled into one handler: the converter itself for the common single plain entry; one
parse for `subject` as subject and as patient (where(resolve() is Patient)); else a loop
over them that converts the values reached the same way (`code` for both `code` and
`combo-code`) once and copies the rows under the other codes. Rows keep the order of the
resource's keys, then of the entries.

The same value reached twice needs one row. Two equal rows have the same code, so they come
either from one converter call, which drops the repeats among the few rows it made and says
when there may be some among many (`repeats.unique_tail`), or from two entries of one
parameter (a union, a choice element's names): the plan gives each such parameter a bit,
which its handlers return. A list is deduplicated only when either may have happened.

Composite parameters pair values of one element: extract/composite.py makes their rows from
the whole resource, after the keys.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from typing import Any

from vnehr.errors import InvalidResource
from vnehr.search.extract import composite, date, number, quantity, reference, string, token, uri
from vnehr.search.extract.paths import Path, PathCompiler, PathError, Walker
from vnehr.search.index_rows import IndexRows
from vnehr.search.registry import ParamType, SearchParamRegistry, default_registry

log = logging.getLogger(__name__)

# (code, a list of values or one value as found in the resource, the rows to add to) ->
# the bit of its list (its module's REPEATS) if two of the rows it added may be equal, or 0.
Converter = Callable[[str, Any, IndexRows], int]
# (walker over the key's values or None, converter, parameter code, what makes its rows:
# walk signature and converter, None if not comparable; the IndexRows list it fills)
Entry = tuple[Walker | None, Converter, str, Hashable | None, str]
# The value of one top-level key, rows -> flags: the bits of the lists where two of the rows
# added may be equal, plus the bits of the parameters with several entries that it may have
# added rows of (from _SEVERAL up).
Handler = Callable[[Any, IndexRows], int]
_LIST_BITS = 127
_SEVERAL = 128

CONVERTERS: dict[ParamType, Converter] = {
    ParamType.TOKEN: token.add_rows,
    ParamType.STRING: string.add_rows,
    ParamType.DATE: date.add_rows,
    ParamType.NUMBER: number.add_rows,
    ParamType.QUANTITY: quantity.add_rows,
    ParamType.REFERENCE: reference.add_rows,
    ParamType.URI: uri.add_rows,
}
# The IndexRows list each converter fills, and its bit in flags.
BITS: dict[str, int] = {
    "tokens": token.REPEATS,
    "strings": string.REPEATS,
    "dates": date.REPEATS,
    "numbers": number.REPEATS,
    "quantities": quantity.REPEATS,
    "references": reference.REPEATS,
    "uris": uri.REPEATS,
}
LISTS: dict[ParamType, str] = {
    ParamType.TOKEN: "tokens",
    ParamType.STRING: "strings",
    ParamType.DATE: "dates",
    ParamType.NUMBER: "numbers",
    ParamType.QUANTITY: "quantities",
    ParamType.REFERENCE: "references",
    ParamType.URI: "uris",
}
_ROW_LISTS = (*LISTS.values(), "composites")
# Kept by the store as columns of `resources`, so they have no index rows.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})


@dataclass(frozen=True, slots=True)
class CompileStats:
    """How the expressions of the resource types compiled so far were handled."""

    native: int = 0  # every union member compiled to Python
    fallback: int = 0  # at least one member evaluated by fhirpathpy
    failed: int = 0  # not compilable at all: the parameter has no rows
    skipped: int = 0  # special, no expression, or kept as a column
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
    # (walker of [resource], converter, code, the code's bit if it has several entries)
    whole: list[tuple[Walker, Converter, str, int]] = field(default_factory=list)
    stats: CompileStats = CompileStats()
    handlers: dict[str, Handler] = field(default_factory=dict)
    composites: composite.CompositeRows | None = None


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

    def extract(self, resource: dict[str, Any], *, contained: bool = True) -> IndexRows:
        """The index rows of `resource` (a plain FHIR JSON dict), and with `contained` those
        of its contained resources (see _add_contained)."""
        resource_type = resource.get("resourceType")
        if type(resource_type) is not str:
            raise InvalidResource("A resource needs a resourceType", ("resourceType",))
        plan = self._plans.get(resource_type)
        if plan is None or plan.version != self.registry.version:
            plan = self._plan(resource_type)
        rows = IndexRows([], [], [], [], [], [], [], [])
        handlers = plan.handlers
        seen = 0  # the flags handlers returned
        twice = False  # a parameter with several entries may have rows from two of them
        for key, value in resource.items():
            handler = handlers.get(key)
            if handler is not None:
                flags = handler(value, rows)
                if flags:
                    if flags & seen >= _SEVERAL:
                        twice = True
                    seen |= flags
        if plan.whole:
            focus = [resource]
            for walk_whole, convert, code, bit in plan.whole:
                found = walk_whole(focus)
                if found:
                    flags = convert(code, found, rows) | bit
                    if flags & seen >= _SEVERAL:
                        twice = True
                    seen |= flags
        if plan.composites is not None:
            plan.composites.add_rows(resource, rows)
        if twice:
            _dedupe(rows, _LIST_BITS)
        elif seen & _LIST_BITS:
            _dedupe(rows, seen)
        if contained and "contained" in resource:
            self._add_contained(resource["contained"], rows)
        return rows

    def _add_contained(self, contained: Any, rows: IndexRows) -> None:
        """A contained resource's rows, under its container, with codes `#Type.code`
        (`#Medication.code`), plus a `#Type._id` token row of its id: what `_contained`
        searches. The container's own parameters never see them."""
        if type(contained) is not list:
            return
        for item in contained:
            if type(item) is not dict:
                continue
            kind = item.get("resourceType")
            if type(kind) is not str or kind not in self.registry.resource_types:
                continue
            inner = self.extract(item, contained=False)  # a contained one contains nothing
            prefix = f"#{kind}."
            for name in _ROW_LISTS:
                made = getattr(inner, name)
                if made:
                    getattr(rows, name).extend([(prefix + row[0], *row[1:]) for row in made])
            if type(item.get("id")) is str:
                rows.tokens.append((prefix + "_id", None, item["id"], None))

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
            whole: list[tuple[Walker, Converter, str]] = []
            composites: list[composite.Composite] = []
            for code, param in self.registry.for_type(resource_type).items():
                if param.type is ParamType.COMPOSITE and param.expression is not None:
                    try:
                        compiled = composite.compile_composite(
                            param, resource_type, self.registry, self._compile
                        )
                    except PathError as exc:
                        log.warning(
                            "Search parameter %s.%s not indexed: %s", resource_type, code, exc
                        )
                        failed += 1
                        continue
                    composites.append(compiled)
                    if compiled.native:
                        native += 1
                    else:
                        fallback += 1
                        fallbacks.append(f"{resource_type}.{code}: {param.expression}")
                    continue
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
                list_name = LISTS[param.type]
                for branch in path.branches:
                    made = None if branch.sig is None else (branch.sig, convert)
                    for key in branch.keys:
                        entry = (branch.walk, convert, code, made, list_name)
                        plan.by_key.setdefault(key, []).append(entry)
                whole.extend((walk, convert, code) for walk in path.whole)
            plan.stats = CompileStats(native, fallback, failed, skipped, tuple(fallbacks))
            # A bit for each parameter with several entries: two of them may reach one value.
            codes = [e[2] for es in plan.by_key.values() for e in es] + [e[2] for e in whole]
            several = sorted({code for code in codes if codes.count(code) > 1})
            bits = {code: _SEVERAL << i for i, code in enumerate(several)}
            plan.whole = [(walk, convert, code, bits.get(code, 0)) for walk, convert, code in whole]
            plan.handlers = {key: _handler(entries, bits) for key, entries in plan.by_key.items()}
            if composites:
                plan.composites = composite.CompositeRows(composites)
            self._plans[resource_type] = plan
            return plan

    def _compile(self, expression: str, resource_type: str) -> Path:
        return self._compiler.compile(expression, resource_type)


def _handler(entries: list[Entry], bits: dict[str, int]) -> Handler:
    """One function for the entries of a key: (the key's value, rows) -> flags."""
    mask = 0
    codes = [code for _, _, code, _, _ in entries]
    for _, _, code, _, list_name in entries:
        mask |= bits.get(code, 0)
        if codes.count(code) > 1:  # two members of a union under this key
            mask |= BITS[list_name]
    if len(entries) == 1:
        walk, convert, code, _, _ = entries[0]
        if walk is None:
            if not mask:
                return partial(convert, code)  # converters take one value as well as a list

            def single(value: Any, rows: IndexRows) -> int:
                return convert(code, value, rows) | mask

            return single
        only: Walker = walk

        def one(value: Any, rows: IndexRows) -> int:
            found = only(value if type(value) is list else [value])
            if found:
                return convert(code, found, rows) | mask
            return 0

        return one

    if all(list_name == "references" for *_, list_name in entries):
        # `subject` for subject and patient (its where(resolve() is Patient)): parsed once.
        fan: list[tuple[str, str | None]] = []
        for walk, _, code, made, _ in entries:
            target = _where_type(made)
            if walk is not None and target is None:
                break
            fan.append((code, target))
        else:
            return reference.fan_out(tuple(fan), mask, _handler_general(entries, mask))
    return _handler_general(entries, mask)


def _where_type(made: Hashable | None) -> str | None:
    """T if the entry's walk is where(resolve() is T) alone."""
    if type(made) is tuple and len(made[0]) == 1 and made[0][0][0] == "where-type":
        target: str = made[0][0][1]
        return target
    return None


def _handler_general(entries: list[Entry], mask: int) -> Handler:
    # Entries that make their rows as an earlier one does (the same walk and converter, only
    # the code differs) copy that entry's rows instead: the order of the rows is kept.
    makers = [made for *_, made, _ in entries if made is not None]
    if len(set(makers)) == 1 and len(makers) == len(entries):
        return _same(entries, mask)  # `code` for both code and combo-code
    shared = {made for made in makers if makers.count(made) > 1}
    if not shared:
        plain = tuple((walk, convert, code) for walk, convert, code, _, _ in entries)

        def each(value: Any, rows: IndexRows) -> int:
            values = value if type(value) is list else [value]
            flags = mask
            for walk, convert, code in plain:
                found = walk(values) if walk is not None else values
                if found:
                    flags |= convert(code, found, rows)
            return flags

        return each

    slots: dict[Hashable, int] = {}
    # (walk, convert, code, rows list, slot to keep the rows' span in or -1, slot to copy or -1;
    # the code is (code,) for a copy)
    ops: list[tuple[Walker | None, Converter, Any, str, int, int]] = []
    for walk, convert, code, made, rows_list in entries:
        if made in shared and made in slots:
            ops.append((walk, convert, (code,), rows_list, -1, slots[made]))
        elif made in shared:
            slots[made] = len(slots)
            ops.append((walk, convert, code, rows_list, slots[made], -1))
        else:
            ops.append((walk, convert, code, rows_list, -1, -1))
    steps = tuple(ops)
    empty: list[tuple[list[Any], int, int] | None] = [None] * len(slots)

    def sharing(value: Any, rows: IndexRows) -> int:
        values = value if type(value) is list else [value]
        spans = empty.copy()
        flags = mask
        for walk, convert, code, rows_list, keep, copy in steps:
            if copy >= 0:
                span = spans[copy]
                if span is not None:
                    out, start, end = span
                    _copy(out, out[start:end], code)
                continue
            found = walk(values) if walk is not None else values
            if found:
                if keep >= 0:
                    out = getattr(rows, rows_list)
                    start = len(out)
                    flags |= convert(code, found, rows)
                    spans[keep] = out, start, len(out)
                else:
                    flags |= convert(code, found, rows)
        return flags

    return sharing


def _same(entries: list[Entry], mask: int) -> Handler:
    """Entries that all reach the same values the same way: convert once, copy the rows."""
    walk, convert, first, _, list_name = entries[0]
    others = tuple(code for _, _, code, _, _ in entries[1:])
    rows_list = attrgetter(list_name)

    if walk is None:

        def same(value: Any, rows: IndexRows) -> int:
            out = rows_list(rows)
            start = len(out)
            flags = convert(first, value, rows) | mask
            if len(out) > start:
                _copy(out, out[start:], others)
            return flags

        return same

    only: Walker = walk

    def same_walk(value: Any, rows: IndexRows) -> int:
        found = only(value if type(value) is list else [value])
        if not found:
            return 0
        out = rows_list(rows)
        start = len(out)
        flags = convert(first, found, rows) | mask
        if len(out) > start:
            _copy(out, out[start:], others)
        return flags

    return same_walk


def _copy(out: list[Any], made: list[Any], codes: tuple[str, ...]) -> None:
    """Add the rows `made` again under each of `codes`."""
    if not made:
        return
    size = len(made[0])
    for code in codes:
        if size == 4:  # tokens, references, numbers
            for made_code, a, b, c in made:
                if ":" in made_code:  # a modifier's row: `identifier:of-type`
                    out.append((code + made_code[made_code.index(":") :], a, b, c))
                else:
                    out.append((code, a, b, c))
        elif size == 3:  # strings, dates
            for _, a, b in made:
                out.append((code, a, b))
        elif size == 7:  # quantities
            for _, a, b, c, d, e, f in made:
                out.append((code, a, b, c, d, e, f))
        else:
            for row in made:
                out.append((code, *row[1:]))


def _dedupe(rows: IndexRows, lists: int) -> None:
    # Keep the first of equal rows, in the lists whose bit is set.
    if lists & token.REPEATS and len(rows.tokens) > 1:
        rows.tokens = list(dict.fromkeys(rows.tokens))
    if lists & string.REPEATS and len(rows.strings) > 1:
        rows.strings = list(dict.fromkeys(rows.strings))
    if lists & date.REPEATS and len(rows.dates) > 1:
        rows.dates = list(dict.fromkeys(rows.dates))
    if lists & reference.REPEATS and len(rows.references) > 1:
        rows.references = list(dict.fromkeys(rows.references))
    if lists & quantity.REPEATS and len(rows.quantities) > 1:
        rows.quantities = list(dict.fromkeys(rows.quantities))
    if lists & number.REPEATS and len(rows.numbers) > 1:
        rows.numbers = list(dict.fromkeys(rows.numbers))
    if lists & uri.REPEATS and len(rows.uris) > 1:
        rows.uris = list(dict.fromkeys(rows.uris))
