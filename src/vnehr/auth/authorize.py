"""The browser side of SMART App Launch: /auth/authorize (sign-in, consent), citizens'
activation with a security code, TOTP enrolment, and sign-in through VNeID.

https://hl7.org/fhir/smart-app-launch/app-launch.html. The authorization request is checked
in two steps: first the client and its redirect_uri (a bad one gets an error page, never a
redirect: no open redirector), then everything else (errors go back to the app). PKCE with
S256 is required. Between pages the request travels as a JWT the server signed (typ
`authz`, ten minutes), so no page can be skipped or its parameters changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from vnehr.auth.accounts import Account, AccountError, LoginFailed
from vnehr.auth.activation import ActivationError
from vnehr.auth.clients import Client
from vnehr.auth.endpoints import MAX_FORM_BYTES, address, fhir_base
from vnehr.auth.pages import activation_error, describe_scope, language, login_error, render
from vnehr.auth.scopes import ScopeError, Scopes, narrow
from vnehr.auth.server import AuthorizationServer
from vnehr.auth.service import Authorization, Urls
from vnehr.auth.tokens import InvalidToken
from vnehr.auth.vneid import VneidError

PAGE_LIFETIME = 600  # seconds a sign-in may take, from the app's request to consent
STRINGS = {
    "vi": {
        "bad_request": "Yêu cầu đăng nhập không hợp lệ",
        "expired": "Phiên đăng nhập đã hết hạn. Vui lòng quay lại ứng dụng và thử lại.",
    },
    "en": {
        "bad_request": "This sign-in request is not valid",
        "expired": "This sign-in has expired. Go back to the app and try again.",
    },
}


class BadRequest(Exception):
    """An authorization request that must not be answered with a redirect."""


class AppError(Exception):
    """An error the app is told about at its redirect_uri (RFC 6749 4.1.2.1)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = ""  # the checked one, set once it is known


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _redirect(uri: str, params: Mapping[str, str]) -> RedirectResponse:
    glue = "&" if urlsplit(uri).query else "?"
    return RedirectResponse(uri + glue + urlencode(params), status_code=303)


class AuthorizePages:
    def __init__(self, auth: AuthorizationServer) -> None:
        self.auth = auth
        self.service = auth.service
        self.events = auth.service.events

    # -- step 1: the app's request
    def check_request(self, params: Mapping[str, str], urls: Urls) -> tuple[Client, dict[str, Any]]:
        client = self.service.clients.get(params.get("client_id", ""))
        if client is None or client.disabled or client.kind != "app":
            raise BadRequest("Unknown client_id")
        redirect_uri = params.get("redirect_uri") or (
            client.redirect_uris[0] if len(client.redirect_uris) == 1 else ""
        )
        if redirect_uri not in client.redirect_uris:
            raise BadRequest("redirect_uri is not one this client registered")
        pending: dict[str, Any] = {
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "state": params.get("state", ""),
        }
        try:
            return client, self._checked(params, urls, client, pending)
        except AppError as exc:
            exc.redirect_uri = redirect_uri
            raise

    def _checked(
        self, params: Mapping[str, str], urls: Urls, client: Client, pending: dict[str, Any]
    ) -> dict[str, Any]:
        if params.get("response_type") != "code":
            raise AppError("unsupported_response_type", "response_type must be code")
        if not params.get("code_challenge"):
            raise AppError("invalid_request", "PKCE is required: send code_challenge")
        if params.get("code_challenge_method") != "S256":
            raise AppError("invalid_request", "code_challenge_method must be S256")
        if params.get("aud", "").rstrip("/") != urls.issuer:
            raise AppError("invalid_request", f"aud must be this FHIR server: {urls.issuer}")
        try:
            scopes = narrow(Scopes.parse(params.get("scope", "")), client.scopes)
        except ScopeError as exc:
            raise AppError("invalid_scope", str(exc)) from None
        if not scopes.clinical and not scopes.plain - {"openid", "fhirUser", "profile"}:
            raise AppError("invalid_scope", "None of the requested scopes may be granted")
        context: dict[str, Any] = {}
        if "launch" in scopes:
            context = self._launch(params.get("launch", ""), client)
        pending.update(
            scope=scopes.text(),
            challenge=params["code_challenge"],
            nonce=params.get("nonce") or None,
            launch=context,
        )
        return pending

    def _launch(self, launch: str, client: Client) -> dict[str, Any]:
        rows = self.auth.store.rows(
            "SELECT client_id, context, expires FROM auth_launches WHERE launch_id = ?", (launch,)
        )
        if not launch or not rows:
            raise AppError("invalid_request", "The launch parameter is missing or unknown")
        client_id, context, expires = rows[0]
        if expires <= int(self.auth.clock()) or client_id not in (None, client.client_id):
            raise AppError("invalid_request", "The launch has expired or is for another app")
        found: dict[str, Any] = json.loads(context)
        return found

    # -- signed page state
    def seal(self, claims: dict[str, Any], urls: Urls) -> str:
        now = int(self.auth.clock())
        return self.auth.tokens.sign(
            {**claims, "iss": urls.issuer, "iat": now, "exp": now + PAGE_LIFETIME}, typ="authz"
        )

    def unseal(self, state: str, urls: Urls) -> dict[str, Any]:
        claims: dict[str, Any] = self.auth.tokens.open(state, "authz", urls.issuer)
        return claims

    # -- step 3: the decision
    def authorization(
        self, pending: dict[str, Any], account: Account, chosen_patient: str | None
    ) -> Authorization:
        scopes = Scopes.parse(pending["scope"])
        launch = pending.get("launch") or {}
        if account.kind == "citizen":
            # A citizen acts for their own record only (and, with the access-control
            # layer, their wards'): no user/ or system/ scopes, no other patient.
            scopes = Scopes(
                scopes.plain, tuple(s for s in scopes.clinical if s.context == "patient")
            )
            patient = _patient_id(account.fhir_user)
        else:
            if launch and launch.get("facility") != account.facility:
                # A launch id seen elsewhere (a browser history, a Referer) must not open
                # another facility's patient for this clinician.
                raise AppError("access_denied", "This launch is for another facility")
            patient = launch.get("patient") or chosen_patient
        wants_patient = "launch/patient" in scopes or any(
            s.context == "patient" for s in scopes.clinical
        )
        if wants_patient and not patient:
            raise AppError("invalid_request", "No patient is in context for patient/ scopes")
        return Authorization(
            client_id=pending["client_id"],
            account_id=account.account_id,
            redirect_uri=pending["redirect_uri"],
            scopes=scopes,
            challenge=pending["challenge"],
            fhir_user=account.fhir_user,
            facility=account.facility,
            patient=patient if wants_patient or launch.get("patient") else None,
            encounter=launch.get("encounter"),
            nonce=pending.get("nonce"),
            name=account.name,
        )


