"""`_contained` (https://hl7.org/fhir/R4/search.html#contained): searching contained resources.

`Medication?code=X&_contained=true` finds the Medications contained in other resources
(a MedicationRequest's `#med1`): their rows are indexed under the container with codes
`#Medication.code` (search/extract/extractor.py), so the query becomes one over the
container types, each leaf's parameter renamed. As those rows of a container mix its
contained resources, every candidate is then checked exactly, contained resource by
contained resource, with the in-memory matcher over the same IR: a container is returned
(or, with `_containedType=contained`, each matching contained resource, its fullUrl the
container's with `#id`) only when one contained resource meets every criterion.
`_contained=both` adds the resources of the type itself.

Supported criteria: every parameter type, modifiers, `_id`, `:missing`; not chains, `_has`,
`_list` or `_lastUpdated` (a contained resource has no history of its own), nor `_sort`
and counting (`_summary=count`, `_total`), which would count candidates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from vnehr.errors import InvalidRequest
from vnehr.fhir import json as fhir_json
from vnehr.search import ir
from vnehr.search.match import Indexed, matches
from vnehr.storage.base import Store, StoredVersion

MODES = ("false", "true", "both")
TYPES = ("container", "contained")


def contained_query(query: ir.Query, res_type: str, containers: list[str], both: bool) -> ir.Query:
    """The query over the containers of `res_type` (and `res_type` itself when `both`)."""
    if query.sort:
        raise InvalidRequest("_sort cannot be used with _contained", ("_sort",))
    options: list[ir.Node] = []
    for container in containers:
        has_one = ir.Missing(ir.Param(container, f"#{res_type}._id", "token"), False)
        parts: list[ir.Node] = [ir.TypeLeaf((container,)), has_one]
        rebased = None if query.where is None else _rebase(query.where, container, res_type)
        if rebased is not None:
            parts.append(rebased)
        options.append(ir.And(tuple(parts)))
    if both:
        own: list[ir.Node] = [ir.TypeLeaf((res_type,))]
        if query.where is not None:
            own.append(query.where)
        options.append(ir.And(tuple(own)))
    types = tuple(sorted({*containers, *((res_type,) if both else ())}))
    where: ir.Node = ir.Or(tuple(options)) if options else ir.Nothing(res_type)
    return ir.Query(types or (res_type,), where)


def _param(p: ir.Param, container: str, res_type: str) -> ir.Param:
    return ir.Param(container, f"#{res_type}.{p.code}", p.type)


def _rebase(node: ir.Node, container: str, res_type: str) -> ir.Node | None:
    """`node` (on `res_type`) as a condition on the rows `container` keeps of it, or None
    where those rows cannot decide (a negation: another contained resource's rows would
    wrongly exclude the container); the exact check comes after."""
    match node:
        case ir.And(items=items):
            kept = [n for i in items if (n := _rebase(i, container, res_type)) is not None]
            return ir.And(tuple(kept)) if kept else None
        case ir.Or(items=items):
            options = [_rebase(i, container, res_type) for i in items]
            if any(o is None for o in options):
                return None
            return ir.Or(tuple(o for o in options if o is not None))
        case ir.Not() | ir.Missing(missing=True):
            return None
        case ir.IdLeaf(ids=ids):
            id_param = ir.Param(container, f"#{res_type}._id", "token")
            leaves: list[ir.Node] = [ir.TokenLeaf(id_param, None, i) for i in ids]
            return leaves[0] if len(leaves) == 1 else ir.Or(tuple(leaves))
        case ir.Missing() | ir.CompositeLeaf():
            return replace(node, param=_param(node.param, container, res_type))
        case ir.Nothing():
            return node
        case _ if isinstance(node, ir.ROW_LEAVES):
            return replace(node, param=_param(node.param, container, res_type))
        case _:
            raise InvalidRequest(
                f"{type(node).__name__} criteria cannot be used with _contained", ("_contained",)
            )


class _NoOthers:
    """A resolver for criteria that never look at other resources (none are allowed)."""

    def get(self, res_type: str, res_id: str) -> Indexed | None:
        return None

    def of_type(self, res_type: str) -> Iterable[Indexed]:
        return ()


def matching(
    store: Store, where: ir.Node | None, stored: StoredVersion, res_type: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The container and those of its contained `res_type` resources that meet `where`."""
    container = fhir_json.loads(stored.content or b"{}")
    found = []
    for item in container.get("contained") or []:
        if not isinstance(item, dict) or item.get("resourceType") != res_type:
            continue
        if where is None:
            found.append(item)
            continue
        rows = store.indexer(item)
        if matches(where, item, rows, _NoOthers()):
            found.append(item)
    return container, found
