"""PATCH with JSON Patch and FHIRPath Patch."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.people import CCCD, lan

JSON = {"Content-Type": "application/fhir+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def _put(client: TestClient) -> None:
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)


def test_json_patch_makes_a_new_version(client: TestClient) -> None:
    _put(client)
    ops = [{"op": "replace", "path": "/gender", "value": "other"}]
    r = client.patch("/fhir/Patient/p", json=ops, headers=JSON_PATCH)
    assert r.status_code == 200, r.text
    assert r.json()["gender"] == "other"
    assert r.json()["meta"]["versionId"] == "2"


def test_fhirpath_patch_replaces_a_value(client: TestClient) -> None:
    _put(client)
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Patient.birthDate"},
                    {"name": "value", "valueDate": "1986-01-01"},
                ],
            }
        ],
    }
    r = client.patch("/fhir/Patient/p", json=params, headers=JSON)
    assert r.status_code == 200, r.text
    assert r.json()["birthDate"] == "1986-01-01"


def test_a_patch_that_breaks_the_resource_is_rejected(client: TestClient) -> None:
    _put(client)
    ops = [{"op": "add", "path": "/birthDate", "value": "not a date"}]
    r = client.patch("/fhir/Patient/p", json=ops, headers=JSON_PATCH)
    assert r.status_code == 400
    assert client.get("/fhir/Patient/p").json()["meta"]["versionId"] == "1"


def test_a_patch_with_a_stale_if_match_is_412(client: TestClient) -> None:
    _put(client)
    ops = [{"op": "replace", "path": "/gender", "value": "other"}]
    r = client.patch("/fhir/Patient/p", json=ops, headers={**JSON_PATCH, "If-Match": 'W/"9"'})
    assert r.status_code == 412


def test_a_failing_test_op_is_422_and_changes_nothing(client: TestClient) -> None:
    _put(client)
    ops = [
        {"op": "test", "path": "/gender", "value": "male"},
        {"op": "replace", "path": "/gender", "value": "other"},
    ]
    r = client.patch("/fhir/Patient/p", json=ops, headers=JSON_PATCH)
    assert r.status_code == 422
    assert client.get("/fhir/Patient/p").json()["gender"] == "female"


def test_conditional_patch_and_unsupported_patch_types(client: TestClient) -> None:
    _put(client)
    ops = [{"op": "replace", "path": "/gender", "value": "other"}]
    r = client.patch(f"/fhir/Patient?identifier={CCCD}|001185012345", json=ops, headers=JSON_PATCH)
    assert r.status_code == 200
    r = client.patch(
        "/fhir/Patient/p", content=b"<x/>", headers={"Content-Type": "application/xml"}
    )
    assert r.status_code == 415
