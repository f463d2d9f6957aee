"""HTTP endpoints of the authorization server: discovery, JWKS, token, introspection,
revocation, EHR launch contexts and the admin API. The browser pages (authorize, activate,
VNeID) are in authorize.py.

OAuth endpoints take `application/x-www-form-urlencoded` bodies (RFC 6749), refuse repeated
parameters, and answer JSON errors with `error` and `error_description`, never a stack trace.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vnehr.auth import scopes as smart
from vnehr.auth.accounts import Account, AccountError
from vnehr.auth.activation import ActivationError
from vnehr.auth.clients import ASSERTION_ALGORITHMS, AUTH_METHODS, ClientError
from vnehr.auth.server import AuthorizationServer
from vnehr.auth.service import OAuthError, Urls
from vnehr.auth.tokens import InvalidToken, Principal

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
LAUNCH_LIFETIME = 600  # seconds an EHR launch context waits for its app
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "sso-openid-connect",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]
SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
    smart.ADMIN,
    smart.ISSUE_CODES,
    smart.LAUNCH,
]


def fhir_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def address(request: Request) -> str:
    return request.client.host if request.client else ""


def json_response(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=NO_STORE)


def oauth_error(exc: OAuthError) -> JSONResponse:
    response = json_response(exc.body(), exc.status)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="vnehr"'
    return response


async def read_form(request: Request) -> dict[str, str]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != FORM:
        raise OAuthError("invalid_request", f"Send the parameters as {FORM}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "The request body is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "The request body is not UTF-8") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise OAuthError("invalid_request", f"Parameter {key!r} is repeated")
        form[key] = value
    return form


def bearer(auth: AuthorizationServer, request: Request, urls: Urls) -> Principal:
    """The principal of the request's bearer token; InvalidToken when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("An access token is required (Authorization: Bearer ...)")
    return auth.tokens.verify(token.strip(), urls.issuer)


