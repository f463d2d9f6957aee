"""Someone tries to get in: forged and broken tokens, replayed assertions, redirect tricks,
stolen codes and refresh tokens, guessing, facility confusion and scope overreach.

Every attack goes through the HTTP API, on both backends, and must fail closed with the
right status and leave a security event (auth_events) saying why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from joserfc import jwk, jwt
from starlette.testclient import TestClient

from tests.people import CCCD, lan
from tests.smart import (
    APP_REDIRECT,
    ASSERTION_TYPE,
    BASE,
    CITIZEN_PASSWORD,
    DOCTOR_PASSWORD,
    FHIR,
    assertion,
    authorize_params,
    backend_token,
    bearer,
    example_keys,
    exchange,
    open_client,
    page_state,
    pkce,
    register_app,
    register_backend,
    secure_settings,
    seed_people,
    server_of,
    sign_in,
    system_token,
)
from vnehr.auth.events import SecurityEvent
from vnehr.auth.keys import SigningKeys
from vnehr.settings import Settings

LAN_CCCD = "001185012345"  # Nguyễn Thị Lan's CCCD (tests/people.py)
LAN_PASSWORD = CITIZEN_PASSWORD
DUC_PASSWORD = DOCTOR_PASSWORD  # BS Đức, a doctor at facility org-a


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return secure_settings(database_url, tmp_path)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    yield from open_client(settings)


def last(api: TestClient, kind: str) -> SecurityEvent:
    """The latest security event of `kind`."""
    events = server_of(api).auth.service.events.recent(kind, limit=1)
    assert events, f"no {kind!r} event was recorded"
    return events[0]


def assert_refused(event: SecurityEvent, reason: str) -> None:
    assert event.outcome == "failure", event
    assert event.detail.get("reason") == reason, event


def mark(api: TestClient) -> int:
    """The number of the latest security event, to find the ones recorded after it."""
    latest = server_of(api).auth.service.events.recent(limit=1)
    return latest[0].event if latest else 0


def since(api: TestClient, before: int) -> list[SecurityEvent]:
    """The security events recorded after `mark` gave `before`, newest first."""
    return [e for e in server_of(api).auth.service.events.recent(limit=50) if e.event > before]


# -- forging access tokens by hand ------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_claims(**changes: Any) -> dict[str, Any]:
    """What the server puts in a backend service's access token; `None` drops a claim."""
    now = int(time.time())
    claims = {
        "iss": FHIR,
        "aud": FHIR,
        "sub": "his-forged",
        "client_id": "his-forged",
        "scope": "system/*.cruds",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "kind": "system",
        "facility": "org-a",
        **changes,
    }
    return {k: v for k, v in claims.items() if v is not None}


def signed(key: jwk.RSAKey, claims: dict[str, Any], **header: Any) -> str:
    head = {"alg": "RS256", "kid": key.kid, "typ": "at+jwt", **header}
    return jwt.encode(head, claims, key, algorithms=[head["alg"]])


def server_key(settings: Settings) -> jwk.RSAKey:
    """The server's own signing key, read from its key file as an operator could."""
    return SigningKeys.load(settings.auth_keys).current


def stranger_key(kid: str) -> jwk.RSAKey:
    return jwk.RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)


