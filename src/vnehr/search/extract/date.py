"""Date parameter values -> idx_date rows (https://hl7.org/fhir/R4/search.html#date).

Every value is an inclusive range [low, high] in epoch microseconds (UTC) from its precision:
`2024` is the whole year, `2024-03` the month, `2024-03-05T10:00:00Z` that second. A time
without zone is taken as UTC (as vnehr.fhir.instant.parse_range does for search values).
A Period runs from the start of its start to the end of its end, an open end being
LOWEST/HIGHEST; a Timing covers its outer limits (events and boundsPeriod).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from vnehr.search.index_rows import DateRow, IndexRows

# 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the open ends of a Period.
LOWEST = -62_135_596_800_000_000
HIGHEST = 253_402_300_799_999_999

_DAY = 86_400_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DATE_TIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _days(year: int, month: int, day: int) -> int:
    return date(year, month, day).toordinal() - _EPOCH_ORDINAL


def date_range(text: str) -> tuple[int, int] | None:
    """[low, high] for a FHIR date, dateTime or instant; None if it is not one."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        return None
    y, m, d, hh, mm, ss, frac, tz = match.groups()
    try:
        year = int(y)
        if m is None:
            low = _days(year, 1, 1) * _DAY
            high = (_days(year + 1, 1, 1) * _DAY if year < 9999 else HIGHEST + 1) - 1
            return low, high
        month = int(m)
        if d is None:
            low = _days(year, month, 1) * _DAY
            if month == 12:
                end = _days(year + 1, 1, 1) * _DAY if year < 9999 else HIGHEST + 1
            else:
                end = _days(year, month + 1, 1) * _DAY
            return low, end - 1
        day = _days(year, month, int(d)) * _DAY
        if hh is None:
            return day, day + _DAY - 1
        hour, minute = int(hh), int(mm)
        if hour > 23 or minute > 59:
            return None
        low = day + (hour * 3600 + minute * 60) * 1_000_000
        if ss is None:
            width = 60_000_000
        else:
            second = int(ss)
            if second > 60:
                return None
            low += second * 1_000_000
            if frac:
                low += int(frac[:6].ljust(6, "0"))
                width = 10 ** max(0, 6 - len(frac))
            else:
                width = 1_000_000
        if tz and tz != "Z":
            offset = (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * 1_000_000
            low += -offset if tz[0] == "+" else offset
        return low, low + width - 1
    except ValueError:  # a day or month out of range
        return None


def _period(value: dict[str, Any]) -> tuple[int, int] | None:
    start, end = value.get("start"), value.get("end")
    low = date_range(start) if type(start) is str else None
    high = date_range(end) if type(end) is str else None
    if low is None and high is None:
        return None
    return (low[0] if low else LOWEST), (high[1] if high else HIGHEST)


def _timing(value: dict[str, Any]) -> tuple[int, int] | None:
    ranges: list[tuple[int, int]] = []
    events = value.get("event")
    if type(events) is list:
        ranges.extend(r for e in events if type(e) is str and (r := date_range(e)) is not None)
    repeat = value.get("repeat")
    if type(repeat) is dict:
        bounds = repeat.get("boundsPeriod")
        if type(bounds) is dict and (r := _period(bounds)) is not None:
            ranges.append(r)
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def add_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    out: list[DateRow] = rows.dates
    for value in values:
        if type(value) is str:
            found = date_range(value)
        elif type(value) is dict:
            if "start" in value or "end" in value:
                found = _period(value)
            elif "event" in value or "repeat" in value:
                found = _timing(value)
            else:
                continue
        elif value is not None and not isinstance(value, bool | int | float):
            found = date_range(str(value))  # a fhirpathpy date object
        else:
            continue
        if found is not None:
            out.append((code, found[0], found[1]))
