"""Resolving the criteria of conditional interactions (If-None-Exist, PUT/DELETE/PATCH ?query)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from vnehr.errors import InvalidRequest, PreconditionFailed
from vnehr.interactions.context import Context
from vnehr.search.criteria import Criteria, parse_criteria
from vnehr.storage.base import WriteTransaction


def criteria_from_text(ctx: Context, res_type: str, text: str) -> Criteria:
    """`identifier=a|b&birthdate=2000` (an If-None-Exist header or a URL's query)."""
    text = text.split("?", 1)[1] if "?" in text else text
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidRequest(f"Malformed search criteria {text!r}") from None
    return parse_criteria(ctx.registry, res_type, pairs)


def matches(txn: WriteTransaction, criteria: Criteria, *, lock: bool) -> list[str]:
    """Ids matching `criteria` (at most 2: enough to tell 0, 1 and many apart).

    With `lock`, first take a lock on the criteria so that two clients racing to
    conditionally create the same resource are serialised and the second sees the first.
    """
    if lock:
        txn.lock(criteria.key())
    return txn.search_ids(criteria.res_type, criteria, 2)


def single_match(txn: WriteTransaction, criteria: Criteria, *, lock: bool) -> str | None:
    """The one matching id, None for no match; 412 for several (spec: 'multiple matches')."""
    found = matches(txn, criteria, lock=lock)
    if len(found) > 1:
        raise PreconditionFailed(
            f"The criteria {criteria.key()} match more than one {criteria.res_type}"
        )
    return found[0] if found else None
