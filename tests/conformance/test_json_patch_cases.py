"""The JSON Patch cases of FHIR/fhir-test-cases r4/patch (RFC 6902 appendix A), one item each."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from vnehr.errors import Unprocessable
from vnehr.fhir.patch import apply_json_patch

DATA = Path(__file__).parent / "data" / "fhir-patch" / "json-patch-tests.json"
CASES: list[dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))
# Cases we do not pass yet, by comment, with the reason.
XFAIL: dict[str, str] = {}


def _params() -> list[Any]:
    return [
        pytest.param(
            case,
            id=case["comment"],
            marks=[pytest.mark.xfail(reason=XFAIL[case["comment"]], strict=True)]
            if case["comment"] in XFAIL
            else [],
        )
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_json_patch_case(case: dict[str, Any]) -> None:
    before = copy.deepcopy(case["doc"])
    if "error" in case:
        with pytest.raises(Unprocessable):
            apply_json_patch(case["doc"], case["patch"])
    else:
        assert apply_json_patch(case["doc"], case["patch"]) == case["expected"]
    assert case["doc"] == before
