"""update, update-as-create and conditional update (https://hl7.org/fhir/R4/http.html#update)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from vnehr.errors import InvalidResource, Issue, VersionConflict
from vnehr.fhir.ids import new_id
from vnehr.interactions.conditional import criteria_from_text, single_match
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.read import check_id
from vnehr.interactions.respond import body_resource, check_type, parse_etag, validated, written
from vnehr.storage.base import StoredVersion, WriteTransaction


def check_if_match(request: FhirRequest, current_version: int | None, label: str) -> None:
    """412 unless If-Match (when sent) names the current version."""
    if_match = request.header("if-match")
    if not if_match:
        return
    wanted = parse_etag(if_match)
    if current_version is None:
        raise VersionConflict(f"If-Match {if_match} but {label} does not exist")
    if wanted != current_version:
        raise VersionConflict(
            f"If-Match names version {wanted} but {label} is at version {current_version}"
        )


def update_resource(
    ctx: Context,
    request: FhirRequest,
    txn: WriteTransaction,
    resource: dict[str, Any],
    res_type: str,
    res_id: str,
    method: str = "PUT",
) -> tuple[StoredVersion, bool, list[Issue]]:
    """Store a new version (or the first, for update-as-create); True if it was created."""
    warnings = validated(ctx, resource)
    previous = txn.current(res_type, res_id)
    live = previous is not None and not previous.deleted
    check_if_match(request, previous.version if live and previous else None, f"{res_type}/{res_id}")
    stored = txn.write(res_type, res_id, dict(resource), method, previous)
    return stored, not live, warnings


def update(
    ctx: Context, request: FhirRequest, res_type: str, res_id: str, txn: WriteTransaction
) -> FhirResponse:
    check_type(res_type)
    check_id(res_id)
    resource = body_resource(request, res_type)
    body_id = resource.get("id")
    if body_id is None:
        raise InvalidResource("The resource in an update must have an id", ("id",))
    if body_id != res_id:
        raise InvalidResource(
            f"The resource id {body_id!r} does not match the URL's id {res_id!r}", ("id",)
        )
    stored, created, warnings = update_resource(ctx, request, txn, resource, res_type, res_id)
    return written(request, stored, 201 if created else 200, warnings)


def conditional_update(
    ctx: Context, request: FhirRequest, res_type: str, txn: WriteTransaction
) -> FhirResponse:
    check_type(res_type)
    resource = body_resource(request, res_type)
    criteria = criteria_from_text(ctx, res_type, _query_text(request), request.principal)
    found = single_match(txn, criteria, lock=True)
    body_id = resource.get("id")
    if found is None:
        res_id = body_id if isinstance(body_id, str) else new_id()
        check_id(res_id)
    else:
        if body_id is not None and body_id != found:
            raise InvalidResource(
                f"The resource id {body_id!r} differs from the matching resource {found!r}",
                ("id",),
            )
        res_id = found
    resource = {**resource, "id": res_id}
    stored, created, warnings = update_resource(ctx, request, txn, resource, res_type, res_id)
    return written(request, stored, 201 if created else 200, warnings)


def _query_text(request: FhirRequest) -> str:
    return urlencode(request.query)
