"""Rules of the terminology operations that the HL7 terminology ecosystem tests pin down:
safe regex filters, status warnings, notSelectable by URI, issue locations, designations."""

from __future__ import annotations

import time

import pytest

from vnehr.operations.terminology import _designation_wanted
from vnehr.terminology.expansion import (
    TerminologyError,
    _regex,
    listed_status,
    status_extensions,
    status_warnings,
)
from vnehr.terminology.issues import tx_issue
from vnehr.terminology.tables import NOT_SELECTABLE_URI, concepts_of


def test_catastrophic_regex_matches_in_linear_time() -> None:
    pattern = _regex("((a+)+)+", "ValueSet.compose.include[0].filter[0]")
    start = time.monotonic()
    assert pattern.fullmatch("a" * 5000 + "!") is None
    assert pattern.fullmatch("a" * 5000) is not None
    assert time.monotonic() - start < 1.0


def test_unsupported_regex_is_a_located_error() -> None:
    with pytest.raises(TerminologyError) as caught:
        _regex("(a)\\1", "ValueSet.compose.include[0].filter[0]")
    assert caught.value.expression == ("ValueSet.compose.include[0].filter[0].value",)
    assert "not a valid regex" in caught.value.diagnostics


def test_status_warnings_of_code_systems_and_value_sets() -> None:
    withdrawn = {
        "status": "active",
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status",
                "valueCode": "withdrawn",
            }
        ],
    }
    assert status_warnings(withdrawn) == ["withdrawn"]
    assert status_warnings({"status": "draft", "experimental": True}) == ["draft", "experimental"]
    # a draft or experimental value set is not warned of
    assert status_warnings({"status": "draft", "experimental": True}, standards_only=True) == []


def test_codes_a_value_set_marks_deprecated() -> None:
    marked = {
        "code": "a",
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/valueset-deprecated",
                "valueCode": "true",
            },
            {"url": "http://example.org/other", "valueString": "x"},
        ],
    }
    assert listed_status(marked) == "deprecated"
    assert [e["url"] for e in status_extensions(marked)] == [
        "http://hl7.org/fhir/StructureDefinition/valueset-deprecated"
    ]
    assert listed_status({"code": "b"}) is None


def test_not_selectable_property_recognised_by_its_uri() -> None:
    resource = {
        "property": [{"code": "not-selectable", "uri": NOT_SELECTABLE_URI, "type": "boolean"}],
        "concept": [
            {"code": "u"},
            {"code": "s", "property": [{"code": "not-selectable", "valueBoolean": False}]},
            {"code": "ns", "property": [{"code": "not-selectable", "valueBoolean": True}]},
        ],
    }
    assert {c.code: c.abstract for c in concepts_of(resource)} == {
        "u": False,
        "s": False,
        "ns": True,
    }


def test_issues_about_the_given_code_have_an_expression_only() -> None:
    about_code = tx_issue("error", "code-invalid", "not-in-vs", "text", "Coding.code")
    assert about_code["expression"] == ["Coding.code"] and "location" not in about_code
    about_system = tx_issue("error", "not-found", "not-found", "text", "Coding.system")
    assert about_system["location"] == about_system["expression"] == ["Coding.system"]
    unlocated = tx_issue("error", "business-rule", "code-rule", "text", "code", located=False)
    assert unlocated["expression"] == ["code"] and "location" not in unlocated


def test_designation_parameter_chooses_by_language_or_use() -> None:
    german = {"language": "de-CH", "value": "Anzeige"}
    spanish = {"language": "es", "value": "Mostrar"}
    used = {"use": {"system": "http://s", "code": "synonym"}, "value": "Other"}
    assert _designation_wanted(german, [])
    assert _designation_wanted(spanish, ["urn:ietf:bcp:47|es"])
    assert not _designation_wanted(german, ["urn:ietf:bcp:47|de"])  # exact languages only
    assert _designation_wanted(used, ["http://s|synonym"])
    assert not _designation_wanted(used, ["http://other|synonym"])
