"""Quantity parameter values -> idx_quantity rows (https://hl7.org/fhir/R4/search.html#quantity).

Quantity and its kinds (Age, Duration, Count, Distance, SimpleQuantity) give (value, low, high
from the decimal's precision, system, code, unit); a comparator opens one end (`<5` is
(-inf, 5.5]). Money gives the ISO 4217 system and its currency as code. A Range gives one row
from low to high. SampledData gives nothing (nothing sensible to compare with).
"""

from __future__ import annotations

from typing import Any

from vnehr.search.extract.number import INFINITY, bounds, range_bounds
from vnehr.search.index_rows import IndexRows, QuantityRow

_CURRENCIES = "urn:iso:std:iso:4217"


def add_rows(code: str, values: Any, rows: IndexRows) -> None:
    """Rows of `values`: a list of values, or one value as found in the resource."""
    out: list[QuantityRow] = rows.quantities
    for value in values if type(values) is list else (values,):
        if type(value) is not dict:
            continue
        if "value" in value:
            found = bounds(value["value"])
            if found is None:
                continue
            number, low, high = found
            comparator = value.get("comparator")
            if comparator in ("<", "<="):
                low = -INFINITY
            elif comparator in (">", ">="):
                high = INFINITY
            if "currency" in value:
                currency = value["currency"]
                out.append((code, number, low, high, _CURRENCIES, currency, None))
            else:
                out.append(
                    (code, number, low, high, value.get("system"), value.get("code"), _unit(value))
                )
        elif "low" in value or "high" in value:
            found = range_bounds(value)
            if found is None:
                continue
            end = value.get("low") or value.get("high")
            system = code_ = unit = None
            if type(end) is dict:
                system, code_, unit = end.get("system"), end.get("code"), _unit(end)
            out.append((code, *found, system, code_, unit))


def _unit(quantity: dict[str, Any]) -> str | None:
    unit = quantity.get("unit")
    return unit if type(unit) is str else None
