"""The search IR evaluated in memory on resources and their index rows.

A reference implementation of the SQL the compilers in vnehr.search.compile generate, leaf
for leaf (the property tests check that both agree), also usable where one resource must be
checked against a condition without a database (access policies). A resource matches a leaf
when one of its IndexRows of the leaf's parameter satisfies it; `Chain`, `Has` and `InList`
look at other resources through a `Resolver`.

    corpus = Corpus(Extractor(registry).extract)
    corpus.add(resource)                       # in insertion order, as the store's rkeys
    ids = [r["id"] for r in corpus.search(query)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from vnehr.fhir.instant import now_micros, parse_range
from vnehr.fhir.text import fold
from vnehr.search import ir
from vnehr.search.index_rows import IndexRows

_DAY = 86_400_000_000
# The IndexRows list of each parameter type, and the column sort keys use (ascending,
# descending), as compile/sql.py's _SORT_COLUMNS: a position in the row tuple.
_LISTS = {
    "token": "tokens",
    "string": "strings",
    "date": "dates",
    "number": "numbers",
    "quantity": "quantities",
    "reference": "references",
    "uri": "uris",
    "composite": "composites",
}
_SORT_COLUMNS: dict[str, tuple[int, int]] = {
    "token": (2, 2),  # code
    "string": (1, 1),  # folded
    "date": (1, 2),  # low, high
    "number": (1, 1),  # value
    "quantity": (1, 1),
    "reference": (2, 2),  # target id
    "uri": (1, 1),
}


@dataclass(frozen=True, slots=True)
class Indexed:
    """A current (not deleted) resource, its index rows, and its place in insertion order."""

    resource: dict[str, Any]
    rows: IndexRows
    order: int = 0

    @property
    def res_type(self) -> str:
        return str(self.resource["resourceType"])

    @property
    def res_id(self) -> str:
        return str(self.resource.get("id", ""))

    @property
    def last_updated(self) -> int | None:
        meta = self.resource.get("meta")
        text = meta.get("lastUpdated") if isinstance(meta, dict) else None
        return parse_range(text)[0] if isinstance(text, str) else None


class Resolver(Protocol):
    """The other resources `Chain`, `Has` and `InList` look at."""

    def get(self, res_type: str, res_id: str) -> Indexed | None: ...
    def of_type(self, res_type: str) -> Iterable[Indexed]: ...


def matches(node: ir.Node, resource: dict[str, Any], rows: IndexRows, resolve: Resolver) -> bool:
    """Whether `resource` (with its index `rows`) satisfies `node`."""
    return _match(node, Indexed(resource, rows), resolve)


def _match(node: ir.Node, r: Indexed, resolve: Resolver) -> bool:
    match node:
        case ir.And(items=items):
            return all(_match(i, r, resolve) for i in items)
        case ir.Or(items=items):
            return any(_match(i, r, resolve) for i in items)
        case ir.Not(item=item):
            return not _match(item, r, resolve)
        case ir.IdLeaf(ids=ids):
            return r.res_id in ids
        case ir.LastUpdatedLeaf(prefix=prefix, low=low, high=high):
            lu = r.last_updated
            return lu is not None and date_holds(prefix, lu, lu, low, high)
        case ir.TypeLeaf(types=types):
            return r.res_type in types
        case ir.Nothing():
            return False
        case ir.Missing(param=p, missing=missing):
            return not _rows(r.rows, p) if missing else bool(_rows(r.rows, p))
        case ir.Chain(param=p, target_type=target_type, inner=inner):
            for row in _rows(r.rows, p):
                if row[1] != target_type or row[2] is None:
                    continue
                target = resolve.get(target_type, row[2])
                if target is not None and _match(inner, target, resolve):
                    return True
            return False
        case ir.Has(res_type=res_type, ref=ref, inner=inner):
            if r.res_type != res_type:
                return False
            return any(
                _refers(s, ref.code, r) and _match(inner, s, resolve)
                for s in resolve.of_type(ref.res_type)
            )
        case ir.InList(list_id=list_id):
            lst = resolve.get("List", list_id)
            return lst is not None and _refers(lst, "item", r)
        case ir.CompositeLeaf(param=p, parts=parts):
            return any(composite_holds(parts, row) for row in _rows(r.rows, p))
        case ir.Access():
            # The policy needs the access rules in the database: only SQL evaluates it.
            raise NotImplementedError("the access policy is evaluated by the SQL backends")
        case _:
            return any(row_holds(node, row) for row in _rows(r.rows, node.param))


def _refers(source: Indexed, code: str, target: Indexed) -> bool:
    """Whether a `code` reference of `source` points at `target` (by type and id)."""
    return any(
        row[0] == code and row[1] == target.res_type and row[2] == target.res_id
        for row in source.rows.references
    )


def _rows(rows: IndexRows, p: ir.Param) -> list[tuple[Any, ...]]:
    name = _LISTS.get(p.type)
    if name is None:
        return []
    return [row for row in getattr(rows, name) if row[0] == p.code]


# -- one row against one leaf (the rows as vnehr.search.index_rows documents them)


def row_holds(leaf: ir.Leaf, row: tuple[Any, ...]) -> bool:
    match leaf:
        case ir.TokenTextLeaf(text=text):
            return row[3] is not None and row[3].startswith(text)
        case ir.TokenLeaf(system=system, code=code):
            _, row_system, row_code, _ = row
            if code is None:
                return row_system == system
            if row_code != code:
                return False
            if system is None:
                return True
            return row_system is None if system == "" else row_system == system
        case ir.StringLeaf(value=value, mode=mode):
            _, folded, exact = row
            if mode == "exact":
                return bool(folded == fold(value) and exact == value)
            if mode == "contains":
                return value in folded
            return bool(folded.startswith(value))
        case ir.DateLeaf(prefix=prefix, low=low, high=high):
            return date_holds(prefix, row[1], row[2], low, high)
        case ir.NumberLeaf():
            return _number_holds(leaf, row)
        case ir.ReferenceLeaf(target_type=target_type, target_id=target_id, url=url):
            _, row_type, row_id, row_url = row
            if url is not None:
                return bool(row_url == url)
            return row_id == target_id and (target_type is None or row_type == target_type)
        case ir.UriLeaf(uri=uri, mode=mode):
            value = row[1]
            if mode == "below":
                return bool(value.startswith(uri))
            if mode == "above":
                return uri.startswith(value)
            return bool(value == uri)
    raise TypeError(f"not a row leaf: {leaf!r}")


def date_holds(prefix: str, lo: float, hi: float, low: int, high: int) -> bool:
    """A value's range [lo, hi] against a search range [low, high] (compile/date.py)."""
    eq = lo >= low and hi <= high
    match prefix:
        case "eq":
            return eq
        case "ne":
            return not eq
        case "gt":
            return hi > high
        case "lt":
            return lo < low
        case "ge":
            return hi > high or eq
        case "le":
            return lo < low or eq
        case "sa":
            return lo > high
        case "eb":
            return hi < low
        case _:  # ap
            slack = max(abs(now_micros() - (low + high) // 2) // 10, _DAY)
            return lo <= high + slack and hi >= low - slack


def _number_holds(leaf: ir.NumberLeaf, row: tuple[Any, ...]) -> bool:
    if not _value_holds_number(leaf, row[1]):
        return False
    if leaf.param.type != "quantity":
        return True
    _, _, _, _, system, code, unit = row
    return _unit_holds(leaf, system, code, unit)


def _value_holds_number(leaf: ir.NumberLeaf, v: float) -> bool:
    """compile/number.py's condition on the value."""
    match leaf.prefix:
        case "eq":
            return leaf.low <= v < leaf.high
        case "ne":
            return not (leaf.low <= v < leaf.high)
        case "gt" | "sa":
            return v > leaf.value
        case "lt" | "eb":
            return v < leaf.value
        case "ge":
            return v >= leaf.value
        case "le":
            return v <= leaf.value
        case _:  # ap
            slack = abs(leaf.value) * 0.1 or (leaf.high - leaf.low) / 2
            return leaf.value - slack <= v <= leaf.value + slack


def _unit_holds(leaf: ir.NumberLeaf, system: Any, code: Any, unit: Any) -> bool:
    if leaf.unit_only:
        return leaf.code in (code, unit)
    return (leaf.system is None or system == leaf.system) and (
        leaf.code is None or code == leaf.code
    )


def composite_holds(parts: tuple[ir.Leaf, ...], row: tuple[Any, ...]) -> bool:
    """A composite row (extract/composite.py documents its columns) against the components
    of a search value, as compile/composite.py compares them."""
    _, _, c1_system, c1_code, c2_low, c2_high, c2_system, c2_code, c2_text, c3_low, c3_high = row
    first, *others = parts
    places = ((c2_system, c2_code, c2_text, c2_low, c2_high), (None, None, None, c3_low, c3_high))
    if len(others) > len(places) or not _first_holds(first, c1_system, c1_code):
        return False
    return all(_value_holds(leaf, *place) for leaf, place in zip(others, places, strict=False))


def _first_holds(leaf: ir.Leaf, system: str | None, code: str | None) -> bool:
    match leaf:
        case ir.TokenLeaf():
            return row_holds(leaf, ("", system, code, None))
        case ir.ReferenceLeaf(target_type=target_type, target_id=target_id, url=url):
            target = url if url is not None else target_id
            if target is None or code != target:
                return False
            return url is not None or target_type is None or system == target_type
        case ir.UriLeaf():
            return code is not None and row_holds(leaf, ("", code))
    return False


def _value_holds(
    leaf: ir.Leaf,
    system: str | None,
    code: str | None,
    text: str | None,
    low: float | None,
    high: float | None,
) -> bool:
    """A second or third component on the columns of its place (None: not there)."""
    if isinstance(leaf, ir.NumberLeaf):
        if low is None or high is None or not _value_holds_number(leaf, (low + high) / 2):
            return False
        if leaf.param.type != "quantity" or (leaf.system is None and leaf.code is None):
            return True
        return _unit_holds(leaf, system, code, text)
    if isinstance(leaf, ir.DateLeaf):
        if low is None or high is None:
            return False
        return date_holds(leaf.prefix, low, high, leaf.low, leaf.high)
    match leaf:
        case ir.TokenLeaf():
            return row_holds(leaf, ("", system, code, None))
        case ir.StringLeaf():
            return text is not None and row_holds(leaf, ("", text, text))
        case ir.ReferenceLeaf(url=url):
            if url is not None:
                return code == url
            return row_holds(leaf, ("", system, code, None))
        case ir.UriLeaf():
            return code is not None and row_holds(leaf, ("", code))
    return False


# -- a collection of resources to search, with the store's order


class Corpus:
    """Resources in insertion order (a later `add` of the same id replaces, in place)."""

    def __init__(self, extract: Callable[[dict[str, Any]], IndexRows]) -> None:
        self.extract = extract
        self._items: dict[tuple[str, str], Indexed] = {}
        self._next = 0

    def add(self, resource: dict[str, Any]) -> None:
        key = (str(resource["resourceType"]), str(resource["id"]))
        known = self._items.get(key)
        order = known.order if known is not None else self._next
        self._next += known is None
        self._items[key] = Indexed(resource, self.extract(resource), order)

    def remove(self, res_type: str, res_id: str) -> None:
        self._items.pop((res_type, res_id), None)

    def __iter__(self) -> Iterator[Indexed]:
        return iter(sorted(self._items.values(), key=lambda i: i.order))

    def get(self, res_type: str, res_id: str) -> Indexed | None:
        return self._items.get((res_type, res_id))

    def of_type(self, res_type: str) -> Iterable[Indexed]:
        return [i for i in self if i.res_type == res_type]

    def search(self, query: ir.Query) -> list[dict[str, Any]]:
        """The matches of `query` in the store's order (compile/sql.py: sort values, missing
        last, then insertion order)."""
        found = [
            i
            for i in self
            if (not query.res_types or i.res_type in query.res_types)
            and (query.where is None or _match(query.where, i, self))
        ]
        for key in reversed(query.sort):  # stable sorts, the last key first
            values = [sort_value(key, i) for i in found]
            present = [(v, i) for v, i in zip(values, found, strict=True) if v is not None]
            present.sort(key=lambda pair: pair[0], reverse=key.descending)  # still stable
            missing = [i for v, i in zip(values, found, strict=True) if v is None]
            found = [i for _, i in present] + missing
        return [i.resource for i in found]


def sort_value(key: ir.SortKey, item: Indexed) -> Any:
    """The value `item` sorts by under `key`: MIN (ascending) or MAX (descending) of the
    sort column of its rows of the parameter; None when it has none."""
    if key.param is None:
        return item.last_updated if key.column == "last_updated" else item.res_id
    asc, desc = _SORT_COLUMNS[key.param.type]
    column = desc if key.descending else asc
    values = [row[column] for row in _rows(item.rows, key.param) if row[column] is not None]
    if not values:
        return None
    return max(values) if key.descending else min(values)
