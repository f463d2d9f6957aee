"""What FHIRPath Patch needs to know of R4 elements: their types, choices and cardinality."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a type: `deceased` of Patient is a choice of boolean and dateTime."""

    name: str  # without the choice suffix: `deceased`, `given`
    types: tuple[str, ...]  # `HumanName`, `date`, or a backbone path like `Patient.contact`
    repeats: bool
    choice: bool

    def json_key(self, type_name: str) -> str:
        """The JSON property for a value of that type: `deceased`, dateTime: `deceasedDateTime`."""
        return self.name + type_name[:1].upper() + type_name[1:] if self.choice else self.name


@cache
def _types() -> dict[str, Any]:
    # Derived from the R4 StructureDefinitions by tools/derive_definitions.py; inherited
    # elements (id, extension, contained...) are already listed under every type.
    data = resources.files("vnehr.fhir.definitions").joinpath("r4/elements.json.gz").read_bytes()
    return json.loads(gzip.decompress(data))["types"]


def _elements(type_name: str) -> dict[str, Any]:
    entry = _types().get(type_name)
    if entry is None:  # a primitive type: only Element's id and extension
        entry = _types()["Element"]
    return entry["elements"]


@cache
def element(type_name: str, name: str) -> Element | None:
    """The element `name` of `type_name`, where `name` is the element's name without a suffix."""
    entry = _elements(type_name).get(name)
    if entry is None:
        return None
    return Element(
        name=name,
        types=tuple(entry["types"]),
        repeats=entry["max"] != 1,
        choice=bool(entry.get("choice")),
    )


@cache
def element_of_key(type_name: str, key: str) -> tuple[Element, str] | None:
    """The element a JSON property holds, with the type of its value: `deceasedBoolean` ->
    (Patient.deceased, `boolean`)."""
    found = element(type_name, key)
    if found is not None and not found.choice:
        return found, found.types[0]
    for name in _elements(type_name):
        if key.startswith(name) and len(key) > len(name):
            candidate = element(type_name, name)
            if candidate is None or not candidate.choice:
                continue
            for t in candidate.types:
                if candidate.json_key(t) == key:
                    return candidate, t
    return None


def type_of_suffix(elem: Element, suffix: str) -> str | None:
    """The type of a choice element named by a `value[x]` suffix: `DateTime` -> `dateTime`."""
    for t in elem.types:
        if t[:1].upper() + t[1:] == suffix:
            return t
    return None


def is_a(type_name: str, wanted: str) -> bool:
    """Whether `type_name` is `wanted` or derives from it: SimpleQuantity is a Quantity."""
    current: str | None = type_name
    while current is not None:
        if current == wanted:
            return True
        current = _types().get(current, {}).get("base")
    return False
