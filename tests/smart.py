"""SMART on FHIR test helpers: a production-mode server (authentication on), clients,
client assertions, PKCE, and the tokens they get. Used by tests/auth and the API tests."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from joserfc import jwk, jwt
from starlette.testclient import TestClient

from vnehr.app import Server, create_app
from vnehr.auth.keys import SigningKeys
from vnehr.settings import Settings

DATA = Path(__file__).parent / "auth" / "data"
BASE = "http://testserver"
FHIR = BASE + "/fhir"
TOKEN_URL = BASE + "/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def example_keys(alg: str) -> tuple[dict[str, Any], jwk.KeySet]:
    """The SMART example key pair for RS384 or ES384: (public JWK Set, private key set)."""
    public = json.loads((DATA / f"{alg}.public.json").read_text())
    private = jwk.KeySet.import_key_set(json.loads((DATA / f"{alg}.private.json").read_text()))
    return public, private


def secure_settings(database_url: str, tmp_path: Path, **changes: Any) -> Settings:
    keys = tmp_path / "signing-keys.json"
    if not keys.exists():
        SigningKeys.generate().save(keys)
    return Settings(database_url=database_url, dev=False, auth_keys=str(keys)).with_(**changes)


def open_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url=BASE) as c:
        yield c


def server_of(client: TestClient) -> Server:
    return client.app.state.server  # type: ignore[attr-defined,no-any-return]


def assertion(
    client_id: str,
    private: jwk.KeySet,
    alg: str,
    *,
    aud: str = TOKEN_URL,
    lifetime: int = 240,
    jti: str | None = None,
    now: float | None = None,
    **claims: Any,
) -> str:
    at = int(time.time() if now is None else now)
    key = next(k for k in private.keys if k.is_private)
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": at + lifetime,
        "jti": uuid.uuid4().hex if jti is None else jti,
        **claims,
    }
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, body, key, algorithms=[alg])


def register_backend(
    client: TestClient,
    *,
    alg: str = "RS384",
    scope: str = "system/*.cruds",
    facility: str | None = "org-a",
    client_id: str | None = None,
) -> tuple[str, jwk.KeySet]:
    public, private = example_keys(alg)
    registered, _ = server_of(client).auth.service.clients.register(
        f"Hospital system {facility}",
        kind="backend",
        auth_method="private_key_jwt",
        scopes=scope,
        facility=facility,
        jwks=public,
        client_id=client_id or f"his-{uuid.uuid4().hex[:8]}",
    )
    return registered.client_id, private


def backend_token(
    client: TestClient, client_id: str, private: jwk.KeySet, scope: str, alg: str = "RS384"
) -> Any:
    return client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client_id, private, alg),
        },
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


APP_REDIRECT = "https://app.example.vn/callback"
_STATE = re.compile(r'name="state" value="([^"]*)"')


def register_app(
    client: TestClient,
    *,
    scope: str = "openid fhirUser profile launch launch/patient offline_access "
    "patient/*.cruds user/*.cruds",
    auth_method: str = "none",
    redirect_uris: tuple[str, ...] = (APP_REDIRECT,),
) -> tuple[str, str | None]:
    registered, secret = server_of(client).auth.service.clients.register(
        "Sổ sức khỏe điện tử",
        kind="app",
        auth_method=auth_method,
        scopes=scope,
        redirect_uris=redirect_uris,
    )
    return registered.client_id, secret


def page_state(html: str) -> str:
    found = _STATE.search(html)
    assert found is not None, html[:2000]
    return found.group(1).replace("&#34;", '"').replace("&amp;", "&")


def authorize_params(client_id: str, scope: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": APP_REDIRECT,
        "scope": scope,
        "state": "app-state-1",
        "aud": FHIR,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def sign_in(
    client: TestClient,
    client_id: str,
    *,
    username: str,
    password: str,
    scope: str,
    totp: str | None = None,
    patient: str | None = None,
    **extra: str,
) -> tuple[str, str]:
    """The browser's part of the authorization code flow: (code, PKCE verifier)."""
    verifier, challenge = pkce()
    page = client.get(
        "/auth/authorize", params=authorize_params(client_id, scope, challenge, **extra)
    )
    assert page.status_code == 200, page.text[:2000]
    form = {"state": page_state(page.text), "username": username, "password": password}
    if totp:
        form["totp"] = totp
    consent = client.post("/auth/authorize/login", data=form)
    assert consent.status_code == 200, consent.text[:2000]
    decision = {"state": page_state(consent.text), "decision": "allow"}
    if patient:
        decision["patient"] = patient
    answer = client.post("/auth/authorize/consent", data=decision, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:2000]
    query = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    assert query["state"] == "app-state-1"
    return query["code"], verifier


def exchange(client: TestClient, client_id: str, code: str, verifier: str) -> Any:
    return client.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": APP_REDIRECT,
            "client_id": client_id,
        },
    )


def citizen_code(client: TestClient, people: dict[str, Any], scope: str) -> tuple[str, str, str]:
    """Nguyễn Thị Lan signs in to a health app registered for the occasion, asking for
    `scope`: (client_id, authorization code, PKCE verifier)."""
    client_id, _ = register_app(client)
    code, verifier = sign_in(
        client, client_id, username=people["cccd"], password=CITIZEN_PASSWORD, scope=scope
    )
    return client_id, code, verifier


def system_token(client: TestClient, scope: str = "system/*.cruds") -> str:
    client_id, private = register_backend(client, scope=scope)
    response = backend_token(client, client_id, private, scope)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def national_token(client: TestClient, scope: str = "system/*.cruds vnehr/national") -> str:
    """A national service's token: no facility, every record (vnehr.policy)."""
    client_id, private = register_backend(client, scope=scope, facility=None)
    response = backend_token(client, client_id, private, scope)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


CITIZEN_PASSWORD = "Mật-khẩu-của-Lan-2026"  # Nguyễn Thị Lan's
DOCTOR_PASSWORD = "bac-si-Duc-rat-an-toan"  # BS Đức's, a doctor at facility org-a


def seed_people(client: TestClient) -> dict[str, str]:
    """Nguyễn Thị Lan (a Patient and her citizen account), another patient, an Observation
    for each, and BS Đức, a doctor at facility org-a: ids by "lan", "other", "lan_obs",
    "other_obs", and Lan's CCCD as "cccd"."""
    from tests.people import CCCD, lan

    admin = bearer(system_token(client))
    ids: dict[str, str] = {}
    for key, patient in (("lan", lan()), ("other", lan("079214000123"))):
        created = client.post("/fhir/Patient", json=patient, headers=admin)
        assert created.status_code == 201, created.text
        ids[key] = created.json()["id"]
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "HbA1c"},
            "subject": {"reference": f"Patient/{ids[key]}"},
        }
        ids[f"{key}_obs"] = client.post("/fhir/Observation", json=obs, headers=admin).json()["id"]
    cccd = next(i["value"] for i in lan()["identifier"] if i["system"] == CCCD)
    accounts = server_of(client).auth.accounts
    accounts.create(
        "citizen",
        cccd,
        password=CITIZEN_PASSWORD,
        name="Nguyễn Thị Lan",
        fhir_user=f"Patient/{ids['lan']}",
    )
    accounts.create(
        "practitioner",
        "bs.duc",
        password=DOCTOR_PASSWORD,
        name="BS Đức",
        fhir_user="Practitioner/duc",
        facility="org-a",
    )
    ids["cccd"] = cccd
    return ids
