"""Terminology bindings of a resource checked against the value sets the server holds.

The structural validator (vnehr.fhir.validation) checks the required bindings of R4 to the
value sets it can expand from the specification package. This module checks the rest, through
the terminology service (https://hl7.org/fhir/R4/terminologies.html#strength):

- required: a binding whose value set the specification package does not expand (so the
  validator could not check it) and that the server holds as a stored ValueSet: a code,
  Coding or CodeableConcept with no code in it is an `error` (`code-invalid`), and so is a
  CodeableConcept with text only (a required binding needs a code).
- extensible: a code, Coding or CodeableConcept none of whose codes is in the value set is a
  `warning` (`code-invalid`): another code is allowed only when the value set has none for
  the concept, which a server cannot decide.
- preferred: a `warning` too, as for extensible (the value set is the one recommended).

Nothing is reported when the check cannot be made: a value set the server does not hold
(neither stored nor one the specification package expands), or one it cannot evaluate (a code
system it does not hold, a filter it does not support...), a CodeableConcept with only
`text` (extensible, preferred), a Coding without a code. A code in any of the codings of a
CodeableConcept satisfies the binding. `example` bindings are not checked.

The bound elements come from `definitions.binding_table()` (bindings.json.gz, derived by
tools/derive_bindings.py): the elements of resources and their backbone elements, not those
inside data types (Identifier.type...). Contained resources and resources held in elements of
type Resource (Bundle.entry.resource, Parameters.parameter.resource) are checked too. Only the
elements that lead to a binding are visited.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from vnehr.errors import Issue
from vnehr.fhir import definitions
from vnehr.terminology.expansion import Evaluator, Options, TerminologyError, UnknownCodeSystem
from vnehr.terminology.model import Json

if TYPE_CHECKING:
    from vnehr.terminology.service import Session

SEVERITY = {"required": "error", "extensible": "warning", "preferred": "warning"}
_CODED = ("code", "Coding", "CodeableConcept")


@dataclass(frozen=True, slots=True)
class _Bound:
    """One bound coded element: its JSON name, binding strength, value set and type."""

    key: str
    strength: str
    url: str
    kind: str  # code | Coding | CodeableConcept


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to visit in one resource or backbone element."""

    bound: tuple[_Bound, ...]
    children: tuple[tuple[str, str], ...]  # JSON name, backbone element type name
    resources: tuple[str, ...]  # JSON names of elements holding resources (contained...)


@cache
def reachable_value_sets(res_type: str) -> frozenset[str] | None:
    """The value sets whose bindings a `res_type` resource can reach, contained resources
    aside; None when resources can nest below its top level (Bundle, Parameters)."""
    plans = _plans()
    plan = plans.get(res_type)
    if plan is None:
        return frozenset()
    urls: set[str] = set()
    seen: set[str] = set()
    todo = [(res_type, plan)]
    while todo:
        name, current = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if any(key != "contained" or name != res_type for key in current.resources):
            return None
        urls.update(b.url for b in current.bound)
        todo += [(t, plans[t]) for _, t in current.children]
    return frozenset(urls)


def check_bindings(session: Session, resource: Json) -> list[Issue]:
    """The binding issues of `resource` (see the module docstring), in document order.

    `session` is the terminology session of the request; the value sets it finds and the
    codes it evaluates are remembered for this call only.
    """
    out: list[Issue] = []
    rt = resource.get("resourceType")
    if type(rt) is str:
        _Checker(session, out).resource(resource, rt)
    return out