def hs256(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    """An HS256 JWT made by hand (joserfc refuses an RSA public key as an HMAC secret)."""
    signing_input = f"{b64json({'alg': 'HS256', 'kid': kid, 'typ': 'at+jwt'})}.{b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def public_jwk(api: TestClient) -> dict[str, Any]:
    keys: list[dict[str, Any]] = api.get("/auth/jwks").json()["keys"]
    return keys[0]


def public_pem(api: TestClient) -> bytes:
    pem: bytes = jwk.RSAKey.import_key(public_jwk(api)).as_pem(private=False)
    return pem


def real_token(api: TestClient, scope: str = "system/Patient.rs") -> str:
    return system_token(api, scope=scope)


def flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def alg_none(api: TestClient, settings: Settings) -> str:
    return f"{b64json({'alg': 'none', 'typ': 'at+jwt'})}.{b64json(token_claims())}."


def hs256_with_public_pem(api: TestClient, settings: Settings) -> str:
    return hs256(public_pem(api), token_claims(), public_jwk(api)["kid"])


def hs256_with_public_jwk(api: TestClient, settings: Settings) -> str:
    secret = json.dumps(public_jwk(api)).encode()
    return hs256(secret, token_claims(), public_jwk(api)["kid"])


def expired(api: TestClient, settings: Settings) -> str:
    past = int(time.time()) - 3600
    return signed(server_key(settings), token_claims(iat=past, nbf=past, exp=past + 600))


def not_yet_valid(api: TestClient, settings: Settings) -> str:
    later = int(time.time()) + 3600
    return signed(server_key(settings), token_claims(nbf=later, exp=later + 600))


def for_another_server(api: TestClient, settings: Settings) -> str:
    return signed(server_key(settings), token_claims(aud="https://other-hospital.example.vn/fhir"))


def from_another_issuer(api: TestClient, settings: Settings) -> str:
    return signed(server_key(settings), token_claims(iss="https://other-hospital.example.vn/fhir"))


def without_expiry(api: TestClient, settings: Settings) -> str:
    return signed(server_key(settings), token_claims(exp=None))


def tampered_signature(api: TestClient, settings: Settings) -> str:
    head, body, signature = real_token(api).split(".")
    # Not the last character: its low bits are padding, and changing them may not change
    # the signature's bytes.
    return f"{head}.{body}.{flip(signature, 10)}"


def tampered_payload(api: TestClient, settings: Settings) -> str:
    head, body, signature = real_token(api).split(".")
    claims = json.loads(unb64(body))
    claims["scope"] = "system/*.cruds"
    return f"{head}.{b64json(claims)}.{signature}"


def unknown_key_with_known_kid(api: TestClient, settings: Settings) -> str:
    kid = public_jwk(api)["kid"]
    return signed(stranger_key(kid), token_claims())


def key_in_the_header(api: TestClient, settings: Settings) -> str:
    """RFC 7515 `jwk` header injection: the token carries the key to check it with."""
    kid = public_jwk(api)["kid"]
    key = stranger_key(kid)
    return signed(key, token_claims(), jwk=key.as_dict(private=False))


def id_token(api: TestClient, settings: Settings) -> str:
    """A JWT the server did sign, but as an ID token (typ JWT), not an access token."""
    claims = token_claims()
    tokens = server_of(api).auth.tokens
    return str(tokens.sign(claims))


def page_state_token(api: TestClient, settings: Settings) -> str:
    """The signed state of the sign-in pages (typ authz) presented as an access token."""
    return str(server_of(api).auth.tokens.sign(token_claims(), typ="authz"))


FORGERIES: dict[str, tuple[Callable[[TestClient, Settings], str], str]] = {
    # name: (how to make the token, what the security event says about it)
    "alg-none": (alg_none, "not a valid signed JWT"),
    "hs256-with-the-public-key-pem": (hs256_with_public_pem, "not a valid signed JWT"),
    "hs256-with-the-public-jwk": (hs256_with_public_jwk, "not a valid signed JWT"),
    "expired": (expired, "not valid here"),
    "not-yet-valid": (not_yet_valid, "not valid here"),
    "for-another-server": (for_another_server, "not valid here"),
    "from-another-issuer": (from_another_issuer, "not valid here"),
    "without-expiry": (without_expiry, "not valid here"),
    "tampered-signature": (tampered_signature, "not a valid signed JWT"),
    "tampered-payload": (tampered_payload, "not a valid signed JWT"),
    "unknown-key-with-a-known-kid": (unknown_key_with_known_kid, "not a valid signed JWT"),
    "key-in-the-header": (key_in_the_header, "not a valid signed JWT"),
    "an-id-token": (id_token, "not a at+jwt token"),
    "the-sign-in-pages-state": (page_state_token, "not a at+jwt token"),
}


def test_a_token_forged_with_the_servers_own_key_is_accepted(
    api: TestClient, settings: Settings
) -> None:
    """The control for the forgeries below: each differs from this token in one thing."""
    token = signed(server_key(settings), token_claims())
    assert api.get("/fhir/Patient", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("name", FORGERIES)
def test_the_fhir_api_refuses_a_forged_or_broken_token(
    api: TestClient, settings: Settings, name: str
) -> None:
    make, why = FORGERIES[name]
    token = make(api, settings)
    response = api.get("/fhir/Patient", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="vnehr", error="invalid_token"'), challenge
    event = last(api, "request")
    assert_refused(event, "token")
    assert why in event.detail["why"], event.detail
    assert event.detail["path"] == "/fhir/Patient"


@pytest.mark.parametrize(
    "header",
    [
        b"Basic aGlzOnNlY3JldA==",
        b"Bearer",
        b"Bearer ",
        b"Token abc",
        b"Bearer a.b.c",
        "Bearer ☃".encode(),  # UTF-8 bytes in a header, as a raw client may send them
    ],
    ids=["basic", "bearer-alone", "bearer-blank", "other-scheme", "three-garbage-parts", "snowman"],
)
def test_the_fhir_api_refuses_an_authorization_header_that_is_not_a_bearer_token(
    api: TestClient, header: bytes
) -> None:
    response = api.get("/fhir/Patient", headers={b"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert_refused(last(api, "request"), "token")


def test_a_token_in_the_query_string_is_not_accepted(api: TestClient) -> None:
    # RFC 6750 2.3 lets a server accept ?access_token=; vnehr does not (URLs end up in logs).
    token = real_token(api)
    response = api.get("/fhir/Patient", params={"access_token": token})
    assert response.status_code == 401
    assert_refused(last(api, "request"), "token")


# -- client assertions at the token endpoint --------------------------------------------


def token_form(signed_assertion: str, scope: str = "system/*.rs") -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed_assertion,
    }


def assertion_claims(client_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": BASE + "/auth/token",
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
        **changes,
    }


def test_a_replayed_client_assertion_is_refused(api: TestClient) -> None:
    client_id, private = register_backend(api)
    form = token_form(assertion(client_id, private, "RS384"))
    assert api.post("/auth/token", data=form).status_code == 200
    replay = api.post("/auth/token", data=form)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"
    assert_refused(last(api, "token"), "replay")


def test_a_replayed_jti_is_refused_even_in_a_freshly_signed_assertion(api: TestClient) -> None:
    client_id, private = register_backend(api)
    first = assertion(client_id, private, "RS384", jti="jti-1")
    again = assertion(client_id, private, "RS384", jti="jti-1", lifetime=200)
    assert first != again
    assert api.post("/auth/token", data=token_form(first)).status_code == 200
    assert api.post("/auth/token", data=token_form(again)).status_code == 401
    assert_refused(last(api, "token"), "replay")


def _none_assertion(client_id: str, private: jwk.KeySet) -> str:
    return f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(assertion_claims(client_id))}."


def _hs256_assertion(client_id: str, private: jwk.KeySet) -> str:
    public, _ = example_keys("RS384")
    secret = json.dumps(public["keys"][0]).encode()
    head = b64json({"alg": "HS256", "kid": public["keys"][0]["kid"], "typ": "JWT"})
    signing_input = f"{head}.{b64json(assertion_claims(client_id))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _stranger_assertion(client_id: str, private: jwk.KeySet) -> str:
    # Another facility's RSA key, claiming the registered key's kid.
    kid = next(k for k in private.keys if k.is_private).kid
    key = stranger_key(str(kid))
    return jwt.encode(
        {"alg": "RS384", "kid": kid, "typ": "JWT"},
        assertion_claims(client_id),
        key,
        algorithms=["RS384"],
    )


def _rs256_assertion(client_id: str, private: jwk.KeySet) -> str:
    # The client's own key, without the `alg` that makes joserfc refuse RS256 with it.
    registered = next(k for k in private.keys if k.is_private)
    data = {k: v for k, v in registered.as_dict(private=True).items() if k != "alg"}
    key = jwk.RSAKey.import_key(data)
    return jwt.encode(
        {"alg": "RS256", "kid": key.kid, "typ": "JWT"},
        assertion_claims(client_id),
        key,
        algorithms=["RS256"],
    )


def _jti_less_assertion(client_id: str, private: jwk.KeySet) -> str:
    key = next(k for k in private.keys if k.is_private)
    claims = {k: v for k, v in assertion_claims(client_id).items() if k != "jti"}
    return jwt.encode(
        {"alg": "RS384", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["RS384"]
    )


ASSERTION_ATTACKS: dict[str, tuple[Callable[[str, jwk.KeySet], str], str]] = {
    "lifetime-over-five-minutes": (
        lambda c, k: assertion(c, k, "RS384", lifetime=301),
        "lifetime",
    ),
    "a-day-long": (lambda c, k: assertion(c, k, "RS384", lifetime=86400), "lifetime"),
    "expired": (lambda c, k: assertion(c, k, "RS384", now=time.time() - 600), "expired"),
    "for-the-fhir-base": (lambda c, k: assertion(c, k, "RS384", aud=FHIR), "audience"),
    "for-another-server": (
        lambda c, k: assertion(c, k, "RS384", aud="https://other.example.vn/auth/token"),
        "audience",
    ),
    "issued-in-the-future": (
        lambda c, k: assertion(c, k, "RS384", iat=int(time.time()) + 3600),
        "iat",
    ),
    "not-yet-valid": (
        lambda c, k: assertion(c, k, "RS384", nbf=int(time.time()) + 3600),
        "not-before",
    ),
    "without-jti": (_jti_less_assertion, "jti"),
    "alg-none": (_none_assertion, "algorithm"),
    "hs256-with-the-public-key": (_hs256_assertion, "algorithm"),
    "rs256-instead-of-rs384": (_rs256_assertion, "algorithm"),
    "signed-with-another-facilitys-key": (_stranger_assertion, "signature"),
    "sub-is-someone-else": (lambda c, k: assertion(c, k, "RS384", sub="his-other"), "iss-sub"),
    "not-a-jwt": (lambda c, k: "not-a-jwt", "malformed"),
}


@pytest.mark.parametrize("name", ASSERTION_ATTACKS)
def test_the_token_endpoint_refuses_a_bad_client_assertion(api: TestClient, name: str) -> None:
    client_id, private = register_backend(api)
    make, reason = ASSERTION_ATTACKS[name]
    response = api.post("/auth/token", data=token_form(make(client_id, private)))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.headers["cache-control"] == "no-store"
    assert "access_token" not in response.json()
    assert_refused(last(api, "token"), reason)


def test_an_assertion_for_an_unknown_client_is_refused(api: TestClient) -> None:
    _, private = example_keys("RS384")
    response = api.post("/auth/token", data=token_form(assertion("his-nobody", private, "RS384")))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert_refused(last(api, "token"), "unknown-client")


def test_a_refused_assertion_leaves_an_event_naming_the_client_it_claimed(
    api: TestClient,
) -> None:
    a, _ = register_backend(api, alg="RS384", facility="org-a")
    _, b_private = register_backend(api, alg="ES384", facility="org-b")
    claimed = api.post("/auth/token", data=token_form(assertion(a, b_private, "ES384")))
    assert claimed.status_code == 401
    event = last(api, "token")
    assert_refused(event, "signature")
    assert event.client_id == a


def test_a_disabled_client_gets_no_token(api: TestClient) -> None:
    client_id, private = register_backend(api)
    server_of(api).auth.service.clients.set_disabled(client_id, True)
    response = backend_token(api, client_id, private, "system/*.rs")
    assert response.status_code == 401
    assert_refused(last(api, "token"), "disabled")


def test_an_app_cannot_use_client_credentials(api: TestClient) -> None:
    client_id, secret = register_app(api, auth_method="client_secret_basic")
    assert secret is not None
    response = api.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": "user/*.rs"},
        auth=(client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert_refused(last(api, "token"), "unauthorized_client")


def test_a_client_secret_sent_the_way_the_client_did_not_register_is_refused(
    api: TestClient,
) -> None:
    client_id, secret = register_app(api, auth_method="client_secret_basic")
    assert secret is not None
    response = api.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 401
    assert_refused(last(api, "token"), "secret")


# -- authorization requests --------------------------------------------------------------


def authorize(api: TestClient, client_id: str, **changes: str | None) -> Any:
    _, challenge = pkce()
    params = authorize_params(client_id, "launch/patient patient/*.rs", challenge)
    params.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        params.pop(key)
    return api.get("/auth/authorize", params=params, follow_redirects=False)


@pytest.mark.parametrize(
    "changes",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge": ""},
    ],
    ids=["no-pkce", "no-method", "plain", "empty-challenge"],
)
def test_an_authorization_request_without_s256_pkce_goes_back_to_the_app_as_an_error(
    api: TestClient, changes: dict[str, str | None]
) -> None:
    client_id, _ = register_app(api)
    answer = authorize(api, client_id, **changes)
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == APP_REDIRECT
    query = dict(parse_qsl(location.query))
    assert query["error"] == "invalid_request"
    assert query["state"] == "app-state-1"
    assert "code" not in query
    event = last(api, "authorize")
    assert_refused(event, "invalid_request")
    assert event.client_id == client_id


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        APP_REDIRECT + "/extra",
        APP_REDIRECT + "?next=https://evil.example/",
        APP_REDIRECT + "#fragment",
        APP_REDIRECT + "/../../evil",
        "https://app.example.vn.evil.example/callback",
        "https://app.example.vn@evil.example/callback",
        "https://APP.example.vn/callback",
        "http://app.example.vn/callback",
        "javascript:alert(document.cookie)",
        "//evil.example/callback",
        "",
    ],
    ids=[
        "another-site",
        "extra-path",
        "extra-query",
        "fragment",
        "dot-segments",
        "suffix-domain",
        "userinfo",
        "upper-case-host",
        "http",
        "javascript",
        "scheme-relative",
        "empty-with-several-registered",
    ],
)
def test_an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(
    api: TestClient, redirect_uri: str
) -> None:
    # Two registered URIs, so that an empty redirect_uri cannot default to the only one.
    client_id, _ = register_app(api, redirect_uris=(APP_REDIRECT, APP_REDIRECT + "2"))
    answer = authorize(api, client_id, redirect_uri=redirect_uri)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    # The page links only to itself (its language switch keeps the query, escaped).
    links = re.findall(r'(?:href|action|src)="([^"]*)"', answer.text)
    assert all(link.startswith(("?", "/")) and not link.startswith("//") for link in links)
    event = last(api, "authorize")
    assert_refused(event, "redirect_uri is not one this client registered")


@pytest.mark.parametrize("client_id", ["nobody", "", "<script>alert(1)</script>"])
def test_an_unknown_client_gets_an_error_page_and_no_redirect(
    api: TestClient, client_id: str
) -> None:
    answer = authorize(api, client_id, redirect_uri="https://evil.example/callback")
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "<script>" not in answer.text
    assert_refused(last(api, "authorize"), "Unknown client_id")


def test_a_backend_service_cannot_be_used_as_an_app_at_the_authorize_page(
    api: TestClient,
) -> None:
    client_id, _ = register_backend(api)
    answer = authorize(api, client_id)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert_refused(last(api, "authorize"), "Unknown client_id")


def test_an_authorization_request_for_another_fhir_server_is_refused(api: TestClient) -> None:
    client_id, _ = register_app(api)
    answer = authorize(api, client_id, aud="https://other.example.vn/fhir")
    assert answer.status_code == 303
    assert "error=invalid_request" in answer.headers["location"]
    assert_refused(last(api, "authorize"), "invalid_request")


def test_an_error_goes_to_the_registered_redirect_uri_when_the_request_names_none(
    api: TestClient,
) -> None:
    client_id, _ = register_app(api)
    answer = authorize(api, client_id, redirect_uri=None, code_challenge_method="plain")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(APP_REDIRECT + "?error=invalid_request")
    assert_refused(last(api, "authorize"), "invalid_request")


# -- the sign-in pages -------------------------------------------------------------------


@pytest.fixture
def people(api: TestClient) -> dict[str, str]:
    return seed_people(api)


def login_state(api: TestClient, client_id: str, scope: str = "user/*.rs") -> str:
    _, challenge = pkce()
    page = api.get("/auth/authorize", params=authorize_params(client_id, scope, challenge))
    assert page.status_code == 200, page.text
    return page_state(page.text)


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, _ = register_app(api)
    state = login_state(api, client_id)
    for attempt in range(5):
        wrong = api.post(
            "/auth/authorize/login?lang=en",
            data={"state": state, "username": "bs.duc", "password": f"guess-number-{attempt}"},
        )
        assert wrong.status_code == 401
        assert "locked" not in wrong.text
        assert_refused(last(api, "login"), "password")
    right = api.post(
        "/auth/authorize/login?lang=en",
        data={"state": state, "username": "bs.duc", "password": DUC_PASSWORD},
    )
    assert right.status_code == 401
    assert "locked" in right.text
    assert 'name="decision"' not in right.text  # no consent page
    event = last(api, "login")
    assert_refused(event, "locked")
    assert event.account_id == server_of(api).auth.accounts.by_username("bs.duc").account_id


def test_the_login_page_answers_an_unknown_user_as_a_wrong_password(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, _ = register_app(api)
    state = login_state(api, client_id)
    answers = [
        api.post(
            "/auth/authorize/login?lang=en",
            data={"state": state, "username": username, "password": "not-the-password"},
        )
        for username in ("bs.duc", "bs.nobody")
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].text.replace("bs.duc", "X") == answers[1].text.replace("bs.nobody", "X")
    assert_refused(last(api, "login"), "unknown")


def test_the_login_page_escapes_the_username_it_shows_again(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, _ = register_app(api)
    state = login_state(api, client_id)
    answer = api.post(
        "/auth/authorize/login",
        data={"state": state, "username": '"><script>alert(1)</script>', "password": "x"},
    )
    assert answer.status_code == 401
    assert "<script>alert(1)</script>" not in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_the_consent_page_cannot_be_reached_without_signing_in(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, _ = register_app(api)
    state = login_state(api, client_id)
    # The login page's signed state, posted straight to the consent step.
    skipped = api.post(
        "/auth/authorize/consent",
        data={"state": state, "decision": "allow"},
        follow_redirects=False,
    )
    assert skipped.status_code == 400
    assert "location" not in skipped.headers
    # Nor with an access token (also signed by the server) as the state.
    token = real_token(api)
    forged = api.post(
        "/auth/authorize/consent",
        data={"state": token, "decision": "allow"},
        follow_redirects=False,
    )
    assert forged.status_code == 400
    assert "location" not in forged.headers


@pytest.mark.parametrize(
    ("path", "forged"),
    [
        ("/auth/authorize/login", "unsigned"),
        ("/auth/authorize/login", "access-token"),
        ("/auth/authorize/consent", "unsigned"),
        ("/auth/authorize/consent", "login-state"),  # skipping the password
        ("/auth/activate", "login-state"),
    ],
)
def test_a_forged_page_state_leaves_a_security_event(
    api: TestClient, path: str, forged: str
) -> None:
    client_id, _ = register_app(api)
    state = {
        "unsigned": f"{b64json({'alg': 'none', 'typ': 'authz'})}.{b64json({'step': 'consent'})}.",
        "access-token": real_token(api),
        "login-state": login_state(api, client_id),
    }[forged]
    before = mark(api)
    form = {"state": state, "username": "bs.duc", "password": "x", "decision": "allow"}
    answer = api.post(path, data=form, follow_redirects=False)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    refusals = since(api, before)
    assert refusals, "no security event"
    assert refusals[0].outcome == "failure"


def test_five_wrong_activation_codes_kill_the_code(api: TestClient) -> None:
    issued = server_of(api).auth.activation.issue(
        LAN_CCCD, issued_by="tram-y-te-phuc-xa", channel="print"
    )
    assert issued.code is not None
    page = api.get("/auth/activate?lang=en")
    state = page_state(page.text)
    password = "Lan-mat-khau-moi-2026"
    form = {"state": state, "cccd": LAN_CCCD, "password": password, "password2": password}
    for attempt in range(5):
        wrong = api.post(
            "/auth/activate?lang=en", data={**form, "code": f"2345-6789-A{attempt + 2}"}
        )
        assert wrong.status_code == 400
        assert_refused(last(api, "activation"), "code")
    right = api.post("/auth/activate?lang=en", data={**form, "code": issued.code})
    assert right.status_code == 400
    assert "too many times" in right.text
    assert_refused(last(api, "activation"), "attempts")
    assert server_of(api).auth.accounts.by_username(LAN_CCCD) is None


# -- stolen codes and refresh tokens -----------------------------------------------------


def test_an_authorization_code_used_twice_is_refused_and_revokes_the_first_token(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, _ = register_app(api)
    code, verifier = sign_in(
        api, client_id, username=LAN_CCCD, password=LAN_PASSWORD, scope="patient/*.rs"
    )
    first = exchange(api, client_id, code, verifier)
    assert first.status_code == 200
    again = exchange(api, client_id, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert_refused(last(api, "token"), "code-reuse")
    read = api.get(f"/fhir/Patient/{people['lan']}", headers=bearer(first.json()["access_token"]))
    assert read.status_code == 401


def test_a_code_stolen_by_another_client_gets_it_nothing(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, _ = register_app(api)
    thief, _ = register_app(api)
    code, verifier = sign_in(
        api, client_id, username=LAN_CCCD, password=LAN_PASSWORD, scope="patient/*.rs"
    )
    stolen = exchange(api, thief, code, verifier)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    event = last(api, "token")
    assert_refused(event, "client")
    assert event.client_id == thief


def test_a_code_exchanged_with_another_redirect_uri_is_refused(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, _ = register_app(api, redirect_uris=(APP_REDIRECT, APP_REDIRECT + "2"))
    code, verifier = sign_in(
        api, client_id, username=LAN_CCCD, password=LAN_PASSWORD, scope="patient/*.rs"
    )
    response = api.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": APP_REDIRECT + "2",
            "client_id": client_id,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert_refused(last(api, "token"), "redirect")


def refresh(api: TestClient, client_id: str, token: str, **extra: str) -> Any:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
    return api.post("/auth/token", data={**form, **extra})


def offline_grant(api: TestClient, scope: str) -> tuple[str, dict[str, Any]]:
    client_id, _ = register_app(api)
    code, verifier = sign_in(api, client_id, username=LAN_CCCD, password=LAN_PASSWORD, scope=scope)
    answer = exchange(api, client_id, code, verifier)
    assert answer.status_code == 200, answer.text
    return client_id, answer.json()


def test_a_reused_refresh_token_revokes_the_whole_family(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, first = offline_grant(api, "launch/patient offline_access patient/*.rs")
    second = refresh(api, client_id, first["refresh_token"]).json()
    stolen = refresh(api, client_id, first["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    assert_refused(last(api, "token"), "refresh-reuse")
    # The rotated token and the access tokens of the grant are dead too.
    assert refresh(api, client_id, second["refresh_token"]).status_code == 400
    assert_refused(last(api, "token"), "revoked")
    for access in (first["access_token"], second["access_token"]):
        read = api.get(f"/fhir/Patient/{people['lan']}", headers=bearer(access))
        assert read.status_code == 401


@pytest.mark.parametrize(
    "wider", ["patient/Observation.cruds", "patient/*.rs", "user/*.rs", "system/*.cruds"]
)
def test_a_refresh_cannot_escalate_the_scopes(
    api: TestClient, people: dict[str, str], wider: str
) -> None:
    client_id, first = offline_grant(api, "launch/patient offline_access patient/Observation.rs")
    answer = refresh(api, client_id, first["refresh_token"], scope=wider)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"
    assert "access_token" not in answer.json()
    assert_refused(last(api, "token"), "scope-escalation")


def test_a_refused_refresh_leaves_the_refresh_token_usable(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, first = offline_grant(api, "launch/patient offline_access patient/Observation.rs")
    wider = refresh(api, client_id, first["refresh_token"], scope="patient/*.cruds")
    assert wider.status_code == 400
    assert refresh(api, client_id, first["refresh_token"]).status_code == 200


def test_a_refresh_token_stolen_by_another_client_gets_it_nothing(
    api: TestClient, people: dict[str, str]
) -> None:
    _, first = offline_grant(api, "launch/patient offline_access patient/*.rs")
    thief, _ = register_app(api)
    answer = refresh(api, thief, first["refresh_token"])
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert_refused(last(api, "token"), "client")


def test_a_disabled_accounts_refresh_token_stops_working(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, first = offline_grant(api, "launch/patient offline_access patient/*.rs")
    accounts = server_of(api).auth.accounts
    account = accounts.by_username(LAN_CCCD)
    assert account is not None
    accounts.disable(account.account_id)
    answer = refresh(api, client_id, first["refresh_token"])
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert_refused(last(api, "token"), "account-disabled")
    # The grant's access token dies with it, and enabling the account does not revive it.
    read = api.get(f"/fhir/Patient/{people['lan']}", headers=bearer(first["access_token"]))
    assert read.status_code == 401
    accounts.enable(account.account_id)
    assert refresh(api, client_id, first["refresh_token"]).status_code == 400


# -- facility confusion ------------------------------------------------------------------


def backend_form(client_id: str, private: jwk.KeySet, **form: str) -> dict[str, str]:
    return {
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(client_id, private, "RS384"),
        **form,
    }


def test_a_token_of_facility_a_says_so_and_facility_b_cannot_claim_its_client(
    api: TestClient,
) -> None:
    a, a_private = register_backend(api, alg="RS384", facility="org-a")
    b, b_private = register_backend(api, alg="ES384", facility="org-b")
    token = backend_token(api, a, a_private, "system/Patient.rs").json()["access_token"]
    seen = api.post("/auth/introspect", data=backend_form(a, a_private, token=token)).json()
    assert seen["active"] is True
    assert seen["facility"] == "org-a"
    assert seen["client_id"] == a
    # B's system presents itself as A's client, signing with B's key.
    claimed = api.post("/auth/token", data=token_form(assertion(a, b_private, "ES384")))
    assert claimed.status_code == 401
    assert_refused(last(api, "token"), "signature")
    assert b != a


def test_facility_b_cannot_revoke_a_token_of_facility_a(api: TestClient) -> None:
    a, a_private = register_backend(api, alg="RS384", facility="org-a")
    b, b_private = register_backend(api, alg="ES384", facility="org-b")
    token = backend_token(api, a, a_private, "system/Patient.rs").json()["access_token"]
    form = {
        "token": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(b, b_private, "ES384"),
    }
    # RFC 7009 2.1: a client may revoke only its own tokens; the attempt is on record.
    answer = api.post("/auth/revoke", data=form)
    assert answer.status_code == 400
    assert answer.json()["error"] == "unauthorized_client"
    event = last(api, "revoke")
    assert_refused(event, "client")
    assert event.client_id == b
    assert event.facility == "org-b"
    assert api.get("/fhir/Patient", headers=bearer(token)).status_code == 200
    seen = api.post("/auth/introspect", data=backend_form(a, a_private, token=token)).json()
    assert seen["active"] is True


def test_a_public_app_cannot_introspect_tokens(api: TestClient) -> None:
    client_id, _ = register_app(api)
    token = real_token(api)
    answer = api.post("/auth/introspect", data={"token": token, "client_id": client_id})
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert "facility" not in answer.text


@pytest.mark.parametrize("endpoint", ["/auth/introspect", "/auth/revoke"])
def test_a_failed_client_authentication_at_introspection_or_revocation_leaves_an_event(
    api: TestClient, endpoint: str
) -> None:
    client_id, secret = register_app(api, auth_method="client_secret_basic")
    assert secret is not None
    before = mark(api)
    answer = api.post(endpoint, data={"token": "x"}, auth=(client_id, "a-guessed-secret"))
    assert answer.status_code == 401
    refusals = since(api, before)
    assert refusals, "no security event"
    assert refusals[0].outcome == "failure"
    assert refusals[0].client_id == client_id
    assert refusals[0].detail.get("reason") == "secret"


def consent_with_another_facilitys_launch(api: TestClient, people: dict[str, str]) -> Any:
    """BS Hoa, a doctor of org-b, signs in with a launch id that org-a's EHR made."""
    server_of(api).auth.accounts.create(
        "practitioner",
        "bs.hoa",
        password="bac-si-Hoa-o-benh-vien-B",
        fhir_user="Practitioner/hoa",
        facility="org-b",
    )
    ehr, private = register_backend(api, scope="vnehr/launch", facility="org-a")
    ehr_token = backend_token(api, ehr, private, "vnehr/launch").json()["access_token"]
    launch = api.post("/auth/launch", json={"patient": people["lan"]}, headers=bearer(ehr_token))
    assert launch.status_code == 201
    client_id, _ = register_app(api)
    _, challenge = pkce()
    params = authorize_params(
        client_id, "launch patient/*.rs", challenge, launch=launch.json()["launch"]
    )
    page = api.get("/auth/authorize", params=params)
    consent = api.post(
        "/auth/authorize/login",
        data={
            "state": page_state(page.text),
            "username": "bs.hoa",
            "password": "bac-si-Hoa-o-benh-vien-B",
        },
    )
    assert consent.status_code == 200, consent.text
    return api.post(
        "/auth/authorize/consent",
        data={"state": page_state(consent.text), "decision": "allow"},
        follow_redirects=False,
    )


def test_an_ehr_launch_is_refused_to_a_clinician_of_another_facility(
    api: TestClient, people: dict[str, str]
) -> None:
    answer = consent_with_another_facilitys_launch(api, people)
    assert answer.status_code == 303
    query = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    assert query["error"] == "access_denied"
    assert "code" not in query


def test_a_launch_refused_to_another_facility_leaves_a_security_event(
    api: TestClient, people: dict[str, str]
) -> None:
    before = mark(api)
    consent_with_another_facilitys_launch(api, people)
    refusals = [e for e in since(api, before) if e.kind == "consent"]
    assert refusals, since(api, before)
    assert refusals[0].outcome == "failure"
    assert refusals[0].detail.get("reason")


def test_the_launch_and_admin_endpoints_need_their_scopes(api: TestClient) -> None:
    reader = real_token(api, scope="system/*.cruds")
    for path, body in (
        ("/auth/launch", {"patient": "p1"}),
        ("/auth/admin/clients", {"client_name": "x", "kind": "app"}),
    ):
        anonymous = api.post(path, json=body)
        assert anonymous.status_code == 401
        assert_refused(last(api, "request"), "token")
        refused = api.post(path, json=body, headers=bearer(reader))
        assert refused.status_code == 403
        assert refused.json()["error"] == "insufficient_scope"
        assert_refused(last(api, "request"), "scope")
    assert api.get("/auth/admin/clients", headers=bearer(reader)).status_code == 403


def admin_token(api: TestClient) -> dict[str, str]:
    return bearer(real_token(api, scope="vnehr/admin"))


def test_the_admin_api_answers_an_unparsable_redirect_uri_with_400(api: TestClient) -> None:
    loose = TestClient(api.app, base_url=BASE, raise_server_exceptions=False)
    body = {
        "client_name": "Ứng dụng thử",
        "kind": "app",
        "token_endpoint_auth_method": "none",
        "scope": "patient/*.rs",
        "redirect_uris": ["http://[::1"],
    }
    answer = loose.post("/auth/admin/clients", json=body, headers=admin_token(api))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(
    "uri", ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "file:///etc/x"]
)
def test_the_admin_api_refuses_a_script_redirect_uri(api: TestClient, uri: str) -> None:
    body = {
        "client_name": "Ứng dụng thử",
        "kind": "app",
        "token_endpoint_auth_method": "none",
        "scope": "patient/*.rs",
        "redirect_uris": [uri],
    }
    answer = api.post("/auth/admin/clients", json=body, headers=admin_token(api))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client_metadata"


def test_the_admin_api_refuses_a_private_key_in_a_clients_jwks(api: TestClient) -> None:
    private = json.loads((Path(__file__).parent / "data" / "RS384.private.json").read_text())
    body = {
        "client_name": "Hệ thống HIS",
        "kind": "backend",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "system/*.rs",
        "jwks": private,
    }
    answer = api.post("/auth/admin/clients", json=body, headers=admin_token(api))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client_metadata"


# -- scopes on FHIR interactions ---------------------------------------------------------


@pytest.fixture
def records(api: TestClient) -> dict[str, str]:
    """Lan's Patient and an Observation of hers, written with a full system token."""
    admin = bearer(system_token(api))
    patient = api.post("/fhir/Patient", json=lan(), headers=admin).json()["id"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
    }
    observation = api.post("/fhir/Observation", json=obs, headers=admin).json()["id"]
    return {"patient": patient, "observation": observation}


def count(api: TestClient, res_type: str) -> int:
    admin = bearer(system_token(api, scope="system/*.rs"))
    total: int = api.get(f"/fhir/{res_type}?_summary=count", headers=admin).json()["total"]
    return total


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/fhir/Observation", {"resourceType": "Observation", "status": "final"}),
        ("DELETE", "/fhir/Patient/{patient}", None),
        ("PUT", "/fhir/Patient/{patient}", {"resourceType": "Patient", "id": "{patient}"}),
        ("PATCH", "/fhir/Patient/{patient}", [{"op": "remove", "path": "/gender"}]),
        ("GET", "/fhir/Observation", None),
        ("GET", "/fhir/Observation/{observation}", None),
        ("GET", "/fhir/Observation/{observation}/_history", None),
        ("GET", "/fhir/Patient/{patient}/Observation", None),
        ("GET", "/fhir/Patient/{patient}/$everything", None),
        ("GET", "/fhir?_type=Observation", None),
        ("GET", "/fhir/_history", None),
        ("GET", "/fhir/Observation/_history", None),
        ("POST", "/fhir/Observation/_search", None),
        ("HEAD", "/fhir/Observation", None),
    ],
    ids=[
        "create-observation",
        "delete-patient",
        "update-patient",
        "patch-patient",
        "search-observations",
        "read-observation",
        "observation-history",
        "compartment-search",
        "patient-everything",
        "system-search",
        "system-history",
        "type-history",
        "post-search",
        "head",
    ],
)
def test_a_token_that_reads_patients_may_do_nothing_else(
    api: TestClient,
    records: dict[str, str],
    method: str,
    path: str,
    body: Any,
) -> None:
    token = bearer(real_token(api, scope="system/Patient.rs"))
    url = path.format(**records)
    content = json.dumps(body).replace("{patient}", records["patient"]) if body else None
    media = "application/json-patch+json" if method == "PATCH" else "application/fhir+json"
    headers = {**token, "Content-Type": media}
    before = (count(api, "Patient"), count(api, "Observation"))
    answer = api.request(method, url, content=content, headers=headers)
    assert answer.status_code == 403, answer.text
    if method != "HEAD":
        assert answer.json()["resourceType"] == "OperationOutcome"
    event = last(api, "request")
    assert_refused(event, "forbidden")
    assert event.detail["method"] == method
    assert (count(api, "Patient"), count(api, "Observation")) == before
    assert api.get(f"/fhir/Patient/{records['patient']}", headers=token).status_code == 200


def test_an_include_does_not_leak_types_the_token_cannot_read(
    api: TestClient, records: dict[str, str]
) -> None:
    token = bearer(real_token(api, scope="system/Observation.rs"))
    found = api.get("/fhir/Observation?_include=Observation:subject", headers=token).json()
    assert [e["resource"]["resourceType"] for e in found["entry"]] == ["Observation"]
    token = bearer(real_token(api, scope="system/Patient.rs"))
    found = api.get("/fhir/Patient?_revinclude=Observation:subject", headers=token).json()
    assert [e["resource"]["resourceType"] for e in found["entry"]] == ["Patient"]
    found = api.get("/fhir/Patient?_include:iterate=*&_revinclude=*", headers=token).json()
    assert {e["resource"]["resourceType"] for e in found["entry"]} == {"Patient"}


def test_reverse_chaining_cannot_search_a_type_the_token_cannot_read(
    api: TestClient, records: dict[str, str]
) -> None:
    token = bearer(real_token(api, scope="system/Patient.rs"))
    answer = api.get(
        "/fhir/Patient", params={"_has:Observation:subject:code": "4548-4"}, headers=token
    )
    assert answer.status_code == 403
    assert_refused(last(api, "request"), "forbidden")


def test_chaining_cannot_search_a_type_the_token_cannot_read(
    api: TestClient, records: dict[str, str]
) -> None:
    token = bearer(real_token(api, scope="system/Observation.rs"))
    answer = api.get(
        "/fhir/Observation",
        params={"subject:Patient.identifier": f"{CCCD}|{LAN_CCCD}"},
        headers=token,
    )
    assert answer.status_code == 403
    assert_refused(last(api, "request"), "forbidden")


CONDITIONAL = f"subject:Patient.identifier={CCCD}|{LAN_CCCD}"
CANCELLED = {"resourceType": "Observation", "status": "cancelled", "code": {"text": "HbA1c"}}


def _conditional_update(api: TestClient, token: dict[str, str]) -> Any:
    return api.put(f"/fhir/Observation?{CONDITIONAL}", json=CANCELLED, headers=token)


def _conditional_create(api: TestClient, token: dict[str, str]) -> Any:
    headers = {**token, "If-None-Exist": CONDITIONAL}
    return api.post("/fhir/Observation", json=CANCELLED, headers=headers)


def _conditional_patch(api: TestClient, token: dict[str, str]) -> Any:
    patch = json.dumps([{"op": "replace", "path": "/status", "value": "amended"}])
    headers = {**token, "Content-Type": "application/json-patch+json"}
    return api.patch(f"/fhir/Observation?{CONDITIONAL}", content=patch, headers=headers)


def _conditional_delete(api: TestClient, token: dict[str, str]) -> Any:
    return api.delete(f"/fhir/Observation?{CONDITIONAL}", headers=token)


def _conditional_update_in_a_transaction(api: TestClient, token: dict[str, str]) -> Any:
    entry = {
        "resource": CANCELLED,
        "request": {"method": "PUT", "url": f"Observation?{CONDITIONAL}"},
    }
    return api.post("/fhir", json=transaction(entry), headers=token)


@pytest.mark.parametrize(
    "interaction",
    [
        _conditional_update,
        _conditional_create,
        _conditional_patch,
        _conditional_delete,
        _conditional_update_in_a_transaction,
    ],
    ids=["update", "create", "patch", "delete", "transaction-update"],
)
def test_conditional_criteria_cannot_chain_into_a_type_the_token_cannot_read(
    api: TestClient, records: dict[str, str], interaction: Callable[..., Any]
) -> None:
    token = bearer(real_token(api, scope="system/Observation.cruds"))
    answer = interaction(api, token)
    assert answer.status_code == 403, answer.text
    assert_refused(last(api, "request"), "forbidden")
    admin = bearer(system_token(api, scope="system/*.rs"))
    stored = api.get(f"/fhir/Observation/{records['observation']}", headers=admin).json()
    assert stored["status"] == "final"


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


@pytest.mark.parametrize("scope", ["system/Patient.cruds", "system/Patient.rs"])
def test_a_transaction_with_one_forbidden_entry_writes_nothing(
    api: TestClient, records: dict[str, str], scope: str
) -> None:
    token = bearer(real_token(api, scope=scope))
    bundle = transaction(
        {
            "fullUrl": "urn:uuid:6c1b7d4e-1f0a-4c35-9d7b-3c2f0e1a9b11",
            "resource": lan("079214000123"),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "Huyết áp"},
                "subject": {"reference": "urn:uuid:6c1b7d4e-1f0a-4c35-9d7b-3c2f0e1a9b11"},
            },
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    before = (count(api, "Patient"), count(api, "Observation"))
    answer = api.post("/fhir", json=bundle, headers=token)
    assert (count(api, "Patient"), count(api, "Observation")) == before
    assert answer.status_code == 403, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert_refused(last(api, "request"), "forbidden")


def test_a_transaction_entry_that_updates_a_forbidden_type_writes_nothing(
    api: TestClient, records: dict[str, str]
) -> None:
    token = bearer(real_token(api, scope="system/Patient.cruds"))
    observation = f"Observation/{records['observation']}"
    changed = {
        "resourceType": "Observation",
        "id": records["observation"],
        "status": "cancelled",
        "code": {"text": "HbA1c"},
    }
    bundle = transaction(
        {"resource": lan("079214000123"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": changed, "request": {"method": "PUT", "url": observation}},
    )
    before = count(api, "Patient")
    answer = api.post("/fhir", json=bundle, headers=token)
    assert answer.status_code == 403, answer.text
    assert count(api, "Patient") == before
    admin = bearer(system_token(api, scope="system/*.rs"))
    assert api.get(f"/fhir/{observation}", headers=admin).json()["status"] == "final"
    assert_refused(last(api, "request"), "forbidden")


def test_a_conditional_reference_cannot_search_a_type_the_token_cannot_read(
    api: TestClient, records: dict[str, str]
) -> None:
    token = bearer(real_token(api, scope="system/Observation.cruds"))
    bundle = transaction(
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "Huyết áp"},
                "subject": {"reference": f"Patient?identifier={CCCD}|{LAN_CCCD}"},
            },
            "request": {"method": "POST", "url": "Observation"},
        }
    )
    before = count(api, "Observation")
    answer = api.post("/fhir", json=bundle, headers=token)
    assert answer.status_code == 403, answer.text
    assert_refused(last(api, "request"), "forbidden")
    assert count(api, "Observation") == before


def test_a_forbidden_batch_entry_leaves_a_security_event(
    api: TestClient, records: dict[str, str]
) -> None:
    token = bearer(real_token(api, scope="system/Patient.rs"))
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Observation/{records['observation']}"}}],
    }
    answer = api.post("/fhir", json=bundle, headers=token)
    assert answer.status_code == 200
    assert answer.json()["entry"][0]["response"]["status"].startswith("403")
    assert_refused(last(api, "request"), "forbidden")


def test_a_citizen_cannot_change_shared_data_with_patient_scopes(
    api: TestClient, people: dict[str, str]
) -> None:
    admin = bearer(system_token(api))
    org = {"resourceType": "Organization", "id": "org-a", "name": "Bệnh viện Bạch Mai"}
    assert api.put("/fhir/Organization/org-a", json=org, headers=admin).status_code == 201
    client_id, _ = register_app(api)
    code, verifier = sign_in(
        api,
        client_id,
        username=LAN_CCCD,
        password=LAN_PASSWORD,
        scope="launch/patient patient/*.cruds",
    )
    citizen = bearer(exchange(api, client_id, code, verifier).json()["access_token"])
    renamed = api.put(
        "/fhir/Organization/org-a", json={**org, "name": "Đã bị đổi tên"}, headers=citizen
    )
    assert renamed.status_code == 403
    assert_refused(last(api, "request"), "forbidden")
    assert api.delete("/fhir/Organization/org-a", headers=citizen).status_code == 403
    # Shared data stays readable to the patient's app.
    read = api.get("/fhir/Organization/org-a", headers=citizen)
    assert read.status_code == 200
    assert read.json()["name"] == "Bệnh viện Bạch Mai"


def test_a_citizen_asking_for_user_scopes_gets_only_her_own_record(
    api: TestClient, people: dict[str, str]
) -> None:
    client_id, _ = register_app(api)
    code, verifier = sign_in(
        api,
        client_id,
        username=LAN_CCCD,
        password=LAN_PASSWORD,
        scope="launch/patient patient/*.cruds user/*.cruds",
    )
    body = exchange(api, client_id, code, verifier).json()
    assert "user/" not in body["scope"]
    citizen = bearer(body["access_token"])
    assert api.get(f"/fhir/Patient/{people['other']}", headers=citizen).status_code == 404
    other_obs = api.get(f"/fhir/Observation/{people['other_obs']}", headers=citizen)
    assert other_obs.status_code == 404
    found = api.get(f"/fhir/Observation?subject=Patient/{people['other']}", headers=citizen)
    assert found.json().get("entry", []) == []
    everything = api.get(f"/fhir/Patient/{people['other']}/$everything", headers=citizen)
    assert everything.status_code == 404  # not revealed
    cancelled = {
        "resourceType": "Observation",
        "id": people["other_obs"],
        "status": "cancelled",
        "code": {"text": "HbA1c"},
        "subject": {"reference": f"Patient/{people['other']}"},
    }
    changed = api.put(f"/fhir/Observation/{people['other_obs']}", json=cancelled, headers=citizen)
    assert changed.status_code == 403
    assert_refused(last(api, "request"), "forbidden")


# -- malformed requests at the token endpoint ---------------------------------------------


def test_garbage_basic_credentials_are_refused_as_invalid_client(api: TestClient) -> None:
    for header in ("Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        answer = api.post(
            "/auth/token",
            data={"grant_type": "client_credentials", "scope": "system/*.rs"},
            headers={"Authorization": header},
        )
        assert answer.status_code == 401
        assert answer.json()["error"] == "invalid_client"
        assert_refused(last(api, "token"), "malformed")


MALFORMED: dict[str, dict[str, Any]] = {
    "repeated-parameter": {
        "content": "grant_type=client_credentials&scope=system/*.rs&scope=system/*.cruds",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    "huge-body": {
        "content": "grant_type=client_credentials&scope=" + "a" * (70 * 1024),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    "json-body": {
        "content": json.dumps({"grant_type": "client_credentials", "scope": "system/*.rs"}),
        "headers": {"Content-Type": "application/json"},
    },
    "no-content-type": {"content": "grant_type=client_credentials", "headers": {}},
    "not-utf-8": {
        "content": b"grant_type=client_credentials&scope=\xff\xfe",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_token_request_is_answered_400_invalid_request_in_json(
    api: TestClient, name: str
) -> None:
    answer = api.post("/auth/token", **MALFORMED[name])
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == "invalid_request"
    assert answer.json()["error_description"]
    assert "Traceback" not in answer.text
    assert_refused(last(api, "token"), "invalid_request")


def test_the_token_endpoint_takes_posts_only(api: TestClient) -> None:
    answer = api.get("/auth/token", params={"grant_type": "client_credentials"})
    assert answer.status_code == 405
