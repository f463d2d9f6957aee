"""GET /metadata: a CapabilityStatement that tells the truth."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_it_lists_every_resource_type_and_what_works(client: TestClient) -> None:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert cs["format"] == ["application/fhir+json", "json"]
    rest = cs["rest"][0]
    types = {res["type"] for res in rest["resource"]}
    assert {"Patient", "Observation", "Immunization", "MedicationRequest"} <= types
    assert len(types) >= 145
    patient = next(res for res in rest["resource"] if res["type"] == "Patient")
    codes = {i["code"] for i in patient["interaction"]}
    assert {"read", "vread", "update", "patch", "delete", "create", "history-instance"} <= codes
    assert any(p["name"] == "identifier" for p in patient["searchParam"])
    assert {i["code"] for i in rest["interaction"]} >= {"transaction", "batch", "search-system"}
    assert "Observation:subject" in patient["searchRevInclude"]
    observation = next(res for res in rest["resource"] if res["type"] == "Observation")
    assert "Observation:subject" in observation["searchInclude"]
    assert any(p["name"] == "code-value-quantity" for p in observation["searchParam"])
    assert "http://hl7.org/fhir/CompartmentDefinition/patient" in rest["compartment"]
    assert any(op["name"] == "validate" for op in rest["operation"])


def test_the_audit_trail_is_advertised_read_only_as_it_is(client: TestClient) -> None:
    rest = client.get("/fhir/metadata").json()["rest"][0]
    audit = next(res for res in rest["resource"] if res["type"] == "AuditEvent")
    assert {i["code"] for i in audit["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in audit["searchParam"]} == {
        "patient",
        "date",
        "agent",
        "entity",
        "subtype",
        "outcome",
    }
    assert client.post("/fhir/AuditEvent", json={"resourceType": "AuditEvent"}).status_code == 405
    assert client.get("/fhir/AuditEvent?patient=nobody").status_code == 200


def test_the_statement_is_itself_valid(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    r = client.post("/fhir/$validate", json=cs, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200
    assert not [i for i in r.json()["issue"] if i["severity"] in ("error", "fatal")], r.text
