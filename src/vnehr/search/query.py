"""Search criteria and sort keys from query parameters -> an ir.Query, for any caller.

Used by the search interaction (lenient or strict, type, system and compartment search),
by conditional interactions (always strict) and by Python callers (`strict_query`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources

from vnehr.errors import InvalidRequest
from vnehr.fhir.definitions import resource_types
from vnehr.search import ir
from vnehr.search.parse import RESULT_PARAMS, SearchParser, UnknownParameter
from vnehr.search.registry import SearchParamRegistry


@cache
def compartments() -> dict[str, dict[str, list[str]]]:
    """The R4 compartment definitions: compartment -> resource type -> parameters."""
    data: dict[str, dict[str, list[str]]] = json.loads(
        resources.files("vnehr.fhir.definitions")
        .joinpath("r4/compartments.json")
        .read_text("utf-8")
    )
    return data


# R4 types outside the Patient compartment that still hold a patient's data, by their
# `patient` reference parameter (a Task to call a patient back, a Device implanted in one).
_PATIENT_DATA_OUTSIDE_COMPARTMENT = ("Contract", "Device", "GuidanceResponse", "Task")


@cache
def patient_data() -> dict[str, list[str]]:
    """Types holding patients' data -> the parameters naming the patient: the Patient
    compartment, and the few types outside it with a `patient` parameter (vnehr.policy)."""
    out = {t: list(codes) for t, codes in compartments().get("Patient", {}).items()}
    for res_type in _PATIENT_DATA_OUTSIDE_COMPARTMENT:
        out.setdefault(res_type, ["patient"])
    return out


class Unknown:
    """Parameters to ignore and report (or, strictly, to reject)."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.items: list[UnknownParameter] = []

    def add(self, item: UnknownParameter) -> None:
        if self.strict:
            raise InvalidRequest(item.reason, (item.name,))
        self.items.append(item)

    def names(self) -> set[str]:
        return {i.name for i in self.items}


def build_query(
    registry: SearchParamRegistry,
    types: tuple[str, ...],
    pairs: Sequence[tuple[str, str]],
    unknown: Unknown,
    compartment: tuple[str, str] | None = None,
    base_url: str | None = None,
) -> ir.Query:
    """The query of `pairs` on `types` (every type when empty); `base_url` is the server's
    base, under which absolute references are local ones too."""
    parser = SearchParser(registry, base_url)
    search_types = types or tuple(sorted(resource_types()))
    per_type: list[ir.Node] = []
    criteria = [(k, v) for k, v in pairs if _is_criterion(k)]
    reported: set[str] = set()
    for t in search_types:
        parsed = parser.parse(t, criteria)
        for item in parsed.unknown:
            if item.name not in reported:
                reported.add(item.name)
                unknown.add(item)
        where = list(parsed.where)
        if compartment is not None:
            where.append(_compartment(t, compartment))
        if len(search_types) > 1 and (where or types):
            where.insert(0, ir.TypeLeaf((t,)))
        if where:
            per_type.append(where[0] if len(where) == 1 else ir.And(tuple(where)))
    for name, _ in pairs:
        if not _is_criterion(name) and name not in _RESULT and name not in reported:
            reported.add(name)
            unknown.add(UnknownParameter(name, f"Unknown search parameter '{name}'"))
    where_all: ir.Node | None
    if not per_type:
        where_all = None
    elif len(per_type) == 1:
        where_all = per_type[0]
    else:
        where_all = ir.Or(tuple(per_type))
    sort = _sort(registry, search_types, pairs, unknown)
    return ir.Query(types, where_all, sort)


# Common parameters (https://hl7.org/fhir/R4/search.html#all) parsed as criteria.
_COMMON = frozenset(
    {"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_list", "_has"}
)
# Result parameters, with the modifiers _include and _revinclude take.
_RESULT = RESULT_PARAMS | {
    f"{name}:{modifier}"
    for name in ("_include", "_revinclude")
    for modifier in ("iterate", "recurse")
}


def _is_criterion(name: str) -> bool:
    return not name.startswith("_") or name.partition(":")[0].partition(".")[0] in _COMMON


def _compartment(res_type: str, compartment: tuple[str, str]) -> ir.Node:
    return _compartments(res_type, compartment[0], (compartment[1],))


def _compartments(res_type: str, kind: str, owners: tuple[str, ...]) -> ir.Node:
    """`res_type` resources in the compartment of any of `owners` (of type `kind`)."""
    params = compartments().get(kind, {}).get(res_type)
    if not params and res_type != kind:
        raise InvalidRequest(f"{res_type} is not in the {kind} compartment")
    options: list[ir.Node] = [
        ir.ReferenceLeaf(ir.Param(res_type, code, "reference"), kind, owner)
        for code in params or []
        if code != "{def}"
        for owner in owners
    ]
    if res_type == kind:
        options.append(ir.IdLeaf(res_type, owners))
    return options[0] if len(options) == 1 else ir.Or(tuple(options))


def multi_compartment_query(types: tuple[str, ...], kind: str, owners: tuple[str, ...]) -> ir.Query:
    """Resources of `types` in the compartments of several owners together (the Patients
    of one person: Patient/$everything)."""
    per_type: list[ir.Node] = [
        ir.And((ir.TypeLeaf((t,)), _compartments(t, kind, owners))) for t in types
    ]
    return ir.Query(types, per_type[0] if len(per_type) == 1 else ir.Or(tuple(per_type)))


def _sort(
    registry: SearchParamRegistry,
    types: tuple[str, ...],
    pairs: Sequence[tuple[str, str]],
    unknown: Unknown,
) -> tuple[ir.SortKey, ...]:
    keys: list[ir.SortKey] = []
    for name, value in pairs:
        if name != "_sort":
            continue
        for raw in value.split(","):
            code = raw.strip()
            descending = code.startswith("-")
            code = code.lstrip("-")
            if not code:
                raise InvalidRequest(f"Invalid _sort {value!r}", ("_sort",))
            if code in ("_lastUpdated", "_id"):
                column = "last_updated" if code == "_lastUpdated" else "res_id"
                keys.append(ir.SortKey(None, descending, column))
                continue
            found = [registry.get(t, code) for t in types]
            kinds = {p.type.value for p in found if p is not None}
            if not kinds or len(kinds) > 1 or kinds & {"composite", "special"}:
                unknown.add(UnknownParameter("_sort", f"Cannot sort by '{code}'"))
                continue
            keys.append(ir.SortKey(ir.Param(types[0], code, kinds.pop()), descending))
    return tuple(keys)


def strict_query(
    registry: SearchParamRegistry, res_type: str, pairs: Sequence[tuple[str, str]]
) -> ir.Query:
    """The query of `pairs` on `res_type`; an unknown parameter is an error."""
    return build_query(registry, (res_type,), pairs, Unknown(strict=True))
