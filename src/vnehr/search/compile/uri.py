"""Uri leaves -> conditions on idx_uri rows (https://hl7.org/fhir/R4/search.html#uri).

`:below` matches uris that start with the value; `:above` uris the value starts with.
"""

from __future__ import annotations

from typing import Any

from vnehr.search import ir
from vnehr.search.compile.string import prefix_range
from vnehr.search.index_hash import value_hash

TABLE = "idx_uri"


def row_condition(leaf: ir.UriLeaf, x: str) -> tuple[str, list[Any]]:
    p = leaf.param
    if leaf.mode == "below":
        return prefix_range(f"{x}.uri", leaf.uri)
    if leaf.mode == "above":
        return f"substr(?, 1, length({x}.uri)) = {x}.uri", [leaf.uri]
    return f"{x}.hv = ? AND {x}.uri = ?", [value_hash(f"{p.res_type}.{p.code}", leaf.uri), leaf.uri]
