"""Agreement with the HL7 Java validator on the R4 cases of FHIR/fhir-test-cases.

Data: data/validator-cases (see its SOURCE.txt): each case's input and whether the Java
validator found an error (severity error or fatal). A case is compared unless its manifest
entry says why not (a validator option, or knowledge from outside the R4 package). The input
goes through the server's JSON parser first: a body that is not JSON is an error too.
docs/validation.md lists the disagreements with their reasons.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from vnehr.errors import InvalidRequest
from vnehr.fhir.json import loads
from vnehr.fhir.validation import has_errors, validate

DATA = Path(__file__).parent / "data" / "validator-cases"

# Cases where vnehr and the Java validator disagree, and why (all are Java errors vnehr does
# not look for). A case that starts agreeing fails below, so that this list stays true.
KNOWN_DISAGREEMENTS = {
    "allergy": "a required code given only as a data-absent-reason extension",
    "bundle-document-versioned-references-bad": "resolution of references inside a Bundle",
    "capstmt": "search parameter types against the core SearchParameter definitions",
    "sp-diff-type": "SearchParameter.derivedFrom consistency",
    "sp-diff-base": "SearchParameter.derivedFrom consistency and expression checking",
    "supplement-2": "CodeSystem supplement rules",
    "obs-mz": "StructureDefinition snapshot generation",
    "sp-composite": "composite SearchParameter components",
    "signatures-example-2": "digital signature verification",
}
MEASURED_AGREEMENT = 92 / 101


@cache
def manifest() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((DATA / "manifest.json").read_text("utf-8"))
    return rows


@cache
def inputs() -> dict[str, str]:
    with gzip.open(DATA / "inputs.json.gz", "rt", encoding="utf-8") as f:
        data: dict[str, str] = json.load(f)
    return data


def compared() -> list[dict[str, Any]]:
    return [case for case in manifest() if not case["excluded"]]


def finds_errors(case: dict[str, Any]) -> bool:
    try:
        resource = loads(inputs()[case["file"]].encode("utf-8"))
    except InvalidRequest:
        return True
    return has_errors(validate(resource))


@pytest.mark.parametrize("case", compared(), ids=lambda case: case["name"])
def test_case(case: dict[str, Any]) -> None:
    agrees = finds_errors(case) == case["javaHasErrors"]
    if case["name"] in KNOWN_DISAGREEMENTS:
        assert not agrees, "now agrees: remove it from KNOWN_DISAGREEMENTS and the docs"
    else:
        assert agrees, case["javaErrors"] or "the Java validator finds no error"


def test_agreement_stays_at_the_measured_level() -> None:
    cases = compared()
    agreeing = sum(finds_errors(case) == case["javaHasErrors"] for case in cases)
    assert len(cases) == 101
    assert agreeing / len(cases) >= MEASURED_AGREEMENT


def test_every_known_disagreement_is_a_compared_case() -> None:
    assert set(KNOWN_DISAGREEMENTS) <= {case["name"] for case in compared()}
