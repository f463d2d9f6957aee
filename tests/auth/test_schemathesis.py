"""The authorization server's endpoints under schemathesis: generated requests, valid and
not, never get a server error.

The operations are described in data/auth-openapi.yaml. The server runs in process, in
production mode, on SQLite, with a client of each kind, a doctor, an EHR launch and signed
page states in its database, so that generated requests get past the first checks (the
YAML's `x-vnehr-fill` values are those). Each operation gets a bounded, derandomized run of
positive and negative cases (30 each); a response with a 5xx status, or an exception out of
the app, fails the test with the request that caused it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from tests.people import lan
from tests.smart import (
    BASE,
    authorize_params,
    bearer,
    page_state,
    pkce,
    register_app,
    register_backend,
    secure_settings,
    server_of,
    system_token,
)
from vnehr.app import create_app

SPEC = Path(__file__).parent / "data" / "auth-openapi.yaml"
EXAMPLES = 30  # per operation and generation mode
PASSWORD = "bac-si-Duc-rat-an-toan"
# Operations that need a bearer token, and its scope.
PROTECTED = {"/auth/launch": "vnehr/launch", "/auth/admin/clients": "vnehr/admin"}
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


def operations() -> list[str]:
    raw = yaml.safe_load(SPEC.read_text())
    return [f"{method.upper()} {path}" for path, item in raw["paths"].items() for method in item]


@dataclass
class Target:
    """The server under test, what the YAML's placeholders stand for, and a tally."""

    app: Any
    fills: dict[str, list[str]]
    tokens: dict[str, str]
    calls: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    settings_ = secure_settings(f"sqlite:///{tmp / 'vnehr.db'}", tmp)
    app = create_app(settings_)
    with TestClient(app, base_url=BASE) as client:
        yield Target(app, *_seed(client))


def _seed(client: TestClient) -> tuple[dict[str, list[str]], dict[str, str]]:
    srv = server_of(client)
    admin = bearer(system_token(client))
    patient = client.post("/fhir/Patient", json=lan(), headers=admin).json()["id"]
    srv.auth.accounts.create(
        "practitioner", "bs.duc", password=PASSWORD, fhir_user="Practitioner/duc", facility="org-a"
    )
    app_client, _ = register_app(client)
    confidential, _ = register_app(client, auth_method="client_secret_post")
    backend, _ = register_backend(client)
    tokens = {path: system_token(client, scope=scope) for path, scope in sorted(PROTECTED.items())}
    launch = client.post(
        "/auth/launch", json={"patient": patient}, headers=bearer(tokens["/auth/launch"])
    ).json()["launch"]
    _, challenge = pkce()
    page = client.get(
        "/auth/authorize",
        params=authorize_params(app_client, "launch/patient patient/*.rs user/*.rs", challenge),
    )
    login_state = page_state(page.text)
    consent = client.post(
        "/auth/authorize/login",
        data={"state": login_state, "username": "bs.duc", "password": PASSWORD},
    )
    fills = {
        "clients": [app_client, confidential, backend],
        "app_client": [app_client],
        "access_token": [system_token(client, scope="system/Patient.rs")],
        "launch": [launch],
        "login_state": [login_state],
        "consent_state": [page_state(consent.text)],
        "activate_state": [page_state(client.get("/auth/activate").text)],
    }
    return fills, tokens


def _filled(value: Any, fills: dict[str, list[str]]) -> Any:
    """The schema with each `x-vnehr-fill: name` replaced by an enum of the server's values."""
    if isinstance(value, dict):
        if "x-vnehr-fill" in value:
            return {"type": "string", "enum": fills[value["x-vnehr-fill"]]}
        return {k: _filled(v, fills) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, fills) for v in value]
    return value


def fuzz(target: Target, label: str) -> int:
    """Run the generated cases of one operation against the target; how many were sent."""
    raw = _filled(yaml.safe_load(SPEC.read_text()), target.fills)
    schema = schemathesis.openapi.from_dict(raw)
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    # Not entered: the test's TestClient owns the app's lifespan (and closes the server).
    session = asgi.get_client(target.app)
    headers = {}
    if path in PROTECTED:
        headers["Authorization"] = f"Bearer {target.tokens[path]}"
    sent = 0
    spec = raw["paths"][path][method.lower()]
    takes_input = "parameters" in spec or "requestBody" in spec
    # An operation that takes nothing has no invalid input to generate.
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE][: 2 if takes_input else 1]
    for mode in modes:
        strategy = operation.as_strategy(generation_mode=mode)

        @FUZZ
        @given(case=strategy)
        def run(case: schemathesis.Case) -> None:
            nonlocal sent
            sent += 1
            try:
                response = case.call(session=session, headers=headers)
            except Exception as exc:  # the app raised: Starlette's 500, and the cause
                raise AssertionError(
                    f"{label} crashed the app:\n{case.as_curl_command(headers=headers)}"
                ) from exc
            case.validate_response(response, checks=[not_a_server_error], headers=headers)

        run()
    target.calls[label] = sent
    return sent


@pytest.mark.parametrize("label", operations())
def test_no_generated_request_gets_a_server_error(target: Target, label: str) -> None:
    sent = fuzz(target, label)
    assert sent >= 1
    # Operations that take input get a spread of requests, not one example each.
    if "POST" in label or label == "GET /auth/authorize":
        assert sent >= EXAMPLES, (label, sent)


def test_every_operation_was_run(target: Target) -> None:
    """Runs after the operations' tests (pytest keeps the file's order): each sent
    requests, and together they sent hundreds."""
    if not set(operations()) <= set(target.calls):
        pytest.skip("run the whole file to count the requests")
    assert sum(target.calls.values()) >= 500, target.calls


def test_the_run_fails_on_a_server_error(target: Target) -> None:
    """The harness itself: an endpoint answering 503 must fail its run."""
    app = target.app

    async def failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/auth/revoke":
            await PlainTextResponse("down", status_code=503)(scope, receive, send)
        else:
            await app(scope, receive, send)

    broken = Target(failing, target.fills, target.tokens)
    with pytest.raises(schemathesis.errors.FailureGroup, match="Server error"):
        fuzz(broken, "POST /auth/revoke")
    assert fuzz(broken, "GET /auth/jwks") == 1


def test_activation_with_two_different_passwords_gets_a_page_not_a_500(target: Target) -> None:
    """Found by the run above (a KeyError for the message of the rule "mismatch")."""
    client = TestClient(target.app, base_url=BASE, raise_server_exceptions=False)
    page = client.get("/auth/activate?lang=en")
    answer = client.post(
        "/auth/activate?lang=en",
        data={
            "state": page_state(page.text),
            "cccd": "001185012345",
            "code": "2222-2222-22",
            "password": "Lan-mat-khau-moi-2026",
            "password2": "Lan-mat-khau-khac-2026",
        },
    )
    assert answer.status_code == 400
    assert 'role="alert"' in answer.text  # the page, saying what is wrong
