"""Uri parameter values -> idx_uri rows (https://hl7.org/fhir/R4/search.html#uri).

uri, url and canonical elements are indexed as written (a canonical keeps its `|version`,
so `:below` and exact matches both work on the stored text).
"""

from __future__ import annotations

from typing import Any

from vnehr.search.extract.repeats import unique_tail
from vnehr.search.index_rows import IndexRows

# What add_rows returns when two of the rows it added may be equal: the bit of its list.
REPEATS = 64


def add_rows(code: str, values: Any, rows: IndexRows) -> int:
    """Rows of `values`: a list of values, or one value as found in the resource.

    REPEATS if two of the rows added may be equal (the Extractor then removes the repeats),
    else 0.
    """
    if type(values) is list:
        if len(values) != 1:
            out = rows.uris
            start = len(out)
            for value in values:
                if type(value) is not list:
                    add_rows(code, value, rows)
            return unique_tail(out, start, REPEATS)
        values = values[0]
    if type(values) is str and values:
        rows.uris.append((code, values))
    return 0
