"""GET [type]/[id] and [type]/[id]/_history/[vid]: read and vread."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.people import lan

JSON = {"Content-Type": "application/fhir+json"}


def _create(client: TestClient) -> str:
    return str(client.post("/fhir/Patient", json=lan(), headers=JSON).json()["id"])


def test_read_returns_the_current_version(client: TestClient) -> None:
    pid = _create(client)
    r = client.get(f"/fhir/Patient/{pid}")
    assert r.status_code == 200
    assert r.json()["birthDate"] == "1985-03-12"
    assert r.headers["ETag"] == 'W/"1"'


def test_vread_returns_an_old_version(client: TestClient) -> None:
    pid = _create(client)
    client.put(f"/fhir/Patient/{pid}", json={**lan(), "id": pid, "gender": "other"}, headers=JSON)
    assert client.get(f"/fhir/Patient/{pid}/_history/1").json()["gender"] == "female"
    assert client.get(f"/fhir/Patient/{pid}/_history/2").json()["gender"] == "other"
    assert client.get(f"/fhir/Patient/{pid}/_history/3").status_code == 404
    assert client.get(f"/fhir/Patient/{pid}/_history/x").status_code == 400


def test_unknown_ids_and_types(client: TestClient) -> None:
    r = client.get("/fhir/Patient/does-not-exist")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient/bad$id").status_code == 400
    r = client.get("/fhir/Patientt/1")
    assert r.status_code == 404
    assert "Patientt" in r.json()["issue"][0]["diagnostics"]


def test_summary_and_elements_subset_the_resource(client: TestClient) -> None:
    pid = _create(client)
    r = client.get(f"/fhir/Patient/{pid}", params={"_elements": "birthDate"})
    body = r.json()
    assert body["birthDate"] == "1985-03-12"
    assert "name" not in body
    assert any(t["code"] == "SUBSETTED" for t in body["meta"]["tag"])
    r = client.get(f"/fhir/Patient/{pid}", params={"_summary": "true"})
    assert "name" in r.json()
    r = client.get(f"/fhir/Patient/{pid}", params={"_summary": "wrong"})
    assert r.status_code == 400


def test_pretty_output_is_indented(client: TestClient) -> None:
    pid = _create(client)
    r = client.get(f"/fhir/Patient/{pid}", params={"_pretty": "true"})
    assert b"\n  " in r.content
    assert r.json()["id"] == pid


def test_if_none_match_gives_304(client: TestClient) -> None:
    pid = _create(client)
    r = client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"1"'})
    assert r.status_code == 304
