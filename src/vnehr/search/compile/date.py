"""Date leaves -> conditions on idx_date rows (https://hl7.org/fhir/R4/search.html#date).

Both the search value and the indexed value are inclusive ranges [low, high] (search value
[sl, sh], indexed [x.low, x.high]), compared as the specification's prefixes say:
eq: the search range contains the value's; ne: it does not; gt/lt: the value's range
reaches after/before the search range; ge/le: gt/lt or eq; sa/eb: starts after / ends
before; ap: the ranges overlap once the search range is widened by 10% of its distance
from now (at least a day).
"""

from __future__ import annotations

from typing import Any

from vnehr.fhir.instant import now_micros
from vnehr.search import ir

TABLE = "idx_date"
_DAY = 86_400_000_000


def range_condition(
    prefix: str, low_col: str, high_col: str, low: int, high: int
) -> tuple[str, list[Any]]:
    match prefix:
        case "eq":
            return f"{low_col} >= ? AND {high_col} <= ?", [low, high]
        case "ne":
            return f"NOT ({low_col} >= ? AND {high_col} <= ?)", [low, high]
        case "gt":
            return f"{high_col} > ?", [high]
        case "lt":
            return f"{low_col} < ?", [low]
        case "ge":
            return f"({high_col} > ? OR ({low_col} >= ? AND {high_col} <= ?))", [high, low, high]
        case "le":
            return f"({low_col} < ? OR ({low_col} >= ? AND {high_col} <= ?))", [low, low, high]
        case "sa":
            return f"{low_col} > ?", [high]
        case "eb":
            return f"{high_col} < ?", [low]
        case _:  # ap
            now = now_micros()
            slack = max(abs(now - (low + high) // 2) // 10, _DAY)
            return f"{low_col} <= ? AND {high_col} >= ?", [high + slack, low - slack]


def row_condition(leaf: ir.DateLeaf, x: str) -> tuple[str, list[Any]]:
    return range_condition(leaf.prefix, f"{x}.low", f"{x}.high", leaf.low, leaf.high)
