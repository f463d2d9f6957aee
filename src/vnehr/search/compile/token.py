"""Token leaves -> conditions on idx_token rows (https://hl7.org/fhir/R4/search.html#token)."""

from __future__ import annotations

from typing import Any

from vnehr.search import ir
from vnehr.search.compile.string import prefix_range
from vnehr.search.index_hash import value_hash

TABLE = "idx_token"


def row_condition(leaf: ir.TokenLeaf | ir.TokenTextLeaf, x: str) -> tuple[str, list[Any]]:
    p = leaf.param
    if isinstance(leaf, ir.TokenTextLeaf):
        return prefix_range(f"{x}.text", leaf.text)
    if leaf.code is None:  # system| : any code of the system
        return f"{x}.system = ?", [leaf.system]
    hv = value_hash(f"{p.res_type}.{p.code}", leaf.code)
    if leaf.system is None:
        return f"{x}.hv = ? AND {x}.code = ?", [hv, leaf.code]
    if leaf.system == "":
        return f"{x}.hv = ? AND {x}.code = ? AND {x}.system IS NULL", [hv, leaf.code]
    return f"{x}.hv = ? AND {x}.code = ? AND {x}.system = ?", [hv, leaf.code, leaf.system]


def uses_hash(leaf: ir.Leaf) -> bool:
    """True when the condition starts with `hv = ?`: the lookup index finds the rows."""
    return isinstance(leaf, ir.TokenLeaf) and leaf.code is not None
