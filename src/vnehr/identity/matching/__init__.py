"""Record matching for the master patient index: deterministic rules on verified national
identifiers, Fellegi–Sunter scores on folded names, dates, address and phones, blocking keys
(docs/identity.md). The weights and thresholds are data: `identity/data/match_rules.yaml`."""

from __future__ import annotations

from vnehr.identity.matching.blocking import blocking_keys, candidate_pairs
from vnehr.identity.matching.rules import GRADES, Rules, RulesError, load_rules
from vnehr.identity.matching.score import MatchResult, compare

__all__ = [
    "GRADES",
    "MatchResult",
    "Rules",
    "RulesError",
    "blocking_keys",
    "candidate_pairs",
    "compare",
    "load_rules",
]
