"""String parameter values -> idx_string rows (https://hl7.org/fhir/R4/search.html#string).

Each row holds the folded form (lower case, no accents, đ -> d: what the default search and
`:contains` match) and the exact NFC form (`:exact`). A HumanName or an Address gives one row
per part, as HAPI does: `Nguyễn Văn Đức` is found by `name=nguyen`, `name=van`, `name=duc`.
"""

from __future__ import annotations

from typing import Any

from vnehr.fhir.text import fold, nfc
from vnehr.search.index_rows import IndexRows

# HumanName and Address parts; `text` of either.
_PARTS = frozenset(
    {"family", "given", "prefix", "suffix", "text"}
    | {"line", "city", "district", "state", "postalCode", "country"}
)

# Names, places and codes repeat endlessly (Nguyễn, Văn, Thị, Hà Nội): folding is the costly
# part of string rows, so remember the recent ones. Plain dicts emptied when full: a lookup
# is one `dict.get`, cheaper than an lru_cache call, and a full cache is rare.
CACHE_SIZE = 65536
FOLDED: dict[str, str] = {}
# value -> (folded, exact): the tail of its string row.
_TAILS: dict[str, tuple[str, str]] = {}


def folded(text: str) -> str:
    """fold(text), remembered."""
    found = FOLDED.get(text)
    if found is None:
        if len(FOLDED) >= CACHE_SIZE:
            FOLDED.clear()
        found = FOLDED[text] = fold(text)
    return found


def tail(text: str) -> tuple[str, str]:
    """(folded, exact NFC) of a string value, remembered."""
    found = _TAILS.get(text)
    if found is None:
        if len(_TAILS) >= CACHE_SIZE:
            _TAILS.clear()
        found = _TAILS[text] = (folded(text), nfc(text))
    return found


def clear_caches() -> None:
    """Forget every folded value (for benchmarks of unseen text)."""
    FOLDED.clear()
    _TAILS.clear()


def add_rows(code: str, values: Any, rows: IndexRows) -> None:
    """Rows of `values`: a list of values, or one value as found in the resource."""
    out = rows.strings
    tails = _TAILS
    for value in values if type(values) is list else (values,):
        if type(value) is str:
            if value:
                folded_, exact = tails.get(value) or tail(value)
                out.append((code, folded_, exact))
        elif type(value) is dict:
            for key, part in value.items():
                if key not in _PARTS:
                    continue
                if type(part) is str:
                    if part:
                        folded_, exact = tails.get(part) or tail(part)
                        out.append((code, folded_, exact))
                elif type(part) is list:
                    for item in part:
                        if type(item) is str and item:
                            folded_, exact = tails.get(item) or tail(item)
                            out.append((code, folded_, exact))
