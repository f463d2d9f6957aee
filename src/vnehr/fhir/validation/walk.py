"""The structural walk over a resource's JSON: https://hl7.org/fhir/R4/json.html

One pass over the JSON object, guided by the element tables (`model`): unknown properties,
JSON types, arrays versus single values, empty values, primitive formats, required codes,
minimum cardinality, one type per choice element, `_x` primitive extension siblings,
contained and nested resources; invariants and the data-type checks (`datatypes`) run on each
object as it is left. No FHIRPath is evaluated for structure.

Speed (docs/validation.md): each element has a `mode` saying which of the common cases it is
(one primitive, one object, an array of either), so that `walk_object` handles them inline and
leaves everything unusual to helpers; and the values and objects found valid are remembered
(`memo`), so that a repeated code, Coding or reference range costs a set lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from orjson import dumps as _dumps

from vnehr.errors import Issue
from vnehr.fhir.validation import invariants
from vnehr.fhir.validation.bundle import check_bundle
from vnehr.fhir.validation.canonical import check_canonical_url, check_value_set
from vnehr.fhir.validation.datatypes import DATATYPE_HOOKS
from vnehr.fhir.validation.memo import (
    JSON_OPTIONS,
    MEMO_PATH,
    Cache,
    json_default,
    new_cache,
    remember_object,
    remember_value,
)
from vnehr.fhir.validation.model import (
    CHOICE,
    COMPLEX,
    OBJECTS,
    ONE_OBJECT,
    ONE_PRIMITIVE,
    OTHER,
    PRIMITIVE,
    PRIMITIVES,
    RESOURCE,
    ElementSpec,
    TypeSpec,
    type_specs,
)
from vnehr.fhir.validation.scope import Scope, error

URI_TYPES = frozenset({"uri", "url", "canonical"})

ResourceHook = Callable[[dict[str, Any], str, list[Issue]], None]


@cache
def prepared_specs() -> dict[str, TypeSpec]:
    """The type specs, with what the walker needs attached to their elements."""
    specs = type_specs()
    context_free = _context_free(specs)
    # Objects valid for one element are valid for any element with the same type, check and
    # binding (Observation.subject and Encounter.subject): such elements share their cache.
    shared: dict[tuple[Any, ...], Cache] = {}
    for spec in specs.values():
        if all(len(keys) == 1 for _, keys in spec.required):
            spec.required_keys = frozenset(keys[0] for _, keys in spec.required)
        for el in spec.elements.values():
            el.hook = DATATYPE_HOOKS.get(el.type_code)
            if el.type_code == "CodeableConcept" and el.system_codes is None:
                el.hook = None  # its check is about required bindings only
            el.slow = el.codes is not None or el.type_code in URI_TYPES or el.max == 0
            if el.max == 0 or el.kind not in (PRIMITIVE, COMPLEX):
                el.mode = OTHER
            elif el.kind == PRIMITIVE:
                el.mode = PRIMITIVES if el.is_array else ONE_PRIMITIVE
            else:
                el.mode = OBJECTS if el.is_array else ONE_OBJECT
            if el.choice is not None:
                el.mode += CHOICE
            el.memo = el.kind == COMPLEX and el.spec is not None and el.spec.name in context_free
            if el.memo:
                signature = (el.spec, el.hook, el.targets, el.binding)
                if signature not in shared:
                    shared[signature] = new_cache()
                el.valid_objects = shared[signature]
            # A resource's id is unique: remembering ids would only crowd out other values.
            el.remembers = not (spec.kind == "resource" and el.name == "id")
    return specs


def _context_free(specs: dict[str, TypeSpec]) -> set[str]:
    """The types whose validity depends on the object alone, so that valid objects can be
    remembered: no invariant looks beyond the object (%resource, %rootResource), here or in
    the types of its elements, and no element holds a resource."""
    bound = {
        name
        for name, spec in specs.items()
        for inv in spec.invariants
        if "%resource" in inv.expression or "%rootResource" in inv.expression
    }
    changed = True
    while changed:
        changed = False
        for name, spec in specs.items():
            if name not in bound and any(
                el.kind == RESOURCE or (el.spec is not None and el.spec.name in bound)
                for el in spec.elements.values()
            ):
                bound.add(name)
                changed = True
    return set(specs) - bound


def _object(
    el: ElementSpec,
    obj: dict[str, Any],
    known: bytes | None,
    loc: str,
    out: list[Issue],
    scope: Scope,
) -> None:
    """Walk an item of an array of objects not known to be valid (`known`: its JSON text,
    when it can be remembered), and remember it if it is valid and validating it had no
    other effect (a local reference). (A function, like `walk_value` before it, so that
    deep nesting meets Python's recursion limit at the depth it always did.)"""
    issues, refs = len(out), len(scope.refs)
    walk_object(obj, el.spec, loc, out, scope)  # type: ignore[arg-type]
    if el.hook is not None:
        el.hook(obj, el, loc, out, scope)
    if known is not None and len(out) == issues and len(scope.refs) == refs:
        remember_object(el, known)


@cache
def resource_hooks() -> dict[str, ResourceHook]:
    """The checks to run on a resource of each type, after its elements."""
    hooks: dict[str, ResourceHook] = {}
    for name, spec in type_specs().items():
        url = spec.elements.get("url")
        canonical = url is not None and url.type_code == "uri" and "version" in spec.elements
        if spec.kind == "resource" and canonical:
            hooks[name] = check_canonical_url
    hooks["ValueSet"] = check_value_set
    hooks["Bundle"] = check_bundle
    return hooks


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is list:
        return "an array"
    if type(value) is dict:
        return "an object"
    if type(value) is str:
        return "a string"
    if type(value) is bool:
        return "a boolean"
    return "a number"


def walk_resource(
    res: Any, path: str, out: list[Issue], parent: Scope | None = None, index: int = -1
) -> None:
    """Validate a resource: at the root (path ""), in a Bundle entry or contained (parent)."""
    if type(res) is not dict:
        error(out, "structure", f"A resource must be a JSON object, not {_json_kind(res)}", path)
        return
    rt = res.get("resourceType")
    loc = path or (rt if type(rt) is str else "Resource")
    if rt is None:
        error(out, "required", "The resource has no resourceType", loc)
        return
    spec = prepared_specs().get(rt) if type(rt) is str else None
    if spec is None or spec.kind != "resource" or spec.abstract:
        error(out, "invalid", f"Unknown resource type {rt!r}", loc)
        return
    scope = Scope(res, parent, index)
    walk_object(res, spec, loc, out, scope)
    if parent is not None:
        _check_contained(res, loc, out)
    else:
        contained = res.get("contained")
        if scope.refs or (type(contained) is list and contained):
            _check_local_refs(res, scope, loc, out)
    resource_hook = resource_hooks().get(rt)
    if resource_hook is not None:
        resource_hook(res, loc, out)


def walk_object(
    obj: dict[str, Any], spec: TypeSpec, path: str, out: list[Issue], scope: Scope
) -> None:
    """Validate the properties of one JSON object against its type.

    The common cases (a valid primitive, a non-empty object, arrays of them) are handled
    inline; anything unusual goes to a helper that works out and reports the problem.
    """
    elements = spec.elements
    choices: dict[str, str] | None = None
    memo = len(path) < MEMO_PATH  # objects are remembered at this depth (memo.py)
    for key, value in obj.items():
        el = elements.get(key)
        if el is None:
            if key[:1] == "_":
                _primitive_extension(obj, key, value, spec, path, out, scope)
            elif key != "resourceType" or spec.kind != "resource":
                error(out, "structure", f"Unrecognized element {key!r}", f"{path}.{key}")
            continue
        mode = el.mode
        if mode >= CHOICE:
            choices = _choice(choices, el, key, path, out)
            mode -= CHOICE
        if mode == ONE_PRIMITIVE:
            if type(value) is str and value in el.valid:
                continue
            if el.slow:
                _one_value(el, key, value, path, out, scope)
                continue
            msg = el.check(value)
            if msg is not None:
                error(out, "value", f"{el.type_code} {msg}", f"{path}.{key}")
            elif type(value) is str and el.remembers:
                remember_value(el, value)
        elif mode == ONE_OBJECT:
            if type(value) is not dict or not value:
                _one_value(el, key, value, path, out, scope)
                continue
            known = None
            if memo and el.memo:
                try:
                    known = _dumps(value, default=json_default, option=JSON_OPTIONS)
                except TypeError:  # a value of no JSON type (memo.py): not remembered
                    pass
                else:
                    if known in el.valid_objects:
                        continue
            issues, refs = len(out), len(scope.refs)
            loc = f"{path}.{key}"
            walk_object(value, el.spec, loc, out, scope)  # type: ignore[arg-type]
            if el.hook is not None:
                el.hook(value, el, loc, out, scope)
            if known is not None and len(out) == issues and len(scope.refs) == refs:
                remember_object(el, known)  # valid, and validating it had no other effect
        elif mode == PRIMITIVES:
            unusual = type(value) is not list or not value or 0 < el.max < len(value)
            if unusual and not _array_ok(el, key, value, path, out):
                continue
            valid = el.valid
            for i, item in enumerate(value):
                if type(item) is str and item in valid:
                    continue
                if item is None:
                    _null_item(obj, key, i, el, path, out)
                else:
                    _primitive(el, item, path, key, i, out, scope)
        elif mode == OBJECTS:
            unusual = type(value) is not list or not value or 0 < el.max < len(value)
            if unusual and not _array_ok(el, key, value, path, out):
                continue
            for i, item in enumerate(value):
                if type(item) is dict and item:
                    known = None
                    if memo and el.memo:
                        try:
                            known = _dumps(item, default=json_default, option=JSON_OPTIONS)
                        except TypeError:
                            pass
                        else:
                            if known in el.valid_objects:
                                continue
                    _object(el, item, known, f"{path}.{key}[{i}]", out, scope)
                elif item is None:
                    _null_item(obj, key, i, el, path, out)
                else:
                    walk_value(el, item, path, key, i, out, scope)
        elif el.is_array:  # OTHER: resources (contained), elements a profile forbids
            unusual = type(value) is not list or not value or 0 < el.max < len(value)
            if unusual and not _array_ok(el, key, value, path, out):
                continue
            for i, item in enumerate(value):
                if item is None:
                    _null_item(obj, key, i, el, path, out)
                else:
                    walk_value(el, item, path, key, i, out, scope)
        elif el.max == 0:
            error(out, "structure", f"{key} is not allowed here", f"{path}.{key}")
        elif type(value) is list:
            error(out, "structure", f"{key} must not be a JSON array", f"{path}.{key}")
        elif value is None:
            error(out, "structure", f"{key} must not be null", f"{path}.{key}")
        else:
            walk_value(el, value, path, key, -1, out, scope)
    if spec.required:
        required = spec.required_keys
        if required is None or not obj.keys() >= required:
            _check_required(obj, spec, path, out)
    if spec.invariants:
        invariants.check(spec, obj, path, scope, out)


def _one_value(
    el: ElementSpec, key: str, value: Any, path: str, out: list[Issue], scope: Scope
) -> None:
    """A single value that is not simply a valid primitive or a non-empty object."""
    if el.max == 0:
        error(out, "structure", f"{key} is not allowed here", f"{path}.{key}")
    elif type(value) is list:
        error(out, "structure", f"{key} must not be a JSON array", f"{path}.{key}")
    elif value is None:
        error(out, "structure", f"{key} must not be null", f"{path}.{key}")
    else:
        walk_value(el, value, path, key, -1, out, scope)


def _choice(
    choices: dict[str, str] | None, el: ElementSpec, key: str, path: str, out: list[Issue]
) -> dict[str, str]:
    if choices is None:
        choices = {}
    other = choices.get(el.choice)  # type: ignore[arg-type]
    if other is not None:
        error(
            out,
            "structure",
            f"Only one of {el.choice}[x] is allowed, found {other} and {key}",
            f"{path}.{key}",
        )
    choices[el.choice] = key  # type: ignore[index]
    return choices


def _array_ok(el: ElementSpec, key: str, value: Any, path: str, out: list[Issue]) -> bool:
    """Report what is wrong with an array property; whether its items can still be walked."""
    if type(value) is not list:
        error(
            out,
            "structure",
            f"{key} must be a JSON array, not {_json_kind(value)}",
            f"{path}.{key}",
        )
        return False
    if not value:
        error(out, "structure", "Arrays must not be empty", f"{path}.{key}")
        return False
    error(
        out,
        "structure",
        f"{key} allows at most {el.max} items, found {len(value)}",
        f"{path}.{key}",
    )
    return True


def _check_required(obj: dict[str, Any], spec: TypeSpec, path: str, out: list[Issue]) -> None:
    for name, keys in spec.required:
        for k in keys:
            if k in obj or "_" + k in obj:
                break
        else:
            label = f"{name}[x]" if len(keys) > 1 or keys[0] != name else name
            error(out, "required", f"{spec.name}.{label}: minimum required = 1, found 0", path)


def walk_value(
    el: ElementSpec, value: Any, path: str, key: str, i: int, out: list[Issue], scope: Scope
) -> None:
    """Validate one value of an element (one item of an array)."""
    kind = el.kind
    if kind == PRIMITIVE:
        _primitive(el, value, path, key, i, out, scope)
        return
    loc = f"{path}.{key}" if i < 0 else f"{path}.{key}[{i}]"
    if kind == COMPLEX:
        if type(value) is not dict:
            error(out, "structure", f"{key} must be a JSON object, not {_json_kind(value)}", loc)
        elif not value:
            error(out, "structure", "Objects must not be empty", loc)
        else:
            spec = el.spec
            assert spec is not None
            walk_object(value, spec, loc, out, scope)
            if el.hook is not None:
                el.hook(value, el, loc, out, scope)
        return
    if key == "contained":
        walk_resource(value, loc, out, scope, i)
    else:
        walk_resource(value, loc, out)


def _primitive(
    el: ElementSpec, value: Any, path: str, key: str, i: int, out: list[Issue], scope: Scope
) -> None:
    """Validate one primitive value (one item of an array), remembering it when valid."""
    msg = el.check(value)
    if msg is not None:
        error(out, "value", f"{el.type_code} {msg}", _loc(path, key, i))
    elif el.codes is not None and value not in el.codes:
        error(
            out,
            "code-invalid",
            f"The code {value!r} is not in the required value set {el.binding}",
            _loc(path, key, i),
        )
    elif type(value) is str and value[:1] == "#" and el.type_code in URI_TYPES:
        scope.local_ref(value, _loc(path, key, i), False)
    elif type(value) is str:
        remember_value(el, value)


def _loc(path: str, key: str, i: int) -> str:
    return f"{path}.{key}" if i < 0 else f"{path}.{key}[{i}]"


def _null_item(
    obj: dict[str, Any], key: str, i: int, el: ElementSpec, path: str, out: list[Issue]
) -> None:
    # A null in a primitive array only holds the place of an item that has just extensions.
    ext = obj.get("_" + key)
    if el.kind == PRIMITIVE and type(ext) is list and i < len(ext) and ext[i] is not None:
        return
    error(out, "structure", "Array items must not be null", f"{path}.{key}[{i}]")


def _primitive_extension(
    obj: dict[str, Any],
    key: str,
    value: Any,
    spec: TypeSpec,
    path: str,
    out: list[Issue],
    scope: Scope,
) -> None:
    base = key[1:]
    el = spec.elements.get(base)
    if el is None or el.kind != PRIMITIVE:
        error(out, "structure", f"Unrecognized element {key!r}", f"{path}.{key}")
        return
    element = type_specs()["Element"]
    if not el.is_array:
        if type(value) is not dict:
            error(out, "structure", f"{key} must be a JSON object", f"{path}.{key}")
        elif not value:
            error(out, "structure", "Objects must not be empty", f"{path}.{key}")
        else:
            walk_object(value, element, f"{path}.{base}", out, scope)
        return
    if type(value) is not list:
        error(out, "structure", f"{key} must be a JSON array", f"{path}.{key}")
        return
    values = obj.get(base)
    if values is not None and (type(values) is not list or len(values) != len(value)):
        error(out, "structure", f"{key} must have as many items as {base}", f"{path}.{key}")
    for i, item in enumerate(value):
        loc = f"{path}.{base}[{i}]"
        if item is None:
            if type(values) is not list or i >= len(values) or values[i] is None:
                error(out, "structure", f"{base}[{i}] has neither a value nor extensions", loc)
        elif type(item) is not dict:
            error(out, "structure", f"{key} items must be JSON objects", loc)
        elif not item:
            error(out, "structure", "Objects must not be empty", loc)
        else:
            walk_object(item, element, loc, out, scope)


def _check_contained(res: dict[str, Any], loc: str, out: list[Issue]) -> None:
    rid = res.get("id")
    if rid is None:
        error(out, "required", "A contained resource must have an id", loc)
    if "contained" in res:
        error(out, "invariant", "dom-2: a contained resource must not contain resources", loc)
    meta = res.get("meta")
    if type(meta) is dict:
        if "versionId" in meta or "lastUpdated" in meta:
            error(
                out,
                "invariant",
                "dom-4: a contained resource must not have meta.versionId or meta.lastUpdated",
                loc,
            )
        if "security" in meta:
            error(
                out, "invariant", "dom-5: a contained resource must not have a security label", loc
            )


def _check_local_refs(res: dict[str, Any], scope: Scope, loc: str, out: list[Issue]) -> None:
    contained = res.get("contained")
    items = contained if type(contained) is list else []
    ids = {c.get("id") for c in items if type(c) is dict and type(c.get("id")) is str}
    for ref, ref_loc, _, is_reference in scope.refs:
        if is_reference and ref != "#" and ref[1:] not in ids:
            error(
                out,
                "invariant",
                f"ref-1: the local reference {ref!r} does not name a contained resource",
                ref_loc,
            )
    used = {ref for ref, _, _, _ in scope.refs}
    refers_to_container = {origin for ref, _, origin, _ in scope.refs if ref == "#"}
    for i, c in enumerate(items):
        if type(c) is not dict or type(c.get("id")) is not str:
            continue
        if "#" + c["id"] not in used and i not in refers_to_container:
            error(
                out,
                "invariant",
                f"dom-3: the contained resource {c['id']!r} is not referenced from elsewhere "
                "in the resource, nor does it refer to the containing resource",
                f"{loc}.contained[{i}]",
            )
