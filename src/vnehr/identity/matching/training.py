"""Learning the rules from labelled pairs: m and u per field level, and the thresholds.

Supervised estimation is the direct one: among pairs known to be the same person, the
share at each level is m; among pairs known to be different people, u. The pairs should be
the ones blocking proposes (`blocking.candidate_pairs`) so that u describes the
non-matches the scorer actually meets (people with similar names, same birth year), not
random strangers. Levels are counted only where both values are present (missing weighs
0), with additive smoothing so a level never seen among non-matches does not get an
infinite weight.

Without labels, `em_rules` estimates m and u by expectation–maximisation.
`learn_rules` keeps the thresholds and caps; `tune_thresholds` then places the thresholds
for target precisions on (preferably other) labelled pairs; `write_rules` saves the result
in the commented layout of the packaged file.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from vnehr.identity.features import MatchRecord
from vnehr.identity.matching.rules import FIELD_LEVELS, GRADE_RANK, MISSING, Level, Rules
from vnehr.identity.matching.score import deterministic, field_levels

LabelledPair = tuple[MatchRecord, MatchRecord, bool]


@dataclass
class LevelCounts:
    """How often each field level occurs among matching and non-matching pairs."""

    match: dict[str, Counter[str]]
    nonmatch: dict[str, Counter[str]]
    matches: int = 0
    nonmatches: int = 0


def count_levels(pairs: Iterable[LabelledPair], rules: Rules) -> LevelCounts:
    counts = LevelCounts(
        match={f: Counter() for f in FIELD_LEVELS}, nonmatch={f: Counter() for f in FIELD_LEVELS}
    )
    for a, b, same in pairs:
        table = counts.match if same else counts.nonmatch
        if same:
            counts.matches += 1
        else:
            counts.nonmatches += 1
        for name, level in field_levels(a, b, rules).items():
            table[name][level] += 1
    return counts


def learn_rules(
    pairs: Iterable[LabelledPair],
    rules: Rules,
    *,
    u_pairs: Iterable[tuple[MatchRecord, MatchRecord]] | None = None,
    prior: float = 0.0,
    smoothing: float = 0.5,
) -> Rules:
    """`rules` with m and u re-estimated from labelled pairs.

    m comes from the matching pairs. u comes from the non-matching pairs, or from `u_pairs`
    when given: random pairs of different people, which makes u what Fellegi and Sunter
    meant (agreement by chance in the population) rather than agreement among look-alikes
    the blocking found; the thresholds then absorb the difference (`tune_thresholds`).

    `prior` is how many pairs the current m and u count for (a Dirichlet prior): with
    synthetic training data, which never makes some errors real registrations make, a
    prior keeps a level never seen among matches from weighing -16 bits. `smoothing` is
    added to every count. A field never compared on either side keeps its old m and u.
    """
    counts = count_levels(pairs, rules)
    if counts.matches == 0 or (counts.nonmatches == 0 and u_pairs is None):
        raise ValueError("need both matching and non-matching pairs to learn weights")
    nonmatch = counts.nonmatch
    if u_pairs is not None:
        nonmatch = count_levels(((a, b, False) for a, b in u_pairs), rules).nonmatch
    fields: dict[str, dict[str, Level]] = {}
    for name, levels in FIELD_LEVELS.items():
        old = rules.fields[name]
        m_seen = {lv: counts.match[name][lv] for lv in levels}
        u_seen = {lv: nonmatch[name][lv] for lv in levels}
        if sum(m_seen.values()) == 0 or sum(u_seen.values()) == 0:
            fields[name] = dict(old)
            continue
        m = _estimate(m_seen, {lv: old[lv].m for lv in levels}, prior, smoothing)
        u = _estimate(u_seen, {lv: old[lv].u for lv in levels}, prior, smoothing)
        fields[name] = {lv: Level(m[lv], u[lv]) for lv in levels}
    return rules.with_levels(fields)


def _estimate(
    seen: dict[str, int], old: dict[str, float], prior: float, smoothing: float
) -> dict[str, float]:
    """Shares of `seen` with `prior` pseudo-counts spread as `old` and `smoothing` added."""
    old_total = sum(old.values())
    raw = {lv: n + smoothing + prior * old[lv] / old_total for lv, n in seen.items()}
    total = sum(raw.values())
    return {lv: max(round(v / total, 8), 1e-8) for lv, v in raw.items()}


def em_rules(
    pairs: Iterable[tuple[MatchRecord, MatchRecord]],
    rules: Rules,
    *,
    iterations: int = 30,
    prevalence: float = 0.1,
    smoothing: float = 0.5,
) -> Rules:
    """`rules` with m and u estimated without labels, by expectation–maximisation over the
    candidate pairs (Winkler's EM for Fellegi–Sunter, fields assumed independent).

    Starts from the m and u of `rules`, so that the component called "match" stays the
    one of matches; returns the estimates after `iterations` rounds. Useful where no
    labelled data exist (a new facility's records); check the result on a labelled sample
    before trusting it, since EM finds the strongest two-cluster split, which need not be
    the same-person one (households share much).
    """
    patterns: Counter[tuple[str, ...]] = Counter(
        tuple(field_levels(a, b, rules).values()) for a, b in pairs
    )
    if not patterns:
        raise ValueError("no pairs")
    names = list(FIELD_LEVELS)
    m = {f: {lv: rules.fields[f][lv].m for lv in FIELD_LEVELS[f]} for f in names}
    u = {f: {lv: rules.fields[f][lv].u for lv in FIELD_LEVELS[f]} for f in names}
    p = prevalence
    for _ in range(iterations):
        m_counts = {f: dict.fromkeys(FIELD_LEVELS[f], smoothing) for f in names}
        u_counts = {f: dict.fromkeys(FIELD_LEVELS[f], smoothing) for f in names}
        matched = 0.0
        total = 0
        for pattern, count in patterns.items():
            pm, pu = p, 1.0 - p
            for f, lv in zip(names, pattern, strict=True):
                if lv != MISSING:
                    pm *= m[f][lv]
                    pu *= u[f][lv]
            w = pm / (pm + pu) if pm + pu > 0 else 0.0
            matched += w * count
            total += count
            for f, lv in zip(names, pattern, strict=True):
                if lv != MISSING:
                    m_counts[f][lv] += w * count
                    u_counts[f][lv] += (1.0 - w) * count
        p = min(max(matched / total, 1e-6), 1 - 1e-6)
        for f in names:
            m_total, u_total = sum(m_counts[f].values()), sum(u_counts[f].values())
            m[f] = {lv: c / m_total for lv, c in m_counts[f].items()}
            u[f] = {lv: c / u_total for lv, c in u_counts[f].items()}
    fields = {
        f: {
            lv: Level(max(round(m[f][lv], 8), 1e-8), max(round(u[f][lv], 8), 1e-8))
            for lv in FIELD_LEVELS[f]
        }
        for f in names
    }
    return rules.with_levels(fields)


def random_pairs(
    records: Sequence[MatchRecord],
    n: int,
    *,
    same_person: Callable[[int, int], bool] | None = None,
    seed: int = 0,
) -> list[tuple[MatchRecord, MatchRecord]]:
    """`n` random pairs of records (of different people if `same_person` tells), for u."""
    rng = random.Random(seed)
    out: list[tuple[MatchRecord, MatchRecord]] = []
    while len(out) < n and len(records) > 1:
        i, j = rng.randrange(len(records)), rng.randrange(len(records))
        if i != j and not (same_person and same_person(i, j)):
            out.append((records[i], records[j]))
    return out


def scored_pairs(pairs: Iterable[LabelledPair], rules: Rules) -> list[tuple[float, str, bool]]:
    """(score, the highest grade the caps allow, is match) of the pairs the identifiers do
    not decide."""
    out = []
    for a, b, same in pairs:
        if deterministic(a, b) is not None:
            continue
        levels = field_levels(a, b, rules)
        score = sum(rules.weights[n][lv] for n, lv in levels.items())
        allowed, _ = rules.capped("certain", levels)
        out.append((score, allowed, same))
    return out


def tune_thresholds(
    pairs: Iterable[LabelledPair],
    rules: Rules,
    *,
    certain_precision: float = 0.999,
    probable_precision: float = 0.95,
    possible_precision: float = 0.5,
) -> Rules:
    """`rules` with each threshold at the lowest score at which the pairs the caps allow at
    that grade reach the precision wanted (never below the next threshold down)."""
    scored = scored_pairs(pairs, rules)
    certain = _threshold(scored, "certain", certain_precision)
    probable = min(certain, _threshold(scored, "probable", probable_precision))
    possible = min(probable, _threshold(scored, "possible", possible_precision))
    return rules.with_thresholds(certain, probable, possible)


def _threshold(scored: Sequence[tuple[float, str, bool]], grade: str, precision: float) -> float:
    """The lowest score t such that the pairs scoring >= t, allowed `grade`, are matches at
    least `precision` of the time."""
    rank = GRADE_RANK[grade]
    eligible = sorted(
        ((s, same) for s, allowed, same in scored if GRADE_RANK[allowed] <= rank), reverse=True
    )
    best = eligible[0][0] + 1 if eligible else 0.0
    true = 0
    i = 0
    while i < len(eligible):
        score = eligible[i][0]
        while i < len(eligible) and eligible[i][0] == score:  # ties go in together
            true += eligible[i][1]
            i += 1
        if true / i >= precision:
            best = score
    return round(best, 2)


def level_report(rules: Rules) -> list[str]:
    """One line per field level: m, u and weight; for printing after training."""
    lines = []
    for name, levels in rules.fields.items():
        for lv, level in levels.items():
            numbers = f"m={level.m:<9.4g} u={level.u:<9.4g}"
            lines.append(f"{name:14} {lv:11} {numbers} {level.weight:+.2f}")
        lines.append(f"{name:14} {MISSING:11} {'':22} +0.00")
    return lines
