"""Province codes: the 63 former provinces (the codes CCCD and BHYT numbers carry) and the 34
provincial units of 1 July 2025 they were merged into (Resolution 202/2025/QH15; codes of
Decision 19/2025/QĐ-TTg). The list is the one the demo generator uses
(vnehr/demo/data/provinces.json, which names its sources)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Province:
    code: str  # two digits
    name: str
    current: str  # the code of the 2025 unit it is part of (itself for a current unit)


@cache
def _provinces() -> tuple[dict[str, Province], dict[str, Province]]:
    text = resources.files("vnehr.demo").joinpath("data/provinces.json").read_text("utf-8")
    data = json.loads(text)
    current = {p["code"]: Province(p["code"], p["name"], p["code"]) for p in data["provinces"]}
    former = {p["code"]: Province(p["code"], p["name"], p["into"]) for p in data["former"]}
    return former, current


def former_provinces() -> dict[str, Province]:
    """The 63 provinces before 1 July 2025 by code."""
    return _provinces()[0]


def current_provinces() -> dict[str, Province]:
    """The 34 provincial units from 1 July 2025 by code."""
    return _provinces()[1]


def current_code(code: str) -> str | None:
    """The 2025 unit of a province code, former or current ("02" Hà Giang -> "08"); None
    for a code that is neither."""
    found = former_provinces().get(code) or current_provinces().get(code)
    return found.current if found else None
