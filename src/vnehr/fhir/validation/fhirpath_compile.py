"""Compile FHIRPath invariants into Python closures over FHIR JSON: https://hl7.org/fhirpath/N1/

Why not evaluate with fhirpathpy at run time: an evaluation costs 20-50 µs even for
`dataAbsentReason.empty() or value.empty()`, more than the whole budget for validating a
resource. Compiled once here, the same invariant costs about a microsecond. The compiler uses
the element tables to resolve names statically (`value` on Observation is one of the
`value[x]` keys), so no type inference happens per call.
tests/conformance/test_spec_examples.py checks the results against fhirpathpy.

A collection is a Python list of JSON values (dicts for complex values, str/int/float/bool for
primitives). Functions the invariants need but this module does not have (`resolve()`,
`memberOf()`, ...) raise `Unsupported` at compile time; such invariants are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from vnehr.fhir import definitions
from vnehr.fhir.validation.fhirpath_functions import FUNCTIONS
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
from vnehr.fhir.validation.fhirpath_values import (
    Collection,
    Env,
    EvalError,
    Fn,
    Unsupported,
    compare,
    distinct,
    equal,
    flatten_into,
    is_number,
    to_bool,
    value_key,
)

__all__ = [
    "CONSTANTS",
    "LAMBDAS",
    "Env",
    "Fn",
    "Unsupported",
    "compare",
    "compile_expression",
    "compile_node",
    "to_bool",
]

CONSTANTS = {
    "%ucum": "http://unitsofmeasure.org",
    "%sct": "http://snomed.info/sct",
    "%loinc": "http://loinc.org",
}
SYSTEM_TYPES = {"Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time"}
# Functions whose arguments are evaluated on each item of their input, not on the focus.
LAMBDAS = frozenset({"where", "select", "all", "exists", "iif", "repeat"})


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


@cache
def _choice_suffixes() -> frozenset[str]:
    types = definitions.type_definitions()
    return frozenset(_cap(n) for n, t in types.items() if "." not in n and t["kind"] != "resource")


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
                                flatten_into(out, item[key])
                return out

            return Compiled(choice, None)
        if el is not None:
            types = el["types"]
            static = types[0] if len(types) == 1 and types[0] != "Resource" else None

            def field_(focus: Collection, env: Env) -> Collection:
                out: Collection = []
                for item in base_fn(focus, env):
                    if type(item) is dict:
                        flatten_into(out, item.get(name))
                return out

            return Compiled(field_, static)
        known = definitions.type_definition(base.type) if base.type is not None else None
        if known is not None and (known["kind"] != "resource" or name[:1].islower()):
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
                    flatten_into(out, value)
                    continue
                n = len(name)
                for key, value in item.items():
                    if key.startswith(name) and key[n:] in suffixes:
                        flatten_into(out, value)
            return out

        return Compiled(dynamic, None)

    def presence(self, node: Member, focus: Compiled, negate: bool) -> Compiled | None:
        """`name.exists()` / `name.empty()` on the focus, as dict lookups (the common case)."""
        if node.base is not None:
            return None
        el = self.element(focus.type, node.name)
        if el is None:
            return None
        choice = el.get("choice")
        keys = tuple(node.name + _cap(t) for t in el["types"]) if choice else (node.name,)
        base_fn = focus.fn

        def present(f: Collection, env: Env) -> Collection:
            for item in base_fn(f, env):
                if type(item) is dict:
                    for key in keys:
                        value = item.get(key)
                        if value is not None and value != []:
                            return [not negate]
            return [negate]

        return Compiled(present, None)

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
                            flatten_into(out, item.get(key))
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
            return [-v for v in fn(focus, env) if is_number(v)]

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
                same = len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
                return [same != negate]

            return Compiled(eq, None)
        if op in ("~", "!~"):
            negate = op == "!~"

            def equiv(f: Collection, env: Env) -> Collection:
                a, b = lf(f, env), rf(f, env)
                if not a and not b:
                    return [not negate]
                norm = [
                    [" ".join(v.lower().split()) if type(v) is str else value_key(v) for v in c]
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
                return [any(equal(item[0], c) for c in coll)]

            return Compiled(membership, None)
        if op == "|":

            def union(f: Collection, env: Env) -> Collection:
                return distinct(lf(f, env) + rf(f, env))

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
        if name in ("exists", "empty") and not args and isinstance(base_node, Member):
            fast = self.presence(base_node, focus, name == "empty")
            if fast is not None:
                return fast
        item = Compiled(_focus, base.type)  # the focus of a criteria argument: one item
        if name in LAMBDAS:
            arg_fns = [self.compile(a, item).fn for a in args]
        else:
            arg_fns = [self.compile(a, focus).fn for a in args]
        maker = FUNCTIONS.get(name)
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
        if not (is_number(x) and is_number(y)):
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


def compile_expression(
    expression: str, context_type: str | None, resource_type: str | None = None
) -> Fn:
    """A closure evaluating `expression` with the focus typed `context_type`.

    Raises `Unsupported` (or `FhirPathSyntaxError`) when the expression is beyond this module.
    """
    return compile_node(parse(expression), context_type, resource_type)


def compile_node(node: Node, context_type: str | None, resource_type: str | None = None) -> Fn:
    """`compile_expression` for an expression already parsed (or a part of one)."""
    compiler = _Compiler(context_type, resource_type)
    return compiler.compile(node, Compiled(_focus, context_type)).fn
