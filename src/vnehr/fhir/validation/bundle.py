"""Bundle rules beyond its elements: https://hl7.org/fhir/R4/bundle.html#bundle-unique

Entry fullUrls are absolute, and a RESTful fullUrl ends with the entry's type and id; search
results have ids; a link relation such as `self` or `next` appears once. (bdl-1..12 are
invariants, evaluated with the others; entry resources are walked like any resource.)
"""

from __future__ import annotations

from typing import Any

from vnehr.errors import Issue
from vnehr.fhir.validation.datatypes import is_absolute, reference_type
from vnehr.fhir.validation.scope import error

_SINGLE_LINKS = frozenset({"self", "first", "previous", "prev", "next", "last"})


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
            if type(relation) is str and relation in _SINGLE_LINKS:
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
        if not is_absolute(full_url):
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
