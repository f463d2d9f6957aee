"""The admin API: operators register clients and accounts, facilities issue citizens'
security codes; each needs its scope."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from tests.smart import bearer, example_keys, server_of, system_token

CCCD = "001185012345"


def test_an_operator_registers_a_hospital_system_and_it_can_get_tokens(api: TestClient) -> None:
    operator = bearer(system_token(api, scope="vnehr/admin"))
    public, _ = example_keys("ES384")
    created = api.post(
        "/auth/admin/clients",
        json={
            "client_name": "HIS Bệnh viện Chợ Rẫy",
            "kind": "backend",
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": "system/Observation.rs",
            "facility": "org-choray",
            "jwks": public,
        },
        headers=operator,
    )
    assert created.status_code == 201, created.text
    assert created.json()["facility"] == "org-choray"
    listed = api.get("/auth/admin/clients", headers=operator).json()
    assert created.json()["client_id"] in {c["client_id"] for c in listed}


def test_a_registration_with_a_private_key_is_refused(api: TestClient) -> None:
    operator = bearer(system_token(api, scope="vnehr/admin"))
    private = (Path(__file__).parent / "data" / "RS384.private.json").read_text()
    import json

    refused = api.post(
        "/auth/admin/clients",
        json={
            "client_name": "careless",
            "kind": "backend",
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": "system/*.rs",
            "jwks": json.loads(private),
        },
        headers=operator,
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client_metadata"


def test_the_admin_api_needs_the_admin_scope(api: TestClient) -> None:
    clinical = bearer(system_token(api, scope="system/*.cruds"))
    assert api.get("/auth/admin/clients", headers=clinical).status_code == 403
    assert api.get("/auth/admin/clients").status_code == 401
    kinds = [e.detail.get("reason") for e in server_of(api).auth.service.events.recent("request")]
    assert kinds[:2] == ["token", "scope"]


def test_an_operator_creates_a_practitioner_account(api: TestClient) -> None:
    operator = bearer(system_token(api, scope="vnehr/admin"))
    created = api.post(
        "/auth/admin/accounts",
        json={
            "kind": "practitioner",
            "username": "bs.hoa",
            "password": "mot-mat-khau-dai-du",
            "name": "BS Nguyễn Thị Hoa",
            "fhirUser": "Practitioner/hoa",
            "facility": "org-a",
        },
        headers=operator,
    )
    assert created.status_code == 201, created.text
    assert (
        server_of(api).auth.accounts.authenticate("bs.hoa", "mot-mat-khau-dai-du").facility
        == "org-a"
    )
    weak = api.post(
        "/auth/admin/accounts",
        json={"kind": "operator", "username": "op", "password": "123"},
        headers=operator,
    )
    assert weak.status_code == 400


def test_a_facility_issues_a_printed_security_code_and_the_citizen_activates(
    api: TestClient,
) -> None:
    facility = bearer(system_token(api, scope="vnehr/activation"))
    issued = api.post(
        "/auth/admin/activation-codes", json={"cccd": CCCD, "channel": "print"}, headers=facility
    )
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    page = api.get("/auth/activate?lang=en")
    from tests.smart import page_state

    done = api.post(
        "/auth/activate",
        data={
            "state": page_state(page.text),
            "cccd": CCCD,
            "code": code,
            "password": "Lan-mat-khau-moi-2026",
            "password2": "Lan-mat-khau-moi-2026",
        },
    )
    assert done.status_code == 200, done.text[:1000]
    assert (
        server_of(api).auth.accounts.authenticate(CCCD, "Lan-mat-khau-moi-2026").kind == "citizen"
    )
    bad = api.post(
        "/auth/admin/activation-codes", json={"cccd": "123", "channel": "print"}, headers=facility
    )
    assert bad.status_code == 400
