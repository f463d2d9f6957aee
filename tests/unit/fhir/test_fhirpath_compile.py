"""The FHIRPath subset compiled for invariants: parsing, semantics, and coverage of R4."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from vnehr.fhir import definitions
from vnehr.fhir.validation.fhirpath_compile import Env, Unsupported, compare, compile_expression
from vnehr.fhir.validation.fhirpath_parse import Binary, FhirPathSyntaxError, parse
from vnehr.fhir.validation.invariants import SKIPPED, checkable_keys

LAN: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "nguyen-thi-lan",
    "name": [{"family": "Nguyễn", "given": ["Thị", "Lan"]}, {"text": "Nguyen Thi Lan"}],
    "gender": "female",
    "birthDate": "1985-04-12",
    "deceasedBoolean": False,
}


def run(expression: str, focus: Any = None, type_name: str | None = "Patient") -> list[Any]:
    focus = LAN if focus is None else focus
    fn = compile_expression(expression, type_name, "Patient")
    return fn([focus], Env(focus, focus, [focus]))


def test_implies_is_right_associative_and_binds_loosest() -> None:
    node = parse("a implies b implies c or d")
    assert isinstance(node, Binary) and node.op == "implies"
    assert isinstance(node.right, Binary) and node.right.op == "implies"


def test_it_rejects_syntax_it_does_not_know() -> None:
    with pytest.raises(FhirPathSyntaxError):
        parse("name.where(")
    with pytest.raises(FhirPathSyntaxError):
        parse("name ## given")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("name.given", ["Thị", "Lan"]),
        ("name.given.count()", [2]),
        ("name.where(text.exists()).text", ["Nguyen Thi Lan"]),
        ("name.select(given.first())", ["Thị"]),
        ("name.all(family.exists() or text.exists())", [True]),
        ("name.exists(family = 'Nguyễn')", [True]),
        ("Patient.gender = 'female'", [True]),
        ("gender != 'female'", [False]),
        ("gender in ('male' | 'female')", [True]),
        ("('a' | 'b' | 'a').count()", [2]),
        ("name.given.isDistinct()", [True]),
        ("deceased = false", [True]),
        ("deceased is boolean", [True]),
        ("(deceased as boolean).not()", [True]),
        ("multipleBirth.exists()", [False]),
        ("birthDate < @2000-01-01", [True]),
        ("iif(gender = 'female', 'F', 'M')", ["F"]),
        ("name.given.first() + ' ' + name.given.last()", ["Thị Lan"]),
        ("1 + 2 * 3", [7]),
        ("name.given[1]", ["Lan"]),
        ("%resource.id", ["nguyen-thi-lan"]),
        ("id.startsWith('nguyen')", [True]),
        ("id.substring(7)", ["thi-lan"]),
        ("id.matches('^[a-z-]+$')", [True]),
        ("descendants().given.count()", [2]),
        ("name.family.combine(name.text).count()", [2]),
        ("{}.exists()", [False]),
    ],
)
def test_it_evaluates(expression: str, expected: list[Any]) -> None:
    assert run(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("true and {}", []),
        ("false and {}", [False]),
        ("true or {}", [True]),
        ("false or {}", []),
        ("{} implies false", []),
        ("false implies {}", [True]),
        ("true implies {}", []),
        ("true xor false", [True]),
        ("{}.not()", []),
        ("multipleBirth = 2", []),
    ],
)
def test_logic_is_three_valued(expression: str, expected: list[Any]) -> None:
    assert run(expression) == expected


def test_string_functions_on_nothing_are_false_as_in_the_hl7_validator() -> None:
    # N1 says empty; bdl-8 `fullUrl.contains('/_history/').not()` needs false.
    assert run("telecom.value.contains('@')") == [False]
    assert run("telecom.value.startsWith('+84')") == [False]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("2024-03-01", "2024-03-02", -1),
        ("2024-03", "2024-03-02", None),
        ("2024-03-02", "2024-03-01T23:00:00Z", 1),
        ("2024-03-01", "2024-03-01T06:20:00Z", None),
        ("2024-03-01T08:00:00+07:00", "2024-03-01T02:00:00Z", -1),
        ("2024-03-01T07:00:00+07:00", "2024-03-01T00:00:00Z", 0),
        ("10:00", "10:00:01", None),
        (1, 2.5, -1),
        ({"value": 1, "code": "mg"}, {"value": 2, "code": "mg"}, -1),
        ({"value": 1, "code": "mg"}, {"value": 2, "code": "g"}, None),
    ],
)
def test_comparison_respects_precision_and_timezones(a: Any, b: Any, expected: int | None) -> None:
    assert compare(a, b) == expected


def test_choice_elements_are_resolved_from_the_element_tables() -> None:
    obs = {"resourceType": "Observation", "valueQuantity": {"value": 7.8}}
    assert compile_expression("value.exists()", "Observation")([obs], Env(obs, obs)) == [True]
    assert compile_expression("value is Quantity", "Observation")([obs], Env(obs, obs)) == [True]
    assert compile_expression("value.value", "Observation")([obs], Env(obs, obs)) == [7.8]


def test_a_choice_name_is_not_mistaken_for_another_element() -> None:
    # `value` of an unknown type must not pick up `valueSet`.
    binding = {"strength": "required", "valueSet": "http://hl7.org/fhir/ValueSet/x"}
    fn = compile_expression("value.exists()", None)
    assert fn([binding], Env(binding, binding)) == [False]


def test_it_refuses_functions_it_does_not_have() -> None:
    with pytest.raises(Unsupported):
        compile_expression("member.resolve().exists()", "CareTeam.participant")


def test_every_r4_invariant_compiles_except_the_documented_ones() -> None:
    keys = {
        inv["key"]
        for t in definitions.type_definitions().values()
        for inv in t.get("invariants", [])
    }
    assert keys - checkable_keys() == set(SKIPPED)


def test_every_checked_and_skipped_invariant_is_listed_in_the_docs() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "validation.md").read_text()
    listed = set(re.findall(r"\b[a-z]{2,4}-\d+[a-z]?\b", docs))
    assert (checkable_keys() | set(SKIPPED)) - listed == set()
