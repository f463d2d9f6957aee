"""JSON Patch (RFC 6902) on a resource, by python-json-patch (https://hl7.org/fhir/R4/http.html#patch).

Every operation is checked before any is applied, so a malformed patch is a 400 whatever its
order; a failing `test` or a path that does not resolve is a 422. Messages name the operation
by position and path but never quote the resource: its content may be clinical data.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from jsonpointer import JsonPointer, JsonPointerException, resolve_pointer

from vnehr.errors import InvalidRequest, Unprocessable

_NEEDS_VALUE = frozenset({"add", "replace", "test"})
_NEEDS_FROM = frozenset({"move", "copy"})
_MISSING = object()


def apply_json_patch(resource: dict[str, Any], operations: list[Any]) -> dict[str, Any]:
    """`resource` with the JSON Patch `operations` applied in order; the input is untouched."""
    if not isinstance(operations, list):
        raise InvalidRequest("A JSON Patch must be a JSON array of operations")
    patches = [_checked(index, op) for index, op in enumerate(operations)]
    result: Any = copy.deepcopy(resource)
    for index, (op, patch) in enumerate(zip(operations, patches, strict=True)):
        label = _label(index, op)
        try:
            result = patch.apply(result, in_place=True)
        except jsonpatch.JsonPatchTestFailed as exc:
            found = resolve_pointer(result, op["path"], _MISSING)
            why = "does not exist" if found is _MISSING else "does not hold the tested value"
            raise Unprocessable(f"{label}: test failed, {op['path']} {why}") from exc
        except jsonpatch.InvalidJsonPatch as exc:
            raise InvalidRequest(f"{label}: {exc}") from exc
        except jsonpatch.JsonPatchConflict as exc:
            raise Unprocessable(f"{label}: {exc}") from exc
        except JsonPointerException as exc:
            # jsonpointer's own message may quote the document, so it is not passed on.
            pointers = " or ".join(op[k] for k in ("from", "path") if k in op)
            raise Unprocessable(f"{label}: {pointers} does not exist in the resource") from exc
    if not isinstance(result, dict):
        raise Unprocessable("JSON Patch: the result is not a JSON object, so not a resource")
    return result


def _checked(index: int, op: Any) -> jsonpatch.JsonPatch:
    """A one-operation patch for `op`, or InvalidRequest saying what is wrong with it."""
    label = _label(index, op)
    try:
        jsonpatch.JsonPatch([op])  # the shape: an object with a known op and a valid path
    except (jsonpatch.InvalidJsonPatch, JsonPointerException) as exc:
        raise InvalidRequest(f"{label}: {exc}") from exc
    name = op["op"]
    if name in _NEEDS_VALUE and "value" not in op:
        raise InvalidRequest(f"{label}: {name} needs a 'value'")
    if name in _NEEDS_FROM:
        try:
            JsonPointer(op["from"])
        except KeyError:
            raise InvalidRequest(f"{label}: {name} needs a 'from'") from None
        except (JsonPointerException, TypeError) as exc:
            raise InvalidRequest(f"{label}: 'from' is not a JSON Pointer: {exc}") from exc
    # A copy, so that the result never shares a value with the caller's patch document.
    return jsonpatch.JsonPatch([copy.deepcopy(op)])


def _label(index: int, op: Any) -> str:
    if isinstance(op, dict) and isinstance(op.get("op"), str) and isinstance(op.get("path"), str):
        return f"JSON Patch operation {index} ({op['op']} {op['path']})"
    return f"JSON Patch operation {index}"
