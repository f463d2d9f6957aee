"""Which elements a FHIRPath Patch path selects, as places in the JSON.

https://hl7.org/fhir/R4/fhirpatch.html. fhirpathpy parses the path and evaluates the criteria
of `where()`; the navigation itself (members, choices, `[n]`, `first()`...) is walked here,
because fhirpathpy's results do not say where in the JSON they came from, and a patch has to
change them in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirpathpy import apply_parsed_path
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from vnehr.errors import InvalidRequest, Unprocessable
from vnehr.fhir.patch import elements
from vnehr.fhir.patch.location import Location, aligned
from vnehr.fhir.patch.path import Node

_MODEL = models["r4"]
_SUBSETTING: dict[str, Callable[[list[Location]], list[Location]]] = {
    "first": lambda found: found[:1],
    "last": lambda found: found[-1:],
    "tail": lambda found: found[1:],
}
_ARITY = {
    **dict.fromkeys([*_SUBSETTING, "single"], 0),
    **dict.fromkeys(["skip", "take", "where", "ofType", "as", "extension"], 1),
}
SUPPORTED = (
    "member names, [n], where(criteria), first(), last(), tail(), skip(n), take(n), single(), "
    "ofType(type), extension(url)"
)


def locate(resource: Location, path: Node) -> list[Location]:
    """Every element of the resource that `path` selects, in order."""
    return _Walker(resource).eval(path)


def locate_list(resource: Location, path: Node) -> tuple[list[Location], str] | None:
    """For a path naming a list (`Patient.name[0].given`): the elements that hold it, and the
    list's element name. None when the path does not end in an element name."""
    walker = _Walker(resource)
    if path["type"] == "InvocationExpression" and path["children"][1]["type"] == "MemberInvocation":
        return walker.eval(path["children"][0]), _identifier(path["children"][1])
    if path["type"] == "TermExpression":
        term = path["children"][0]
        if term["type"] == "InvocationTerm" and term["children"][0]["type"] == "MemberInvocation":
            name = _identifier(term["children"][0])
            if name != resource.type_name:
                return [resource], name
    return None


