"""Scope checks: what an access token's SMART scopes let its caller do, per interaction.

Every FHIR interaction names a resource type and a SMART permission (c create, r read, u
update, d delete, s search); the router asks `require` before doing anything and gets a
`Grant` or a 403. A grant may be narrowed: a `patient/` scope to the launch patient's
compartment, a scope with a query (`patient/Observation.rs?category=laboratory`) to the
resources that query finds. The narrowing is compiled into the search's IR (`restrict`),
and checked for single resources (`visible`) by the same query with `_id`, so a read, a
search, an include and a write all see one rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vnehr.auth.scopes import ClinicalScope
from vnehr.auth.tokens import Principal
from vnehr.errors import Forbidden
from vnehr.fhir.definitions import resource_types
from vnehr.policy import conditions as policy
from vnehr.policy.roles import role_of
from vnehr.search import ir
from vnehr.search.query import Unknown, build_query, compartments

if TYPE_CHECKING:
    from vnehr.interactions.context import Context
    from vnehr.interactions.exchange import FhirResponse
    from vnehr.storage.base import StoredVersion, WriteTransaction

_NAMES = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_PRIORITY = {"system": 0, "user": 0, "patient": 1}


@dataclass(frozen=True, slots=True)
class Grant:
    """Permission on one resource type, with the narrowing that comes with it (none:
    every resource of the type)."""

    res_type: str
    compartment: tuple[str, str] | None = None
    query: tuple[tuple[str, str], ...] = ()
    # Whose access policy (vnehr.policy) narrows the grant further; None: no policy.
    principal: Principal | None = field(default=None, compare=False)

    @property
    def narrowed(self) -> bool:
        """Narrowed by the token's scopes."""
        return self.compartment is not None or bool(self.query)

    @property
    def unrestricted(self) -> bool:
        return not self.narrowed and not policy.policed(self.principal, self.res_type)


def grant(principal: Principal, res_type: str, permission: str) -> Grant | None:
    """The widest grant the principal's scopes give for `permission` on `res_type`."""
    scopes = principal.scopes.matching(res_type, permission)
    if principal.kind != "system":
        scopes = [s for s in scopes if s.context != "system"]
    best: Grant | None = None
    for scope in sorted(scopes, key=lambda s: (_PRIORITY[s.context], bool(s.query))):
        candidate = _grant_of(principal, scope, res_type, permission)
        if candidate is None:
            continue
        if not candidate.narrowed:
            return candidate
        if best is None:
            best = candidate
        elif best.query and candidate.query and best.compartment == candidate.compartment:
            best = _union(best, candidate)
    return best


def _grant_of(
    principal: Principal, scope: ClinicalScope, res_type: str, permission: str
) -> Grant | None:
    compartment = None
    if scope.context == "patient":
        if not principal.patient:
            return None  # a patient scope without a patient in context grants nothing
        # Types outside the Patient compartment (Medication, Organization, ...) are shared
        # data, not the patient's; "*" (several types at once) stays within the compartment.
        in_compartment = res_type in ("Patient", "*") or res_type in compartments().get(
            "Patient", {}
        )
        if in_compartment:
            # A citizen's patient scopes reach their whole person and their wards: the
            # policy (vnehr.policy) holds them to those, not to one Patient.
            if role_of(principal) != "citizen":
                compartment = ("Patient", principal.patient)
        elif permission not in "rs":
            return None  # shared data (the facility registry, ...): a patient app reads it
    return Grant(res_type, compartment, scope.query, principal)


def _union(a: Grant, b: Grant) -> Grant:
    """Two narrowed grants on one parameter: the values OR-ed (`category=a` and
    `category=b` give `category=a,b`); on different parameters the first stays, which
    grants less, never more."""
    if len(a.query) == 1 and len(b.query) == 1 and a.query[0][0] == b.query[0][0]:
        name = a.query[0][0]
        values = f"{a.query[0][1]},{b.query[0][1]}"
        return Grant(a.res_type, a.compartment, ((name, values),), a.principal)
    return a


def require(principal: Principal | None, res_type: str, permission: str) -> Grant:
    """The grant for `permission` on `res_type`, or Forbidden. No principal: development
    mode or a trusted local caller (the CLI), which may do everything."""
    if principal is None:
        return Grant(res_type)
    found = grant(principal, res_type, permission)
    if found is None:
        raise Forbidden(
            f"The access token's scopes do not allow {_NAMES[permission]} on {res_type} "
            f"(granted: {principal.scopes.text() or 'none'})"
        )
    return found


def require_all(
    principal: Principal | None, types: Iterable[str], permission: str, *, policed: bool = False
) -> None:
    """Unrestricted `permission` on each of `types` (searches across types, history);
    `policed`: limits of the access policy are allowed (the caller applies them with
    restrict_across), limits of the token's scopes still refused."""
    for res_type in types:
        found = require(principal, res_type, permission)
        if found.narrowed or not (policed or found.unrestricted):
            raise Forbidden(
                f"The access token allows {_NAMES[permission]} on {res_type} only within "
                "limits, which a search across types or a history cannot apply: ask for "
                f"one type (GET {res_type}?...)"
            )


