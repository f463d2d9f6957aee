"""Compile SearchParameter FHIRPath expressions into plain-Python element walkers.

https://hl7.org/fhir/R4/searchparameter-definitions.html. Nearly every R4 expression is a
union of simple paths with `as`/`ofType`, `where(resolve() is Patient)`, `where(system='x')`,
`extension('url')` and indexers: those compile to closures over plain dicts and lists. An
expression that uses anything else is evaluated by fhirpathpy instead (`Path.native` False).

A walker maps a collection (list) to a collection. A compiled `Path` is split, per union
member, into the top-level JSON key(s) the member starts from and the walker applied to
their values, so that the extractor only looks at parameters whose elements are present.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from vnehr.search.extract.fhirpath import (
    Binary,
    Call,
    FhirPathSyntaxError,
    Ident,
    Index,
    Literal,
    Member,
    Node,
    TypeOp,
    Var,
    parse,
)
from vnehr.search.extract.reference import TYPES as _REFERENCE_TYPES
from vnehr.search.extract.reference import reference_type

__all__ = ["Branch", "Path", "PathCompiler", "PathError", "Walker"]

log = logging.getLogger(__name__)

Walker = Callable[[list[Any]], list[Any]]
_ABSTRACT = ("Resource", "DomainResource")
# More allowed types than this: look for the element by scanning the node's keys instead.
_SCAN_OVER = 8


# FHIRPath `as`/`ofType` match subtypes too (https://hl7.org/fhirpath/N1/#as-type-specifier):
# `ConceptMap.source as uri` is sourceUri or sourceCanonical.
_SUBTYPES = {
    "uri": ("url", "canonical", "oid", "uuid"),
    "string": ("code", "id", "markdown"),
    "integer": ("positiveInt", "unsignedInt"),
    "Quantity": ("Age", "Count", "Distance", "Duration", "MoneyQuantity", "SimpleQuantity"),
}


class PathError(ValueError):
    """The expression can be neither compiled nor evaluated."""


class _Unsupported(Exception):
    """This construct is not compiled natively."""


@dataclass(frozen=True, slots=True)
class Branch:
    """One union member: read `keys` of the resource, then apply `walk` (None: as they are).

    `sig` describes `walk` when it only steps into elements (() for None): two branches with
    the same keys and sig reach the same values. None: a walk not described (where(), ...).
    """

    keys: tuple[str, ...]
    walk: Walker | None
    sig: Hashable | None = None


@dataclass(frozen=True, slots=True)
class Path:
    """A compiled expression for one resource type."""

    expression: str
    branches: tuple[Branch, ...]
    # Evaluated on the whole resource ([resource] -> values): booleans, the fhirpathpy fallback.
    whole: tuple[Walker, ...]
    native: bool  # False: fhirpathpy evaluates the whole expression


@dataclass(slots=True)
class _Compiled:
    fn: Walker
    # For a plain path from the resource: its steps, so the first can become a Branch.
    steps: list[_Step] | None
    # The FHIR type path of the result (`Observation.component`), None if unknown.
    ctx: str | None


@dataclass(slots=True)
class _Step:
    fn: Walker
    keys: tuple[str, ...] = ()  # a child step: the JSON names it reads
    name: str = ""  # a child step: the element name
    ctx: str | None = None  # a child step: the type path of its parent
    sig: Hashable | None = None  # a child step: what its walker does, to compare steps


def _identity(focus: list[Any]) -> list[Any]:
    return focus


def _nothing(focus: list[Any]) -> list[Any]:
    return []


def _chain(steps: list[_Step]) -> Walker:
    fns = [s.fn for s in steps]
    if not fns:
        return _identity
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        first, second = fns

        def two(focus: list[Any]) -> list[Any]:
            found = first(focus)
            return second(found) if found else found

        return two

    def walk(focus: list[Any]) -> list[Any]:
        for fn in fns:
            focus = fn(focus)
            if not focus:
                break
        return focus

    return walk


def _child(key: str) -> Walker:
    def child(focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        for node in focus:
            if type(node) is dict:
                value = node.get(key)
                if value is not None:
                    if type(value) is list:
                        out.extend(value)
                    else:
                        out.append(value)
        return out

    return child


def _first_of(keys: tuple[str, ...]) -> Walker:
    """A choice element: the first of its JSON names present (only one may be)."""

    def child(focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        for node in focus:
            if type(node) is dict:
                for key in keys:
                    value = node.get(key)
                    if value is not None:
                        if type(value) is list:
                            out.extend(value)
                        else:
                            out.append(value)
                        break
        return out

    return child


def _scan(name: str, suffixes: frozenset[str]) -> Walker:
    """An open choice element (Extension.value[x]): look through the node's few keys."""
    size = len(name)

    def child(focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        for node in focus:
            if type(node) is not dict:
                continue
            value = node.get(name)
            if value is None:
                for key, candidate in node.items():
                    if key.startswith(name) and key[size:] in suffixes:
                        value = candidate
                        break
                else:
                    continue
            if type(value) is list:
                out.extend(value)
            else:
                out.append(value)
        return out

    return child


def _where(predicate: Callable[[Any], bool]) -> Walker:
    def where(focus: list[Any]) -> list[Any]:
        return [node for node in focus if predicate(node)]

    return where


def _where_type(target: str) -> Walker:
    """where(resolve() is target): the references to that type."""

    def where(focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        for node in focus:
            if type(node) is dict:
                reference = node.get("reference")
                if type(reference) is str:
                    known = _REFERENCE_TYPES.get(reference)
                    if (known[0] if known is not None else reference_type(node)) == target:
                        out.append(node)
                elif reference_type(node) == target:
                    out.append(node)
        return out

    return where


def _resolve_is(node: Node) -> str | None:
    """T if `node` is `resolve() is T`."""
    if (
        isinstance(node, TypeOp)
        and node.op == "is"
        and isinstance(node.base, Call)
        and node.base.name == "resolve"
        and node.base.base is None
        and not node.base.args
    ):
        return node.type_name.removeprefix("FHIR.")
    return None


def _index(n: int) -> Walker:
    def index(focus: list[Any]) -> list[Any]:
        return focus[n : n + 1] if n >= 0 else []

    return index


def _extension(url: str) -> Walker:
    def extension(focus: list[Any]) -> list[Any]:
        return [e for e in focus if type(e) is dict and e.get("url") == url]

    return extension


def _type_suffix(type_name: str) -> str:
    name = type_name.removeprefix("FHIR.").removeprefix("System.")
    return name[:1].upper() + name[1:]


def _equal(a: Any, b: Any) -> bool:
    # FHIRPath: a boolean never equals a number (Python: True == 1).
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return bool(a == b)


class PathCompiler:
    """Compiles expressions for resource types, knowing the choice elements of R4."""

    def __init__(
        self,
        choice_elements: Mapping[str, tuple[str, ...]],
        resource_types: frozenset[str],
    ) -> None:
        self.choices = choice_elements
        self.resource_types = resource_types
        # Choice elements of data types, by element name: used on paths whose type is not
        # known (`X.useContext.value`), where the element may be UsageContext.value[x].
        by_name: dict[str, set[str]] = {}
        for path, types in choice_elements.items():
            if path.split(".", 1)[0] not in resource_types:
                by_name.setdefault(path.rsplit(".", 1)[-1], set()).update(types)
        self.datatype_choices = {name: tuple(sorted(t)) for name, t in by_name.items()}

    def compile(self, expression: str, resource_type: str) -> Path:
        """Compile `expression` for `resource_type`; PathError if it is not FHIRPath."""
        try:
            node = parse(expression)
        except FhirPathSyntaxError as exc:
            raise PathError(str(exc)) from None
        branches: list[Branch] = []
        whole: list[Walker] = []
        try:
            for member in _union_members(node):
                compiled = self._node(member, resource_type, None)
                steps = compiled.steps
                if steps and steps[0].keys:
                    walk = _chain(steps[1:]) if steps[1:] else None
                    sigs = tuple(s.sig for s in steps[1:])
                    sig = None if None in sigs else sigs
                    branches.append(Branch(steps[0].keys, walk, sig))
                elif steps == []:
                    whole.append(_identity)  # the resource itself
                elif compiled.fn is not _nothing:
                    whole.append(compiled.fn)
        except _Unsupported:
            return Path(expression, (), (_fallback(expression),), native=False)
        return Path(expression, tuple(branches), tuple(whole), native=True)

    # -- nodes ---------------------------------------------------------------------------
    # `ctx` is the type path of the focus; None at the top, where the focus is the resource.

    def _node(self, node: Node, resource_type: str, ctx: str | None) -> _Compiled:
        top = ctx is None
        here = resource_type if top else ctx
        if isinstance(node, Ident):
            if top and (node.name == resource_type or node.name in _ABSTRACT):
                return _Compiled(_identity, [], resource_type)
            if node.name[:1].isupper() and node.name in self.resource_types:
                return _Compiled(_nothing, None, None)  # another type's path
            step = self._child_step(node.name, here)
            return _Compiled(step.fn, [step], _join(here, node.name))
        if isinstance(node, Member):
            base = self._node(node.base, resource_type, ctx)
            step = self._child_step(node.name, base.ctx)
            return self._then(base, step, _join(base.ctx, node.name))
        if isinstance(node, Call):
            return self._call(node, resource_type, ctx)
        if isinstance(node, TypeOp):
            if node.op == "as":
                return self._as(self._node(node.base, resource_type, ctx), node.type_name)
            return _Compiled(self._is(node, resource_type, ctx), None, None)
        if isinstance(node, Index):
            if not isinstance(node.index, Literal) or type(node.index.value) is not int:
                raise _Unsupported
            base = self._node(node.base, resource_type, ctx)
            return self._then(base, _Step(_index(node.index.value)), base.ctx)
        if isinstance(node, Literal):
            constant = [] if node.value is None else [node.value]
            return _Compiled(lambda focus: constant, None, None)
        if isinstance(node, Var) and node.name == "$this":
            return _Compiled(_identity, [] if top else None, here)
        if isinstance(node, Var) and node.name in ("%resource", "%rootResource") and top:
            return _Compiled(_identity, [], resource_type)
        if isinstance(node, Binary):
            return _Compiled(self._binary(node, resource_type, ctx), None, None)
        raise _Unsupported  # Unary, %variables

    def _then(self, base: _Compiled, step: _Step, ctx: str | None) -> _Compiled:
        steps = None if base.steps is None else [*base.steps, step]
        if base.fn is _nothing:
            return _Compiled(_nothing, None, None)
        fn = step.fn if base.fn is _identity else _chain([_Step(base.fn), step])
        return _Compiled(fn, steps, ctx)

    def _child_step(self, name: str, ctx: str | None) -> _Step:
        path = _join(ctx, name)
        types = self.choices.get(path) if path else None
        plain_too = False
        if types is None and (path is None or path.count(".") >= 2):
            # Inside a data type (or of unknown type): maybe a data type's choice element.
            types = self.datatype_choices.get(name)
            plain_too = True
        if types is None:
            return _Step(_child(name), (name,), name, ctx, ("child", name))
        suffixes = [_type_suffix(t) for t in types]
        keys = ((name,) if plain_too else ()) + tuple(name + s for s in suffixes)
        if len(types) > _SCAN_OVER:
            scan = ("scan", name, frozenset(suffixes))
            return _Step(_scan(name, frozenset(suffixes)), keys, name, ctx, scan)
        return _Step(_first_of(keys), keys, name, ctx, ("first", keys))

    def _as(self, base: _Compiled, type_name: str) -> _Compiled:
        """`x as T` / `x.ofType(T)`: on a choice element, the JSON names for T (and subtypes)."""
        steps = base.steps
        last = steps[-1] if steps else None
        if last is None or not last.name:
            if base.fn is _nothing:
                return base
            raise _Unsupported  # a type test on computed values
        plain = type_name.removeprefix("FHIR.").removeprefix("System.")
        ctx = plain if plain[:1].isupper() else None
        if last.keys == (last.name,):  # not a choice: keep the element as it is
            return _Compiled(base.fn, steps, ctx or base.ctx)
        wanted = [last.name + _type_suffix(t) for t in (plain, *_SUBTYPES.get(plain, ()))]
        keys = tuple(k for k in wanted if k in last.keys)
        if not keys:
            return _Compiled(_nothing, None, None)
        if last.keys[0] == last.name:  # maybe a data type's choice, maybe a plain element
            keys += (last.name,)
        sig: Hashable
        if len(keys) == 1:
            walk, sig = _child(keys[0]), ("child", keys[0])
        else:
            walk, sig = _first_of(keys), ("first", keys)
        new_steps = [*(steps or [])[:-1], _Step(walk, keys, keys[0], last.ctx, sig)]
        return _Compiled(_chain(new_steps), new_steps, ctx)

    def _call(self, node: Call, resource_type: str, ctx: str | None) -> _Compiled:
        top = ctx is None
        here = resource_type if top else ctx
        if node.base is None:
            base = _Compiled(_identity, [] if top else None, here)
        else:
            base = self._node(node.base, resource_type, ctx)
        name, args = node.name, node.args
        if name in ("as", "ofType") and len(args) == 1 and isinstance(args[0], Ident):
            return self._as(base, args[0].name)
        if name == "where" and len(args) == 1:
            target = _resolve_is(args[0])
            if target is not None:  # where(resolve() is Patient): the commonest by far
                step = _Step(_where_type(target), sig=("where-type", target))
                return self._then(base, step, base.ctx)
            predicate = self._predicate(args[0], resource_type, base.ctx)
            return self._then(base, _Step(_where(predicate)), base.ctx)
        if name == "extension" and len(args) == 1 and isinstance(args[0], Literal):
            url = args[0].value
            if not isinstance(url, str):
                raise _Unsupported
            step = self._child_step("extension", base.ctx)
            with_child = self._then(base, step, "Extension")
            return self._then(with_child, _Step(_extension(url)), "Extension")
        if name == "first" and not args:
            return self._then(base, _Step(_index(0)), base.ctx)
        if name in ("exists", "empty") and not args:
            fn = base.fn
            want = name == "exists"
            return _Compiled(lambda focus: [bool(fn(focus)) is want], None, None)
        if name == "not" and not args:
            fn = base.fn

            def negate(focus: list[Any]) -> list[Any]:
                found = fn(focus)
                return [not found[0]] if len(found) == 1 and type(found[0]) is bool else []

            return _Compiled(negate, None, None)
        raise _Unsupported

    def _is(self, node: TypeOp, resource_type: str, ctx: str | None) -> Walker:
        """`resolve() is T`: the only type test the R4 parameters use."""
        base = node.base
        if not (isinstance(base, Call) and base.name == "resolve" and not base.args):
            raise _Unsupported
        target = node.type_name.removeprefix("FHIR.")
        if base.base is None:
            return lambda focus: [len(focus) == 1 and reference_type(focus[0]) == target]
        refs = self._node(base.base, resource_type, ctx).fn
        return lambda focus: [any(reference_type(r) == target for r in refs(focus))]

    def _predicate(self, node: Node, resource_type: str, ctx: str | None) -> Callable[[Any], bool]:
        """A where() criterion, as a test of one node."""
        inner = ctx if ctx is not None else ""  # "" : below the top, of unknown type
        target = _resolve_is(node)
        if target is not None:
            return lambda ref: reference_type(ref) == target
        if (
            isinstance(node, Binary)
            and node.op == "="
            and isinstance(node.left, Ident)
            and isinstance(node.right, Literal)
        ):
            key, literal = node.left.name, node.right.value
            return lambda n: type(n) is dict and _equal(n.get(key), literal)
        fn = self._node(node, resource_type, inner).fn
        return lambda n: fn([n]) == [True]

    def _binary(self, node: Binary, resource_type: str, ctx: str | None) -> Walker:
        op = node.op
        if op == "|":
            left = self._node(node.left, resource_type, ctx).fn
            right = self._node(node.right, resource_type, ctx).fn
            return lambda focus: left(focus) + right(focus)
        if op not in ("=", "!=", "and", "or"):
            raise _Unsupported
        lhs = self._node(node.left, resource_type, ctx).fn
        rhs = self._node(node.right, resource_type, ctx).fn
        if op in ("=", "!="):
            negate = op == "!="

            def compare(focus: list[Any]) -> list[Any]:
                a, b = lhs(focus), rhs(focus)
                if not a or not b:
                    return []
                if len(a) != len(b):
                    return [negate]
                return [all(_equal(x, y) for x, y in zip(a, b, strict=True)) is not negate]

            return compare

        def logic(focus: list[Any]) -> list[Any]:
            a, b = _boolean(lhs(focus)), _boolean(rhs(focus))
            if op == "and":
                if a is False or b is False:
                    return [False]
                return [True] if a is True and b is True else []
            if a is True or b is True:
                return [True]
            return [False] if a is False and b is False else []

        return logic


def _union_members(node: Node) -> list[Node]:
    """`a | b | c` -> [a, b, c]: each member becomes a branch of its own."""
    if isinstance(node, Binary) and node.op == "|":
        return [*_union_members(node.left), *_union_members(node.right)]
    return [node]


def _boolean(found: list[Any]) -> bool | None:
    """A collection as a FHIRPath boolean: empty -> None, a single item -> its truth."""
    if not found:
        return None
    if len(found) == 1:
        return found[0] if type(found[0]) is bool else True
    return None  # FHIRPath: an error; the criterion is taken as not met


def _join(ctx: str | None, name: str) -> str | None:
    return f"{ctx}.{name}" if ctx else None


def _fallback(member: str) -> Walker:
    """Evaluate with fhirpathpy (R4 model), on each resource of the focus."""
    import fhirpathpy  # imported on first need: most deployments never need it
    from fhirpathpy.models import models

    try:
        evaluate = fhirpathpy.compile(member, models["r4"])
    except Exception as exc:  # fhirpathpy raises bare Exceptions for syntax errors
        raise PathError(f"Cannot compile FHIRPath {member!r}: {exc}") from None

    def walk(focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        for resource in focus:
            try:
                out.extend(evaluate(resource, {"resource": resource, "rootResource": resource}))
            except Exception:  # a bad value must not fail the write; the row is lost
                log.warning("FHIRPath %r failed on a %s", member, resource.get("resourceType"))
        return out

    return walk
