"""The search parameter registry: R4 parameters per type, and SearchParameter resources added."""

from __future__ import annotations

from typing import Any

import pytest

from vnehr.errors import InvalidResource
from vnehr.search.registry import (
    ParamType,
    SearchParamRegistry,
    default_registry,
    r4_registry,
    split_union,
)


@pytest.fixture(scope="module")
def r4() -> SearchParamRegistry:
    return r4_registry()


def birth_place() -> dict[str, Any]:
    return {
        "resourceType": "SearchParameter",
        "url": "http://fhir.ehealth.gov.vn/core/SearchParameter/patient-birthplace",
        "name": "birthplace",
        "status": "active",
        "code": "birthplace",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value",
    }


def test_it_lists_a_types_own_parameters_with_those_of_resource_and_domain_resource(r4):
    params = r4.for_type("Patient")
    for code in ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_text"):
        assert code in params
    for code in ("name", "family", "given", "birthdate", "identifier", "gender", "address-city"):
        assert code in params
    assert params["birthdate"].type is ParamType.DATE
    assert "code" not in params


def test_bundle_is_not_a_domain_resource_so_it_has_no_text_parameter(r4):
    assert "_id" in r4.for_type("Bundle")
    assert "_text" not in r4.for_type("Bundle")


def test_a_shared_parameter_keeps_only_the_expression_for_the_type(r4):
    patient = r4.get("Observation", "patient")
    assert patient is not None
    assert patient.type == "reference"
    assert patient.expression == "Observation.subject.where(resolve() is Patient)"
    assert patient.url == "http://hl7.org/fhir/SearchParameter/clinical-patient"
    assert "Observation" in patient.base and "Condition" in patient.base
    assert patient.targets == ("Group", "Patient")


def test_reference_any_targets_are_every_type_but_parameters(r4):
    subject = r4.get("DocumentReference", "related")
    assert subject is not None
    assert "Patient" in subject.targets and "Parameters" not in subject.targets
    assert len(subject.targets) == 145


def test_composite_parameters_keep_their_components(r4):
    param = r4.get("Observation", "code-value-quantity")
    assert param is not None and param.type is ParamType.COMPOSITE
    assert [c.expression for c in param.components] == ["code", "value.as(Quantity)"]
    first = r4.by_url(param.components[0].definition)
    assert first is not None and first.code == "code"


def test_unknown_parameters_are_none(r4):
    assert r4.get("Patient", "no-such-thing") is None
    assert r4.get("NoSuchType", "_id") is not None  # only the Resource parameters apply


def test_an_added_search_parameter_is_found_by_type_and_code():
    registry = r4_registry()
    version = registry.version
    param = registry.add(birth_place())
    assert registry.get("Patient", "birthplace") == param
    assert param.type is ParamType.STRING
    assert registry.version > version
    assert registry.get("Practitioner", "birthplace") is None


def test_an_added_search_parameter_replaces_one_of_the_same_code():
    registry = r4_registry()
    registry.add({**birth_place(), "code": "family", "expression": "Patient.name.text"})
    family = registry.get("Patient", "family")
    assert family is not None and family.expression == "Patient.name.text"
    assert registry.get("Practitioner", "family") is not None  # its base list did not change


def test_updating_a_search_parameter_moves_it_to_its_new_bases():
    registry = r4_registry()
    registry.add(birth_place())
    registry.add({**birth_place(), "base": ["Practitioner"], "expression": "Practitioner.name"})
    assert registry.get("Patient", "birthplace") is None
    assert registry.get("Practitioner", "birthplace") is not None
    assert registry.remove(birth_place()["url"])
    assert registry.get("Practitioner", "birthplace") is None
    assert not registry.remove(birth_place()["url"])


@pytest.mark.parametrize(
    "change",
    [
        {"resourceType": "Patient"},
        {"code": ""},
        {"type": "fuzzy"},
        {"base": []},
        {"expression": None},
        {"expression": "Patient.name.where("},
        {"url": None},
        {"component": [{"definition": "http://x"}]},
    ],
)
def test_it_rejects_a_search_parameter_it_cannot_use(change):
    registry = r4_registry()
    with pytest.raises(InvalidResource):
        registry.add({**birth_place(), **change})


def test_the_default_registry_is_one_per_process():
    assert default_registry() is default_registry()


def test_union_members_are_split_outside_brackets_and_strings():
    expression = "A.b | (C.d as Quantity) | E.f.where(g = 'x|y') | H.i[0]"
    assert split_union(expression) == [
        "A.b",
        "(C.d as Quantity)",
        "E.f.where(g = 'x|y')",
        "H.i[0]",
    ]
