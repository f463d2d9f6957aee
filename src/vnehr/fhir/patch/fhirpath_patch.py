"""FHIRPath Patch: add, insert, delete, replace and move (https://hl7.org/fhir/R4/fhirpatch.html)."""

from __future__ import annotations

import copy
from typing import Any

from vnehr.errors import FhirError, InvalidRequest, Unprocessable
from vnehr.fhir.patch import elements
from vnehr.fhir.patch.locate import locate, locate_list, members
from vnehr.fhir.patch.location import Location, aligned, insert, store_aligned
from vnehr.fhir.patch.parameters import Operation, read_operations
from vnehr.fhir.patch.values import element_key, part_type, repeats, value_of


def apply_fhirpath_patch(resource: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """`resource` with the operations of a FHIRPath Patch Parameters applied, in order.

    The input is left untouched. A malformed Parameters is an InvalidRequest (400); an operation
    that cannot be applied (its path matches nothing or too much, an index is out of range...)
    is Unprocessable (422). Messages name the operation's position and path. The result is not
    validated here.
    """
    operations = read_operations(parameters)
    result = copy.deepcopy(resource)
    root = Location.resource(result)
    for op in operations:
        try:
            _APPLY[op.type](root, op)
        except (InvalidRequest, Unprocessable) as exc:
            error: FhirError = type(exc)(f"FHIRPath Patch {op.label}: {exc}", op.expression)
            raise error from exc
    return result


def _add(root: Location, op: Operation) -> None:
    target = _one(root, op, "add to")
    assert op.name is not None and op.value is not None
    if target.is_primitive and op.name not in ("extension", "id"):
        raise Unprocessable(f"{op.path} is a primitive: only extension and id can be added to it")
    holder = target.children(create=True)
    assert holder is not None
    value = value_of(op.value, part_type(target.type_name, op.name))
    key = element_key(target.type_name, op.name, value)
    if repeats(target.type_name, op.name):
        insert(holder, key, len(aligned(holder, key)[0]), value.json, value.extras)
        return
    if key in holder or "_" + key in holder or members(target, op.name):
        raise Unprocessable(f"{op.name} already has a value and does not repeat: use replace")
    Location(holder, key, None, target.type_name, target).set(value.json, value.extras)


def _insert(root: Location, op: Operation) -> None:
    assert op.value is not None and op.index is not None
    holder, name, type_name = _list(root, op)
    values, _ = aligned(holder, name)
    if not 0 <= op.index <= len(values):
        raise Unprocessable(f"index {op.index} is outside the list of {len(values)}")
    value = value_of(op.value, part_type(type_name, name))
    insert(holder, name, op.index, value.json, value.extras)


def _delete(root: Location, op: Operation) -> None:
    found = locate(root, op.tree)
    if not found:
        return  # deleting what is not there is not an error
    if len(found) > 1:
        raise Unprocessable(f"the path matches {len(found)} elements; delete removes one")
    if found[0].is_resource:
        raise Unprocessable("the resource itself cannot be deleted by a patch")
    found[0].remove()


def _replace(root: Location, op: Operation) -> None:
    assert op.value is not None
    target = _one(root, op, "replace")
    if target.up is None:
        raise Unprocessable("the resource itself cannot be replaced by a patch")
    value = value_of(op.value, target.type_name)
    found = elements.element_of_key(target.up.type_name, target.key)
    key = element_key(target.up.type_name, found[0].name if found else target.key, value)
    if key != target.key:
        target.rename(key)
    target.set(value.json, value.extras)


def _move(root: Location, op: Operation) -> None:
    assert op.source is not None and op.destination is not None
    holder, name, _ = _list(root, op)
    values, siblings = aligned(holder, name)
    for what, index in (("source", op.source), ("destination", op.destination)):
        if not 0 <= index < len(values):
            raise Unprocessable(f"{what} {index} is outside the list of {len(values)}")
    values.insert(op.destination, values.pop(op.source))
    siblings.insert(op.destination, siblings.pop(op.source))
    store_aligned(holder, name, values, siblings)


_APPLY = {"add": _add, "insert": _insert, "delete": _delete, "replace": _replace, "move": _move}


def _one(root: Location, op: Operation, verb: str) -> Location:
    found = locate(root, op.tree)
    if len(found) != 1:
        what = "no element" if not found else f"{len(found)} elements"
        raise Unprocessable(f"the path matches {what}; {verb} needs exactly one")
    return found[0]


def _list(root: Location, op: Operation) -> tuple[dict[str, Any], str, str]:
    """The JSON object holding the list an insert or move names, its key and its owner's type."""
    named = locate_list(root, op.tree)
    if named is None:
        raise Unprocessable(f"{op.type} needs a path naming a list, like Patient.identifier")
    owners, name = named
    if len(owners) != 1:
        what = "no element" if not owners else f"{len(owners)} elements"
        raise Unprocessable(f"the list {name} is held by {what}; {op.type} needs exactly one")
    owner = owners[0]
    holder = owner.children(create=op.type == "insert")
    if holder is None or not (repeats(owner.type_name, name) or isinstance(holder.get(name), list)):
        raise Unprocessable(f"{name} is not a list")
    return holder, name, owner.type_name
