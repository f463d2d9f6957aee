"""The codes of a value set for `:in` / `:not-in`: a stored ValueSet, else an R4 one.

A stored ValueSet (found by `ValueSet/id` or by its canonical url, `|version` optional)
gives its expansion when it has one, else what its compose enumerates: listed concepts, or
a whole code system when an include names only a system; excludes of listed concepts are
taken out. Filters (`is-a`, ...) need the terminology service and are refused for now. A
value set of the R4 specification with a local expansion is used when none is stored.
"""

from __future__ import annotations

from typing import Any

from vnehr.errors import Gone, InvalidRequest, NotFound
from vnehr.fhir.definitions import value_set_codes
from vnehr.interactions.context import Context
from vnehr.search.passes import Expansion
from vnehr.search.query import strict_query

Code = tuple[str | None, str | None]
MAX_DEPTH = 4  # ValueSets including ValueSets


def expander(ctx: Context) -> Expansion:
    def expand(url: str) -> list[Code] | None:
        return _expand(ctx, url, 0)

    return expand


def _expand(ctx: Context, url: str, depth: int) -> list[Code] | None:
    stored = _stored(ctx, url)
    if stored is not None:
        return _codes(ctx, stored, depth)
    builtin = value_set_codes(url)
    if builtin is None:
        return None
    return [(system, code) for system, codes in sorted(builtin.items()) for code in sorted(codes)]


def _stored(ctx: Context, url: str) -> dict[str, Any] | None:
    if url.startswith("ValueSet/"):
        try:
            return ctx.store.read("ValueSet", url.split("/", 1)[1]).resource()
        except (NotFound, Gone):
            return None
    canonical, _, version = url.partition("|")
    pairs = [("url", canonical)]
    if version:
        pairs.append(("version", version))
    page = ctx.store.search(strict_query(ctx.registry, "ValueSet", pairs), count=1)
    return page.versions[0].resource() if page.versions else None


def _codes(ctx: Context, value_set: dict[str, Any], depth: int) -> list[Code]:
    expansion = value_set.get("expansion")
    if isinstance(expansion, dict) and expansion.get("contains"):
        out: list[Code] = []
        _contains(expansion["contains"], out)
        return out
    compose = value_set.get("compose") or {}
    out = []
    for include in compose.get("include") or []:
        out += _include(ctx, include, depth)
    excluded = {
        (ex.get("system"), c.get("code"))
        for ex in compose.get("exclude") or []
        for c in ex.get("concept") or []
    }
    return [code for code in out if code not in excluded]


def _contains(items: list[dict[str, Any]], out: list[Code]) -> None:
    for item in items:
        if item.get("code") and not item.get("abstract"):
            out.append((item.get("system"), item["code"]))
        _contains(item.get("contains") or [], out)


def _include(ctx: Context, include: dict[str, Any], depth: int) -> list[Code]:
    if include.get("filter"):
        raise InvalidRequest("ValueSets with filters cannot be used with :in yet")
    system = include.get("system")
    if include.get("valueSet"):
        if depth >= MAX_DEPTH:
            raise InvalidRequest("ValueSets include each other too deeply for :in")
        nested: list[Code] = []
        for url in include["valueSet"]:
            found = _expand(ctx, url, depth + 1)
            if found is None:
                raise InvalidRequest(f"Unknown value set {url!r} included by a value set")
            nested += found
        if system:
            nested = [c for c in nested if c[0] == system]
        return nested
    concepts = include.get("concept")
    if concepts:
        return [(system, c["code"]) for c in concepts if c.get("code")]
    return [(system, None)] if system else []