class _Walker:
    def __init__(self, resource: Location) -> None:
        self.resource = resource

    def eval(self, node: Node) -> list[Location]:
        kind = node["type"]
        children = node.get("children", [])
        if kind == "TermExpression":
            return self._term(children[0])
        if kind == "InvocationExpression":
            return self._invoke(self.eval(children[0]), children[1])
        if kind == "IndexerExpression":
            found = self.eval(children[0])
            index = self._integer(children[1])
            return found[index : index + 1] if index >= 0 else []
        raise _unsupported(node)

    def _term(self, node: Node) -> list[Location]:
        kind = node["type"]
        if kind == "ParenthesizedTerm":
            return self.eval(node["children"][0])
        if kind == "ExternalConstantTerm":
            if _identifier(node["children"][0]) in ("resource", "rootResource", "context"):
                return [self.resource]
            raise _unsupported(node)
        if kind == "InvocationTerm":
            invocation = node["children"][0]
            if invocation["type"] == "ThisInvocation":
                return [self.resource]
            is_member = invocation["type"] == "MemberInvocation"
            if is_member and _identifier(invocation) == self.resource.type_name:
                return [self.resource]
            return self._invoke([self.resource], invocation)
        raise _unsupported(node)

    def _invoke(self, found: list[Location], invocation: Node) -> list[Location]:
        if invocation["type"] == "MemberInvocation":
            return [child for loc in found for child in members(loc, _identifier(invocation))]
        if invocation["type"] == "FunctionInvocation":
            return self._function(found, invocation["children"][0])
        raise _unsupported(invocation)

    def _function(self, found: list[Location], functn: Node) -> list[Location]:
        name = _identifier(functn)
        params = functn["children"][1]["children"] if len(functn["children"]) > 1 else []
        if name not in _ARITY:
            raise _unsupported(functn, f"{name}()")
        expected = _ARITY[name]
        if len(params) != expected:
            raise InvalidRequest(f"{name}() takes {expected} argument(s), not {len(params)}")
        if name in _SUBSETTING:
            return _SUBSETTING[name](found)
        if name == "single":
            if len(found) > 1:
                raise Unprocessable(f"single() found {len(found)} elements")
            return found
        if name == "skip":
            return found[max(self._integer(params[0]), 0) :]
        if name == "take":
            return found[: max(self._integer(params[0]), 0)]
        if name == "where":
            return [loc for loc in found if self._holds(loc, params[0])]
        if name in ("ofType", "as"):
            wanted = _type_specifier(params[0])
            return [loc for loc in found if elements.is_a(loc.type_name, wanted)]
        url = self._constant(params[0])  # extension(url)
        return [
            ext
            for loc in found
            for ext in members(loc, "extension")
            if isinstance(ext.value, dict) and ext.value.get("url") == url
        ]

    def _holds(self, loc: Location, criteria: Node) -> bool:
        subject = ResourceNode.create_node(loc.value, loc.type_name, loc.extras)
        return self._fhirpath(subject, criteria) == [True]

    def _integer(self, node: Node) -> int:
        value = self._constant(node)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequest(f"{node.get('text', 'an index')} is not an integer")
        return value

    def _constant(self, node: Node) -> Any:
        result = self._fhirpath(self.resource.value, node)
        if len(result) != 1:
            raise InvalidRequest(f"{node.get('text', 'an argument')} is not a single value")
        return result[0]

    def _fhirpath(self, subject: Any, node: Node) -> list[Any]:
        root = self.resource.value
        variables = {"resource": root, "rootResource": root}
        try:
            result = apply_parsed_path(subject, {"children": [node]}, variables, _MODEL)
        except Exception as exc:  # fhirpathpy raises assorted types for bad expressions
            raise InvalidRequest(f"{node.get('text', 'an expression')}: {exc}") from exc
        return list(result)


def members(loc: Location, name: str) -> list[Location]:
    """The elements called `name` (a choice without its suffix) in the element at `loc`."""
    holder = loc.children()
    if holder is None:
        return []
    key = _key(loc.type_name, holder, name)
    if key is None:
        return []
    value, extras = holder.get(key), holder.get("_" + key)
    if not isinstance(value, list) and not isinstance(extras, list):
        return [Location(holder, key, None, _type_of(loc.type_name, key, value), loc)]
    values, siblings = aligned(holder, key)
    return [
        Location(holder, key, i, _type_of(loc.type_name, key, v), loc)
        for i, (v, x) in enumerate(zip(values, siblings, strict=True))
        if v is not None or x is not None
    ]


def _key(type_name: str, holder: dict[str, Any], name: str) -> str | None:
    """The JSON property holding element `name`: itself, or a choice with its type suffix."""
    if name in holder or "_" + name in holder:
        return name
    element = elements.element(type_name, name)
    if element is not None and element.choice:
        for t in element.types:
            key = element.json_key(t)
            if key in holder or "_" + key in holder:
                return key
    return None


def _type_of(parent_type: str, key: str, value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return value["resourceType"]
    found = elements.element_of_key(parent_type, key)
    return found[1] if found else f"{parent_type}.{key}"


def _identifier(node: Node) -> str:
    """The name in a MemberInvocation, Functn or ExternalConstant node, without backticks."""
    text: str = node["children"][0]["text"]
    return text.strip("`")


def _type_specifier(node: Node) -> str:
    text: str = node.get("text") or ""
    for namespace in ("FHIR.", "System."):
        text = text.removeprefix(namespace)
    return text.strip("`")


def _unsupported(node: Node, what: str | None = None) -> InvalidRequest:
    what = what or node.get("text") or node["type"]
    return InvalidRequest(f"{what} is not supported in a patch path; use {SUPPORTED}")
