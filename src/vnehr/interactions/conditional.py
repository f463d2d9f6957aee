"""Resolving the criteria of conditional interactions (If-None-Exist, PUT/DELETE/PATCH ?query).

Criteria are full search criteria (vnehr.search), parsed strictly: a parameter the server
does not know is an error, not ignored, since ignoring it could select the wrong resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from vnehr.auth.access import guard, require, restrict
from vnehr.auth.tokens import Principal
from vnehr.errors import InvalidRequest, PreconditionFailed
from vnehr.interactions.context import Context
from vnehr.interactions.value_sets import expander
from vnehr.search.ir import Query
from vnehr.search.parse import RESULT_PARAMS
from vnehr.search.passes import expand_value_sets
from vnehr.search.query import Unknown, build_query
from vnehr.storage.base import WriteTransaction


@dataclass(frozen=True, slots=True)
class Criteria:
    res_type: str
    query: Query
    pairs: tuple[tuple[str, str], ...]

    def key(self) -> str:
        """A canonical text of the criteria, for locks and messages."""
        parts = sorted(f"{k}={v}" for k, v in self.pairs)
        return f"{self.res_type}?{'&'.join(parts)}"


def parse_criteria(
    ctx: Context,
    res_type: str,
    pairs: list[tuple[str, str]],
    principal: Principal | None = None,
) -> Criteria:
    """The criteria of a conditional interaction; with a caller's token, they find only
    what the caller may search (its scopes and the access policy: auth/access.py), and the
    types they chain into are held to the same, as in a search. A resource the caller may
    not see is not a match: If-None-Exist cannot tell whether it exists."""
    criteria = [(k, v) for k, v in pairs if k not in RESULT_PARAMS]
    if not criteria:
        raise InvalidRequest("Conditional interaction without search criteria")
    query = build_query(ctx.registry, (res_type,), criteria, Unknown(strict=True))
    query = guard(ctx, principal, query)
    if principal is not None:
        query = restrict(ctx, query, require(principal, res_type, "s"))
    query = expand_value_sets(query, expander(ctx))
    return Criteria(res_type, query, tuple(criteria))


def criteria_from_text(
    ctx: Context, res_type: str, text: str, principal: Principal | None = None
) -> Criteria:
    """`identifier=a|b&birthdate=2000` (an If-None-Exist header or a URL's query)."""
    text = text.split("?", 1)[1] if "?" in text else text
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidRequest(f"Malformed search criteria {text!r}") from None
    return parse_criteria(ctx, res_type, pairs, principal)


def matches(txn: WriteTransaction, criteria: Criteria, *, lock: bool) -> list[str]:
    """Ids matching `criteria` (at most 2: enough to tell 0, 1 and many apart).

    With `lock`, first take a lock on the criteria so that two clients racing to
    conditionally create the same resource are serialised and the second sees the first.
    """
    if lock:
        txn.lock(criteria.key())
    return txn.search_ids(criteria.query, 2)


def single_match(txn: WriteTransaction, criteria: Criteria, *, lock: bool) -> str | None:
    """The one matching id, None for no match; 412 for several (spec: 'multiple matches')."""
    found = matches(txn, criteria, lock=lock)
    if len(found) > 1:
        raise PreconditionFailed(
            f"The criteria {criteria.key()} match more than one {criteria.res_type}"
        )
    return found[0] if found else None
