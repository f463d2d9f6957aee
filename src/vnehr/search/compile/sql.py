"""Search IR -> one SQL statement over `resources r` (both backends, `?` placeholders).

A row leaf becomes a condition on the resource: the most selective leaf of an AND drives
(`r.rkey IN (SELECT x.rkey FROM idx_... x WHERE x.sp = ? AND ...)`, answered by the index
table's lookup index); the others are probes of the rows of that resource
(`EXISTS (... WHERE x.rkey = r.rkey ...)`, answered by the rkey index). Chains join the
referenced resource, `_has` the referring ones. Sorting uses per-resource sort values
(`MIN`/`MAX` of the rows of the sort parameter), missing values last, then `rkey`, so the
order is total and paging cursors are exact.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vnehr.errors import InvalidRequest
from vnehr.fhir.text import fold
from vnehr.search import ir
from vnehr.search.compile import composite, date, number, reference, string, token, uri
from vnehr.search.compile.access import AccessCompiler
from vnehr.search.index_hash import value_hash
from vnehr.search.query import patient_data

SpId = Callable[[str, str], "int | None"]

TABLES: dict[str, str] = {
    "token": token.TABLE,
    "string": string.TABLE,
    "date": date.TABLE,
    "number": number.TABLES["number"],
    "quantity": number.TABLES["quantity"],
    "reference": reference.TABLE,
    "uri": uri.TABLE,
    "composite": "idx_composite",
}
# The column a parameter type sorts by (ascending, descending).
_SORT_COLUMNS: dict[str, tuple[str, str]] = {
    "token": ("code", "code"),
    "string": ("folded", "folded"),
    "date": ("low", "high"),
    "number": ("value", "value"),
    "quantity": ("value", "value"),
    "reference": ("target_id", "target_id"),
    "uri": ("uri", "uri"),
}


def _row_condition(leaf: ir.Leaf, x: str) -> tuple[str, list[Any]]:
    if isinstance(leaf, ir.TokenLeaf | ir.TokenTextLeaf):
        return token.row_condition(leaf, x)
    if isinstance(leaf, ir.StringLeaf):
        return string.row_condition(leaf, x)
    if isinstance(leaf, ir.DateLeaf):
        return date.row_condition(leaf, x)
    if isinstance(leaf, ir.NumberLeaf):
        return number.row_condition(leaf, x)
    if isinstance(leaf, ir.ReferenceLeaf):
        return reference.row_condition(leaf, x)
    if isinstance(leaf, ir.UriLeaf):
        return uri.row_condition(leaf, x)
    raise TypeError(f"not a row leaf: {leaf!r}")


# Rows an estimate counts at most: enough to tell a selective condition from a common one.
ESTIMATE_CAP = 1000
_MANY = ESTIMATE_CAP + 1
FEW = 100  # rows a driver may find without looking for a better one
INDEX_CAP = 100_000  # entries counted at most in a value index alone


def _index_only(leaf: ir.Leaf, sp: int) -> tuple[str, list[Any]] | None:
    """A condition on the leaf's rows that its table's value index answers alone (an
    estimate: a little wider than the leaf's), or None."""
    p = leaf.param
    match leaf:
        case ir.TokenLeaf(code=code) if code is not None:
            return "x.hv = ?", [value_hash(f"{p.res_type}.{p.code}", code)]
        case ir.StringLeaf(mode="start", value=value):
            sql, args = string.prefix_range("x.folded", value)
            return f"x.sp = ? AND {sql}", [sp, *args]
        case ir.StringLeaf(mode="exact", value=value):
            return "x.sp = ? AND x.folded = ?", [sp, fold(value)]
        case ir.ReferenceLeaf(target_id=target_id) if target_id is not None:
            return "x.target_id = ? AND x.sp = ?", [target_id, sp]
        case ir.DateLeaf() | ir.NumberLeaf() if p.type != "quantity":
            sql, args = _row_condition(leaf, "x")
            return f"x.sp = ? AND ({sql})", [sp, *args]
        case _:
            return None


# A column of the counted key's resource row other than its key (see index_count).
_ROW_COLUMN = re.compile(r"\bd\.(?!rkey\b)")


def _rank(node: ir.Node) -> int:
    """How few resources a condition is expected to leave (lower: fewer): who drives."""
    match node:
        case ir.IdLeaf():
            return 0
        case ir.ReferenceLeaf() | ir.InList():
            return 1
        case ir.TokenLeaf(param=p, code=code) if code is not None:
            return 2 if "identifier" in p.code else 4
        case ir.StringLeaf(mode="exact") | ir.UriLeaf(mode="eq"):
            return 2
        case ir.Chain():
            return 3
        case ir.StringLeaf(mode="start"):
            return 4
        case ir.CompositeLeaf():
            return 4
        case ir.Has():
            return 5
        case ir.DateLeaf() | ir.NumberLeaf():
            return 6
        case ir.Or(items=items):
            return max(_rank(i) for i in items) + 1
        case ir.And(items=items):
            return min(_rank(i) for i in items)
        case _:
            return 9


def _drives(node: ir.Node) -> bool:
    """Whether the node can drive: its rows are found by an index of the value."""
    match node:
        case ir.TokenLeaf(code=code):
            return code is not None
        case ir.StringLeaf(mode=mode):
            return mode != "contains"
        case ir.UriLeaf(mode=mode):
            return mode != "above"
        case ir.ReferenceLeaf() | ir.DateLeaf() | ir.NumberLeaf() | ir.IdLeaf():
            return True
        case ir.Chain() | ir.Has() | ir.InList() | ir.CompositeLeaf():
            return True
        case ir.Or(items=items):
            return all(_drives(i) for i in items)
        case ir.And(items=items):
            return any(_drives(i) for i in items)
        case _:
            return False


class SqlCompiler:
    """Compiles IR nodes; `sp_id` gives the id of (type, code) or None if it has no rows."""

    def __init__(
        self,
        sp_id: SpId,
        *,
        false: Any,
        indexed_by: Callable[[str], str] | None = None,
        unindexed: Callable[[str], str] | None = None,
        count_rows: Callable[[str, list[Any]], int] | None = None,
        fence: str = "",
        index_counts: bool = True,
    ) -> None:
        self.sp_id = sp_id
        self.false = false
        self.indexed_by = indexed_by or (lambda index: "")
        self.unindexed = unindexed or (lambda expr: expr)
        self.count_rows = count_rows
        self.fence = fence  # ends a subquery the planner must not flatten
        # Whether counting many entries of a value index is cheap (SQLite: the index alone;
        # PostgreSQL reads the table too unless vacuumed, and plans joins by itself).
        self.index_counts = index_counts
        self._n = 0
        self._rkey_driven: set[str] = set()  # resource aliases driven by `rkey IN (...)`
        self._fenced = False  # probes fenced (inside a per-row _has probe)

    def type_condition(self, r: str) -> str:
        """`r.res_type = ?`; where an `rkey IN (...)` drives, a condition that must not use
        the (res_type, res_id) index: SQLite would rather scan every resource of the type
        and test each against the list than look the listed keys up."""
        column = f"{r}.res_type"
        return f"{self.unindexed(column) if r in self._rkey_driven else column} = ?"

    def _alias(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    # -- conditions on a resource row aliased `r`
    def condition(self, node: ir.Node, r: str, *, drive: bool = True) -> tuple[str, list[Any]]:
        match node:
            case ir.And(items=items):
                ordered = self._order(items)
                parts, args = [], []
                driving = drive
                for item in ordered:
                    use = driving and _drives(item)
                    sql, a = self.condition(item, r, drive=use)
                    if use:
                        driving = False
                    parts.append(sql)
                    args += a
                return "(" + " AND ".join(parts) + ")", args
            case ir.Or(items=items):
                return self._or(items, r, drive)
            case ir.Not(item=item):
                sql, args = self.condition(item, r, drive=False)
                return f"NOT {sql}", args
            case ir.IdLeaf(ids=ids):
                marks = ", ".join("?" for _ in ids)
                return f"{r}.res_id IN ({marks})", list(ids)
            case ir.LastUpdatedLeaf(prefix=prefix, low=low, high=high):
                col = f"{r}.last_updated"
                sql, args = date.range_condition(prefix, col, col, low, high)
                return f"({sql})", args
            case ir.TypeLeaf(types=types):
                marks = ", ".join("?" for _ in types)
                return f"{r}.res_type IN ({marks})", list(types)
            case ir.Nothing():
                return "1 = 0", []
            case ir.Missing(param=p, missing=missing):
                sp = self.sp_id(p.res_type, p.code)
                if sp is None:
                    return ("1 = 1" if missing else "1 = 0"), []
                x = self._alias("x")
                table = TABLES[p.type]
                sql = (
                    f"EXISTS (SELECT 1 FROM {table} {x}{self.indexed_by(table + '_rkey')} "
                    f"WHERE {x}.rkey = {r}.rkey AND {x}.sp = ?)"
                )
                return (f"NOT {sql}" if missing else sql), [sp]
            case ir.Chain():
                return self._chain(node, r)
            case ir.Has():
                return self._has(node, r)
            case ir.InList(list_id=list_id):
                return self._in_list(list_id, r)
            case ir.Access():
                patient = patient_data()
                return AccessCompiler(node, self.sp_id, self._alias, patient).condition(r)
            case ir.CompositeLeaf():
                return self._rows([node], r, drive)
            case _:
                return self._rows([node], r, drive)

    # -- choosing who drives
    def _order(self, items: Sequence[ir.Node]) -> list[ir.Node]:
        """The items of an AND, the one to drive first: by rank, and where several could
        drive, by how many rows each finds (counted up to ESTIMATE_CAP, when the store can)."""
        ordered = sorted(items, key=_rank)
        candidates = [i for i in ordered if _drives(i)]
        if self.count_rows is None or len(candidates) < 2:
            return ordered
        best, fewest = candidates[0], _MANY + 1
        for item in candidates:  # by rank: a few rows is good enough, no need to look on
            found = self.estimate(item)
            if found < fewest:
                best, fewest = item, found
            if fewest <= FEW:
                break
        if fewest > ESTIMATE_CAP and self.index_counts:  # all common: count on, index only
            best = min(candidates, key=lambda item: self.estimate(item, INDEX_CAP))
        return [best, *(i for i in ordered if i is not best)]

    def estimate(self, node: ir.Node, cap: int = 0) -> int:
        """About how many index rows (or resources) `node` finds, counted up to `cap` + 1
        (ESTIMATE_CAP by default; a larger cap only where a value index counts alone)."""
        cap = cap or ESTIMATE_CAP
        match node:
            case ir.IdLeaf(ids=ids):
                return len(ids)
            case ir.And(items=items):
                return min((self.estimate(i, cap) for i in items if _drives(i)), default=cap + 1)
            case ir.Or(items=items):
                return min(sum(self.estimate(i, cap) for i in items), cap + 1)
            case ir.Chain(inner=inner) | ir.Has(inner=inner):
                return self.estimate(inner, cap)
            case ir.InList():
                return _rank(node)
            case _ if isinstance(node, ir.ROW_LEAVES) and _drives(node):
                return self._count(node, cap)
            case _:
                return cap + 1

    def _count(self, leaf: ir.Leaf, cap: int) -> int:
        """The rows of `leaf`, up to `cap` + 1: counted in its table's value index alone
        where it can be, else with the whole condition (and then at most ESTIMATE_CAP)."""
        assert self.count_rows is not None
        p = leaf.param
        sp = self.sp_id(p.res_type, p.code)
        if sp is None:
            return 0
        found = _index_only(leaf, sp)
        if found is not None:
            sql, args = found
        else:
            sql, args = _row_condition(leaf, "x")
            sql, args, cap = f"x.sp = ? AND ({sql})", [sp, *args], min(cap, ESTIMATE_CAP)
        return self.count_rows(
            f"SELECT 1 FROM {TABLES[p.type]} x WHERE {sql} LIMIT {cap + 1}", args
        )

    # -- counting
    def index_count(self, query: ir.Query) -> tuple[str, list[Any]] | None:
        """`SELECT COUNT(*)` of the matches read from the index tables alone, or None when
        a condition needs the resource row (ids, _lastUpdated, a chain's or _has's join).

        Index rows exist only for the current version of undeleted resources, and a
        parameter id belongs to one resource type: the driving rows' distinct keys are the
        matching resources, the other conditions probe by key. With the covering indexes of
        migration 0004 neither the driver nor the probes read a table row.
        """
        if query.where is None or len(query.res_types) != 1:
            return None
        items = query.where.items if isinstance(query.where, ir.And) else (query.where,)
        ordered = self._order(items)
        first = ordered[0]
        if not (isinstance(first, ir.ROW_LEAVES) and _drives(first)):
            return None
        p = first.param
        if p.res_type != query.res_types[0]:
            return None
        rest = [self.condition(item, "d", drive=False) for item in ordered[1:]]
        if any(_ROW_COLUMN.search(sql) for sql, _ in rest):
            return None
        sp = self.sp_id(p.res_type, p.code)
        if sp is None:
            return "SELECT 0", []
        x = self._alias("x")
        if isinstance(first, ir.CompositeLeaf):
            cond, args = self._composite_condition(first, x)
        else:
            cond, args = _row_condition(first, x)
        sql = (
            f"SELECT COUNT(*) FROM (SELECT DISTINCT {x}.rkey FROM {TABLES[p.type]} {x} "
            f"WHERE {x}.sp = ? AND ({cond})) d"
        )
        args = [sp, *args]
        if rest:
            sql += " WHERE " + " AND ".join(c for c, _ in rest)
            args += [a for _, a_list in rest for a in a_list]
        return sql, args

    def _or(self, items: Sequence[ir.Node], r: str, drive: bool) -> tuple[str, list[Any]]:
        # Leaves of one parameter: one look at its rows with the conditions ORed.
        groups: dict[tuple[str, str, str], list[ir.Leaf]] = {}
        others: list[ir.Node] = []
        for item in items:
            if isinstance(item, ir.ROW_LEAVES):
                p = item.param
                groups.setdefault((p.res_type, p.code, p.type), []).append(item)
            else:
                others.append(item)
        parts, args = [], []
        for leaves in groups.values():
            sql, a = self._rows(leaves, r, drive and all(_drives(x) for x in leaves))
            parts.append(sql)
            args += a
        for item in others:
            sql, a = self.condition(item, r, drive=drive and _drives(item))
            parts.append(sql)
            args += a
        return "(" + " OR ".join(parts) + ")", args

    def _rows(self, leaves: Sequence[ir.Leaf], r: str, drive: bool) -> tuple[str, list[Any]]:
        """Some row of the leaves' parameter satisfies one of the leaves."""
        p = leaves[0].param
        sp = self.sp_id(p.res_type, p.code)
        if sp is None:
            return "1 = 0", []
        table = TABLES[p.type]
        x = self._alias("x")
        conds, args = [], []
        for leaf in leaves:
            if isinstance(leaf, ir.CompositeLeaf):
                sql, a = self._composite_condition(leaf, x)
            else:
                sql, a = _row_condition(leaf, x)
            conds.append(f"({sql})")
            args += a
        where = " OR ".join(conds)
        if drive:
            self._rkey_driven.add(r)
            return (
                f"{r}.rkey IN (SELECT {x}.rkey FROM {table} {x} WHERE {x}.sp = ? AND ({where}))",
                [sp, *args],
            )
        return (
            f"EXISTS (SELECT 1 FROM {table} {x}{self.indexed_by(table + '_rkey')} "
            f"WHERE {x}.rkey = {r}.rkey AND {x}.sp = ? AND ({where})"
            f"{self.fence if self._fenced else ''})",
            [sp, *args],
        )

    def _composite_condition(self, leaf: ir.CompositeLeaf, x: str) -> tuple[str, list[Any]]:
        return composite.row_condition(leaf, x)

    def _chain(self, node: ir.Chain, r: str) -> tuple[str, list[Any]]:
        p = node.param
        sp = self.sp_id(p.res_type, p.code)
        if sp is None:
            return "1 = 0", []
        x, t = self._alias("x"), self._alias("t")
        inner, args = self.condition(node.inner, t)
        self._rkey_driven.add(r)
        return (
            f"{r}.rkey IN (SELECT {x}.rkey FROM resources {t} JOIN idx_reference {x} "
            f"ON {x}.target_id = {t}.res_id AND {x}.sp = ? AND {x}.target_type = {t}.res_type "
            f"WHERE {self.type_condition(t)} AND {t}.deleted = ? AND {inner})",
            [sp, node.target_type, self.false, *args],
        )

    def _has(self, node: ir.Has, r: str) -> tuple[str, list[Any]]:
        ref = node.ref
        sp = self.sp_id(ref.res_type, ref.code)
        if sp is None:
            return "1 = 0", []
        x, s = self._alias("x"), self._alias("s")
        if self.count_rows is not None and self.estimate(node.inner) > ESTIMATE_CAP:
            # Many referring resources: look for one per candidate, in the candidates' order
            # (so a page stops early), instead of listing them all. The fence keeps
            # PostgreSQL from turning the probe into a join over all of them.
            # Its own conditions are fenced probes too: unfenced, PostgreSQL looked up every
            # referring resource of the code for each candidate (56 s at 1M resources).
            fenced, self._fenced = self._fenced, True
            try:
                inner, args = self.condition(node.inner, s, drive=False)
            finally:
                self._fenced = fenced
            self._rkey_driven.add(r)
            return (
                f"EXISTS (SELECT 1 FROM idx_reference {x} JOIN resources {s} "
                f"ON {s}.rkey = {x}.rkey WHERE {x}.target_id = {r}.res_id AND {x}.sp = ? "
                f"AND {x}.target_type = ? AND {s}.res_type = ? AND {s}.deleted = ? "
                f"AND {inner}{self.fence})",
                [sp, node.res_type, ref.res_type, self.false, *args],
            )
        inner, args = self.condition(node.inner, s)
        return (
            f"{r}.res_id IN (SELECT {x}.target_id FROM resources {s} JOIN idx_reference {x} "
            f"ON {x}.rkey = {s}.rkey AND {x}.sp = ? "
            f"WHERE {self.type_condition(s)} AND {s}.deleted = ? AND {x}.target_type = ? "
            f"AND {inner})",
            [sp, ref.res_type, self.false, node.res_type, *args],
        )

    def _in_list(self, list_id: str, r: str) -> tuple[str, list[Any]]:
        sp = self.sp_id("List", "item")
        if sp is None:
            return "1 = 0", []
        x, lst, item = self._alias("x"), self._alias("l"), self._alias("i")
        self._rkey_driven.add(r)
        return (
            f"{r}.rkey IN (SELECT {item}.rkey FROM resources {lst} JOIN idx_reference {x} "
            f"ON {x}.rkey = {lst}.rkey AND {x}.sp = ? JOIN resources {item} "
            f"ON {item}.res_type = {x}.target_type AND {item}.res_id = {x}.target_id "
            f"WHERE {lst}.res_type = 'List' AND {lst}.res_id = ? AND {lst}.deleted = ?)",
            [sp, list_id, self.false],
        )

    # -- sort values
    def sort_value(
        self, key: ir.SortKey, res_types: Sequence[str], r: str
    ) -> tuple[str, list[Any]]:
        if key.param is None:
            return f"{r}.{key.column}", []
        p = key.param
        sps = [sp for t in res_types if (sp := self.sp_id(t, p.code)) is not None]
        if not sps:
            # No resource has a value: every sort value is missing. Not a bare NULL, which
            # PostgreSQL rejects in ORDER BY ("non-integer constant").
            return "CAST(NULL AS INTEGER)", []
        asc, desc = _SORT_COLUMNS[p.type]
        column, agg = (desc, "MAX") if key.descending else (asc, "MIN")
        x = self._alias("x")
        table = TABLES[p.type]
        marks = ", ".join("?" for _ in sps)
        return (
            f"(SELECT {agg}({x}.{column}) FROM {table} {x}{self.indexed_by(table + '_rkey')} "
            f"WHERE {x}.rkey = {r}.rkey AND {x}.sp IN ({marks}))",
            sps,
        )


# -- paging cursors: the sort values and rkey of a row, and the direction to go from it


@dataclass(frozen=True, slots=True)
class Cursor:
    values: tuple[Any, ...]  # the sort values of the row, then its rkey
    backwards: bool  # page before the row (a `previous` link) instead of after it

    def encode(self) -> str:
        raw = json.dumps([("b" if self.backwards else "a"), *self.values], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str, keys: Sequence[ir.SortKey]) -> Cursor:
    """The cursor of a `_cursor` parameter for a query sorted by `keys`; 400 when it is not
    one (forged, or of another query): each value must be of its sort key's kind."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw)
        if (
            not isinstance(data, list)
            or len(data) != len(keys) + 2
            or data[0] not in ("a", "b")
            or not _integer(data[-1])
            or not all(_of_kind(v, k) for v, k in zip(data[1:-1], keys, strict=True))
        ):
            raise ValueError
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest(f"Invalid paging cursor {text!r}", ("_cursor",)) from None
    return Cursor(tuple(data[1:]), data[0] == "b")


def _integer(value: Any) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


def _of_kind(value: Any, key: ir.SortKey) -> bool:
    """Whether `value` can be a sort value of `key` (None: a missing one)."""
    if value is None:
        return True
    kind = key.param.type if key.param is not None else key.column
    if kind in ("date", "last_updated"):
        return _integer(value)
    if kind in ("number", "quantity"):
        return _integer(value) or (type(value) is float and math.isfinite(value))
    return type(value) is str


def after_condition(
    exprs: Sequence[tuple[str, list[Any]]],
    descending: Sequence[bool],
    cursor: Cursor,
    rkey: str,
) -> tuple[str, list[Any]]:
    """Rows strictly after (or, backwards, before) the cursor's row in the sort order.

    The order: each key ascending or descending with missing values last, then rkey
    ascending. Backwards every comparison is reversed (missing values come first).
    """
    back = cursor.backwards
    *values, last_rkey = cursor.values
    ors: list[str] = []
    args: list[Any] = []
    prefix: list[str] = []
    prefix_args: list[Any] = []
    for (expr, expr_args), desc, value in zip(exprs, descending, values, strict=True):
        greater = desc == back  # going forward on an ascending key: bigger values follow
        op = ">" if greater else "<"
        if value is None:
            # Missing values sort last: nothing follows them on this key going forward;
            # going backwards every present value comes before.
            step = (f"{expr} IS NOT NULL", list(expr_args)) if back else None
            equal = (f"{expr} IS NULL", list(expr_args))
        else:
            if back:
                step = (f"{expr} {op} ?", [*expr_args, value])
            else:
                step = (f"({expr} {op} ? OR {expr} IS NULL)", [*expr_args, value, *expr_args])
            equal = (f"{expr} = ?", [*expr_args, value])
        if step is not None:
            ors.append(" AND ".join([*prefix, step[0]]))
            args += prefix_args + step[1]
        prefix.append(equal[0])
        prefix_args += equal[1]
    ors.append(" AND ".join([*prefix, f"{rkey} {'<' if back else '>'} ?"]))
    args += [*prefix_args, last_rkey]
    return "(" + " OR ".join(f"({o})" for o in ors) + ")", args


def order_by(exprs: Sequence[str], descending: Sequence[bool], rkey: str, backwards: bool) -> str:
    parts = []
    for expr, desc in zip(exprs, descending, strict=True):
        nulls_first = backwards
        direction = "DESC" if desc != backwards else "ASC"
        parts.append(f"({expr} IS NULL) {'DESC' if nulls_first else 'ASC'}")
        parts.append(f"{expr} {direction}")
    parts.append(f"{rkey} {'DESC' if backwards else 'ASC'}")
    return ", ".join(parts)
