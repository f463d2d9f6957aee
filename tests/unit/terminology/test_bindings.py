"""Bindings checked against the value sets the server holds (vnehr.terminology.bindings).

Each test stores CodeSystems and ValueSets through the server's router (both backends),
then checks a resource with a terminology session of that server.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from vnehr.app import Server
from vnehr.errors import Issue
from vnehr.fhir.definitions import R4, binding_table
from vnehr.interactions.exchange import FhirRequest
from vnehr.terminology.bindings import check_bindings

Json = dict[str, Any]
THO_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CATEGORY_VS = "http://hl7.org/fhir/ValueSet/observation-category"
INTERPRETATION_VS = "http://hl7.org/fhir/ValueSet/observation-interpretation"
LOCAL_FLAGS = "http://example.org/fhir/CodeSystem/flags"
SPEC_PACKAGE = Path("/work/shared/data/fhir-r4-spec-examples-npm/hl7.fhir.r4.examples-4.0.1.tgz")


def put(server: Server, resource: Json) -> None:
    path = f"{resource['resourceType']}/{resource['id']}"
    response = server.router.handle(FhirRequest("PUT", path, resource=resource))
    assert response.status in (200, 201), response.resource


def check(server: Server, resource: Json) -> list[Issue]:
    terminology = server.router.ctx.terminology
    assert terminology is not None
    with terminology.session() as session:
        return check_bindings(session, resource)


def value_set(vs_id: str, url: str, *includes: Json) -> Json:
    return {
        "resourceType": "ValueSet",
        "id": vs_id,
        "url": url,
        "status": "active",
        "compose": {"include": list(includes)},
    }


def observation(**elements: Any) -> Json:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        **elements,
    }


def category(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}


def store_flags(server: Server) -> None:
    """A local code system of result flags and an interpretation value set of two of them."""
    put(
        server,
        {
            "resourceType": "CodeSystem",
            "id": "flags",
            "url": LOCAL_FLAGS,
            "status": "active",
            "content": "complete",
            "concept": [{"code": "H"}, {"code": "L"}, {"code": "X"}],
        },
    )
    put(
        server,
        value_set(
            "interpretation",
            INTERPRETATION_VS,
            {"system": LOCAL_FLAGS, "concept": [{"code": "H"}, {"code": "L"}]},
        ),
    )


# -- the derived table


def test_the_table_lists_coded_elements_of_resources_and_backbone_elements() -> None:
    table = binding_table()
    assert table["Observation"]["category"] == ["preferred", CATEGORY_VS]
    assert table["Observation"]["interpretation"] == ["extensible", INTERPRETATION_VS]
    assert table["Observation"]["status"][0] == "required"
    assert table["Observation.component"]["interpretation"] == ["extensible", INTERPRETATION_VS]
    # A choice element under the JSON name of its coded type; no version on the canonical.
    assert table["Specimen.collection"]["fastingStatusCodeableConcept"][0] == "extensible"
    assert "fastingStatusDuration" not in table["Specimen.collection"]
    assert all("|" not in url for e in table.values() for _, url in e.values())
    # example bindings (Observation.code) and data types (Identifier) are not listed
    assert "code" not in table["Observation"]
    assert "Identifier" not in table


@pytest.mark.skipif(not SPEC_PACKAGE.exists(), reason="the R4 package is not at hand")
def test_regenerating_the_table_changes_nothing(tmp_path: Path) -> None:
    from tools.derive_bindings import main

    shutil.copy(R4 / "resource_types.json", tmp_path / "resource_types.json")
    assert main([str(SPEC_PACKAGE), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "bindings.json.gz").read_bytes() == (R4 / "bindings.json.gz").read_bytes()


# -- preferred and extensible bindings: warnings


def test_a_preferred_binding_is_checked_against_a_stored_value_set(server: Server) -> None:
    # The spec's observation-category value set: every code of the THO code system, which
    # the server knows from the specification package without storing it.
    put(server, value_set("category", CATEGORY_VS, {"system": THO_CATEGORY}))
    assert check(server, observation(category=[category(THO_CATEGORY, "laboratory")])) == []
    issues = check(
        server,
        observation(
            category=[
                category(THO_CATEGORY, "vital-signs"),
                category("http://example.org/categories", "lab"),
            ]
        ),
    )
    assert [(i.severity, i.code, i.expression) for i in issues] == [
        ("warning", "code-invalid", ("Observation.category[1]",))
    ]
    assert CATEGORY_VS in issues[0].diagnostics and "preferred" in issues[0].diagnostics


def test_a_value_set_the_server_does_not_hold_is_not_checked(server: Server) -> None:
    resource = observation(category=[category("http://example.org/categories", "lab")])
    assert check(server, resource) == []
    put(server, value_set("category", CATEGORY_VS, {"system": THO_CATEGORY}))
    assert len(check(server, resource)) == 1


def test_an_extensible_binding_in_a_backbone_element(server: Server) -> None:
    store_flags(server)
    good = {"coding": [{"system": LOCAL_FLAGS, "code": "H"}]}
    outside = {"coding": [{"system": LOCAL_FLAGS, "code": "X"}]}
    resource = observation(
        interpretation=[good],
        component=[
            {"code": {"text": "a"}, "interpretation": [good]},
            {"code": {"text": "b"}, "interpretation": [good, outside]},
            {"code": {"text": "c"}, "interpretation": [{"text": "raised"}]},
        ],
    )
    issues = check(server, resource)
    assert [(i.severity, i.expression) for i in issues] == [
        ("warning", ("Observation.component[1].interpretation[1]",))
    ]
    assert "extensible" in issues[0].diagnostics


def test_one_coding_in_the_value_set_satisfies_the_binding(server: Server) -> None:
    store_flags(server)
    mixed = {
        "coding": [
            {"system": "http://example.org/other", "code": "high"},
            {"system": LOCAL_FLAGS, "code": "L"},
        ]
    }
    assert check(server, observation(interpretation=[mixed])) == []
    only_other = {"coding": [{"system": "http://example.org/other", "code": "high"}]}
    assert len(check(server, observation(interpretation=[only_other]))) == 1


def test_a_choice_element_and_a_coding(server: Server) -> None:
    put(
        server,
        value_set(
            "fasting",
            "http://terminology.hl7.org/ValueSet/v2-0916",
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0916", "concept": [{"code": "F"}]},
        ),
    )
    put(
        server,
        value_set(
            "audit-types",
            "http://hl7.org/fhir/ValueSet/audit-event-type",
            {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type"},
        ),
    )
    fasting = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0916", "code": "F"}]}
    collection: Json = {"fastingStatusCodeableConcept": fasting}
    specimen: Json = {"resourceType": "Specimen", "id": "s", "collection": collection}
    assert check(server, specimen) == []
    collection["fastingStatusCodeableConcept"] = {
        "coding": [{"system": "http://example.org/fasting", "code": "NF"}]
    }
    assert [i.expression for i in check(server, specimen)] == [
        ("Specimen.collection.fastingStatusCodeableConcept",)
    ]
    audit = {
        "resourceType": "AuditEvent",
        "id": "a",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
    }
    assert check(server, audit) == []
    audit["type"] = {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110100"}
    issues = check(server, audit)
    assert [(i.severity, i.expression) for i in issues] == [("warning", ("AuditEvent.type",))]
    assert "http://dicom.nema.org/resources/ontology/DCM#110100" in issues[0].diagnostics


def test_a_value_set_that_cannot_be_evaluated_is_skipped(server: Server) -> None:
    # SNOMED CT is neither stored nor part of the specification: the filter cannot run.
    put(
        server,
        value_set(
            "interpretation",
            INTERPRETATION_VS,
            {
                "system": "http://snomed.info/sct",
                "filter": [{"property": "concept", "op": "is-a", "value": "260245000"}],
            },
        ),
    )
    flag = {"coding": [{"system": "http://snomed.info/sct", "code": "75540009"}]}
    assert check(server, observation(interpretation=[flag])) == []


def test_contained_resources_are_checked(server: Server) -> None:
    store_flags(server)
    outside = {"coding": [{"system": LOCAL_FLAGS, "code": "X"}]}
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r",
        "status": "final",
        "code": {"text": "panel"},
        "contained": [observation(id="o", interpretation=[outside])],
        "result": [{"reference": "#o"}],
    }
    assert [i.expression for i in check(server, report)] == [
        ("DiagnosticReport.contained[0].interpretation[0]",)
    ]


# -- required bindings: errors, for stored value sets the validator does not know


def test_a_required_binding_to_a_stored_value_set(server: Server) -> None:
    variants = "http://loinc.org/vs/LL379-9"
    put(
        server,
        value_set(
            "variant-types",
            variants,
            {"system": "http://loinc.org", "concept": [{"code": "LA6690-7"}, {"code": "LA6686-5"}]},
        ),
    )

    def sequence(variant_type: Json) -> Json:
        return {
            "resourceType": "MolecularSequence",
            "id": "m",
            "coordinateSystem": 0,
            "structureVariant": [{"variantType": variant_type}],
        }

    listed = {"coding": [{"system": "http://loinc.org", "code": "LA6690-7"}]}
    assert check(server, sequence(listed)) == []
    other = {"coding": [{"system": "http://loinc.org", "code": "LA6692-3"}]}
    issues = check(server, sequence(other))
    assert [(i.severity, i.code, i.expression) for i in issues] == [
        ("error", "code-invalid", ("MolecularSequence.structureVariant[0].variantType",))
    ]
    assert "required" in issues[0].diagnostics
    # A required binding needs a code: text alone is not enough.
    issues = check(server, sequence({"text": "deletion"}))
    assert [(i.severity, i.expression) for i in issues] == [
        ("error", ("MolecularSequence.structureVariant[0].variantType",))
    ]


def test_a_required_code_against_a_stored_value_set(server: Server) -> None:
    binary = {"resourceType": "Binary", "id": "b", "contentType": "text/x-unknown"}
    assert check(server, binary) == []  # mimetypes: not held, so not checked
    put(
        server,
        value_set(
            "mimetypes",
            "http://hl7.org/fhir/ValueSet/mimetypes",
            {"system": "urn:ietf:bcp:13", "concept": [{"code": "application/pdf"}]},
        ),
    )
    issues = check(server, binary)
    assert [(i.severity, i.expression) for i in issues] == [("error", ("Binary.contentType",))]
    assert check(server, {**binary, "contentType": "application/pdf"}) == []


def test_required_bindings_of_the_specification_are_left_to_the_validator(server: Server) -> None:
    # observation-status is expanded from the package and checked by the structural validator.
    put(
        server,
        value_set(
            "status",
            "http://hl7.org/fhir/ValueSet/observation-status",
            {"system": "http://hl7.org/fhir/observation-status", "concept": [{"code": "final"}]},
        ),
    )
    assert check(server, observation(status="registered")) == []
