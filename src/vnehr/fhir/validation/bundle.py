"""Checks on whole resources beyond their elements: Bundle rules and canonical URLs.

https://hl7.org/fhir/R4/bundle.html#bundle-unique: entry fullUrls are absolute, and a RESTful
fullUrl ends with the entry's type and id; search results have ids; a link relation such as
`self` or `next` appears once. https://hl7.org/fhir/R4/resource.html#canonical: the `url` of a
canonical resource is absolute. (bdl-1..12 are invariants, evaluated with the others.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from vnehr.errors import Issue
from vnehr.fhir.validation.datatypes import reference_type
from vnehr.fhir.validation.model import type_specs
from vnehr.fhir.validation.scope import error

ResourceHook = Callable[[dict[str, Any], str, list[Issue]], None]

_SINGLE_LINKS = frozenset({"self", "first", "previous", "prev", "next", "last"})


def _absolute(url: str) -> bool:
    scheme, sep, rest = url.partition(":")
    return bool(sep and rest and scheme[:1].isalpha() and "/" not in scheme)


def check_bundle(bundle: dict[str, Any], loc: str, out: list[Issue]) -> None:
    entries = bundle.get("entry")
    searchset = bundle.get("type") == "searchset"
    if type(entries) is list:
        for i, entry in enumerate(entries):
            if type(entry) is dict:
                _check_entry(entry, f"{loc}.entry[{i}]", searchset, out)
    links = bundle.get("link")
    if type(links) is list:
        seen: set[str] = set()
        for i, link in enumerate(links):
            relation = link.get("relation") if type(link) is dict else None
            if relation in _SINGLE_LINKS:
                if relation in seen:
                    error(
                        out,
                        "invalid",
                        f"The link relation {relation!r} can only occur once",
                        f"{loc}.link[{i}]",
                    )
                seen.add(relation)


def _check_entry(entry: dict[str, Any], loc: str, searchset: bool, out: list[Issue]) -> None:
    resource = entry.get("resource")
    res = resource if type(resource) is dict else {}
    full_url = entry.get("fullUrl")
    if type(full_url) is str and full_url:
        if not _absolute(full_url):
            error(out, "invalid", f"The fullUrl must be an absolute URL, not {full_url!r}", loc)
        elif full_url.startswith(("http://", "https://")) and res.get("id") is not None:
            rtype, _ = reference_type(full_url)
            tail = f"/{res.get('resourceType')}/{res.get('id')}"
            if rtype is not None and not full_url.endswith(tail) and "/_history/" not in full_url:
                error(
                    out,
                    "invalid",
                    f"The fullUrl {full_url!r} looks like a RESTful URL, so it must end with "
                    f"the resource's type and id ({tail})",
                    loc,
                )
    if searchset and res and "id" not in res and res.get("resourceType") != "OperationOutcome":
        error(out, "invalid", "Search results must have ids", f"{loc}.resource")


def check_canonical_url(resource: dict[str, Any], loc: str, out: list[Issue]) -> None:
    url = resource.get("url")
    if type(url) is str and url and not url.startswith("#") and not _absolute(url):
        error(out, "invalid", f"Canonical URLs must be absolute, not {url!r}", f"{loc}.url")


@cache
def resource_hooks() -> dict[str, ResourceHook]:
    """The checks to run on a resource of each type, after its elements."""
    hooks: dict[str, ResourceHook] = {"Bundle": check_bundle}
    for name, spec in type_specs().items():
        url = spec.elements.get("url")
        if spec.kind == "resource" and url is not None and url.type_code == "uri":
            if "version" in spec.elements:
                hooks[name] = check_canonical_url
    return hooks
