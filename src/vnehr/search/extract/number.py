"""Number parameter values -> idx_number rows (https://hl7.org/fhir/R4/search.html#number).

A decimal stands for the range its significant digits allow: `100` is [99.5, 100.5], `1.50`
is [1.495, 1.505]. Precision comes from the text the value was written as (FhirDecimal
remembers it; a float is read back as its shortest repr).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from vnehr.fhir.json import FhirDecimal
from vnehr.search.extract.repeats import unique_tail
from vnehr.search.index_rows import IndexRows

# What add_rows returns when two of the rows it added may be equal: the bit of its list.
REPEATS = 8

INFINITY = float("inf")
Bounds = tuple[float, float, float]

# Measured values repeat (7.2 %, 120 mmHg): their bounds, by the text of the decimal, are
# remembered. A plain dict emptied when full; () stands for "not a number".
CACHE_SIZE = 16384
BOUNDS: dict[str, Bounds | tuple[()]] = {}


def bounds(value: Any) -> Bounds | None:
    """(value, low, high) of a FHIR decimal or integer; None if `value` is not a number."""
    kind = type(value)
    if kind is FhirDecimal:
        text = value.text  # the text as written (its repr)
    elif kind is int:
        number = float(value)
        return number, number - 0.5, number + 0.5
    elif kind is bool or value is None:
        return None
    elif isinstance(value, float):
        text = repr(value)  # its shortest repr
    elif isinstance(value, Decimal | int | str):
        text = str(value)
    else:
        return None
    found = BOUNDS.get(text)
    if found is None:
        if len(BOUNDS) >= CACHE_SIZE:
            BOUNDS.clear()
        found = BOUNDS[text] = _text_bounds(text) or ()
    return found or None


def _text_bounds(text: str) -> Bounds | None:
    try:
        exact = Decimal(text)
    except InvalidOperation:
        return None
    if not exact.is_finite():
        return None
    exponent = exact.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    return float(exact), float(exact - half), float(exact + half)


def range_bounds(value: dict[str, Any]) -> tuple[float, float, float] | None:
    """(value, low, high) of a Range: from its low's lower to its high's upper bound.

    The value is low's (or high's when low is absent); an absent end is open (infinite).
    """
    low = value.get("low")
    high = value.get("high")
    low_b = bounds(low.get("value")) if type(low) is dict else None
    high_b = bounds(high.get("value")) if type(high) is dict else None
    if low_b is None and high_b is None:
        return None
    number = low_b[0] if low_b else high_b[0]  # type: ignore[index]
    return number, (low_b[1] if low_b else -INFINITY), (high_b[2] if high_b else INFINITY)


def add_rows(code: str, values: Any, rows: IndexRows) -> int:
    """Rows of `values`: a list of values, or one value as found in the resource.

    REPEATS if two of the rows added may be equal (the Extractor then removes the repeats),
    else 0.
    """
    if type(values) is list:
        if len(values) != 1:
            out = rows.numbers
            start = len(out)
            for value in values:
                if type(value) is not list:
                    add_rows(code, value, rows)
            return unique_tail(out, start, REPEATS)
        values = values[0]
    if type(values) is dict:
        found = range_bounds(values) if "low" in values or "high" in values else None
        if found is None and "value" in values:  # a Quantity where a number is wanted
            found = bounds(values["value"])
    else:
        found = bounds(values)
    if found is not None:
        rows.numbers.append((code, *found))
    return 0
