"""The FHIRPath functions the R4 invariants use: https://hl7.org/fhirpath/N1/#functions

Each entry of `FUNCTIONS` makes a closure from the compiled input and arguments. Criteria
arguments (`where`, `all`, `exists`, `select`, `iif`) are compiled with one item as their
focus and called once per item.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from vnehr.fhir.validation.fhirpath_values import (
    Collection,
    Env,
    EvalError,
    Fn,
    children,
    descendants,
    distinct,
    to_bool,
    value_key,
)


def _string_fn(
    compute: Callable[[str, list[Collection]], Any], on_empty: Collection | None = None
) -> Callable[[Fn, list[Fn]], Fn]:
    """A string function; `on_empty` is its result for an empty input (default: empty).

    The HL7 validator's startsWith/endsWith/contains/matches answer false for an empty input
    (N1 says empty); invariants such as bdl-8 `fullUrl.contains('/_history/').not()` rely on it.
    """
    empty_result = on_empty if on_empty is not None else []

    def make(base: Fn, args: list[Fn]) -> Fn:
        def fn(f: Collection, env: Env) -> Collection:
            values = base(f, env)
            if not values:
                return list(empty_result)
            if len(values) > 1:
                raise EvalError("a string function on several items")
            if type(values[0]) is not str:
                return []
            arg_values = [a(f, env) for a in args]
            if any(not v for v in arg_values):
                return []
            result = compute(values[0], arg_values)
            return [] if result is None else [result]

        return fn

    return make


def _substring(s: str, args: list[Collection]) -> str | None:
    start = args[0][0]
    if start < 0 or start >= len(s):
        return None
    return s[start : start + args[1][0]] if len(args) > 1 else s[start:]


def _to_integer(base: Fn, args: list[Fn]) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        values = base(f, env)
        if len(values) != 1:
            return []
        v = values[0]
        if type(v) is int:
            return [v]
        if type(v) is bool:
            return [int(v)]
        if type(v) is str and re.fullmatch(r"[+-]?\d+", v):
            return [int(v)]
        return []

    return fn


def _to_string(base: Fn, args: list[Fn]) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        values = base(f, env)
        if len(values) != 1 or type(values[0]) in (dict, list):
            return []
        v = values[0]
        if type(v) is bool:
            return ["true" if v else "false"]
        return [str(v)]

    return fn


def _iif(base: Fn, args: list[Fn]) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        focus = base(f, env)
        if len(focus) > 1:
            raise EvalError("iif() on several items")
        if to_bool(args[0](focus, env)) is True:
            return args[1](focus, env)
        return args[2](focus, env) if len(args) > 2 else []

    return fn


def _exists(base: Fn, args: list[Fn]) -> Fn:
    if args:
        crit = args[0]
        return lambda f, env: [any(to_bool(crit([i], env)) is True for i in base(f, env))]
    return lambda f, env: [bool(base(f, env))]


def _all(base: Fn, args: list[Fn]) -> Fn:
    crit = args[0]
    return lambda f, env: [all(to_bool(crit([i], env)) is True for i in base(f, env))]


def _where(base: Fn, args: list[Fn]) -> Fn:
    crit = args[0]
    return lambda f, env: [i for i in base(f, env) if to_bool(crit([i], env)) is True]


def _select(base: Fn, args: list[Fn]) -> Fn:
    proj = args[0]

    def fn(f: Collection, env: Env) -> Collection:
        out: Collection = []
        for i in base(f, env):
            out.extend(proj([i], env))
        return out

    return fn


def _not(base: Fn, args: list[Fn]) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        b = to_bool(base(f, env))
        return [] if b is None else [not b]

    return fn


def _has_value(base: Fn, args: list[Fn]) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        values = base(f, env)
        return [len(values) == 1 and type(values[0]) not in (dict, list)]

    return fn


def _is_distinct(base: Fn, args: list[Fn]) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        values = base(f, env)
        return [len({value_key(v) for v in values}) == len(values)]

    return fn


def _extension(base: Fn, args: list[Fn]) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        urls = args[0](f, env)
        if len(urls) != 1:
            return []
        return [
            e
            for item in base(f, env)
            if type(item) is dict
            for e in item.get("extension", [])
            if type(e) is dict and e.get("url") == urls[0]
        ]

    return fn


def _set_op(kind: str) -> Callable[[Fn, list[Fn]], Fn]:
    def make(base: Fn, args: list[Fn]) -> Fn:
        def fn(f: Collection, env: Env) -> Collection:
            a, b = base(f, env), args[0](f, env)
            if kind == "combine":
                return a + b
            if kind == "union":
                return distinct(a + b)
            keys = {value_key(v) for v in b}
            if kind == "intersect":
                return distinct([v for v in a if value_key(v) in keys])
            return [v for v in a if value_key(v) not in keys]  # exclude

        return fn

    return make


def _now(kind: str) -> Callable[[Fn, list[Fn]], Fn]:
    def make(base: Fn, args: list[Fn]) -> Fn:
        def fn(f: Collection, env: Env) -> Collection:
            if kind == "today":
                return [date.today().isoformat()]
            return [datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")]

        return fn

    return make


def _simple(compute: Callable[[Collection], Collection]) -> Callable[[Fn, list[Fn]], Fn]:
    def make(base: Fn, args: list[Fn]) -> Fn:
        return lambda f, env: compute(base(f, env))

    return make


def _single(values: Collection) -> Collection:
    if len(values) > 1:
        raise EvalError("single() on several items")
    return values


def _trace(base: Fn, args: list[Fn]) -> Fn:
    return base


def _html_checks(base: Fn, args: list[Fn]) -> Fn:
    # XHTML content rules are out of scope (docs/validation.md); the walker checks `<div`.
    return lambda f, env: [True]


FUNCTIONS: dict[str, Callable[[Fn, list[Fn]], Fn]] = {
    "exists": _exists,
    "empty": _simple(lambda v: [not v]),
    "not": _not,
    "count": _simple(lambda v: [len(v)]),
    "first": _simple(lambda v: v[:1]),
    "last": _simple(lambda v: v[-1:]),
    "tail": _simple(lambda v: v[1:]),
    "single": _simple(_single),
    "distinct": _simple(distinct),
    "isDistinct": _is_distinct,
    "where": _where,
    "select": _select,
    "all": _all,
    "allTrue": _simple(lambda v: [all(x is True for x in v)]),
    "anyTrue": _simple(lambda v: [any(x is True for x in v)]),
    "iif": _iif,
    "hasValue": _has_value,
    "children": _simple(lambda v: [c for i in v for c in children(i)]),
    "descendants": _simple(descendants),
    "trace": _trace,
    "htmlChecks": _html_checks,
    "extension": _extension,
    "combine": _set_op("combine"),
    "union": _set_op("union"),
    "intersect": _set_op("intersect"),
    "exclude": _set_op("exclude"),
    "toInteger": _to_integer,
    "toString": _to_string,
    "today": _now("today"),
    "now": _now("now"),
    "matches": _string_fn(lambda s, a: re.search(a[0][0], s, re.DOTALL) is not None, [False]),
    "startsWith": _string_fn(lambda s, a: s.startswith(a[0][0]), [False]),
    "endsWith": _string_fn(lambda s, a: s.endswith(a[0][0]), [False]),
    "contains": _string_fn(lambda s, a: a[0][0] in s, [False]),
    "length": _string_fn(lambda s, a: len(s)),
    "upper": _string_fn(lambda s, a: s.upper()),
    "lower": _string_fn(lambda s, a: s.lower()),
    "substring": _string_fn(_substring),
    "replaceMatches": _string_fn(lambda s, a: re.sub(a[0][0], a[1][0], s)),
    "replace": _string_fn(lambda s, a: s.replace(a[0][0], a[1][0])),
    "indexOf": _string_fn(lambda s, a: s.find(a[0][0])),
}
