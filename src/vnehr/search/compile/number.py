"""Number and quantity leaves -> conditions on idx_number / idx_quantity rows.

https://hl7.org/fhir/R4/search.html#number: `eq100` matches values in [99.5, 100.5) (the
search value's precision); gt/lt/ge/le/sa/eb compare with the value itself; `ne` is the
complement of eq; `ap` is within 10% of the value. Quantities also match the unit:
`system|code` against the row's system and code, `||unit` against its code or unit.
"""

from __future__ import annotations

from typing import Any

from vnehr.search import ir

TABLES = {"number": "idx_number", "quantity": "idx_quantity"}


def value_condition(leaf: ir.NumberLeaf, v: str) -> tuple[str, list[Any]]:
    """The leaf's prefix and number applied to the value expression `v` (units aside)."""
    args: list[Any]
    match leaf.prefix:
        case "eq":
            sql, args = f"{v} >= ? AND {v} < ?", [leaf.low, leaf.high]
        case "ne":
            sql, args = f"NOT ({v} >= ? AND {v} < ?)", [leaf.low, leaf.high]
        case "gt" | "sa":
            sql, args = f"{v} > ?", [leaf.value]
        case "lt" | "eb":
            sql, args = f"{v} < ?", [leaf.value]
        case "ge":
            sql, args = f"{v} >= ?", [leaf.value]
        case "le":
            sql, args = f"{v} <= ?", [leaf.value]
        case _:  # ap
            slack = abs(leaf.value) * 0.1 or (leaf.high - leaf.low) / 2
            sql, args = f"{v} >= ? AND {v} <= ?", [leaf.value - slack, leaf.value + slack]
    return sql, args


def unit_condition(leaf: ir.NumberLeaf, system: str, code: str, unit: str) -> tuple[str, list[Any]]:
    """A quantity's unit on the columns `system`, `code` and `unit` ("" when none is asked):
    `system|code` against system and code, `||unit` against the code or the unit."""
    if leaf.param.type != "quantity" or (leaf.system is None and leaf.code is None):
        return "", []
    if leaf.unit_only:
        return f" AND ({code} = ? OR {unit} = ?)", [leaf.code, leaf.code]
    sql, args = "", []
    if leaf.system is not None:
        sql += f" AND {system} = ?"
        args.append(leaf.system)
    if leaf.code is not None:
        sql += f" AND {code} = ?"
        args.append(leaf.code)
    return sql, args


def row_condition(leaf: ir.NumberLeaf, x: str) -> tuple[str, list[Any]]:
    sql, args = value_condition(leaf, f"{x}.value")
    unit, more = unit_condition(leaf, f"{x}.system", f"{x}.code", f"{x}.unit")
    return sql + unit, args + more
