"""Discovery: SMART configuration, OpenID configuration, JWKS, the CapabilityStatement's
security section; signing-key rotation keeps tokens in flight valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from tests.smart import FHIR, backend_token, bearer, open_client, register_backend, secure_settings
from vnehr.auth.keys import SigningKeys
from vnehr.cli import main


@pytest.mark.parametrize(
    "where", ["/fhir/.well-known/smart-configuration", "/.well-known/smart-configuration"]
)
def test_the_smart_configuration_names_the_endpoints_and_what_is_supported(
    api: TestClient, where: str
) -> None:
    config = api.get(where).json()
    assert config["issuer"] == FHIR
    assert config["token_endpoint"] == "http://testserver/auth/token"
    assert config["authorization_endpoint"] == "http://testserver/auth/authorize"
    assert config["jwks_uri"] == "http://testserver/auth/jwks"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert {"launch-ehr", "launch-standalone", "permission-v1", "permission-v2"} <= set(
        config["capabilities"]
    )
    assert api.get(config["jwks_uri"].removeprefix("http://testserver")).status_code == 200


def test_the_openid_configuration_and_jwks_publish_public_keys_only(api: TestClient) -> None:
    config = api.get("/.well-known/openid-configuration").json()
    assert config["issuer"] == FHIR
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = api.get("/auth/jwks").json()["keys"]
    assert keys and all("d" not in k and "p" not in k and k["kid"] for k in keys)


def test_the_capability_statement_points_to_the_oauth_endpoints(api: TestClient) -> None:
    security = api.get("/fhir/metadata").json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris["token"] == "http://testserver/auth/token"
    assert uris["authorize"] == "http://testserver/auth/authorize"


def test_a_token_signed_before_a_key_rotation_still_works_after_it(
    database_url: str, tmp_path: Path
) -> None:
    settings = secure_settings(database_url, tmp_path)
    for api in open_client(settings):
        client_id, private = register_backend(api)
        token = backend_token(api, client_id, private, "system/*.rs").json()["access_token"]
    old_kid = SigningKeys.load(settings.auth_keys).kid
    rotated = CliRunner().invoke(main, ["auth", "keys", "rotate", "--file", settings.auth_keys])
    assert rotated.exit_code == 0, rotated.output
    keys = SigningKeys.load(settings.auth_keys)
    assert keys.kid != old_kid and len(keys.keys) == 2
    for api in open_client(settings):
        assert api.get("/fhir/Patient", headers=bearer(token)).status_code == 200
        fresh = backend_token(api, client_id, private, "system/*.rs").json()["access_token"]
        assert api.get("/fhir/Patient", headers=bearer(fresh)).status_code == 200
        assert {k["kid"] for k in api.get("/auth/jwks").json()["keys"]} == {old_kid, keys.kid}


def test_a_rotation_drops_keys_retired_longer_than_the_retention(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    SigningKeys.generate(now=1_000).save(path)
    second = SigningKeys.load(path).rotated(retain_seconds=600, now=2_000)
    third = second.rotated(retain_seconds=600, now=2_500)
    assert len(third.keys) == 3  # the first key was retired at 2,000: 500 s ago
    fourth = third.rotated(retain_seconds=600, now=3_000)
    assert [k.kid for k in fourth.keys[1:]] == [k.kid for k in third.keys[:2]]
