"""PUT: update, update-as-create, If-Match, conditional update."""

from __future__ import annotations

import threading

from starlette.testclient import TestClient

from tests.people import CCCD, lan

JSON = {"Content-Type": "application/fhir+json"}


def test_update_as_create_with_a_client_chosen_id(client: TestClient) -> None:
    r = client.put("/fhir/Patient/lan-1", json={**lan(), "id": "lan-1"}, headers=JSON)
    assert r.status_code == 201
    r = client.put(
        "/fhir/Patient/lan-1", json={**lan(), "id": "lan-1", "gender": "other"}, headers=JSON
    )
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "2"
    assert r.headers["Location"].endswith("/Patient/lan-1/_history/2")


def test_the_body_id_must_match_the_url(client: TestClient) -> None:
    r = client.put("/fhir/Patient/a", json={**lan(), "id": "b"}, headers=JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["id"]
    r = client.put("/fhir/Patient/a", json=lan(), headers=JSON)
    assert r.status_code == 400


def test_a_stale_if_match_is_rejected_with_412(client: TestClient) -> None:
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    r = client.put(
        "/fhir/Patient/p", json={**lan(), "id": "p"}, headers={**JSON, "If-Match": 'W/"1"'}
    )
    assert r.status_code == 412
    r = client.put(
        "/fhir/Patient/p", json={**lan(), "id": "p"}, headers={**JSON, "If-Match": 'W/"2"'}
    )
    assert r.status_code == 200
    r = client.put(
        "/fhir/Patient/p", json={**lan(), "id": "p"}, headers={**JSON, "If-Match": "garbage"}
    )
    assert r.status_code == 400


def test_two_concurrent_updates_with_one_if_match_exactly_one_wins(client: TestClient) -> None:
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def put(gender: str) -> None:
        barrier.wait()
        r = client.put(
            "/fhir/Patient/p",
            json={**lan(), "id": "p", "gender": gender},
            headers={**JSON, "If-Match": 'W/"1"'},
        )
        statuses.append(r.status_code)

    threads = [
        threading.Thread(target=put, args=(g,)) for g in ("male", "other", "unknown", "female")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 412, 412, 412]
    assert client.get("/fhir/Patient/p").json()["meta"]["versionId"] == "2"


def test_conditional_update_creates_then_updates_the_match(client: TestClient) -> None:
    url = f"/fhir/Patient?identifier={CCCD}|001185012345"
    r = client.put(url, json=lan(), headers=JSON)
    assert r.status_code == 201
    pid = r.json()["id"]
    r = client.put(url, json={**lan(), "gender": "other"}, headers=JSON)
    assert r.status_code == 200
    assert r.json()["id"] == pid
    assert r.json()["meta"]["versionId"] == "2"


def test_conditional_update_with_several_matches_is_412(client: TestClient) -> None:
    client.post("/fhir/Patient", json=lan(), headers=JSON)
    client.post("/fhir/Patient", json=lan(), headers=JSON)
    r = client.put(f"/fhir/Patient?identifier={CCCD}|001185012345", json=lan(), headers=JSON)
    assert r.status_code == 412
