"""Security events (sign-ins, tokens, revocations, refused tokens and requests) are in the
audit trail as AuditEvents, with the same facts as auth_events."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.audit.conftest import agent, flushed
from tests.smart import (
    CITIZEN_PASSWORD,
    authorize_params,
    backend_token,
    bearer,
    citizen_code,
    exchange,
    page_state,
    pkce,
    register_app,
    register_backend,
    server_of,
    sign_in,
)


def security(api: TestClient, kind: str) -> list[dict[str, Any]]:
    """The security AuditEvents of `kind`, as an operator reads them."""
    flushed(api)
    client_id, private = register_backend(api, scope="system/*.rs vnehr/admin", facility=None)
    answer = backend_token(api, client_id, private, "system/*.rs vnehr/admin")
    headers = bearer(answer.json()["access_token"])
    found = api.get("/fhir/AuditEvent", params={"subtype": kind, "_count": "1000"}, headers=headers)
    assert found.status_code == 200, found.text
    return [e["resource"] for e in found.json().get("entry", [])]


def codes(event: dict[str, Any]) -> list[str]:
    return [c["code"] for c in event["subtype"]]


def test_tokens_issued_and_refused_are_recorded(api: TestClient) -> None:
    client_id, private = register_backend(api, scope="system/Patient.rs", facility="org-a")
    assert backend_token(api, client_id, private, "system/Patient.rs").status_code == 200
    assert backend_token(api, client_id, private, "system/Nothing.rs").status_code == 400
    found = [e for e in security(api, "token") if _client(e) == client_id]
    assert sorted(e["outcome"] for e in found) == ["0", "4"]
    for event in found:
        assert event["type"]["code"] == "110114"
        assert codes(event) == ["ITI-71", "token"]
        assert agent(event, "PROV")["who"] == {"reference": "Organization/org-a"}
    (events_row,) = [
        e for e in server_of(api).auth.service.events.recent("token") if e.client_id == client_id
    ][:1]
    numbers = {e["entity"][0]["what"]["identifier"]["value"] for e in found}
    assert str(events_row.event) in numbers  # the same event as auth_events'


def test_sign_ins_right_and_wrong_are_recorded(api: TestClient, people: dict[str, Any]) -> None:
    client_id, _ = register_app(api)
    _, challenge = pkce()
    page = api.get("/auth/authorize", params=authorize_params(client_id, "patient/*.rs", challenge))
    wrong = api.post(
        "/auth/authorize/login",
        data={"state": page_state(page.text), "username": people["cccd"], "password": "đoán"},
    )
    assert wrong.status_code == 401
    sign_in(
        api, client_id, username=people["cccd"], password=CITIZEN_PASSWORD, scope="patient/*.rs"
    )
    found = security(api, "login")
    assert sorted(e["outcome"] for e in found) == ["0", "4"]
    for event in found:
        assert codes(event) == ["110122", "login"]
        assert agent(event, "110153")["network"]["address"] == "testclient"
    failed = next(e for e in found if e["outcome"] == "4")
    assert failed["outcomeDesc"] == "password"


def test_a_revocation_is_a_logout(api: TestClient, people: dict[str, Any]) -> None:
    client_id, code, verifier = citizen_code(
        api, people, "launch/patient offline_access patient/*.rs"
    )
    tokens = exchange(api, client_id, code, verifier).json()
    revoked = api.post(
        "/auth/revoke", data={"token": tokens["refresh_token"], "client_id": client_id}
    )
    assert revoked.status_code == 200
    (event,) = security(api, "revoke")
    assert codes(event) == ["110123", "revoke"]
    assert event["outcome"] == "0"


def test_refused_tokens_and_requests_are_recorded(api: TestClient, people: dict[str, Any]) -> None:
    assert api.get("/fhir/Patient", headers=bearer("not-a-token")).status_code == 401
    client_id, private = register_backend(api, scope="system/Patient.rs", facility="org-a")
    headers = bearer(
        backend_token(api, client_id, private, "system/Patient.rs").json()["access_token"]
    )
    assert api.get("/fhir/Observation", headers=headers).status_code == 403
    (invalid,) = security(api, "invalid-token")
    assert (invalid["outcome"], codes(invalid)) == ("4", ["110122", "invalid-token"])
    assert agent(invalid, "110153")["network"]["address"] == "testclient"
    (denied,) = security(api, "access-denied")
    assert denied["type"]["code"] == "110113"  # Security Alert
    assert _client(denied) == client_id
    details = {d["type"]: d["valueString"] for d in denied["entity"][0]["detail"]}
    assert details["path"] == "Observation" and details["reason"] == "forbidden"


def _client(event: dict[str, Any]) -> str | None:
    who = agent(event, "110153")["who"]
    value = who.get("identifier", {}).get("value")
    return str(value) if value is not None else None
