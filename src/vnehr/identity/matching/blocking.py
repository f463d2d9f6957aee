"""Blocking keys: the few strings under which a record is filed so that its candidate
duplicates are found by key equality instead of comparing it with everyone.

A duplicate is found if it shares at least one key, so each key is chosen to survive a
different kind of error, while being selective enough that no block grows large at national
scale (a key of the family name alone would hold 38% of the country: all the Nguyễn).

- `cccd:`, `cmnd:`, `bhxh:` the verified identifiers: survive every demographic error;
  missing where a facility has no id (commune stations).
- `phone:` each E.164 number (at most 2): survives name and date errors and moves; family
  members sharing a phone make small blocks.
- `fgy:` family | given | birth year: survives day/month swaps and typos, year-only dates,
  a changed or dropped middle name, a move; not a typo in the names or the year.
- `gdm:` given | day and month, smaller first: survives family typos and regional
  spellings, a wrong year, a day/month swap; needs a full date.
- `fn:` first letters of family and given | full date: survives typos inside the names and
  a wrong middle name; not date errors.
- `tok:` the words of the name sorted | birth year: survives names in another order
  ("Lan Nguyen Thi"); not typos.

Sizes at 100 million people, for a common name (Nguyễn 38%, a given name of 3%, 80 birth
years): `fgy` ~14,000, `gdm` ~8,000, `tok` ~600, `fn` ~100; at 1 million, a hundredth of
that. The index should still skip a key whose block exceeds a limit (a placeholder phone
number typed for many patients, for instance) rather than compare against all of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from vnehr.identity.features import MatchRecord
from vnehr.identity.matching.rules import Rules, default_rules

MAX_KEYS = 8
MAX_PHONES = 2


def blocking_keys(r: MatchRecord, rules: Rules | None = None) -> list[str]:
    """At most 8 keys: identifiers, up to 2 phones, 4 name/date keys, minus what is
    missing (a second phone is dropped when all the others are present)."""
    variants = (rules or default_rules()).family_variants
    keys: list[str] = []
    if r.cccd:
        keys.append(f"cccd:{r.cccd}")
    if r.cmnd and r.cmnd != r.cccd:
        # A 12-digit CMND is its holder's CCCD number (see score.national_id).
        keys.append(f"cccd:{r.cmnd}" if len(r.cmnd) == 12 and not r.cccd else f"cmnd:{r.cmnd}")
    if r.bhyt:
        keys.append(f"bhxh:{r.bhyt}")
    family = variants.get(r.family, r.family)
    given = r.given
    date = r.birth_date or ""
    year = date[:4]
    if given and year:
        keys.append(f"fgy:{family}|{given}|{year}")
        words = sorted(variants.get(w, w) for w in r.name_tokens)
        if len(words) >= 2:
            keys.append(f"tok:{' '.join(words)}|{year}")
    if len(date) == 10:
        month, day = date[5:7], date[8:10]
        if given:
            keys.append(f"gdm:{given}|{min(month, day)}{max(month, day)}")
        if family and given:
            keys.append(f"fn:{family[0]}{given[0]}|{date}")
    room = max(1, MAX_KEYS - len(keys))
    keys.extend(f"phone:{p}" for p in r.phones[: min(MAX_PHONES, room)])
    return keys


def candidate_pairs(
    records: Sequence[MatchRecord], rules: Rules | None = None, *, max_block: int = 1000
) -> set[tuple[int, int]]:
    """Index pairs (i < j) of `records` that share a blocking key: what a batch run
    compares. Blocks larger than `max_block` are skipped (see the module docstring)."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        for key in blocking_keys(r, rules):
            blocks[key].append(i)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if len(members) < 2 or len(members) > max_block:
            continue
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                pairs.add((i, j) if i < j else (j, i))
    return pairs
