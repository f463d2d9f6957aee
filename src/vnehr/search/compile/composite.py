"""Composite leaves -> conditions on idx_composite rows (https://hl7.org/fhir/R4/search.html#composite).

Every component of the search value must hold on one row (extract/composite.py documents the
columns). The first is found by its hash: a token's code, a reference's target id or url, a
uri, hashed with the composite's own code (`Observation.code-value-quantity`), then checked in
c1_code/c1_system as compile/token.py and compile/reference.py check theirs. The second (c2_*)
and third (c3_*) are compared in place:

- a number or quantity with compile/number.py's prefixes, its stored value being the midpoint
  (low + high) / 2 of its stored range, which extraction centres exactly on the value (so
  `gt130` does not match 130, `eq130` matches 130.4, as on idx_quantity.value); the unit as
  number.py matches it, against c2_system, c2_code and c2_text (the unit as written);
- a date with compile/date.py's range_condition on the stored range;
- a token, string, reference or uri as their own compilers do, on c2_system/c2_code/c2_text.

A component that its place cannot hold (a number first, a token third) matches nothing:
extraction makes no such rows.
"""

from __future__ import annotations

from typing import Any

from vnehr.fhir.text import fold
from vnehr.search import ir
from vnehr.search.compile import number
from vnehr.search.compile.date import range_condition
from vnehr.search.compile.string import like_escape, prefix_range
from vnehr.search.index_hash import value_hash

TABLE = "idx_composite"

# The columns of the second and third components: (system, code, text, low, high), None
# where the place has no such column.
_PLACES: tuple[tuple[str | None, ...], ...] = (
    ("c2_system", "c2_code", "c2_text", "c2_low", "c2_high"),
    (None, None, None, "c3_low", "c3_high"),
)
_NOTHING: tuple[str, list[Any]] = ("1 = 0", [])


def row_condition(leaf: ir.CompositeLeaf, x: str) -> tuple[str, list[Any]]:
    first, *others = leaf.parts
    if len(others) > len(_PLACES):
        return _NOTHING
    sql, args = _first(leaf.param, first, x)
    conds = [sql]
    for part, place in zip(others, _PLACES, strict=False):
        sql, more = _value(part, x, *place)
        conds.append(sql)
        args += more
    return " AND ".join(f"({c})" for c in conds), args


def _first(p: ir.Param, leaf: ir.Leaf, x: str) -> tuple[str, list[Any]]:
    """The first component: by `hv` and c1_code, then c1_system."""
    key = f"{p.res_type}.{p.code}"
    if isinstance(leaf, ir.TokenLeaf):
        if leaf.code is None:  # system| : any code of the system
            return f"{x}.c1_system = ?", [leaf.system]
        sql, args = f"{x}.hv = ? AND {x}.c1_code = ?", [value_hash(key, leaf.code), leaf.code]
        if leaf.system == "":
            return f"{sql} AND {x}.c1_system IS NULL", args
        if leaf.system is not None:
            return f"{sql} AND {x}.c1_system = ?", [*args, leaf.system]
        return sql, args
    if isinstance(leaf, ir.ReferenceLeaf):
        target = leaf.url if leaf.url is not None else leaf.target_id
        if target is None:
            return _NOTHING
        sql, args = f"{x}.hv = ? AND {x}.c1_code = ?", [value_hash(key, target), target]
        if leaf.url is None and leaf.target_type is not None:
            return f"{sql} AND {x}.c1_system = ?", [*args, leaf.target_type]
        return sql, args
    if isinstance(leaf, ir.UriLeaf):
        if leaf.mode == "eq":
            return f"{x}.hv = ? AND {x}.c1_code = ?", [value_hash(key, leaf.uri), leaf.uri]
        return _uri(leaf, f"{x}.c1_code")
    return _NOTHING


def _value(
    leaf: ir.Leaf,
    x: str,
    system: str | None,
    code: str | None,
    text: str | None,
    low: str | None,
    high: str | None,
) -> tuple[str, list[Any]]:
    """A second or third component, on the columns its place has."""
    if isinstance(leaf, ir.NumberLeaf) and low is not None and high is not None:
        return _number(leaf, x, f"({x}.{low} + {x}.{high}) / 2", system, code, text)
    if isinstance(leaf, ir.DateLeaf) and low is not None and high is not None:
        return range_condition(leaf.prefix, f"{x}.{low}", f"{x}.{high}", leaf.low, leaf.high)
    if system is None or code is None or text is None:
        return _NOTHING
    if isinstance(leaf, ir.TokenLeaf):
        if leaf.code is None:
            return f"{x}.{system} = ?", [leaf.system]
        if leaf.system is None:
            return f"{x}.{code} = ?", [leaf.code]
        if leaf.system == "":
            return f"{x}.{code} = ? AND {x}.{system} IS NULL", [leaf.code]
        return f"{x}.{code} = ? AND {x}.{system} = ?", [leaf.code, leaf.system]
    if isinstance(leaf, ir.StringLeaf):
        if leaf.mode == "contains":
            return f"{x}.{text} LIKE ? ESCAPE '\\'", ["%" + like_escape(leaf.value) + "%"]
        if leaf.mode == "exact":  # only the folded text is kept
            return f"{x}.{text} = ? AND {x}.{text} = ?", [fold(leaf.value), leaf.value]
        return prefix_range(f"{x}.{text}", leaf.value)
    if isinstance(leaf, ir.ReferenceLeaf):
        if leaf.url is not None:
            return f"{x}.{code} = ?", [leaf.url]
        if leaf.target_type is None:
            return f"{x}.{code} = ?", [leaf.target_id]
        return f"{x}.{code} = ? AND {x}.{system} = ?", [leaf.target_id, leaf.target_type]
    if isinstance(leaf, ir.UriLeaf):
        if leaf.mode == "eq":
            return f"{x}.{code} = ?", [leaf.uri]
        return _uri(leaf, f"{x}.{code}")
    return _NOTHING


def _number(
    leaf: ir.NumberLeaf,
    x: str,
    v: str,
    system: str | None,
    code: str | None,
    text: str | None,
) -> tuple[str, list[Any]]:
    """compile/number.py's condition on the value `v`, and the unit's."""
    sql, args = number.value_condition(leaf, v)
    if leaf.param.type != "quantity" or (leaf.system is None and leaf.code is None):
        return sql, args
    if system is None or code is None or text is None:
        return _NOTHING  # a unit where the place keeps none
    unit, more = number.unit_condition(leaf, f"{x}.{system}", f"{x}.{code}", f"{x}.{text}")
    return sql + unit, args + more


def _uri(leaf: ir.UriLeaf, column: str) -> tuple[str, list[Any]]:
    if leaf.mode == "below":
        return prefix_range(column, leaf.uri)
    return f"substr(?, 1, length({column})) = {column}", [leaf.uri]
