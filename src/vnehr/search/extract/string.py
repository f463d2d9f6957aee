"""String parameter values -> idx_string rows (https://hl7.org/fhir/R4/search.html#string).

Each row holds the folded form (lower case, no accents, đ -> d: what the default search and
`:contains` match) and the exact NFC form (`:exact`). A HumanName or an Address gives one row
per part, as HAPI does: `Nguyễn Văn Đức` is found by `name=nguyen`, `name=van`, `name=duc`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from vnehr.fhir.text import fold, nfc
from vnehr.search.index_rows import IndexRows

# HumanName and Address parts; `text` of either.
_PARTS = frozenset(
    {"family", "given", "prefix", "suffix", "text"}
    | {"line", "city", "district", "state", "postalCode", "country"}
)

# Names, places and codes repeat endlessly (Nguyễn, Văn, Thị, Hà Nội): folding is the costly
# part of string rows, so remember the recent ones.
folded = lru_cache(maxsize=65536)(fold)
_exact = lru_cache(maxsize=65536)(nfc)


def add_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    out = rows.strings
    for value in values:
        if type(value) is str:
            if value:
                out.append((code, folded(value), _exact(value)))
        elif type(value) is dict:
            for key, part in value.items():
                if key not in _PARTS:
                    continue
                if type(part) is str:
                    if part:
                        out.append((code, folded(part), _exact(part)))
                elif type(part) is list:
                    for item in part:
                        if type(item) is str and item:
                            out.append((code, folded(item), _exact(item)))
