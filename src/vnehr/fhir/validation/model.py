"""Run-time element tables for the walker, built once from the derived R4 definitions.

The walker looks up every JSON property in `TypeSpec.elements`, a dict keyed by the JSON name
with choice types already expanded (`valueQuantity`, `valueString`, ...), so validating a
property costs one dict lookup and one call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from vnehr.fhir import definitions
from vnehr.fhir.validation.primitives import Check, checks

PRIMITIVE, COMPLEX, RESOURCE = 0, 1, 2

# How the walker treats an element (`ElementSpec.mode`, set by `walk.prepared_specs`): a single
# primitive, a single object, an array of primitives, an array of objects, or anything else
# (resources, elements a profile forbids); CHOICE is added for the types of a choice element.
ONE_PRIMITIVE, ONE_OBJECT, PRIMITIVES, OBJECTS, OTHER, CHOICE = 0, 1, 2, 3, 4, 8
NOTHING_KNOWN: frozenset[Any] = frozenset()


def _no_check(value: Any) -> str | None:
    return None


@dataclass(slots=True, eq=False)
class ElementSpec:
    """One JSON property of a type: `valueQuantity` of Observation, `given` of HumanName."""

    name: str  # the JSON name
    choice: str | None  # the choice element's name (`value`) when this is one of its types
    type_code: str  # FHIR type, or the backbone path (`Patient.contact`)
    kind: int  # PRIMITIVE | COMPLEX | RESOURCE
    is_array: bool
    min: int
    max: int  # -1: unbounded
    check: Check = _no_check  # the format check of a primitive
    spec: TypeSpec | None = None  # complex types and backbone elements
    profile: str | None = None  # a core profile of the type the values meet (SimpleQuantity)
    targets: frozenset[str] | None = None  # Reference: allowed resource types
    binding: str | None = None  # required binding: value set URL
    codes: frozenset[str] | None = None  # code elements: the allowed codes
    system_codes: dict[str, frozenset[str]] | None = None  # Coding, CodeableConcept
    hook: Callable[..., None] | None = None  # the data-type check (set by the walker)
    slow: bool = False  # a primitive needing more than its format check (codes, `#` refs)
    mode: int = OTHER  # ONE_PRIMITIVE ... OTHER, plus CHOICE (set by the walker)
    # Strings known to be valid values of this (primitive) element, without side effects:
    # a bounded cache kept by the walker, so that repeated codes and systems cost a lookup.
    valid: set[str] | frozenset[str] = NOTHING_KNOWN
    remembers: bool = True  # whether valid values are worth remembering
    memo: bool = False  # objects: whether valid ones are remembered (set by the walker)
    # Objects known to be valid values of this element, by their JSON text (`memo`).
    valid_objects: set[bytes] | frozenset[bytes] = NOTHING_KNOWN


@dataclass(frozen=True, slots=True)
class Invariant:
    key: str
    severity: str
    human: str
    expression: str
    on: str  # "" for the type itself, else the element the invariant sits on


@dataclass(slots=True, eq=False)
class TypeSpec:
    """A resource, complex data type or backbone element, as the walker sees it."""

    name: str
    kind: str
    elements: dict[str, ElementSpec] = field(default_factory=dict)
    required: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (element name, JSON names)
    # The JSON names of `required`, when none is a choice: present, they are all there is to
    # check (set by the walker).
    required_keys: frozenset[str] | None = None
    invariants: tuple[Invariant, ...] = ()
    abstract: bool = False
    base: str | None = None
    compiled: Any = None  # the compiled invariants, set on first use (`invariants.check`)


def _element_specs(name: str, raw: dict[str, Any]) -> list[ElementSpec]:
    types: list[str] = raw["types"]
    prims = checks()
    out = []
    choice = bool(raw.get("choice"))
    for t in types:
        json_name = name + t[:1].upper() + t[1:] if choice else name
        if t in prims:
            kind = PRIMITIVE
        elif t == "Resource":
            kind = RESOURCE
        else:
            kind = COMPLEX
        el = ElementSpec(
            name=json_name,
            choice=name if choice else None,
            type_code=t,
            kind=kind,
            is_array=raw["max"] != 1 and raw["max"] != 0,
            min=raw["min"],
            max=raw["max"],
            check=prims.get(t, _no_check),
            profile=raw.get("profiles", {}).get(t),
        )
        if raw.get("targets"):
            el.targets = frozenset(raw["targets"])
        vs = raw.get("binding")
        if vs:
            el.binding = vs
            systems = definitions.value_set_codes(vs)
            if systems is not None:
                if t == "code":
                    el.codes = frozenset().union(*systems.values())
                else:
                    el.system_codes = systems
        out.append(el)
    return out


@cache
def type_specs() -> dict[str, TypeSpec]:
    """A TypeSpec for every type and backbone element of R4, by name."""
    raw_types = definitions.type_definitions()
    specs: dict[str, TypeSpec] = {}
    for name, raw in raw_types.items():
        spec = TypeSpec(
            name=name, kind=raw["kind"], abstract=bool(raw.get("abstract")), base=raw.get("base")
        )
        required = []
        for el_name, el_raw in raw["elements"].items():
            els = _element_specs(el_name, el_raw)
            for el in els:
                spec.elements[el.name] = el
            if el_raw["min"] > 0:
                required.append((el_name, tuple(e.name for e in els)))
        spec.required = tuple(required)
        spec.invariants = tuple(
            Invariant(i["key"], i["severity"], i["human"], i["expression"], i.get("on", ""))
            for i in raw.get("invariants", [])
        )
        specs[name] = spec
    for spec in specs.values():
        if spec.kind == "resource" and spec.base in specs:
            # Resources carry only their own invariants in the tables: add DomainResource's.
            spec.invariants = specs[spec.base].invariants + spec.invariants
        for el in spec.elements.values():
            if el.kind == COMPLEX:
                el.spec = specs[el.profile or el.type_code]
    return specs
