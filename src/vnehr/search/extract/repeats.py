"""Rows added twice by one converter call: dropped on the spot when there are few."""

from __future__ import annotations

from typing import Any


def unique_tail(out: list[Any], start: int, bit: int) -> int:
    """Drop from out[start:] the rows equal to an earlier one there; 0 if done, else `bit`.

    The caller, which added out[start:], may have added a row twice (two equal values). Two
    or three rows are compared directly; more are left to the Extractor (`bit`) unless they
    are all different. Dropping a later copy of a row keeps the first, as deduplicating the
    whole list does.
    """
    size = len(out) - start
    if size < 2:
        return 0
    if size == 2:
        if out[-1] == out[-2]:
            del out[-1]
        return 0
    if size == 3:
        a, b, c = out[start:]
        if a != b and a != c and b != c:
            return 0
        return bit
    if len(set(out[start:])) == size:
        return 0
    return bit
