"""search (https://hl7.org/fhir/R4/search.html): type, system and compartment search.

The query is parsed into the search IR (vnehr.search.parse), compiled into one SQL statement
by the store, and answered as a searchset Bundle: matches in order (`_sort`, then insertion
order), paged by cursors (`_cursor`: the sort values of the last row, so pages stay exact
while data changes), `_include`/`_revinclude` (`:iterate`, `*`), `_total`, `_summary`,
`_elements`. Unknown parameters are ignored and reported in an OperationOutcome entry, or
rejected under `Prefer: handling=strict`.
"""

from __future__ import annotations

from typing import Any

from vnehr.auth.access import Grant, guard, restrict, restrict_across, visible_versions
from vnehr.errors import InvalidRequest, Issue, operation_outcome
from vnehr.fhir.definitions import resource_types
from vnehr.interactions import contained
from vnehr.interactions.bundles import bundle, entry_resource, link
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.history import page_size
from vnehr.interactions.respond import check_type
from vnehr.interactions.shaping import shape
from vnehr.interactions.value_sets import expander
from vnehr.policy import public_health
from vnehr.policy.roles import role_of
from vnehr.search import ir
from vnehr.search.compile.sql import Cursor, decode_cursor
from vnehr.search.parse import UnknownParameter
from vnehr.search.passes import expand_value_sets
from vnehr.search.query import Unknown, build_query, compartments
from vnehr.search.registry import SearchParamRegistry
from vnehr.storage.base import SearchPage, StoredVersion

MAX_INCLUDED = 1000  # resources _include/_revinclude add to one page
MAX_ITERATIONS = 4  # rounds of :iterate
_TOTALS = ("none", "estimate", "accurate")


def strict_handling(request: FhirRequest) -> bool:
    prefer = request.header("prefer") or ""
    return any(p.strip() == "handling=strict" for p in prefer.split(";"))


def search(
    ctx: Context,
    request: FhirRequest,
    res_type: str | None,
    compartment: tuple[str, str] | None = None,
    grant: Grant | None = None,
) -> FhirResponse:
    """`grant`: what the caller's scopes allow on `res_type` (auth/access.py), compiled
    into the query."""
    if res_type is not None:
        check_type(res_type)
    principal = request.principal
    if principal is not None and role_of(principal) == "public-health":
        return public_health.count(
            ctx,
            request,
            res_type,
            compartment,
            lambda plain: search(ctx, plain, res_type, compartment),
        )
    unknown = Unknown(strict_handling(request))
    types = _types(request, res_type)
    if compartment is not None and not types:
        types = tuple(sorted({compartment[0], *compartments().get(compartment[0], {})}))
    query = build_query(
        ctx.registry, types, request.query, unknown, compartment, request.base_url or None
    )
    query = guard(ctx, request.principal, query)
    if grant is not None:
        query = restrict(ctx, query, grant)
    elif res_type is None:  # across types: the system, or a compartment's `*`
        query = restrict_across(ctx, query, request.principal)
    query = expand_value_sets(query, expander(ctx))
    count = page_size(ctx, request)
    total_mode = request.param("_total")
    if total_mode is not None and total_mode not in _TOTALS:
        raise InvalidRequest(f"_total must be none, estimate or accurate, not {total_mode!r}")
    summary_count = request.param("_summary") == "count"
    want_total = summary_count or total_mode in ("accurate", "estimate")
    contained_mode = request.param("_contained") or "false"
    contained_type = request.param("_containedType") or "container"
    if contained_mode not in contained.MODES or contained_type not in contained.TYPES:
        raise InvalidRequest(
            "_contained takes false, true or both; _containedType container or contained",
            ("_contained",),
        )
    criteria = query.where
    if contained_mode != "false":
        if res_type is None or compartment is not None:
            raise InvalidRequest("_contained works on a search of one type", ("_contained",))
        if want_total:
            raise InvalidRequest("_contained results cannot be counted", ("_contained",))
        containers = ctx.store.container_types(res_type)
        query = contained.contained_query(query, res_type, containers, contained_mode == "both")
    raw_cursor = request.param("_cursor")
    cursor = decode_cursor(raw_cursor, query.sort) if raw_cursor else None
    page = ctx.store.search(
        query, count=0 if summary_count else count, cursor=cursor, total=want_total
    )
    total = page.total
    if contained_mode == "false":
        entries = [_entry(request, stored, "match") for stored in page.versions]
    else:
        assert res_type is not None
        entries = _contained_entries(
            ctx, request, page, res_type, criteria, contained_type == "contained"
        )
    if total is None and cursor is None and not page.more and total_mode != "none":
        total = len(entries)  # the whole result is on this page: counting is free
    included = visible_versions(
        ctx, request.principal, _included(ctx, request, query, page, unknown), "r"
    )
    entries += [_entry(request, stored, "include") for stored in included]
    if unknown.items:
        outcome = operation_outcome(
            [
                Issue("warning", "not-supported", f"{u.reason}; ignored", (u.name,))
                for u in unknown.items
            ]
        )
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    path = _path(res_type, compartment)
    used = [(k, v) for k, v in request.query if k not in unknown.names() and k != "_cursor"]
    links = [link("self", request.base_url, path, [*used, *_cursor_param(raw_cursor)])]
    if not summary_count and page.keys:
        backwards = cursor is not None and cursor.backwards
        has_next = page.more if not backwards else True
        has_previous = cursor is not None and (page.more if backwards else True)
        if has_next:
            after = Cursor(page.keys[-1], backwards=False).encode()
            links.append(link("next", request.base_url, path, [*used, ("_cursor", after)]))
        if has_previous:
            before = Cursor(page.keys[0], backwards=True).encode()
            links.append(link("previous", request.base_url, path, [*used, ("_cursor", before)]))
    extra: dict[str, Any] = {"link": links}
    if total is not None:
        extra = {"total": total, **extra}
    return FhirResponse(200, resource=bundle("searchset", entries, **extra))


