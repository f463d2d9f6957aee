"""The search parameters known per resource type: the R4 ones, plus SearchParameter resources added.

https://hl7.org/fhir/R4/searchparameter.html. The R4 definitions are derived from the official
package by tools/derive_search_parameters.py into fhir/definitions/r4/search_parameters.json.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from vnehr.errors import InvalidResource

# Resources that are not DomainResources: no text, contained, extension, so no `_text`.
_NOT_DOMAIN = frozenset({"Bundle", "Binary", "Parameters"})
_ABSTRACT_BASES = ("Resource", "DomainResource")


class ParamType(StrEnum):
    """SearchParameter.type (https://hl7.org/fhir/R4/valueset-search-param-type.html)."""

    NUMBER = "number"
    DATE = "date"
    STRING = "string"
    TOKEN = "token"
    REFERENCE = "reference"
    COMPOSITE = "composite"
    QUANTITY = "quantity"
    URI = "uri"
    SPECIAL = "special"


@dataclass(frozen=True, slots=True)
class Component:
    """One part of a composite parameter: the parameter it uses and where, from the composite."""

    definition: str
    expression: str


@dataclass(frozen=True, slots=True)
class SearchParam:
    """A search parameter as it applies to one resource type.

    `expression` keeps only the union members of the definition's expression that apply to
    that type (`clinical-patient` on Observation: `Observation.subject.where(resolve() is
    Patient)`); `base` is the definition's whole base list.
    """

    code: str
    type: ParamType
    expression: str | None
    targets: tuple[str, ...]
    url: str
    base: tuple[str, ...]
    components: tuple[Component, ...] = ()


class SearchParamRegistry:
    """Search parameters by resource type and code; thread-safe, updated by `add`."""

    def __init__(
        self,
        params: Iterable[SearchParam] = (),
        *,
        resource_types: Iterable[str] = (),
        choice_elements: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.resource_types: frozenset[str] = frozenset(resource_types)
        # Choice element path (no [x]) -> allowed type codes: what `Observation.effective` means.
        self.choice_elements: Mapping[str, tuple[str, ...]] = MappingProxyType(
            dict(choice_elements or {})
        )
        self._by_type: dict[str, dict[str, SearchParam]] = {}
        self._by_url: dict[str, SearchParam] = {}
        self._merged: dict[str, Mapping[str, SearchParam]] = {}
        self._lock = threading.Lock()
        # Bumped by every change, so that compiled extraction plans know to rebuild.
        self.version = 0
        for param in params:
            self._register(param)

    def for_type(self, resource_type: str) -> Mapping[str, SearchParam]:
        """Every parameter of `resource_type` by code, including Resource and DomainResource's."""
        merged = self._merged.get(resource_type)
        if merged is None:
            with self._lock:
                table: dict[str, SearchParam] = dict(self._by_type.get("Resource", {}))
                if resource_type not in _NOT_DOMAIN:
                    table.update(self._by_type.get("DomainResource", {}))
                table.update(self._by_type.get(resource_type, {}))
                merged = MappingProxyType(table)
                self._merged[resource_type] = merged
        return merged

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.for_type(resource_type).get(code)

    def by_url(self, url: str) -> SearchParam | None:
        """The definition with this canonical url (whole expression), e.g. a composite's part."""
        return self._by_url.get(url)

    def add(self, search_parameter_resource: Mapping[str, Any]) -> SearchParam:
        """Register a SearchParameter resource, replacing any parameter of the same code.

        Raises InvalidResource when the resource cannot be used as a search parameter.
        """
        if search_parameter_resource.get("resourceType") != "SearchParameter":
            raise InvalidResource("Not a SearchParameter resource", ("resourceType",))
        param = from_resource(search_parameter_resource)
        if param.expression is not None:
            _check_syntax(param.expression)
        with self._lock:
            self._register(param)
            self._merged.clear()
            self.version += 1
        return param

    def add_param(self, param: SearchParam) -> None:
        """Register a parameter made elsewhere (a worker process rebuilding a registry)."""
        with self._lock:
            self._register(param)
            self._merged.clear()
            self.version += 1

    def remove(self, url: str) -> bool:
        """Forget the parameter with this url (a deleted SearchParameter); False if unknown."""
        with self._lock:
            if url not in self._by_url:
                return False
            self._unregister(url)
            self._merged.clear()
            self.version += 1
        return True

    def _unregister(self, url: str) -> None:
        old = self._by_url.pop(url, None)
        if old is None:
            return
        for base in old.base:
            table = self._by_type.get(base, {})
            current = table.get(old.code)
            if current is not None and current.url == url:
                del table[old.code]

    def _register(self, param: SearchParam) -> None:
        self._unregister(param.url)  # an updated SearchParameter may have other bases
        self._by_url[param.url] = param
        if len(param.base) == 1 or param.expression is None:
            members: list[tuple[str, str]] = []
        else:
            members = [(_root(m), m) for m in split_union(param.expression)]
        for base in param.base:
            narrowed = param
            if members and base not in _ABSTRACT_BASES:
                expression = _kept(members, base, self.resource_types) or param.expression
                narrowed = replace(param, expression=expression)
            self._by_type.setdefault(base, {})[param.code] = narrowed


def from_resource(resource: Mapping[str, Any], *, require_expression: bool = True) -> SearchParam:
    """A SearchParam from a SearchParameter resource (or a record of search_parameters.json)."""
    code = resource.get("code")
    if not isinstance(code, str) or not code or code.strip() != code:
        raise InvalidResource("SearchParameter.code is required", ("SearchParameter.code",))
    try:
        kind = ParamType(str(resource.get("type")))
    except ValueError:
        raise InvalidResource(
            f"SearchParameter.type {resource.get('type')!r} is not a search parameter type",
            ("SearchParameter.type",),
        ) from None
    base = resource.get("base")
    if not isinstance(base, list) or not base or not all(isinstance(b, str) for b in base):
        raise InvalidResource("SearchParameter.base is required", ("SearchParameter.base",))
    expression = resource.get("expression")
    if expression is not None and (not isinstance(expression, str) or not expression.strip()):
        raise InvalidResource(
            "SearchParameter.expression must be a FHIRPath expression",
            ("SearchParameter.expression",),
        )
    if expression is None and require_expression and kind is not ParamType.SPECIAL:
        raise InvalidResource(
            "SearchParameter.expression is required to index this parameter",
            ("SearchParameter.expression",),
        )
    targets = resource.get("target") or []
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise InvalidResource("SearchParameter.target must list types", ("SearchParameter.target",))
    components = []
    for c in resource.get("component") or []:
        if not isinstance(c, dict) or not c.get("definition") or not c.get("expression"):
            raise InvalidResource(
                "SearchParameter.component needs definition and expression",
                ("SearchParameter.component",),
            )
        components.append(Component(c["definition"], c["expression"]))
    url = resource.get("url")
    if not isinstance(url, str) or not url:
        raise InvalidResource("SearchParameter.url is required", ("SearchParameter.url",))
    return SearchParam(
        code=code,
        type=kind,
        expression=expression,
        targets=tuple(targets),
        url=url,
        base=tuple(base),
        components=tuple(components),
    )


def _check_syntax(expression: str) -> None:
    # Imported here: the extract package builds on this module.
    from vnehr.search.extract.fhirpath import FhirPathSyntaxError, parse

    try:
        parse(expression)
    except FhirPathSyntaxError as exc:
        raise InvalidResource(
            f"SearchParameter.expression is not valid FHIRPath: {exc}",
            ("SearchParameter.expression",),
        ) from None


def narrow(
    expression: str | None, resource_type: str, resource_types: frozenset[str]
) -> str | None:
    """The union members of `expression` that can apply to `resource_type`.

    A member rooted at another resource type (`CarePlan.subject` on Observation) is dropped;
    members rooted at Resource, DomainResource or at no type (`name | alias`) are kept.
    """
    if expression is None or resource_type in _ABSTRACT_BASES:
        return expression
    members = [(_root(m), m) for m in split_union(expression)]
    return _kept(members, resource_type, resource_types)


def _kept(
    members: list[tuple[str, str]], resource_type: str, resource_types: frozenset[str]
) -> str | None:
    kept = [
        member
        for root, member in members
        if root == resource_type or root in _ABSTRACT_BASES or root not in resource_types
    ]
    return " | ".join(kept) if kept else None


def split_union(expression: str) -> list[str]:
    """The top-level `|` members of a FHIRPath expression (not inside brackets or strings)."""
    members: list[str] = []
    depth = 0
    start = 0
    quote = ""
    i = 0
    while i < len(expression):
        ch = expression[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            members.append(expression[start:i].strip())
            start = i + 1
        i += 1
    members.append(expression[start:].strip())
    return members


def _root(member: str) -> str:
    """The leading identifier of a union member: `(Observation.value as X)` -> Observation."""
    text = member.lstrip("( \t\n")
    end = 0
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[:end]


def r4_registry() -> SearchParamRegistry:
    """A new registry of the R4 search parameters."""
    return SearchParamRegistry(
        _r4_params(), resource_types=_resource_types(), choice_elements=_r4_choices()
    )


def subset_registry(codes: Mapping[str, Sequence[str]]) -> SearchParamRegistry:
    """A new registry of some R4 parameters only: for each type, those of `codes[type]`
    (to extract a few parameters of a resource quickly)."""
    full = default_registry()
    params = []
    for res_type, type_codes in codes.items():
        for code in type_codes:
            param = full.get(res_type, code)
            if param is not None:  # one per type: its own url, its own base
                params.append(replace(param, base=(res_type,), url=f"{param.url}#{res_type}"))
    return SearchParamRegistry(
        params, resource_types=_resource_types(), choice_elements=_r4_choices()
    )


@cache
def default_registry() -> SearchParamRegistry:
    """The process-wide registry: the R4 parameters plus those `add`ed since start."""
    return r4_registry()


def _definitions(name: str) -> Any:
    return json.loads(
        resources.files("vnehr.fhir.definitions").joinpath(f"r4/{name}").read_text("utf-8")
    )


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = _definitions("search_parameters.json")
    return data


def _resource_types() -> list[str]:
    types: list[str] = _definitions("resource_types.json")
    return types


def _r4_params() -> list[SearchParam]:
    data = _data()
    params = []
    for record in data["search_parameters"]:
        if record.get("target") == "*":
            record = {**record, "target": data["any_targets"]}
        params.append(from_resource(record, require_expression=False))
    return params


def _r4_choices() -> dict[str, tuple[str, ...]]:
    data = _data()
    open_types = tuple(data["open_types"])
    return {
        path: open_types if types == "*" else tuple(types)
        for path, types in data["choice_elements"].items()
    }
