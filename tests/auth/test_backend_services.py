"""SMART Backend Services: client_credentials with private_key_jwt, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.smart import (
    ASSERTION_TYPE,
    FHIR,
    assertion,
    backend_token,
    bearer,
    open_client,
    register_backend,
    secure_settings,
    server_of,
)


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    yield from open_client(secure_settings(database_url, tmp_path))


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_hospital_system_gets_a_token_with_a_signed_assertion(api: TestClient, alg: str) -> None:
    client_id, private = register_backend(
        api, alg=alg, scope="system/Patient.rs system/Observation.rs"
    )
    response = backend_token(api, client_id, private, "system/Patient.rs", alg)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "system/Patient.rs"
    assert 0 < body["expires_in"] <= 600
    assert response.headers["cache-control"] == "no-store"
    read = api.get("/fhir/Patient", headers=bearer(body["access_token"]))
    assert read.status_code == 200, read.text


def test_it_grants_only_the_scopes_the_client_is_registered_for(api: TestClient) -> None:
    client_id, private = register_backend(api, scope="system/Observation.rs")
    body = backend_token(
        api, client_id, private, "system/Observation.rs system/Patient.cruds"
    ).json()
    assert body["scope"] == "system/Observation.rs"
    refused = backend_token(api, client_id, private, "system/Patient.cruds")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"


def test_it_refuses_a_replayed_client_assertion(api: TestClient) -> None:
    client_id, private = register_backend(api)
    signed = assertion(client_id, private, "RS384")
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    }
    assert api.post("/auth/token", data=form).status_code == 200
    replay = api.post("/auth/token", data=form)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"
    events = server_of(api).auth.service.events.recent("token")
    assert events[0].outcome == "failure"
    assert events[0].detail["reason"] == "replay"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lifetime": 301}, "lifetime"),
        ({"lifetime": -10}, "expired"),
        ({"aud": FHIR}, "audience"),
        ({"sub": "someone-else"}, "iss-sub"),
    ],
)
def test_it_refuses_an_assertion_that_breaks_a_rule(
    api: TestClient, change: dict[str, object], reason: str
) -> None:
    client_id, private = register_backend(api)
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(client_id, private, "RS384", **change),  # type: ignore[arg-type]
    }
    response = api.post("/auth/token", data=form)
    assert response.status_code == 401
    assert server_of(api).auth.service.events.recent("token")[0].detail["reason"] == reason


def test_it_refuses_an_assertion_signed_with_another_facilitys_key(api: TestClient) -> None:
    a, _ = register_backend(api, alg="RS384", facility="org-a")
    b, b_private = register_backend(api, alg="ES384", facility="org-b")
    # Facility B's system claims to be facility A's client, signing with its own key.
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(a, b_private, "ES384"),
    }
    response = api.post("/auth/token", data=form)
    assert response.status_code == 401
    assert server_of(api).auth.service.events.recent("token")[0].detail["reason"] == "signature"
    assert b != a


def test_the_fhir_api_refuses_a_request_without_a_token(api: TestClient) -> None:
    response = api.get("/fhir/Patient")
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers["www-authenticate"].startswith('Bearer realm="vnehr"')
    assert api.get("/fhir/metadata").status_code == 200