def restrict_across(ctx: Context, query: ir.Query, principal: Principal | None) -> ir.Query:
    """A search across types (`GET [base]?_type=...`) held to the access policy: the
    resources of the types it polices (patient data) must be open to the caller, the others
    (facilities, practitioners, terminology) pass."""
    if principal is None:
        return query
    types = query.res_types or tuple(sorted(resource_types()))
    policed_types = tuple(t for t in types if policy.policed(principal, t))
    if not policed_types:
        return query
    rule = policy.condition(ctx, principal, policed_types)
    if rule is None:
        return query
    condition: ir.Node = ir.Or((rule, ir.Not(ir.TypeLeaf(policed_types))))
    where = condition if query.where is None else ir.And((query.where, condition))
    return ir.Query(query.res_types, where, query.sort)


def restriction(ctx: Context, found: Grant) -> ir.Node | None:
    """The grant's narrowing, the scopes' and the access policy's, as a search condition
    on its type."""
    if found.unrestricted:
        return None
    conditions: list[ir.Node] = []
    if found.narrowed:
        query = build_query(
            ctx.registry,
            (found.res_type,),
            list(found.query),
            Unknown(strict=True),
            found.compartment,
        )
        if query.where is not None:
            conditions.append(query.where)
    if found.principal is not None:
        rule = policy.condition(ctx, found.principal, (found.res_type,))
        if rule is not None:
            conditions.append(rule)
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else ir.And(tuple(conditions))


def restrict(ctx: Context, query: ir.Query, found: Grant) -> ir.Query:
    """`query` (on the grant's type) narrowed to what the grant covers."""
    condition = restriction(ctx, found)
    if condition is None:
        return query
    where = condition if query.where is None else ir.And((query.where, condition))
    return ir.Query(query.res_types, where, query.sort)


def guard(ctx: Context, principal: Principal | None, query: ir.Query) -> ir.Query:
    """`query` with every type it reaches through a chain or `_has` held to what the
    principal may search there: a type it may not search is a 403, a narrowed grant is
    AND-ed into the chained condition (a patient app's chain stays in its compartment).
    Without this, `Observation?subject:Patient.identifier=CCCD` would tell a token that may
    not search Patients whether a person has records here."""
    if principal is None or query.where is None:
        return query
    return ir.Query(query.res_types, _guarded(ctx, principal, query.where), query.sort)


def _guarded(ctx: Context, principal: Principal, node: ir.Node) -> ir.Node:
    if isinstance(node, ir.And):
        return ir.And(tuple(_guarded(ctx, principal, n) for n in node.items))
    if isinstance(node, ir.Or):
        return ir.Or(tuple(_guarded(ctx, principal, n) for n in node.items))
    if isinstance(node, ir.Not):
        return ir.Not(_guarded(ctx, principal, node.item))
    if isinstance(node, ir.Chain):
        inner = _narrowed(ctx, principal, node.target_type, node.inner)
        return ir.Chain(node.param, node.target_type, inner)
    if isinstance(node, ir.Has):
        inner = _narrowed(ctx, principal, node.ref.res_type, node.inner)
        return ir.Has(node.res_type, node.ref, inner)
    if isinstance(node, ir.InList):
        require_all(principal, ("List",), "r")
    return node


def _narrowed(ctx: Context, principal: Principal, res_type: str, inner: ir.Node) -> ir.Node:
    found = require(principal, res_type, "s")
    inner = _guarded(ctx, principal, inner)
    condition = restriction(ctx, found)
    return inner if condition is None else ir.And((inner, condition))


def check_written(
    ctx: Context, txn: WriteTransaction, found: Grant, response: FhirResponse
) -> FhirResponse:
    """After a write under a narrowed grant: the written resource must still be within it
    (a patient app cannot file an Observation on another patient); if it is not, the error
    rolls the transaction back."""
    if found.unrestricted or response.status >= 300:
        return response
    location = response.headers.get("Location", "")
    parts = location.split("/_history/")[0].rsplit("/", 2)
    written = parts[-1] if len(parts) >= 2 and parts[-2] == found.res_type else None
    if written is None or not visible(ctx, found, [written], txn):
        raise Forbidden(f"The {found.res_type} written is outside what the access token allows")
    return response


def visible(
    ctx: Context,
    found: Grant,
    ids: list[str],
    txn: WriteTransaction | None = None,
) -> set[str]:
    """Which of `ids` (of the grant's type) the grant covers."""
    if found.unrestricted or not ids:
        return set(ids)
    query = restrict(ctx, ir.Query((found.res_type,), ir.IdLeaf(found.res_type, tuple(ids))), found)
    source = txn if txn is not None else ctx.store
    return set(source.search_ids(query, len(ids)))


def visible_versions(
    ctx: Context, principal: Principal | None, versions: list[StoredVersion], permission: str
) -> list[StoredVersion]:
    """The `versions` (of any types) the principal may see with `permission`: included
    resources of a search, whose types the search did not name."""
    if principal is None or not versions:
        return versions
    by_type: dict[str, list[str]] = {}
    for v in versions:
        by_type.setdefault(v.res_type, []).append(v.res_id)
    allowed: dict[str, set[str]] = {}
    for res_type, ids in by_type.items():
        found = grant(principal, res_type, permission)
        allowed[res_type] = set() if found is None else visible(ctx, found, ids)
    return [v for v in versions if v.res_id in allowed[v.res_type]]
