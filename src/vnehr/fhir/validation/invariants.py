"""Evaluation of the specification's invariants (constraints) on resources and data types.

https://hl7.org/fhir/R4/conformance-rules.html#constraints. Each invariant is compiled once per
type (`fhirpath_compile`) on first use and cached. An invariant fails only when its expression
is not true, as in the HL7 validator (an empty result fails: `start <= end` is empty when a
date is compared with a dateTime of the same day); one this evaluator cannot compute (an
evaluation error) counts as satisfied, so that a limit of the evaluator never rejects a resource.

Most invariants are about elements that are usually absent (`comparator.empty()`,
`duration.empty() or durationUnit.exists()`): each invariant of a type gets guards, sets of
JSON keys such that, when the object has none of them, the outcome is known without evaluating
(it is the outcome on an empty object). Guards are only derived for expressions that read the
object through those keys alone (`_Reads`), so they never change a result.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from vnehr.errors import Issue
from vnehr.fhir import definitions
from vnehr.fhir.validation.fhirpath_compile import (
    CONSTANTS,
    LAMBDAS,
    Env,
    Fn,
    compile_expression,
    compile_node,
    to_bool,
)
from vnehr.fhir.validation.fhirpath_parse import (
    Binary,
    Call,
    FhirPathSyntaxError,
    Index,
    Literal,
    Member,
    Node,
    TypeTest,
    Unary,
    Variable,
    parse,
)
from vnehr.fhir.validation.model import Invariant, TypeSpec, type_specs

# Invariants not checked, with the reason (docs/validation.md lists them).
SKIPPED = {
    "ctm-1": "needs resolve() of the referenced resource",
    "txt-1": "XHTML content rules are out of scope",
    "txt-2": "XHTML content rules are out of scope",
}

# R4 expressions known to be wrong, as corrected in later versions of the specification.
CORRECTED = {
    # R4 says "> 2", contradicting its own human text ("more than one"); fixed in R4B/R5.
    "que-12": "enableWhen.count() > 1 implies enableBehavior.exists()",
}

Compiled = tuple[Invariant, Fn, tuple[str, ...]]
# (JSON keys, fails): when an object has none of the keys, the invariant fails (or holds)
# without being evaluated.
Guard = tuple[frozenset[str], bool]
# ... and the issues it has raised, by location: Issue is immutable, and a warning such as
# dom-6 (no narrative) comes up at `Observation` again and again.
Planned = tuple[Invariant, Fn, tuple[str, ...], tuple[Guard, ...], dict[str, Issue]]
MAX_KEPT_ISSUES = 256


def _root_resource_type(type_name: str) -> str | None:
    head = type_name.split(".", 1)[0]
    definition = definitions.type_definition(head)
    return head if definition is not None and definition["kind"] == "resource" else None


def _compile(spec: TypeSpec, inv: Invariant) -> Compiled | None:
    if inv.key in SKIPPED:
        return None
    keys: tuple[str, ...] = ()
    context: str | None = spec.name
    if inv.on:
        els = [e for e in spec.elements.values() if e.name == inv.on or e.choice == inv.on]
        keys = tuple(e.name for e in els)
        context = els[0].type_code if len(els) == 1 else None
    try:
        expression = CORRECTED.get(inv.key, inv.expression)
        fn = compile_expression(expression, context, _root_resource_type(spec.name))
    except (ValueError, FhirPathSyntaxError):
        return None
    return inv, fn, keys


@cache
def compiled_invariants(type_name: str) -> tuple[Compiled, ...]:
    """The checkable invariants of a type, compiled."""
    spec = type_specs()[type_name]
    out = []
    for inv in spec.invariants:
        c = _compile(spec, inv)
        if c is not None:
            out.append(c)
    return tuple(out)


@cache
def planned_invariants(type_name: str) -> tuple[Planned, ...]:
    """`compiled_invariants`, each with its guards (for invariants on the type itself)."""
    spec = type_specs()[type_name]
    return tuple(
        (inv, fn, keys, () if keys else _guards(spec, inv, fn), {})
        for inv, fn, keys in compiled_invariants(type_name)
    )


class _Impure(Exception):
    """The expression may read the focus other than through its elements."""


class _Reads:
    """What an expression on objects of one type reads of its focus."""

    def __init__(self, spec: TypeSpec) -> None:
        self.spec = spec
        self.table = definitions.element_table(spec.name)
        self.root = _root_resource_type(spec.name)

    def keys(self, node: Node, in_lambda: bool = False) -> set[str]:
        """The JSON keys of the focus `node` reads, when it reads the focus only through them.

        Raises _Impure when the expression may see more of the focus: `$this`, `%context`,
        `%resource` (which may be the focus), a function applied to the focus itself
        (`where()`, `children()`), a type name as a step; or when it depends on the clock.
        Names inside a function's criteria (`where(system = ...)`) are read on the items, not
        on the focus; and criteria are never evaluated when the items are the focus's and it
        has none (`component.where(... %resource ...)` without `component`).
        """
        if isinstance(node, Literal):
            return set()
        if isinstance(node, Variable):
            if node.name in CONSTANTS or (node.name == "this" and in_lambda):
                return set()
            raise _Impure
        if isinstance(node, Member):
            if node.base is not None:
                return self.keys(node.base, in_lambda)
            if in_lambda:
                return set()
            if not node.name[:1].islower():
                raise _Impure
            el = self.table.get(node.name)
            if el is not None and el.get("choice"):
                return {node.name + t[:1].upper() + t[1:] for t in el["types"]}
            return {node.name}
        if isinstance(node, Call):
            return self._call(node, in_lambda)
        if isinstance(node, Index):
            return self.keys(node.base, in_lambda) | self.keys(node.index, in_lambda)
        if isinstance(node, Unary):
            return self.keys(node.operand, in_lambda)
        if isinstance(node, Binary):
            return self.keys(node.left, in_lambda) | self.keys(node.right, in_lambda)
        if isinstance(node, TypeTest):
            return self.keys(node.operand, in_lambda)
        raise _Impure

    def _call(self, node: Call, in_lambda: bool) -> set[str]:
        if node.name in ("today", "now"):
            raise _Impure
        if node.base is None and not in_lambda:
            raise _Impure
        keys = set() if node.base is None else self.keys(node.base, in_lambda)
        if node.name in ("is", "as", "ofType"):
            return keys  # the argument is a type name
        criteria = node.name in LAMBDAS and node.name != "iif"  # iif() evaluates on nothing
        if criteria and node.base is not None and not in_lambda and self.evaluate(node.base) == []:
            return keys  # without those keys, no item to evaluate the criteria on
        inner = in_lambda or node.name in LAMBDAS
        for arg in node.args:
            keys |= self.keys(arg, inner)
        return keys

    def evaluate(self, node: Node) -> Any:
        """The value of `node` on an empty object (`_Impure` if it cannot be computed)."""
        try:
            return compile_node(node, self.spec.name, self.root)([{}], Env({}, {}))
        except Exception:
            raise _Impure from None


def _operands(node: Node, op: str) -> list[Node]:
    """`a or b or c` as [a, b, c]."""
    if isinstance(node, Binary) and node.op == op:
        return _operands(node.left, op) + _operands(node.right, op)
    return [node]


def _guards(spec: TypeSpec, inv: Invariant, fn: Fn) -> tuple[Guard, ...]:
    """The guards of an invariant on the type itself (see the module's docstring).

    A pure expression (`_Reads.keys`) has the outcome it has on `{}` when its keys are absent. So
    does a pure operand of a top-level `or` that is true on `{}`, and then the whole `or` holds
    (earlier operands can only make it true, or fail to evaluate, which counts as holding);
    likewise a pure left side of `implies` false on `{}`, or a pure right side true on `{}`.
    """
    reads = _Reads(spec)
    try:
        node = parse(CORRECTED.get(inv.key, inv.expression))
    except FhirPathSyntaxError:
        return ()
    if isinstance(node, Binary) and node.op == "or":
        parts = [(part, True) for part in _operands(node, "or")]
    elif isinstance(node, Binary) and node.op == "implies":
        parts = [(node.left, False), (node.right, True)]
    else:
        parts = []
    guards: list[Guard] = []
    for part, holds_when in parts:
        try:
            keys = frozenset(reads.keys(part))
            value = to_bool(reads.evaluate(part))
        except Exception:  # _Impure, or beyond the evaluator: no guard
            continue
        if value is holds_when:
            guards.append((keys, False))
    try:
        keys = frozenset(reads.keys(node))
    except _Impure:
        return tuple(guards)
    if not any(other <= keys for other, _ in guards):  # else it would add nothing
        guards.append((keys, _fails(fn, [{}], Env({}, {}))))
    return tuple(guards)


def checkable_keys() -> set[str]:
    """The keys of every invariant this module evaluates."""
    return {inv.key for name in type_specs() for inv, _, _ in compiled_invariants(name)}


def _fails(fn: Fn, focus: list[Any], env: Env) -> bool:
    env.context = focus
    try:
        return to_bool(fn(focus, env)) is not True
    except Exception:  # a limit of the evaluator, not a fault of the resource
        return False


def check(spec: TypeSpec, obj: dict[str, Any], path: str, env: Env, out: list[Issue]) -> None:
    """Append an issue for every invariant of `spec` that `obj` fails."""
    planned = spec.compiled
    if planned is None:
        planned = spec.compiled = planned_invariants(spec.name)
    present = obj.keys()
    focus = [obj]
    for inv, fn, keys, guards, issues in planned:
        if not keys:
            for guard, outcome in guards:
                if present.isdisjoint(guard):
                    fails = outcome
                    break
            else:
                fails = _fails(fn, focus, env)
            if fails:
                if inv.key == "dom-6" and env.resource is not env.root:
                    continue  # contained resources need no narrative of their own
                issue = issues.get(path)
                if issue is None:
                    if len(issues) >= MAX_KEPT_ISSUES:
                        issues.clear()
                    issue = issues[path] = _issue(inv, path)
                out.append(issue)
            continue
        for key in keys:
            value = obj.get(key)
            if value is None:
                continue
            if type(value) is list:
                for i, item in enumerate(value):
                    if item is not None and _fails(fn, [item], env):
                        out.append(_issue(inv, f"{path}.{key}[{i}]"))
            elif _fails(fn, [value], env):
                out.append(_issue(inv, f"{path}.{key}"))


def _issue(inv: Invariant, path: str) -> Issue:
    return Issue(inv.severity, "invariant", f"{inv.key}: {inv.human}", (path,))
