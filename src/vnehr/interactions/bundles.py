"""Building response Bundles: searchset, history, batch/transaction responses."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from vnehr.fhir import json as fhir_json
from vnehr.fhir.ids import new_id
from vnehr.fhir.instant import format_instant, now_micros
from vnehr.interactions.respond import etag
from vnehr.storage.base import StoredVersion


def bundle(kind: str, entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": new_id(),
        "meta": {"lastUpdated": format_instant(now_micros())},
        "type": kind,
    }
    out.update(extra)
    out["entry"] = entries
    if not entries:
        del out["entry"]
    return out


def link(relation: str, base: str, path: str, query: list[tuple[str, str]]) -> dict[str, str]:
    url = f"{base}/{path}" if path else base
    if query:
        url += "?" + urlencode(query)
    return {"relation": relation, "url": url}


def full_url(base: str, stored: StoredVersion) -> str:
    return f"{base}/{stored.res_type}/{stored.res_id}"


def entry_resource(stored: StoredVersion, *, as_stored: bool) -> Any:
    """A Bundle entry's resource: parsed, or (`as_stored`, FhirRequest.stored_json) its
    stored JSON, written out unparsed."""
    content = stored.content or b"{}"
    return fhir_json.stored(content) if as_stored else fhir_json.loads(content)


def history_entry(base: str, stored: StoredVersion, *, as_stored: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": full_url(base, stored)}
    if not stored.deleted:
        entry["resource"] = entry_resource(stored, as_stored=as_stored)
    url = f"{stored.res_type}/{stored.res_id}" if stored.method != "POST" else stored.res_type
    entry["request"] = {"method": stored.method, "url": url}
    entry["response"] = {
        "status": "410 Gone"
        if stored.deleted
        else ("201 Created" if stored.version == 1 else "200 OK"),
        "etag": etag(stored.version),
        "lastModified": format_instant(stored.last_updated),
    }
    return entry
