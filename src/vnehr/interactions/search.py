"""search (https://hl7.org/fhir/R4/search.html): a first slice over the index tables."""

from __future__ import annotations

from vnehr.errors import InvalidRequest
from vnehr.fhir import json as fhir_json
from vnehr.interactions.bundles import bundle, link
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.history import page_size
from vnehr.interactions.respond import check_type
from vnehr.interactions.shaping import shape
from vnehr.search.criteria import parse_criteria

_CONTROL = {"_count", "_offset", "_format", "_pretty", "_summary", "_elements", "_total"}


def search(ctx: Context, request: FhirRequest, res_type: str) -> FhirResponse:
    check_type(res_type)
    criteria_pairs = [(k, v) for k, v in request.query if k not in _CONTROL]
    criteria = parse_criteria(ctx.registry, res_type, criteria_pairs, allow_empty=True)
    count = page_size(ctx, request)
    raw_offset = request.param("_offset") or "0"
    if not raw_offset.isdigit():
        raise InvalidRequest("_offset must be a non-negative integer", ("_offset",))
    offset = int(raw_offset)
    summary_count = request.param("_summary") == "count"
    found, total = ctx.store.search_page(
        res_type, criteria, count=0 if summary_count else count, offset=offset
    )
    entries = []
    for stored in found:
        resource = fhir_json.loads(stored.content or b"{}")
        resource = shape(resource, request.query) or resource
        entries.append(
            {
                "fullUrl": f"{request.base_url}/{res_type}/{stored.res_id}",
                "resource": resource,
                "search": {"mode": "match"},
            }
        )
    base_query = [(k, v) for k, v in request.query if k != "_offset"]
    links = [link("self", request.base_url, res_type, request.query)]
    if not summary_count and offset + count < total:
        links.append(
            link(
                "next", request.base_url, res_type, [*base_query, ("_offset", str(offset + count))]
            )
        )
    if offset > 0:
        prev = max(0, offset - count)
        links.append(
            link("previous", request.base_url, res_type, [*base_query, ("_offset", str(prev))])
        )
    return FhirResponse(200, resource=bundle("searchset", entries, total=total, link=links))
