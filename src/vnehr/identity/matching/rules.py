"""The matching rules as data: agreement levels with their m and u probabilities, the three
thresholds and the caps, read from a YAML file (default: `identity/data/match_rules.yaml`).

Comparators are code (they decide which level a pair of values is at); everything that is a
judgement about evidence (how much a level weighs, where *certain* starts, which
disagreements forbid an automatic link) is in the file, so it can be learnt from labelled
pairs (`training.py`), reviewed and versioned without touching the code.

Weights follow Fellegi and Sunter: for a level with m = P(level | same person) and
u = P(level | different people) the weight is log2(m / u); a value missing on either side
weighs 0. The score of a pair is the sum of its field weights.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

# Grades from the strongest down. `no-match` is also the grade of a pair two different
# verified CCCDs keep apart (score -inf).
GRADES = ("certain", "probable", "possible", "no-match")
GRADE_RANK = {g: i for i, g in enumerate(GRADES)}
MISSING = "missing"

# Every field the comparators produce and the levels each can be at besides `missing`
# (which weighs 0 and is not listed in the file). The order of the levels is the order the
# comparators test them in, strongest evidence first.
FIELD_LEVELS: dict[str, tuple[str, ...]] = {
    "family": ("exact", "variant", "jw_high", "jw_low", "disagree"),
    "middle": ("exact", "subset", "jw_high", "disagree"),
    "given": ("exact", "diacritics", "jw_high", "jw_low", "disagree"),
    "name_order": ("same", "reordered"),
    "birth_date": (
        "exact",
        "swapped",
        "typo",
        "year_month",
        "partial",
        "same_year",
        "disagree",
    ),
    "gender": ("agree", "disagree"),
    "province": ("agree", "disagree"),
    "ward": ("exact", "similar", "disagree"),
    "phone": ("agree", "disagree"),
    "bhxh": ("agree", "disagree"),
    "cmnd": ("agree", "disagree"),
    "unverified_id": ("agree", "disagree"),
}
FIELDS = tuple(FIELD_LEVELS)


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the place."""


@dataclass(frozen=True, slots=True)
class Level:
    m: float
    u: float

    @property
    def weight(self) -> float:
        return math.log2(self.m / self.u)


@dataclass(frozen=True, slots=True)
class Cap:
    """At most `grade` when every `when` field is at one of its levels, unless some
    `unless` field is at one of its levels."""

    when: tuple[tuple[str, frozenset[str]], ...]
    unless: tuple[tuple[str, frozenset[str]], ...]
    grade: str
    why: str

    def applies(self, levels: Mapping[str, str]) -> bool:
        # Plain loops: this runs for every pair scored above a cap's grade.
        for name, allowed in self.when:
            if levels.get(name, MISSING) not in allowed:
                return False
        for name, allowed in self.unless:  # noqa: SIM110 (a loop is faster than all())
            if levels.get(name, MISSING) in allowed:
                return False
        return True