def smart_configuration(auth: AuthorizationServer, urls: Urls) -> dict[str, Any]:
    """https://hl7.org/fhir/smart-app-launch/conformance.html"""
    return {
        "issuer": urls.issuer,
        "jwks_uri": urls.endpoint("jwks"),
        "authorization_endpoint": urls.endpoint("authorize"),
        "token_endpoint": urls.endpoint("token"),
        "introspection_endpoint": urls.endpoint("introspect"),
        "revocation_endpoint": urls.endpoint("revoke"),
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(auth: AuthorizationServer, urls: Urls) -> dict[str, Any]:
    """https://openid.net/specs/openid-connect-discovery-1_0.html"""
    return {
        "issuer": urls.issuer,
        "authorization_endpoint": urls.endpoint("authorize"),
        "token_endpoint": urls.endpoint("token"),
        "jwks_uri": urls.endpoint("jwks"),
        "introspection_endpoint": urls.endpoint("introspect"),
        "revocation_endpoint": urls.endpoint("revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": SCOPES_SUPPORTED,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser", "name"],
        "code_challenge_methods_supported": ["S256"],
    }


Handler = Callable[[Request], Awaitable[Response]]
# The token service's endpoints: (form, headers, urls, caller's address) -> JSON answer.
FormCall = Callable[[dict[str, str], Mapping[str, str], Urls, str], "dict[str, Any] | None"]


def routes(auth: AuthorizationServer) -> list[Route]:
    service = auth.service

    def discovery(build: Callable[[AuthorizationServer, Urls], dict[str, Any]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            body = build(auth, auth.urls(fhir_base(request)))
            return JSONResponse(body, headers={"Cache-Control": "max-age=300"})

        return endpoint

    async def jwks(request: Request) -> Response:
        return JSONResponse(auth.keys.public_jwks(), headers={"Cache-Control": "max-age=300"})

    def form_endpoint(kind: str, call: FormCall, *, needs_token: bool) -> Handler:
        """An OAuth endpoint taking a form: a malformed one is refused with an event (a
        client probing the parser leaves a trace); `call` records its own outcomes."""

        async def endpoint(request: Request) -> Response:
            urls = auth.urls(fhir_base(request))
            try:
                form = await read_form(request)
                if needs_token and "token" not in form:
                    raise OAuthError("invalid_request", "token is required")
            except OAuthError as exc:
                error, why, where = exc.error, str(exc), address(request)
                await run_in_threadpool(
                    lambda: service.events.record(
                        kind, "failure", address=where, reason=error, why=why
                    )
                )
                return oauth_error(exc)
            try:
                answer = await run_in_threadpool(
                    call, form, request.headers, urls, address(request)
                )
            except OAuthError as exc:
                return oauth_error(exc)
            return json_response({} if answer is None else answer)

        return endpoint

    async def launch(request: Request) -> Response:
        """An EHR (a client holding `vnehr/launch`) registers the context of an EHR launch:
        the patient and encounter open in the clinician's screen; the app gets `launch`."""
        urls = auth.urls(fhir_base(request))
        try:
            caller = _authorised(auth, request, urls, smart.LAUNCH)
            body = await _json_body(request)
            context = {k: body[k] for k in ("patient", "encounter") if isinstance(body.get(k), str)}
            if not context.get("patient"):
                raise OAuthError("invalid_request", "patient (a Patient id) is required")
            client_id = body.get("client_id")
            if client_id is not None and not isinstance(client_id, str):
                raise OAuthError("invalid_request", "client_id must be a string")
        except OAuthError as exc:
            return oauth_error(exc)
        launch_id = secrets.token_urlsafe(16)
        with auth.store.transaction() as txn:
            txn.run(
                "INSERT INTO auth_launches (launch_id, client_id, context, created_by, expires) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    launch_id,
                    client_id,
                    json.dumps({**context, "facility": caller.facility}),
                    caller.client_id,
                    int(auth.clock()) + LAUNCH_LIFETIME,
                ),
            )
        return json_response({"launch": launch_id, "expires_in": LAUNCH_LIFETIME}, 201)

    async def admin_clients(request: Request) -> Response:
        urls = auth.urls(fhir_base(request))
        try:
            caller = _authorised(auth, request, urls, smart.ADMIN)
            if request.method == "GET":
                return json_response([c.description() for c in service.clients.all()])
            body = await _json_body(request)
            client, secret = service.clients.register(
                str(body.get("client_name", "")),
                kind=str(body.get("kind", "")),
                auth_method=str(body.get("token_endpoint_auth_method", "")),
                scopes=str(body.get("scope", "")),
                facility=body.get("facility") if isinstance(body.get("facility"), str) else None,
                jwks=body.get("jwks"),
                jwks_uri=body.get("jwks_uri"),
                redirect_uris=_strings(body.get("redirect_uris", [])),
                client_id=body.get("client_id") if isinstance(body.get("client_id"), str) else None,
            )
        except ClientError as exc:
            return json_response(
                {"error": "invalid_client_metadata", "error_description": str(exc)}, 400
            )
        except OAuthError as exc:
            return oauth_error(exc)
        service.events.record(
            "client-registered", "success", client_id=caller.client_id, registered=client.client_id
        )
        answer = client.description()
        if secret:
            answer["client_secret"] = secret
        return json_response(answer, 201)

    async def admin_accounts(request: Request) -> Response:
        """Practitioner and operator accounts (operators: `vnehr/admin`). Citizens' accounts
        are opened only with a security code."""
        urls = auth.urls(fhir_base(request))
        try:
            caller = _authorised(auth, request, urls, smart.ADMIN)
            if request.method == "GET":
                return json_response([_account(a) for a in auth.accounts.all()])
            body = await _json_body(request)
            kind = body.get("kind")
            if kind not in ("practitioner", "operator"):
                raise OAuthError("invalid_request", "kind must be practitioner or operator")
            text = {
                k: body.get(k) for k in ("username", "password", "name", "fhirUser", "facility")
            }
            if any(v is not None and not isinstance(v, str) for v in text.values()):
                raise OAuthError(
                    "invalid_request", "username, password, name, fhirUser, facility are strings"
                )
            account = auth.accounts.create(
                kind,
                text["username"] or "",
                password=text["password"],
                name=text["name"],
                fhir_user=text["fhirUser"],
                facility=text["facility"],
            )
        except AccountError as exc:
            return json_response({"error": "invalid_request", "error_description": str(exc)}, 400)
        except OAuthError as exc:
            return oauth_error(exc)
        service.events.record(
            "account-created", "success", client_id=caller.client_id, created=account.account_id
        )
        return json_response(_account(account), 201)

    async def admin_activation_codes(request: Request) -> Response:
        """A facility (`vnehr/activation`) or an operator issues a citizen's security code:
        by SMS through the outbox, or returned once for printing."""
        urls = auth.urls(fhir_base(request))
        try:
            caller = _authorised(auth, request, urls, smart.ISSUE_CODES, smart.ADMIN)
            body = await _json_body(request)
            cccd, channel, recipient = body.get("cccd"), body.get("channel"), body.get("recipient")
            if not isinstance(cccd, str) or channel not in ("sms", "print"):
                raise OAuthError(
                    "invalid_request", "cccd (string) and channel (sms|print) are required"
                )
            if recipient is not None and not isinstance(recipient, str):
                raise OAuthError("invalid_request", "recipient must be a phone number")
            issued = auth.activation.issue(
                cccd,
                issued_by=caller.facility or caller.client_id,
                channel=channel,
                recipient=recipient,
            )
        except ActivationError as exc:
            return json_response({"error": "invalid_request", "error_description": str(exc)}, 400)
        except OAuthError as exc:
            return oauth_error(exc)
        answer: dict[str, Any] = {
            "code_id": issued.code_id,
            "channel": issued.channel,
            "expires": issued.expires,
        }
        if issued.code:
            answer["code"] = issued.code
        return json_response(answer, 201)

    return [
        Route("/.well-known/smart-configuration", discovery(smart_configuration)),
        Route("/fhir/.well-known/smart-configuration", discovery(smart_configuration)),
        Route("/.well-known/openid-configuration", discovery(openid_configuration)),
        Route("/fhir/.well-known/openid-configuration", discovery(openid_configuration)),
        Route("/auth/jwks", jwks),
        Route(
            "/auth/token",
            form_endpoint("token", service.token, needs_token=False),
            methods=["POST"],
        ),
        Route(
            "/auth/introspect",
            form_endpoint("introspect", service.introspect, needs_token=True),
            methods=["POST"],
        ),
        Route(
            "/auth/revoke",
            form_endpoint("revoke", service.revoke, needs_token=True),
            methods=["POST"],
        ),
        Route("/auth/launch", launch, methods=["POST"]),
        Route("/auth/admin/clients", admin_clients, methods=["GET", "POST"]),
        Route("/auth/admin/accounts", admin_accounts, methods=["GET", "POST"]),
        Route("/auth/admin/activation-codes", admin_activation_codes, methods=["POST"]),
    ]


def _account(account: Account) -> dict[str, Any]:
    return {
        "id": account.account_id,
        "kind": account.kind,
        "username": account.username,
        "name": account.name,
        "fhirUser": account.fhir_user,
        "facility": account.facility,
        "totp": account.totp_enabled,
        "disabled": account.disabled,
    }


def _authorised(auth: AuthorizationServer, request: Request, urls: Urls, *scopes: str) -> Principal:
    """The caller's token, holding one of `scopes`."""
    try:
        caller = bearer(auth, request, urls)
    except InvalidToken as exc:
        auth.service.events.record(
            "request", "failure", address=address(request), reason="token", path=request.url.path
        )
        raise OAuthError("invalid_token", str(exc), 401) from None
    if not any(scope in caller.scopes for scope in scopes):
        auth.service.events.record(
            "request",
            "failure",
            client_id=caller.client_id,
            account_id=caller.subject,
            address=address(request),
            reason="scope",
            path=request.url.path,
        )
        raise OAuthError("insufficient_scope", f"This needs the scope {' or '.join(scopes)}", 403)
    return caller


async def _json_body(request: Request) -> dict[str, Any]:
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "The request body is too large")
    try:
        body = json.loads(raw)
    except ValueError:
        raise OAuthError("invalid_request", "The body must be a JSON object") from None
    if not isinstance(body, dict):
        raise OAuthError("invalid_request", "The body must be a JSON object")
    return body


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClientError("redirect_uris must be a list of strings")
    return value
