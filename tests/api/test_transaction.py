"""POST / with a transaction Bundle: atomic, urn:uuid resolution, processing order."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.people import CCCD, hba1c, lan

JSON = {"Content-Type": "application/fhir+json"}


def _tx(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def test_urn_uuid_references_are_rewritten_to_the_new_ids(client: TestClient) -> None:
    bundle = _tx(
        {
            "fullUrl": "urn:uuid:1f2e",
            "resource": lan(),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": "urn:uuid:9a8b",
            "resource": hba1c("urn:uuid:1f2e"),
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    r = client.post("/fhir", json=bundle, headers=JSON)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    patient_loc = body["entry"][0]["response"]["location"]
    obs_loc = body["entry"][1]["response"]["location"]
    pid = patient_loc.split("/Patient/")[1].split("/")[0]
    obs = client.get("/fhir/" + obs_loc.split("/fhir/")[1].split("/_history")[0]).json()
    assert obs["subject"]["reference"] == f"Patient/{pid}"


def test_a_failing_entry_rolls_back_the_whole_transaction(client: TestClient) -> None:
    bundle = _tx(
        {
            "fullUrl": "urn:uuid:1",
            "resource": lan(),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "resource": {"resourceType": "Observation", "status": "bogus-status"},
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    r = client.post("/fhir", json=bundle, headers=JSON)
    assert r.status_code == 400
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any("Bundle.entry[1]" in e for i in outcome["issue"] for e in i.get("expression", []))
    assert client.get("/fhir/Patient").json()["total"] == 0


def test_conditional_references_and_if_none_exist(client: TestClient) -> None:
    client.put("/fhir/Patient/lan", json={**lan(), "id": "lan"}, headers=JSON)
    bundle = _tx(
        {
            "fullUrl": "urn:uuid:p",
            "resource": lan(),
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={CCCD}|001185012345",
            },
        },
        {
            "resource": hba1c(f"Patient?identifier={CCCD}|001185012345"),
            "request": {"method": "POST", "url": "Observation"},
        },
        {"resource": hba1c("urn:uuid:p", 6.5), "request": {"method": "POST", "url": "Observation"}},
    )
    r = client.post("/fhir", json=bundle, headers=JSON)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert entries[0]["response"]["status"] == "200 OK"
    found = client.get("/fhir/Observation", params={"subject": "Patient/lan"}).json()
    assert found["total"] == 2


def test_deletes_run_before_creates_and_gets_see_the_result(client: TestClient) -> None:
    client.put("/fhir/Patient/old", json={**lan(), "id": "old"}, headers=JSON)
    bundle = _tx(
        {"request": {"method": "GET", "url": "Patient/old"}},
        {
            "fullUrl": "urn:uuid:x",
            "resource": lan(),
            "request": {"method": "POST", "url": "Patient"},
        },
        {"request": {"method": "DELETE", "url": "Patient/old"}},
    )
    r = client.post("/fhir", json=bundle, headers=JSON)
    assert r.status_code == 404 or r.status_code == 410, r.text
    assert client.get("/fhir/Patient/old").status_code == 200


def test_a_bundle_that_is_not_a_transaction_or_batch_is_400(client: TestClient) -> None:
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"}, headers=JSON)
    assert r.status_code == 400
    r = client.post("/fhir", json=_tx({"resource": lan()}), headers=JSON)
    assert r.status_code == 400
    assert "Bundle.entry[0]" in r.json()["issue"][0]["expression"][0]


def test_put_entries_update_existing_resources_and_honour_if_match(client: TestClient) -> None:
    client.put("/fhir/Patient/a", json={**lan(), "id": "a"}, headers=JSON)
    client.put("/fhir/Patient/b", json={**lan(), "id": "b"}, headers=JSON)
    ok = _tx(
        {
            "resource": {**lan(), "id": "a", "gender": "other"},
            "request": {"method": "PUT", "url": "Patient/a", "ifMatch": 'W/"1"'},
        },
        {"resource": {**lan(), "id": "c"}, "request": {"method": "PUT", "url": "Patient/c"}},
    )
    r = client.post("/fhir", json=ok, headers=JSON)
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["200 OK", "201 Created"]
    stale = _tx(
        {
            "resource": {**lan(), "id": "b", "gender": "other"},
            "request": {"method": "PUT", "url": "Patient/b"},
        },
        {
            "resource": {**lan(), "id": "a", "gender": "male"},
            "request": {"method": "PUT", "url": "Patient/a", "ifMatch": 'W/"1"'},
        },
    )
    r = client.post("/fhir", json=stale, headers=JSON)
    assert r.status_code == 412
    assert client.get("/fhir/Patient/b").json()["gender"] == "female"
    assert client.get("/fhir/Patient/a").json()["gender"] == "other"


def test_the_transaction_response_is_itself_a_valid_bundle(client: TestClient) -> None:
    bundle = _tx(
        {
            "fullUrl": "urn:uuid:1",
            "resource": lan(),
            "request": {"method": "POST", "url": "Patient"},
        },
        {"resource": hba1c("urn:uuid:1"), "request": {"method": "POST", "url": "Observation"}},
    )
    response = client.post("/fhir", json=bundle, headers=JSON).json()
    assert response["entry"][0]["response"]["lastModified"].endswith("Z")
    r = client.post("/fhir/$validate", json=response, headers=JSON)
    errors = [i for i in r.json()["issue"] if i["severity"] in ("error", "fatal")]
    assert errors == []
