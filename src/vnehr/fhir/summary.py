"""Which top-level elements a `_summary` keeps: isSummary and mandatory elements per type."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def _table() -> dict[str, dict[str, list[str]]]:
    text = resources.files("vnehr.fhir.definitions").joinpath("r4/summary_elements.json")
    table: dict[str, dict[str, list[str]]] = json.loads(text.read_text())
    return table


@cache
def summary_elements(res_type: str, *, mandatory_only: bool = False) -> frozenset[str]:
    entry = _table().get(res_type, {})
    return frozenset(entry.get("mandatory" if mandatory_only else "summary", []))
