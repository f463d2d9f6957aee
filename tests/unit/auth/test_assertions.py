"""Client assertions: the SMART IG's own example assertions (RS384 and ES384) verify with
its example keys, at the time they were made, and not a second time or after they expire."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vnehr.app import Server
from vnehr.auth.assertions import ASSERTION_TYPE, ClientAuthenticator, ClientAuthError

DATA = Path(__file__).parents[2] / "auth" / "data"
CLIENT = "https://bili-monitor.example.com"
TOKEN_URL = "https://authorize.smarthealthit.org/token"
EXP = 1422568860  # the examples' exp


def _authenticator(server: Server, now: float) -> ClientAuthenticator:
    return ClientAuthenticator(server.store, server.auth.service.clients, clock=lambda: now)


def _register(server: Server, alg: str) -> None:
    jwks = json.loads((DATA / f"{alg}.public.json").read_text())
    server.auth.service.clients.register(
        "Bilirubin monitor",
        kind="backend",
        auth_method="private_key_jwt",
        scopes="system/Observation.rs",
        jwks=jwks,
        client_id=CLIENT,
    )


def _examples() -> dict[str, str]:
    lines = (DATA / "client-assertion-jwts.txt").read_text().split()
    return {"RS384": lines[0], "ES384": lines[1]}


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_the_smart_example_assertion_verifies_once_while_it_is_valid(
    server: Server, alg: str
) -> None:
    _register(server, alg)
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": _examples()[alg]}
    client = _authenticator(server, EXP - 60).authenticate(form, {}, TOKEN_URL)
    assert client.client_id == CLIENT
    with pytest.raises(ClientAuthError) as replay:
        _authenticator(server, EXP - 30).authenticate(form, {}, TOKEN_URL)
    assert replay.value.reason == "replay"


@pytest.mark.parametrize(
    ("now", "endpoint", "reason"),
    [
        (EXP + 1, TOKEN_URL, "expired"),
        (EXP - 301, TOKEN_URL, "lifetime"),
        (EXP - 60, "https://ehr.example.vn/auth/token", "audience"),
    ],
)
def test_the_smart_example_assertion_is_refused_out_of_its_time_or_place(
    server: Server, now: float, endpoint: str, reason: str
) -> None:
    _register(server, "RS384")
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": _examples()["RS384"]}
    with pytest.raises(ClientAuthError) as refused:
        _authenticator(server, now).authenticate(form, {}, endpoint)
    assert refused.value.reason == reason


def test_an_example_assertion_does_not_verify_with_the_other_example_key(server: Server) -> None:
    _register(server, "ES384")  # the client's registered keys are the ES384 ones
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": _examples()["RS384"]}
    with pytest.raises(ClientAuthError) as refused:
        _authenticator(server, EXP - 60).authenticate(form, {}, TOKEN_URL)
    assert refused.value.reason == "signature"
