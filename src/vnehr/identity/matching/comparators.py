"""Field comparators: which agreement level a pair of (already normalised) values is at.

Each returns one of the level names of `rules.FIELD_LEVELS` or `missing`. They are called
for every candidate pair, so they do string equality first and Jaro–Winkler (rapidfuzz, C)
only when the strings differ.
"""

from __future__ import annotations

from rapidfuzz.distance import JaroWinkler

from vnehr.identity.features import BHYT_SYSTEM, CCCD_SYSTEM, CMND_SYSTEM, MatchRecord
from vnehr.identity.matching.rules import MISSING, Rules

_jw = JaroWinkler.normalized_similarity


def family_level(a: str, b: str, rules: Rules) -> str:
    if not a or not b:
        return MISSING
    if a == b:
        return "exact"
    variants = rules.family_variants
    if variants and variants.get(a, a) == variants.get(b, b):
        return "variant"
    return _similarity_level(a, b, rules)


def given_level(a: str, b: str, rules: Rules) -> str:
    if not a or not b:
        return MISSING
    if a == b:
        return "exact"
    return _similarity_level(a, b, rules)


def _similarity_level(a: str, b: str, rules: Rules) -> str:
    """jw_high also for two adjacent letters exchanged: Jaro–Winkler finds no match for
    them in a word of three letters (lan/lna: 0.56), where its match window is 0."""
    similarity = _jw(a, b, score_cutoff=rules.jw_low)
    if similarity >= rules.jw_high or (len(a) == len(b) and _transposed(a, b)):
        return "jw_high"
    if similarity >= rules.jw_low:
        return "jw_low"
    return "disagree"


def middle_level(a: str, b: str, rules: Rules) -> str:
    """Middle names: one side empty is `missing` (Văn/Thị are often not written down);
    `subset` when one side has fewer middle names than the other but no other ones."""
    if not a or not b:
        return MISSING
    if a == b:
        return "exact"
    if " " in a or " " in b:
        wa, wb = set(a.split()), set(b.split())
        if wa <= wb or wb <= wa:
            return "subset"
    if _jw(a, b, score_cutoff=rules.jw_high) >= rules.jw_high:
        return "jw_high"
    return "disagree"


def names_levels(a: MatchRecord, b: MatchRecord, rules: Rules) -> tuple[str, str, str, str]:
    """(family, middle, given, name_order) levels.

    Given names equal once folded but written with other diacritics on both sides (Hương /
    Hường, Thu / Thư: different names, often those of twins) are at level `diacritics`;
    a side written without diacritics cannot tell and stays `exact`.

    When family or given name do not agree as recorded, the rotations of b's words are
    tried (b written in Western order "Lan Nguyen Thi", or with the family name last); a
    rotation is taken only if it makes both family and given name agree exactly (or the
    family as a regional variant), so a rotation never turns two different names into a
    match by similarity alone.
    """
    fam = family_level(a.family, b.family, rules)
    giv = given_level(a.given, b.given, rules)
    if (fam == "exact" or fam == "variant") and giv == "exact":
        if a.marks and b.marks and _last(a.marks) != _last(b.marks):
            giv = "diacritics"
        return fam, middle_level(a.middle, b.middle, rules), giv, "same"
    words = b.name_tokens
    if len(words) >= 2 and a.given in words:
        marks = b.marks.split() if a.marks and b.marks else []
        for shift in (1, -1):
            rotated = words[shift:] + words[:shift]
            if rotated[-1] != a.given:
                continue
            rfam = family_level(a.family, rotated[0], rules)
            if rfam == "exact" or rfam == "variant":
                middle = " ".join(rotated[1:-1])
                rgiv = "exact"
                if len(marks) == len(words) and (marks[shift:] + marks[:shift])[-1] != _last(
                    a.marks
                ):
                    rgiv = "diacritics"
                return rfam, middle_level(a.middle, middle, rules), rgiv, "reordered"
    return fam, middle_level(a.middle, b.middle, rules), giv, "same"


def _last(words: str) -> str:
    return words.rpartition(" ")[2]


def birth_date_level(a: str | None, b: str | None) -> str:
    """Birth dates as given: "YYYY-MM-DD", "YYYY-MM" or "YYYY"."""
    if not a or not b:
        return MISSING
    if a == b:
        return "exact"
    if len(a) == 10 and len(b) == 10:
        if a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]:
            return "swapped"
        da = a[:4] + a[5:7] + a[8:10]
        db = b[:4] + b[5:7] + b[8:10]
        if _one_typo(da, db):
            return "typo"
        if a[:7] == b[:7]:
            return "year_month"
        if a[:4] == b[:4]:
            return "same_year"
        return "disagree"
    short, long = (a, b) if len(a) < len(b) else (b, a)
    if long.startswith(short):
        return "partial"  # "1985" / "1985-03-12", "1985-03" / "1985-03-12"
    if a[:4] == b[:4]:
        return "same_year"
    return "disagree"


def _transposed(a: str, b: str) -> bool:
    """Two adjacent characters exchanged, nothing else (strings of one length)."""
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and a[diff[0]] == b[diff[1]]
        and (a[diff[1]] == b[diff[0]])
    )


def _one_typo(a: str, b: str) -> bool:
    """One character different, or two adjacent characters exchanged (strings of one
    length)."""
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) == 1:
        return True
    return _transposed(a, b)


def equal_level(a: str | None, b: str | None) -> str:
    """agree / disagree / missing for values compared whole (gender, province, ids)."""
    if not a or not b:
        return MISSING
    return "agree" if a == b else "disagree"


def ward_level(a: MatchRecord, b: MatchRecord, rules: Rules) -> str:
    """Wards are compared within one province only (see the rules file)."""
    if not a.ward or not b.ward:
        return MISSING
    if a.province and b.province and a.province != b.province:
        return MISSING
    if a.ward == b.ward:
        return "exact"
    if _jw(a.ward, b.ward, score_cutoff=rules.jw_high) >= rules.jw_high:
        return "similar"
    return "disagree"


def phone_level(a: tuple[str, ...], b: tuple[str, ...]) -> str:
    if not a or not b:
        return MISSING
    for phone in a:
        if phone in b:
            return "agree"
    return "disagree"


def verified_ids(r: MatchRecord) -> set[str]:
    """The verified identifiers of a record in the "system|value" form of unverified ones."""
    out = set()
    if r.cccd:
        out.add(f"{CCCD_SYSTEM}|{r.cccd}")
    if r.cmnd:
        out.add(f"{CMND_SYSTEM}|{r.cmnd}")
    if r.bhyt:
        out.add(f"{BHYT_SYSTEM}|{r.bhyt}")
    return out


def unverified_id_level(a: MatchRecord, b: MatchRecord) -> str:
    """`agree` when an unverified identifier of one side equals an identifier of the same
    system on the other; `disagree` when the other side has identifiers of that system but
    none equal; `missing` when there is nothing to compare."""
    if not a.unverified_ids and not b.unverified_ids:
        return MISSING
    ids_a = verified_ids(a).union(a.unverified_ids)
    ids_b = verified_ids(b).union(b.unverified_ids)
    level = MISSING
    for mine, theirs in ((a.unverified_ids, ids_b), (b.unverified_ids, ids_a)):
        for value in mine:
            if value in theirs:
                return "agree"
            system = value.rpartition("|")[0] + "|"
            if any(other.startswith(system) for other in theirs):
                level = "disagree"
    return level
