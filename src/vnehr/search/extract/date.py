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

from vnehr.search.extract.repeats import unique_tail
from vnehr.search.index_rows import IndexRows

# What add_rows returns when two of the rows it added may be equal: the bit of its list.
REPEATS = 4

# 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the open ends of a Period.
LOWEST = -62_135_596_800_000_000
HIGHEST = 253_402_300_799_999_999

_DAY = 86_400_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DATE_TIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)
# Its time of day part.
_TIME = re.compile(r"T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?")

# Parsed values, remembered: the same dates recur (an encounter's observations share their
# time), and so do the days and the times of day that dateTimes are made of. Plain dicts,
# emptied when full. A range is (low, high); () stands for "not a date".
CACHE_SIZE = 16384
_RANGES: dict[str, tuple[int, int] | tuple[()]] = {}
_DAY_STARTS: dict[str, int | None] = {}  # YYYY-MM-DD -> its first microsecond
_TIMES: dict[str, tuple[int, int] | tuple[()]] = {}  # Thh:mm...zone -> (offset, width)


def _days(year: int, month: int, day: int) -> int:
    return date(year, month, day).toordinal() - _EPOCH_ORDINAL


def date_range(text: str) -> tuple[int, int] | None:
    """[low, high] for a FHIR date, dateTime or instant; None if it is not one."""
    found = _RANGES.get(text)
    if found is None:
        if len(_RANGES) >= CACHE_SIZE:
            _RANGES.clear()
        found = _RANGES[text] = _range(text) or ()
    return found or None


def _range(text: str) -> tuple[int, int] | None:
    if len(text) > 10 and text[10] == "T":
        # A dateTime: a date (exactly 10 characters when it matches) and a time of day, each
        # parsed once however many dateTimes share it.
        day_text = text[:10]
        if day_text in _DAY_STARTS:
            day = _DAY_STARTS[day_text]
        else:
            if len(_DAY_STARTS) >= CACHE_SIZE:
                _DAY_STARTS.clear()
            whole_day = _parse(day_text)
            day = _DAY_STARTS[day_text] = whole_day[0] if whole_day else None
        if day is None:
            return None
        time_text = text[10:]
        time = _TIMES.get(time_text)
        if time is None:
            if len(_TIMES) >= CACHE_SIZE:
                _TIMES.clear()
            time = _TIMES[time_text] = _time(time_text) or ()
        if not time:
            return None
        low = day + time[0]
        return low, low + time[1] - 1
    return _parse(text)


def _time(text: str) -> tuple[int, int] | None:
    """(microseconds from the day's start in UTC, width) of `Thh:mm[:ss[.fff]][zone]`."""
    match = _TIME.fullmatch(text)
    if match is None:
        return None
    return _time_of_day(*match.groups())


def _time_of_day(
    hh: str, mm: str, ss: str | None, frac: str | None, tz: str | None
) -> tuple[int, int] | None:
    """(microseconds from the day's start in UTC, width) of a matched time of day."""
    hour, minute = int(hh), int(mm)
    if hour > 23 or minute > 59:
        return None
    low = (hour * 3600 + minute * 60) * 1_000_000
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
    return low, width


def _parse(text: str) -> tuple[int, int] | None:
    """date_range, computed."""
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
        time = _time_of_day(hh, mm, ss, frac, tz)
        if time is None:
            return None
        low = day + time[0]
        return low, low + time[1] - 1
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


def add_rows(code: str, values: Any, rows: IndexRows) -> int:
    """Rows of `values`: a list of values, or one value as found in the resource.

    REPEATS if two of the rows added may be equal (the Extractor then removes the repeats),
    else 0.
    """
    if type(values) is list:
        if len(values) != 1:
            out = rows.dates
            start = len(out)
            for value in values:
                if type(value) is not list:
                    add_rows(code, value, rows)
            return unique_tail(out, start, REPEATS)
        values = values[0]
    if type(values) is str:
        found = _RANGES.get(values) or date_range(values)
    elif type(values) is dict:
        if "start" in values or "end" in values:
            found = _period(values)
        elif "event" in values or "repeat" in values:
            found = _timing(values)
        else:
            return 0
    elif values is not None and not isinstance(values, bool | int | float):
        found = date_range(str(values))  # a fhirpathpy date object
    else:
        return 0
    if found:
        low, high = found
        rows.dates.append((code, low, high))
    return 0
