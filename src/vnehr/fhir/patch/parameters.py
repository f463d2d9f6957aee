"""Reading a FHIRPath Patch document: a Parameters resource of `operation` parameters.

https://hl7.org/fhir/R4/fhirpatch.html: each operation has parts type, path and, by type,
name, value, index, source and destination. Anything malformed is an InvalidRequest (400)
naming the operation, before any operation is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vnehr.errors import InvalidRequest
from vnehr.fhir.patch.path import Node, parse_path
from vnehr.fhir.patch.values import value_key

REQUIRED_PARTS = {
    "add": ("path", "name", "value"),
    "insert": ("path", "value", "index"),
    "delete": ("path",),
    "replace": ("path", "value"),
    "move": ("path", "source", "destination"),
}
PART_NAMES = frozenset({"type", "path", "name", "value", "index", "source", "destination"})
_STRING_TYPES = ("valueString", "valueCode")
_INTEGER_TYPES = ("valueInteger", "valueUnsignedInt", "valuePositiveInt")


@dataclass(frozen=True, slots=True)
class Operation:
    """One `operation` parameter; `number` is its position among Parameters.parameter."""

    number: int
    type: str  # add | insert | delete | replace | move
    path: str
    tree: Node  # the parsed path
    name: str | None = None
    value: dict[str, Any] | None = None  # the `value` part as sent
    index: int | None = None
    source: int | None = None
    destination: int | None = None

    @property
    def label(self) -> str:
        return f"operation {self.number} ({self.type} {self.path})"

    @property
    def expression(self) -> tuple[str, ...]:
        return (f"Parameters.parameter[{self.number}]",)


def read_operations(parameters: Any) -> list[Operation]:
    """The operations of a FHIRPath Patch Parameters resource, in order."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise InvalidRequest("A FHIRPath Patch must be a Parameters resource")
    entries = parameters.get("parameter", [])
    if not isinstance(entries, list):
        raise InvalidRequest("Parameters.parameter must be an array", ("Parameters.parameter",))
    operations = []
    for number, entry in enumerate(entries):
        try:
            operations.append(_operation(number, entry))
        except InvalidRequest as exc:
            where = f"Parameters.parameter[{number}]"
            raise InvalidRequest(f"FHIRPath Patch operation {number}: {exc}", (where,)) from exc
    return operations


def _operation(number: int, entry: Any) -> Operation:
    if not isinstance(entry, dict) or entry.get("name") != "operation":
        raise InvalidRequest("every parameter must be named 'operation'")
    parts: dict[str, dict[str, Any]] = {}
    for part in entry.get("part", []) if isinstance(entry.get("part"), list) else []:
        name = part.get("name") if isinstance(part, dict) else None
        if name not in PART_NAMES:
            raise InvalidRequest(
                f"unknown part {name!r}; parts are {', '.join(sorted(PART_NAMES))}"
            )
        if name in parts:
            raise InvalidRequest(f"part {name!r} is given more than once")
        parts[name] = part
    if "type" not in parts:
        raise InvalidRequest("the part 'type' is missing")
    kind = _string(parts["type"], "type")
    if kind not in REQUIRED_PARTS:
        raise InvalidRequest(f"unknown type {kind!r}; types are {', '.join(REQUIRED_PARTS)}")
    missing = [p for p in REQUIRED_PARTS[kind] if p not in parts]
    if missing:
        raise InvalidRequest(f"{kind} needs the part(s) {', '.join(missing)}")
    path = _string(parts["path"], "path")
    value = parts.get("value") if "value" in REQUIRED_PARTS[kind] else None
    if value is not None and value_key(value) is None and not {"resource", "part"} & set(value):
        raise InvalidRequest("the part 'value' has no value[x], resource or part")
    return Operation(
        number=number,
        type=kind,
        path=path,
        tree=parse_path(path),
        name=_string(parts["name"], "name") if kind == "add" else None,
        value=value,
        index=_integer(parts["index"], "index") if kind == "insert" else None,
        source=_integer(parts["source"], "source") if kind == "move" else None,
        destination=_integer(parts["destination"], "destination") if kind == "move" else None,
    )


def _string(part: dict[str, Any], name: str) -> str:
    for key in _STRING_TYPES:
        if isinstance(part.get(key), str) and part[key]:
            return str(part[key])
    raise InvalidRequest(f"the part {name!r} needs a valueString")


def _integer(part: dict[str, Any], name: str) -> int:
    for key in _INTEGER_TYPES:
        value = part.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    raise InvalidRequest(f"the part {name!r} needs a valueInteger")
