"""Composite search parameters through the API (https://hl7.org/fhir/R4/search.html#composite):
the components of a value must hold on one element, never on two."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.people import LOINC

JSON = {"Content-Type": "application/fhir+json"}
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
USAGE = "http://terminology.hl7.org/CodeSystem/usage-context-type"
SYSTOLIC, DIASTOLIC, PANEL = "8480-6", "8462-4", "85354-9"


def put(client: TestClient, resource: dict[str, Any]) -> None:
    r = client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=JSON
    )
    assert r.status_code in (200, 201), r.text


def ids(client: TestClient, res_type: str, **params: str) -> list[str]:
    r = client.get(f"/fhir/{res_type}", params={k.replace("_", "-"): v for k, v in params.items()})
    assert r.status_code == 200, r.text
    return sorted(e["resource"]["id"] for e in r.json().get("entry", []))


def quantity(value: float, code: str = "mm[Hg]", unit: str = "mmHg") -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def concept(code: str, system: str = LOINC) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def observation(oid: str, code: str, system: str = LOINC, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": concept(code, system),
        **value,
    }


def pressure(oid: str, systolic: float, diastolic: float) -> dict[str, Any]:
    """A blood pressure panel: the values are on its components."""
    return {
        **observation(oid, PANEL),
        "component": [
            {"code": concept(SYSTOLIC), "valueQuantity": quantity(systolic)},
            {"code": concept(DIASTOLIC), "valueQuantity": quantity(diastolic)},
        ],
    }


def test_code_value_quantity_pairs_the_code_with_its_value(client: TestClient) -> None:
    put(client, observation("sys140", SYSTOLIC, valueQuantity=quantity(140)))
    put(client, observation("sys120", SYSTOLIC, valueQuantity=quantity(120)))
    put(client, observation("dia140", DIASTOLIC, valueQuantity=quantity(140)))
    put(client, observation("sys150", SYSTOLIC, "http://other.org", valueQuantity=quantity(150)))
    put(client, observation("sys145kpa", SYSTOLIC, valueQuantity=quantity(145, "kPa", "kPa")))

    def find(value: str) -> list[str]:
        return ids(client, "Observation", code_value_quantity=value)

    assert find(f"{LOINC}|{SYSTOLIC}$gt130") == ["sys140", "sys145kpa"]
    assert find(f"{SYSTOLIC}$gt130") == ["sys140", "sys145kpa", "sys150"]
    assert find(f"{LOINC}|{SYSTOLIC}$gt130|{UCUM}|mm[Hg]") == ["sys140"]
    assert find(f"{SYSTOLIC}$gt130||mmHg") == ["sys140", "sys150"]
    assert find(f"{DIASTOLIC}$gt130") == ["dia140"]
    # The prefixes of number search, on the value itself: 140 is not gt140.
    assert find(f"{LOINC}|{SYSTOLIC}$140") == ["sys140"]
    assert find(f"{LOINC}|{SYSTOLIC}$gt140") == ["sys145kpa"]
    assert find(f"{LOINC}|{SYSTOLIC}$ge140") == ["sys140", "sys145kpa"]
    assert find(f"{LOINC}|{SYSTOLIC}$le120") == ["sys120"]
    assert find(f"{LOINC}|{SYSTOLIC}$ne140") == ["sys120", "sys145kpa"]
    # Values are ORed with a comma.
    assert find(f"{SYSTOLIC}$lt130,{DIASTOLIC}$gt130") == ["dia140", "sys120"]


def test_a_decimal_value_equals_itself(client: TestClient) -> None:
    # 8.1's precision range [8.05, 8.15] has a midpoint of 8.1 only once extraction centres it.
    put(client, observation("glucose", "15074-8", valueQuantity=quantity(8.1, "mmol/L", "mmol/L")))
    for value, expected in (("8.1", 1), ("ge8.1", 1), ("le8.1", 1), ("gt8.1", 0), ("lt8.1", 0)):
        found = ids(client, "Observation", code_value_quantity=f"15074-8${value}")
        assert found == ["glucose"] * expected, value


def test_a_component_code_is_paired_with_the_value_of_its_own_component(
    client: TestClient,
) -> None:
    put(client, pressure("high-systolic", 150, 85))
    put(client, pressure("high-diastolic", 110, 140))
    # Separate parameters match a code on one component and a value on another...
    both = ids(client, "Observation", component_code=SYSTOLIC, component_value_quantity="gt130")
    assert both == ["high-diastolic", "high-systolic"]
    # ...a composite does not.
    systolic = f"{LOINC}|{SYSTOLIC}$gt130"
    assert ids(client, "Observation", component_code_value_quantity=systolic) == ["high-systolic"]
    diastolic = f"{DIASTOLIC}$gt130|{UCUM}|mm[Hg]"
    assert ids(client, "Observation", component_code_value_quantity=diastolic) == ["high-diastolic"]
    # The panel's own code has no value of its own.
    assert ids(client, "Observation", code_value_quantity=f"{PANEL}$gt0") == []


def test_combo_pairs_the_observation_and_each_component(client: TestClient) -> None:
    put(client, observation("own", SYSTOLIC, valueQuantity=quantity(140)))
    put(client, pressure("component", 150, 85))
    put(client, pressure("other-component", 110, 140))
    # The systolic code on the Observation with a value on a component of another code.
    mixed = {
        **observation("mixed", SYSTOLIC, valueQuantity=quantity(100)),
        "component": [{"code": concept(DIASTOLIC), "valueQuantity": quantity(200)}],
    }
    put(client, mixed)
    found = ids(client, "Observation", combo_code_value_quantity=f"{LOINC}|{SYSTOLIC}$gt130")
    assert found == ["component", "own"]
    found = ids(client, "Observation", combo_code_value_quantity=f"{SYSTOLIC}$lt105")
    assert found == ["mixed"]
    found = ids(client, "Observation", combo_code_value_quantity=f"{DIASTOLIC}$ge140")
    assert found == ["mixed", "other-component"]


def test_code_value_concept(client: TestClient) -> None:
    abo = "883-9"
    put(client, observation("group-a", abo, valueCodeableConcept=concept("112144000", SNOMED)))
    put(client, observation("group-o", abo, valueCodeableConcept=concept("58460004", SNOMED)))
    put(client, observation("other", "882-1", valueCodeableConcept=concept("112144000", SNOMED)))

    def find(value: str) -> list[str]:
        return ids(client, "Observation", code_value_concept=value)

    assert find(f"{LOINC}|{abo}${SNOMED}|112144000") == ["group-a"]
    assert find(f"{abo}$58460004") == ["group-o"]
    assert find(f"{abo}${SNOMED}|") == ["group-a", "group-o"]
    assert find(f"{abo}$http://other.org|112144000") == []
    assert find("882-1$58460004") == []


def test_code_value_date(client: TestClient) -> None:
    onset = "11368-8"
    put(client, observation("march", onset, valueDateTime="2024-03-05"))
    put(client, observation("may", onset, valueDateTime="2024-05-20T10:00:00Z"))
    spring = {"start": "2024-03-01", "end": "2024-05-31"}
    put(client, observation("spring", onset, valuePeriod=spring))
    put(client, observation("other", "8302-2", valueDateTime="2024-03-05"))

    def find(value: str) -> list[str]:
        return ids(client, "Observation", code_value_date=value)

    assert find(f"{onset}$2024-03-05") == ["march"]
    assert find(f"{LOINC}|{onset}$2024") == ["march", "may", "spring"]
    assert find(f"{onset}$gt2024-04") == ["may", "spring"]
    assert find(f"{onset}$lt2024-04") == ["march", "spring"]
    assert find(f"{onset}$eb2024-04") == ["march"]
    assert find(f"{onset}$2024-06") == []


def test_code_value_string_is_folded(client: TestClient) -> None:
    test = "94500-6"
    put(client, observation("positive", test, valueString="Dương tính"))
    put(client, observation("negative", test, valueString="Âm tính"))
    put(client, observation("other", "94309-2", valueString="Dương tính"))
    assert ids(client, "Observation", code_value_string=f"{test}$duong") == ["positive"]
    assert ids(client, "Observation", code_value_string=f"{test}$ÂM TÍNH") == ["negative"]
    assert ids(client, "Observation", code_value_string=f"{test}$tinh") == []


def test_context_type_value_pairs_each_use_context(client: TestClient) -> None:
    def value_set(vid: str, focus: str, gender: str) -> dict[str, Any]:
        return {
            "resourceType": "ValueSet",
            "id": vid,
            "status": "active",
            "useContext": [
                {
                    "code": {"system": USAGE, "code": "focus"},
                    "valueCodeableConcept": concept(focus, SNOMED),
                },
                {
                    "code": {"system": USAGE, "code": "gender"},
                    "valueCodeableConcept": concept(gender, SNOMED),
                },
            ],
        }

    put(client, value_set("a", "248153007", "248152002"))
    put(client, value_set("b", "248152002", "248153007"))
    found = ids(client, "ValueSet", context_type_value=f"{USAGE}|focus${SNOMED}|248153007")
    assert found == ["a"]
    assert ids(client, "ValueSet", context_type_value="gender$248153007") == ["b"]
    assert ids(client, "ValueSet", context_type_value="age$248153007") == []


def test_relationship_pairs_a_reference_with_its_code(client: TestClient) -> None:
    def document(did: str, **more: Any) -> dict[str, Any]:
        content = [{"attachment": {"contentType": "text/plain", "url": "http://example.org/d"}}]
        return {
            "resourceType": "DocumentReference",
            "id": did,
            "status": "current",
            **more,
            "content": content,
        }

    put(client, document("old"))
    put(
        client,
        document(
            "new",
            relatesTo=[{"code": "replaces", "target": {"reference": "DocumentReference/old"}}],
        ),
    )
    put(
        client,
        document(
            "note",
            relatesTo=[{"code": "appends", "target": {"reference": "DocumentReference/old"}}],
        ),
    )
    assert ids(client, "DocumentReference", relationship="DocumentReference/old$replaces") == [
        "new"
    ]
    assert ids(client, "DocumentReference", relationship="old$appends") == ["note"]
    assert ids(client, "DocumentReference", relationship="DocumentReference/new$replaces") == []


def test_three_components(client: TestClient) -> None:
    human = "http://terminology.hl7.org/CodeSystem/chromosome-human"

    def sequence(sid: str, chromosome: str, start: int, end: int) -> dict[str, Any]:
        return {
            "resourceType": "MolecularSequence",
            "id": sid,
            "coordinateSystem": 0,
            "referenceSeq": {"chromosome": concept(chromosome, human), "genomeBuild": "GRCh38"},
            "variant": [{"start": start, "end": end}],
        }

    put(client, sequence("near", "1", 100, 120))
    put(client, sequence("far", "1", 500, 520))
    put(client, sequence("elsewhere", "2", 100, 120))
    found = ids(client, "MolecularSequence", chromosome_variant_coordinate="1$ge100$le120")
    assert found == ["near"]
    found = ids(client, "MolecularSequence", chromosome_variant_coordinate="1$gt50$gt120")
    assert found == ["far"]


def test_an_update_replaces_the_rows(client: TestClient) -> None:
    put(client, observation("sys", SYSTOLIC, valueQuantity=quantity(140)))
    put(client, observation("sys", SYSTOLIC, valueQuantity=quantity(120)))
    assert ids(client, "Observation", code_value_quantity=f"{SYSTOLIC}$gt130") == []
    assert ids(client, "Observation", code_value_quantity=f"{SYSTOLIC}$120") == ["sys"]


@pytest.mark.parametrize("value", [SYSTOLIC, f"{SYSTOLIC}$gt1$gt2", f"{SYSTOLIC}$x"])
def test_a_malformed_composite_value_is_refused(client: TestClient, value: str) -> None:
    r = client.get("/fhir/Observation", params={"code-value-quantity": value})
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
