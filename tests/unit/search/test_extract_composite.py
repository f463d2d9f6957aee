"""Composite parameters at write time: one idx_composite row per element and combination of
its components' rows, with the plain index's values (extract/composite.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.people import LOINC, hba1c
from vnehr.fhir.json import loads
from vnehr.search.extract import Extractor
from vnehr.search.extract.composite import centred, element_type
from vnehr.search.extract.number import bounds
from vnehr.search.registry import r4_registry

UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
USAGE = "http://terminology.hl7.org/CodeSystem/usage-context-type"
SP = "http://hl7.org/fhir/SearchParameter"


@pytest.fixture
def extractor() -> Extractor:
    return Extractor(r4_registry())


def of(rows: list[Any], code: str) -> list[tuple[Any, ...]]:
    return [row[1:] for row in rows if row[0] == code]


def mmhg(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}


def test_an_observation_pairs_its_code_and_its_value(extractor):
    observation = loads(
        b'{"resourceType": "Observation", "status": "final", "code": {"coding": ['
        b'{"system": "http://loinc.org", "code": "4548-4", "display": "HbA1c"},'
        b'{"system": "http://other.org", "code": "A1C"}], "text": "HbA1c"},'
        b'"valueQuantity": {"value": 7.20, "unit": "%", "system": "http://unitsofmeasure.org",'
        b'"code": "%"}}'
    )
    rows = extractor.extract(observation).composites
    # Each coding (not the text) with the value: its precision range, its unit.
    expected = [
        ("4548-4", LOINC, "4548-4", 7.195, 7.205, UCUM, "%", "%", None, None),
        ("A1C", "http://other.org", "A1C", 7.195, 7.205, UCUM, "%", "%", None, None),
    ]
    assert of(rows, "code-value-quantity") == expected
    assert of(rows, "combo-code-value-quantity") == expected
    assert not of(rows, "code-value-concept")
    assert not of(rows, "component-code-value-quantity")


def test_a_component_code_is_paired_with_its_own_value_only(extractor):
    panel = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": mmhg(120)},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": mmhg(80)},
            {"code": {"text": "no code"}, "valueQuantity": mmhg(1)},
        ],
    }
    rows = extractor.extract(panel).composites
    expected = [
        ("8480-6", LOINC, "8480-6", 119.5, 120.5, UCUM, "mm[Hg]", "mmHg", None, None),
        ("8462-4", LOINC, "8462-4", 79.5, 80.5, UCUM, "mm[Hg]", "mmHg", None, None),
    ]
    assert of(rows, "component-code-value-quantity") == expected
    assert of(rows, "combo-code-value-quantity") == expected
    assert not of(rows, "code-value-quantity")  # the panel has no value of its own


def test_values_of_other_types(extractor):
    def observation(**value: Any) -> dict[str, Any]:
        return {**hba1c("Patient/x"), "valueQuantity": None, **value}

    group_a = {"coding": [{"system": SNOMED, "code": "112144000", "display": "A"}], "text": "A"}
    rows = extractor.extract(observation(valueCodeableConcept=group_a)).composites
    assert of(rows, "code-value-concept") == [
        ("4548-4", LOINC, "4548-4", None, None, SNOMED, "112144000", None, None, None)
    ]
    rows = extractor.extract(observation(valueString="Dương tính")).composites
    assert of(rows, "code-value-string") == [
        ("4548-4", LOINC, "4548-4", None, None, None, None, "duong tinh", None, None)
    ]
    rows = extractor.extract(observation(valueDateTime="2024")).composites
    [(_, _, _, low, high, *rest)] = of(rows, "code-value-date")
    assert (low, high, rest) == (1704067200000000, 1735689599999999, [None] * 5)


def test_a_use_context_pairs_its_code_and_its_value(extractor):
    value_set = {
        "resourceType": "ValueSet",
        "status": "active",
        "useContext": [
            {
                "code": {"system": USAGE, "code": "focus"},
                "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "1"}]},
            },
            {"code": {"system": USAGE, "code": "age"}, "valueRange": {"low": {"value": 18}}},
        ],
    }
    rows = extractor.extract(value_set).composites
    assert of(rows, "context-type-value") == [
        ("focus", USAGE, "focus", None, None, SNOMED, "1", None, None, None)
    ]
    # A Range's value is its low, as idx_quantity's: its precision range, centred.
    assert of(rows, "context-type-quantity") == [
        ("age", USAGE, "age", 17.5, 18.5, None, None, None, None, None)
    ]


def test_a_reference_comes_first_in_relationship(extractor):
    # R4 swaps the components' expressions: the reference is read from `target` anyway.
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{"attachment": {"url": "http://example.org/d"}}],
        "relatesTo": [
            {"code": "replaces", "target": {"reference": "DocumentReference/old"}},
            {"code": "appends", "target": {"reference": "http://example.org/fhir/Doc/1"}},
        ],
    }
    assert of(extractor.extract(document).composites, "relationship") == [
        ("old", "DocumentReference", "old", None, None, None, "replaces", None, None, None),
        (
            "http://example.org/fhir/Doc/1",
            None,
            "http://example.org/fhir/Doc/1",
            *(None, None, None, "appends", None, None, None),
        ),
    ]


def test_three_components_and_a_component_read_from_the_resource(extractor):
    sequence = {
        "resourceType": "MolecularSequence",
        "coordinateSystem": 0,
        "referenceSeq": {"referenceSeqId": {"coding": [{"code": "NC_1"}]}, "windowStart": 1},
        "variant": [{"start": 10, "end": 11}, {"start": 20}],
    }
    rows = extractor.extract(sequence).composites
    # Each variant with the resource's sequence id; the one without an end has no row.
    assert of(rows, "referenceseqid-variant-coordinate") == [
        ("NC_1", None, "NC_1", 9.5, 10.5, None, None, None, 10.5, 11.5)
    ]
    assert not of(rows, "referenceseqid-window-coordinate")  # no windowEnd


def test_resources_without_the_elements_have_no_rows(extractor):
    assert extractor.extract({"resourceType": "Observation", "status": "final"}).composites == []
    patient = {"resourceType": "Patient", "name": [{"family": "Nguyễn"}]}
    assert extractor.extract(patient).composites == []


def test_every_r4_composite_is_indexed():
    registry = r4_registry()
    stats = Extractor(registry).compile_all()
    assert (stats.failed, stats.fallback) == (0, 0)
    unindexed = [
        code
        for t in registry.resource_types
        for code, p in registry.for_type(t).items()
        if p.type == "special" or p.expression is None or code in ("_id", "_lastUpdated")
    ]
    assert stats.skipped == len(unindexed)


def test_a_custom_composite_over_filtered_elements(extractor):
    extractor.registry.add(
        {
            "resourceType": "SearchParameter",
            "url": "http://example.org/SearchParameter/coded-component-value",
            "status": "active",
            "code": "coded-component-value",
            "base": ["Observation"],
            "type": "composite",
            "expression": "Observation.component.where(code.coding.exists())",
            "component": [
                {"definition": f"{SP}/Observation-component-code", "expression": "code"},
                {
                    "definition": f"{SP}/Observation-component-value-quantity",
                    "expression": "value.as(Quantity)",
                },
            ],
        }
    )
    panel = {
        **hba1c("Patient/x"),
        "component": [
            {"code": {"coding": [{"code": "x"}]}, "valueQuantity": {"value": 1}},
            {"code": {"text": "y"}, "valueQuantity": {"value": 2}},
        ],
    }
    rows = extractor.extract(panel).composites
    assert of(rows, "coded-component-value") == [
        ("x", None, "x", 0.5, 1.5, None, None, None, None, None)
    ]
    assert extractor.stats("Observation").failed == 0


def test_a_composite_that_cannot_be_indexed_is_counted_as_failed(extractor):
    extractor.registry.add(
        {
            "resourceType": "SearchParameter",
            "url": "http://example.org/SearchParameter/odd",
            "status": "active",
            "code": "odd",
            "base": ["Observation"],
            "type": "composite",
            "expression": "Observation",
            "component": [
                {"definition": f"{SP}/Observation-value-quantity", "expression": "value"},
                {"definition": f"{SP}/clinical-code", "expression": "code"},
            ],
        }
    )
    assert extractor.stats("Observation").failed == 1  # a quantity cannot come first
    assert not of(extractor.extract(hba1c("Patient/x")).composites, "odd")


@pytest.mark.parametrize(
    "text", ["8.1", "0.6", "7.20", "130", "9999.9", "0.000123", "-2.4", "1e20", "12345.6789"]
)
def test_a_centred_range_has_the_value_as_its_midpoint(text):
    found = bounds(text)
    assert found is not None
    value, low, high = found
    lo, hi = centred(value, low, high)
    assert (lo + hi) / 2 == value
    assert abs(lo - low) <= abs(value) * 1e-15 and abs(hi - high) <= abs(value) * 1e-15
    # An end opened by a comparator, or widened by a Range, mirrors the other.
    for opened in ((float("-inf"), high), (low, float("inf")), (low, high + 100)):
        lo, hi = centred(value, *opened)
        assert (lo + hi) / 2 == value
        assert abs((hi - lo) - (high - low)) <= abs(value) * 1e-15


def test_element_types():
    assert element_type("Observation", "Observation") == "Observation"
    assert element_type("Observation.component", "Observation") == "Observation.component"
    assert element_type("useContext", "ValueSet") == "ValueSet.useContext"
    assert element_type("Observation.component.where(x)", "Observation") == (
        "Observation.component"
    )
    assert element_type("(Resource.meta)", "Patient") == "Patient.meta"
