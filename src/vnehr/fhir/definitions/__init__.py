"""Cached loaders of the R4 definition tables derived from the specification package.

The files in `r4/` are written by `tools/derive_definitions.py` (see docs/validation.md);
loading them is the only I/O here, done once per process.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

R4 = Path(__file__).resolve().parent / "r4"

ElementTable = dict[str, dict[str, Any]]
"""JSON element name (no `[x]`) -> {types, min, max, choice?, profiles?, targets?, binding?}."""


def _load_gz(name: str) -> Any:
    with gzip.open(R4 / name, "rt", encoding="utf-8") as f:
        return json.load(f)


@cache
def resource_types() -> frozenset[str]:
    """Every concrete R4 resource type name."""
    return frozenset(json.loads((R4 / "resource_types.json").read_text(encoding="utf-8")))


@cache
def _elements() -> dict[str, Any]:
    data: dict[str, Any] = _load_gz("elements.json.gz")
    return data


def type_definitions() -> dict[str, dict[str, Any]]:
    """Every resource, data type and backbone element ("Patient.contact"), by name.

    Each entry: kind (resource | complex-type | primitive-type | backbone), abstract?, base?,
    elements (an `ElementTable`) and invariants? ([{key, severity, human, expression, on?}]).
    """
    types: dict[str, dict[str, Any]] = _elements()["types"]
    return types


def type_definition(name: str) -> dict[str, Any] | None:
    """One entry of `type_definitions()`, or None for an unknown name."""
    return type_definitions().get(name)


def element_table(type_name: str) -> ElementTable:
    """The element table of a type or backbone element; empty for an unknown name."""
    definition = type_definitions().get(type_name)
    return definition["elements"] if definition else {}


def primitive_types() -> dict[str, dict[str, str]]:
    """Primitive type name -> {json: string | boolean | integer | number, regex?}."""
    primitives: dict[str, dict[str, str]] = _elements()["primitives"]
    return primitives


@cache
def _value_sets() -> dict[str, dict[str, list[str]]]:
    data: dict[str, dict[str, list[str]]] = _load_gz("valuesets.json.gz")
    return data


@cache
def value_set_codes(url: str) -> dict[str, frozenset[str]] | None:
    """Codes per system of a required-binding value set; None if not expandable locally."""
    systems = _value_sets().get(url.split("|", 1)[0])
    if systems is None:
        return None
    return {system: frozenset(codes) for system, codes in systems.items()}


@cache
def extension_definitions() -> dict[str, list[str] | str]:
    """Extension URL -> allowed value[x] types, or "complex" (nested extensions only)."""
    data: dict[str, list[str] | str] = _load_gz("extensions.json.gz")
    return data


@cache
def code_systems() -> dict[str, tuple[frozenset[str], bool]]:
    """Code system URL -> (codes, case-insensitive?) for every system the package holds in full.

    Codes of a case-insensitive system are stored lower-cased.
    """
    data: dict[str, dict[str, Any]] = _load_gz("codesystems.json.gz")
    return {
        url: (frozenset(entry["codes"]), bool(entry.get("caseInsensitive")))
        for url, entry in data.items()
    }


@cache
def binding_table() -> dict[str, dict[str, list[str]]]:
    """Resource or backbone element name ("Observation.component") -> JSON element name ->
    [strength, value set canonical]: the required, extensible and preferred bindings of the
    coded elements (code, Coding, CodeableConcept) of R4 resources.

    Written by `tools/derive_bindings.py` (bindings.json.gz).
    """
    data: dict[str, dict[str, list[str]]] = _load_gz("bindings.json.gz")
    return data