@dataclass(frozen=True)
class Rules:
    certain: float
    probable: float
    possible: float
    fields: dict[str, dict[str, Level]]
    caps: tuple[Cap, ...] = ()
    jw_high: float = 0.92
    jw_low: float = 0.85
    family_variants: dict[str, str] = field(default_factory=dict)  # folded -> canonical
    source: str = "<memory>"
    # field -> level -> weight, `missing` included (0): what `compare` adds up.
    weights: dict[str, dict[str, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weights = {
            name: {**{lv: lvl.weight for lv, lvl in levels.items()}, MISSING: 0.0}
            for name, levels in self.fields.items()
        }
        object.__setattr__(self, "weights", weights)

    def grade(self, score: float) -> str:
        if score >= self.certain:
            return "certain"
        if score >= self.probable:
            return "probable"
        if score >= self.possible:
            return "possible"
        return "no-match"

    def capped(self, grade: str, levels: Mapping[str, str]) -> tuple[str, str | None]:
        """The grade after the caps, and the reason of the strongest cap that lowered it."""
        reason = None
        rank = GRADE_RANK[grade]
        for cap in self.caps:
            cap_rank = GRADE_RANK[cap.grade]
            if rank < cap_rank and cap.applies(levels):
                grade, reason, rank = cap.grade, cap.why, cap_rank
        return grade, reason

    def with_levels(self, fields: dict[str, dict[str, Level]]) -> Rules:
        """The same rules with other m and u probabilities (thresholds and caps kept)."""
        return Rules(
            certain=self.certain,
            probable=self.probable,
            possible=self.possible,
            fields=fields,
            caps=self.caps,
            jw_high=self.jw_high,
            jw_low=self.jw_low,
            family_variants=self.family_variants,
            source=self.source,
        )

    def with_thresholds(self, certain: float, probable: float, possible: float) -> Rules:
        return Rules(
            certain=certain,
            probable=probable,
            possible=possible,
            fields=self.fields,
            caps=self.caps,
            jw_high=self.jw_high,
            jw_low=self.jw_low,
            family_variants=self.family_variants,
            source=self.source,
        )


def default_rules_text() -> str:
    return resources.files("vnehr.identity").joinpath("data/match_rules.yaml").read_text("utf-8")


@cache
def default_rules() -> Rules:
    """The packaged rules, parsed once."""
    return parse_rules(default_rules_text(), "vnehr.identity/data/match_rules.yaml")


def load_rules(path: str | Path | None = None) -> Rules:
    """The rules of a YAML file, or the packaged ones; `RulesError` if the file is bad."""
    if path is None:
        return default_rules()
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise RulesError(f"{p}: cannot read the rules file: {exc}") from exc
    return parse_rules(text, str(p))


def parse_rules(text: str, source: str = "<string>") -> Rules:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from exc
    return _Parser(source).rules(data)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> RulesError:
        return RulesError(f"{self.source}: {where}: {message}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "expected a mapping")
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise self.fail(where, f"expected a number, got {value!r}")
        return float(value)

    def rules(self, data: Any) -> Rules:
        top = self.mapping(data, "top level")
        unknown = set(top) - {"version", "thresholds", "names", "fields", "caps"}
        if unknown:
            raise self.fail("top level", f"unknown keys {sorted(unknown)}")
        if top.get("version") != 1:
            raise self.fail("version", f"expected 1, got {top.get('version')!r}")
        certain, probable, possible = self.thresholds(top.get("thresholds"))
        names = self.mapping(top.get("names", {}), "names")
        jw_high = self.number(names.get("jw_high", 0.92), "names.jw_high")
        jw_low = self.number(names.get("jw_low", 0.85), "names.jw_low")
        if not 0 < jw_low <= jw_high <= 1:
            raise self.fail("names", "need 0 < jw_low <= jw_high <= 1")
        return Rules(
            certain=certain,
            probable=probable,
            possible=possible,
            fields=self.fields(top.get("fields")),
            caps=self.caps(top.get("caps", [])),
            jw_high=jw_high,
            jw_low=jw_low,
            family_variants=self.variants(names.get("family_variants", [])),
            source=self.source,
        )

    def thresholds(self, value: Any) -> tuple[float, float, float]:
        t = self.mapping(value, "thresholds")
        if set(t) != {"certain", "probable", "possible"}:
            raise self.fail("thresholds", "need exactly certain, probable and possible")
        c, p, q = (self.number(t[k], f"thresholds.{k}") for k in GRADES[:3])
        if not c >= p >= q:
            raise self.fail("thresholds", "need certain >= probable >= possible")
        return c, p, q

    def fields(self, value: Any) -> dict[str, dict[str, Level]]:
        fields = self.mapping(value, "fields")
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise self.fail("fields", f"unknown fields {sorted(unknown)}; known: {list(FIELDS)}")
        out: dict[str, dict[str, Level]] = {}
        for name in FIELDS:
            if name not in fields:
                raise self.fail("fields", f"field {name!r} is missing")
            levels = self.mapping(fields[name], f"fields.{name}")
            expected = FIELD_LEVELS[name]
            if set(levels) != set(expected):
                raise self.fail(
                    f"fields.{name}",
                    f"levels {sorted(levels)} differ from the comparator's {list(expected)}",
                )
            out[name] = {lv: self.level(levels[lv], f"fields.{name}.{lv}") for lv in expected}
        return out

    def level(self, value: Any, where: str) -> Level:
        lv = self.mapping(value, where)
        if set(lv) != {"m", "u"}:
            raise self.fail(where, "need exactly m and u")
        m, u = self.number(lv["m"], f"{where}.m"), self.number(lv["u"], f"{where}.u")
        if not (0 < m <= 1 and 0 < u <= 1):
            raise self.fail(where, "m and u are probabilities in (0, 1]")
        return Level(m, u)

    def caps(self, value: Any) -> tuple[Cap, ...]:
        if not isinstance(value, list):
            raise self.fail("caps", "expected a list")
        return tuple(self.cap(c, f"caps[{i}]") for i, c in enumerate(value))

    def cap(self, value: Any, where: str) -> Cap:
        cap = self.mapping(value, where)
        unknown = set(cap) - {"when", "unless", "max_grade", "why"}
        if unknown:
            raise self.fail(where, f"unknown keys {sorted(unknown)}")
        grade = cap.get("max_grade")
        if grade not in GRADES[1:]:
            raise self.fail(where, f"max_grade must be one of {list(GRADES[1:])}")
        if not isinstance(cap.get("why"), str) or not cap["why"]:
            raise self.fail(where, "`why` (the reason shown to reviewers) is required")
        when = self.conditions(cap.get("when"), f"{where}.when")
        if not when:
            raise self.fail(where, "`when` is required")
        unless = self.conditions(cap.get("unless", {}), f"{where}.unless")
        return Cap(when, unless, grade, cap["why"])

    def conditions(self, value: Any, where: str) -> tuple[tuple[str, frozenset[str]], ...]:
        out = []
        for name, levels in self.mapping(value, where).items():
            if name not in FIELD_LEVELS:
                raise self.fail(where, f"unknown field {name!r}")
            listed = [levels] if isinstance(levels, str) else levels
            if not isinstance(listed, list) or not listed:
                raise self.fail(f"{where}.{name}", "expected a level or a list of levels")
            bad = [lv for lv in listed if lv not in (*FIELD_LEVELS[name], MISSING)]
            if bad:
                raise self.fail(f"{where}.{name}", f"unknown levels {bad}")
            out.append((name, frozenset(listed)))
        return tuple(out)

    def variants(self, value: Any) -> dict[str, str]:
        if not isinstance(value, list):
            raise self.fail("names.family_variants", "expected a list of lists of names")
        out: dict[str, str] = {}
        for i, group in enumerate(value):
            if not isinstance(group, list) or not all(isinstance(n, str) and n for n in group):
                raise self.fail(f"names.family_variants[{i}]", "expected a list of names")
            for name in group:
                out[name] = group[0]
        return out


# -- writing -----------------------------------------------------------------------------

_FIELD_LINE = re.compile(r"^  (?P<name>[a-z_]+):\s*(#.*)?$")
_LEVEL_LINE = re.compile(
    r"^(?P<indent>    )(?P<level>[a-z_]+): \{m: [^,}]+, u: [^}]+\}(?P<rest>\s*(#.*)?)$"
)


def render_rules(rules: Rules, template: str | None = None) -> str:
    """The YAML of `rules`: the template (default: the packaged file) with its m and u
    numbers and thresholds replaced, so the comments documenting each field survive."""
    lines = (template or default_rules_text()).splitlines()
    out: list[str] = []
    section = None
    current = None
    seen: set[tuple[str, str]] = set()
    for line in lines:
        if line and not line.startswith((" ", "#")):
            section = line.split(":", 1)[0]
            current = None
        if section == "thresholds":
            m = re.match(r"^  (certain|probable|possible): [^#]*?(\s*#.*)?$", line)
            if m:
                value = getattr(rules, m.group(1))
                line = f"  {m.group(1)}: {_number(value)}{m.group(2) or ''}"
        elif section == "fields":
            fm = _FIELD_LINE.match(line)
            if fm:
                current = fm.group("name")
            lm = _LEVEL_LINE.match(line)
            if lm and current in rules.fields:
                level = rules.fields[current][lm.group("level")]
                line = (
                    f"{lm.group('indent')}{lm.group('level')}: "
                    f"{{m: {_number(level.m)}, u: {_number(level.u)}}}{lm.group('rest')}"
                )
                seen.add((current, lm.group("level")))
        out.append(line)
    wanted = {(f, lv) for f, levels in rules.fields.items() for lv in levels}
    if seen != wanted:
        raise RulesError(f"the template lacks levels {sorted(wanted - seen)}")
    return "\n".join(out) + "\n"


def _number(x: float) -> str:
    """A number YAML reads back as one (PyYAML takes `7e-06`, without a dot, for a string)."""
    text = f"{x:.6g}"
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def write_rules(rules: Rules, path: str | Path, template: str | None = None) -> None:
    """Write `rules` as YAML (see `render_rules`) and check the file reads back the same."""
    text = render_rules(rules, template)
    parsed = parse_rules(text, str(path))
    for name, levels in rules.fields.items():
        for lv, level in levels.items():
            if abs(parsed.fields[name][lv].weight - level.weight) > 1e-3:
                raise RulesError(f"{path}: {name}.{lv} does not read back the same")
    Path(path).write_text(text, "utf-8")
