"""DELETE: versioned tombstones, 410 on read, conditional delete."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.people import CCCD, lan

JSON = {"Content-Type": "application/fhir+json"}


def test_a_deleted_resource_answers_410_and_keeps_its_history(client: TestClient) -> None:
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    r = client.delete("/fhir/Patient/p")
    assert r.status_code == 204
    assert r.headers["ETag"] == 'W/"2"'
    r = client.get("/fhir/Patient/p")
    assert r.status_code == 410
    assert r.json()["issue"][0]["code"] == "deleted"
    assert client.get("/fhir/Patient/p/_history/1").status_code == 200
    history = client.get("/fhir/Patient/p/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT"]
    assert "resource" not in history["entry"][0]


def test_deleting_twice_is_harmless_and_recreating_makes_a_new_version(client: TestClient) -> None:
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    client.delete("/fhir/Patient/p")
    assert client.delete("/fhir/Patient/p").status_code == 204
    r = client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    assert r.status_code == 201
    assert r.json()["meta"]["versionId"] == "3"


def test_deleting_an_unknown_resource_says_nothing_was_deleted(client: TestClient) -> None:
    r = client.delete("/fhir/Patient/nobody")
    assert r.status_code == 200
    assert r.json()["issue"][0]["code"] == "not-found"


def test_delete_with_a_stale_if_match_is_412(client: TestClient) -> None:
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    assert client.delete("/fhir/Patient/p", headers={"If-Match": 'W/"1"'}).status_code == 412
    assert client.get("/fhir/Patient/p").status_code == 200


def test_conditional_delete(client: TestClient) -> None:
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    r = client.delete(f"/fhir/Patient?identifier={CCCD}|001185012345")
    assert r.status_code == 204
    assert client.get("/fhir/Patient/p").status_code == 410
    r = client.delete(f"/fhir/Patient?identifier={CCCD}|001185012345")
    assert r.status_code == 200