def _contained_entries(
    ctx: Context,
    request: FhirRequest,
    page: SearchPage,
    res_type: str,
    criteria: ir.Node | None,
    each: bool,
) -> list[dict[str, Any]]:
    """Match entries of a `_contained` page: resources of the type itself as they are;
    containers only if one contained resource meets every criterion, or (`each`) those
    contained resources themselves."""
    entries = []
    for stored in page.versions:
        if stored.res_type == res_type:
            entries.append(_entry(request, stored, "match"))
            continue
        container, found = contained.matching(ctx.store, criteria, stored, res_type)
        if not found:
            continue
        url = f"{request.base_url}/{stored.res_type}/{stored.res_id}"
        if not each:
            resource = shape(container, request.query) or container
            entries.append({"fullUrl": url, "resource": resource, "search": {"mode": "match"}})
            continue
        for item in found:
            entries.append(
                {
                    "fullUrl": f"{url}#{item.get('id')}",
                    "resource": item,
                    "search": {"mode": "match"},
                }
            )
    return entries


def _cursor_param(raw: str | None) -> list[tuple[str, str]]:
    return [("_cursor", raw)] if raw else []


def _path(res_type: str | None, compartment: tuple[str, str] | None) -> str:
    if compartment is not None:
        return f"{compartment[0]}/{compartment[1]}/{res_type or '*'}"
    return res_type or ""


def _unshaped(query: list[tuple[str, str]]) -> bool:
    """No `_elements`, no `_summary` other than false: resources are sent whole."""
    return all(k != "_elements" and (k != "_summary" or v == "false") for k, v in query)


def _types(request: FhirRequest, res_type: str | None) -> tuple[str, ...]:
    if res_type is not None:
        return (res_type,)
    raw = request.param("_type")
    if not raw:
        return ()
    out = tuple(t.strip() for t in raw.split(",") if t.strip())
    known = resource_types()
    for t in out:
        if t not in known:
            raise InvalidRequest(f"_type names an unknown resource type {t!r}", ("_type",))
    return out


