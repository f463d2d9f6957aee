"""create and conditional create (https://hl7.org/fhir/R4/http.html#create)."""

from __future__ import annotations

from typing import Any

from vnehr.errors import Issue
from vnehr.fhir.ids import new_id
from vnehr.interactions.conditional import criteria_from_text, single_match
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.respond import body_resource, validated, version_headers, written
from vnehr.storage.base import StoredVersion, WriteTransaction


def create_resource(
    ctx: Context,
    txn: WriteTransaction,
    resource: dict[str, Any],
    *,
    res_id: str | None = None,
) -> tuple[StoredVersion, list[Issue]]:
    """Validate and store a new resource; the server assigns the id (any sent one is ignored)."""
    warnings = validated(ctx, resource)  # as sent: a malformed id is still an error
    resource = dict(resource)
    resource.pop("id", None)
    stored = txn.write(resource["resourceType"], res_id or new_id(), resource, "POST", None)
    return stored, warnings


def create(
    ctx: Context, request: FhirRequest, res_type: str, txn: WriteTransaction
) -> FhirResponse:
    resource = body_resource(request, res_type)
    if_none_exist = request.header("if-none-exist")
    if if_none_exist:
        criteria = criteria_from_text(ctx, res_type, if_none_exist, request.principal)
        existing = single_match(txn, criteria, lock=True)
        if existing is not None:
            stored = txn.read(res_type, existing)
            response = written(request, stored, 200, message="An existing resource matched")
            response.headers = version_headers(request, stored)
            return response
    stored, warnings = create_resource(ctx, txn, resource)
    return written(request, stored, 201, warnings)
