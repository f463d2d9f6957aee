"""Search index extraction at write time: a resource -> its IndexRows.

    extractor = Extractor(default_registry())
    rows = extractor.extract(resource)

One module per parameter type turns the values found into rows (token, string, date, number,
quantity, reference, uri); `paths` compiles the SearchParameter expressions that find them.
"""

from __future__ import annotations

from vnehr.search.extract.extractor import COLUMN_PARAMS, CompileStats, Extractor

__all__ = ["COLUMN_PARAMS", "CompileStats", "Extractor"]
