"""The ASGI app: maps HTTP requests to FhirRequests and FhirResponses back to HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vnehr import __version__
from vnehr.auth.authorize import routes as authorize_routes
from vnehr.auth.endpoints import address, bearer
from vnehr.auth.endpoints import routes as auth_routes
from vnehr.auth.tokens import InvalidToken, Principal
from vnehr.errors import FhirError, NotAuthorized, PayloadTooLarge
from vnehr.fhir import json as fhir_json
from vnehr.http.negotiation import check_format
from vnehr.interactions.exchange import FhirRequest, FhirResponse

if TYPE_CHECKING:
    from vnehr.app import Server

log = logging.getLogger("vnehr.http")
FHIR_JSON = "application/fhir+json; charset=utf-8"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
DEV_WARNING = (
    "DEVELOPMENT MODE: vnehr is serving patient data WITHOUT authentication. "
    "Never run it like this with real patients' data."
)


def _error_response(exc: FhirError, pretty: bool = False) -> Response:
    response = Response(
        fhir_json.dumps(exc.outcome(), pretty=pretty), status_code=exc.status, media_type=FHIR_JSON
    )
    if exc.status == 401:  # RFC 6750 3: say how to authenticate, and what was wrong
        detail = str(exc).replace('"', "'")
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="vnehr", error="invalid_token", error_description="{detail}"'
        )
    return response


def _http_response(response: FhirResponse, pretty: bool) -> Response:
    if response.resource is not None:
        body = fhir_json.dumps(response.resource, pretty=pretty)
    elif response.body is not None:
        body = (
            fhir_json.dumps(fhir_json.loads(response.body), pretty=True)
            if pretty
            else response.body
        )
    else:
        body = b""
    headers = dict(response.headers)
    if response.status == 204 or response.status == 304:
        return Response(status_code=response.status, headers=headers)
    return Response(body, status_code=response.status, headers=headers, media_type=FHIR_JSON)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {limit}")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > limit:
            raise PayloadTooLarge(f"The body is larger than the limit of {limit} bytes")
    return bytes(chunks)


def build_asgi(server: Server) -> FastAPI:
    settings = server.settings
    router = server.router
    auth = server.auth

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        server.close()

    app = FastAPI(
        title="vnehr FHIR R4 server",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.server = server
    if settings.dev:
        log.warning(DEV_WARNING)

    async def fhir(request: Request) -> Response:
        path = request.path_params.get("path", "")
        query = list(request.query_params.multi_items())
        pretty = request.query_params.get("_pretty") == "true"
        base = settings.base_url.rstrip("/") or str(request.base_url).rstrip("/") + "/fhir"
        principal = None
        try:
            if path != "metadata":
                try:
                    principal = _principal(request, base)
                except InvalidToken as exc:
                    await run_in_threadpool(_refused, request, str(exc))
                    raise NotAuthorized(str(exc)) from None
            check_format(request.query_params.get("_format"), request.headers.get("accept"))
            body = b""
            if request.method in ("POST", "PUT", "PATCH"):
                body = await _read_body(request, settings.max_body_bytes)
        except FhirError as exc:
            return _error_response(exc, pretty)
        fhir_request = FhirRequest(
            method=request.method,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body or None,
            base_url=base,
            principal=principal,
            address=address(request),
            stored_json=not pretty,
        )
        response = await run_in_threadpool(router.handle, fhir_request)
        http = _http_response(response, pretty)
        if settings.dev:
            http.headers["X-Vnehr-Mode"] = "development-unauthenticated"
        return http

    def _principal(request: Request, base: str) -> Principal | None:
        """The caller's access token, checked; none in development mode is no limit."""
        if settings.dev and "authorization" not in request.headers:
            return None
        return bearer(auth, request, auth.urls(base))

    def _refused(request: Request, why: str) -> None:
        auth.service.events.record(
            "request",
            "failure",
            address=address(request),
            reason="token",
            why=why,
            path=request.url.path,
        )

    for route in [*auth_routes(auth), *authorize_routes(auth)]:
        app.router.routes.append(route)
    app.add_api_route("/fhir", fhir, methods=METHODS, include_in_schema=False)
    app.add_api_route("/fhir/{path:path}", fhir, methods=METHODS, include_in_schema=False)

    async def root(request: Request) -> Response:
        return RedirectResponse("/fhir/metadata")

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
    return app
