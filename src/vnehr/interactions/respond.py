"""Pieces shared by the interactions: bodies in, versions out, ETags and Prefer."""

from __future__ import annotations

import re
from typing import Any

from vnehr.errors import (
    InvalidRequest,
    InvalidResource,
    Issue,
    UnknownResourceType,
    UnsupportedMediaType,
    operation_outcome,
)
from vnehr.fhir import json as fhir_json
from vnehr.fhir.definitions import resource_types
from vnehr.fhir.instant import http_date
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.storage.base import StoredVersion

_ETAG = re.compile(r'\s*(?:W/)?"?(\d+)"?\s*')
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json-patch+json")


def check_type(res_type: str) -> None:
    if res_type not in resource_types():
        raise UnknownResourceType(f"Unknown resource type '{res_type}'")


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_etag(value: str, header: str = "If-Match") -> int:
    match = _ETAG.fullmatch(value)
    if match is None:
        raise InvalidRequest(f'{header} must be a version ETag such as W/"3", got {value!r}')
    return int(match.group(1))


def body_resource(request: FhirRequest, expected_type: str | None) -> dict[str, Any]:
    """The request's resource: parsed, a JSON object with the right resourceType."""
    resource = request.resource
    if resource is None:
        content_type = (request.header("content-type") or "application/fhir+json").split(";")[0]
        if content_type.strip().lower() not in _JSON_TYPES:
            raise UnsupportedMediaType(
                f"Content-Type {content_type!r} is not supported: send application/fhir+json"
            )
        if not request.body:
            raise InvalidRequest("The request has no body; a FHIR resource is expected")
        resource = fhir_json.loads(request.body)
    if not isinstance(resource, dict):
        raise InvalidRequest("The body must be a JSON object (a FHIR resource)")
    declared = resource.get("resourceType")
    if not isinstance(declared, str):
        raise InvalidResource("The resource has no resourceType", ("resourceType",))
    if expected_type is not None and declared != expected_type:
        raise InvalidResource(
            f"The body is a {declared} but the URL names {expected_type}", ("resourceType",)
        )
    check_type(declared)
    return resource


def validated(ctx: Context, resource: dict[str, Any]) -> list[Issue]:
    """Validate; raise InvalidResource listing every error; return the warnings.

    Local codes get their national codings first (vnehr.terminology.local_codes), so what is
    validated is what is stored."""
    if ctx.terminology is not None:
        ctx.terminology.add_national_codings(resource)
    if not ctx.settings.validate:
        return []
    issues = ctx.validator(resource)
    if ctx.terminology is not None and not any(i.severity in ("error", "fatal") for i in issues):
        issues += ctx.terminology.check_bindings(resource)
    if any(i.severity in ("error", "fatal") for i in issues):
        errors = [i for i in issues if i.severity in ("error", "fatal")]
        first = errors[0]
        raise InvalidResource(
            f"{resource.get('resourceType')} failed validation: {first.diagnostics}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            first.expression,
            issues=issues,
        )
    return issues


def version_headers(request: FhirRequest, stored: StoredVersion) -> dict[str, str]:
    return {
        "ETag": etag(stored.version),
        "Last-Modified": http_date(stored.last_updated),
        "Location": f"{request.base_url}/{stored.res_type}/{stored.res_id}"
        f"/_history/{stored.version}",
    }


def prefer_return(request: FhirRequest) -> str:
    prefer = request.header("prefer") or ""
    for part in prefer.split(";"):
        for item in part.split(","):
            key, _, value = item.strip().partition("=")
            if key.strip().lower() == "return":
                return value.strip().strip('"').lower()
    return "representation"


def written(
    request: FhirRequest,
    stored: StoredVersion,
    status: int,
    warnings: list[Issue] | None = None,
    message: str | None = None,
) -> FhirResponse:
    """The response to a write, shaped by `Prefer: return=...`."""
    headers = version_headers(request, stored)
    mode = prefer_return(request)
    if mode == "minimal":
        return FhirResponse(status, headers=headers)
    if mode == "operationoutcome":
        text = message or f"{stored.res_type}/{stored.res_id} version {stored.version} stored"
        issues = [Issue("information", "informational", text), *(warnings or [])]
        return FhirResponse(status, resource=operation_outcome(issues), headers=headers)
    return FhirResponse(status, body=stored.content, headers=headers)
