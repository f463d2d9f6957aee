"""SMART Backend Services: client_credentials with private_key_jwt, on both backends."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from starlette.testclient import TestClient

from tests.smart import (
    ASSERTION_TYPE,
    FHIR,
    assertion,
    backend_token,
    bearer,
    example_keys,
    register_backend,
    server_of,
)


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


def test_v1_scopes_read_as_v2(api: TestClient) -> None:
    client_id, private = register_backend(api, scope="system/Observation.read system/Patient.*")
    body = backend_token(api, client_id, private, "system/Observation.read system/Patient.*")
    headers = bearer(body.json()["access_token"])
    assert api.get("/fhir/Observation", headers=headers).status_code == 200
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}}
    assert api.post("/fhir/Observation", json=obs, headers=headers).status_code == 403
    patient = {"resourceType": "Patient", "name": [{"family": "Nguyễn"}]}
    created = api.post("/fhir/Patient", json=patient, headers=headers)
    assert created.status_code == 201
    assert api.delete(f"/fhir/Patient/{created.json()['id']}", headers=headers).status_code == 204


def test_a_client_registered_with_a_jwks_uri_is_checked_with_the_keys_found_there(
    api: TestClient,
) -> None:
    public, private = example_keys("ES384")
    body = json.dumps(public).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    http = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{http.server_address[1]}/jwks.json"
        registered, _ = server_of(api).auth.service.clients.register(
            "HIS with a jwks_uri",
            kind="backend",
            auth_method="private_key_jwt",
            scopes="system/*.rs",
            jwks_uri=uri,
        )
        answer = backend_token(api, registered.client_id, private, "system/*.rs", "ES384")
        assert answer.status_code == 200, answer.text
        _, other = example_keys("RS384")
        forged = backend_token(api, registered.client_id, other, "system/*.rs", "RS384")
        assert forged.status_code == 401
    finally:
        http.shutdown()
        http.server_close()
