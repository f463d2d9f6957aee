"""history at instance, type and system level (https://hl7.org/fhir/R4/http.html#history)."""

from __future__ import annotations

from collections.abc import Callable

from vnehr.errors import InvalidRequest
from vnehr.fhir.instant import parse_range
from vnehr.interactions.bundles import bundle, history_entry, link
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.read import check_id
from vnehr.interactions.respond import check_type
from vnehr.storage.base import StoredVersion

_KNOWN = {"_since", "_at", "_count", "_cursor", "_format", "_pretty", "_list"}


def page_size(ctx: Context, request: FhirRequest) -> int:
    raw = request.param("_count")
    if raw is None:
        return ctx.settings.default_page_size
    if not raw.isdigit():
        raise InvalidRequest(f"_count must be a non-negative integer, got {raw!r}", ("_count",))
    return min(int(raw), ctx.settings.max_page_size)


Keep = Callable[[list[StoredVersion]], list[StoredVersion]]


def history(
    ctx: Context,
    request: FhirRequest,
    res_type: str | None,
    res_id: str | None,
    keep: Keep | None = None,
) -> FhirResponse:
    """`keep`: the versions of a page the caller may see (the access policy's say on past
    versions, vnehr.policy.versions); a page may then hold fewer than `_count`."""
    if res_type is not None:
        check_type(res_type)
    if res_id is not None:
        check_id(res_id)
    for name, _ in request.query:
        if name not in _KNOWN:
            raise InvalidRequest(f"Unknown history parameter '{name}'", (name,))
    since_text = request.param("_since")
    at_text = request.param("_at")
    since = parse_range(since_text, "_since")[0] if since_text else None
    at = parse_range(at_text, "_at") if at_text else None
    count = page_size(ctx, request)
    page = ctx.store.history(
        res_type, res_id, since=since, at=at, count=count, cursor=request.param("_cursor")
    )
    path = "/".join(p for p in (res_type, res_id, "_history") if p)
    params = [(k, v) for k, v in request.query if k != "_cursor"]
    links = [link("self", request.base_url, path, request.query)]
    if page.next_cursor:
        links.append(link("next", request.base_url, path, [*params, ("_cursor", page.next_cursor)]))
    versions = page.versions if keep is None else keep(page.versions)
    entries = [history_entry(request.base_url, v, as_stored=request.stored_json) for v in versions]
    return FhirResponse(200, resource=bundle("history", entries, link=links))
