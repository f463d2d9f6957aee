"""String leaves -> conditions on idx_string rows (https://hl7.org/fhir/R4/search.html#string).

Matching is on the folded form (case, accents and đ ignored) except `:exact`. Starts-with
is a range `[prefix, prefix with its last character incremented)`, which the (sp, folded)
index answers on both backends (PostgreSQL compares these columns with COLLATE "C").
"""

from __future__ import annotations

from typing import Any

from vnehr.fhir.text import fold
from vnehr.search import ir

TABLE = "idx_string"


def prefix_range(column: str, prefix: str) -> tuple[str, list[Any]]:
    if not prefix:
        return f"{column} IS NOT NULL", []
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return f"{column} >= ? AND {column} < ?", [prefix, upper]


def like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def row_condition(leaf: ir.StringLeaf, x: str) -> tuple[str, list[Any]]:
    if leaf.mode == "exact":
        # The folded form of an exact match is known: the (sp, folded) index finds it.
        return f"{x}.folded = ? AND {x}.exact = ?", [fold(leaf.value), leaf.value]
    if leaf.mode == "contains":
        return f"{x}.folded LIKE ? ESCAPE '\\'", ["%" + like_escape(leaf.value) + "%"]
    return prefix_range(f"{x}.folded", leaf.value)
