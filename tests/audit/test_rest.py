"""Every FHIR interaction leaves an AuditEvent (IHE BALP): reads, searches with the patients
they found, writes, histories, operations, batches, transactions and failures."""

from __future__ import annotations

import base64
from typing import Any

from starlette.testclient import TestClient

from tests.audit.conftest import agent, entities, flushed, subtype, trail
from tests.people import CCCD, duc, hba1c, lan
from tests.smart import server_of
from vnehr.app import Server
from vnehr.interactions.exchange import FhirRequest
from vnehr.operations.registry import Operation


def create(client: TestClient, resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def people(client: TestClient) -> dict[str, str]:
    ids = {"lan": create(client, lan()), "duc": create(client, duc())}
    ids["lan_obs"] = create(client, hba1c(f"Patient/{ids['lan']}"))
    ids["duc_obs"] = create(client, hba1c(f"Patient/{ids['duc']}", 6.1))
    return ids


def test_a_read_is_recorded_with_the_patient_the_resource_and_the_caller(
    client: TestClient,
) -> None:
    ids = people(client)
    assert client.get(f"/fhir/Observation/{ids['lan_obs']}").status_code == 200
    (event,) = trail(client, patient=ids["lan"], subtype="read")
    assert (event["action"], event["outcome"]) == ("R", "0")
    assert entities(event, "1") == [f"Patient/{ids['lan']}"]
    assert entities(event, "4") == [f"Observation/{ids['lan_obs']}/_history/1"]
    assert event["meta"]["profile"][0].endswith("IHE.BasicAudit.PatientRead")
    assert agent(event, "110153")["network"]["address"] == "testclient"
    assert event["source"]["site"] == "http://testserver/fhir"


def test_a_search_is_recorded_once_for_each_patient_it_found_with_its_query(
    client: TestClient,
) -> None:
    ids = people(client)
    found = client.get("/fhir/Observation", params={"code": "http://loinc.org|4548-4"})
    assert len(found.json()["entry"]) == 2
    events = trail(client, subtype="search-type")
    searches = [e for e in events if entities(e, "1")]
    assert sorted(entities(e, "1")[0] for e in searches) == sorted(
        [f"Patient/{ids['lan']}", f"Patient/{ids['duc']}"]
    )
    for event in searches:
        assert entities(event, "4") == []  # BALP: the query and the patient, not the data
        query = next(e for e in event["entity"] if e["role"]["code"] == "24")
        text = base64.b64decode(query["query"]).decode()
        assert text == "Observation?code=http%3A%2F%2Floinc.org%7C4548-4"


def test_a_search_by_post_records_its_form_parameters(client: TestClient) -> None:
    ids = people(client)
    response = client.post(
        "/fhir/Observation/_search",
        content=f"subject=Patient/{ids['duc']}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    (event,) = trail(client, patient=ids["duc"], subtype="search-type")
    query = next(e for e in event["entity"] if e["role"]["code"] == "24")
    assert f"subject=Patient/{ids['duc']}" in base64.b64decode(query["query"]).decode()


def test_writes_are_recorded_with_the_patient_even_a_deletion(client: TestClient) -> None:
    ids = people(client)
    obs_url = f"/fhir/Observation/{ids['lan_obs']}"
    updated = {**hba1c(f"Patient/{ids['lan']}", 7.9), "id": ids["lan_obs"]}
    assert client.put(obs_url, json=updated).status_code == 200
    patch = [{"op": "replace", "path": "/status", "value": "amended"}]
    headers = {"Content-Type": "application/json-patch+json"}
    assert (
        client.patch(obs_url, content=str(patch).replace("'", '"'), headers=headers).status_code
        == 200
    )
    assert client.delete(obs_url).status_code in (200, 204)
    events = trail(client, patient=ids["lan"], entity=f"Observation/{ids['lan_obs']}")
    kinds = sorted(
        (subtype(e), e["action"], entities(e, "4")[0].rsplit("/", 1)[-1]) for e in events
    )
    assert kinds == [
        ("create", "C", "1"),
        ("delete", "D", "4"),
        ("patch", "U", "3"),
        ("update", "U", "2"),
    ]
    assert all(
        e["meta"]["profile"][0].startswith("https://profiles.ihe.net/ITI/BALP/") for e in events
    )


def test_a_write_is_in_the_trail_as_soon_as_it_is_answered(client: TestClient) -> None:
    """Writes are recorded in their own transaction, not queued."""
    store = server_of(client).store
    pid = create(client, lan())
    rows = store.rows("SELECT kind, outcome FROM audit_events WHERE patient = ?", [pid])
    assert rows == [("create", 0)]


def test_a_transaction_is_recorded_per_patient_and_a_failed_one_writes_none(
    client: TestClient,
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:lan",
                "resource": lan(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": hba1c("urn:uuid:lan"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": "urn:uuid:duc",
                "resource": duc(),
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    events = [e for e in trail(client, subtype="transaction") if entities(e, "1")]
    written = sorted(sorted(r.split("/")[0] for r in entities(e, "4")) for e in events)
    # Đức, and Lan with her HbA1c. Not the golden Persons the patient index wrote: those
    # are the platform's doing, and would name a person's other records (mpi_events keeps
    # their history).
    assert written == [["Observation", "Patient"], ["Patient"]]
    assert all(e["action"] == "E" and e["outcome"] == "0" for e in events)
    broken = {
        **bundle,
        "entry": [
            *bundle["entry"][:2],
            {
                "resource": {"resourceType": "Observation"},
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    assert client.post("/fhir", json=broken).status_code >= 400
    after = trail(client, subtype="transaction")
    failed = [e for e in after if e["outcome"] != "0"]
    assert len(failed) == 1 and entities(failed[0], "4") == []
    assert len(after) == len(events) + 1


def test_a_batch_records_each_write_and_what_it_read(client: TestClient) -> None:
    ids = people(client)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Observation/{ids['duc_obs']}"}},
            {
                "resource": hba1c(f"Patient/{ids['lan']}", 8.0),
                "request": {"method": "POST", "url": "Observation"},
            },
            {"request": {"method": "GET", "url": "Observation/missing"}},
        ],
    }
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200
    created = [
        e
        for e in trail(client, patient=ids["lan"], subtype="create")
        if any(r.startswith("Observation/") for r in entities(e, "4"))
    ]
    assert len(created) == 2  # her first HbA1c and the batch's
    batch = trail(client, subtype="batch")
    assert {entities(e, "1")[0] for e in batch} == {
        f"Patient/{ids['duc']}",
        f"Patient/{ids['lan']}",
    }


def test_history_vread_and_everything_are_recorded(client: TestClient) -> None:
    ids = people(client)
    assert client.get(f"/fhir/Observation/{ids['duc_obs']}/_history/1").status_code == 200
    assert client.get(f"/fhir/Observation/{ids['duc_obs']}/_history").status_code == 200
    assert client.get(f"/fhir/Patient/{ids['duc']}/$everything").status_code == 200
    assert client.get("/fhir/Observation/_history").status_code == 200
    events = trail(client, patient=ids["duc"])
    kinds = {subtype(e) for e in events}
    assert {"vread", "history-instance", "operation", "history-type"} <= kinds
    everything = next(e for e in events if subtype(e) == "operation")
    assert everything["subtype"][1]["code"] == "everything"


def test_a_refusal_is_a_minor_failure_and_a_crash_a_serious_one(client: TestClient) -> None:
    assert client.get("/fhir/Observation/not-there").status_code == 404
    assert client.post("/fhir/Observation", json={"resourceType": "Observation"}).status_code == 400

    def broken(*_: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    server_of(client).router.operations.register(
        Operation("explode", "urn:test", True, False, False, (), False, ("GET",), broken, "")
    )
    assert client.get("/fhir/$explode").status_code == 500
    events = trail(client, outcome="4,8")
    outcomes = {(subtype(e), e["outcome"]) for e in events}
    assert outcomes == {("read", "4"), ("create", "4"), ("operation", "8")}
    missing = next(e for e in events if subtype(e) == "read")
    assert missing["outcomeDesc"] == "Observation/not-there is not known"
    assert entities(missing, "4") == ["Observation/not-there"]


def test_the_capability_statement_is_not_recorded(client: TestClient) -> None:
    assert client.get("/fhir/metadata").status_code == 200
    flushed(client)
    assert server_of(client).store.rows("SELECT COUNT(*) FROM audit_events")[0][0] == 0


def test_audit_events_cannot_be_written_by_any_route(client: TestClient) -> None:
    event = {
        "resourceType": "AuditEvent",
        "id": "forged",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "recorded": "2026-01-01T00:00:00Z",
        "agent": [{"who": {"display": "nobody"}, "requestor": True}],
        "source": {"observer": {"display": "a forger"}},
    }
    for method, path in (
        ("POST", "AuditEvent"),
        ("PUT", "AuditEvent/forged"),
        ("DELETE", "AuditEvent/forged"),
        ("PATCH", "AuditEvent/forged"),
    ):
        response = client.request(method, f"/fhir/{path}", json=event)
        assert response.status_code == 405, (method, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": event, "request": {"method": "POST", "url": "AuditEvent"}}],
    }
    assert client.post("/fhir", json=transaction).status_code == 405
    batch = {**transaction, "type": "batch"}
    answer = client.post("/fhir", json=batch).json()
    assert answer["entry"][0]["response"]["status"].startswith("405")
    # The attempts are recorded, as refusals; nothing was written.
    assert [e["outcome"] for e in trail(client, subtype="create")] == ["4"]
    assert [e["outcome"] for e in trail(client, subtype="transaction")] == ["4"]
    assert client.get("/fhir/AuditEvent/forged").status_code == 404


def test_the_trail_is_searched_by_date_agent_entity_and_paged(client: TestClient) -> None:
    ids = people(client)
    for _ in range(3):
        client.get(f"/fhir/Patient/{ids['lan']}")
    reads = trail(client, patient=ids["lan"], subtype="read")
    assert len(reads) == 3
    day = reads[0]["recorded"][:10]
    assert len(trail(client, patient=ids["lan"], subtype="read", date=day)) == 3
    assert trail(client, patient=ids["lan"], date=f"lt{day}") == []
    assert len(trail(client, entity=f"Patient/{ids['lan']}", subtype="read")) == 3
    assert trail(client, agent="Practitioner/nobody") == []
    first = client.get(
        "/fhir/AuditEvent", params={"patient": ids["lan"], "subtype": "read", "_count": "2"}
    ).json()
    assert len(first["entry"]) == 2
    following = next(x["url"] for x in first["link"] if x["relation"] == "next")
    second = client.get(following).json()
    seen = [e["resource"]["id"] for e in [*first["entry"], *second["entry"]]]
    assert sorted(seen) == sorted(e["id"] for e in reads)
    assert client.get("/fhir/AuditEvent", params={"colour": "red"}).status_code == 400
    assert client.get(
        "/fhir/Patient/" + ids["lan"] + "/AuditEvent", params={"subtype": "read"}
    ).json()["entry"]


def test_reading_the_trail_is_itself_recorded(client: TestClient) -> None:
    ids = people(client)
    trail(client, patient=ids["duc"])
    flushed(client)
    reads = trail(client, patient=ids["duc"], subtype="search-type")
    audit_reads = [
        e
        for e in reads
        if "AuditEvent" in next(x for x in e["entity"] if x["role"]["code"] == "24")["description"]
    ]
    assert audit_reads


def test_a_local_caller_without_a_token_is_recorded_without_an_agent(server: Server) -> None:
    created = server.router.handle(FhirRequest("POST", "Patient", resource=lan("001185000001")))
    assert created.status == 201
    pid = created.headers["Location"].split("/Patient/")[1].split("/")[0]
    found = server.router.handle(
        FhirRequest("GET", "Patient", query=[("identifier", f"{CCCD}|001185000001")])
    )
    assert found.status == 200
    assert server.audit is not None
    server.audit.flush()
    rows = server.store.rows(
        "SELECT kind, agent, client, role FROM audit_events WHERE patient = ? ORDER BY recorded",
        [pid],
    )
    assert rows == [("create", None, None, None), ("search-type", None, None, None)]
