"""POST [type]: create and conditional create."""

from __future__ import annotations

import threading

from starlette.testclient import TestClient

from tests.people import CCCD, lan

JSON = {"Content-Type": "application/fhir+json"}


def test_it_creates_with_a_server_id_and_version_headers(client: TestClient) -> None:
    sent = {**lan(), "id": "client-chosen"}
    r = client.post("/fhir/Patient", json=sent, headers=JSON)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert "GMT" in r.headers["Last-Modified"]
    assert r.headers["content-type"].startswith("application/fhir+json")
    again = client.get(f"/fhir/Patient/{body['id']}")
    assert again.json()["name"] == lan()["name"]


def test_prefer_return_minimal_sends_no_body(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json=lan(), headers={**JSON, "Prefer": "return=minimal"})
    assert r.status_code == 201
    assert r.content == b""
    assert "Location" in r.headers


def test_prefer_return_operation_outcome(client: TestClient) -> None:
    r = client.post(
        "/fhir/Patient", json=lan(), headers={**JSON, "Prefer": "return=OperationOutcome"}
    )
    assert r.status_code == 201
    assert r.json()["resourceType"] == "OperationOutcome"


def test_conditional_create_returns_the_existing_resource(client: TestClient) -> None:
    header = {**JSON, "If-None-Exist": f"identifier={CCCD}|001185012345"}
    first = client.post("/fhir/Patient", json=lan(), headers=header)
    second = client.post("/fhir/Patient", json=lan(), headers=header)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


def test_conditional_create_with_several_matches_is_412(client: TestClient) -> None:
    client.post("/fhir/Patient", json=lan(), headers=JSON)
    client.post("/fhir/Patient", json=lan(), headers=JSON)
    r = client.post(
        "/fhir/Patient",
        json=lan(),
        headers={**JSON, "If-None-Exist": f"identifier={CCCD}|001185012345"},
    )
    assert r.status_code == 412
    assert r.json()["issue"][0]["code"] == "multiple-matches"


def test_racing_conditional_creates_make_one_resource(client: TestClient) -> None:
    header = {**JSON, "If-None-Exist": f"identifier={CCCD}|001185099999"}
    statuses: list[int] = []

    def post() -> None:
        r = client.post("/fhir/Patient", json=lan("001185099999"), headers=header)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 5 + [201]
    found = client.get("/fhir/Patient", params={"identifier": f"{CCCD}|001185099999"})
    assert found.json()["total"] == 1


def test_a_body_of_another_type_is_rejected(client: TestClient) -> None:
    r = client.post("/fhir/Observation", json=lan(), headers=JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["resourceType"]
