"""Number parameter values -> idx_number rows (https://hl7.org/fhir/R4/search.html#number).

A decimal stands for the range its significant digits allow: `100` is [99.5, 100.5], `1.50`
is [1.495, 1.505]. Precision comes from the text the value was written as (FhirDecimal
remembers it; a float is read back as its shortest repr).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from vnehr.search.index_rows import IndexRows, NumberRow

INFINITY = float("inf")
Bounds = tuple[float, float, float]

# Measured values repeat (7.2 %, 120 mmHg): their bounds, by the text of the decimal, are
# remembered. A plain dict emptied when full; () stands for "not a number".
CACHE_SIZE = 16384
_BOUNDS: dict[str, Bounds | tuple[()]] = {}


def bounds(value: Any) -> Bounds | None:
    """(value, low, high) of a FHIR decimal or integer; None if `value` is not a number."""
    kind = type(value)
    if kind is int:
        number = float(value)
        return number, number - 0.5, number + 0.5
    if kind is bool or value is None:
        return None
    if isinstance(value, float):
        text = repr(value)  # FhirDecimal: the text as written
    elif isinstance(value, Decimal | int | str):
        text = str(value)
    else:
        return None
    found = _BOUNDS.get(text)
    if found is None:
        if len(_BOUNDS) >= CACHE_SIZE:
            _BOUNDS.clear()
        found = _BOUNDS[text] = _text_bounds(text) or ()
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


def add_rows(code: str, values: Any, rows: IndexRows) -> None:
    """Rows of `values`: a list of values, or one value as found in the resource."""
    out: list[NumberRow] = rows.numbers
    for value in values if type(values) is list else (values,):
        if type(value) is dict:
            found = range_bounds(value) if "low" in value or "high" in value else None
            if found is None and "value" in value:  # a Quantity where a number is wanted
                found = bounds(value["value"])
        else:
            found = bounds(value)
        if found is not None:
            out.append((code, *found))