class _Checker:
    def __init__(self, session: Session, out: list[Issue]) -> None:
        self.session = session
        self.out = out
        self._evaluator: Evaluator | None = None
        self._value_sets: dict[str, Json | None] = {}
        self._members: dict[tuple[str, str | None, str, str | None], bool | None] = {}

    def resource(self, resource: Json, path: str) -> None:
        rt = resource.get("resourceType")
        plan = _plans().get(rt) if type(rt) is str else None
        if plan is not None:
            self.object(resource, plan, path)

    def object(self, obj: Json, plan: _Plan, path: str) -> None:
        for bound in plan.bound:
            value = obj.get(bound.key)
            if value is not None:
                for loc, item in _items(value, f"{path}.{bound.key}"):
                    self.value(bound, item, loc)
        for key, type_name in plan.children:
            value = obj.get(key)
            if value is not None:
                child = _plans()[type_name]
                for loc, item in _items(value, f"{path}.{key}"):
                    if type(item) is dict:
                        self.object(item, child, loc)
        for key in plan.resources:
            value = obj.get(key)
            if value is not None:
                for loc, item in _items(value, f"{path}.{key}"):
                    if type(item) is dict:
                        self.resource(item, loc)

    def value(self, bound: _Bound, value: Any, loc: str) -> None:
        if bound.kind == "code":
            if type(value) is str and value:
                self.codings(bound, [(None, value, None)], loc)
            return
        if type(value) is not dict:
            return
        if bound.kind == "Coding":
            coding = _coding(value)
            if coding is not None:
                self.codings(bound, [coding], loc)
            return
        raw = value.get("coding")
        codings = (
            [c for c in (_coding(x) for x in raw if type(x) is dict) if c is not None]
            if type(raw) is list
            else []
        )
        if codings:
            self.codings(bound, codings, loc)
        elif bound.strength == "required" and self.value_set(bound.url) is not None:
            self.report(bound, f"A code is required from the value set {bound.url}", loc)

    def codings(
        self, bound: _Bound, codings: list[tuple[str | None, str, str | None]], loc: str
    ) -> None:
        vs = self.value_set(bound.url)
        if vs is None:
            return
        undecided = False
        for system, code, version in codings:
            found = self.member(bound.url, vs, system, code, version)
            if found:
                return
            undecided = undecided or found is None
        if undecided:
            return
        if bound.kind == "CodeableConcept":
            message = f"None of the codings is in the {bound.strength} value set {bound.url}"
        else:
            system, code, _ = codings[0]
            shown = f"{system}#{code}" if system else repr(code)
            message = f"The code {shown} is not in the {bound.strength} value set {bound.url}"
        self.report(bound, message, loc)

    def report(self, bound: _Bound, message: str, loc: str) -> None:
        self.out.append(Issue(SEVERITY[bound.strength], "code-invalid", message, (loc,)))

    def value_set(self, url: str) -> Json | None:
        if url not in self._value_sets:
            self._value_sets[url] = self.session.find_value_set(url)
        return self._value_sets[url]

    def member(
        self, url: str, vs: Json, system: str | None, code: str, version: str | None
    ) -> bool | None:
        """Whether the code is in the value set; None when that cannot be evaluated."""
        key = (url, system, code, version)
        if key not in self._members:
            if self._evaluator is None:
                self._evaluator = self.session.evaluator(Options())
            try:
                found = self._evaluator.member(vs, system, code, version) is not None
            except (UnknownCodeSystem, TerminologyError):
                self._members[key] = None
            else:
                self._members[key] = found
        return self._members[key]


def _items(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if type(value) is list:
        for i, item in enumerate(value):
            yield f"{path}[{i}]", item
    else:
        yield path, value


def _coding(value: Json) -> tuple[str | None, str, str | None] | None:
    """(system, code, version) of a Coding with a code; None without one."""
    code = value.get("code")
    if type(code) is not str or not code:
        return None
    system, version = value.get("system"), value.get("version")
    return (
        system if type(system) is str and system else None,
        code,
        version if type(version) is str and version else None,
    )


@cache
def _plans() -> dict[str, _Plan]:
    """A plan for every resource and backbone element that leads to a checkable binding."""
    bindings = definitions.binding_table()
    types = definitions.type_definitions()
    scope = [
        name
        for name, t in types.items()
        if (t["kind"] == "resource" and not t.get("abstract"))
        or (t["kind"] == "backbone" and name.split(".", 1)[0] in definitions.resource_types())
    ]
    bound: dict[str, list[_Bound]] = {}
    children: dict[str, list[tuple[str, str]]] = {}
    resources: dict[str, list[str]] = {}
    for name in scope:
        elements = types[name]["elements"]
        for key, (strength, url) in sorted(bindings.get(name, {}).items()):
            # Required bindings the validator checks from the package are not checked again.
            if strength == "required" and definitions.value_set_codes(url) is not None:
                continue
            kind = _kind(elements, key)
            if kind is not None:
                bound.setdefault(name, []).append(_Bound(key, strength, url, kind))
        for key, el in elements.items():
            if el.get("choice") or len(el["types"]) != 1:
                continue
            target = el["types"][0]
            if target == "Resource":
                resources.setdefault(name, []).append(key)
            elif types.get(target, {}).get("kind") == "backbone":
                children.setdefault(name, []).append((key, target))
    # The types from which a checkable binding can be reached (backbone elements nest and
    # refer to each other, Questionnaire.item.item -> Questionnaire.item: a fixed point).
    useful = set(bound) | set(resources)
    grew = True
    while grew:
        grew = False
        for name, kids in children.items():
            if name not in useful and any(t in useful for _, t in kids):
                useful.add(name)
                grew = True
    return {
        name: _Plan(
            tuple(bound.get(name, ())),
            tuple((k, t) for k, t in children.get(name, ()) if t in useful),
            tuple(resources.get(name, ())),
        )
        for name in scope
        if name in useful
    }


def _kind(elements: dict[str, Any], key: str) -> str | None:
    """The coded type of the element `key` (a JSON name, `valueCodeableConcept` for a choice)."""
    el = elements.get(key)
    if el is not None and not el.get("choice"):
        coded = [t for t in el["types"] if t in _CODED]
        return coded[0] if coded else None
    for t in _CODED:
        base = key[: -len(t)] if key.endswith(t[:1].upper() + t[1:]) else None
        if base and (choice := elements.get(base)) is not None and choice.get("choice"):
            return t if t in choice["types"] else None
    return None
