"""Comparing two match records: deterministic rules on verified national identifiers first,
then the Fellegi–Sunter score, the grade by the thresholds, and the caps of the rules."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from vnehr.identity.features import MatchRecord
from vnehr.identity.matching import comparators as c
from vnehr.identity.matching.rules import Rules

CERTAIN_SCORE = math.inf
NEVER_SCORE = -math.inf


@dataclass(frozen=True, slots=True)
class MatchResult:
    score: float  # sum of the level weights; +inf / -inf when decided by identifiers
    grade: str  # certain | probable | possible | no-match
    levels: dict[str, str]  # field -> level, for review screens and training
    reason: str | None  # why a deterministic rule or a cap decided; None for a plain score


def compare(
    a: MatchRecord,
    b: MatchRecord,
    rules: Rules,
    *,
    cmnd_links: Mapping[str, str] | None = None,
) -> MatchResult:
    """How likely `a` and `b` are the same person.

    `cmnd_links` maps a verified CMND to the verified CCCD of the same person, as the index
    knows it from records carrying both; with it a record known only by its CMND meets one
    known only by its CCCD. Two records that carry the same CMND need no link: that is the
    same-CMND rule.
    """
    levels = field_levels(a, b, rules)
    decided = deterministic(a, b, cmnd_links)
    if decided is not None:
        same, why = decided
        if same:
            return MatchResult(CERTAIN_SCORE, "certain", levels, why)
        return MatchResult(NEVER_SCORE, "no-match", levels, why)
    weights = rules.weights
    score = 0.0
    for name, level in levels.items():
        score += weights[name][level]
    grade, reason = rules.capped(rules.grade(score), levels)
    return MatchResult(score, grade, levels, reason)


def score_only(a: MatchRecord, b: MatchRecord, rules: Rules) -> float:
    """The Fellegi–Sunter score alone (no identifiers, no caps): for training and tuning."""
    weights = rules.weights
    return sum(weights[name][level] for name, level in field_levels(a, b, rules).items())


def field_levels(a: MatchRecord, b: MatchRecord, rules: Rules) -> dict[str, str]:
    family, middle, given, order = c.names_levels(a, b, rules)
    return {
        "family": family,
        "middle": middle,
        "given": given,
        "name_order": order,
        "birth_date": c.birth_date_level(a.birth_date, b.birth_date),
        "gender": c.equal_level(a.gender, b.gender),
        "province": c.equal_level(a.province, b.province),
        "ward": c.ward_level(a, b, rules),
        "phone": c.phone_level(a.phones, b.phones),
        "bhxh": c.equal_level(a.bhyt, b.bhyt),
        "cmnd": c.equal_level(a.cmnd, b.cmnd),
        "unverified_id": c.unverified_id_level(a, b),
    }


def national_id(r: MatchRecord, cmnd_links: Mapping[str, str] | None = None) -> str | None:
    """The CCCD number of a record: its verified CCCD, else the CCCD its verified CMND is
    linked to, else a 12-digit CMND (the 12-digit CMND number became the CCCD number of its
    holder; only the 9-digit ones were replaced by a new number)."""
    if r.cccd:
        return r.cccd
    if r.cmnd:
        if cmnd_links and r.cmnd in cmnd_links:
            return cmnd_links[r.cmnd]
        if len(r.cmnd) == 12:
            return r.cmnd
    return None


def deterministic(
    a: MatchRecord, b: MatchRecord, cmnd_links: Mapping[str, str] | None = None
) -> tuple[bool, str] | None:
    """(same person?, reason) when verified national identifiers decide, else None."""
    id_a, id_b = national_id(a, cmnd_links), national_id(b, cmnd_links)
    if id_a and id_b:
        direct = a.cccd is not None and b.cccd is not None
        if id_a == id_b:
            return True, "same CCCD" if direct else "CMND linked to CCCD"
        return False, "different CCCDs" if direct else "CMND linked to a different CCCD"
    if a.cmnd and a.cmnd == b.cmnd:
        return True, "same CMND"
    return None
