"""The codes a search needs from the terminology service (vnehr.terminology):

- `:in` / `:not-in`: a value set (a stored ValueSet by `ValueSet/id` or canonical url,
  `|version` optional, else one of the R4 specification) evaluated by the service: listed
  concepts, filters (`is-a`, properties, ...), nested value sets, excludes. An include of a
  whole code system (no filter, no concepts) stays "every code of that system", so that a
  value set of all of LOINC does not need 100,000 codes.
- token `:below` / `:above`: the code and its descendants / ancestors in its stored code
  system.
"""

from __future__ import annotations

from typing import Any

from vnehr.errors import InvalidRequest
from vnehr.interactions.context import Context
from vnehr.search.passes import MAX_CODES, Code, Codes
from vnehr.terminology.expansion import Options, TerminologyError, builtin_value_set

Json = dict[str, Any]


class SearchCodes:
    """passes.Codes over the server's terminology service."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def value_set(self, url: str) -> list[Code] | None:
        if self.ctx.terminology is None:
            found = builtin_value_set(url)
            return None if found is None else _listed(found)
        with self.ctx.terminology.session() as session:
            vs = session.find_value_set(url)
            if vs is None:
                return None
            compose = vs.get("compose")
            if not isinstance(compose, dict) and isinstance(vs.get("expansion"), dict):
                members = session.evaluator().expand(vs).members
                return [(m.system or None, m.code) for m in members]
            compose = compose if isinstance(compose, dict) else {}
            includes = [i for i in compose.get("include") or [] if isinstance(i, dict)]
            whole = [i for i in includes if _whole_system(i)]
            if whole and not compose.get("exclude"):
                out: list[Code] = [(i["system"], None) for i in whole]
                rest = [i for i in includes if not _whole_system(i)]
                if rest:
                    out += self._members(session, {**vs, "compose": {**compose, "include": rest}})
                return out
            return self._members(session, vs)

    def _members(self, session: Any, vs: Json) -> list[Code]:
        try:
            members = session.evaluator(Options(limit=MAX_CODES)).expand(vs).members
        except TerminologyError as exc:
            raise InvalidRequest(
                f"The value set cannot be used with :in: {exc.diagnostics}"
            ) from exc
        return [(m.system or None, m.code) for m in members]

    def subsumed(self, system: str, code: str, mode: str) -> list[Code] | None:
        if self.ctx.terminology is None:
            return None
        with self.ctx.terminology.session() as session:
            stored = session.systems.resolve(system)
            if stored is None:
                return None
            concept = session.systems.concept(stored, code)
            if concept is None:
                return [(system, code)]  # not in the hierarchy: the code alone
            cids = (
                session.systems.descendants(concept)
                if mode == "below"
                else session.systems.ancestors(concept)
            )
            # More than MAX_CODES are refused by the search pass: no need to read them all.
            related = session.systems.concepts(stored, cids[:MAX_CODES])
            return [(system, concept.code), *((system, c.code) for c in related)]


def _whole_system(include: Json) -> bool:
    return bool(include.get("system")) and not (
        include.get("concept") or include.get("filter") or include.get("valueSet")
    )


def _listed(vs: Json) -> list[Code]:
    return [
        (inc.get("system"), c.get("code"))
        for inc in vs["compose"]["include"]
        for c in inc.get("concept") or []
    ]


def expander(ctx: Context) -> Codes:
    return SearchCodes(ctx)
