"""FHIR JSON codec: orjson speed, with FHIR decimals kept exactly as written (`1.50` stays `1.50`).

https://hl7.org/fhir/R4/json.html#primitive: decimals carry their precision, so a value that a
binary float would not write back identically is kept as its original text.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from vnehr.errors import InvalidRequest

# A number a float would not write back identically: trailing zeros after the point,
# an exponent, or more significant digits than a double holds. Strings that merely look
# like such numbers only send the body down the exact (slower) path; they are not changed.
_INEXACT_NUMBER = re.compile(rb"[0-9]\.[0-9]*0(?![0-9])|[0-9][eE][-+]?[0-9]|[0-9.]{17,}")


class FhirDecimal(float):
    """A float that remembers the text it was written as."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> FhirDecimal:
        value = float.__new__(cls, text)
        value.text = text
        return value

    def __repr__(self) -> str:
        return self.text


def _exact_int(text: str) -> int | FhirDecimal:
    value = int(text)
    if -(2**63) <= value < 2**64:
        return value
    return FhirDecimal(text)


def _default(value: Any) -> Any:
    if isinstance(value, FhirDecimal):
        return orjson.Fragment(value.text.encode())
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def loads(data: bytes | str) -> Any:
    """Parse a JSON body; malformed JSON raises InvalidRequest naming line and column."""
    raw = data.encode() if isinstance(data, str) else data
    if _INEXACT_NUMBER.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard library gives the better message below
    try:
        return json.loads(raw, parse_float=FhirDecimal, parse_int=_exact_int)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from None


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    """Serialise to compact (or indented) JSON bytes."""
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, default=_default, option=option)
