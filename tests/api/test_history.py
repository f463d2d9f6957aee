"""_history at instance, type and system level, with _since, _at, _count and paging."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from tests.people import duc, lan

JSON = {"Content-Type": "application/fhir+json"}


def test_instance_history_lists_versions_newest_first(client: TestClient) -> None:
    for gender in ("female", "other", "unknown"):
        client.put("/fhir/Patient/p", json={**lan(), "id": "p", "gender": gender}, headers=JSON)
    body = client.get("/fhir/Patient/p/_history").json()
    assert body["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in body["entry"]] == ["3", "2", "1"]
    assert body["entry"][0]["response"]["etag"] == 'W/"3"'


def test_type_and_system_history_page_with_next_links(client: TestClient) -> None:
    for i in range(5):
        client.put(f"/fhir/Patient/p{i}", json={**lan(), "id": f"p{i}"}, headers=JSON)
    client.post("/fhir/Patient", json=duc(), headers=JSON)
    page = client.get("/fhir/Patient/_history", params={"_count": "4"}).json()
    assert len(page["entry"]) == 4
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    rest = client.get(nxt.replace("http://testserver", "")).json()
    assert len(rest["entry"]) == 2
    assert not any(link["relation"] == "next" for link in rest["link"])
    everything = client.get("/fhir/_history").json()
    # ... and the golden Persons of the master patient index, which follow Patient writes.
    kinds = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert kinds.count("Patient") == 6
    assert set(kinds) == {"Patient", "Person"}


def test_since_excludes_older_versions(client: TestClient) -> None:
    client.put("/fhir/Patient/old", json={**lan(), "id": "old"}, headers=JSON)
    time.sleep(0.01)
    r = client.put("/fhir/Patient/new", json={**lan(), "id": "new"}, headers=JSON)
    since = r.json()["meta"]["lastUpdated"]
    body = client.get("/fhir/_history", params={"_since": since}).json()
    # (Person: the golden record the master patient index keeps of each Patient's person.)
    found = [e["resource"] for e in body["entry"] if e["resource"]["resourceType"] != "Person"]
    assert [r["id"] for r in found] == ["new"]


def test_at_returns_the_version_current_at_that_time(client: TestClient) -> None:
    first = client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON).json()
    time.sleep(0.01)
    client.put("/fhir/Patient/p", json={**lan(), "id": "p", "gender": "other"}, headers=JSON)
    body = client.get(
        "/fhir/Patient/p/_history", params={"_at": first["meta"]["lastUpdated"]}
    ).json()
    assert [e["resource"]["meta"]["versionId"] for e in body["entry"]] == ["1"]


def test_bad_history_parameters_are_400(client: TestClient) -> None:
    assert client.get("/fhir/_history", params={"_since": "yesterday"}).status_code == 400
    assert client.get("/fhir/_history", params={"_count": "-1"}).status_code == 400
    assert client.get("/fhir/_history", params={"_bogus": "1"}).status_code == 400
    assert client.get("/fhir/Patient/unknown/_history").status_code == 404


def test_history_and_search_bundles_are_valid_fhir(client: TestClient) -> None:
    client.put("/fhir/Patient/p", json={**lan(), "id": "p"}, headers=JSON)
    client.delete("/fhir/Patient/p")
    client.post("/fhir/Patient", json=duc(), headers=JSON)
    for bundle in (client.get("/fhir/_history").json(), client.get("/fhir/Patient").json()):
        r = client.post("/fhir/$validate", json=bundle, headers=JSON)
        errors = [i for i in r.json()["issue"] if i["severity"] in ("error", "fatal")]
        assert errors == [], bundle["type"]
