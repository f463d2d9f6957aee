"""Index extraction at write time: resources in, the rows of each search parameter type out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.people import BHYT, CCCD, LOINC, duc, hba1c, lan
from vnehr.errors import InvalidResource
from vnehr.fhir.instant import parse_range
from vnehr.fhir.json import loads
from vnehr.search.extract import Extractor
from vnehr.search.extract.date import HIGHEST, LOWEST
from vnehr.search.index_rows import IndexRows
from vnehr.search.registry import r4_registry

DATA = Path(__file__).parent / "data"
UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(r4_registry())


def micros(
    y: int, m: int = 1, d: int = 1, hh: int = 0, mm: int = 0, ss: int = 0, us: int = 0
) -> int:
    """Epoch microseconds of a UTC moment."""
    moment = datetime(y, m, d, hh, mm, ss, us, tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def of(rows: list[Any], code: str) -> list[tuple[Any, ...]]:
    """The rows of one parameter, without the code."""
    return [row[1:] for row in rows if row[0] == code]


# -- strings ----------


def test_a_vietnamese_name_is_indexed_folded_part_by_part(extractor):
    rows = extractor.extract(duc())
    assert of(rows.strings, "family") == [("tran", "Trần")]
    assert of(rows.strings, "given") == [("van", "Văn"), ("duc", "Đức")]
    assert set(of(rows.strings, "name")) == {
        ("tran", "Trần"),
        ("van", "Văn"),
        ("duc", "Đức"),
        ("van duc", "Văn Đức"),  # the given names together
        ("tran van duc", "Trần Văn Đức"),  # the whole name, family first
    }


def test_name_text_and_address_parts_are_rows_of_their_own(extractor):
    rows = extractor.extract(lan())
    assert ("nguyen thi lan", "Nguyễn Thị Lan") in of(rows.strings, "name")
    assert ("nguyen", "Nguyễn") in of(rows.strings, "name")
    assert of(rows.strings, "address-city") == [("ha noi", "Hà Nội")]
    assert set(of(rows.strings, "address")) == {("ha noi", "Hà Nội"), ("vn", "VN")}


def test_the_same_value_reached_twice_gives_one_row(extractor):
    patient = {"resourceType": "Patient", "name": [{"given": ["Lan"]}, {"given": ["Lan"]}]}
    assert of(extractor.extract(patient).strings, "given") == [("lan", "Lan")]


# -- tokens ----------


def test_identifiers_are_system_and_value_tokens(extractor):
    patient = lan()
    patient["identifier"][0]["type"] = {"text": "Căn cước công dân"}
    rows = extractor.extract(patient)
    assert of(rows.tokens, "identifier") == [
        (CCCD, "001185012345", "can cuoc cong dan"),
        (BHYT, "DN4010123456789", None),
    ]


def test_codes_and_booleans_are_tokens_without_system(extractor):
    rows = extractor.extract({**lan(), "active": True})
    assert of(rows.tokens, "gender") == [(None, "female", None)]
    assert of(rows.tokens, "active") == [(None, "true", None)]


def test_contact_points_are_indexed_under_telecom_and_their_system(extractor):
    patient = {
        **lan(),
        "telecom": [
            {"system": "phone", "value": "0912345678", "use": "mobile"},
            {"system": "email", "value": "lan@example.vn"},
        ],
    }
    rows = extractor.extract(patient)
    assert of(rows.tokens, "phone") == [("phone", "0912345678", None)]
    assert of(rows.tokens, "email") == [("email", "lan@example.vn", None)]
    assert len(of(rows.tokens, "telecom")) == 2


def test_a_codeable_concept_gives_each_coding_and_its_text(extractor):
    observation = hba1c("Patient/lan")
    observation["code"]["text"] = "Đường huyết HbA1c"
    rows = extractor.extract(observation)
    assert of(rows.tokens, "code") == [
        (LOINC, "4548-4", "hemoglobin a1c"),
        (None, None, "duong huyet hba1c"),
    ]


def test_meta_tags_security_labels_profiles_and_source_are_indexed(extractor):
    patient = {
        **lan(),
        "id": "lan",
        "meta": {
            "lastUpdated": "2024-03-05T10:00:00Z",
            "tag": [{"system": "http://fhir.vn/tags", "code": "demo"}],
            "security": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
            ],
            "profile": ["http://fhir.ehealth.gov.vn/core/StructureDefinition/vn-core-patient"],
            "source": "http://his.bachmai.vn",
        },
    }
    rows = extractor.extract(patient)
    assert of(rows.tokens, "_tag") == [("http://fhir.vn/tags", "demo", None)]
    assert of(rows.tokens, "_security")[0][1] == "R"
    assert of(rows.uris, "_profile") == [
        ("http://fhir.ehealth.gov.vn/core/StructureDefinition/vn-core-patient",)
    ]
    assert of(rows.uris, "_source") == [("http://his.bachmai.vn",)]
    # kept as columns of the resources table, not as index rows
    assert not of(rows.tokens, "_id") and not of(rows.dates, "_lastUpdated")


def test_deceased_is_false_unless_a_death_is_recorded(extractor):
    assert of(extractor.extract(lan()).tokens, "deceased") == [(None, "false", None)]
    dead = {**lan(), "deceasedDateTime": "2023-11-02"}
    rows = extractor.extract(dead)
    assert of(rows.tokens, "deceased") == [(None, "true", None)]
    assert of(rows.dates, "death-date") == [(micros(2023, 11, 2), micros(2023, 11, 3) - 1)]


# -- observations: token, quantity, date ----------


def test_an_observation_gives_code_quantity_and_whole_month_date_rows(extractor):
    observation = hba1c("Patient/lan")
    observation["effectiveDateTime"] = "2024-03"
    rows = extractor.extract(observation)
    assert of(rows.tokens, "code") == [(LOINC, "4548-4", "hemoglobin a1c")]
    assert of(rows.quantities, "value-quantity") == [(7.2, 7.15, 7.25, UCUM, "%", "%")]
    assert of(rows.dates, "date") == [(micros(2024, 3, 1), micros(2024, 4, 1) - 1)]
    assert of(rows.tokens, "status") == [(None, "final", None)]


def test_an_observation_component_value_is_indexed_in_its_own_tables(extractor):
    pressure = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
            }
        ],
    }
    rows = extractor.extract(pressure)
    assert of(rows.quantities, "component-value-quantity") == [
        (120.0, 119.5, 120.5, UCUM, "mm[Hg]", "mmHg")
    ]
    assert of(rows.tokens, "component-code") == [(LOINC, "8480-6", None)]
    # The composite pairing the two has rows of its own, not quantity rows.
    assert not [r for r in rows.quantities if r[0] == "component-code-value-quantity"]
    assert [r for r in rows.composites if r[0] == "component-code-value-quantity"]


def test_a_choice_element_is_found_under_any_of_its_types(extractor):
    period = {**hba1c("Patient/lan"), "effectivePeriod": {"start": "2024-03-05T08:00:00Z"}}
    del period["effectiveDateTime"]
    rows = extractor.extract(period)
    assert of(rows.dates, "date") == [(micros(2024, 3, 5, 8), HIGHEST)]


# -- dates ----------


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2024", micros(2024, 1, 1), micros(2025, 1, 1) - 1),
        ("2024-02", micros(2024, 2, 1), micros(2024, 3, 1) - 1),
        ("2024-12-31", micros(2024, 12, 31), micros(2025, 1, 1) - 1),
        ("2024-03-05T08:30:00Z", micros(2024, 3, 5, 8, 30), micros(2024, 3, 5, 8, 30, 1) - 1),
        ("2024-03-05T08:30:00+07:00", micros(2024, 3, 5, 1, 30), micros(2024, 3, 5, 1, 30, 1) - 1),
        ("2024-03-05T08:30:00", micros(2024, 3, 5, 8, 30), micros(2024, 3, 5, 8, 30, 1) - 1),
        (
            "2024-03-05T08:30:00.25Z",
            micros(2024, 3, 5, 8, 30, 0, 250000),
            micros(2024, 3, 5, 8, 30, 0, 259999),
        ),
    ],
)
def test_a_date_covers_the_range_its_precision_allows(extractor, value, low, high):
    rows = extractor.extract({"resourceType": "Patient", "birthDate": value})
    assert of(rows.dates, "birthdate") == [(low, high)]
    assert parse_range(value) == (low, high)  # the same range a search for it uses


def test_an_invalid_date_gives_no_row(extractor):
    rows = extractor.extract({"resourceType": "Patient", "birthDate": "2024-02-30"})
    assert rows.dates == []


def test_a_period_open_at_the_start_runs_from_the_lowest_time(extractor):
    encounter = {"resourceType": "Encounter", "status": "finished", "period": {"end": "2024-03-05"}}
    assert of(extractor.extract(encounter).dates, "date") == [(LOWEST, micros(2024, 3, 6) - 1)]


def test_a_timing_covers_its_events(extractor):
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/lan"},
        "dosageInstruction": [{"timing": {"event": ["2024-03-05", "2024-03-07"]}}],
    }
    assert of(extractor.extract(request).dates, "date") == [
        (micros(2024, 3, 5), micros(2024, 3, 6) - 1),
        (micros(2024, 3, 7), micros(2024, 3, 8) - 1),
    ]


# -- references ----------


def test_a_subject_reference_is_indexed_as_subject_and_patient(extractor):
    rows = extractor.extract(hba1c("Patient/lan"))
    assert of(rows.references, "subject") == [("Patient", "lan", None)]
    assert of(rows.references, "patient") == [("Patient", "lan", None)]


def test_a_group_subject_is_not_a_patient(extractor):
    rows = extractor.extract(hba1c("Group/ward-3"))
    assert of(rows.references, "subject") == [("Group", "ward-3", None)]
    assert of(rows.references, "patient") == []


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/lan/_history/2", [("Patient", "lan", None)]),
        (
            "https://fhir.bachmai.vn/Patient/lan",
            [(None, None, "https://fhir.bachmai.vn/Patient/lan")],
        ),
        ("#contained-1", []),
        ("urn:uuid:6f0bd4d4-6f7c-4a0e-9c5f-0b3f8a1f1a11", []),
    ],
)
def test_reference_forms(extractor, reference, expected):
    rows = extractor.extract(hba1c(reference))
    assert of(rows.references, "subject") == expected


def test_a_canonical_is_indexed_as_url_without_its_version(extractor):
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/lan"},
        "instantiatesCanonical": ["http://fhir.vn/PlanDefinition/diabetes|2.1"],
    }
    rows = extractor.extract(plan)
    assert of(rows.references, "instantiates-canonical") == [
        (None, None, "http://fhir.vn/PlanDefinition/diabetes")
    ]
    assert of(rows.references, "patient") == [("Patient", "lan", None)]


def test_a_document_bundle_is_found_by_its_composition_but_not_as_a_message(extractor):
    composition = {"resourceType": "Composition", "id": "discharge-1", "status": "final"}
    bundle = {"resourceType": "Bundle", "type": "document", "entry": [{"resource": composition}]}
    rows = extractor.extract(bundle)
    assert of(rows.references, "composition") == [("Composition", "discharge-1", None)]
    assert of(rows.references, "message") == []


# -- numbers and quantities ----------


def test_a_number_covers_its_significant_digits(extractor):
    body = b"""{"resourceType": "RiskAssessment", "status": "final",
        "subject": {"reference": "Patient/lan"},
        "prediction": [{"probabilityDecimal": 1.50}, {"probabilityDecimal": 100}]}"""
    rows = extractor.extract(loads(body))
    assert of(rows.numbers, "probability") == [(1.5, 1.495, 1.505), (100.0, 99.5, 100.5)]


def test_a_range_gives_one_row_from_its_low_to_its_high(extractor):
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/lan"},
        "onsetRange": {
            "low": {"value": 40, "unit": "a", "system": UCUM, "code": "a"},
            "high": {"value": 50, "unit": "a", "system": UCUM, "code": "a"},
        },
    }
    rows = extractor.extract(condition)
    assert of(rows.quantities, "onset-age") == [(40.0, 39.5, 50.5, UCUM, "a", "a")]


def test_a_quantity_comparator_opens_one_end(extractor):
    observation = hba1c("Patient/lan")
    observation["valueQuantity"]["comparator"] = "<"
    [(value, low, high, *_)] = of(extractor.extract(observation).quantities, "value-quantity")
    assert (value, low, high) == (7.2, float("-inf"), 7.25)


def test_money_is_a_quantity_in_its_currency(extractor):
    invoice = {
        "resourceType": "Invoice",
        "status": "issued",
        "totalGross": {"value": 150000, "currency": "VND"},
    }
    assert of(extractor.extract(invoice).quantities, "totalgross") == [
        (150000.0, 149999.5, 150000.5, "urn:iso:std:iso:4217", "VND", None)
    ]


# -- custom parameters, errors, compilation ----------


def test_a_search_parameter_added_to_the_registry_is_extracted():
    extractor = Extractor(r4_registry())
    patient = {
        **lan(),
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": "Huế", "country": "VN"},
            }
        ],
    }
    assert not of(extractor.extract(patient).strings, "birthplace")
    extractor.registry.add(
        {
            "resourceType": "SearchParameter",
            "url": "http://fhir.ehealth.gov.vn/core/SearchParameter/patient-birthplace",
            "status": "active",
            "code": "birthplace",
            "base": ["Patient"],
            "type": "string",
            "expression": "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value",
        }
    )
    assert of(extractor.extract(patient).strings, "birthplace") == [("hue", "Huế"), ("vn", "VN")]


def test_an_expression_it_cannot_compile_is_evaluated_by_fhirpathpy():
    extractor = Extractor(r4_registry())
    extractor.registry.add(
        {
            "resourceType": "SearchParameter",
            "url": "http://example.org/SearchParameter/given-count",
            "status": "active",
            "code": "given-count",
            "base": ["Patient"],
            "type": "number",
            "expression": "Patient.name.given.count()",
        }
    )
    assert of(extractor.extract(lan()).numbers, "given-count") == [(2.0, 1.5, 2.5)]
    stats = extractor.stats("Patient")
    assert stats.fallback == 1
    assert stats.fallback_expressions == ("Patient.given-count: Patient.name.given.count()",)


def test_every_r4_expression_compiles_to_python():
    stats = Extractor(r4_registry()).compile_all()
    assert stats.native > 2000
    assert (stats.fallback, stats.failed) == (0, 0), stats.fallback_expressions


def test_a_resource_without_a_type_is_refused(extractor):
    with pytest.raises(InvalidResource):
        extractor.extract({"id": "x"})


def test_an_unknown_type_gets_only_the_resource_parameters(extractor):
    rows = extractor.extract({"resourceType": "Spaceship", "meta": {"tag": [{"code": "x"}]}})
    assert rows.tokens == [("_tag", None, "x", None)]


# -- R4 examples ----------


EXAMPLES = sorted(DATA.glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_r4_examples_are_extracted_into_rows_of_their_own_parameters(extractor, path):
    resource = loads(path.read_bytes())
    rows = extractor.extract(resource)
    assert isinstance(rows, IndexRows) and rows.count() > 0
    params = extractor.registry.for_type(resource["resourceType"])
    codes = [row[0] for row in rows.tokens + rows.strings + rows.uris]
    codes += [row[0] for row in rows.dates + rows.numbers + rows.quantities]
    codes += [row[0] for row in rows.references]
    # A modifier's rows (`identifier:of-type`, `subject:identifier`) belong to their parameter;
    # a contained resource's (`#Medication.code`) to a parameter of its type.
    for code in codes:
        code = code.partition(":")[0]
        if code.startswith("#"):
            kind, _, code = code[1:].partition(".")
            assert code == "_id" or code in extractor.registry.for_type(kind), code
        else:
            assert code in params, code
    for _, low, high in rows.dates:
        assert LOWEST <= low <= high <= HIGHEST


def test_the_examples_cover_many_types():
    types = {json.loads(p.read_text("utf-8"))["resourceType"] for p in EXAMPLES}
    assert len(types) >= 30
