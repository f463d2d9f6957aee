"""What the walker remembers between resources: values and objects already found valid.

Codes, systems, units, displays, whole Codings, Quantities, CodeableConcepts and reference
ranges repeat from one resource to the next (the demo population's 5,000 resources hold some
17,000 Codings, 180 of them distinct). Each primitive element remembers the strings found valid
for it (`ElementSpec.valid`), each object element the objects (`ElementSpec.valid_objects`, by
their JSON text; elements of the same type, check and binding share theirs), so that a repeated
value costs a set lookup instead of its checks.

A value is remembered only when validating it reported nothing and had no other effect (a local
`#id` reference), and its validity depends on nothing but the element: the types whose
invariants look beyond the object (%resource) are never remembered (`walk._context_free`).
Strings are looked up only when they are of type str exactly. Objects are identified by their
JSON text, written by orjson so that 1, 1.0 and true, or "1" and 1, differ, and a FHIR decimal
by its own text; orjson writes NaN and the infinities (which Python's JSON parser accepts) as
null, so objects holding a null are not remembered. This assumes JSON values, as a JSON parser
makes them: dict, list, str, int, float, bool, None and `vnehr.fhir.json.FhirDecimal` (objects
holding subclasses of str, int or dict, dates or dataclasses are never remembered; tuples,
UUIDs and enums, which orjson writes as lists and strings, are not JSON values and not
supported).

The results are the ones of a walk remembering nothing, except in one respect: a walk so deep
that it meets Python's recursion limit (hundreds of levels of nesting, reported as
"too-costly") meets it where the calls happen to reach it, and skipping remembered values moves
that point. Objects are therefore remembered only when small (MAX_OBJECT_NESTING) and looked up
only less than 200 levels deep (MEMO_PATH), which keeps it within a level or two.

The caches are bounded: strings of at most MAX_VALUE_LENGTH characters, objects of at most
MAX_OBJECT_BYTES, MAX_PER_ELEMENT entries per cache (one whose values seldom repeat, such as
dates or names, is emptied when full) and about BUDGET bytes in all (past that every cache is
emptied; they fill again from the next resources). On the demo population they settle at 5-6 MB.
"""

from __future__ import annotations

from typing import Any

import orjson

from vnehr.fhir.json import FhirDecimal
from vnehr.fhir.validation.model import ElementSpec

MAX_VALUE_LENGTH = 128
MAX_OBJECT_BYTES = 1024
MAX_OBJECT_NESTING = 32  # objects and arrays in a remembered object (an upper bound on depth)
MEMO_PATH = 400  # objects are looked up at shorter paths only (at least 2 characters a level)
MAX_PER_ELEMENT = 1000
BUDGET = 8 * 1024 * 1024
ENTRY_OVERHEAD = 100  # bytes of a set slot and of the str or bytes object, roughly
ENABLED = True  # False: remember nothing (the tests compare results both ways)


class Cache(set[Any]):
    """A set of valid values or objects, and roughly how many bytes it holds."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        super().__init__()
        self.size = 0


_caches: list[Cache] = []  # every cache in use
_used = 0  # bytes held by all caches, roughly

JSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def json_default(value: Any) -> Any:
    """orjson's fallback: a FHIR decimal as its text, marked by a NUL byte (which orjson
    escapes in strings, so nothing else can produce it); anything else is not remembered."""
    if type(value) is FhirDecimal:
        return orjson.Fragment(b"\x00" + value.text.encode())
    raise TypeError(type(value).__name__)


def remember_value(el: ElementSpec, value: str) -> None:
    """Note that `value` is valid for `el`."""
    global _used
    if len(value) > MAX_VALUE_LENGTH or not el.remembers or not ENABLED:
        return
    valid = el.valid
    if type(valid) is not Cache:
        valid = el.valid = new_cache()
    elif len(valid) >= MAX_PER_ELEMENT or _used >= BUDGET:
        _make_room(valid)
    valid.add(value)
    valid.size += len(value) + ENTRY_OVERHEAD
    _used += len(value) + ENTRY_OVERHEAD


def remember_object(el: ElementSpec, key: bytes) -> None:
    """Note that the object written `key` is valid for `el`."""
    global _used
    if len(key) > MAX_OBJECT_BYTES or not ENABLED:
        return
    if key.count(b"{") + key.count(b"[") > MAX_OBJECT_NESTING or b"null" in key:
        return  # too deep; or null, which is also how orjson writes NaN and infinities
    valid = el.valid_objects
    if type(valid) is not Cache:
        valid = el.valid_objects = new_cache()
    elif len(valid) >= MAX_PER_ELEMENT or _used >= BUDGET:
        _make_room(valid)
    valid.add(key)
    valid.size += len(key) + ENTRY_OVERHEAD
    _used += len(key) + ENTRY_OVERHEAD


def forget_all() -> None:
    """Empty every cache."""
    global _used
    for cache in _caches:
        cache.clear()
        cache.size = 0
    _used = 0


def new_cache() -> Cache:
    """A new cache, emptied with the others when they hold too much."""
    cache = Cache()
    _caches.append(cache)
    return cache


def _make_room(cache: Cache) -> None:
    """Empty a full cache (dates, names, references: values that seldom repeat fill theirs),
    or all of them when together they hold too much."""
    global _used
    if _used >= BUDGET:
        forget_all()
    else:
        _used -= cache.size
        cache.clear()
        cache.size = 0
