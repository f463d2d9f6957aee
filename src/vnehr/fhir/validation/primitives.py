"""Checks of FHIR primitive values in JSON: https://hl7.org/fhir/R4/datatypes.html#primitive

One function per primitive type, returning None for a good value or the problem as text.
The regexes are the specification's (from the derived tables), compiled with re.ASCII so that
`\\s` means what it means in Java and XML Schema (not Unicode spaces, which are allowed in
strings). Calendar validity (no 30 February) is checked on top of the regexes, as the HL7
validator does; where a regex would backtrack badly on large input (base64Binary) an
equivalent check is written out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from vnehr.fhir import definitions

Check = Callable[[Any], str | None]

MAX_STRING = 1024 * 1024  # "Strings SHALL NOT exceed 1MB in size"
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_WHITESPACE = re.compile(r"\s+")
_UUID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_OID = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# "MM-DD" of every day of the calendar but 29 February, which needs the year: a date whose
# month and day are here needs no other calendar check.
_CALENDAR = frozenset(
    f"{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, _DAYS[m - 1] + 1)
) - {"02-29"}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if type(value) is str:
        return "a string"
    if type(value) is list:
        return "an array"
    return "an object"


def _string(value: Any) -> str | None:
    if type(value) is not str:
        return f"must be a JSON string, not {_json_kind(value)}"
    if not value:
        return "must not be an empty string"
    if len(value) > MAX_STRING:
        return "is longer than the permitted maximum of 1 MB"
    # Printable strings (the usual) have no control characters; only others need the regex.
    if not value.isprintable() and _CONTROL.search(value):
        return "contains illegal control characters"
    return None


def _regex_string(type_name: str, pattern: str) -> Check:
    rx = re.compile(pattern, re.ASCII)
    fullmatch = rx.fullmatch

    def check(value: Any) -> str | None:
        if type(value) is not str:
            return f"must be a JSON string, not {_json_kind(value)}"
        if not value:
            return "must not be an empty string"
        if fullmatch(value) is None:
            return f"is not a valid {type_name}: {value[:100]!r}"
        return None

    return check


def _uri_like(type_name: str) -> Check:
    def check(value: Any) -> str | None:
        if type(value) is not str:
            return f"must be a JSON string, not {_json_kind(value)}"
        if not value:
            return "must not be an empty string"
        if len(value) > MAX_STRING:
            return "is longer than the permitted maximum of 1 MB"
        # Whitespace other than " " is not printable: most URIs need no regex.
        if (" " in value or not value.isprintable()) and _WHITESPACE.search(value):
            return f"is not a valid {type_name} (it contains whitespace): {value[:100]!r}"
        if value.startswith("urn:"):
            if value.startswith("urn:uuid:") and _UUID.fullmatch(value) is None:
                return f"is not a valid UUID (they must be lowercase): {value[:100]!r}"
            if value.startswith("urn:oid:") and _OID.fullmatch(value) is None:
                return f"is not a valid OID: {value[:100]!r}"
        return None

    return check


def _temporal(type_name: str, pattern: str) -> Check:
    rx = re.compile(pattern, re.ASCII)
    fullmatch = rx.fullmatch

    def check(value: Any) -> str | None:
        if type(value) is not str:
            return f"must be a JSON string, not {_json_kind(value)}"
        if fullmatch(value) is None:
            if type_name == "dateTime" and "T" in value and fullmatch(value + "Z"):
                return f"is not a valid dateTime: a time needs a timezone: {value!r}"
            return f"is not a valid {type_name}: {value[:100]!r}"
        if len(value) >= 10 and type_name != "time" and value[5:10] not in _CALENDAR:
            month, day = int(value[5:7]), int(value[8:10])
            if day > _DAYS[month - 1]:
                return f"is not a valid {type_name}: no day {day} in month {month}: {value!r}"
            if month == 2 and day == 29:
                year = int(value[:4])
                if year % 4 or (year % 100 == 0 and year % 400):
                    return f"is not a valid {type_name}: {year} is not a leap year: {value!r}"
        return None

    return check


def _integer(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if type(value) is not int:
            if isinstance(value, float) and type(value) is not bool and value.is_integer():
                return f"must be an integer, not a decimal ({value})"
            return f"must be a JSON number holding an integer, not {_json_kind(value)}"
        if value < low or value > high:
            return f"is out of range ({value}; must be {low}..{high})"
        return None

    return check


def _decimal(value: Any) -> str | None:
    if not isinstance(value, (int, float)) or type(value) is bool:
        return f"must be a JSON number, not {_json_kind(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return None


def _boolean(value: Any) -> str | None:
    if type(value) is not bool:
        return f"must be a JSON boolean, not {_json_kind(value)}"
    return None


def _base64(value: Any) -> str | None:
    if type(value) is not str:
        return f"must be a JSON string, not {_json_kind(value)}"
    if not value:
        return "must not be an empty string"
    compact = _WHITESPACE.sub("", value) if _WHITESPACE.search(value) else value
    if len(compact) % 4 or _BASE64.fullmatch(compact) is None:
        return f"is not valid base64 content: {value[:40]!r}"
    return None


def _xhtml(value: Any) -> str | None:
    # Full XHTML checks (txt-1, txt-2) are out of scope: docs/validation.md. HTML's named
    # entities (&nbsp;, &reg;) are checked because no XML parser can read them.
    if type(value) is not str:
        return f"must be a JSON string, not {_json_kind(value)}"
    if not value.lstrip().startswith("<div"):
        return "must be an XHTML <div> element"
    if "&" in value:
        for name in _ENTITY.findall(value):
            if name not in _XML_ENTITIES:
                return f"uses the entity &{name}; which XHTML does not define"
    return None


def base64_size(value: str) -> int:
    """The number of bytes a valid base64 string decodes to."""
    compact = _WHITESPACE.sub("", value)
    return len(compact) * 3 // 4 - compact[-2:].count("=")


@cache
def checks() -> dict[str, Check]:
    """The check of every primitive type, by type name."""
    regexes = {name: p.get("regex", "") for name, p in definitions.primitive_types().items()}
    out: dict[str, Check] = {
        "boolean": _boolean,
        "integer": _integer(INT_MIN, INT_MAX),
        "positiveInt": _integer(1, INT_MAX),
        "unsignedInt": _integer(0, INT_MAX),
        "decimal": _decimal,
        "string": _string,
        "markdown": _string,
        "base64Binary": _base64,
        "xhtml": _xhtml,
        "uri": _uri_like("uri"),
        "url": _uri_like("url"),
        "canonical": _uri_like("canonical"),
    }
    for name in ("date", "dateTime", "instant", "time"):
        out[name] = _temporal(name, regexes[name])
    for name in ("code", "id", "oid", "uuid"):
        out[name] = _regex_string(name, regexes[name])
    missing = set(regexes) - set(out)
    if missing:
        raise RuntimeError(f"no check for primitive types {sorted(missing)}")
    return out
