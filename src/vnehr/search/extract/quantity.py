"""Quantity parameter values -> idx_quantity rows (https://hl7.org/fhir/R4/search.html#quantity).

Quantity and its kinds (Age, Duration, Count, Distance, SimpleQuantity) give (value, low, high
from the decimal's precision, system, code, unit); a comparator opens one end (`<5` is
(-inf, 5.5]). Money gives the ISO 4217 system and its currency as code. A Range gives one row
from low to high. SampledData gives nothing (nothing sensible to compare with).
"""

from __future__ import annotations

from typing import Any

from vnehr.fhir.json import FhirDecimal
from vnehr.search.extract.number import BOUNDS, INFINITY, bounds, range_bounds
from vnehr.search.extract.repeats import unique_tail
from vnehr.search.index_rows import IndexRows

# What add_rows returns when two of the rows it added may be equal: the bit of its list.
REPEATS = 16

_CURRENCIES = "urn:iso:std:iso:4217"


def add_rows(code: str, values: Any, rows: IndexRows) -> int:
    """Rows of `values`: a list of values, or one value as found in the resource.

    REPEATS if two of the rows added may be equal (the Extractor then removes the repeats),
    else 0.
    """
    if type(values) is list:
        if len(values) != 1:
            out = rows.quantities
            start = len(out)
            for value in values:
                if type(value) is not list:
                    add_rows(code, value, rows)
            return unique_tail(out, start, REPEATS)
        values = values[0]
    if type(values) is not dict:
        return 0
    if "value" in values:
        value = values["value"]
        found = BOUNDS.get(value.text) if type(value) is FhirDecimal else None
        if not found:
            found = bounds(value)
            if found is None:
                return 0
        number, low, high = found
        comparator = values.get("comparator")
        if comparator in ("<", "<="):
            low = -INFINITY
        elif comparator in (">", ">="):
            high = INFINITY
        if "currency" in values:
            currency = values["currency"]
            rows.quantities.append((code, number, low, high, _CURRENCIES, currency, None))
        else:
            system, unit_code, unit = values.get("system"), values.get("code"), values.get("unit")
            if type(unit) is not str:
                unit = None
            rows.quantities.append((code, number, low, high, system, unit_code, unit))
    elif "low" in values or "high" in values:
        found = range_bounds(values)
        if found is None:
            return 0
        end = values.get("low") or values.get("high")
        system = unit_code = unit = None
        if type(end) is dict:
            system, unit_code, unit = end.get("system"), end.get("code"), _unit(end)
        rows.quantities.append((code, *found, system, unit_code, unit))
    return 0


def _unit(quantity: dict[str, Any]) -> str | None:
    unit = quantity.get("unit")
    return unit if type(unit) is str else None
