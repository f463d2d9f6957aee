"""Composite leaves -> conditions on idx_composite rows (https://hl7.org/fhir/R4/search.html#composite).

Not indexed yet: no row matches.
"""

from __future__ import annotations

from typing import Any

from vnehr.search import ir

TABLE = "idx_composite"


def row_condition(leaf: ir.CompositeLeaf, x: str) -> tuple[str, list[Any]]:
    return "1 = 0", []
