"""Search criteria over the index tables, as used by conditional interactions.

A first, deliberately small slice of FHIR search (https://hl7.org/fhir/R4/search.html): the
parameters a conditional create/update/delete or a conditional reference usually carries.
The full search compiler (parse -> IR -> passes -> SQL) replaces this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vnehr.errors import InvalidRequest
from vnehr.fhir.instant import parse_range
from vnehr.fhir.text import fold, nfc
from vnehr.search.index_hash import value_hash
from vnehr.search.registry import SearchParamRegistry

SpId = Callable[[str, str], "int | None"]
_RESULT_PARAMS = {"_count", "_sort", "_format", "_pretty", "_summary", "_elements", "_total"}
_DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def _split(value: str, sep: str) -> list[str]:
    """Split on `sep` not escaped with a backslash, then unescape."""
    parts, current, escaped = [], [], False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True, slots=True)
class Criterion:
    """One parameter=value(s) pair: values are ORed, criteria are ANDed."""

    res_type: str
    code: str
    kind: str
    modifier: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.code != "_id":  # values are checked here, even if no row could match
            for value in self.values:
                _VALUE_SQL[self.kind](self.modifier, value, self.code, "")

    def to_sql(self, sp_id: SpId) -> tuple[str, list[Any]]:
        if self.code == "_id":
            marks = ", ".join("?" for _ in self.values)
            return f"r.res_id IN ({marks})", list(self.values)
        sp = sp_id(self.res_type, self.code)
        if sp is None:
            return "1 = 0", []
        ors: list[str] = []
        params: list[Any] = []
        param = f"{self.res_type}.{self.code}"
        for value in self.values:
            sql, args = _VALUE_SQL[self.kind](self.modifier, value, self.code, param)
            ors.append(sql)
            params.extend(args)
        table = _TABLES[self.kind]
        return (
            f"r.rkey IN (SELECT x.rkey FROM {table} x WHERE x.sp = ? AND ({' OR '.join(ors)}))",
            [sp, *params],
        )


def _token_sql(modifier: str, value: str, code: str, param: str) -> tuple[str, list[Any]]:
    if modifier == "text":
        return "x.text LIKE ?", [fold(value) + "%"]
    parts = _split(value, "|")
    if len(parts) == 1:
        return "x.hv = ? AND x.code = ?", [value_hash(param, parts[0]), parts[0]]
    if len(parts) != 2:
        raise InvalidRequest(f"Invalid token value for '{code}': {value!r}")
    system, token = parts
    if system and token:
        return "x.hv = ? AND x.code = ? AND x.system = ?", [value_hash(param, token), token, system]
    if token:
        return "x.hv = ? AND x.code = ? AND x.system IS NULL", [value_hash(param, token), token]
    return "x.system = ?", [system]


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _string_sql(modifier: str, value: str, code: str, param: str) -> tuple[str, list[Any]]:
    if modifier == "exact":
        return "x.exact = ?", [nfc(value)]
    if modifier == "contains":
        return "x.folded LIKE ? ESCAPE '\\'", ["%" + _like_escape(fold(value)) + "%"]
    return "x.folded LIKE ? ESCAPE '\\'", [_like_escape(fold(value)) + "%"]


def _reference_sql(modifier: str, value: str, code: str, param: str) -> tuple[str, list[Any]]:
    if "://" in value:
        return "x.hv = ? AND x.url = ?", [value_hash(param, value), value]
    target_type, _, target_id = value.rpartition("/")
    target_type = target_type.split("/")[-1] or modifier
    hv = value_hash(param, target_id)
    if target_type:
        return "x.hv = ? AND x.target_id = ? AND x.target_type = ?", [hv, target_id, target_type]
    return "x.hv = ? AND x.target_id = ?", [hv, target_id]


def _date_sql(modifier: str, value: str, code: str, param: str) -> tuple[str, list[Any]]:
    prefix = value[:2] if value[:2] in _DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in _DATE_PREFIXES else value
    low, high = parse_range(text, code)
    match prefix:
        case "eq":
            return "x.low >= ? AND x.high <= ?", [low, high]
        case "ne":
            return "NOT (x.low >= ? AND x.high <= ?)", [low, high]
        case "gt" | "sa":
            return "x.high > ?", [high]
        case "lt" | "eb":
            return "x.low < ?", [low]
        case "ge":
            return "x.high >= ?", [low]
        case "le":
            return "x.low <= ?", [high]
        case _:
            return "x.low <= ? AND x.high >= ?", [high, low]


def _uri_sql(modifier: str, value: str, code: str, param: str) -> tuple[str, list[Any]]:
    return "x.hv = ? AND x.uri = ?", [value_hash(param, value), value]


def _number_sql(modifier: str, value: str, code: str, param: str) -> tuple[str, list[Any]]:
    try:
        number = float(value.split("|")[0].lstrip("eqnglt") or "x")
    except ValueError:
        raise InvalidRequest(f"Invalid number for '{code}': {value!r}") from None
    return "x.low <= ? AND x.high >= ?", [number, number]


_VALUE_SQL: dict[str, Callable[[str, str, str, str], tuple[str, list[Any]]]] = {
    "token": _token_sql,
    "string": _string_sql,
    "reference": _reference_sql,
    "date": _date_sql,
    "uri": _uri_sql,
    "number": _number_sql,
    "quantity": _number_sql,
}
_TABLES = {
    "token": "idx_token",
    "string": "idx_string",
    "reference": "idx_reference",
    "date": "idx_date",
    "uri": "idx_uri",
    "number": "idx_number",
    "quantity": "idx_quantity",
}


@dataclass(frozen=True, slots=True)
class Criteria:
    """All criteria of a query string for one resource type (ANDed)."""

    res_type: str
    items: tuple[Criterion, ...]

    def to_sql(self, sp_id: SpId) -> tuple[str, list[Any]]:
        if not self.items:
            return "1 = 1", []
        sqls, params = [], []
        for item in self.items:
            sql, args = item.to_sql(sp_id)
            sqls.append(sql)
            params.extend(args)
        return " AND ".join(sqls), params

    def key(self) -> str:
        """A canonical text of the criteria, for locks."""
        parts = sorted(f"{c.code}:{c.modifier}={','.join(c.values)}" for c in self.items)
        return f"{self.res_type}?{'&'.join(parts)}"


def parse_criteria(
    registry: SearchParamRegistry,
    res_type: str,
    query: Sequence[tuple[str, str]],
    *,
    allow_empty: bool = False,
) -> Criteria:
    """Criteria from query pairs; unknown parameters are an error (conditional semantics)."""
    items = []
    for name, value in query:
        if name in _RESULT_PARAMS:
            continue
        code, _, modifier = name.partition(":")
        if code == "_id":
            items.append(Criterion(res_type, code, "token", "", tuple(_split(value, ","))))
            continue
        param = registry.get(res_type, code)
        if param is None:
            raise InvalidRequest(f"Unknown search parameter '{code}' for {res_type}", (name,))
        if param.type not in _VALUE_SQL:
            raise InvalidRequest(
                f"Search parameter '{code}' of type {param.type} is not supported in criteria"
            )
        if value == "":
            raise InvalidRequest(f"Search parameter '{code}' has an empty value")
        items.append(Criterion(res_type, code, param.type, modifier, tuple(_split(value, ","))))
    if not items and not allow_empty:
        raise InvalidRequest("Conditional interaction without search criteria")
    return Criteria(res_type, tuple(items))
