"""FHIRPath collections and values as the compiled invariants see them: https://hl7.org/fhirpath/N1/

A collection is a Python list of JSON values: dicts for complex values and resources,
str/int/float/bool for primitives. Booleans of collections, equality, ordering (dates and
times of different precision, Quantities) and the navigation helpers live here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

Collection = list[Any]


class Env:
    """What an invariant sees besides its focus: %resource, %rootResource, %context."""

    __slots__ = ("context", "resource", "root")

    def __init__(self, resource: Any, root: Any, context: Collection | None = None) -> None:
        self.resource = resource
        self.root = root
        self.context: Collection = [] if context is None else context

    def __repr__(self) -> str:
        return f"Env(resource={self.resource!r}, root={self.root!r}, context={self.context!r})"


Fn = Callable[[Collection, Env], Collection]


class Unsupported(ValueError):
    """The expression uses FHIRPath this compiler does not implement."""


class EvalError(ValueError):
    """The expression cannot be evaluated on this input (e.g. a boolean of many items)."""


def to_bool(coll: Collection) -> bool | None:
    """FHIRPath singleton evaluation of a collection as a boolean (None: empty)."""
    if not coll:
        return None
    if len(coll) == 1:
        value = coll[0]
        return value if type(value) is bool else True
    raise EvalError("a boolean was expected, found several items")


def flatten_into(out: Collection, value: Any) -> None:
    if type(value) is list:
        out.extend(v for v in value if v is not None)
    elif value is not None:
        out.append(value)


def children(item: Any) -> Collection:
    out: Collection = []
    if type(item) is dict:
        for key, value in item.items():
            if key != "resourceType" and not key.startswith("_"):
                flatten_into(out, value)
    return out


def descendants(coll: Collection) -> Collection:
    out: Collection = []
    stack = list(reversed(coll))
    while stack:
        for child in children(stack.pop()):
            out.append(child)
            if type(child) is dict:
                stack.append(child)
    return out


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and type(v) is not bool


def equal(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return bool(a == b)
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return bool(a == b)


def value_key(value: Any) -> Any:
    """A hashable stand-in for a value, equal for equal FHIRPath values."""
    if type(value) in (dict, list):
        return json.dumps(value, sort_keys=True)
    if is_number(value):
        return ("n", float(value))
    return value


_DATE = re.compile(
    r"(\d{4})(?:-(\d\d)(?:-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(\.\d+)?)?)?"
    r"(Z|[+-]\d\d:\d\d)?)?)?)?"
)
_TIME = re.compile(r"(\d\d)(?::(\d\d)(?::(\d\d)(\.\d+)?)?)?")


class _Floats(dict[str, float]):
    """float(text) of two ASCII digits by lookup, faster; other digits (the regexes here take
    any Unicode digit) by float()."""

    def __missing__(self, text: str) -> float:
        return float(text)


_TWO_DIGITS = _Floats({f"{i:02d}": float(i) for i in range(100)})


def _temporal(value: str) -> tuple[str, tuple[float, ...], tuple[float, ...] | None] | None:
    """(kind, local components, UTC components when zoned) of a date/dateTime/time string."""
    m = _DATE.fullmatch(value)
    if m is not None:
        year, month, day, hour, minute, sec, frac, tz = m.groups()  # each implies the ones before
        n = _TWO_DIGITS
        if hour is None:
            if month is None:
                return "date", (float(year),), None
            if day is None:
                return "date", (float(year), n[month]), None
            return "date", (float(year), n[month], n[day]), None
        if minute is None:
            parts: tuple[float, ...] = (float(year), n[month], n[day], n[hour])
        else:
            parts = (float(year), n[month], n[day], n[hour], n[minute])
        if sec is not None:
            parts += (n[sec] + (float(frac) if frac else 0.0),)
        if tz is None:  # a time zone comes with an hour (in the regex)
            return "date", parts, None
        text = f"{year}-{month}-{day}T{hour}:{minute or '00'}:{sec or '00'}"
        dt = datetime.fromisoformat(text + ("+00:00" if tz == "Z" else tz)).astimezone(UTC)
        utc = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second + float(frac or 0))
        return "date", parts, utc
    m = _TIME.fullmatch(value)
    if m is None:
        return None
    hour, minute, sec, frac = m.groups()
    times = [float(p) for p in (hour, minute) if p is not None]
    if sec is not None:
        times.append(float(sec) + (float(frac) if frac else 0.0))
    return "time", tuple(times), None


def compare(a: Any, b: Any) -> int | None:
    """-1, 0 or 1; None when FHIRPath says the comparison is empty (or it is meaningless).

    Dates and times of different precision compare at their common precision, and are
    incomparable (None) when equal there: `2023-06-21 <= 2023-06-21T06:20:00Z` is empty.
    """
    if is_number(a) and is_number(b):
        return (a > b) - (a < b)
    if type(a) is str and type(b) is str:
        ta, tb = _temporal(a), _temporal(b)
        if ta is None or tb is None:
            return (a > b) - (a < b)
        if ta[0] != tb[0]:
            return None
        (_, pa, ua), (_, pb, ub) = ta, tb
        if ua is not None and ub is not None and len(pa) == len(pb):
            pa, pb = ua, ub
        n = min(len(pa), len(pb))
        if pa[:n] != pb[:n]:
            return -1 if pa[:n] < pb[:n] else 1
        return 0 if len(pa) == len(pb) else None
    if type(a) is dict and type(b) is dict and "value" in a and "value" in b:
        if (a.get("code"), a.get("system"), a.get("unit")) != (
            b.get("code"),
            b.get("system"),
            b.get("unit"),
        ) and (a.get("code") is None or a.get("code") != b.get("code")):
            return None
        return compare(a["value"], b["value"])
    return None


def distinct(values: Collection) -> Collection:
    seen: set[Any] = set()
    out: Collection = []
    for v in values:
        k = value_key(v)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out
