"""String parameter values -> idx_string rows (https://hl7.org/fhir/R4/search.html#string).

Each row holds the folded form (lower case, no accents, đ -> d: what the default search and
`:contains` match) and the exact NFC form (`:exact`). A HumanName or an Address gives one row
per part, as HAPI does: `Nguyễn Văn Đức` is found by `name=nguyen`, `name=van`, `name=duc`;
a HumanName also gives its whole name (family then given) and its given names together, so
that `name=nguyen van duc` finds it even when the name has no `text`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from vnehr.fhir.text import _EXTRA, fold, nfc
from vnehr.search.extract.repeats import unique_tail
from vnehr.search.index_rows import IndexRows

# What add_rows returns when two of the rows it added may be equal: the bit of its list.
REPEATS = 2

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
        found = FOLDED[text] = fast_fold(text)
    return found


def fast_fold(text: str) -> str:
    """vnehr.fhir.text.fold(text), which search values are folded with, done faster.

    fold removes combining marks one character at a time in Python and maps đ, ß... with a
    translate table (slow on non-ASCII text); here one regular expression removes the marks
    (every code point of non-zero combining class up to _SCANNED) and the few letters are
    replaced where present. tests/unit/search/test_extract_rows.py checks both agree.
    """
    if text.isascii():
        return text.lower()
    if _IN_TURN:
        for letter, plain in _LETTERS:
            if letter in text:
                text = text.replace(letter, plain)
    else:
        text = text.translate(_EXTRA)
    decomposed = unicodedata.normalize("NFD", text)
    if max(decomposed) > _SCANNED:
        return fold(text)
    marks = _MARKS[0] if _MARKS else _marks()
    return unicodedata.normalize("NFC", marks.sub("", decomposed)).lower()


# fold's own letters (đ -> d, ß -> ss...): replaced one after the other, which is what the
# translate table does as long as no replacement holds a letter replaced (_IN_TURN).
_LETTERS = tuple(
    (chr(point), plain if isinstance(plain, str) else "" if plain is None else chr(plain))
    for point, plain in _EXTRA.items()
)
_IN_TURN = not any(letter in plain for letter, _ in _LETTERS for _, plain in _LETTERS)
# Combining marks are looked for up to here: a pattern of BMP characters only is matched
# with a bitmap (one with astral ones is several times slower); text beyond goes to fold.
_SCANNED = "\uffff"
_MARKS: list[re.Pattern[str]] = []


def _marks() -> re.Pattern[str]:
    """The combining marks (non-zero combining class): a pattern built on first need."""
    points = [chr(p) for p in range(ord(_SCANNED) + 1) if unicodedata.combining(chr(p))]
    marks = re.compile("[" + "".join(re.escape(p) for p in points) + "]")
    _MARKS.append(marks)
    return marks


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


def _whole_name(code: str, name: dict[str, Any], out: list[Any]) -> None:
    """A HumanName's whole name in Vietnamese order (family, then given names) and its given
    names together, so that `name=nguyen van duc` and `name=van duc` find `Nguyễn Văn Đức`
    written as parts."""
    family, given = name.get("family"), name.get("given")
    if type(given) is not list:
        return
    parts = [g for g in given if type(g) is str and g]
    if len(parts) > 1:
        whole = " ".join(parts)
        out.append((code, *(_TAILS.get(whole) or tail(whole))))
    if type(family) is str and family and parts:
        whole = " ".join((family, *parts))
        out.append((code, *(_TAILS.get(whole) or tail(whole))))


def add_rows(code: str, values: Any, rows: IndexRows) -> int:
    """Rows of `values`: a list of values, or one value as found in the resource.

    REPEATS if two of the rows added may be equal (the Extractor then removes the repeats),
    else 0.
    """
    if type(values) is list:
        if len(values) != 1:
            out = rows.strings
            start = len(out)
            for value in values:
                if type(value) is not list:
                    add_rows(code, value, rows)
            return unique_tail(out, start, REPEATS)
        values = values[0]
    if type(values) is str:
        if values:
            folded_, exact = _TAILS.get(values) or tail(values)
            rows.strings.append((code, folded_, exact))
    elif type(values) is dict:  # a HumanName or an Address: a row per part
        out = rows.strings
        start = len(out)
        tails = _TAILS
        _whole_name(code, values, out)
        for key, part in values.items():
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
        return unique_tail(out, start, REPEATS)
    return 0