def _patient_id(fhir_user: str | None) -> str | None:
    if fhir_user and fhir_user.startswith("Patient/"):
        return fhir_user.split("/", 1)[1]
    return None


async def _form(request: Request) -> dict[str, str]:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            return {}
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def routes(auth: AuthorizationServer) -> list[Route]:
    pages = AuthorizePages(auth)
    events = pages.events

    async def record(kind: str, outcome: str, **detail: Any) -> None:
        await run_in_threadpool(lambda: events.record(kind, outcome, **detail))

    def error_page(request: Request, lang: str, message: str, status: int = 400) -> Response:
        return render(
            "error.html",
            lang,
            status,
            request=request,
            title=STRINGS[lang]["bad_request"],
            message=message,
        )

    def login_page(
        request: Request,
        lang: str,
        client: Client,
        state: str,
        urls: Urls,
        *,
        error: str | None = None,
        show_totp: bool = False,
        username: str = "",
        status: int = 200,
    ) -> Response:
        vneid = auth.vneid(urls) is not None
        return render(
            "login.html",
            lang,
            status,
            request=request,
            client_name=client.name,
            state=state,
            error=error,
            show_totp=show_totp,
            username=username,
            action=f"/auth/authorize/login?lang={lang}",
            vneid_url=f"/auth/vneid/start?{urlencode({'state': state})}" if vneid else None,
            activate_url=f"/auth/activate?lang={lang}",
        )

    def consent_page(
        request: Request, lang: str, pending: dict[str, Any], account: Account, urls: Urls
    ) -> Response:
        client = auth.service.clients.get(pending["client_id"])
        assert client is not None
        sealed = pages.seal({**pending, "account": account.account_id, "step": "consent"}, urls)
        launch = pending.get("launch") or {}
        scopes = pending["scope"].split()
        own = account.kind == "citizen"
        return render(
            "consent.html",
            lang,
            request=request,
            redirect_origins=[_origin(pending["redirect_uri"])],
            client_name=client.name,
            account_name=account.name or account.username,
            scopes=[(s, describe_scope(s, lang, own_record=own)) for s in scopes],
            patient_choice=not own and "launch/patient" in scopes and not launch.get("patient"),
            state=sealed,
            action=f"/auth/authorize/consent?lang={lang}",
        )

    async def authorize(request: Request) -> Response:
        lang = language(request)
        urls = auth.urls(fhir_base(request))
        params: dict[str, str] = dict(request.query_params)
        if request.method == "POST":  # SMART's authorize-post
            params.update(await _form(request))
        try:
            client, pending = await run_in_threadpool(pages.check_request, params, urls)
        except BadRequest as exc:
            await record("authorize", "failure", address=address(request), reason=str(exc))
            return error_page(request, lang, str(exc))
        except AppError as exc:
            redirect_uri = exc.redirect_uri
            await record(
                "authorize",
                "failure",
                client_id=params.get("client_id"),
                address=address(request),
                reason=exc.error,
            )
            return _redirect(
                redirect_uri,
                {"error": exc.error, "error_description": exc.description, **_state(params)},
            )
        sealed = pages.seal({**pending, "step": "login"}, urls)
        return login_page(request, lang, client, sealed, urls)

    async def _unseal(request: Request, state: str, urls: Urls, step: str) -> dict[str, Any] | None:
        """The signed state of a page step; a forged, expired or other step's state is
        refused and recorded (someone may be trying to skip the password)."""
        try:
            pending = pages.unseal(state, urls)
        except InvalidToken as exc:
            await record(
                "authorize",
                "failure",
                address=address(request),
                reason="state",
                step=step,
                why=str(exc),
            )
            return None
        if pending.get("step") != step:
            await record(
                "authorize",
                "failure",
                address=address(request),
                reason="state",
                step=step,
                why=f"a {pending.get('step')} state",
            )
            return None
        return pending

    async def login(request: Request) -> Response:
        lang = language(request)
        urls = auth.urls(fhir_base(request))
        form = await _form(request)
        pending = await _unseal(request, form.get("state", ""), urls, "login")
        if pending is None:
            return error_page(request, lang, STRINGS[lang]["expired"])
        client = auth.service.clients.get(pending["client_id"])
        if client is None or client.disabled:
            return error_page(request, lang, "Unknown client_id")
        username = form.get("username", "")
        try:
            account = await run_in_threadpool(
                auth.accounts.authenticate,
                username,
                form.get("password", ""),
                form.get("totp") or None,
            )
        except LoginFailed as exc:
            await record(
                "login",
                "failure",
                client_id=client.client_id,
                account_id=exc.account_id,
                address=address(request),
                reason=exc.reason,
            )
            return login_page(
                request,
                lang,
                client,
                form.get("state", ""),
                urls,
                error=login_error(exc.reason, lang),
                show_totp=exc.reason in ("totp-required", "totp"),
                username=username,
                status=401,
            )
        await record(
            "login",
            "success",
            client_id=client.client_id,
            account_id=account.account_id,
            facility=account.facility,
            address=address(request),
        )
        return consent_page(request, lang, pending, account, urls)

    async def consent(request: Request) -> Response:
        lang = language(request)
        urls = auth.urls(fhir_base(request))
        form = await _form(request)
        pending = await _unseal(request, form.get("state", ""), urls, "consent")
        if pending is None:
            return error_page(request, lang, STRINGS[lang]["expired"])
        account = auth.accounts.get(str(pending.get("account")))
        if account is None or account.disabled:
            return error_page(request, lang, STRINGS[lang]["expired"])
        redirect_uri = pending["redirect_uri"]
        back = {"state": pending["state"]} if pending.get("state") else {}
        if form.get("decision") != "allow":
            await record(
                "consent",
                "failure",
                client_id=pending["client_id"],
                account_id=account.account_id,
                address=address(request),
                reason="denied",
            )
            return _redirect(redirect_uri, {"error": "access_denied", **back})
        try:
            granted = pages.authorization(pending, account, form.get("patient") or None)
        except AppError as exc:
            await record(
                "consent",
                "failure",
                client_id=pending["client_id"],
                account_id=account.account_id,
                facility=account.facility,
                address=address(request),
                reason=exc.error,
                why=exc.description,
            )
            return _redirect(
                redirect_uri, {"error": exc.error, "error_description": exc.description, **back}
            )
        code = await run_in_threadpool(auth.service.new_code, granted)
        await record(
            "consent",
            "success",
            client_id=pending["client_id"],
            account_id=account.account_id,
            facility=account.facility,
            address=address(request),
            scope=granted.scopes.text(),
            patient=granted.patient,
        )
        return _redirect(redirect_uri, {"code": code, **back, "iss": urls.issuer})

    async def activate(request: Request) -> Response:
        lang = language(request)
        urls = auth.urls(fhir_base(request))
        action = f"/auth/activate?lang={lang}"
        if request.method == "GET":
            sealed = pages.seal({"step": "activate"}, urls)
            return render("activate.html", lang, request=request, state=sealed, action=action)
        form = await _form(request)
        if await _unseal(request, form.get("state", ""), urls, "activate") is None:
            return error_page(request, lang, STRINGS[lang]["expired"])
        again = pages.seal({"step": "activate"}, urls)
        if form.get("password", "") != form.get("password2", ""):
            error = activation_error("password", lang, "mismatch")
            return render(
                "activate.html", lang, 400, request=request, state=again, action=action, error=error
            )
        try:
            account = await run_in_threadpool(
                lambda: auth.activation.activate(
                    form.get("cccd", ""),
                    form.get("code", ""),
                    form.get("password", ""),
                    address=address(request),
                )
            )
        except ActivationError as exc:
            error = activation_error(exc.reason, lang, exc.rule)
            return render(
                "activate.html", lang, 400, request=request, state=again, action=action, error=error
            )
        # Activated: offer a second factor at once (the citizen may skip it and sign in).
        secret, uri = auth.accounts.begin_totp(account.account_id)
        sealed = pages.seal(
            {"step": "totp", "account": account.account_id, "secret": secret, "uri": uri}, urls
        )
        return render(
            "totp.html",
            lang,
            request=request,
            state=sealed,
            secret=secret,
            uri=uri,
            action=f"/auth/totp?lang={lang}",
        )

    async def totp(request: Request) -> Response:
        lang = language(request)
        urls = auth.urls(fhir_base(request))
        form = await _form(request)
        pending = await _unseal(request, form.get("state", ""), urls, "totp")
        if pending is None:
            return error_page(request, lang, STRINGS[lang]["expired"])
        account_id = str(pending["account"])
        if await run_in_threadpool(auth.accounts.confirm_totp, account_id, form.get("code", "")):
            await record("totp-enrol", "success", account_id=account_id, address=address(request))
            return render(
                "activate.html",
                lang,
                request=request,
                done=True,
                state="",
                action=f"/auth/activate?lang={lang}",
            )
        return render(
            "totp.html",
            lang,
            400,
            request=request,
            state=form.get("state", ""),
            secret=pending["secret"],
            uri=pending["uri"],
            action=f"/auth/totp?lang={lang}",
            error=login_error("totp", lang),
        )

    async def vneid_start(request: Request) -> Response:
        lang = language(request)
        urls = auth.urls(fhir_base(request))
        vneid = auth.vneid(urls)
        pending = await _unseal(request, request.query_params.get("state", ""), urls, "login")
        if vneid is None or pending is None:
            return error_page(request, lang, STRINGS[lang]["expired"])
        try:
            started = await run_in_threadpool(vneid.start)
        except VneidError as exc:
            await record("vneid", "failure", address=address(request), reason=exc.reason)
            return error_page(request, lang, str(exc), 502)
        cookie = pages.seal(
            {
                "step": "vneid",
                "pending": pending,
                "vneid_state": started.state,
                "nonce": started.nonce,
                "verifier": started.code_verifier,
            },
            urls,
        )
        response = RedirectResponse(started.url, status_code=303)
        response.set_cookie(
            "vnehr_vneid",
            cookie,
            max_age=PAGE_LIFETIME,
            httponly=True,
            secure=urls.origin.startswith("https://"),
            samesite="lax",
            path="/auth/vneid",
        )
        return response

    async def vneid_callback(request: Request) -> Response:
        lang = language(request)
        urls = auth.urls(fhir_base(request))
        vneid = auth.vneid(urls)
        flow = await _unseal(request, request.cookies.get("vnehr_vneid", ""), urls, "vneid")
        if vneid is None or flow is None:
            return error_page(request, lang, STRINGS[lang]["expired"])
        query = request.query_params
        try:
            if query.get("error"):
                raise VneidError("idp-error", "VNeID refused the sign-in", query.get("error"))
            identity = await run_in_threadpool(
                lambda: vneid.finish(
                    code=query.get("code", ""),
                    state=query.get("state", ""),
                    expected_state=flow["vneid_state"],
                    nonce=flow["nonce"],
                    code_verifier=flow["verifier"],
                )
            )
            account = await run_in_threadpool(auth.citizen_from_vneid, identity.cccd, identity.name)
        except (VneidError, AccountError) as exc:
            await record(
                "vneid",
                "failure",
                address=address(request),
                reason=getattr(exc, "reason", "account"),
            )
            return error_page(request, lang, str(exc), 401)
        await record(
            "login", "success", account_id=account.account_id, address=address(request), via="vneid"
        )
        pending = {k: v for k, v in flow["pending"].items() if k not in ("iss", "iat", "exp")}
        response = consent_page(request, lang, pending, account, urls)
        response.delete_cookie("vnehr_vneid", path="/auth/vneid")
        return response

    return [
        Route("/auth/authorize", authorize, methods=["GET", "POST"]),
        Route("/auth/authorize/login", login, methods=["POST"]),
        Route("/auth/authorize/consent", consent, methods=["POST"]),
        Route("/auth/activate", activate, methods=["GET", "POST"]),
        Route("/auth/totp", totp, methods=["POST"]),
        Route("/auth/vneid/start", vneid_start, methods=["GET"]),
        Route("/auth/vneid/callback", vneid_callback, methods=["GET"]),
    ]


def _state(params: Mapping[str, str]) -> dict[str, str]:
    return {"state": params["state"]} if params.get("state") else {}
