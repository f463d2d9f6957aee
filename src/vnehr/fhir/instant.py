"""FHIR instants as integer epoch microseconds (UTC), and back to text and HTTP dates."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from vnehr.errors import InvalidRequest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE_TIME = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def now_micros() -> int:
    return time.time_ns() // 1000


# Writes come many to the second: format each second once. One immutable tuple, read and
# replaced whole, so threads never see the parts of two different seconds.
_last_second: tuple[int, str, str] = (-1, "", "")


def _second(micros: int) -> tuple[str, str]:
    global _last_second
    seconds = micros // 1_000_000
    cached = _last_second
    if cached[0] != seconds:
        moment = from_micros(seconds * 1_000_000)
        cached = (
            seconds,
            moment.strftime("%Y-%m-%dT%H:%M:%S"),
            format_datetime(moment, usegmt=True),
        )
        _last_second = cached
    return cached[1], cached[2]


def format_instant(micros: int) -> str:
    """`2026-11-22T15:56:01.123456Z`: the form of meta.lastUpdated."""
    return f"{_second(micros)[0]}.{micros % 1_000_000:06d}Z"


def http_date(micros: int) -> str:
    """RFC 9110 date for Last-Modified."""
    return _second(micros)[1]


def parse_range(text: str, name: str = "date") -> tuple[int, int]:
    """The inclusive range [low, high] in epoch microseconds that a FHIR dateTime covers.

    `2024` covers the whole year; a time without zone is taken as UTC.
    """
    match = _DATE_TIME.fullmatch(text.strip())
    if match is None:
        raise InvalidRequest(f"Invalid date/time value for '{name}': {text!r}")
    g = match.groupdict()
    try:
        year = int(g["y"])
        month = int(g["m"] or 1)
        day = int(g["d"] or 1)
        hour = int(g["H"] or 0)
        minute = int(g["M"] or 0)
        second = int(g["S"] or 0)
        frac = g["f"] or ""
        micro = int((frac + "000000")[:6]) if frac else 0
        tz = g["tz"]
        if g["H"] is not None and tz is None:
            tz = "Z"
        offset = timedelta(0)
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            offset = sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        start = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC) - offset
    except ValueError:
        raise InvalidRequest(f"Invalid date/time value for '{name}': {text!r}") from None
    if g["m"] is None:
        end = start.replace(year=year + 1)
    elif g["d"] is None:
        end = (
            start.replace(year=year + 1, month=1) if month == 12 else start.replace(month=month + 1)
        )
    elif g["H"] is None:
        end = start + timedelta(days=1)
    elif g["S"] is None:
        end = start + timedelta(minutes=1)
    elif not frac:
        end = start + timedelta(seconds=1)
    else:
        end = start + timedelta(microseconds=10 ** max(0, 6 - len(frac)))
    return to_micros(start), to_micros(end) - 1
