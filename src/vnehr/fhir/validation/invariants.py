"""Evaluation of the specification's invariants (constraints) on resources and data types.

https://hl7.org/fhir/R4/conformance-rules.html#constraints. Each invariant is compiled once per
type (`fhirpath_compile`) on first use and cached. An invariant fails only when its expression
is not true, as in the HL7 validator (an empty result fails: `start <= end` is empty when a
date is compared with a dateTime of the same day); one this evaluator cannot compute (an
evaluation error) counts as satisfied, so that a limit of the evaluator never rejects a resource.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from vnehr.errors import Issue
from vnehr.fhir import definitions
from vnehr.fhir.validation.fhirpath_compile import Env, Fn, compile_expression, to_bool
from vnehr.fhir.validation.fhirpath_parse import FhirPathSyntaxError
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
    compiled = spec.compiled
    if compiled is None:
        compiled = spec.compiled = compiled_invariants(spec.name)
    focus = [obj]
    for inv, fn, keys in compiled:
        if not keys:
            if _fails(fn, focus, env):
                if inv.key == "dom-6" and env.resource is not env.root:
                    continue  # contained resources need no narrative of their own
                out.append(_issue(inv, path))
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
