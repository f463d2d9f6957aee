"""Signing in through VNeID from the authorize page, end to end: vnehr's pages, a real
OpenID Connect provider on loopback standing in for VNeID, the token at the end."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from tests.auth.oidc_provider import OidcProvider
from tests.people import lan
from tests.smart import (
    APP_REDIRECT,
    authorize_params,
    bearer,
    exchange,
    open_client,
    page_state,
    pkce,
    register_app,
    secure_settings,
    system_token,
)


def test_a_citizen_signs_in_with_vneid_and_gets_her_own_record(
    database_url: str, tmp_path: Path, oidc_provider: OidcProvider
) -> None:
    oidc_provider.redirect_uri = "http://testserver/auth/vneid/callback"
    cccd = next(i["value"] for i in lan()["identifier"] if i["system"].endswith("national_id"))
    oidc_provider.set_user(cccd, "Nguyễn Thị Lan")
    settings = secure_settings(
        database_url,
        tmp_path,
        auth_login="password,vneid",
        vneid_issuer=oidc_provider.issuer,
        vneid_client_id=oidc_provider.client_id,
        vneid_client_secret=oidc_provider.client_secret,
    )
    for api in open_client(settings):
        admin = bearer(system_token(api))
        patient_id = api.post("/fhir/Patient", json=lan(), headers=admin).json()["id"]
        client_id, _ = register_app(api)
        verifier, challenge = pkce()
        params = authorize_params(
            client_id, "launch/patient patient/*.rs openid fhirUser", challenge
        )
        login = api.get("/auth/authorize", params=params)
        assert "/auth/vneid/start" in login.text
        start = api.get(
            "/auth/vneid/start", params={"state": page_state(login.text)}, follow_redirects=False
        )
        assert start.status_code == 303
        code, state = oidc_provider.authorize(start.headers["location"])
        consent = api.get("/auth/vneid/callback", params={"code": code, "state": state})
        assert consent.status_code == 200, consent.text[:1000]
        answer = api.post(
            "/auth/authorize/consent",
            data={"state": page_state(consent.text), "decision": "allow"},
            follow_redirects=False,
        )
        query = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        assert answer.headers["location"].startswith(APP_REDIRECT)
        token = exchange(api, client_id, query["code"], verifier).json()
        assert token["patient"] == patient_id
        own = api.get(f"/fhir/Patient/{patient_id}", headers=bearer(token["access_token"]))
        assert own.status_code == 200


def test_a_forged_vneid_answer_signs_no_one_in(
    database_url: str, tmp_path: Path, oidc_provider: OidcProvider
) -> None:
    oidc_provider.redirect_uri = "http://testserver/auth/vneid/callback"
    oidc_provider.misbehave("wrong-audience")
    settings = secure_settings(
        database_url,
        tmp_path,
        auth_login="vneid",
        vneid_issuer=oidc_provider.issuer,
        vneid_client_id=oidc_provider.client_id,
        vneid_client_secret=oidc_provider.client_secret,
    )
    for api in open_client(settings):
        client_id, _ = register_app(api)
        _, challenge = pkce()
        login = api.get(
            "/auth/authorize", params=authorize_params(client_id, "patient/*.rs", challenge)
        )
        start = api.get(
            "/auth/vneid/start", params={"state": page_state(login.text)}, follow_redirects=False
        )
        code, state = oidc_provider.authorize(start.headers["location"])
        refused = api.get("/auth/vneid/callback", params={"code": code, "state": state})
        assert refused.status_code == 401
        assert 'name="decision"' not in refused.text  # no consent page: no one signed in
        events = api.app.state.server.auth.service.events.recent("vneid")  # type: ignore[attr-defined]
        assert events[0].outcome == "failure"
        assert events[0].detail["reason"] == "audience"