def _entry(request: FhirRequest, stored: StoredVersion, mode: str) -> dict[str, Any]:
    as_stored = request.stored_json and _unshaped(request.query)
    resource = entry_resource(stored, as_stored=as_stored)
    if not as_stored:
        resource = shape(resource, request.query) or resource
    return {
        "fullUrl": f"{request.base_url}/{stored.res_type}/{stored.res_id}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _includes(
    registry: SearchParamRegistry,
    request: FhirRequest,
    unknown: Unknown,
) -> list[ir.Include]:
    out = []
    for name, value in request.query:
        base, _, modifier = name.partition(":")
        if base not in ("_include", "_revinclude"):
            continue
        if modifier not in ("", "iterate", "recurse"):
            unknown.add(UnknownParameter(name, f"Unknown modifier on {base}"))
            continue
        reverse = base == "_revinclude"
        if value == "*":
            out.append(ir.Include("*", None, None, bool(modifier), reverse))
            continue
        parts = value.split(":")
        if len(parts) not in (2, 3) or parts[0] not in resource_types():
            raise InvalidRequest(f"Invalid {base} {value!r}: use Type:parameter[:Target]", (name,))
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if target is not None and target not in resource_types():
            raise InvalidRequest(f"Invalid {base} {value!r}: unknown target type", (name,))
        if code != "*":
            param = registry.get(source, code)
            if param is None or param.type.value != "reference":
                unknown.add(
                    UnknownParameter(name, f"'{code}' is not a reference parameter of {source}")
                )
                continue
        out.append(
            ir.Include(source, None if code == "*" else code, target, bool(modifier), reverse)
        )
    return out


def _included(
    ctx: Context,
    request: FhirRequest,
    query: ir.Query,
    page: SearchPage,
    unknown: Unknown,
) -> list[StoredVersion]:
    includes = _includes(ctx.registry, request, unknown)
    if not includes or not page.versions:
        return []
    seen: set[int] = set(page.rkeys)
    found: list[StoredVersion] = []
    frontier = list(zip(page.rkeys, page.versions, strict=True))
    for round_ in range(MAX_ITERATIONS + 1):
        active = [i for i in includes if round_ == 0 or i.iterate]
        if not active or not frontier:
            break
        specs = _specs(ctx.registry, active, frontier)
        rkeys = [k for k, _ in frontier]
        targets = [(v.res_type, v.res_id) for _, v in frontier]
        rows = ctx.store.included(rkeys, targets, specs, MAX_INCLUDED - len(found))
        frontier = []
        for rkey, stored in rows:
            if rkey in seen:
                continue
            seen.add(rkey)
            found.append(stored)
            frontier.append((rkey, stored))
            if len(found) >= MAX_INCLUDED:
                unknown.items.append(
                    UnknownParameter("_include", f"Included resources stop at {MAX_INCLUDED}")
                )
                return found
    return found


def _specs(
    registry: SearchParamRegistry,
    includes: list[ir.Include],
    frontier: list[tuple[int, StoredVersion]],
) -> list[tuple[str, str, str | None, bool]]:
    """(source type, parameter, target, reverse) for the store, `*` expanded."""
    types = sorted({v.res_type for _, v in frontier})
    out: list[tuple[str, str, str | None, bool]] = []
    for inc in includes:
        if inc.reverse:
            sources = [inc.source_type] if inc.source_type != "*" else []
            if inc.source_type == "*":
                continue  # _revinclude=* would pull every referring resource: not offered
            for source in sources:
                codes = [inc.param] if inc.param else _reference_params(registry, source)
                out += [(source, c, inc.target_type, True) for c in codes]
        else:
            sources = types if inc.source_type == "*" else [inc.source_type]
            for source in sources:
                if source not in types:
                    continue
                codes = [inc.param] if inc.param else _reference_params(registry, source)
                out += [(source, c, inc.target_type, False) for c in codes]
    return out


def _reference_params(registry: SearchParamRegistry, res_type: str) -> list[str]:
    return sorted(c for c, p in registry.for_type(res_type).items() if p.type.value == "reference")
