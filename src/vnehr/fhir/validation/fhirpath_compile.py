"""Compile FHIRPath invariants into Python closures over FHIR JSON: https://hl7.org/fhirpath/N1/

Why not evaluate with fhirpathpy at run time: an evaluation costs 30-50 µs even for
`dataAbsentReason.empty() or value.empty()`, more than the whole budget for validating a
resource. Compiled once here, the same invariant costs about a microsecond. The compiler uses
the element tables to resolve names statically (`value` on Observation is one of the
`value[x]` keys), so no type inference happens per call. tests/unit/fhir/test_invariants.py
checks the results against fhirpathpy on the specification's examples.

A collection is a Python list of JSON values (dicts for complex values, str/int/float/bool for
primitives). Functions the invariants need but this module does not have (`resolve()`,
`memberOf()`, ...) raise `Unsupported` at compile time; such invariants are not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from vnehr.fhir import definitions
from vnehr.fhir.validation.fhirpath_parse import (
    Binary,
    Call,
    Index,
    Literal,
    Member,
    Node,
    TypeTest,
    Unary,
    Variable,
    parse,
)

Collection = list[Any]


@dataclass(slots=True)
class Env:
    """What an invariant sees besides its focus: %resource, %rootResource, %context."""

    resource: Any
    root: Any
    context: Collection = field(default_factory=list)


Fn = Callable[[Collection, Env], Collection]


class Unsupported(ValueError):
    """The expression uses FHIRPath this compiler does not implement."""


class EvalError(ValueError):
    """The expression cannot be evaluated on this input (e.g. a boolean of many items)."""


CONSTANTS = {
    "%ucum": "http://unitsofmeasure.org",
    "%sct": "http://snomed.info/sct",
    "%loinc": "http://loinc.org",
}
SYSTEM_TYPES = {"Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time"}


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


@cache
def _choice_suffixes() -> frozenset[str]:
    types = definitions.type_definitions()
    return frozenset(_cap(n) for n, t in types.items() if "." not in n and t["kind"] != "resource")


def to_bool(coll: Collection) -> bool | None:
    """FHIRPath singleton evaluation of a collection as a boolean (None: empty)."""
    if not coll:
        return None
    if len(coll) == 1:
        value = coll[0]
        return value if type(value) is bool else True
    raise EvalError("a boolean was expected, found several items")


def _flatten_into(out: Collection, value: Any) -> None:
    if type(value) is list:
        out.extend(v for v in value if v is not None)
    elif value is not None:
        out.append(value)


def _children(item: Any) -> Collection:
    out: Collection = []
    if type(item) is dict:
        for key, value in item.items():
            if key != "resourceType" and not key.startswith("_"):
                _flatten_into(out, value)
    return out


def _descendants(coll: Collection) -> Collection:
    out: Collection = []
    stack = list(reversed(coll))
    while stack:
        for child in _children(stack.pop()):
            out.append(child)
            if type(child) is dict:
                stack.append(child)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and type(v) is not bool


def _equal(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return bool(a == b)


def _key(value: Any) -> Any:
    if type(value) in (dict, list):
        return json.dumps(value, sort_keys=True)
    if _is_number(value):
        return ("n", float(value))
    return value


_DATE = re.compile(
    r"(\d{4})(?:-(\d\d)(?:-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(\.\d+)?)?)?"
    r"(Z|[+-]\d\d:\d\d)?)?)?)?"
)
_TIME = re.compile(r"(\d\d)(?::(\d\d)(?::(\d\d)(\.\d+)?)?)?")


def _temporal(value: str) -> tuple[int, tuple[Any, ...]] | None:
    """(precision, comparable components) of a date, dateTime or instant string."""
    m = _DATE.fullmatch(value)
    if m is None:
        m = _TIME.fullmatch(value)
        if m is None:
            return None
        parts = [int(p) for p in m.groups()[:3] if p is not None]
        frac = float(m.group(4)) if m.group(4) else 0.0
        if len(parts) == 3:
            return 13, (parts[0], parts[1], parts[2] + frac)
        return 10 + len(parts), tuple(parts)
    year, month, day, hour, minute, sec, frac, tz = m.groups()
    if hour is None:
        parts = [int(p) for p in (year, month, day) if p is not None]
        return len(parts), tuple(parts)
    text = f"{year}-{month}-{day}T{hour}:{minute or '00'}:{sec or '00'}{frac or ''}"
    dt = datetime.fromisoformat(text + (tz or "").replace("Z", "+00:00"))
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return 6, (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second + dt.microsecond / 1e6)


def compare(a: Any, b: Any) -> int | None:
    """-1, 0 or 1; None when FHIRPath says the comparison is empty (or it is meaningless)."""
    if _is_number(a) and _is_number(b):
        return (a > b) - (a < b)
    if type(a) is str and type(b) is str:
        ta, tb = _temporal(a), _temporal(b)
        if ta is None or tb is None:
            return (a > b) - (a < b)
        (pa, va), (pb, vb) = ta, tb
        if (pa >= 10) != (pb >= 10):
            return None
        n = min(len(va), len(vb))
        ca, cb = va[:n], vb[:n]
        if ca != cb:
            return -1 if ca < cb else 1
        return 0 if pa == pb else None
    if type(a) is dict and type(b) is dict and "value" in a and "value" in b:
        if (a.get("code"), a.get("system")) != (b.get("code"), b.get("system")):
            if a.get("unit") != b.get("unit") or a.get("code") != b.get("code"):
                return None
        return compare(a["value"], b["value"])
    return None


@dataclass(frozen=True, slots=True)
class Compiled:
    fn: Fn
    type: str | None  # the FHIR type of every item, when known statically


def _focus(focus: Collection, env: Env) -> Collection:
    return focus


def _const(value: Any) -> Fn:
    result = [] if value is None else [float(value) if type(value) is Decimal else value]

    def const(focus: Collection, env: Env) -> Collection:
        return result

    return const


class _Compiler:
    def __init__(self, context_type: str | None, resource_type: str | None) -> None:
        self.context_type = context_type
        self.resource_type = resource_type

    # -- navigation -------------------------------------------------------------------------

    def element(self, type_name: str | None, name: str) -> dict[str, Any] | None:
        if type_name is None:
            return None
        return definitions.element_table(type_name).get(name)

    def member(self, base: Compiled, name: str) -> Compiled:
        el = self.element(base.type, name)
        base_fn = base.fn
        if el is None and base.type is not None and name == base.type:
            return base  # `Observation.status` on an Observation: the type name as first step
        if el is not None and el.get("choice"):
            keys = tuple(name + _cap(t) for t in el["types"])

            def choice(focus: Collection, env: Env) -> Collection:
                out: Collection = []
                for item in base_fn(focus, env):
                    if type(item) is dict:
                        for key in keys:
                            if key in item:
                                _flatten_into(out, item[key])
                return out

            return Compiled(choice, None)
        if el is not None:
            types = el["types"]
            static = types[0] if len(types) == 1 and types[0] != "Resource" else None

            def field_(focus: Collection, env: Env) -> Collection:
                out: Collection = []
                for item in base_fn(focus, env):
                    if type(item) is dict:
                        _flatten_into(out, item.get(name))
                return out

            return Compiled(field_, static)
        if base.type is not None and definitions.type_definition(base.type) is not None:
            if definitions.type_definition(base.type)["kind"] != "resource" or name[:1].islower():
                return Compiled(lambda focus, env: [], None)  # no such element: always empty
        suffixes = _choice_suffixes()
        is_type = name[:1].isupper()

        def dynamic(focus: Collection, env: Env) -> Collection:
            out: Collection = []
            for item in base_fn(focus, env):
                if type(item) is not dict:
                    continue
                if is_type:  # a type name used as a path step filters resources
                    if item.get("resourceType") == name:
                        out.append(item)
                    continue
                value = item.get(name)
                if value is not None:
                    _flatten_into(out, value)
                    continue
                n = len(name)
                for key, value in item.items():
                    if key.startswith(name) and key[n:] in suffixes:
                        _flatten_into(out, value)
            return out

        return Compiled(dynamic, None)

    # -- type tests -------------------------------------------------------------------------

    def type_test(self, op: str, operand: Node, type_name: str, focus: Compiled) -> Compiled:
        name = type_name.removeprefix("System.").removeprefix("FHIR.")
        if isinstance(operand, Member):
            base = self.compile(operand.base, focus) if operand.base is not None else focus
            el = self.element(base.type, operand.name)
            if el is not None and el.get("choice"):
                fhir_type = name if name not in SYSTEM_TYPES else name.lower()
                if name == "DateTime":
                    fhir_type = "dateTime"
                matches = [t for t in el["types"] if t.lower() == fhir_type.lower()]
                key = operand.name + _cap(matches[0]) if matches else None
                base_fn = base.fn

                def pick(focus_: Collection, env: Env) -> Collection:
                    out: Collection = []
                    if key is None:
                        return out
                    for item in base_fn(focus_, env):
                        if type(item) is dict:
                            _flatten_into(out, item.get(key))
                    return out

                if op == "as":
                    return Compiled(pick, matches[0] if matches else None)

                def is_(focus_: Collection, env: Env) -> Collection:
                    values = base_fn(focus_, env)
                    if not values:
                        return []
                    return [bool(pick(focus_, env))]

                return Compiled(is_, None)
        inner = self.compile(operand, focus)
        check = self.type_check(name)
        inner_fn = inner.fn
        if op == "as":

            def as_(focus_: Collection, env: Env) -> Collection:
                return [v for v in inner_fn(focus_, env) if check(v)]

            return Compiled(as_, name)

        def is_type(focus_: Collection, env: Env) -> Collection:
            values = inner_fn(focus_, env)
            if len(values) != 1:
                return []
            return [check(values[0])]

        return Compiled(is_type, None)

    def type_check(self, name: str) -> Callable[[Any], bool]:
        lowered = name.lower()
        if name in definitions.resource_types() or name in ("Resource", "DomainResource"):
            if name in ("Resource", "DomainResource"):
                return lambda v: type(v) is dict and "resourceType" in v
            return lambda v: type(v) is dict and v.get("resourceType") == name
        if lowered == "boolean":
            return lambda v: type(v) is bool
        if lowered == "integer":
            return lambda v: type(v) is int
        if lowered == "decimal":
            return lambda v: type(v) in (int, float) or isinstance(v, float)
        if lowered == "string":
            return lambda v: type(v) is str
        raise Unsupported(f"type test against {name}")

    # -- the expression ---------------------------------------------------------------------

    def compile(self, node: Node, focus: Compiled) -> Compiled:
        if isinstance(node, Literal):
            return Compiled(_const(node.value), None)
        if isinstance(node, Variable):
            return self.variable(node.name, focus)
        if isinstance(node, Member):
            base = self.compile(node.base, focus) if node.base is not None else focus
            return self.member(base, node.name)
        if isinstance(node, Call):
            base = self.compile(node.base, focus) if node.base is not None else focus
            return self.call(base, node.name, node.args, node.base, focus)
        if isinstance(node, Index):
            return self.index(self.compile(node.base, focus), self.compile(node.index, focus))
        if isinstance(node, Unary):
            return self.unary(node.op, self.compile(node.operand, focus))
        if isinstance(node, Binary):
            return self.binary(node.op, self.compile(node.left, focus), node.right, focus)
        if isinstance(node, TypeTest):
            return self.type_test(node.op, node.operand, node.type_name, focus)
        raise Unsupported(type(node).__name__)

    def variable(self, name: str, focus: Compiled) -> Compiled:
        if name == "this":
            return focus
        if name in CONSTANTS:
            return Compiled(_const(CONSTANTS[name]), "uri")
        if name == "%resource":
            return Compiled(lambda f, env: [env.resource], self.resource_type)
        if name == "%rootResource":
            return Compiled(lambda f, env: [env.root], None)
        if name == "%context":
            return Compiled(lambda f, env: env.context, self.context_type)
        raise Unsupported(f"variable {name}")

    def index(self, base: Compiled, index: Compiled) -> Compiled:
        base_fn, index_fn = base.fn, index.fn

        def at(focus: Collection, env: Env) -> Collection:
            i = index_fn(focus, env)
            values = base_fn(focus, env)
            if len(i) != 1 or type(i[0]) is not int or not 0 <= i[0] < len(values):
                return []
            return [values[i[0]]]

        return Compiled(at, base.type)

    def unary(self, op: str, operand: Compiled) -> Compiled:
        fn = operand.fn
        if op == "+":
            return operand

        def neg(focus: Collection, env: Env) -> Collection:
            return [-v for v in fn(focus, env) if _is_number(v)]

        return Compiled(neg, operand.type)

    def binary(self, op: str, left: Compiled, right_node: Node, focus: Compiled) -> Compiled:
        right = self.compile(right_node, focus)
        lf, rf = left.fn, right.fn
        if op in ("and", "or", "xor", "implies"):
            return Compiled(_LOGIC[op](lf, rf), None)
        if op in ("=", "!="):
            negate = op == "!="

            def eq(f: Collection, env: Env) -> Collection:
                a, b = lf(f, env), rf(f, env)
                if not a or not b:
                    return []
                same = len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
                return [same != negate]

            return Compiled(eq, None)
        if op in ("~", "!~"):
            negate = op == "!~"

            def equiv(f: Collection, env: Env) -> Collection:
                a, b = lf(f, env), rf(f, env)
                if not a and not b:
                    return [not negate]
                norm = [
                    [" ".join(v.lower().split()) if type(v) is str else _key(v) for v in c]
                    for c in (a, b)
                ]
                return [(sorted(map(str, norm[0])) == sorted(map(str, norm[1]))) != negate]

            return Compiled(equiv, None)
        if op in ("<", "<=", ">", ">="):
            test = _ORDER[op]

            def order(f: Collection, env: Env) -> Collection:
                a, b = lf(f, env), rf(f, env)
                if len(a) != 1 or len(b) != 1:
                    return []
                c = compare(a[0], b[0])
                return [] if c is None else [test(c)]

            return Compiled(order, None)
        if op in ("in", "contains"):
            member_fn, coll_fn = (lf, rf) if op == "in" else (rf, lf)

            def membership(f: Collection, env: Env) -> Collection:
                item, coll = member_fn(f, env), coll_fn(f, env)
                if not item:
                    return []
                if len(item) > 1:
                    raise EvalError("membership test of several items")
                return [any(_equal(item[0], c) for c in coll)]

            return Compiled(membership, None)
        if op == "|":

            def union(f: Collection, env: Env) -> Collection:
                return _distinct(lf(f, env) + rf(f, env))

            return Compiled(union, left.type if left.type == right.type else None)
        if op in ("+", "-", "*", "/", "&", "div", "mod"):
            return Compiled(_arithmetic(op, lf, rf), None)
        raise Unsupported(f"operator {op}")

    # -- functions --------------------------------------------------------------------------

    def call(
        self,
        base: Compiled,
        name: str,
        args: tuple[Node, ...],
        base_node: Node | None,
        focus: Compiled,
    ) -> Compiled:
        fn = base.fn
        if name in ("is", "as", "ofType") and len(args) == 1:
            type_name = _type_name(args[0])
            operand = base_node if base_node is not None else Variable("this")
            return self.type_test("is" if name == "is" else "as", operand, type_name, focus)
        item = Compiled(_focus, base.type)  # the focus of a criteria argument: one item
        lambdas = {"where", "select", "all", "exists", "iif", "repeat"}
        if name in lambdas:
            arg_fns = [self.compile(a, item).fn for a in args]
        else:
            arg_fns = [self.compile(a, focus).fn for a in args]
        maker = _FUNCTIONS.get(name)
        if maker is None:
            raise Unsupported(f"function {name}()")
        if name == "select":
            selected = self.compile(args[0], item)
            return Compiled(maker(fn, arg_fns), selected.type)
        if name == "extension":
            return Compiled(maker(fn, arg_fns), "Extension")
        keeps_type = name in ("where", "first", "last", "tail", "trace", "distinct", "single")
        return Compiled(maker(fn, arg_fns), base.type if keeps_type else None)


def _type_name(node: Node) -> str:
    if isinstance(node, Member) and node.base is None:
        return node.name
    if isinstance(node, Member) and isinstance(node.base, Member):
        return _type_name(node.base) + "." + node.name
    raise Unsupported("type argument")


def _distinct(values: Collection) -> Collection:
    seen: set[Any] = set()
    out: Collection = []
    for v in values:
        k = _key(v)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def _and(lf: Fn, rf: Fn) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        a = to_bool(lf(f, env))
        if a is False:
            return [False]
        b = to_bool(rf(f, env))
        if b is False:
            return [False]
        return [True] if a and b else []

    return fn


def _or(lf: Fn, rf: Fn) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        a = to_bool(lf(f, env))
        if a is True:
            return [True]
        b = to_bool(rf(f, env))
        if b is True:
            return [True]
        return [False] if a is False and b is False else []

    return fn


def _xor(lf: Fn, rf: Fn) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        a, b = to_bool(lf(f, env)), to_bool(rf(f, env))
        return [] if a is None or b is None else [a != b]

    return fn


def _implies(lf: Fn, rf: Fn) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        a = to_bool(lf(f, env))
        if a is False:
            return [True]
        b = to_bool(rf(f, env))
        if b is True:
            return [True]
        if a is True:
            return [] if b is None else [False]
        return [] if b is None or b is False else [True]

    return fn


_LOGIC: dict[str, Callable[[Fn, Fn], Fn]] = {
    "and": _and,
    "or": _or,
    "xor": _xor,
    "implies": _implies,
}
_ORDER: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _arithmetic(op: str, lf: Fn, rf: Fn) -> Fn:
    def fn(f: Collection, env: Env) -> Collection:
        a, b = lf(f, env), rf(f, env)
        if op == "&":
            sa = a[0] if a else ""
            sb = b[0] if b else ""
            return [f"{sa}{sb}"]
        if len(a) != 1 or len(b) != 1:
            return []
        x, y = a[0], b[0]
        if op == "+" and type(x) is str and type(y) is str:
            return [x + y]
        if not (_is_number(x) and _is_number(y)):
            return []
        if op == "+":
            return [x + y]
        if op == "-":
            return [x - y]
        if op == "*":
            return [x * y]
        if y == 0:
            return []
        if op == "/":
            return [x / y]
        if op == "div":
            return [int(x // y)]
        return [x % y]

    return fn


def _string_fn(compute: Callable[[str, list[Collection]], Any]) -> Callable[[Fn, list[Fn]], Fn]:
    def make(base: Fn, args: list[Fn]) -> Fn:
        def fn(f: Collection, env: Env) -> Collection:
            values = base(f, env)
            if not values:
                return []
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
        return [len({_key(v) for v in values}) == len(values)]

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
                return _distinct(a + b)
            keys = {_key(v) for v in b}
            if kind == "intersect":
                return _distinct([v for v in a if _key(v) in keys])
            return [v for v in a if _key(v) not in keys]  # exclude

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


_FUNCTIONS: dict[str, Callable[[Fn, list[Fn]], Fn]] = {
    "exists": _exists,
    "empty": _simple(lambda v: [not v]),
    "not": _not,
    "count": _simple(lambda v: [len(v)]),
    "first": _simple(lambda v: v[:1]),
    "last": _simple(lambda v: v[-1:]),
    "tail": _simple(lambda v: v[1:]),
    "single": _simple(_single),
    "distinct": _simple(_distinct),
    "isDistinct": _is_distinct,
    "where": _where,
    "select": _select,
    "all": _all,
    "allTrue": _simple(lambda v: [all(x is True for x in v)]),
    "anyTrue": _simple(lambda v: [any(x is True for x in v)]),
    "iif": _iif,
    "hasValue": _has_value,
    "children": _simple(lambda v: [c for i in v for c in _children(i)]),
    "descendants": _simple(_descendants),
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
    "matches": _string_fn(lambda s, a: re.search(a[0][0], s, re.DOTALL) is not None),
    "startsWith": _string_fn(lambda s, a: s.startswith(a[0][0])),
    "endsWith": _string_fn(lambda s, a: s.endswith(a[0][0])),
    "contains": _string_fn(lambda s, a: a[0][0] in s),
    "length": _string_fn(lambda s, a: len(s)),
    "upper": _string_fn(lambda s, a: s.upper()),
    "lower": _string_fn(lambda s, a: s.lower()),
    "substring": _string_fn(_substring),
    "replaceMatches": _string_fn(lambda s, a: re.sub(a[0][0], a[1][0], s)),
    "replace": _string_fn(lambda s, a: s.replace(a[0][0], a[1][0])),
    "indexOf": _string_fn(lambda s, a: s.find(a[0][0])),
}


def compile_expression(
    expression: str, context_type: str | None, resource_type: str | None = None
) -> Fn:
    """A closure evaluating `expression` with the focus typed `context_type`.

    Raises `Unsupported` (or `FhirPathSyntaxError`) when the expression is beyond this module.
    """
    compiler = _Compiler(context_type, resource_type)
    return compiler.compile(parse(expression), Compiled(_focus, context_type)).fn
