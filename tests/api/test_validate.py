"""POST [type]/$validate and /$validate."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.people import lan

JSON = {"Content-Type": "application/fhir+json"}


def test_a_valid_resource_has_no_errors(client: TestClient) -> None:
    r = client.post("/fhir/Patient/$validate", json=lan(), headers=JSON)
    assert r.status_code == 200
    assert all(i["severity"] not in ("error", "fatal") for i in r.json()["issue"])


def test_errors_are_reported_with_their_location_and_nothing_is_stored(client: TestClient) -> None:
    bad = {**lan(), "gender": "sometimes"}
    r = client.post("/fhir/$validate", json=bad, headers=JSON)
    assert r.status_code == 200
    errors = [i for i in r.json()["issue"] if i["severity"] == "error"]
    assert errors and errors[0]["expression"][0].startswith("Patient.gender")
    assert client.get("/fhir/Patient").json()["total"] == 0


def test_parameters_wrapping_is_accepted(client: TestClient) -> None:
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": lan()}]}
    r = client.post("/fhir/Patient/$validate", json=params, headers=JSON)
    assert r.status_code == 200
    r = client.post("/fhir/Observation/$validate", json=lan(), headers=JSON)
    assert r.status_code == 400
