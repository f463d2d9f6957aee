"""The comparator of the terminology ecosystem tests (tx_compare.py): each control word of the
expected files, with an answer that matches and one that does not."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.tx_compare import (
    EXT_EXP_VS_CONT_PROP,
    EXT_VS_EXP_PROP,
    JsonNumber,
    compare,
    http_code_ok,
    lenient_base64,
    normalize_response,
    parse_json,
)

R4 = {"version": "4.0.1"}


def diff(expected: Any, actual: Any, **kwargs: Any) -> str | None:
    return compare(expected, actual, **kwargs)[0]


def same(expected: Any, actual: Any, **kwargs: Any) -> bool:
    return diff(expected, actual, **kwargs) is None


# -- plain values and objects ---------------------------------------------------------------


def test_equal_values_match_and_different_ones_do_not() -> None:
    assert same({"a": "x", "b": True, "c": None}, {"a": "x", "b": True, "c": None})
    assert not same({"b": True}, {"b": False})
    assert not same({"a": "x"}, {"a": "y"})
    assert not same({"a": "x"}, {"a": 1})
    assert not same({"a": None}, {"a": "x"})


def test_numbers_compare_by_their_json_text() -> None:
    assert same(parse_json('{"n": 1.50}'), parse_json('{"n": 1.50}'))
    assert not same(parse_json('{"n": 1.50}'), parse_json('{"n": 1.5}'))
    assert isinstance(parse_json('{"n": 3}')["n"], JsonNumber)
    assert same({"n": 3}, parse_json('{"n": 3}'))


def test_an_extra_property_in_the_answer_fails() -> None:
    assert same({"a": "x"}, {"a": "x", "fhir_comments": ["ignored"]})
    reason = diff({"a": "x"}, {"a": "x", "b": "y"})
    assert reason is not None and "unexpected property b" in reason


def test_a_missing_property_fails() -> None:
    reason = diff({"a": "x", "b": "y"}, {"a": "x"})
    assert reason is not None and "missing property b" in reason


def test_kinds_must_agree() -> None:
    assert not same({"a": {"b": "c"}}, {"a": ["c"]})
    assert not same({"a": "$$"}, {"a": {"b": "c"}})


def test_two_narratives_always_match() -> None:
    assert same({"div": "<div>one</div>"}, {"div": "<div>two</div>"})
    assert not same({"div": "<div>one</div>"}, {"div": "two"})


# -- $optional-properties$, $optional$, $count-arrays$ --------------------------------------


def test_optional_properties_may_be_missing_but_not_different() -> None:
    expected = {"$optional-properties$": ["date"], "url": "u", "date": "2020"}
    assert same(expected, {"url": "u"})
    assert same(expected, {"url": "u", "date": "2020"})
    assert not same(expected, {"url": "u", "date": "2021"})
    assert not same(expected, {})  # url is not optional


def test_a_star_makes_every_property_optional() -> None:
    assert same({"$optional-properties$": ["*"], "a": "x", "b": "y"}, {})
    assert not same({"$optional-properties$": ["*"], "a": "x"}, {"a": "z"})


def test_optional_properties_do_not_allow_extra_ones() -> None:
    """Only absence is allowed: a property the expected object does not have still fails."""
    expected = {"$optional-properties$": ["offset"], "total": 3}
    assert not same(expected, {"total": 3, "offset": 0})


def test_optional_true_items_may_be_missing() -> None:
    expected = {"p": [{"name": "a"}, {"$optional$": True, "name": "b"}]}
    assert same(expected, {"p": [{"name": "a"}]})
    assert same(expected, {"p": [{"name": "a"}, {"name": "b"}]})
    assert not same(expected, {"p": [{"name": "b"}]})
    assert not same(expected, {"p": [{"name": "a"}, {"name": "c"}]})


def test_an_array_of_optional_items_may_be_missing_entirely() -> None:
    assert same({"a": "x", "p": [{"$optional$": True, "name": "b"}]}, {"a": "x"})
    assert not same({"a": "x", "p": [{"name": "b"}]}, {"a": "x"})


def test_not_tx_fhir_org_is_optional_unless_in_that_mode() -> None:
    expected = {"p": [{"name": "a"}, {"$optional$": "!tx.fhir.org", "name": "ext"}]}
    assert same(expected, {"p": [{"name": "a"}]})
    assert not same(expected, {"p": [{"name": "a"}]}, modes={"tx.fhir.org"})


def test_a_mode_name_is_optional_only_in_that_mode() -> None:
    expected = {"p": [{"name": "a"}, {"$optional$": "flat", "name": "b"}]}
    assert same(expected, {"p": [{"name": "a"}]}, modes={"flat"})
    assert not same(expected, {"p": [{"name": "a"}]})


def test_warning_items_are_optional_and_warn_when_missing() -> None:
    expected = {"p": [{"name": "a"}, {"$optional$": "warning:version", "name": "version"}]}
    reason, warnings = compare(expected, {"p": [{"name": "a"}]})
    assert reason is None and warnings == ["version"]
    reason, warnings = compare(expected, {"p": [{"name": "a"}, {"name": "version"}]})
    assert reason is None and warnings == []
    assert not same(expected, {"p": [{"name": "a"}, {"name": "other"}]})


def test_version_filters_follow_the_server_fhir_version() -> None:
    """$translate: "relationship" is R5 (optional on R4), "equivalence" R4 (optional on R5)."""
    expected = {
        "part": [
            {"$optional$": "version:5", "name": "equivalence"},
            {"$optional$": "version:4", "name": "relationship"},
        ]
    }
    r4_answer = {"part": [{"name": "equivalence"}]}
    assert same(expected, r4_answer, variables=R4)
    assert not same(expected, r4_answer, variables={"version": "5.0.0"})


def test_count_arrays_compares_the_length_only() -> None:
    expected = {"$count-arrays$": ["contains"], "contains": [{"code": "a"}, {"code": "b"}]}
    assert same(expected, {"contains": [{"code": "x"}, {"code": "y"}]})
    assert not same(expected, {"contains": [{"code": "a"}]})


def test_a_misspelt_control_with_a_list_of_strings_is_harmless() -> None:
    """CompareUtilities.allOptional counts an array of primitives as all optional."""
    assert same({"$optional": ["location"], "code": "x"}, {"code": "x"})


# -- array order --------------------------------------------------------------------------


def test_array_order_does_not_matter() -> None:
    expected = {"p": [{"name": "a"}, {"name": "b"}, {"$optional$": True, "name": "c"}]}
    assert same(expected, {"p": [{"name": "b"}, {"name": "a"}]})
    assert same(expected, {"p": [{"name": "c"}, {"name": "b"}, {"name": "a"}]})
    assert not same(expected, {"p": [{"name": "b"}, {"name": "b"}]})


def test_strict_order_is_the_java_walk() -> None:
    expected = {"p": [{"name": "a"}, {"name": "b"}]}
    assert same(expected, {"p": [{"name": "a"}, {"name": "b"}]}, strict_order=True)
    assert not same(expected, {"p": [{"name": "b"}, {"name": "a"}]}, strict_order=True)


def test_a_differing_item_is_compared_with_its_counterpart() -> None:
    expected = {"p": [{"name": "a", "v": "1"}, {"name": "b", "v": "2"}]}
    reason = diff(expected, {"p": [{"name": "b", "v": "2"}, {"name": "a", "v": "9"}]})
    assert reason == 'p[1].v: expected "1", actual "9"'


def test_missing_and_unexpected_items_are_named() -> None:
    expected = {"parameter": [{"name": "result"}, {"name": "issues"}, {"name": "message"}]}
    reason = diff(expected, {"parameter": [{"name": "result"}]})
    assert reason is not None and "{name=issues}" in reason and "{name=message}" in reason


# -- string templates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "good", "bad"),
    [
        ("$$", "anything at all", None),
        ("$id$", "simple-all.1", "not an id!"),
        ("$semver$", "1.2.3-beta.1+build.5", "1.2"),
        ("$url$", "http://hl7.org/fhir/test/ValueSet/simple-all", "urn:oid:1.2.3"),
        ("$token$", "code_1.a-b", "-starts-with-dash"),
        ("$string$", "no padding", " padded "),
        ("$date$", "2024-02-29", "2024-13-01"),
        ("$date$", "2024-02-29T10:11:12Z", "2024-02-29T10:11"),
        ("$instant$", "2024-02-29T10:11:12.123+07:00", "2024-02-29"),
        ("$uuid$", "urn:uuid:8acdbfdc-e9d2-11ed-a05b-0242ac120003", "8acdbfdc-e9d2"),
        ("$version$", "4.0.1", "5.0.0"),
        ("$choice:en|de$", "de", "fr"),
        ("$choice:en|de$", "en", "en|de"),
        ("$fragments:Display|code1$", "Wrong DISPLAY for CODE1", "Wrong display for code2"),
        ("$external:3$", "any message at all", None),
        ("$external:2:Anzeige 1$", "Falsche Anzeige 1 hier", "Display 1"),
    ],
)
def test_templates(template: str, good: str, bad: str | None) -> None:
    assert same({"v": template}, {"v": good}, variables=R4, base64_quirk=False)
    if bad is not None:
        assert not same({"v": template}, {"v": bad}, variables=R4, base64_quirk=False)


def test_a_template_wants_a_string() -> None:
    assert not same({"v": "$$"}, {"v": 3})


def test_version_is_anything_when_the_server_version_is_unknown() -> None:
    assert same({"v": "$version$"}, {"v": "whatever"})


def test_an_external_url_is_cut_at_its_colon_as_in_java() -> None:
    """ "$external:1:http://x/y$" splits on ":" - only "http" is looked for."""
    template = {"v": "$external:1:http://hl7.org/fhir/test/ValueSet/simple-allX$"}
    assert same(template, {"v": "Unable to find value set http://example.org/other"})
    assert not same(template, {"v": "Unable to find value set simple-allX"}, base64_quirk=False)


def test_externals_file_strings_are_exact() -> None:
    template = {"v": "$external:1:anything$"}
    externals = {"1": "Exact message"}
    assert same(template, {"v": "Exact message"}, externals=externals)
    assert not same(template, {"v": "Exact message!"}, externals=externals)


def test_an_unknown_template_is_an_error() -> None:
    with pytest.raises(ValueError, match="unhandled template"):
        compare({"v": "$nonsense$"}, {"v": "x"})


def test_version_inside_a_string_is_the_fhir_version() -> None:
    expected = {"v": "http://hl7.org/fhir/administrative-gender|$version$"}
    assert same(expected, {"v": "http://hl7.org/fhir/administrative-gender|4.0.1"}, variables=R4)
    assert not same(
        expected, {"v": "http://hl7.org/fhir/administrative-gender|5.0.0"}, variables=R4
    )
    assert same(expected, {"v": "http://hl7.org/fhir/administrative-gender|1.2"})


# -- the base64 leniency of CompareUtilities ----------------------------------------------


def test_strings_that_decode_to_the_same_base64_bytes_match() -> None:
    assert same({"v": "Display 1"}, {"v": "Display1"})
    assert same({"v": "code1"}, {"v": "code3"})  # the bits of a lone fifth character drop
    assert not same({"v": "Display 1"}, {"v": "Display1"}, base64_quirk=False)
    assert not same({"v": "Display 1"}, {"v": "Display 3"})
    assert not same({"v": "abc"}, {"v": "!!!"})  # nothing decodes: no match


def test_lenient_base64_is_commons_codec() -> None:
    assert lenient_base64("aGVsbG8=") == b"hello"
    assert lenient_base64("aGVs bG8") == b"hello"
    assert lenient_base64("aGVsbG8=garbage") == b"hello"
    assert lenient_base64("a") == b""


# -- what the runner does to the answer first ---------------------------------------------


def test_r4_expansion_properties_become_r5_elements() -> None:
    r4 = {
        "resourceType": "ValueSet",
        "text": {"status": "generated", "div": "<div>x</div>"},
        "meta": {"versionId": "1"},
        "expansion": {
            "extension": [
                {
                    "url": EXT_VS_EXP_PROP,
                    "extension": [
                        {"url": "code", "valueCode": "definition"},
                        {"url": "uri", "valueUri": "http://hl7.org/fhir/concept-properties#d"},
                    ],
                }
            ],
            "contains": [
                {
                    "code": "b",
                    "extension": [
                        {
                            "url": EXT_EXP_VS_CONT_PROP,
                            "extension": [
                                {"url": "code", "valueCode": "definition"},
                                {"url": "value", "valueString": "My code"},
                            ],
                        },
                        {"url": "http://example.org/unmanaged", "valueString": "x"},
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/itemWeight",
                            "valueDecimal": 1,
                        },
                    ],
                },
                {"code": "a"},
            ],
        },
    }
    r5 = normalize_response("expand", r4, ok=True)
    assert r5 == {
        "resourceType": "ValueSet",
        "expansion": {
            "property": [{"code": "definition", "uri": "http://hl7.org/fhir/concept-properties#d"}],
            "contains": [
                {"code": "a"},
                {
                    "code": "b",
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/itemWeight",
                            "valueDecimal": 1,
                        }
                    ],
                    "property": [{"code": "definition", "valueString": "My code"}],
                },
            ],
        },
    }


def test_messages_of_a_parameters_answer_are_sorted() -> None:
    answer = {
        "resourceType": "Parameters",
        "meta": {"lastUpdated": "2024-01-01T00:00:00Z"},
        "parameter": [
            {"name": "result", "valueBoolean": False},
            {"name": "message", "valueString": "Zeta problem; Alpha problem"},
        ],
    }
    assert normalize_response("validate-code", answer, ok=True) == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "message", "valueString": "Alpha problem; Zeta problem"},
            {"name": "result", "valueBoolean": False},
        ],
    }


def test_an_error_outcome_loses_diagnostics_only_issues() -> None:
    oo = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "stack trace"},
            {
                "severity": "error",
                "code": "not-found",
                "details": {"text": "Unknown value set"},
                "diagnostics": "more detail",
            },
        ],
    }
    assert normalize_response("validate-code", oo, ok=False) == {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "not-found", "details": {"text": "Unknown value set"}}
        ],
    }


def test_http_code_classes() -> None:
    assert http_code_ok("2xx", 200) and not http_code_ok("2xx", 404)
    assert http_code_ok("4xx", 422) and not http_code_ok("4xx", 500)
    with pytest.raises(ValueError):
        http_code_ok("6xx", 600)
