"""The official FHIRPath Patch cases (FHIR/fhir-test-cases r4/patch), one pytest item each.

The data is derived from fhir-patch-tests.xml by tools/derive_patch_cases.py; see SOURCE.txt.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from vnehr.errors import Unprocessable
from vnehr.fhir.patch import apply_fhirpath_patch

DATA = Path(__file__).parent / "data" / "fhir-patch" / "fhir-patch-tests.json"
CASES: list[dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))
# Cases we do not pass yet, by name, with the reason.
XFAIL: dict[str, str] = {}


def _params() -> list[Any]:
    return [
        pytest.param(
            case,
            id=case["name"],
            marks=[pytest.mark.xfail(reason=XFAIL[case["name"]], strict=True)]
            if case["name"] in XFAIL
            else [],
        )
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_fhirpath_patch_case(case: dict[str, Any]) -> None:
    before = copy.deepcopy(case["input"])
    if "error" in case:
        with pytest.raises(Unprocessable):
            apply_fhirpath_patch(case["input"], case["patch"])
    else:
        assert apply_fhirpath_patch(case["input"], case["patch"]) == case["output"]
    assert case["input"] == before


def test_every_case_is_collected() -> None:
    assert len(CASES) == 33
