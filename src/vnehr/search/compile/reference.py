"""Reference leaves -> conditions on idx_reference rows.

https://hl7.org/fhir/R4/search.html#reference: `Type/id` (or `id` with the type from a
`:Type` modifier or the parameter's only target) matches local references by target id,
found through the (target_id, sp) index; an absolute URL matches the url column, found by
its hash through a partial index on the rows that have a url.
"""

from __future__ import annotations

from typing import Any

from vnehr.search import ir
from vnehr.search.index_hash import value_hash

TABLE = "idx_reference"


def row_condition(leaf: ir.ReferenceLeaf, x: str) -> tuple[str, list[Any]]:
    p = leaf.param
    if leaf.url is not None:
        return f"{x}.hv = ? AND {x}.url = ?", [
            value_hash(f"{p.res_type}.{p.code}", leaf.url),
            leaf.url,
        ]
    if leaf.target_type is None:
        return f"{x}.target_id = ?", [leaf.target_id]
    return f"{x}.target_id = ? AND {x}.target_type = ?", [leaf.target_id, leaf.target_type]
