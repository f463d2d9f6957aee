"""`_summary` and `_elements` on returned resources (https://hl7.org/fhir/R4/search.html#summary)."""

from __future__ import annotations

from typing import Any

from vnehr.errors import InvalidRequest
from vnehr.fhir.summary import summary_elements

_ALWAYS = ("resourceType", "id", "meta")
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}


def _mark_subsetted(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    resource["meta"] = meta
    return resource


def summarize(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    """Apply `_summary=true|text|data|false` to a resource."""
    if mode == "false":
        return resource
    if mode == "data":
        out = {k: v for k, v in resource.items() if k != "text"}
    elif mode == "text":
        keep = {*_ALWAYS, "text", *summary_elements(resource["resourceType"], mandatory_only=True)}
        out = {k: v for k, v in resource.items() if k in keep}
    elif mode == "true":
        keep = {*_ALWAYS, *summary_elements(resource["resourceType"])}
        out = {k: v for k, v in resource.items() if k in keep or k.lstrip("_") in keep}
    else:
        raise InvalidRequest(f"_summary must be true, false, text, data or count; got {mode!r}")
    return _mark_subsetted(out)


def elements(resource: dict[str, Any], names: str) -> dict[str, Any]:
    """Apply `_elements=a,b`: keep the named top-level elements (and the mandatory ones)."""
    wanted = {n.strip().split(".")[-1] for n in names.split(",") if n.strip()}
    keep = {*_ALWAYS, *summary_elements(resource["resourceType"], mandatory_only=True), *wanted}
    out = {k: v for k, v in resource.items() if k in keep or k.lstrip("_") in keep}
    return _mark_subsetted(out)


def shape(resource: dict[str, Any], query: list[tuple[str, str]]) -> dict[str, Any] | None:
    """The resource after `_summary`/`_elements` in `query`, or None if neither applies."""
    summary = next((v for k, v in query if k == "_summary"), None)
    wanted = next((v for k, v in query if k == "_elements"), None)
    if summary is None and wanted is None:
        return None
    if summary is not None and summary != "false":
        return summarize(resource, summary)
    if wanted is not None:
        return elements(resource, wanted)
    return resource
