"""Bad input never hurts: a clear OperationOutcome, the right 4xx, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.people import lan
from vnehr.settings import Settings

JSON = {"Content-Type": "application/fhir+json"}


def _assert_outcome(r, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")
    assert body["issue"][0]["diagnostics"]
    return body


def test_malformed_json_is_400_with_the_position(client: TestClient) -> None:
    r = client.post("/fhir/Patient", content=b'{"resourceType": "Patient",', headers=JSON)
    body = _assert_outcome(r, 400)
    assert "line 1" in body["issue"][0]["diagnostics"]


def test_unknown_elements_and_wrong_types_name_their_location(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json={**lan(), "favouriteColour": "blue"}, headers=JSON)
    body = _assert_outcome(r, 400)
    assert any(
        "Patient.favouriteColour" in e for i in body["issue"] for e in i.get("expression", [])
    )
    r = client.post("/fhir/Patient", json={**lan(), "birthDate": 1985}, headers=JSON)
    body = _assert_outcome(r, 400)
    assert any("Patient.birthDate" in e for i in body["issue"] for e in i.get("expression", []))
    assert client.get("/fhir/Patient").json()["total"] == 0


def test_a_body_that_is_not_an_object(client: TestClient) -> None:
    _assert_outcome(client.post("/fhir/Patient", content=b"[1,2]", headers=JSON), 400)
    _assert_outcome(client.post("/fhir/Patient", content=b"", headers=JSON), 400)


def test_xml_is_refused_clearly(client: TestClient) -> None:
    r = client.post(
        "/fhir/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    _assert_outcome(r, 415)
    _assert_outcome(client.get("/fhir/metadata", params={"_format": "xml"}), 406)
    _assert_outcome(client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}), 406)
    assert client.get("/fhir/metadata", params={"_format": "json"}).status_code == 200


def test_wrong_methods_are_405(client: TestClient) -> None:
    _assert_outcome(client.delete("/fhir/metadata"), 405)
    _assert_outcome(client.put("/fhir", json=lan(), headers=JSON), 405)


def test_invalid_search_values_are_400(client: TestClient) -> None:
    outcome = _assert_outcome(client.get("/fhir/Patient", params={"birthdate": "not-a-date"}), 400)
    assert outcome["issue"][0]["expression"] == ["birthdate"]
    _assert_outcome(client.get("/fhir/Patient", params={"birthdate": "xx2024"}), 400)
    _assert_outcome(client.get("/fhir/Observation", params={"value-quantity": "big"}), 400)


def test_unknown_search_parameters_are_reported_or_rejected_when_strict(
    client: TestClient,
) -> None:
    lenient = client.get("/fhir/Patient", params={"nonsense": "x"})
    assert lenient.status_code == 200
    outcome = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["issue"][0]["expression"] == ["nonsense"]
    assert "nonsense" not in lenient.json()["link"][0]["url"]
    strict = client.get(
        "/fhir/Patient", params={"nonsense": "x"}, headers={"Prefer": "handling=strict"}
    )
    assert _assert_outcome(strict, 400)["issue"][0]["expression"] == ["nonsense"]


@pytest.fixture
def small_client(database_url: str):  # type: ignore[no-untyped-def]
    from vnehr.app import create_app

    settings = Settings(database_url=database_url, dev=True, max_body_bytes=2048)
    with TestClient(create_app(settings)) as c:
        yield c


def test_oversized_bodies_are_413(small_client: TestClient) -> None:
    big = {**lan(), "name": [{"text": "x" * 5000}]}
    _assert_outcome(small_client.post("/fhir/Patient", json=big, headers=JSON), 413)


def test_without_dev_mode_no_data_is_served_without_a_token(
    database_url: str, tmp_path: Path
) -> None:
    from tests.smart import open_client, secure_settings

    for c in open_client(secure_settings(database_url, tmp_path)):
        _assert_outcome(c.get("/fhir/Patient"), 401)
        _assert_outcome(c.get("/fhir/Patient", headers={"Authorization": "Bearer nonsense"}), 401)
        _assert_outcome(c.post("/fhir", json={"resourceType": "Bundle", "type": "batch"}), 401)
        assert c.get("/fhir/metadata").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # nesting deep enough to exhaust a recursive parser
        b'{"resourceType": "Patient", "name": [{"family": "\xff\xfe"}]}',  # not UTF-8
        b'{"resourceType": "Patient", "id": 12}',
        b'{"resourceType": "Patient", "birthDate": "1985-02-30"}',
        b'{"resourceType": "Patient", "managingOrganization": {"reference": "not a reference"}}',
        b'{"resourceType": "Patient", "contained": [{"resourceType": "Nonsense"}]}',
        b'{"resourceType": "Patient", "link": [{"type": "seealso"}]}',  # link.other is required
    ],
)
def test_hostile_or_broken_bodies_are_4xx_and_store_nothing(
    client: TestClient, body: bytes
) -> None:
    r = client.post("/fhir/Patient", content=body, headers=JSON)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient").json()["total"] == 0


def test_a_byte_order_mark_is_tolerated(client: TestClient) -> None:
    r = client.post(
        "/fhir/Patient", content=b"\xef\xbb\xbf" + b'{"resourceType": "Patient"}', headers=JSON
    )
    assert r.status_code == 201
