"""Uri parameter values -> idx_uri rows (https://hl7.org/fhir/R4/search.html#uri).

uri, url and canonical elements are indexed as written (a canonical keeps its `|version`,
so `:below` and exact matches both work on the stored text).
"""

from __future__ import annotations

from typing import Any

from vnehr.search.index_rows import IndexRows


def add_rows(code: str, values: Any, rows: IndexRows) -> None:
    """Rows of `values`: a list of values, or one value as found in the resource."""
    out = rows.uris
    for value in values if type(values) is list else (values,):
        if type(value) is str and value:
            out.append((code, value))
