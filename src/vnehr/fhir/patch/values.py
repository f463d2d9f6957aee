"""The value of a FHIRPath Patch operation, as the JSON it becomes in the resource.

A value is sent as `value[x]` (a data type), as `resource`, or, for types that `value[x]`
cannot carry (anonymous elements like Patient.contact), as parts named after the elements
(https://hl7.org/fhir/R4/fhirpatch.html).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from vnehr.errors import InvalidRequest, Unprocessable
from vnehr.fhir.patch import elements
from vnehr.fhir.patch.location import Location, aligned, insert


@dataclass(frozen=True, slots=True)
class Value:
    json: Any  # None for a primitive sent with only an id or extensions
    extras: Any  # the `_valueX` sibling of a primitive: its id and extensions
    suffix: str | None  # the type of `value[x]`: `Date` for valueDate; None for parts, resource


def value_key(part: dict[str, Any]) -> str | None:
    """The `value[x]` property of a Parameters part, if it has one."""
    keys = [k for k in part if k.startswith("value") and len(k) > len("value")]
    if len(keys) > 1:
        raise InvalidRequest(f"a part has more than one value: {', '.join(sorted(keys))}")
    if not keys and any(k.startswith("_value") for k in part):
        keys = [next(k for k in part if k.startswith("_value"))[1:]]
    return keys[0] if keys else None


def value_of(part: dict[str, Any], type_name: str) -> Value:
    """The value a part carries; `type_name` is the type a value made of parts builds."""
    key = value_key(part)
    given = [k for k in (key, "resource" if "resource" in part else None) if k]
    if "part" in part:
        given.append("part")
    if len(given) != 1:
        what = " and ".join(given) if given else "nothing"
        raise InvalidRequest(f"a value needs one of value[x], resource or part, not {what}")
    if key is not None:
        extras = copy.deepcopy(part.get("_" + key))
        return Value(copy.deepcopy(part.get(key)), extras, key[len("value") :])
    if "resource" in part:
        if not isinstance(part["resource"], dict):
            raise InvalidRequest("a resource value must be a JSON object")
        return Value(copy.deepcopy(part["resource"]), None, None)
    return Value(_from_parts(part["part"], type_name), None, None)


def element_key(type_name: str, name: str, value: Value) -> str:
    """The JSON property for element `name` holding `value`: for a choice, the name with the
    type of the value, `deceased` + valueBoolean -> `deceasedBoolean`."""
    element = elements.element(type_name, name)
    if element is None or not element.choice:
        return name
    choices = ", ".join(element.types)
    if value.suffix is None:
        raise Unprocessable(f"{name} is a choice of {choices}: send its value as value[x]")
    chosen = elements.type_of_suffix(element, value.suffix)
    if chosen is None:
        raise Unprocessable(f"{name} cannot hold a {value.suffix}, only one of {choices}")
    return element.json_key(chosen)


def part_type(type_name: str, name: str) -> str:
    """The type a value made of parts builds for element `name` of `type_name`."""
    element = elements.element(type_name, name)
    if element is None or element.choice:
        return f"{type_name}.{name}"
    return element.types[0]


def repeats(type_name: str, name: str) -> bool:
    element = elements.element(type_name, name)
    return element is not None and element.repeats


def _from_parts(parts: Any, type_name: str) -> dict[str, Any]:
    if not isinstance(parts, list) or not parts:
        raise InvalidRequest("part must be a non-empty array")
    out: dict[str, Any] = {}
    for part in parts:
        name = part.get("name") if isinstance(part, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest("every part of a value needs a name")
        value = value_of(part, part_type(type_name, name))
        key = element_key(type_name, name, value)
        if repeats(type_name, name):
            insert(out, key, len(aligned(out, key)[0]), value.json, value.extras)
        elif key in out or "_" + key in out:
            raise Unprocessable(f"{name} is given twice but does not repeat")
        else:
            Location(out, key, None, type_name, None).set(value.json, value.extras)
    return out
