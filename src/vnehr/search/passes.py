"""Normalising passes over the search IR, run between parsing and compiling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from vnehr.errors import InvalidRequest
from vnehr.search import ir

Code = tuple["str | None", "str | None"]


class Codes(Protocol):
    """The terminology the search needs (vnehr.interactions.value_sets)."""

    def value_set(self, url: str) -> Sequence[Code] | None:
        """A value set's codes as (system, code); code None stands for every code of the
        system. None: the value set is not known."""

    def subsumed(self, system: str, code: str, mode: str) -> Sequence[Code] | None:
        """The code and those below it (mode `below`) or above it (`above`) in its code
        system. None: the code system is not known."""


MAX_CODES = 2000


def expand_value_sets(query: ir.Query, codes: Codes) -> ir.Query:
    """`:in` / `:not-in` and token `:above` / `:below`: each becomes an OR of its codes
    (Nothing if empty).

    A value without a system (a `code` element: its system is the one its binding implies)
    matches by its code alone.
    """
    if query.where is None:
        return query
    return replace(query, where=_expand(query.where, codes))


def _expand(node: ir.Node, expand: Codes) -> ir.Node:
    match node:
        case ir.Subsumed(param=p, system=system, code=code, mode=mode):
            found = expand.subsumed(system, code, mode)
            where = f"{p.code}:{mode}"
            if found is None:
                raise InvalidRequest(f"Code system {system!r} is not known to the server", (where,))
            if len(found) > MAX_CODES:
                raise InvalidRequest(
                    f"{system}|{code} has more than {MAX_CODES} codes {mode} it: too many for"
                    f" :{mode}",
                    (where,),
                )
            tokens: list[ir.Node] = [ir.TokenLeaf(p, s, c) for s, c in found]
            return tokens[0] if len(tokens) == 1 else ir.Or(tuple(tokens))
        case ir.InValueSet(param=p, url=url):
            codes = expand.value_set(url)
            if codes is None:
                raise InvalidRequest(f"Unknown value set {url!r}", (f"{p.code}:in",))
            if len(codes) > MAX_CODES:
                raise InvalidRequest(
                    f"Value set {url!r} has more than {MAX_CODES} codes: too large for :in",
                    (f"{p.code}:in",),
                )
            leaves: list[ir.Node] = [
                ir.TokenLeaf(p, system, code) for system, code in codes if system or code
            ]
            # A bare code (a `code` element, whose system its binding implies) is in the
            # value set when its code is.
            bare = dict.fromkeys(code for system, code in codes if system and code)
            leaves += [ir.TokenLeaf(p, "", code) for code in bare]
            if not leaves:
                return ir.Nothing(p.res_type)
            return leaves[0] if len(leaves) == 1 else ir.Or(tuple(leaves))
        case ir.And(items=items):
            return ir.And(tuple(_expand(i, expand) for i in items))
        case ir.Or(items=items):
            return ir.Or(tuple(_expand(i, expand) for i in items))
        case ir.Not(item=item):
            return ir.Not(_expand(item, expand))
        case ir.Chain():
            return replace(node, inner=_expand(node.inner, expand))
        case ir.Has():
            return replace(node, inner=_expand(node.inner, expand))
        case _:
            return node
